"""The VTN under attack, through its real surface: raw XML over loopback HTTP.

Messages are written by hand from the OpenADR 2.0b profile (not by
openleadr's client, tests/support/raw_ven.py) and POSTed with ``requests``:
hostile XML (DTDs, entity bombs, oversized and mislabelled bodies),
unauthenticated registration, and a registered VEN that tries to speak for
another one. A transport problem is a 4xx with a message, a proven VEN naming
another is answered in OpenADR terms (452), the VTN stays up, and the
registry's store is unchanged. Every 200 answer is checked against the 2.0b
XSD that openleadr ships. The last test
kills the VTN process of a real ``run.py serve`` and watches it come back.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from bson import ObjectId
from lxml import etree
from openleadr.messaging import XML_SCHEMA

from registry.openadr import mapping
from registry.openadr.inbound import MAX_BODY, hardened_parser
from tests.support.loopback import free_port, wait_until
from tests.support.openadr_world import (  # noqa: F401  (fixtures)
    ACCOUNT,
    AGGREGATOR,
    SmartBox,
    World,
    bridge,
    call,
    eventually,
    gateway,
    registry,
    run,
    world,
)
from tests.support.raw_ven import (
    NS,
    XML_HEADERS,
    RawVen,
    cancel_party_registration,
    create_party_registration,
    created_event,
    declined,
    envelope,
    message_type,
    now,
    outcome,
    poll,
    query_registration,
    register_report,
    text_of,
    update_report,
    valid_answer,
)

ROOT = Path(__file__).resolve().parent.parent


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


# -- hostile XML ----------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]><lolz>&lol9;</lolz>"
)
HOSTILE_XML = {
    "used internal entity": '<!DOCTYPE a [<!ENTITY n "x">]><a>&n;</a>',
    "billion laughs": BILLION_LAUGHS,
    "external entity": '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
    "parameter entity": "<!DOCTYPE a [<!ENTITY % p \"<!ENTITY q 'x'>\"> %p;]><a>&q;</a>",
    "external DTD": '<!DOCTYPE a SYSTEM "http://127.0.0.1:9/evil.dtd"><a/>',
    "bare DOCTYPE": "<!DOCTYPE a><a/>",
    "entity in an OpenADR message": query_registration()
    .replace('<?xml version="1.0" encoding="utf-8"?>', '<!DOCTYPE oadr:oadrPayload [<!ENTITY n "x">]>')
    .replace("</pyld:requestID>", "&n;</pyld:requestID>"),
}


@pytest.mark.parametrize("body", list(HOSTILE_XML.values()), ids=list(HOSTILE_XML))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_doctype_is_refused_before_openleadr_parses_anything(world, vtn, body, encoding):
    before = store_snapshot(world)
    raw = body.encode(encoding)
    for service in ("EiRegisterParty", "EiReport", "OadrPoll"):
        answer = requests.post(f"{vtn}/{service}", data=raw, headers=XML_HEADERS, timeout=10)
        assert answer.status_code == 400, answer.text
        assert "DOCTYPE" in answer.text or "well-formed" in answer.text
    assert_alive(vtn)
    assert store_snapshot(world) == before


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty body"),
        (b"<a>", "not well-formed"),
        (b"<a/>", "not a valid OpenADR 2.0b message"),
        (b"\xff\xfe\x00garbage", "not well-formed"),
        (envelope("<oadr:oadrPoll/>").encode(), "not a valid OpenADR 2.0b message"),
        (
            query_registration().encode().replace(b"oadrQueryRegistration", b"oadrQueryRegistrationX"),
            "not a valid OpenADR 2.0b message",
        ),
    ],
)
def test_malformed_messages_get_400_with_a_reason(vtn, body, message):
    answer = requests.post(f"{vtn}/EiRegisterParty", data=body, headers=XML_HEADERS, timeout=10)
    assert (answer.status_code, message in answer.text) == (400, True), answer.text


def test_bodies_over_one_mebibyte_get_413_also_when_chunked(vtn):
    padding = b" " * (MAX_BODY - len(query_registration()) + 1)
    too_big = query_registration().encode() + padding
    assert len(too_big) == MAX_BODY + 1
    answer = requests.post(f"{vtn}/EiRegisterParty", data=too_big, headers=XML_HEADERS, timeout=10)
    assert answer.status_code == 413 and "at most" in answer.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(too_big), 64 * 1024):
            yield too_big[start : start + 64 * 1024]

    answer = requests.post(f"{vtn}/EiRegisterParty", data=chunks(), headers=XML_HEADERS, timeout=10)
    assert answer.status_code == 413

    at_limit = query_registration().encode() + padding[:-1]  # exactly MAX_BODY: read, then judged
    answer = requests.post(f"{vtn}/EiRegisterParty", data=at_limit, headers=XML_HEADERS, timeout=10)
    assert answer.status_code == 401  # well-formed and valid; only the credentials are missing


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_body_that_is_not_declared_xml_gets_415(vtn, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = requests.post(f"{vtn}/EiRegisterParty", data=query_registration().encode(), headers=headers, timeout=10)
    assert "Content-Type" in answer.request.headers or content_type is None
    assert answer.status_code == 415 and "application/xml" in answer.text


def test_other_methods_and_paths_are_4xx(vtn):
    assert requests.get(f"{vtn}/EiRegisterParty", timeout=5).status_code == 405
    assert (
        requests.post(f"{vtn}/EiNothing", data=query_registration(), headers=XML_HEADERS, timeout=5).status_code == 404
    )


# -- who may register -----------------------------------------------------------------


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


def issue_certificates(folder: Path, clients: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """A CA, the VTN's certificate for 127.0.0.1 and one client certificate per name:
    name -> (certificate file, key file); "ca" -> (its certificate, its key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write(label: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
        paths = (folder / f"{label}.crt", folder / f"{label}.key")
        paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[1].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return str(paths[0]), str(paths[1])

    start = datetime.now(UTC) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer_key: ec.EllipticCurvePrivateKey,
        extensions: list[tuple[Any, bool]],
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(issuer_key, hashes.SHA256())

    issued = {
        "ca": write(
            "ca", issue("test CA", ca_key, ca_key, [(x509.BasicConstraints(ca=True, path_length=None), True)]), ca_key
        )
    }
    for label in ("vtn", *clients):
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if label == "vtn" else ExtendedKeyUsageOID.CLIENT_AUTH
        extensions = [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([usage]), False),
        ]
        if label == "vtn":
            extensions.append((x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False))
        issued[label] = write(label, issue(label, key, ca_key, extensions), key)
    return issued


def test_over_tls_the_certificate_pinned_on_the_enrolment_is_the_proof(world, registry, gateway, tmp_path):
    from openleadr.utils import certificate_fingerprint

    from registry.openadr import ApiClient, build_vtn

    certificates = issue_certificates(tmp_path, ("box-a", "box-b"))
    pinned = certificate_fingerprint(Path(certificates["box-a"][0]).read_text())
    world.prosumer.post(
        "vens", {"ven_name": "box-a", "account_id": ACCOUNT, "aggregator_id": AGGREGATOR, "fingerprint": pinned}
    )
    secret_b = world.enrol("box-b")["secret"]  # enrolled without a fingerprint
    api = ApiClient(gateway.url, client_id=registry.service[0], client_secret=registry.service[1])
    vtn = build_vtn(
        api,
        port=free_port(),
        watch_interval=None,
        http_cert=certificates["vtn"][0],
        http_key=certificates["vtn"][1],
        http_ca_file=certificates["ca"][0],
    )
    vtn.start_in_thread()

    def tls_post(client: str | None, service: str, body: str, **kwargs: Any) -> requests.Response:
        return requests.post(
            f"{vtn.url}/{service}",
            data=body,
            headers=XML_HEADERS,
            timeout=10,
            verify=certificates["ca"][0],
            cert=certificates[client] if client else None,
            **kwargs,
        )

    try:
        before = store_snapshot(world)
        impostor = tls_post("box-b", "EiRegisterParty", create_party_registration("box-a"))
        assert impostor.status_code == 403 and "not the one enrolled" in impostor.text
        unpinned = tls_post(
            "box-b", "EiRegisterParty", create_party_registration("box-b"), auth=("box-b", secret_b)
        )  # over TLS a secret is not enough
        assert unpinned.status_code == 403
        # without a client certificate the handshake fails (TLS 1.3: seen as a closed connection)
        with pytest.raises(requests.exceptions.ConnectionError):
            tls_post(None, "EiRegisterParty", create_party_registration("box-a"))
        assert store_snapshot(world) == before

        registered = valid_answer(tls_post("box-a", "EiRegisterParty", create_party_registration("box-a")))
        ven_id = text_of(registered, ".//ei:venID")
        assert world.admin.items("vens", ven_name="box-a")[0]["registration_status"] == "registered"
        valid_answer(tls_post("box-a", "OadrPoll", poll(ven_id)))
        hijack = tls_post("box-b", "OadrPoll", poll(ven_id))
        assert hijack.status_code == 403
    finally:
        vtn.stop()


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


# -- a registered VEN speaking for another one ---------------------------------------


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


# -- numbers that are not power readings ------------------------------------------------


def test_non_finite_and_huge_readings_are_dropped_with_a_log_line(world, vtn, caplog):
    ven = enrolled_ven(world, vtn, "box-n").register()
    report_request = ven.register_report("meter", "r-1")
    start = now() - timedelta(minutes=10)
    values = ["NaN", "INF", "-INF", "1e39", "-2e8", "2500", "1E300"]
    readings = [(start + timedelta(minutes=i), value) for i, value in enumerate(values)]
    with caplog.at_level(logging.WARNING, logger="registry.openadr"):
        valid_answer(ven.post("EiReport", update_report(ven.ven_id, report_request, "r-1", readings)))
        device_id = mapping.device_id_for(ven.ven_id, "meter")
        stored = wait_until(lambda: world.admin.items("measurements", device_id=device_id), 10)
        time.sleep(0.5)
    assert [m["power_kw"] for m in world.admin.items("measurements")] == [2.5] == [m["power_kw"] for m in stored]
    [line] = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert "dropped 6 reading(s)" in line and device_id in line


def test_one_contract_with_a_weird_value_does_not_stop_the_others(world, registry, vtn, caplog):
    enrolment = world.enrol("box-w")
    # The box's devices and both contracts exist before it registers here, so the
    # watcher first meets the weird contract with the good one beside it.
    for resource in ("meter", "boiler"):
        world.admin.post(
            "devices",
            {
                "device_id": mapping.device_id_for(enrolment["ven_id"], resource),
                "device_name": resource,
                "ven_id": enrolment["ven_id"],
                "account_id": ACCOUNT,
                "aggregator_id": AGGREGATOR,
                "device_class": "otherLoad",
                "availability": "yes",
            },
        )
    weird = world.contract_on(mapping.device_id_for(enrolment["ven_id"], "boiler"))
    good = world.contract_on(mapping.device_id_for(enrolment["ven_id"], "meter"))
    # a value no API write accepts, put in place as a tool outside the API could
    with registry.app.app_context():
        registry.app.data.driver.db["contracts"].update_one(
            {"_id": ObjectId(weird["_id"])}, {"$set": {"power_kw": float("nan")}}
        )

    async def scenario():
        async with SmartBox(vtn, enrolment, resources=("meter", "boiler")) as box:
            await eventually(lambda: box.events)
            await asyncio.sleep(1.0)  # several more watcher polls
            return box

    with caplog.at_level(logging.WARNING, logger="registry.openadr"):
        box = run(scenario)
    assert [e["event_descriptor"]["event_id"] for e in box.events] == [
        mapping.event_id_for(good["_id"], enrolment["ven_id"])
    ]
    assert any("skipped" in r.getMessage() and weird["_id"] in r.getMessage() for r in caplog.records)


# -- the VTN process of `run.py serve` ---------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_serve_survives_its_vtn_dying_and_starts_it_again(tmp_path):
    port, vtn_port = free_port(), free_port()
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path), "OPENADR_POLL_SECONDS": "1"}
    env.pop("MONGO_URI", None)
    log = tmp_path / "serve.log"  # a file, not a pipe: nobody reads while it runs
    with log.open("wb") as output:
        serve = subprocess.Popen(
            [sys.executable, "run.py", "serve", "--no-demo", "--port", str(port), "--vtn-port", str(vtn_port)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    api = f"http://127.0.0.1:{port}"
    vtn = f"http://127.0.0.1:{vtn_port}/OpenADR2/Simple/2.0b"

    def health() -> bool:
        try:
            return requests.get(f"{api}/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def vtn_answers() -> bool:
        try:
            return (
                requests.post(
                    f"{vtn}/EiRegisterParty", data=HOSTILE_XML["used internal entity"], headers=XML_HEADERS, timeout=2
                ).status_code
                == 400
            )
        except requests.ConnectionError:
            return False

    second = None
    try:
        wait_until(lambda: "A demo token:" in log.read_text(errors="replace"), 60, 0.2)  # the banner
        assert health() and vtn_answers()
        [first] = children_of(serve.pid)
        for body in HOSTILE_XML.values():  # the segfault of issue 11, and its relatives
            assert requests.post(f"{vtn}/EiRegisterParty", data=body, headers=XML_HEADERS, timeout=5).status_code == 400
        assert children_of(serve.pid) == [first] and health()

        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()
        assert health()  # the API never noticed
        wait_until(lambda: not vtn_answers(), 5, 0.05)
        assert health()
        wait_until(vtn_answers, 20, 0.1)
        back_after = time.monotonic() - killed_at
        [second] = children_of(serve.pid)
        assert second != first and health()
        assert back_after < 15, back_after
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(30)
        print(log.read_text(errors="replace")[-4000:])  # shown when the test fails
    assert code == 0
    wait_until(lambda: not Path(f"/proc/{second}").exists(), 5)  # stopped with its parent
