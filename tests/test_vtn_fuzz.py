"""Fuzzing the VTN with raw XML (hypothesis): never a 5xx, and it stays up.

Bodies are random element trees (OpenADR names and made-up ones, random
attributes and text: numbers that are not numbers, entities, markup
characters) and mutations of valid messages from a registered VEN (elements
dropped, duplicated, renamed or given other text; bytes cut, inserted or
flipped), POSTed to every service with and without the VEN's credentials and
with assorted Content-Types; every 200 answer must validate against the 2.0b
XSD (and its eiResponse codes are tallied); valid messages go along too, so
every check is passed by some examples. Derandomized and bounded: the same 200 examples each
run, in a few seconds.
"""

from __future__ import annotations

import copy
from collections import Counter
from datetime import timedelta

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from registry.openadr.inbound import hardened_parser
from tests.support.oadr_messages import (
    NS,
    cancel_party_registration,
    create_party_registration,
    created_event,
    now,
    poll,
    query_registration,
    register_report,
    update_report,
)
from tests.support.openadr_world import bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import RawVen, outcome, valid_answer
from tests.support.vtn_checks import assert_alive, enrolled_ven

SERVICES = ("EiRegisterParty", "EiReport", "EiEvent", "OadrPoll")
NAMES = [
    "oadr:oadrPayload",
    "oadr:oadrSignedObject",
    "oadr:oadrPoll",
    "oadr:oadrUpdateReport",
    "oadr:oadrReport",
    "oadr:oadrCreatedEvent",
    "oadr:oadrCreatePartyRegistration",
    "ei:venID",
    "ei:rID",
    "ei:value",
    "ei:reportRequestID",
    "ei:eventID",
    "pyld:requestID",
    "a",
    "b",
    "x-y",
]
TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "NaN",
            "INF",
            "-INF",
            "1e400",
            "-0",
            "9" * 400,
            "&amp;",
            "]]>",
            "<",
            "&n;",
            "\u0000",
            "\ud7ff",
            "2026-13-45T99:99:99Z",
            "P99999999999Y",
            "true",
        ]
    ),
)
CONTENT_TYPES = st.sampled_from(
    ["application/xml"] * 6 + ["application/xml; charset=utf-16", "text/xml", "application/json", None]
)
EXAMPLES = 200


def random_tree() -> st.SearchStrategy[str]:
    """Well-formed (mostly) documents of random elements, attributes and text."""

    def element(children: st.SearchStrategy) -> st.SearchStrategy[str]:
        return st.builds(
            lambda name, attrs, text, kids: (
                f"<{name}{''.join(f' {k}={v!r}' for k, v in attrs.items())}>{escape(text)}{''.join(kids)}</{name}>"
            ),
            st.sampled_from(NAMES),
            st.dictionaries(
                st.sampled_from(["a", "ei:schemaVersion", "oadr:Id", "xmlns:q"]),
                st.sampled_from(["2.0b", "oadrSignedObject", "x", ""]),
                max_size=2,
            ),
            TEXTS,
            st.lists(children, max_size=3),
        )

    tree = st.recursive(st.just(""), element, max_leaves=12)
    namespaces = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())
    return st.builds(lambda body: f"<oadr:oadrPayload {namespaces}>{body}</oadr:oadrPayload>", tree)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;") if "&n;" not in text else text


def mutate(message: str, data: st.DataObject) -> bytes:
    """One structural or byte-level change to a valid message."""
    how = data.draw(st.sampled_from(["drop", "duplicate", "retext", "rename", "attribute", "cut", "insert", "flip"]))
    raw = message.encode()
    if how in ("cut", "insert", "flip"):
        at = data.draw(st.integers(0, len(raw) - 1))
        if how == "cut":
            return raw[:at]
        if how == "insert":
            return raw[:at] + data.draw(st.binary(min_size=1, max_size=8)) + raw[at:]
        return raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    root = etree.fromstring(raw, hardened_parser())
    elements = list(root.iter())[1:]
    target = data.draw(st.sampled_from(elements))
    parent = target.getparent()
    if how == "drop":
        parent.remove(target)
    elif how == "duplicate":
        parent.append(copy.deepcopy(target))
    elif how == "retext":
        target.text = data.draw(TEXTS.filter(lambda t: all(c.isprintable() or c in "\t\n" for c in t)))
    elif how == "rename":
        target.tag = "{%s}%s" % (
            NS[data.draw(st.sampled_from(sorted(NS)))],
            data.draw(st.sampled_from([n.split(":")[-1] for n in NAMES])),
        )
    else:
        target.set(data.draw(st.sampled_from(["id", "schemaVersion"])), "x")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


@pytest.fixture
def fuzz_ven(world, bridge) -> RawVen:
    """A registered VEN with one metered resource."""
    ven = enrolled_ven(world, bridge.url, "fuzz-box").register()
    ven.register_report("meter", "r-1")
    return ven


def valid_messages(bridge, ven: RawVen) -> dict[str, list[str]]:
    """What the VEN may send right now: the fuzz itself re-registers and cancels it."""
    if ven.ven_id not in bridge.sessions:
        ven.register()
    if not bridge.reports.requested.get(ven.ven_id):
        ven.register_report("meter", "r-1")
    report_request, wanted = list(bridge.reports.requested[ven.ven_id].values())[-1]
    r_id = next(iter(wanted))
    reading = [(now() - timedelta(minutes=1), "1200")]
    return {
        "EiRegisterParty": [
            query_registration(),
            create_party_registration("fuzz-box", ven.ven_id),
            cancel_party_registration(ven.ven_id, ven.registration_id),
        ],
        "EiReport": [
            register_report(ven.ven_id, "meter", "r-1"),
            update_report(ven.ven_id, report_request, r_id, reading),
        ],
        "EiEvent": [created_event(ven.ven_id, "no-such-event", "optIn")],
        "OadrPoll": [poll(ven.ven_id)],
    }


def test_random_and_mutated_xml_never_gets_a_5xx_and_the_vtn_stays_up(bridge, fuzz_ven):
    ven = fuzz_ven
    statuses: Counter = Counter()

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_message(data: st.DataObject) -> None:
        service = data.draw(st.sampled_from(SERVICES))
        kind = data.draw(st.sampled_from(["random", "mutated", "mutated", "valid"]))
        if kind == "random":
            body = data.draw(random_tree()).encode()
        else:
            seed = data.draw(st.sampled_from(valid_messages(bridge, ven)[service]))
            body = mutate(seed, data) if kind == "mutated" else seed.encode()
        content_type = data.draw(CONTENT_TYPES)
        credentials = data.draw(st.sampled_from([ven.session.auth] * 3 + [None, ("fuzz-box", "x")]))
        answer = requests.post(
            f"{bridge.url}/{service}",
            data=body,
            auth=credentials,
            timeout=10,
            headers={"Content-Type": content_type} if content_type else {},
        )
        statuses[answer.status_code] += 1
        assert answer.status_code < 500, (answer.status_code, answer.text, body[:2000])
        if answer.status_code == 200 and answer.content:
            root = valid_answer(answer)  # what the VTN says is 2.0b too
            if root.find(".//ei:eiResponse/ei:responseCode", NS) is not None:
                codes[outcome(root)[0]] += 1

    codes: Counter = Counter()
    one_message()
    assert_alive(bridge.url)
    valid_answer(ven.post("OadrPoll", poll(ven.ven_id)))  # answered (perhaps: re-register)
    # the fuzz got past each check, down to the handlers, which said yes and no
    assert {200, 400, 401, 415} <= set(statuses), statuses
    assert 200 in codes and set(codes) - {200}, codes
