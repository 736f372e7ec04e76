"""The offer and contract lifecycles as pure functions (no app, no store): every
transition docs/marketplace.md documents is allowed exactly for its actors, every
other one is 409 for everyone, timing is checked, and final states go nowhere."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from registry.market.rules import CONTRACT_TRANSITIONS, OFFER_TRANSITIONS, SYSTEM, check_transition
from tests.support.market_rule_inputs import END, START, refusal

ROLES = ["prosumer", "aggregator", "service", "admin", SYSTEM]


# the transition tables ------------------------------------------------------------------------


def timed(rule_when: str | None) -> datetime:
    """A moment at which a rule's timing holds."""
    return {
        "before_start": START - timedelta(hours=1),
        "after_start": START,
        "after_end": END,
        None: START - timedelta(hours=1),
    }[rule_when]


# The lifecycle as docs/marketplace.md states it (who may make each move, and when), written
# out here rather than read from the table under test, so that a change to either shows.
DOCUMENTED = {
    "offer": {
        ("open", "withdrawn"): ({"prosumer", "admin"}, None),
        ("open", "contracted"): ({SYSTEM}, None),  # a contract takes it
        ("open", "expired"): ({SYSTEM}, "after_end"),
        ("contracted", "open"): ({SYSTEM}, None),  # its contract was cancelled
    },
    "contract": {
        ("proposed", "accepted"): ({"prosumer", "admin"}, "before_start"),
        ("proposed", "rejected"): ({"prosumer", "admin", SYSTEM}, None),
        ("proposed", "cancelled"): ({"aggregator", "admin"}, "before_start"),
        ("accepted", "cancelled"): ({"aggregator", "admin"}, "before_start"),
        ("accepted", "active"): ({"service", "admin", SYSTEM}, "after_start"),
        ("active", "completed"): ({"service", "admin", SYSTEM}, "after_end"),
        ("completed", "settled"): ({SYSTEM}, None),
    },
}


@pytest.mark.parametrize("kind,table", [("offer", OFFER_TRANSITIONS), ("contract", CONTRACT_TRANSITIONS)])
def test_every_documented_transition_is_allowed_exactly_for_its_actors(kind, table):
    assert set(table) == set(DOCUMENTED[kind])
    for (current, target), (actors, when) in DOCUMENTED[kind].items():
        doc = {"status": current, "start": START, "end": END}
        for role in ROLES:
            if role in actors:
                check_transition(kind, doc, target, role, timed(when))
            else:
                assert refusal(check_transition, kind, doc, target, role, timed(when)).status == 403


STATUSES = {
    "offer": ["open", "contracted", "withdrawn", "expired"],
    "contract": ["proposed", "accepted", "active", "completed", "settled", "rejected", "cancelled"],
}


@pytest.mark.parametrize("kind,table", [("offer", OFFER_TRANSITIONS), ("contract", CONTRACT_TRANSITIONS)])
def test_every_other_transition_is_409_for_everyone(kind, table):
    for current in STATUSES[kind]:
        for target in STATUSES[kind]:
            if (current, target) in table or current == target:
                continue
            for role in ROLES:
                error = refusal(
                    check_transition, kind, {"status": current, "start": START, "end": END}, target, role, START
                )
                assert error.status == 409 and f"from {current} to {target}" in error.message


@pytest.mark.parametrize(
    "current,target,actor,now,words",
    [
        ("proposed", "accepted", "prosumer", START, "no longer"),
        ("accepted", "cancelled", "aggregator", START + timedelta(minutes=1), "no longer"),
        ("proposed", "cancelled", "aggregator", START, "no longer"),
        ("accepted", "active", "service", START - timedelta(seconds=1), "cannot be active before"),
        ("active", "completed", SYSTEM, END - timedelta(minutes=1), "cannot be completed before"),
    ],
)
def test_timing_of_transitions_is_409(current, target, actor, now, words):
    error = refusal(check_transition, "contract", {"status": current, "start": START, "end": END}, target, actor, now)
    assert error.status == 409 and words in error.message


def test_an_open_offer_expires_at_its_end_not_before():
    offer = {"status": "open", "start": START, "end": END}
    error = refusal(check_transition, "offer", offer, "expired", SYSTEM, END - timedelta(seconds=1))
    assert error.status == 409 and "cannot be expired before" in error.message
    check_transition("offer", offer, "expired", SYSTEM, END)


def test_settled_and_other_final_states_go_nowhere():
    error = refusal(
        check_transition, "contract", {"status": "settled", "start": START, "end": END}, "completed", "admin", END
    )
    assert "nothing (final)" in error.message
