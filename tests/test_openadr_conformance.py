"""The VTN with a gateway that is not openleadr (issue 13): raw 2.0b XML over real HTTP.

Every message is written from the 2.0b profile (tests/support/raw_ven.py), POSTed
with ``requests`` to the bridge serving the real registry on loopback, and every
answer is validated against the 2.0b XSD that openleadr ships (and must not
carry the text ``None``). What the registry stored is read back through its
REST API, as its users (and the bridge's service token) read it.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import requests
from lxml import etree

from registry.openadr import mapping
from registry.openadr.inbound import MAX_BODY
from registry.ops.metrics import PROCESS
from tests.support.loopback import wait_until
from tests.support.oadr_messages import (
    NS,
    XML_HEADERS,
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
    response,
    stamp,
    update_report,
)
from tests.support.openadr_world import Party, World, bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import RawVen, declined, message_type, outcome, text_of, valid_answer
from tests.support.vtn_checks import enrolled_ven, store_snapshot

REFUSED = "der_registry_openadr_readings_refused_total"


@pytest.fixture
def vtn(bridge) -> str:
    return bridge.url


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


# -- 1. refusals are refusals -------------------------------------------------------


@pytest.mark.parametrize(
    "claimed, why",
    [
        (None, "oadrVenName is missing"),
        ("box-nobody", "oadrVenName is 'box-nobody'"),
    ],
)
def test_a_registration_without_its_own_ven_name_is_refused_with_452(world, vtn, claimed, why):
    enrolment = world.enrol("box-1")
    before = store_snapshot(world)
    answer = requests.post(
        f"{vtn}/EiRegisterParty",
        data=create_party_registration(claimed),
        auth=("box-1", enrolment["secret"]),
        headers=XML_HEADERS,
        timeout=10,
    )
    assert why in declined(answer, 452, "oadrCreatedPartyRegistration")
    root = valid_answer(answer)
    assert text_of(root, ".//ei:registrationID") is None and text_of(root, ".//ei:venID") is None
    assert store_snapshot(world) == before


def test_a_cancelled_enrolment_is_refused_with_463(world, vtn):
    enrolment = world.enrol("box-1", status="cancelled")
    before = store_snapshot(world)
    answer = requests.post(
        f"{vtn}/EiRegisterParty",
        data=create_party_registration("box-1"),
        auth=("box-1", enrolment["secret"]),
        headers=XML_HEADERS,
        timeout=10,
    )
    assert "cancelled" in declined(answer, 463, "oadrCreatedPartyRegistration")
    assert text_of(valid_answer(answer), ".//ei:registrationID") is None
    assert store_snapshot(world) == before


def test_an_enrolment_without_a_ven_id_is_refused_with_463(world, registry, vtn):
    enrolment = world.enrol("box-old")
    with registry.app.app_context():  # stored before the registry issued ven_ids
        registry.app.data.driver.db["vens"].update_one({"ven_name": "box-old"}, {"$unset": {"ven_id": ""}})
    answer = requests.post(
        f"{vtn}/EiRegisterParty",
        data=create_party_registration("box-old"),
        auth=("box-old", enrolment["secret"]),
        headers=XML_HEADERS,
        timeout=10,
    )
    assert "enrol the box again" in declined(answer, 463, "oadrCreatedPartyRegistration")


def test_credentials_that_fail_are_a_transport_401_not_an_openadr_answer(world, vtn):
    world.enrol("box-1")
    answer = requests.post(
        f"{vtn}/EiRegisterParty",
        data=create_party_registration("box-1"),
        auth=("box-1", "a-guess"),
        headers=XML_HEADERS,
        timeout=10,
    )
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")


def test_a_registration_is_answered_with_the_requests_own_id(world, vtn):
    enrolment = world.enrol("box-1")
    session = requests.Session()
    session.auth = ("box-1", enrolment["secret"])
    for body, request_id in (
        (query_registration("0042"), "0042"),
        (create_party_registration("box-1", request_id="007"), "007"),
    ):
        root = valid_answer(session.post(f"{vtn}/EiRegisterParty", data=body, headers=XML_HEADERS, timeout=10))
        assert outcome(root) == (200, "OK")
        assert text_of(root, ".//ei:eiResponse/pyld:requestID") == request_id  # not "42", not None
    assert text_of(root, ".//ei:venID") == enrolment["ven_id"]


# -- 2. a VEN may change its answer ---------------------------------------------------


def distributed_event(ven: RawVen, timeout: float = 10) -> tuple[str, int]:
    """Poll until an oadrDistributeEvent comes: its eventID and modificationNumber."""

    def event() -> tuple[str, int] | None:
        root = valid_answer(ven.post("OadrPoll", poll(ven.ven_id)))
        if message_type(root) != "oadrDistributeEvent":
            return None
        return (
            text_of(root, ".//ei:eventDescriptor/ei:eventID"),
            int(text_of(root, ".//ei:eventDescriptor/ei:modificationNumber")),
        )

    return wait_until(event, timeout, 0.2)


def test_every_answer_is_recorded_with_its_time_and_the_latest_wins(world, registry, vtn):
    ven, _ = metered(world, vtn, "box-opt")
    contract = world.contract_on(mapping.device_id_for(ven.ven_id, "meter"))
    event_id, modification = distributed_event(ven)
    assert event_id == mapping.event_id_for(contract["_id"], ven.ven_id)
    service = Party(registry.url, registry.token("service"))  # the bridge's own view
    shown = []
    for opt in ("optIn", "optOut", "optIn", "optIn"):
        answer = valid_answer(ven.post("EiEvent", created_event(ven.ven_id, event_id, opt, modification)))
        assert (message_type(answer), outcome(answer)[0]) == ("oadrResponse", 200)
        shown.append(service.item("contracts", contract["_id"])["ven_response"]["opt"])
    assert shown == ["optIn", "optOut", "optIn", "optIn"]
    recorded = service.item("contracts", contract["_id"])["ven_response"]
    history = recorded["history"]
    assert [entry["opt"] for entry in history] == ["optIn", "optOut", "optIn"]  # a repeat is no change
    assert {(entry["event_id"], entry["ven_id"]) for entry in history} == {(event_id, ven.ven_id)}
    assert [entry["at"] for entry in history] == sorted(entry["at"] for entry in history)
    assert all(entry["at"].endswith("Z") for entry in history)
    assert world.prosumer.item("contracts", contract["_id"])["ven_response"] == recorded


def test_answers_to_other_modifications_or_events_are_refused(world, vtn):
    ven, _ = metered(world, vtn, "box-opt")
    contract = world.contract_on(mapping.device_id_for(ven.ven_id, "meter"))
    event_id, modification = distributed_event(ven)
    before = store_snapshot(world)
    stale = ven.post("EiEvent", created_event(ven.ven_id, event_id, "optOut", modification + 3))
    assert "modificationNumber" in declined(stale, 450, "oadrResponse")
    unknown = ven.post("EiEvent", created_event(ven.ven_id, str(uuid.uuid4()), "optOut"))
    assert "was not sent to this VEN" in declined(unknown, 452, "oadrResponse")
    assert store_snapshot(world) == before
    assert world.admin.item("contracts", contract["_id"]).get("ven_response") is None


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


# -- 4. registration control ----------------------------------------------------------


def test_a_cancel_with_a_wrong_registration_id_is_refused(world, vtn):
    ven, _ = metered(world, vtn, "box-c")
    answer = ven.post("EiRegisterParty", cancel_party_registration(ven.ven_id, str(uuid.uuid4())))
    assert "registrationID" in declined(answer, 452, "oadrCanceledPartyRegistration")
    assert message_type(valid_answer(ven.post("OadrPoll", poll(ven.ven_id)))) == "oadrResponse"
    assert world.admin.items("vens")[0]["registration_status"] == "registered"


@pytest.mark.parametrize("with_ven_id", [True, False])  # venID is optional in the cancel
def test_after_a_cancel_the_ven_is_asked_to_register_again_and_nothing_is_stored(world, vtn, with_ven_id):
    ven, request = metered(world, vtn, "box-c")
    answer = valid_answer(
        ven.post(
            "EiRegisterParty",
            cancel_party_registration(ven.ven_id if with_ven_id else None, ven.registration_id, request_id="c-1"),
        )
    )
    assert (message_type(answer), outcome(answer)[0]) == ("oadrCanceledPartyRegistration", 200)
    assert text_of(answer, ".//ei:registrationID") == ven.registration_id
    assert text_of(answer, ".//ei:eiResponse/pyld:requestID") == "c-1"
    assert world.admin.items("vens")[0]["registration_status"] == "enrolled"
    before = store_snapshot(world)
    for service, body in (
        ("OadrPoll", poll(ven.ven_id)),
        ("EiReport", update_report(ven.ven_id, request, "r-1", [(now() - timedelta(minutes=1), "1000")])),
        ("EiReport", register_report(ven.ven_id, "boiler", "r-2")),
    ):
        again = valid_answer(ven.post(service, body))
        assert message_type(again) == "oadrRequestReregistration"
        assert text_of(again, ".//ei:venID") == ven.ven_id
    settle()
    assert store_snapshot(world) == before


def test_after_its_enrolment_is_cancelled_a_ven_gets_463_and_nothing_is_stored(world, vtn):
    ven, request = metered(world, vtn, "box-c")
    enrolment = world.admin.items("vens")[0]
    world.aggregator.patch("vens", enrolment["_id"], {"registration_status": "cancelled"})
    before = store_snapshot(world)
    for service, body, reply in (
        ("OadrPoll", poll(ven.ven_id), "oadrResponse"),
        (
            "EiReport",
            update_report(ven.ven_id, request, "r-1", [(now() - timedelta(minutes=1), "1000")]),
            "oadrUpdatedReport",
        ),
        ("EiReport", register_report(ven.ven_id, "boiler", "r-2"), "oadrRegisteredReport"),
        ("OadrPoll", poll(ven.ven_id), "oadrResponse"),
    ):
        assert "cancelled" in declined(ven.post(service, body), 463, reply)
    settle()
    assert store_snapshot(world) == before


def test_after_its_enrolment_is_deleted_a_ven_is_refused_and_nothing_is_stored(world, vtn):
    ven, request = metered(world, vtn, "box-d")
    enrolment = world.admin.items("vens")[0]
    answer = world.admin.session.delete(
        f"{world.registry.url}/vens/{enrolment['_id']}", headers={"If-Match": enrolment["_etag"]}, timeout=5
    )
    assert answer.status_code == 204, answer.text
    before = store_snapshot(world)
    for service, body in (
        ("OadrPoll", poll(ven.ven_id)),
        ("EiReport", update_report(ven.ven_id, request, "r-1", [(now() - timedelta(minutes=1), "1000")])),
    ):
        assert ven.post(service, body).status_code == 401  # its secret died with the enrolment
    settle()
    assert store_snapshot(world) == before


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


# -- 6. pull only, and said so ------------------------------------------------------------


@pytest.mark.parametrize(
    "pull, address, transport, accepted",
    [
        (True, "", "simpleHttp", True),
        (True, "http://127.0.0.1:9/ven", "simpleHttp", True),  # pull: the address is not used
        (False, "http://127.0.0.1:9/ven", "simpleHttp", False),  # push
        (None, "http://127.0.0.1:9/ven", "simpleHttp", False),  # no pull flag, an address: push
        (None, None, "simpleHttp", True),
        (True, "", "xmpp", False),
    ],
)
def test_push_registrations_are_refused_with_451_pull_is_accepted(world, vtn, pull, address, transport, accepted):
    ven = enrolled_ven(world, vtn, "box-p")
    body = create_party_registration("box-p", pull=pull, transport_address=address)
    body = body.replace(">simpleHttp<", f">{transport}<")
    answer = ven.post("EiRegisterParty", body)
    if accepted:
        assert outcome(valid_answer(answer))[0] == 200
        assert world.admin.items("vens")[0]["registration_status"] == "registered"
    else:
        assert "pull model only" in declined(answer, 451, "oadrCreatedPartyRegistration")
        assert world.admin.items("vens")[0]["registration_status"] == "enrolled"


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
