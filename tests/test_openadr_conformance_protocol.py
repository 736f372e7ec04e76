"""The VTN with a gateway that is not openleadr (issue 13): raw 2.0b XML over real HTTP.

Every message is written from the 2.0b profile (tests/support/oadr_messages.py), POSTed
by a raw VEN (tests/support/raw_ven.py) to the bridge serving the real registry on
loopback, and every answer is validated against the 2.0b XSD that openleadr ships
(and must not carry the text ``None``). What the registry stored is read back
through its REST API, as its users (and the bridge's service token) read it.

This part: protocol answers, not 500s (454 for readings without UTC or decades
away, 452 for messages without a venID, text/xml accepted, transport errors for no
Content-Type or oversized bodies), and scale and details (two hundred resources
in one message, ids echoed exactly, readings not requested dropped and counted,
the VTN's counters served to this machine)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests

from registry.openadr.inbound import MAX_BODY
from tests.support.oadr_messages import (
    NS,
    XML_HEADERS,
    create_party_registration,
    created_event,
    now,
    poll,
    power_description,
    register_report,
    register_reports,
    request_event,
    response,
    update_report,
)
from tests.support.openadr_world import bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import declined, message_type, outcome, text_of, valid_answer
from tests.support.vtn_checks import REFUSED, enrolled_ven, metered, refused, settle, store_snapshot, stored_kw, vtn  # noqa: F401  (fixtures)

# -- 5. protocol answers, not 500s -------------------------------------------------------


@pytest.mark.parametrize(
    "moment, why",
    [
        ("{today}T10:00:00", "no time zone"),
        ("1990-01-01T00:00:00Z", "too far from now"),
        ("2099-01-01T00:00:00Z", "too far from now"),
    ],
)
def test_readings_without_utc_or_decades_away_are_refused_with_454(world, vtn, moment, why):
    ven, request = metered(world, vtn, "box-t")
    bad = moment.format(today=now().date().isoformat())
    counted = refused("bad_time")
    readings = [(now() - timedelta(minutes=2), "1000"), (bad, "2000")]
    answer = ven.post("EiReport", update_report(ven.ven_id, request, "r-1", readings))
    description = declined(answer, 454, "oadrUpdatedReport")
    assert why in description and "nothing of this report was stored" in description
    assert refused("bad_time") == counted + 2
    settle()
    assert stored_kw(world, ven) == []


def test_a_report_registration_without_ven_id_is_refused_with_452(world, vtn):
    ven = enrolled_ven(world, vtn, "box-r").register()
    before = store_snapshot(world)
    answer = ven.post("EiReport", register_report(None, "meter", "r-1"))
    assert "venID" in declined(answer, 452, "oadrRegisteredReport")
    assert text_of(valid_answer(answer), ".//ei:venID") is None  # omitted, not "None"
    assert store_snapshot(world) == before


def test_a_created_event_from_a_ven_without_events_is_refused_with_452(world, vtn):
    ven = enrolled_ven(world, vtn, "box-e").register()
    answer = ven.post("EiEvent", created_event(ven.ven_id, "no-such-event", "optIn"))
    assert "was not sent to this VEN" in declined(answer, 452, "oadrResponse")


@pytest.mark.parametrize("content_type", ["text/xml", "text/xml; charset=utf-8", "application/xml; charset=utf-8"])
def test_text_xml_is_accepted(world, vtn, content_type):
    ven = enrolled_ven(world, vtn, "box-x")
    answer = ven.post("EiRegisterParty", create_party_registration("box-x"), **{"Content-Type": content_type})
    assert outcome(valid_answer(answer))[0] == 200


def test_no_content_type_and_oversized_bodies_are_transport_errors(world, vtn):
    ven = enrolled_ven(world, vtn, "box-x").register()
    plain = requests.post(
        f"{vtn}/OadrPoll",
        data=poll(ven.ven_id).encode(),
        auth=ven.session.auth,
        timeout=10,
        headers={"Content-Type": ""},
    )
    assert plain.status_code == 415 and "application/xml" in plain.text
    huge = poll(ven.ven_id).encode() + b" " * MAX_BODY
    too_big = requests.post(f"{vtn}/OadrPoll", data=huge, auth=ven.session.auth, timeout=10, headers=XML_HEADERS)
    assert too_big.status_code == 413 and "at most" in too_big.text


def test_other_messages_get_their_own_answers(world, vtn):
    ven, _ = metered(world, vtn, "box-m")
    misplaced = ven.post("EiReport", poll(ven.ven_id))  # oadrPoll belongs at OadrPoll
    assert "not served at EiReport" in declined(misplaced, 459, "oadrResponse")
    events = valid_answer(ven.post("EiEvent", request_event(ven.ven_id)))
    assert (message_type(events), outcome(events)[0]) == ("oadrDistributeEvent", 200)
    assert events.find(".//oadr:oadrEvent", NS) is None  # none yet: an empty distribution
    acknowledged = ven.post("OadrPoll", response(ven.ven_id))
    assert (acknowledged.status_code, acknowledged.content) == (200, b"")
    polled = valid_answer(ven.post("OadrPoll", poll(ven.ven_id)))
    assert text_of(polled, ".//ei:eiResponse/pyld:requestID") is None  # a poll has no requestID
    assert text_of(polled, ".//ei:venID") == ven.ven_id


# -- 7. scale and details -------------------------------------------------------------------


def test_two_hundred_resources_register_in_one_message(world, vtn):
    ven = enrolled_ven(world, vtn, "box-200").register()
    body = register_reports(ven.ven_id, [power_description(f"load-{i}", f"r-{i}") for i in range(200)])
    started = time.perf_counter()
    answer = valid_answer(ven.post("EiReport", body))
    elapsed = time.perf_counter() - started
    print(f"\n200 resources in one oadrRegisterReport: answered in {elapsed:.2f} s")
    assert outcome(answer) == (200, "OK: 200 reading(s) requested")
    assert len(answer.findall(".//ei:specifierPayload", NS)) == 200
    assert len(world.admin.items("devices", ven_id=ven.ven_id)) == 200
    # registering the same resources again changes nothing and needs no device writes
    again = valid_answer(ven.post("EiReport", body))
    assert outcome(again)[0] == 200 and len(world.admin.items("devices")) == 200


def test_ids_are_echoed_exactly_as_the_ven_wrote_them(world, vtn):
    ven = enrolled_ven(world, vtn, "box-n").register()
    body = register_reports(
        ven.ven_id, [power_description("meter", "001"), power_description("boiler", "1.50")], request_id="0099"
    )
    answer = valid_answer(ven.post("EiReport", body))
    assert text_of(answer, ".//ei:eiResponse/pyld:requestID") == "0099"
    assert sorted(e.text for e in answer.iterfind(".//ei:specifierPayload/ei:rID", NS)) == ["001", "1.50"]
    request = text_of(answer, ".//ei:reportRequestID")
    readings = [(now() - timedelta(minutes=1), "1000", "001"), (now() - timedelta(minutes=1), "3000", "1.50")]
    accepted = valid_answer(ven.post("EiReport", update_report(ven.ven_id, request, "001", readings)))
    assert outcome(accepted) == (200, "OK: 2 reading(s) accepted")
    settle()
    assert (stored_kw(world, ven, "meter"), stored_kw(world, ven, "boiler")) == ([1.0], [3.0])


def test_readings_of_an_rid_not_requested_are_dropped_counted_and_named(world, vtn):
    ven, request = metered(world, vtn, "box-u")
    counted = refused("unknown_rid")
    moment = now() - timedelta(minutes=1)
    readings = [(moment, "1000", "r-1"), (moment, "5", "r-9"), (moment + timedelta(seconds=10), "6", "r-9")]
    answer = valid_answer(ven.post("EiReport", update_report(ven.ven_id, request, "r-1", readings)))
    code, description = outcome(answer)
    assert code == 200 and "OK: 1 reading(s) accepted" in description
    assert "2 of rID r-9 (not requested)" in description
    assert refused("unknown_rid") == counted + 2
    settle()
    assert stored_kw(world, ven) == [1.0]


def test_readings_of_a_report_request_not_made_are_refused_with_452_and_counted(world, vtn):
    ven, _ = metered(world, vtn, "box-u")
    counted = refused("unknown_report_request")
    answer = ven.post(
        "EiReport", update_report(ven.ven_id, "never-requested", "r-1", [(now() - timedelta(minutes=1), "1000")])
    )
    assert "reportRequestID never-requested" in declined(answer, 452, "oadrUpdatedReport")
    assert refused("unknown_report_request") == counted + 1
    settle()
    assert stored_kw(world, ven) == []


def test_the_vtn_serves_its_counters_to_this_machine(world, bridge, vtn):
    ven, request = metered(world, vtn, "box-u")
    valid_answer(
        ven.post("EiReport", update_report(ven.ven_id, request, "r-1", [(now() - timedelta(minutes=1), "1", "r-7")]))
    )
    root = bridge.url[: -len(bridge.server.http_path_prefix)]
    scraped = requests.get(f"{root}/metrics", timeout=5)
    assert scraped.status_code == 200
    assert f'{REFUSED}{{reason="unknown_rid"}}' in scraped.text
    assert requests.get(f"{root}/metrics", headers={"X-Forwarded-For": "10.0.0.1"}, timeout=5).status_code == 403
