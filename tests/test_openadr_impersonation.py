"""The VTN under attack, through its real surface: raw XML over loopback HTTP
(tests/support/openadr_world.py, tests/support/vtn_checks.py). Messages are written
by hand from the OpenADR 2.0b profile (tests/support/oadr_messages.py, not by
openleadr's client) and POSTed with ``requests``. Every 200 answer is checked
against the 2.0b XSD that openleadr ships.

This part: a registered VEN that tries to speak for another one (its reports,
polls, registration, events, devices) is answered in OpenADR terms (452) and the
registry's store is unchanged; a cancelled enrolment stops its registered VEN."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

import pytest
from lxml import etree
from openleadr.messaging import XML_SCHEMA

from registry.openadr import mapping
from registry.openadr.inbound import hardened_parser
from tests.support.loopback import wait_until
from tests.support.oadr_messages import (
    NS,
    cancel_party_registration,
    create_party_registration,
    created_event,
    now,
    poll,
    register_report,
    update_report,
)
from tests.support.openadr_world import AGGREGATOR, SmartBox, bridge, call, eventually, gateway, registry, run, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import RawVen, declined, message_type, outcome, text_of, valid_answer
from tests.support.vtn_checks import enrolled_ven, store_snapshot, vtn  # noqa: F401  (fixtures)


@pytest.fixture
def victim_and_attacker(world, vtn) -> tuple[RawVen, str, RawVen, str]:
    """Two registered VENs with one metered resource each, and their reportRequestIDs."""
    victim = enrolled_ven(world, vtn, "victim").register()
    victim_request = victim.register_report("meter", "r-victim")
    attacker = enrolled_ven(world, vtn, "attacker").register()
    attacker_request = attacker.register_report("meter", "r-attacker")
    wait_until(lambda: len(world.admin.items("devices")) == 2, 10)
    return victim, victim_request, attacker, attacker_request


def test_telemetry_of_a_registered_ven_lands_on_its_own_device(world, victim_and_attacker):
    victim, victim_request, _, _ = victim_and_attacker
    moment = now() - timedelta(minutes=1)
    answer = victim.post("EiReport", update_report(victim.ven_id, victim_request, "r-victim", [(moment, "1500.0")]))
    valid_answer(answer)
    device_id = mapping.device_id_for(victim.ven_id, "meter")
    stored = wait_until(lambda: world.admin.items("measurements", device_id=device_id), 10)
    assert [m["power_kw"] for m in stored] == [1.5]


@pytest.mark.parametrize(
    "attack",
    [
        "victim's reportRequestID, own venID",
        "victim's reportRequestID, no venID",
        "victim's reportRequestID, victim's venID",
        "own reportRequestID, victim's venID",
    ],
)
def test_an_update_report_for_another_ven_stores_nothing(world, victim_and_attacker, attack):
    victim, victim_request, attacker, attacker_request = victim_and_attacker
    ven_id = {"own venID": attacker.ven_id, "no venID": None, "victim's venID": victim.ven_id}[attack.split(", ")[1]]
    report_request = victim_request if attack.startswith("victim's") else attacker_request
    r_id = "r-victim" if attack.startswith("victim's") else "r-attacker"
    before = store_snapshot(world)
    answer = attacker.post(
        "EiReport", update_report(ven_id, report_request, r_id, [(now() - timedelta(minutes=1), "99000")])
    )
    description = declined(answer, 452, "oadrUpdatedReport")
    assert ("venID" if ven_id != attacker.ven_id else "reportRequestID") in description
    time.sleep(0.5)  # the bridge flushes telemetry every 0.2 s in these tests
    assert store_snapshot(world) == before


def test_a_valid_report_openleadr_cannot_handle_gets_an_answer_not_500(world, victim_and_attacker):
    """An UpdateReport without intervals passes the XSD (openleadr itself fails on it)."""
    victim, victim_request, _, _ = victim_and_attacker
    body = update_report(victim.ven_id, victim_request, "r-victim", [(now(), "1000")])
    without_intervals = body[: body.index("<strm:intervals>")] + body[body.index("<ei:eiReportID>") :]
    assert XML_SCHEMA.validate(etree.fromstring(without_intervals.encode(), hardened_parser()))
    before = store_snapshot(world)
    answer = valid_answer(victim.post("EiReport", without_intervals))
    assert outcome(answer) == (200, "OK: 0 reading(s) accepted")
    time.sleep(0.5)
    assert store_snapshot(world) == before


@pytest.mark.parametrize("message", ["poll", "cancel registration", "register report"])
def test_messages_naming_another_vens_id_are_refused(world, victim_and_attacker, message):
    victim, _, attacker, _ = victim_and_attacker
    body = {
        "poll": poll(victim.ven_id),
        "cancel registration": cancel_party_registration(victim.ven_id, victim.registration_id),
        "register report": register_report(victim.ven_id, "meter-2", "r-2"),
    }[message]
    service = {"poll": "OadrPoll", "cancel registration": "EiRegisterParty", "register report": "EiReport"}[message]
    before = store_snapshot(world)
    answer = attacker.post(service, body)
    assert "not this VEN's" in declined(answer, 452)
    assert store_snapshot(world) == before
    valid_answer(victim.post("OadrPoll", poll(victim.ven_id)))  # the victim is still registered


def test_cancelling_with_another_vens_registration_id_is_refused(world, victim_and_attacker):
    victim, _, attacker, _ = victim_and_attacker
    before = store_snapshot(world)
    answer = attacker.post("EiRegisterParty", cancel_party_registration(attacker.ven_id, victim.registration_id))
    assert "registrationID" in declined(answer, 452, "oadrCanceledPartyRegistration")
    assert store_snapshot(world) == before
    valid_answer(attacker.post("OadrPoll", poll(attacker.ven_id)))  # both still registered
    assert message_type(valid_answer(victim.post("OadrPoll", poll(victim.ven_id)))) == "oadrResponse"


def test_a_cancelled_enrolment_stops_its_registered_ven(world, bridge, vtn):
    ven = enrolled_ven(world, vtn, "box-c").register()
    report_request = ven.register_report("meter", "r-1")
    wait_until(lambda: world.admin.items("devices"), 10)
    enrolment = world.admin.items("vens", ven_name="box-c")[0]
    world.aggregator.patch("vens", enrolment["_id"], {"registration_status": "cancelled"})
    before = store_snapshot(world)
    answer = ven.post(
        "EiReport", update_report(ven.ven_id, report_request, "r-1", [(now() - timedelta(minutes=1), "1000")])
    )
    assert "cancelled" in declined(answer, 463, "oadrUpdatedReport")
    again = ven.post("EiRegisterParty", create_party_registration("box-c"))
    assert "cancelled" in declined(again, 463, "oadrCreatedPartyRegistration")
    assert text_of(valid_answer(again), ".//ei:registrationID") is None
    time.sleep(0.5)
    assert store_snapshot(world) == before


def test_a_ven_cannot_answer_another_vens_event(world, vtn):
    victim_enrolment = world.enrol("victim")
    attacker = enrolled_ven(world, vtn, "attacker").register()

    async def scenario():
        async with SmartBox(vtn, victim_enrolment, resources=("meter",), opt="optIn") as box:
            contract = await call(world.contract_on, box.device_id("meter"))
            await eventually(lambda: box.events)
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            event_id = box.events[0]["event_descriptor"]["event_id"]
            answer = await call(attacker.post, "EiEvent", created_event(attacker.ven_id, event_id, "optOut"))
            return contract, answered, answer

    contract, answered, answer = run(scenario)
    assert "was not sent to this VEN" in declined(answer, 452, "oadrResponse")
    assert world.aggregator.item("contracts", contract["_id"])["ven_response"] == answered
    assert answered["opt"] == "optIn"


def test_a_ven_never_writes_to_a_device_it_does_not_own(world, vtn, caplog):
    """Defence in depth: should a device already exist under a VEN resource's id with
    other owners, the bridge leaves it alone and requests no readings for it."""
    ven = enrolled_ven(world, vtn, "box-d").register()
    device_id = mapping.device_id_for(ven.ven_id, "meter")
    other_account = str(uuid.uuid4())
    world.admin.post(
        "prosumers", {"account_id": other_account, "aggregator_id": AGGREGATOR, "display_name": "someone else"}
    )
    world.admin.post(
        "devices",
        {
            "device_id": device_id,
            "device_name": "their meter",
            "account_id": other_account,
            "ven_id": str(uuid.uuid4()),
            "aggregator_id": AGGREGATOR,
            "device_class": "otherLoad",
            "availability": "yes",
        },
    )
    before = store_snapshot(world)
    with caplog.at_level(logging.WARNING, logger="registry.openadr"):
        answer = valid_answer(ven.post("EiReport", register_report(ven.ven_id, "meter", "r-1")))
    assert answer.find(".//ei:reportRequestID", NS) is None  # no readings requested
    assert store_snapshot(world) == before
    assert any("not bridged" in r.getMessage() for r in caplog.records)
