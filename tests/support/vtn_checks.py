"""The VTN as the raw-XML tests see it (tests/test_openadr_*.py, tests/test_vtn_fuzz.py):
the ``vtn`` fixture (the bridge's URL), a VEN enrolled through the API that speaks
raw XML, a snapshot of everything a VEN could write to, and a check that the VTN
still answers."""

from __future__ import annotations

import pytest
import requests

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
