"""The OpenADR bridge, end to end: openleadr's own VEN client over loopback HTTP
talks to our VTN, which talks to a registry REST API over loopback HTTP.

The registry here is ``fake_registry_api`` — an in-memory FAKE of the REST
API. Every other fixture only needs a :class:`RegistryEndpoint` (a URL and two
sets of client credentials) and reaches the registry over HTTP, so the real
Eve app served on loopback can replace the fake by overriding ``registry_api``
(and ``RegistryProbe.create_contract``, which takes a shortcut through POST).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
import requests
from openleadr import OpenADRClient

from registry.openadr import ApiClient, MeasurementBuffer, build_vtn, mapping
from registry.openadr.api_client import format_eve_date
from registry.openadr.testing import FlakyGateway, free_port, serve_fake_registry

ACCOUNT = "4f0c7a52-9d1e-4b36-8f0a-2c5d6e7f8a9b"
AGGREGATOR = "coop-aggregator"
HINTS = [{"resource_id": "heat-pump", "device_class": "hvacDevice", "device_type": "Demand",
          "device_name": "Heat pump", "max_capacity": 3.5}]
TEST_TIMEOUT = 30.0


@dataclass
class RegistryEndpoint:
    url: str
    service: tuple[str, str]  # client credentials the bridge uses (service role)
    admin: tuple[str, str]    # client credentials the tests use to seed and inspect


class RegistryProbe:
    """The tests' own view of the registry, over REST with an admin token."""

    def __init__(self, endpoint: RegistryEndpoint) -> None:
        self.url = endpoint.url
        answer = requests.post(f"{self.url}/oauth/token", auth=endpoint.admin,
                               data={"grant_type": "client_credentials"}, timeout=5)
        answer.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def items(self, resource: str, **where: Any) -> list[dict]:
        found: list[dict] = []
        for page in itertools.count(1):
            answer = self.session.get(f"{self.url}/{resource}", timeout=5, params={
                "where": json.dumps(where), "max_results": 50, "page": page})
            answer.raise_for_status()
            found += answer.json()["_items"]
            if len(found) >= answer.json()["_meta"]["total"]:
                return found

    def item(self, resource: str, lookup: str) -> dict:
        answer = self.session.get(f"{self.url}/{resource}/{lookup}", timeout=5)
        answer.raise_for_status()
        return answer.json()

    def insert(self, resource: str, document: dict) -> dict:
        answer = self.session.post(f"{self.url}/{resource}", json=document, timeout=5)
        assert answer.status_code == 201, answer.text
        return self.item(resource, answer.json()["_id"]) if resource != "devices" else answer.json()

    def patch(self, resource: str, lookup: str, changes: dict) -> None:
        etag = self.item(resource, lookup)["_etag"]
        answer = self.session.patch(f"{self.url}/{resource}/{lookup}", json=changes, timeout=5,
                                    headers={"If-Match": etag})
        assert answer.status_code == 200, answer.text

    def enrol(self, ven_name: str, resources: list[dict] | None = None,
              status: str = "enrolled") -> dict:
        return self.insert("vens", {"ven_name": ven_name, "account_id": ACCOUNT,
                                    "aggregator_id": AGGREGATOR, "registration_status": status,
                                    "resources": resources or []})

    def create_contract(self, device_ids: list[str], direction: str = "up") -> dict:
        now = datetime.now(timezone.utc)
        return self.insert("contracts", {
            "device_ids": device_ids, "offers": [], "direction": direction, "power_kw": 2.0,
            "start": format_eve_date(now + timedelta(minutes=1)),
            "end": format_eve_date(now + timedelta(minutes=16)), "status": "active"})


@pytest.fixture
def fake_registry_api():
    """A FAKE of the registry REST API (in memory, aiohttp on loopback)."""
    _, served = serve_fake_registry()
    yield RegistryEndpoint(served.url, ("openadr-bridge", "bridge-secret"), ("admin", "admin-secret"))
    served.close()


@pytest.fixture
def registry_api(fake_registry_api):
    """The registry the bridge talks to; override with the real Eve app on loopback."""
    return fake_registry_api


@pytest.fixture
def registry(registry_api):
    return RegistryProbe(registry_api)


@pytest.fixture
def gateway(registry_api):
    """Between bridge and registry, so a test can take the registry away for a while."""
    proxy = FlakyGateway(registry_api.url)
    yield proxy
    proxy.close()


@pytest.fixture
def bridge(registry_api, gateway):
    api = ApiClient(gateway.url, client_id=registry_api.service[0],
                    client_secret=registry_api.service[1], retry_for=3.0)
    vtn = build_vtn(api, port=free_port(), poll_interval=timedelta(seconds=1),
                    sampling_interval=timedelta(seconds=1),
                    buffer=MeasurementBuffer(api, flush_interval=0.2))
    vtn.start_in_thread()
    yield vtn
    vtn.stop()


class SmartBox:
    """A home gateway: openleadr's VEN client with one power report per resource."""

    def __init__(self, vtn_url: str, ven_name: str, resources=("heat-pump", "boiler"),
                 opt: str = "optIn") -> None:
        self.client = OpenADRClient(ven_name=ven_name, vtn_url=vtn_url)
        self.produced: dict[str, list[float]] = {resource: [] for resource in resources}
        self.counter = itertools.count(1000)
        self.events: list[dict] = []
        self.updates: list[dict] = []
        self.opt = opt
        for resource in resources:
            self.client.add_report(callback=lambda r=resource: self.read(r), resource_id=resource,
                                   measurement="real_power", unit="W",
                                   sampling_rate=timedelta(seconds=1),
                                   report_duration=timedelta(hours=1))
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

    async def __aenter__(self) -> "SmartBox":
        await self.client.run()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.stop()


def run(scenario: Callable, timeout: float = TEST_TIMEOUT) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll a (blocking) check off the event loop until it returns something truthy."""
    loop_deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if asyncio.get_running_loop().time() > loop_deadline:
            raise AssertionError(f"not reached within {timeout}s: {check}")
        await asyncio.sleep(0.1)


def ven_devices(registry: RegistryProbe, ven_id: str) -> dict[str, dict]:
    return {device["device_name"]: device for device in registry.items("devices", ven_id=ven_id)}


# -- registration ----------------------------------------------------------------


def test_enrolled_ven_registers_and_its_ven_id_is_recorded(registry, bridge):
    enrolment = registry.enrol("box-1")

    async def scenario():
        async with SmartBox(bridge.url, "box-1", resources=()) as box:
            return box.client.ven_id, box.client.registration_id

    ven_id, registration_id = run(scenario)
    assert registration_id and str(uuid.UUID(ven_id)) == ven_id
    recorded = registry.item("vens", enrolment["_id"])
    assert recorded["ven_id"] == ven_id
    assert recorded["registration_status"] == "registered"
    assert recorded["registered_at"]


@pytest.mark.parametrize("enrolled_as", [None, "cancelled"])
def test_unknown_or_cancelled_ven_is_refused(registry, bridge, enrolled_as):
    if enrolled_as:
        registry.enrol("intruder", status=enrolled_as)

    async def scenario():
        box = SmartBox(bridge.url, "intruder")
        await box.client.run()  # openleadr stops the client when it gets no registration id
        return box.client.registration_id, box.client.ven_id

    assert run(scenario) == (None, None)
    assert all(not v.get("ven_id") for v in registry.items("vens"))
    assert registry.items("devices") == []


def test_ven_unknown_to_a_restarted_vtn_is_asked_to_reregister(registry, bridge):
    registry.enrol("box-8")

    async def scenario():
        async with SmartBox(bridge.url, "box-8", resources=("meter",)) as box:
            ven_id = box.client.ven_id
            bridge.loop.call_soon_threadsafe(bridge.sessions.clear)  # as after a restart
            await eventually(lambda: ven_id in bridge.sessions)  # next poll re-registers
            device_id = mapping.device_id_for(ven_id, "meter")
            seen = len(registry.items("measurements", device_id=device_id))
            await eventually(lambda: len(registry.items("measurements", device_id=device_id)) > seen)
            return ven_id, box.client.ven_id

    before, after = run(scenario)
    assert before == after
    assert len(registry.items("devices")) == 1


# -- report registration -> devices ----------------------------------------------


def test_report_registration_creates_one_device_per_resource(registry, bridge):
    registry.enrol("box-2", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, "box-2") as box:
            return box.client.ven_id

    ven_id = run(scenario)
    devices = ven_devices(registry, ven_id)
    assert sorted(devices) == ["Heat pump", "boiler"]
    hinted, plain = devices["Heat pump"], devices["boiler"]
    assert hinted["device_id"] == mapping.device_id_for(ven_id, "heat-pump")
    assert (hinted["device_class"], hinted["device_type"], hinted["max_capacity"]) == \
        ("hvacDevice", "Demand", 3.5)
    assert (plain["device_class"], plain["device_type"], plain["availability"]) == \
        ("otherLoad", "Demand", "yes")
    for device in devices.values():
        assert (device["account_id"], device["aggregator_id"]) == (ACCOUNT, AGGREGATOR)


def test_reregistration_updates_devices_without_duplicating_them(registry, bridge):
    enrolment = registry.enrol("box-3", resources=HINTS)

    async def register_once():
        async with SmartBox(bridge.url, "box-3") as box:
            return box.client.ven_id

    ven_id = run(register_once)
    first = ven_devices(registry, ven_id)
    # The prosumer switches the boiler off the market; the operator renames the heat pump.
    registry.patch("devices", first["boiler"]["device_id"], {"availability": "no"})
    registry.patch("vens", enrolment["_id"],
                   {"resources": [{**HINTS[0], "device_name": "Heat pump (attic)"}]})

    assert run(register_once) == ven_id  # a new client for the same box keeps its ven_id
    second = ven_devices(registry, ven_id)
    assert len(registry.items("devices")) == 2
    assert sorted(d["device_id"] for d in second.values()) == \
        sorted(d["device_id"] for d in first.values())
    assert "Heat pump (attic)" in second
    assert second["boiler"]["availability"] == "no"  # not reset by the bridge's defaults


# -- telemetry -> measurements ------------------------------------------------------


def test_telemetry_reports_become_batched_measurements(registry, bridge, gateway):
    registry.enrol("box-4")

    async def scenario():
        async with SmartBox(bridge.url, "box-4") as box:
            device_id = mapping.device_id_for(box.client.ven_id, "boiler")
            await eventually(lambda: len(registry.items("measurements", device_id=device_id)) >= 3)
            return box

    box = run(scenario)
    stored = registry.items("measurements")
    kilowatts = {m["power_kw"] for m in stored}
    produced = {w / 1000 for values in box.produced.values() for w in values}
    assert kilowatts <= produced and len(kilowatts) == len(stored)
    assert all(m["timestamp"].endswith(" GMT") for m in stored)
    # Both resources' readings travel together: fewer bulk POSTs than measurements.
    assert gateway.forwarded["POST /measurements"] < len(stored)


@pytest.mark.parametrize("outage", ["503", "refuse"])
def test_registry_outage_loses_no_telemetry(registry, bridge, gateway, outage):
    registry.enrol("box-5")

    async def scenario():
        async with SmartBox(bridge.url, "box-5", resources=("meter",)) as box:
            device_id = mapping.device_id_for(box.client.ven_id, "meter")
            await eventually(lambda: registry.items("measurements", device_id=device_id))
            gateway.set_mode(outage)
            await asyncio.sleep(3.0)  # readings keep arriving at the VTN meanwhile
            assert bridge.buffer.pending >= 2
            gateway.set_mode("up")
            after_outage = box.produced["meter"][-1] / 1000
            await eventually(lambda: any(m["power_kw"] > after_outage for m in
                                         registry.items("measurements", device_id=device_id)))
            return box

    box = run(scenario)
    stored = sorted(m["power_kw"] for m in registry.items("measurements"))
    produced = [w / 1000 for w in box.produced["meter"]]
    # Every reading up to the newest stored one arrived, once and in full.
    assert stored == produced[: len(stored)]
    assert len(stored) >= 5


def test_rejected_measurement_is_dropped_and_the_rest_kept(registry_api, caplog):
    api = ApiClient(registry_api.url, client_id=registry_api.service[0],
                    client_secret=registry_api.service[1])
    probe = RegistryProbe(registry_api)
    device_id = mapping.device_id_for(str(uuid.uuid4()), "meter")
    probe.insert("devices", {"device_id": device_id, "device_name": "meter", "account_id": ACCOUNT,
                             "ven_id": str(uuid.uuid4()), "aggregator_id": AGGREGATOR,
                             "device_class": "otherLoad", "availability": "yes"})
    now = format_eve_date(datetime.now(timezone.utc))
    good = [{"device_id": device_id, "timestamp": now, "power_kw": float(i)} for i in range(4)]
    bad = {"device_id": str(uuid.uuid4()), "timestamp": now, "power_kw": 1.0}  # no such device

    async def scenario():
        async with api:
            buffer = MeasurementBuffer(api)
            buffer.add(good[:2] + [bad] + good[2:])
            assert await buffer.flush_once()
            return buffer

    with caplog.at_level(logging.ERROR, logger="registry.openadr"):
        buffer = run(scenario)
    assert (buffer.sent, buffer.dropped, buffer.pending) == (4, 1, 0)
    assert sorted(m["power_kw"] for m in probe.items("measurements")) == [0.0, 1.0, 2.0, 3.0]
    assert any("rejected measurement" in r.message and bad["device_id"] in r.message
               for r in caplog.records)


# -- contracts -> events -------------------------------------------------------------


@pytest.mark.parametrize("opt", ["optIn", "optOut"])
def test_contract_activation_reaches_the_ven_and_its_answer_is_recorded(registry, bridge, opt):
    registry.enrol("box-6", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, "box-6", opt=opt) as box:
            device_id = mapping.device_id_for(box.client.ven_id, "heat-pump")
            contract = registry.create_contract([device_id], direction="up")
            event_ids = await asyncio.wrap_future(bridge.activate_contract(contract))
            await eventually(lambda: box.events)
            recorded = await eventually(
                lambda: registry.item("contracts", contract["_id"]).get("ven_response"))
            return box, contract, event_ids, recorded

    box, contract, event_ids, recorded = run(scenario)
    [event] = box.events
    assert [event["event_descriptor"]["event_id"]] == event_ids
    assert {s["signal_name"] for s in event["event_signals"]} == {"SIMPLE", "LOAD_DISPATCH"}
    dispatch = next(s for s in event["event_signals"] if s["signal_name"] == "LOAD_DISPATCH")
    assert dispatch["intervals"][0]["signal_payload"] == -2.0
    assert event["active_period"]["duration"] == timedelta(minutes=15)
    assert {"ven_id": box.client.ven_id} in event["targets"]
    assert {"resource_id": "heat-pump"} in event["targets"]
    assert recorded["opt"] == opt and recorded["event_id"] == event_ids[0] and recorded["at"]


def test_contract_cancellation_cancels_the_event(registry, bridge):
    registry.enrol("box-7")

    async def scenario():
        async with SmartBox(bridge.url, "box-7") as box:
            device_id = mapping.device_id_for(box.client.ven_id, "boiler")
            contract = registry.create_contract([device_id], direction="down")
            await asyncio.wrap_future(bridge.activate_contract(contract))
            await eventually(lambda: box.events)
            cancelled = await asyncio.wrap_future(bridge.cancel_contract(contract["_id"]))
            await eventually(lambda: box.updates)
            return box, cancelled

    box, cancelled = run(scenario)
    assert cancelled == 1
    [update] = box.updates
    assert update["event_descriptor"]["event_status"] == "cancelled"
    assert update["event_descriptor"]["modification_number"] == 1
    assert [s["signal_name"] for s in update["event_signals"]] == ["LOAD_DISPATCH"]


# -- pure mapping ----------------------------------------------------------------------


def test_device_id_is_stable_and_distinct_per_resource():
    ven_id = str(uuid.uuid4())
    assert mapping.device_id_for(ven_id, "a") == mapping.device_id_for(ven_id, "a")
    assert mapping.device_id_for(ven_id, "a") != mapping.device_id_for(ven_id, "b")
    assert len(mapping.device_id_for(ven_id, "a")) == 36


@pytest.mark.parametrize("unit, scale, factor", [
    ("W", "none", 0.001), ("W", "k", 1.0), ("W", "M", 1000.0), ("kW", None, 1.0),
    ("V", "none", None), ("W", "bogus", None)])
def test_kilowatt_factor(unit, scale, factor):
    assert mapping.kilowatt_factor(unit, scale) == factor


@pytest.mark.parametrize("direction, names, delta", [
    ("up", ["SIMPLE", "LOAD_DISPATCH"], -2.0), ("down", ["LOAD_DISPATCH"], 2.0)])
def test_contract_signals_follow_direction(direction, names, delta):
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    contract = {"_id": "c1", "start": format_eve_date(start), "direction": direction,
                "end": (start + timedelta(hours=1)).isoformat(), "power_kw": 2}
    signals = mapping.contract_signals(contract)
    assert [s.signal_name for s in signals] == names
    assert signals[-1].intervals[0].signal_payload == delta
    assert signals[-1].intervals[0].duration == timedelta(hours=1)


def test_empty_contract_window_is_refused():
    with pytest.raises(ValueError):
        mapping.contract_signals({"_id": "c", "start": "2030-01-01T10:00:00Z",
                                  "end": "2030-01-01T10:00:00Z", "power_kw": 1})
