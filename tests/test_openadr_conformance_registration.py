"""The VTN with a gateway that is not openleadr (issue 13): raw 2.0b XML over real HTTP.

Every message is written from the 2.0b profile (tests/support/oadr_messages.py), POSTed
by a raw VEN (tests/support/raw_ven.py) to the bridge serving the real registry on
loopback, and every answer is validated against the 2.0b XSD that openleadr ships
(and must not carry the text ``None``). What the registry stored is read back
through its REST API, as its users (and the bridge's service token) read it.

This part: registration. Refusals are refusals (452, 463, a transport 401), an
answer carries the request's own id; registration control (cancel, re-register,
an enrolment cancelled or deleted: nothing stored); pull only, and said so (451)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests

from tests.support.oadr_messages import (
    XML_HEADERS,
    cancel_party_registration,
    create_party_registration,
    now,
    poll,
    query_registration,
    register_report,
    update_report,
)
from tests.support.openadr_world import bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import declined, message_type, outcome, text_of, valid_answer
from tests.support.vtn_checks import enrolled_ven, metered, settle, store_snapshot, vtn  # noqa: F401  (fixtures)

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
