"""One vocabulary: each word and fixed quantity is written once, in
schemas/vocabulary.py (the role tables in schemas/policy.py), and the "X of Y"
baseline is one function that forecasts and settlement share."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from registry.forecast import baselines
from registry.market import settlement
from registry.market.settlement import BaselineRule, SettlementError

ROOT = Path(__file__).resolve().parent.parent
HOME = "schemas/vocabulary.py"
SOURCES = sorted(
    p.relative_to(ROOT).as_posix()
    for p in [
        ROOT / "settings.py",
        ROOT / "run.py",
        *(f for d in ("registry", "schemas", "bench") for f in (ROOT / d).rglob("*.py")),
    ]
)

# name -> pattern of a copy of that vocabulary item in source text
COPIES = {
    "date format": re.compile(r"%Y-%m-%dT%H:%M:%SZ"),
    "Earth radius": re.compile(r"\b637[18][0-9_]*(\.[0-9]+)?\b"),
    "device classes": re.compile(
        r"[\"'](hvacDevice|lightingLoad|dhwDevice|otherLoad)[\"'],\s*[\"'](hvacDevice|lightingLoad|dhwDevice|otherLoad)[\"']"
    ),
    "device types": re.compile(r"[\"']Demand[\"'],\s*[\"']Generation[\"']"),
    "offer statuses": re.compile(r"[\"']open[\"'],\s*[\"']contracted[\"'],\s*[\"']withdrawn[\"']"),
    "contract statuses": re.compile(r"[\"']proposed[\"'],\s*[\"']accepted[\"'],\s*[\"']active[\"']"),
    # a tuple of the two, not the ("accepted", "active") key of the transition table
    "live contract states": re.compile(r"[\(\[{]\s*[\"']accepted[\"'],\s*[\"']active[\"']\s*,?\s*[\)\]}](?!\s*:)"),
    "job statuses": re.compile(r"[\"']queued[\"'],\s*[\"']running[\"'],\s*[\"']done[\"']"),
    "tag words": re.compile(r"consumption strongly recommended"),
    "slot length": re.compile(r"timedelta\(minutes=15\b|\b(RESOLUTION_S|SLOTS_PER_DAY|SLOT_SECONDS)\s*=\s*\d"),
}

# Copies in files that another change owns right now; each entry must still be
# there (so the list only shrinks) and no other file may gain one.
PENDING: set[tuple[str, str]] = set()  # copies still to remove (none left)


def copies() -> set[tuple[str, str]]:
    found = set()
    for path in SOURCES:
        if path == HOME:
            continue
        text = (ROOT / path).read_text(encoding="utf-8")
        found |= {(name, path) for name, pattern in COPIES.items() if pattern.search(text)}
    return found


def test_every_vocabulary_item_is_written_once_in_the_vocabulary():
    home = (ROOT / HOME).read_text(encoding="utf-8")
    assert all(pattern.search(home) for name, pattern in COPIES.items() if name != "slot length")
    assert sorted(copies() - PENDING) == []


def test_the_pending_copies_are_still_there_or_the_list_shrinks():
    assert sorted(PENDING - copies()) == [], "a pending copy is gone: take it off PENDING"


def test_the_scan_sees_a_copy():
    """The patterns would catch what this change removed."""
    removed = {
        "date format": 'API_DATE = "%Y-%m-%dT%H:%M:%SZ"',
        "Earth radius": "EARTH_RADIUS_KM = 6378.1",
        "device classes": 'DEVICE_CLASSES = ("hvacDevice", "lightingLoad", "dhwDevice", "otherLoad")',
        "offer statuses": 'OFFER_STATUSES = ("open", "contracted", "withdrawn", "expired")',
        "live contract states": 'RESERVING = ("accepted", "active")',
        "job statuses": 'JOB_STATUSES = ("queued", "running", "done", "failed")',
        "contract statuses": '["proposed", "accepted", "active", "completed"]',
        "tag words": '1: "consumption strongly recommended",',
        "slot length": "RESOLUTION_S = 900",
    }
    assert all(COPIES[name].search(text) for name, text in removed.items())
    assert not COPIES["Earth radius"].search("x = 637")
    assert not COPIES["live contract states"].search('("accepted", "active"): Rule(')


def test_one_earth_radius_the_iugg_mean():
    from schemas import vocabulary

    assert vocabulary.EARTH_RADIUS_M == 6_371_008.8
    # one degree of a meridian on it, by hand: 6 371 008.8 m × π / 180 = 111 195.08 m
    from registry.store import geo

    assert geo.haversine_m((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111_195.08, abs=0.01)


def test_the_policy_tables_live_below_hooks_and_ui_alike():
    from registry.hooks import access
    from schemas import policy

    assert access.PATCHABLE is policy.PATCHABLE and access.METHODS is policy.METHODS
    assert not hasattr(__import__("registry.admin_ui.blueprint", fromlist=["x"]), "TOGGLES")
    # the switches the UI offers are the ones the API lets the role change
    assert policy.TOGGLES == {
        "prosumer": ("availability", "marketplace_availability", "dr_availability"),
        "aggregator": ("dr_availability",),
        "dso": (),  # a grid operator changes no device
        "service": ("availability",),
        "admin": ("availability", "marketplace_availability", "dr_availability"),
    }


# --- the X of Y baseline ---------------------------------------------------------

NAN = float("nan")
# six candidate windows of two slots, oldest first
DAYS = np.array([[[1, 3], [5, 5], [9, 9], [2, NAN], [4, 2], [3, 1]]], dtype=float)
# day 2 is a weekend day (not comparable), day 3 misses a slot (not complete)
COMPARABLE = np.array([True, True, False, True, True, True])


def test_high_x_of_y_by_hand():
    """Counting days 0, 1, 4, 5; the last three are 1 (5+5 = 10), 4 (4+2 = 6) and
    5 (3+1 = 4); the two highest are 1 and 4: ((5+4)/2, (5+2)/2) = (4.5, 3.5)."""
    baseline, counted = baselines.x_of_y(DAYS, COMPARABLE, 2, 3, "high")
    assert baseline.tolist() == [[4.5, 3.5]] and counted.tolist() == [3]


def test_recent_x_of_y_by_hand():
    """The two most recent counting days, 4 and 5: ((4+3)/2, (2+1)/2) = (3.5, 1.5)."""
    baseline, _ = baselines.x_of_y(DAYS, COMPARABLE, 2, 3, "recent")
    assert baseline.tolist() == [[3.5, 1.5]]


def test_high_x_of_y_breaks_a_tie_for_the_more_recent_day():
    """High 3 of 4 over days 0, 1, 4, 5 (sums 4, 10, 6, 4) takes 1 and 4, then 5,
    the more recent of the tie with 0: ((5+4+3)/3, (5+2+1)/3) = (4, 8/3)."""
    baseline, _ = baselines.x_of_y(DAYS, COMPARABLE, 3, 4, "high")
    assert baseline[0].tolist() == pytest.approx([4.0, 8 / 3])


def test_an_unknown_selection_is_refused():
    with pytest.raises(ValueError, match="select"):
        baselines.x_of_y(DAYS, COMPARABLE, 2, 3, "best")


def history_days(n_days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    days = rng.uniform(0.2, 6.0, (n_days, 96))
    days[n_days - 2, 40] = NAN  # one missing slot (1 %) on Monday 11 March: not complete
    return days


@pytest.mark.parametrize("rule", ["high 4 of 5", "high 2 of 3", "recent 3 of 5", "10 of 10"])
def test_settlement_and_the_forecast_use_the_same_baseline(rule):
    """A contract over a whole UTC day is settled against the baseline the
    forecast comparisons compute from the same days."""
    parsed = BaselineRule.parse(rule)
    n_days = 21
    target = datetime(2024, 3, 13, tzinfo=UTC)  # a Wednesday
    days = history_days(n_days, seed=len(rule))
    first = target - timedelta(days=n_days)
    means = {
        first + timedelta(days=d, minutes=15 * s): float(days[d, s])
        for d in range(n_days)
        for s in range(96)
        if not np.isnan(days[d, s])
    }
    rule_days = BaselineRule(parsed.x, parsed.y, parsed.select, lookback_days=n_days)
    settled = settlement.baseline_kw(means, target, target + timedelta(days=1), rule_days)
    pick = baselines.high_x_of_y if parsed.select == "high" else baselines.x_of_y_baseline
    forecast = pick(days.reshape(1, -1), parsed.x, parsed.y, target_day=target)[0]
    assert np.allclose(settled, forecast)
    # and the day with one missing slot is left out of both
    without = days.copy()
    without[n_days - 2] = NAN
    assert np.allclose(forecast, pick(without.reshape(1, -1), parsed.x, parsed.y, target_day=target)[0])


def test_settlement_still_refuses_too_little_history():
    target = datetime(2024, 3, 13, tzinfo=UTC)
    means = {target - timedelta(days=1) + timedelta(minutes=15 * s): 1.0 for s in range(4)}
    with pytest.raises(SettlementError, match=r"only 1 complete comparable day\(s\) .* needs 2"):
        settlement.baseline_kw(means, target, target + timedelta(hours=1), BaselineRule.parse("high 2 of 3"))
