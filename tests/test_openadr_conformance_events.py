"""The VTN with a gateway that is not openleadr (issue 13): raw 2.0b XML over real HTTP.

Every message is written from the 2.0b profile (tests/support/oadr_messages.py), POSTed
by a raw VEN (tests/support/raw_ven.py) to the bridge serving the real registry on
loopback, and every answer is validated against the 2.0b XSD that openleadr ships
(and must not carry the text ``None``). What the registry stored is read back
through its REST API, as its users (and the bridge's service token) read it.

This part: a VEN may change its answer to an event. Every answer is recorded
with its time and the latest wins; answers to other modifications or events are
refused."""

from __future__ import annotations

import uuid

from registry.openadr import mapping
from tests.support.loopback import wait_until
from tests.support.oadr_messages import created_event, poll
from tests.support.openadr_world import Party, bridge, gateway, registry, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import RawVen, declined, message_type, outcome, text_of, valid_answer
from tests.support.vtn_checks import metered, store_snapshot, vtn  # noqa: F401  (fixtures)

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
