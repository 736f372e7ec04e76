"""The VTN as the raw-XML tests see it (tests/test_openadr_*.py, tests/test_vtn_fuzz.py):
the ``vtn`` fixture (the bridge's URL), a VEN enrolled through the API that speaks
raw XML (also one with a metered resource), a snapshot of everything a VEN could
write to, the kilowatts stored for a VEN's resource, the VTN's count of refused
readings, and a check that the VTN still answers."""

from __future__ import annotations

import time

import pytest
import requests

from registry.openadr import mapping
from registry.ops.metrics import PROCESS
from tests.support.oadr_messages import XML_HEADERS, query_registration
from tests.support.openadr_world import World
from tests.support.raw_ven import RawVen


@pytest.fixture
def vtn(bridge) -> str:
    return bridge.url


def enrolled_ven(world: World, vtn_url: str, name: str) -> RawVen:
    enrolment = world.enrol(name)
    return RawVen(vtn_url, name, enrolment["secret"])


def store_snapshot(world: World) -> dict[str, list[dict]]:
    """Everything a VEN could write to, as an admin reads it."""
    return {
        resource: sorted(world.admin.items(resource), key=lambda d: str(d["_id"]))
        for resource in ("vens", "devices", "measurements", "contracts")
    }


def assert_alive(vtn_url: str) -> None:
    """The VTN still answers (any well-formed refusal will do)."""
    answer = requests.post(f"{vtn_url}/EiRegisterParty", data=query_registration(), timeout=5, headers=XML_HEADERS)
    assert answer.status_code == 401, answer.text


REFUSED = "der_registry_openadr_readings_refused_total"


def metered(world: World, vtn: str, name: str, **unit: str) -> tuple[RawVen, str]:
    """A registered raw VEN with one RealPower resource "meter" (rID r-1), and the
    reportRequestID the VTN asked for its readings."""
    ven = enrolled_ven(world, vtn, name).register()
    return ven, ven.register_report("meter", "r-1", **unit)


def stored_kw(world: World, ven: RawVen, resource: str = "meter") -> list[float]:
    device_id = mapping.device_id_for(ven.ven_id, resource)
    return sorted(m["power_kw"] for m in world.admin.items("measurements", device_id=device_id))


def refused(reason: str) -> float:
    return PROCESS.get_sample_value(REFUSED, {"reason": reason}) or 0.0


def settle() -> None:
    time.sleep(0.5)  # the bridge flushes telemetry every 0.2 s in these tests
