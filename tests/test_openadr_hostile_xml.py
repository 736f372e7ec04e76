"""The VTN under attack, through its real surface: raw XML over loopback HTTP
(tests/support/openadr_world.py, tests/support/vtn_checks.py). Messages are written
by hand from the OpenADR 2.0b profile (tests/support/oadr_messages.py, not by
openleadr's client) and POSTed with ``requests``. Every 200 answer is checked
against the 2.0b XSD that openleadr ships.

This part: hostile XML (DTDs, entity bombs, oversized, malformed and mislabelled
bodies) is a 4xx with a message, the VTN stays up and the registry's store is
unchanged; the last test kills the VTN process of a real ``run.py serve`` and
watches it come back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from registry.openadr.inbound import MAX_BODY, SHUTDOWN_GRACE
from registry.openadr.vtn import DEFAULT_PATH
from tests.support.loopback import free_port, wait_until
from tests.support.oadr_messages import XML_HEADERS, envelope, query_registration
from tests.support.openadr_world import ROOT, bridge, gateway, registry, start_bridge, world  # noqa: F401  (fixtures)
from tests.support.vtn_checks import assert_alive, store_snapshot, vtn  # noqa: F401  (fixtures)

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


def test_a_client_that_declares_a_huge_body_and_stalls_holds_up_neither_the_vtn_nor_its_stop(registry, gateway):
    """The 413 comes at once and closes the connection; the half-sent body is not
    waited for: other VENs are answered, and the VTN stops within its grace."""
    vtn = start_bridge(registry, gateway)
    stopped = False
    try:
        host, port = vtn.server.http_host, vtn.server.http_port
        with socket.create_connection((host, port), timeout=5) as stalled:
            head = (
                f"POST {DEFAULT_PATH}/EiRegisterParty HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/xml\r\nContent-Length: {100 * MAX_BODY}\r\n\r\n"
            )
            stalled.sendall(head.encode() + b"<" + b" " * 4096)  # then nothing more
            answer = stalled.recv(4096).decode()
            assert answer.startswith("HTTP/1.1 413") and "Connection: close" in answer, answer
            other = requests.post(
                f"{vtn.url}/EiRegisterParty", data=query_registration(), headers=XML_HEADERS, timeout=5
            )
            assert other.status_code == 401  # answered while the stalled client still holds its socket
            vtn.stop(timeout=2 * SHUTDOWN_GRACE + 2)  # raises TimeoutError if the stop waits on the client
            stopped = True
    finally:
        if not stopped:
            vtn.stop()


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
