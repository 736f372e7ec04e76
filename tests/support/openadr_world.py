"""The loopback world the OpenADR bridge is tested in, shared by the
tests/test_openadr_*.py modules and tests/test_vtn_fuzz.py.

openleadr's own VEN client (a "smart box", :class:`SmartBox`) talks to our VTN;
the VTN talks to the real Eve app, served by werkzeug on a loopback port, through
a ``FlakyGateway`` proxy that a test can take down. Users (a prosumer, its
aggregator, another aggregator; :class:`Party`) act and check through the REST
API with their own tokens, as they would in production. Fixtures: ``registry``,
``world``, ``gateway``, ``bridge``."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from openleadr import OpenADRClient

from registry.openadr import ApiClient, MeasurementBuffer, build_vtn, mapping
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


ROOT = Path(__file__).resolve().parents[2]  # the repository


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


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
