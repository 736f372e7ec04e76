"""The VTN with a gateway that is not openleadr (issue 13): raw 2.0b XML over real HTTP.

Every message is written from the 2.0b profile (tests/support/oadr_messages.py), POSTed
by a raw VEN (tests/support/raw_ven.py) to the bridge serving the real registry on
loopback, and every answer is validated against the 2.0b XSD that openleadr ships
(and must not carry the text ``None``). What the registry stored is read back
through its REST API, as its users (and the bridge's service token) read it.

This part: readings. A reading is stored once per device and timestamp (a report
sent twice, two intervals with the same dtstart, a bulk POST resent); every power
unit becomes kilowatts, a unit that is not power is refused or not requested, and
no answer ever says ``None``."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from lxml import etree

from tests.support.loopback import wait_until
from tests.support.oadr_messages import (
    NS,
    cancel_party_registration,
    create_party_registration,
    created_event,
    now,
    poll,
    power_description,
    query_registration,
    register_report,
    register_reports,
    request_event,
    stamp,
    update_report,
)
from tests.support.openadr_world import bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import declined, outcome, valid_answer
from tests.support.vtn_checks import enrolled_ven, metered, settle, store_snapshot, stored_kw, vtn  # noqa: F401  (fixtures)

# -- 3. a reading is stored once per device and timestamp ---------------------------


def test_the_same_update_report_twice_is_stored_once(world, vtn):
    ven, request = metered(world, vtn, "box-dup")
    start = now() - timedelta(minutes=5)
    body = update_report(ven.ven_id, request, "r-1", [(start, "1000"), (start + timedelta(minutes=1), "2000")])
    for _ in range(2):
        assert outcome(valid_answer(ven.post("EiReport", body))) == (200, "OK: 2 reading(s) accepted")
    settle()
    assert stored_kw(world, ven) == [1.0, 2.0]


def test_two_intervals_with_the_same_dtstart_make_one_reading(world, vtn):
    ven, request = metered(world, vtn, "box-dup")
    moment = now() - timedelta(minutes=5)
    body = update_report(ven.ven_id, request, "r-1", [(moment, "1000"), (moment, "1500")])
    valid_answer(ven.post("EiReport", body))
    settle()
    assert len(stored_kw(world, ven)) == 1


def test_a_bulk_post_resent_after_its_answer_was_lost_is_stored_once(world, bridge, gateway, vtn):
    ven, request = metered(world, vtn, "box-dup")
    start = now() - timedelta(minutes=30)
    readings = [(start + timedelta(minutes=i), str(1000 + i)) for i in range(20)]
    gateway.set_mode("lose-answer")  # the registry stores the batch, the bridge sees a 503
    valid_answer(ven.post("EiReport", update_report(ven.ven_id, request, "r-1", readings)))
    wait_until(lambda: gateway.forwarded.get("POST /measurements", 0) >= 1, 10)
    time.sleep(0.3)
    assert bridge.buffer.pending == 20  # kept for re-sending
    gateway.set_mode("up")
    wait_until(lambda: bridge.buffer.pending == 0, 10)
    assert gateway.forwarded["POST /measurements"] >= 2
    assert stored_kw(world, ven) == [1.0 + i / 1000 for i in range(20)]


# -- 8. units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit, value",
    [
        ({"units": "W", "scale": "none"}, "1500"),
        ({"units": "W", "scale": "k"}, "1.5"),
        ({"units": "W", "scale": "M"}, "0.0015"),
        ({"units": "W", "scale": "m"}, "1500000"),
        ({"units": "J/s", "scale": "none"}, "1500"),
        ({"units": "J/s", "scale": "k"}, "1.5"),
        ({"item": "customUnit", "units": "kW", "scale": "none"}, "1.5"),
        ({"item": "customUnit", "units": "MW", "scale": "none"}, "0.0015"),
        ({"item": "customUnit", "units": "W", "scale": "k"}, "1.5"),
    ],
    ids=lambda v: "-".join(v.values()) if isinstance(v, dict) else v,
)
def test_every_power_unit_becomes_kilowatts(world, vtn, unit, value):
    ven, request = metered(world, vtn, "box-w", **unit)
    answer = ven.post("EiReport", update_report(ven.ven_id, request, "r-1", [(now() - timedelta(minutes=1), value)]))
    assert outcome(valid_answer(answer))[0] == 200
    settle()
    assert stored_kw(world, ven) == [pytest.approx(1.5)]


@pytest.mark.parametrize("units", ["hp", "kWh", "A"])
def test_a_real_power_reading_in_a_unit_that_is_not_power_refuses_the_registration(world, vtn, units):
    ven = enrolled_ven(world, vtn, "box-w").register()
    before = store_snapshot(world)
    body = register_reports(
        ven.ven_id,
        [power_description("boiler", "r-0"), power_description("meter", "r-1", item="customUnit", units=units)],
    )
    description = declined(ven.post("EiReport", body), 461, "oadrRegisteredReport")
    assert f"RealPower in '{units}'" in description and "W, J/s, kW or MW" in description
    assert store_snapshot(world) == before  # not even the boiler: the registration is refused whole


def test_readings_that_are_not_power_are_not_requested_and_the_ven_is_told(world, vtn):
    ven = enrolled_ven(world, vtn, "box-v").register()
    body = register_reports(
        ven.ven_id,
        [
            power_description("meter", "r-1"),
            power_description("meter", "r-2", item="voltage", units="V", description="Voltage"),
            power_description("meter", "r-3", item="energyReal", units="Wh", description="RealEnergy"),
        ],
    )
    answer = valid_answer(ven.post("EiReport", body))
    code, description = outcome(answer)
    assert code == 200 and description.startswith("OK: 1 reading(s) requested; not requested:")
    assert "rID r-2: Voltage is not stored" in description and "rID r-3: RealEnergy" in description
    assert [e.text for e in answer.iterfind(".//ei:specifierPayload/ei:rID", NS)] == ["r-1"]


def test_no_answer_ever_says_none(world, vtn):
    """Every answer type, for a VEN that leaves out whatever the schema lets it."""
    ven, request = metered(world, vtn, "box-z")
    bodies = [
        ("EiRegisterParty", query_registration()),
        ("EiRegisterParty", create_party_registration(None, pull=None, transport_address=None)),
        ("EiReport", register_report(None, "x", "r-x")),
        ("EiReport", update_report(None, request, "r-1", [(now(), "1")])),
        ("EiReport", update_report(ven.ven_id, request, "r-1", [(stamp(now())[:-1], "1")])),
        ("EiEvent", created_event(ven.ven_id, "e", "optIn")),
        ("EiEvent", request_event(ven.ven_id)),
        ("OadrPoll", poll(ven.ven_id)),
        ("EiRegisterParty", cancel_party_registration(None, "nope")),
    ]
    for service, body in bodies:
        answer = ven.post(service, body)
        root = valid_answer(answer)  # asserts the XSD and that no element says None
        assert etree.QName(root).localname == "oadrPayload"
