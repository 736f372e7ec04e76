"""The VTN under attack, through its real surface: raw XML over loopback HTTP
(tests/support/openadr_world.py, tests/support/vtn_checks.py). Messages are written
by hand from the OpenADR 2.0b profile (tests/support/oadr_messages.py, not by
openleadr's client) and POSTed with ``requests``. Every 200 answer is checked
against the 2.0b XSD that openleadr ships.

This part: who may register. Without TLS only a VEN on this machine with the
enrolment secret of that ven_name registers (a proven VEN naming another is
answered in OpenADR terms, 452); the secret is shown once and stored as a hash,
and a client can choose neither a ven_id nor a secret hash."""

from __future__ import annotations

import pytest
import requests

from tests.support.oadr_messages import XML_HEADERS, create_party_registration
from tests.support.openadr_world import ACCOUNT, AGGREGATOR, bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import declined, text_of, valid_answer
from tests.support.vtn_checks import enrolled_ven, store_snapshot, vtn  # noqa: F401  (fixtures)


@pytest.mark.parametrize(
    "credentials, claimed, status",
    [
        (None, "box-a", 401),  # no proof at all
        (("box-a", "wrong-secret"), "box-a", 401),  # a guessed secret
        (("box-z", "any"), "box-z", 401),  # a name nobody enrolled
        (("box-b", "SECRET-B"), "box-a", 452),  # its own secret, another VEN's name: 2.0b 452
        (("box-a", "SECRET-A"), "box-a", 200),  # the enrolled box itself
    ],
)
def test_registration_needs_the_enrolment_secret_of_that_ven_name(world, vtn, credentials, claimed, status):
    secrets = {name: world.enrol(name)["secret"] for name in ("box-a", "box-b")}
    before = store_snapshot(world)
    session = requests.Session()
    if credentials:
        name, secret = credentials
        session.auth = (name, secrets[name] if secret.startswith("SECRET") else secret)
    answer = session.post(
        f"{vtn}/EiRegisterParty", data=create_party_registration(claimed), headers=XML_HEADERS, timeout=10
    )
    if status == 452:  # authenticated, but naming another VEN: refused in OpenADR terms
        assert "oadrVenName" in declined(answer, 452, "oadrCreatedPartyRegistration")
        assert text_of(valid_answer(answer), ".//ei:registrationID") is None
        assert store_snapshot(world) == before
        return
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Basic")
        assert store_snapshot(world) == before
        return
    ven_id = text_of(valid_answer(answer), ".//ei:venID")
    enrolment = world.prosumer.items("vens", ven_name="box-a")[0]
    assert (enrolment["ven_id"], enrolment["registration_status"]) == (ven_id, "registered")


def test_a_ven_name_with_a_colon_authenticates_too(world, vtn):
    """Basic splits ``user:password`` at the first colon; the secret has none, so the
    VTN splits at the last one and ``site:box`` (a valid ven_name) still works."""
    ven = enrolled_ven(world, vtn, "site:box-1").register()
    assert ven.ven_id == world.prosumer.items("vens")[0]["ven_id"]


@pytest.mark.parametrize(
    "address, local",
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_which_peers_count_as_this_machine(address, local):
    from registry.openadr.ven_auth import is_loopback

    assert is_loopback(address) is local


def test_a_registration_claiming_another_vens_id_is_refused(world, vtn):
    victim = enrolled_ven(world, vtn, "victim").register()
    attacker = enrolled_ven(world, vtn, "attacker")
    before = store_snapshot(world)
    answer = attacker.post("EiRegisterParty", create_party_registration("attacker", victim.ven_id))
    assert "not this VEN's" in declined(answer, 452, "oadrCreatedPartyRegistration")
    assert store_snapshot(world) == before


def test_plain_http_from_another_machine_is_refused(world, registry, gateway):
    """Served on this machine's non-loopback address, a VEN reaching it there is not local."""
    import socket

    from tests.support.openadr_world import start_bridge

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing address
            address = probe.getsockname()[0]
    except OSError:
        pytest.skip("no non-loopback address on this machine")
    if address.startswith("127."):
        pytest.skip("no non-loopback address on this machine")
    secret = world.enrol("box-remote")["secret"]
    remote = start_bridge(registry, gateway, host=address)
    try:
        answer = requests.post(
            remote.url + "/EiRegisterParty",
            auth=("box-remote", secret),
            data=create_party_registration("box-remote"),
            headers=XML_HEADERS,
            timeout=10,
        )
    finally:
        remote.stop()
    assert answer.status_code == 403 and "this machine only" in answer.text
    assert world.prosumer.items("vens")[0]["registration_status"] == "enrolled"


def test_the_secret_is_shown_once_and_stored_only_as_a_hash(world):
    created = world.prosumer.session.post(
        f"{world.registry.url}/vens",
        timeout=5,
        json={"ven_name": "box-s", "account_id": ACCOUNT, "aggregator_id": AGGREGATOR},
    ).json()
    secret = created["secret"]
    assert len(secret) >= 40 and created["ven_id"]
    for party in (world.prosumer, world.aggregator):
        [seen] = party.items("vens")
        assert "secret" not in seen and "secret_hash" not in seen
        assert seen["ven_id"] == created["ven_id"]
    [stored] = world.admin.items("vens")
    assert stored["secret_hash"].startswith("sha256$") and secret not in str(stored)


@pytest.mark.parametrize("field", ["ven_id", "secret_hash"])
def test_ven_id_and_secret_hash_cannot_be_chosen_by_a_client(world, field):
    victim = world.enrol("victim")
    value = victim["ven_id"] if field == "ven_id" else "sha256$" + "0" * 64
    answer = world.prosumer.session.post(
        f"{world.registry.url}/vens",
        timeout=5,
        json={"ven_name": "thief", "account_id": ACCOUNT, "aggregator_id": AGGREGATOR, field: value},
    )
    assert answer.status_code == 422 and "read-only" in answer.text
    enrolment = world.admin.items("vens", ven_name="victim")[0]
    answer = world.aggregator.session.patch(
        f"{world.registry.url}/vens/{enrolment['_id']}",
        json={field: value},
        timeout=5,
        headers={"If-Match": enrolment["_etag"]},
    )
    assert answer.status_code in (403, 422), answer.text
    assert world.admin.items("vens", ven_name="victim") == [enrolment]
    assert world.admin.items("vens", ven_name="thief") == []


def test_an_enrolment_answer_in_xml_is_refused_before_anything_is_stored(world):
    answer = world.prosumer.session.post(
        f"{world.registry.url}/vens",
        timeout=5,
        json={"ven_name": "box-x", "account_id": ACCOUNT, "aggregator_id": AGGREGATOR},
        headers={"Accept": "application/xml"},
    )
    assert answer.status_code == 406
    assert world.admin.items("vens") == []
