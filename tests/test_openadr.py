"""The OpenADR bridge against the real registry, end to end over loopback HTTP.

openleadr's own VEN client (a "smart box") talks to our VTN; the VTN talks to
the real Eve app, served by werkzeug on a loopback port, through a
``FlakyGateway`` proxy that a test can take down. Users (a prosumer, its
aggregator, another aggregator) act and check through the REST API with their
own tokens, as they would in production.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from openleadr import OpenADRClient

from registry.openadr import ApiClient, BridgeConfig, MeasurementBuffer, build_vtn, mapping
from registry.openadr.api_client import format_eve_date
from tests.support.loopback import FlakyGateway, LoopbackRegistry, free_port, with_credentials

ACCOUNT = "4f0c7a52-9d1e-4b36-8f0a-2c5d6e7f8a9b"
AGGREGATOR = "coop-aggregator"
OTHER_AGGREGATOR = "other-aggregator"
HINTS = [
    {
        "resource_id": "heat-pump",
        "device_class": "hvacDevice",
        "device_type": "Demand",
        "device_name": "Heat pump",
        "max_capacity": 3.5,
    }
]
TEST_TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parent.parent


class Party:
    """One user of the registry: a bearer token and the calls its client makes."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def items(self, resource: str, **where: Any) -> list[dict]:
        found: list[dict] = []
        for page in itertools.count(1):
            answer = self.session.get(
                f"{self.url}/{resource}",
                timeout=5,
                params={"where": json.dumps(where), "max_results": 100, "page": page},
            )
            assert answer.status_code == 200, answer.text
            found += answer.json()["_items"]
            if len(found) >= answer.json()["_meta"]["total"]:
                return found

    def item(self, resource: str, lookup: str) -> dict | None:
        answer = self.session.get(f"{self.url}/{resource}/{lookup}", timeout=5)
        assert answer.status_code in (200, 404), answer.text
        return answer.json() if answer.status_code == 200 else None

    def post(self, resource: str, document: dict) -> dict:
        answer = self.session.post(f"{self.url}/{resource}", json=document, timeout=5)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def patch(self, resource: str, lookup: str, changes: dict) -> dict:
        """As a client does: re-read and retry when another writer (the bridge
        recording a VEN's answer) changed the item in between (412)."""
        for _ in range(5):
            etag = self.item(resource, lookup)["_etag"]
            answer = self.session.patch(
                f"{self.url}/{resource}/{lookup}", json=changes, timeout=5, headers={"If-Match": etag}
            )
            if answer.status_code != 412:
                break
        assert answer.status_code == 200, answer.text
        return answer.json()


@dataclass
class World:
    """The registry and the people who use it."""

    registry: LoopbackRegistry
    admin: Party
    prosumer: Party
    aggregator: Party
    other_aggregator: Party

    def enrol(self, ven_name: str, resources: list[dict] | None = None, status: str = "enrolled") -> dict:
        """The prosumer enrols its smart box (a `vens` record) through the API; the
        answer carries the box's secret, once (kept here as the installer would)."""
        created = self.prosumer.post(
            "vens",
            {
                "ven_name": ven_name,
                "account_id": ACCOUNT,
                "aggregator_id": AGGREGATOR,
                "registration_status": status,
                "resources": resources or [],
            },
        )
        return {**self.prosumer.item("vens", created["_id"]), "secret": created["secret"]}

    def contract_on(self, device_id: str, opt_window: timedelta = timedelta(minutes=30)) -> dict:
        """The marketplace: the prosumer offers the device, the aggregator contracts it."""
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = now - timedelta(minutes=now.minute % 15) + timedelta(minutes=30)
        window = {"start": format_eve_date(start), "end": format_eve_date(start + opt_window)}
        self.prosumer.patch("devices", device_id, {"marketplace_availability": "yes"})
        offer = self.prosumer.post(
            "offers", {"device_id": device_id, "direction": "down", "power_kw": 2.0, "price": 0.2, **window}
        )
        created = self.aggregator.post("contracts", {"aggregator_id": AGGREGATOR, "offers": [offer["_id"]], **window})
        contract = self.aggregator.item("contracts", created["_id"])
        assert contract["status"] == "accepted" and contract["device_ids"] == [device_id]
        return contract


@pytest.fixture
def registry(instance_path) -> Iterator[LoopbackRegistry]:
    """The real app on 127.0.0.1 with a fresh embedded store; jobs stay queued."""
    served = LoopbackRegistry(instance_path, {"JOBS_EMBEDDED_WORKER": False, "RATE_LIMIT": "100000 per minute"})
    yield served
    served.close()


@pytest.fixture
def world(registry) -> World:
    admin = Party(registry.url, registry.token("admin"))
    for aggregator_id in (AGGREGATOR, OTHER_AGGREGATOR):
        admin.post("aggregators", {"aggregator_id": aggregator_id, "name": aggregator_id})
    admin.post("prosumers", {"account_id": ACCOUNT, "aggregator_id": AGGREGATOR, "display_name": "prosumer-1"})
    return World(
        registry,
        admin,
        Party(registry.url, registry.token("prosumer", account_id=ACCOUNT, aggregator_id=AGGREGATOR)),
        Party(registry.url, registry.token("aggregator", aggregator_id=AGGREGATOR)),
        Party(registry.url, registry.token("aggregator", aggregator_id=OTHER_AGGREGATOR)),
    )


@pytest.fixture
def gateway(registry) -> Iterator[FlakyGateway]:
    """Between bridge and registry, so a test can take the registry away for a while."""
    proxy = FlakyGateway(registry.url)
    yield proxy
    proxy.close()


def start_bridge(registry: LoopbackRegistry, gateway: FlakyGateway, port: int | None = None, host: str = "127.0.0.1"):
    api = ApiClient(gateway.url, client_id=registry.service[0], client_secret=registry.service[1], retry_for=3.0)
    vtn = build_vtn(
        api,
        host,
        port=port or free_port(),
        poll_interval=timedelta(seconds=1),
        sampling_interval=timedelta(seconds=1),
        watch_interval=0.3,
        buffer=MeasurementBuffer(api, flush_interval=0.2),
    )
    return vtn.start_in_thread()


@pytest.fixture
def bridge(registry, gateway):
    vtn = start_bridge(registry, gateway)
    yield vtn
    vtn.stop()


class SmartBox:
    """A home gateway: openleadr's VEN client with one power report per resource,
    proving itself with its enrolment secret (HTTP Basic, from the VTN URL)."""

    def __init__(self, vtn_url: str, enrolment: dict, resources=("heat-pump", "boiler"), opt: str = "optIn") -> None:
        ven_name = enrolment["ven_name"]
        self.client = OpenADRClient(ven_name=ven_name, vtn_url=with_credentials(vtn_url, ven_name, enrolment["secret"]))
        self.produced: dict[str, list[float]] = {resource: [] for resource in resources}
        self.counter = itertools.count(1000)
        self.events: list[dict] = []
        self.updates: list[dict] = []
        self.opt = opt
        for resource in resources:
            self.client.add_report(
                callback=lambda r=resource: self.read(r),
                resource_id=resource,
                measurement="real_power",
                unit="W",
                sampling_rate=timedelta(seconds=1),
                report_duration=timedelta(hours=1),
            )
        self.client.add_handler("on_event", self.on_event)
        self.client.add_handler("on_update_event", self.on_update_event)

    def read(self, resource: str) -> float:
        value = float(next(self.counter))  # unique watts, so losses and duplicates show
        self.produced[resource].append(value)
        return value

    async def on_event(self, event: dict) -> str:
        self.events.append(event)
        return self.opt

    async def on_update_event(self, event: dict) -> str:
        self.updates.append(event)
        return self.opt

    def device_id(self, resource: str) -> str:
        return mapping.device_id_for(self.client.ven_id, resource)

    async def __aenter__(self) -> SmartBox:
        await self.client.run()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.stop()


def run(scenario: Callable, timeout: float = TEST_TIMEOUT) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll a (blocking) check off the event loop until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout}s: {check}")
        await asyncio.sleep(0.1)


async def call(function: Callable, *args: Any) -> Any:
    """A blocking API call from a scenario, off the VEN's event loop."""
    return await asyncio.to_thread(function, *args)


# -- registration and devices ----------------------------------------------------------


def test_enrolled_ven_registers_and_its_resources_become_the_prosumers_devices(world, bridge):
    enrolment = world.enrol("box-1", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            return box.client.ven_id, box.client.registration_id

    ven_id, registration_id = run(scenario)
    assert registration_id and str(uuid.UUID(ven_id)) == ven_id
    recorded = world.prosumer.item("vens", enrolment["_id"])
    assert (recorded["ven_id"], recorded["registration_status"]) == (ven_id, "registered")
    assert recorded["registered_at"].endswith("Z")

    devices = {d["device_name"]: d for d in world.prosumer.items("devices")}
    assert sorted(devices) == ["Heat pump", "boiler"]
    for device in devices.values():
        assert (device["ven_id"], device["account_id"], device["aggregator_id"]) == (ven_id, ACCOUNT, AGGREGATOR)
    hinted, plain = devices["Heat pump"], devices["boiler"]
    assert hinted["device_id"] == mapping.device_id_for(ven_id, "heat-pump")
    assert (hinted["device_class"], hinted["device_type"], hinted["max_capacity"]) == ("hvacDevice", "Demand", 3.5)
    assert (plain["device_class"], plain["device_type"], plain["availability"]) == ("otherLoad", "Demand", "yes")
    assert sorted(d["device_id"] for d in world.aggregator.items("devices")) == sorted(
        d["device_id"] for d in devices.values()
    )
    # another aggregator neither lists them nor reaches them by id
    assert world.other_aggregator.items("devices") == []
    assert world.other_aggregator.item("devices", hinted["device_id"]) is None


@pytest.mark.parametrize("enrolled_as", [None, "cancelled"])
def test_unknown_or_cancelled_ven_is_refused(world, bridge, enrolled_as):
    enrolment = {"ven_name": "intruder", "secret": "a-guess"}
    if enrolled_as:
        enrolment = world.enrol("intruder", status=enrolled_as)

    async def scenario():
        box = SmartBox(bridge.url, enrolment)
        await box.client.run()  # openleadr stops the client when it gets no registration id
        return box.client.registration_id, box.client.ven_id

    assert run(scenario) == (None, None)
    assert all(v["registration_status"] == enrolled_as for v in world.admin.items("vens"))
    assert world.admin.items("devices") == []


def test_reregistration_updates_devices_without_duplicating_them(world, bridge):
    enrolment = world.enrol("box-3", resources=HINTS)

    async def register_once():
        async with SmartBox(bridge.url, enrolment) as box:
            return box.client.ven_id

    ven_id = run(register_once)
    first = {d["device_name"]: d for d in world.prosumer.items("devices")}
    # The prosumer takes the boiler off; the aggregator renames the heat pump's hint.
    world.prosumer.patch("devices", first["boiler"]["device_id"], {"availability": "no"})
    world.aggregator.patch("vens", enrolment["_id"], {"resources": [{**HINTS[0], "device_name": "Heat pump (attic)"}]})

    assert run(register_once) == ven_id  # a new client for the same box keeps its ven_id
    second = {d["device_name"]: d for d in world.prosumer.items("devices")}
    assert len(world.admin.items("devices")) == 2
    assert sorted(d["device_id"] for d in second.values()) == sorted(d["device_id"] for d in first.values())
    assert "Heat pump (attic)" in second
    assert second["boiler"]["availability"] == "no"  # not reset by the bridge's defaults


# -- telemetry -> measurements -> forecast jobs ----------------------------------------


def test_telemetry_becomes_measurements_and_a_forecast_job_follows(world, bridge, gateway):
    enrolment = world.enrol("box-4")

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            boiler = box.device_id("boiler")
            await eventually(lambda: len(world.prosumer.items("measurements", device_id=boiler)) >= 3)
            return box

    box = run(scenario)
    stored = world.prosumer.items("measurements")
    kilowatts = [m["power_kw"] for m in stored]
    produced = {w / 1000 for values in box.produced.values() for w in values}
    assert set(kilowatts) <= produced and len(set(kilowatts)) == len(stored)  # no duplicates
    assert all(m["timestamp"].endswith("Z") and m["account_id"] == ACCOUNT for m in stored)
    assert {m["device_id"] for m in stored} == {box.device_id("heat-pump"), box.device_id("boiler")}
    # Both resources' readings travel together in bulk POSTs.
    assert gateway.forwarded["POST /measurements"] < len(stored)
    assert world.other_aggregator.items("measurements") == []
    # the registry's hooks ran for bridged data: forecasts are queued for the new devices
    jobs = world.prosumer.items("jobs", subject=box.device_id("boiler"))
    assert {"consumption_forecast", "flexibility_forecast"} <= {job["kind"] for job in jobs}
    assert world.other_aggregator.items("jobs") == []


@pytest.mark.parametrize("outage", ["503", "refuse"])
def test_registry_outage_loses_no_telemetry(world, bridge, gateway, outage):
    enrolment = world.enrol("box-5")

    async def scenario():
        async with SmartBox(bridge.url, enrolment, resources=("meter",)) as box:
            meter = box.device_id("meter")
            await eventually(lambda: world.prosumer.items("measurements", device_id=meter))
            gateway.set_mode(outage)
            await asyncio.sleep(2.5)  # readings keep arriving at the VTN meanwhile
            assert bridge.buffer.pending >= 2
            gateway.set_mode("up")
            after_outage = box.produced["meter"][-1] / 1000
            await eventually(
                lambda: any(m["power_kw"] > after_outage for m in world.prosumer.items("measurements", device_id=meter))
            )
            return box

    box = run(scenario)
    stored = [m["power_kw"] for m in world.prosumer.items("measurements")]
    produced = [w / 1000 for w in box.produced["meter"]]
    # Every reading up to the newest stored one arrived, once and in order of time.
    assert sorted(stored) == produced[: len(stored)]
    assert len(stored) >= 4


def test_rejected_measurement_is_dropped_and_the_rest_kept(world, registry, caplog):
    device_id = str(uuid.uuid4())
    world.admin.post(
        "devices",
        {
            "device_id": device_id,
            "device_name": "meter",
            "account_id": ACCOUNT,
            "ven_id": str(uuid.uuid4()),
            "aggregator_id": AGGREGATOR,
            "device_class": "otherLoad",
            "availability": "yes",
        },
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    now = format_eve_date(start)
    good = [
        {"device_id": device_id, "timestamp": format_eve_date(start + timedelta(minutes=i)), "power_kw": float(i)}
        for i in range(4)
    ]  # one reading per device and timestamp
    unknown = {"device_id": str(uuid.uuid4()), "timestamp": now, "power_kw": 1.0}  # 422 for the batch
    absurd = {"device_id": device_id, "timestamp": now, "power_kw": 1e9}  # 422 for this item

    async def scenario():
        async with ApiClient(registry.url, client_id=registry.service[0], client_secret=registry.service[1]) as api:
            buffer = MeasurementBuffer(api)
            buffer.add(good[:2] + [unknown] + good[2:3] + [absurd] + good[3:])
            assert await buffer.flush_once()
            return buffer

    with caplog.at_level(logging.ERROR, logger="registry.openadr"):
        buffer = run(scenario)
    assert (buffer.sent, buffer.dropped, buffer.pending) == (4, 2, 0)
    assert sorted(m["power_kw"] for m in world.admin.items("measurements")) == [0.0, 1.0, 2.0, 3.0]
    rejected = [r.message for r in caplog.records if "rejected measurement" in r.message]
    assert any(unknown["device_id"] in m for m in rejected) and any("1000000000" in m for m in rejected)


def test_a_stale_token_is_replaced_once(world, registry):
    async def scenario():
        async with ApiClient(
            registry.url, client_id=registry.service[0], client_secret=registry.service[1], token="revoked"
        ) as api:
            return await api.find_one("prosumers", {"account_id": ACCOUNT}), api.token

    prosumer, token = run(scenario)
    assert prosumer["display_name"] == "prosumer-1" and token != "revoked"


# -- contracts -> events -> opt responses ----------------------------------------------


@pytest.mark.parametrize("opt", ["optIn", "optOut"])
def test_a_marketplace_contract_reaches_the_ven_and_its_answer_lands_on_the_contract(world, bridge, opt):
    enrolment = world.enrol("box-6", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, enrolment, opt=opt) as box:
            heat_pump = box.device_id("heat-pump")
            contract = await call(world.contract_on, heat_pump)  # the watcher finds it
            await eventually(lambda: box.events)
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            return box, contract, answered

    box, contract, answered = run(scenario)
    [event] = box.events
    event_id = event["event_descriptor"]["event_id"]
    assert event_id == mapping.event_id_for(contract["_id"], box.client.ven_id)
    assert {s["signal_name"] for s in event["event_signals"]} == {"SIMPLE", "LOAD_DISPATCH"}
    dispatch = next(s for s in event["event_signals"] if s["signal_name"] == "LOAD_DISPATCH")
    assert dispatch["intervals"][0]["signal_payload"] == -2.0  # "down": draw 2 kW less
    assert event["active_period"]["dtstart"] == mapping.parse_moment(contract["start"])
    assert event["active_period"]["duration"] == timedelta(minutes=30)
    assert {"ven_id": box.client.ven_id} in event["targets"]
    assert {"resource_id": "heat-pump"} in event["targets"]
    assert (answered["opt"], answered["event_id"]) == (opt, event_id)
    assert world.prosumer.item("contracts", contract["_id"])["ven_response"] == answered


def test_a_cancelled_contract_cancels_the_event(world, bridge):
    enrolment = world.enrol("box-7")

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            contract = await call(world.contract_on, box.device_id("boiler"))
            await eventually(lambda: box.events)
            await call(world.aggregator.patch, "contracts", contract["_id"], {"status": "cancelled"})
            await eventually(lambda: box.updates)
            return box

    box = run(scenario)
    [update] = box.updates
    assert update["event_descriptor"]["event_id"] == box.events[0]["event_descriptor"]["event_id"]
    assert update["event_descriptor"]["event_status"] == "cancelled"
    assert update["event_descriptor"]["modification_number"] == 1
    assert not bridge.contract_events.sent


def test_a_restarted_bridge_resends_nothing_twice_and_still_cancels(world, registry, gateway):
    enrolment = world.enrol("box-8")
    port = free_port()
    first = start_bridge(registry, gateway, port)
    second = None

    async def scenario():
        nonlocal second
        async with SmartBox(first.url, enrolment, resources=("meter",)) as box:
            contract = await call(world.contract_on, box.device_id("meter"))
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            before = await call(world.aggregator.item, "contracts", contract["_id"])
            await asyncio.to_thread(first.stop)
            second = await asyncio.to_thread(start_bridge, registry, gateway, port)
            # The box is asked to re-register; the watcher queues the same event again,
            # the box answers it as before, and the contract is left as it was.
            event_id = answered["event_id"]
            await eventually(lambda: event_id in second.opts.answered)
            unchanged = world.aggregator.item("contracts", contract["_id"])
            await call(world.aggregator.patch, "contracts", contract["_id"], {"status": "cancelled"})
            await eventually(lambda: box.updates)
            return box, before, unchanged

    try:
        box, before, unchanged = run(scenario)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert len(box.events) == 1  # on_event ran once for the contract
    assert unchanged["_etag"] == before["_etag"]  # the repeated optIn was not written again
    assert box.updates[0]["event_descriptor"]["event_status"] == "cancelled"


# -- the bridge as its own process -----------------------------------------------------


def test_run_py_bridge_serves_the_vtn_as_its_own_process(world, registry, instance_path):
    enrolment = world.enrol("box-9", resources=HINTS)
    port = free_port()
    env = {
        **os.environ,
        "INSTANCE_PATH": instance_path,
        "OPENADR_POLL_SECONDS": "1",
        "OPENADR_WATCH_SECONDS": "0.3",
        "PUBLIC_URL": registry.url,
    }
    process = subprocess.Popen(
        [sys.executable, "run.py", "bridge", "--vtn-port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    vtn_url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"

    async def scenario():
        await eventually(lambda: _listening(port), timeout=15)
        async with SmartBox(vtn_url, enrolment, resources=("heat-pump",)) as box:
            contract = await call(world.contract_on, box.device_id("heat-pump"))
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            return box, answered

    try:
        box, answered = run(scenario, timeout=30)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert [d["device_name"] for d in world.prosumer.items("devices")] == ["Heat pump"]
    assert answered["opt"] == "optIn" and len(box.events) == 1


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_bridge_config_reads_the_environment():
    config = BridgeConfig.from_env(
        {
            "PUBLIC_URL": "http://registry:5000",
            "OPENADR_PORT": "9090",
            "OPENADR_WATCH_SECONDS": "2.5",
            "OPENADR_CLIENT_ID": "gw",
        },
        host="0.0.0.0",
    )
    assert (config.api_url, config.port, config.watch_seconds, config.client_id, config.host) == (
        "http://registry:5000",
        9090,
        2.5,
        "gw",
        "0.0.0.0",
    )
    assert BridgeConfig.from_env({"PUBLIC_URL": "http://a", "OPENADR_API_URL": "http://b"}).api_url == "http://b"


# -- pure mapping ------------------------------------------------------------------------


def test_device_and_event_ids_are_stable_and_distinct():
    ven_id = str(uuid.uuid4())
    assert mapping.device_id_for(ven_id, "a") == mapping.device_id_for(ven_id, "a")
    assert mapping.device_id_for(ven_id, "a") != mapping.device_id_for(ven_id, "b")
    assert len(mapping.device_id_for(ven_id, "a")) == 36
    assert mapping.event_id_for("c1", ven_id) == mapping.event_id_for("c1", ven_id)
    assert mapping.event_id_for("c1", ven_id) != mapping.event_id_for("c2", ven_id)


@pytest.mark.parametrize(
    "unit, scale, factor",
    [
        ("W", "none", 0.001),
        ("W", "k", 1.0),
        ("W", "M", 1000.0),
        ("kW", None, 1.0),
        ("J/s", "none", 0.001),
        ("J/s", "k", 1.0),
        ("MW", "none", 1000.0),
        ("W", "m", 1e-6),
        ("V", "none", None),
        ("W", "bogus", None),
        ("hp", "none", None),
    ],
)
def test_kilowatt_factor(unit, scale, factor):
    expected = None if factor is None else pytest.approx(factor)
    assert mapping.kilowatt_factor(unit, scale) == expected


@pytest.mark.parametrize(
    "direction, names, delta", [("down", ["SIMPLE", "LOAD_DISPATCH"], -2.0), ("up", ["LOAD_DISPATCH"], 2.0)]
)
def test_contract_signals_follow_the_registrys_direction(direction, names, delta):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    contract = {
        "_id": "c1",
        "start": format_eve_date(start),
        "direction": direction,
        "end": format_eve_date(start + timedelta(hours=1)),
        "power_kw": 2,
    }
    signals = mapping.contract_signals(contract)
    assert [s.signal_name for s in signals] == names
    assert signals[-1].intervals[0].signal_payload == delta
    assert signals[-1].intervals[0].duration == timedelta(hours=1)


def test_empty_contract_window_is_refused():
    with pytest.raises(ValueError):
        mapping.contract_signals(
            {"_id": "c", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T10:00:00Z", "power_kw": 1}
        )


AT = datetime(2030, 1, 1, tzinfo=UTC)


def answers(*steps: tuple[str, str, str]) -> dict | None:
    """The contract's ven_response after (ven_id, event_id, opt) answers, a minute apart."""
    response = None
    for minute, (ven_id, event_id, opt) in enumerate(steps):
        response = mapping.answer_with(response, ven_id, event_id, opt, AT + timedelta(minutes=minute)) or response
    return response


@pytest.mark.parametrize(
    "steps, shown, kept",
    [
        ([("v1", "e1", "optIn")], "optIn", 1),
        ([("v1", "e1", "optIn"), ("v1", "e1", "optIn")], "optIn", 1),  # a repeat is not a change
        ([("v1", "e1", "optIn"), ("v1", "e1", "optOut")], "optOut", 2),  # the VEN changed its mind
        ([("v1", "e1", "optOut"), ("v1", "e1", "optIn")], "optIn", 2),  # and back: the latest wins
        ([("v1", "e1", "optOut"), ("v2", "e2", "optIn")], "optOut", 2),  # another VEN's optOut stands
        ([("v1", "e1", "optOut"), ("v2", "e2", "optIn"), ("v1", "e1", "optIn")], "optIn", 3),
        ([("v1", "e1", "optIn"), ("v1", "e1", "optOut"), ("v1", "e1", "optIn")], "optIn", 3),
    ],
)
def test_the_contract_shows_each_vens_latest_answer_and_keeps_the_history(steps, shown, kept):
    response = answers(*steps)
    assert response["opt"] == shown
    assert len(response["history"]) == kept
    assert [entry["at"] for entry in response["history"]] == sorted(entry["at"] for entry in response["history"])
    assert all(entry["at"].endswith("Z") for entry in response["history"])


def test_a_repeated_answer_changes_nothing_and_an_old_record_seeds_the_history():
    first = answers(("v1", "e1", "optIn"))
    assert mapping.answer_with(first, "v1", "e1", "optIn", AT + timedelta(hours=1)) is None
    legacy = {"opt": "optIn", "event_id": "e1", "at": "2030-01-01T00:00:00Z"}  # no history yet
    changed = mapping.answer_with(legacy, "v1", "e1", "optOut", AT + timedelta(hours=1))
    assert [entry["opt"] for entry in changed["history"]] == ["optIn", "optOut"]


def test_the_history_keeps_the_newest_answers():
    flips = [("v1", "e1", "optOut" if i % 2 else "optIn") for i in range(mapping.HISTORY_LIMIT + 7)]
    response = answers(*flips)
    assert len(response["history"]) == mapping.HISTORY_LIMIT
    assert response["history"][-1]["opt"] == flips[-1][2] == response["opt"]


@pytest.mark.parametrize(
    "text, why",
    [
        ("2030-01-01T00:00:00Z", None),
        ("2030-01-01T00:00:00.250Z", None),
        ("2030-01-01T00:00:00", "no time zone"),
        ("2029-12-31T23:00:00-01:00", None),
        ("1990-01-01T00:00:00Z", "too far"),
        ("2060-01-01T00:00:00Z", "too far"),
        ("2030-01-01T01:30:00Z", "too far"),
        ("-2030-01-01T00:00:00Z", "not a date-time"),
    ],
)
def test_which_reading_times_are_accepted(text, why):
    if why is None:
        moment = mapping.reading_time(text, AT)
        assert moment.tzinfo is not None and abs(moment - AT) < timedelta(seconds=1)
    else:
        with pytest.raises(ValueError, match=why):
            mapping.reading_time(text, AT)
