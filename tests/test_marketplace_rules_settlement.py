"""Settlement as pure functions (no app, no store): the X-of-Y baseline over
comparable days, delivered energy, payment and penalty against answers worked out
by hand, several devices adding up, too little history, and the baseline rule's text."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from registry.market.settlement import BaselineRule, SettlementError, baseline_kw, means_by_slot, settle
from tests.factories import AGGREGATOR
from tests.support.market_rule_inputs import END, START

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
