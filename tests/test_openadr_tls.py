"""The VTN under attack, through its real surface: raw XML over loopback HTTP
(tests/support/openadr_world.py, tests/support/vtn_checks.py). Messages are written
by hand from the OpenADR 2.0b profile (tests/support/oadr_messages.py, not by
openleadr's client) and POSTed with ``requests``. Every 200 answer is checked
against the 2.0b XSD that openleadr ships.

This part: over mutual TLS the certificate pinned on the enrolment is the proof;
another VEN's certificate, a secret without a pinned certificate and no client
certificate at all are refused, and the store is unchanged."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.loopback import free_port
from tests.support.oadr_messages import XML_HEADERS, create_party_registration, poll
from tests.support.openadr_world import ACCOUNT, AGGREGATOR, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import text_of, valid_answer
from tests.support.vtn_checks import store_snapshot


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
