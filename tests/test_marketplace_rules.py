"""Marketplace rules as pure functions: no app, no store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from bson import ObjectId

from registry.market.rules import (
    CONTRACT_TRANSITIONS,
    OFFER_TRANSITIONS,
    SYSTEM,
    MarketError,
    check_acceptance,
    check_contract_update,
    check_new_contract,
    check_new_offer,
    check_offer_update,
    check_transition,
    check_window,
    slot_starts,
)
from registry.market.settlement import BaselineRule, SettlementError, baseline_kw, means_by_slot, settle
from tests.factories import AGGREGATOR, device

NOW = datetime(2024, 3, 12, 9, 7)
START = datetime(2024, 3, 13, 18, 0)  # a Wednesday
END = START + timedelta(hours=1)
ROLES = ["prosumer", "aggregator", "service", "admin", SYSTEM]


def refusal(call, *args) -> MarketError:
    with pytest.raises(MarketError) as caught:
        call(*args)
    return caught.value


def an_offer(dev: dict, **overrides) -> dict:
    doc = {
        "_id": ObjectId(),
        "device_id": dev["device_id"],
        "start": START - timedelta(hours=2),
        "end": END + timedelta(hours=2),
        "direction": "down",
        "power_kw": 2.0,
        "price": 0.25,
        "currency": "EUR",
        "status": "open",
        "account_id": dev["account_id"],
        "aggregator_id": dev["aggregator_id"],
    }
    return {**doc, **overrides}


def a_contract(**overrides) -> dict:
    return {"aggregator_id": AGGREGATOR, "start": START, "end": END, **overrides}


# windows ------------------------------------------------------------------------------------


def test_a_valid_window_passes_and_has_15_minute_slots():
    check_window(START, END, NOW)
    assert slot_starts(START, END) == [START + timedelta(minutes=m) for m in (0, 15, 30, 45)]


@pytest.mark.parametrize(
    "start,end,words",
    [
        (END, START, "before end"),
        (START, START, "before end"),
        (START + timedelta(minutes=5), END, "15-minute"),
        (START, END + timedelta(seconds=30), "15-minute"),
        (NOW - timedelta(hours=1, minutes=7), END, "future"),
        (START, START + timedelta(days=7, minutes=15), "at most 168 hours"),
    ],
)
def test_bad_windows_are_422(start, end, words):
    error = refusal(check_window, start, end, NOW)
    assert error.status == 422 and words in error.message


# offers ------------------------------------------------------------------------------------


def test_new_offer_copies_owners_and_location():
    dev = device()
    copied = check_new_offer(an_offer(dev), dev, NOW)
    assert copied == {
        "status": "open",
        "account_id": dev["account_id"],
        "aggregator_id": dev["aggregator_id"],
        "location": dev["location"],
    }


@pytest.mark.parametrize(
    "dev_overrides,offer_overrides,status,words",
    [
        ({"marketplace_availability": "no"}, {}, 409, "not available to the marketplace"),
        ({"marketplace_availability": None}, {}, 409, "not available to the marketplace"),
        ({"max_capacity": 1.5}, {}, 422, "max_capacity"),
        ({}, {"status": "contracted"}, 422, "always open"),
        ({}, {"start": NOW}, 422, "15-minute"),
    ],
)
def test_new_offer_refusals(dev_overrides, offer_overrides, status, words):
    dev = device(**dev_overrides)
    error = refusal(check_new_offer, an_offer(dev, **offer_overrides), dev, NOW)
    assert (error.status, words in error.message) == (status, True)


@pytest.mark.parametrize(
    "updates,actor",
    [
        ({"price": 0.4}, "prosumer"),
        ({"power_kw": 3.0}, "prosumer"),
        ({"status": "withdrawn"}, "prosumer"),
        ({"status": "withdrawn"}, "admin"),
        ({"status": "open", "price": 0.1, "_updated": NOW}, "prosumer"),
    ],
)
def test_open_offers_change_price_power_or_are_withdrawn(updates, actor):
    dev = device()
    check_offer_update(an_offer(dev), updates, actor, dev, NOW)


@pytest.mark.parametrize(
    "original,updates,actor,status,words",
    [
        ({}, {"start": START}, "prosumer", 422, "start cannot change"),
        ({}, {"device_id": "x", "direction": "up"}, "admin", 422, "device_id, direction cannot change"),
        ({"status": "contracted"}, {"price": 1.0}, "prosumer", 409, "only open offers"),
        ({"status": "withdrawn"}, {"status": "open"}, "prosumer", 409, "only open offers"),
        ({}, {"status": "contracted"}, "prosumer", 403, "may not move"),
        ({}, {"status": "expired"}, "admin", 403, "may not move"),
        ({}, {"status": "withdrawn"}, "aggregator", 403, "may not move"),
        ({}, {"power_kw": 9.0}, "prosumer", 422, "max_capacity"),
    ],
)
def test_offer_update_refusals(original, updates, actor, status, words):
    dev = device()
    error = refusal(check_offer_update, an_offer(dev, **original), updates, actor, dev, NOW)
    assert error.status == status and words in error.message, error.message


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


def test_settled_and_other_final_states_go_nowhere():
    error = refusal(
        check_transition, "contract", {"status": "settled", "start": START, "end": END}, "completed", "admin", END
    )
    assert "nothing (final)" in error.message


# contract terms --------------------------------------------------------------------------------


def test_contract_on_offers_is_accepted_with_derived_terms():
    first, second = device(), device(max_capacity=5.0)
    offers = [an_offer(first, power_kw=1.5, price=0.2), an_offer(second, power_kw=3.0, price=0.3)]
    devices = {d["device_id"]: d for d in (first, second)}
    derived = check_new_contract(a_contract(offers=[o["_id"] for o in offers]), offers, devices, NOW)
    assert derived == {
        "device_ids": [first["device_id"], second["device_id"]],
        "direction": "down",
        "power_kw": 1.5,
        "price": 0.3,
        "currency": "EUR",
        "account_ids": sorted([first["account_id"], second["account_id"]]),
        "status": "accepted",
    }


@pytest.mark.parametrize(
    "offer_overrides,contract_overrides,dev_overrides,status,words",
    [
        ({"status": "contracted"}, {}, {}, 409, "is contracted, not open"),
        ({"status": "withdrawn"}, {}, {}, 409, "is withdrawn, not open"),
        ({"start": START + timedelta(minutes=15)}, {}, {}, 422, "inside offer"),
        ({"end": END - timedelta(minutes=15)}, {}, {}, 422, "inside offer"),
        ({"direction": "up"}, {"direction": "down"}, {}, 422, "does not match"),
        ({}, {"power_kw": 2.5}, {}, 422, "exceeds offer"),
        ({"power_kw": 5.0}, {"power_kw": 4.0}, {}, 422, "max_capacity"),
        ({}, {"price": 0.1}, {}, 422, "below"),
        ({}, {"currency": "USD"}, {}, 422, "one currency"),
        ({}, {}, {"marketplace_availability": "no"}, 409, "not available to the marketplace"),
        ({"aggregator_id": "agg-south"}, {}, {}, 422, "portfolio"),
        ({}, {"status": "accepted"}, {}, 422, "status is set by the marketplace"),
        ({}, {"device_ids": ["0" * 8 + "-0000-4000-8000-" + "0" * 12]}, {}, 422, "device_ids must be"),
        ({}, {"start": START + timedelta(minutes=1)}, {}, 422, "15-minute"),
    ],
)
def test_contract_on_offers_refusals(offer_overrides, contract_overrides, dev_overrides, status, words):
    dev = device(**dev_overrides)
    offer = an_offer(dev, **offer_overrides)
    contract = a_contract(offers=[offer["_id"]], **contract_overrides)
    error = refusal(check_new_contract, contract, [offer], {dev["device_id"]: dev}, NOW)
    assert error.status == status and words in error.message, error.message


def test_unknown_or_repeated_offers_are_422():
    dev = device()
    offer, again = an_offer(dev), an_offer(dev)
    devices = {dev["device_id"]: dev}

    def message(offer_ids, found):
        return refusal(check_new_contract, a_contract(offers=offer_ids), found, devices, NOW).message

    assert "unknown offer" in message([ObjectId()], [])
    assert "listed twice" in message([offer["_id"]] * 2, [offer])
    assert "one offer per device" in message([offer["_id"], again["_id"]], [offer, again])


def test_unseen_device_is_unknown():
    dev = device()
    offer = an_offer(dev)
    assert (
        "unknown device_id" in refusal(check_new_contract, a_contract(offers=[offer["_id"]]), [offer], {}, NOW).message
    )


PROPOSAL = {"direction": "up", "power_kw": 1.0, "price": 0.5}


def test_proposal_without_offers_is_proposed():
    dev = device()
    derived = check_new_contract(
        a_contract(device_ids=[dev["device_id"]], **PROPOSAL), [], {dev["device_id"]: dev}, NOW
    )
    assert derived == {"account_ids": [dev["account_id"]], "status": "proposed", "currency": "EUR"}


@pytest.mark.parametrize(
    "contract_overrides,two_accounts,words",
    [
        ({"device_ids": []}, False, "needs offers, or device_ids"),
        ({"direction": None}, False, "needs direction"),
        ({"power_kw": None}, False, "needs power_kw"),
        ({"price": None}, False, "needs price"),
        ({"power_kw": 9.0}, False, "max_capacity"),
        ({"aggregator_id": "agg-south"}, False, "portfolio"),
        ({}, True, "one prosumer"),
    ],
)
def test_proposal_refusals(contract_overrides, two_accounts, words):
    devs = [device(), device()] if two_accounts else [device()]
    contract = a_contract(**{"device_ids": [d["device_id"] for d in devs], **PROPOSAL, **contract_overrides})
    error = refusal(check_new_contract, contract, [], {d["device_id"]: d for d in devs}, NOW)
    assert error.status == 422 and words in error.message, error.message


def test_acceptance_is_revalidated():
    dev = device()
    proposal = a_contract(device_ids=[dev["device_id"]], status="proposed", **PROPOSAL)
    check_acceptance(proposal, {dev["device_id"]: dev}, NOW)
    assert (
        refusal(check_acceptance, proposal, {dev["device_id"]: {**dev, "marketplace_availability": "no"}}, NOW).status
        == 409
    )
    assert refusal(check_acceptance, proposal, {dev["device_id"]: {**dev, "max_capacity": 0.5}}, NOW).status == 422
    assert "future" in refusal(check_acceptance, proposal, {dev["device_id"]: dev}, START).message


@pytest.mark.parametrize(
    "status,updates,actor,code,words",
    [
        ("accepted", {"power_kw": 1.0}, "admin", 422, "power_kw cannot change"),
        ("proposed", {"ven_response": {"opt": "optIn"}}, "service", 409, "VEN response"),
        ("accepted", {"status": "accepted"}, "prosumer", None, None),
        ("accepted", {"ven_response": {"opt": "optOut"}}, "service", None, None),
        ("accepted", {"status": "cancelled"}, "prosumer", 403, "may not move"),
        ("proposed", {"status": "accepted"}, "aggregator", 403, "may not move"),
    ],
)
def test_contract_updates(status, updates, actor, code, words):
    contract = a_contract(status=status)
    if code is None:
        check_contract_update(contract, updates, actor, NOW)
        return
    error = refusal(check_contract_update, contract, updates, actor, NOW)
    assert error.status == code and words in error.message


# settlement -----------------------------------------------------------------------------------


def readings_at(day: datetime, per_slot_kw: list[float]) -> list[tuple[datetime, float]]:
    """Three 5-minute readings per slot of the 18:00–19:00 window, averaging to per_slot_kw."""
    out = []
    for i, kw in enumerate(per_slot_kw):
        slot = day.replace(hour=18, minute=0) + timedelta(minutes=15 * i)
        out += [(slot, kw - 1.0), (slot + timedelta(minutes=5), kw), (slot + timedelta(minutes=10), kw + 1.0)]
    return out


def history() -> list[tuple[datetime, float]]:
    """Comparable (weekday) days before Wed 13 March: Tue 12 → 3 kW, Mon 11 → 4 kW,
    Fri 8 → 5 kW, Thu 7 → 10 kW (outside Y = 3); the weekend (9, 10) at 20 kW is not comparable."""
    days = {12: 3.0, 11: 4.0, 10: 20.0, 9: 20.0, 8: 5.0, 7: 10.0}
    return [r for d, kw in days.items() for r in readings_at(datetime(2024, 3, d), [kw] * 4)]


SETTLED = {
    "aggregator_id": AGGREGATOR,
    "device_ids": ["dev"],
    "start": START,
    "end": END,
    "direction": "down",
    "power_kw": 2.0,
    "price": 0.30,
    "currency": "EUR",
}


def test_settlement_known_answer():
    """By hand: high 2 of 3 over Tue/Mon/Fri picks Fri (5) and Mon (4): baseline 4.5 kW.
    Measured 2, 3, 4, 5 kW → flexibility 2.5, 1.5, 0.5, −0.5 → capped to [0, 2]: 2, 1.5, 0.5, 0
    → 4 kW × ¼ h = 1.0 kWh delivered of 2 kW × 1 h = 2.0 kWh contracted.
    Payment 1.0 × 0.30 = 0.30; penalty (2.0 − 1.0) × 0.30 × 1.5 = 0.45."""
    readings = {"dev": history() + readings_at(START, [2.0, 3.0, 4.0, 5.0])}
    result = settle(SETTLED, readings, BaselineRule.parse("high 2 of 3"), 1.5, END)
    assert result["baseline_kw"] == [4.5] * 4
    assert result["measured_kw"] == [2.0, 3.0, 4.0, 5.0]
    assert result["delivered_kw"] == [2.0, 1.5, 0.5, 0.0]
    assert (result["delivered_kwh"], result["contracted_kwh"], result["shortfall_kwh"]) == (1.0, 2.0, 1.0)
    assert (result["payment"], result["penalty"], result["currency"]) == (0.30, 0.45, "EUR")
    assert result["baseline_method"] == "high 2 of 3"


def test_settlement_up_direction_recent_rule_and_a_missing_slot():
    """recent 2 of 3 → Tue (3) and Mon (4): baseline 3.5. Up: measured − baseline.
    Measured 5, 4, (missing), 3 → 1.5, 0.5, 0, 0 → 0.5 kWh; payment 0.15, penalty 1.5 × 0.3 × 2 = 0.9."""
    window = [r for r in readings_at(START, [5.0, 4.0, 0.0, 3.0]) if not 30 <= r[0].minute < 45]
    result = settle(
        {**SETTLED, "direction": "up"}, {"dev": history() + window}, BaselineRule.parse("recent 2 of 3"), 2.0, END
    )
    assert result["baseline_kw"] == [3.5] * 4 and result["measured_kw"] == [5.0, 4.0, None, 3.0]
    assert result["delivered_kw"] == [1.5, 0.5, 0.0, 0.0]
    assert (result["delivered_kwh"], result["payment"], result["penalty"]) == (0.5, 0.15, 0.9)


def test_two_devices_add_up():
    readings = {d: history() + readings_at(START, [2.0] * 4) for d in ("a", "b")}
    rule = BaselineRule.parse("high 2 of 3")
    result = settle({**SETTLED, "device_ids": ["a", "b"]}, readings, rule, 1.5, END)
    assert result["baseline_kw"] == [9.0] * 4 and result["delivered_kw"] == [4.0] * 4
    assert (result["contracted_kwh"], result["delivered_kwh"], result["penalty"]) == (4.0, 4.0, 0.0)


def test_too_little_history_cannot_be_settled():
    short = readings_at(datetime(2024, 3, 12), [3.0] * 4)
    with pytest.raises(SettlementError, match="only 1 complete comparable day"):
        baseline_kw(means_by_slot(short), START, END, BaselineRule.parse("high 2 of 3"))


@pytest.mark.parametrize(
    "text,rule",
    [
        ("high 4 of 5", BaselineRule(4, 5, "high")),
        ("10 of 10", BaselineRule(10, 10, "high")),
        ("recent 3 of 5", BaselineRule(3, 5, "recent")),
    ],
)
def test_baseline_rule_text(text, rule):
    assert BaselineRule.parse(text) == rule and BaselineRule.parse(str(rule)) == rule


@pytest.mark.parametrize("text", ["6 of 5", "0 of 3", "high", "best 2 of 3"])
def test_bad_baseline_rule_text(text):
    with pytest.raises(ValueError):
        BaselineRule.parse(text)
