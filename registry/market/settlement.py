"""Settlement of a completed contract, as pure functions.

Per 15-minute slot (an ISP) of the contract window:

* baseline: the device's mean power in the same slot on earlier comparable
  days (same kind of day, weekday or weekend) — "high X of Y": of the Y most
  recent complete comparable days, the X with the highest consumption in the
  window, averaged ("recent X of Y": the X most recent). The rule is
  :func:`registry.forecast.baselines.x_of_y`, the forecasts' own; settlement
  refuses with fewer than X such days in the look-back;
* delivered flexibility: baseline − measured for ``down`` (less power drawn),
  measured − baseline for ``up``, clipped to [0, contracted power]; a slot
  without measurements delivers nothing;
* energy = Σ delivered × ¼ h; payment = min(delivered, contracted) energy ×
  price; penalty = shortfall energy × price × penalty factor.

Power is signed as in measurements: + consumption, − export.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from registry.forecast.baselines import x_of_y
from registry.market.rules import slot_starts
from schemas.vocabulary import DATE_FORMAT, SLOT_HOURS, SLOT_MINUTES

Reading = tuple[datetime, float]
RULE_TEXT = re.compile(r"^\s*(high|recent)?\s*(\d+)\s+of\s+(\d+)\s*$")


class SettlementError(Exception):
    """The contract cannot be settled (yet): e.g. too little history."""


@dataclass(frozen=True)
class BaselineRule:
    x: int = 4
    y: int = 5
    select: str = "high"  # "high": the X highest of Y days; "recent": the X most recent
    lookback_days: int = 28

    @classmethod
    def parse(cls, text: str) -> BaselineRule:
        """``"high 4 of 5"``, ``"recent 3 of 5"`` or ``"10 of 10"`` (= high)."""
        match = RULE_TEXT.match(text)
        if not match or not 0 < int(match[2]) <= int(match[3]):
            raise ValueError(f"baseline rule {text!r}: expected e.g. 'high 4 of 5' with 0 < X <= Y")
        return cls(x=int(match[2]), y=int(match[3]), select=match[1] or "high")

    def __str__(self) -> str:
        return f"{self.select} {self.x} of {self.y}"


def slot_of(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % SLOT_MINUTES, second=0, microsecond=0)


def means_by_slot(readings: Iterable[Reading]) -> dict[datetime, float]:
    """Mean power of the readings that fall in each slot."""
    sums: dict[datetime, list[float]] = {}
    for moment, kw in readings:
        total = sums.setdefault(slot_of(moment), [0.0, 0])
        total[0] += kw
        total[1] += 1
    return {slot: s / n for slot, (s, n) in sums.items()}


def candidate_offsets(start: datetime, end: datetime, lookback_days: int) -> list[int]:
    """Whole-day shifts of earlier windows that end before ``start``, oldest first."""
    span = math.ceil((end - start) / timedelta(days=1))
    return list(range(lookback_days, span - 1, -1))


def baseline_kw(means: dict[datetime, float], start: datetime, end: datetime, rule: BaselineRule) -> list[float]:
    """The baseline per slot of [start, end) from one device's slot means."""
    starts = slot_starts(start, end)
    offsets = [timedelta(days=k) for k in candidate_offsets(start, end, rule.lookback_days)]
    days = np.array([[means.get(s - shift, np.nan) for s in starts] for shift in offsets], dtype=float)
    weekend = start.weekday() >= 5
    comparable = np.array([((start - shift).weekday() >= 5) == weekend for shift in offsets], dtype=bool)
    baseline, counted = x_of_y(days.reshape(1, len(offsets), len(starts)), comparable, rule.x, rule.y, rule.select)
    if counted[0] < rule.x:
        raise SettlementError(
            f"only {counted[0]} complete comparable day(s) of history before "
            f"{start:{DATE_FORMAT}}; the {rule} baseline needs {rule.x}"
        )
    return [float(b) for b in baseline[0]]


def delivered_kw(baseline: list[float], measured: list[float | None], direction: str, cap_kw: float) -> list[float]:
    """Delivered flexibility per slot, clipped to [0, cap_kw]."""
    out = []
    for base, meas in zip(baseline, measured):
        if meas is None:
            out.append(0.0)
            continue
        flex = base - meas if direction == "down" else meas - base
        out.append(min(max(flex, 0.0), cap_kw))
    return out


def settle(
    contract: dict[str, Any],
    readings: dict[str, list[Reading]],
    rule: BaselineRule,
    penalty_factor: float,
    now: datetime,
) -> dict[str, Any]:
    """The ``settlement`` of a contract from its devices' readings (history and window)."""
    starts = slot_starts(contract["start"], contract["end"])
    baseline = [0.0] * len(starts)
    measured: list[float | None] = [0.0] * len(starts)
    for device_id in contract["device_ids"]:
        means = means_by_slot(readings.get(device_id, []))
        own = baseline_kw(means, contract["start"], contract["end"], rule)
        baseline = [b + o for b, o in zip(baseline, own)]
        measured = [None if m is None or means.get(s) is None else m + means[s] for m, s in zip(measured, starts)]
    cap_kw = contract["power_kw"] * len(contract["device_ids"])
    delivered = delivered_kw(baseline, measured, contract["direction"], cap_kw)
    return settlement_document(baseline, measured, delivered, cap_kw, contract, rule, penalty_factor, now)


def settle_shares(
    contract: dict[str, Any],
    readings: dict[str, list[Reading]],
    rule: BaselineRule,
    penalty_factor: float,
    now: datetime,
    owners: dict[str, str],
) -> list[dict[str, Any]]:
    """Each prosumer's part of a contract several share: the same settlement over
    its own devices only, so no party reads another's measurements."""
    by_account: dict[str, list[str]] = {}
    for device_id in contract["device_ids"]:
        if owners.get(device_id):
            by_account.setdefault(owners[device_id], []).append(device_id)
    return [
        {"account_id": account_id, **settle({**contract, "device_ids": ids}, readings, rule, penalty_factor, now)}
        for account_id, ids in sorted(by_account.items())
    ]


def settlement_document(
    baseline: list[float],
    measured: list[float | None],
    delivered: list[float],
    cap_kw: float,
    contract: dict[str, Any],
    rule: BaselineRule,
    penalty_factor: float,
    now: datetime,
) -> dict[str, Any]:
    delivered_kwh = sum(delivered) * SLOT_HOURS
    contracted_kwh = cap_kw * SLOT_HOURS * len(delivered)
    shortfall_kwh = max(contracted_kwh - delivered_kwh, 0.0)
    price = contract["price"]
    return {
        "baseline_method": str(rule),
        "baseline_kw": [round(b, 4) for b in baseline],
        "measured_kw": [None if m is None else round(m, 4) for m in measured],
        "delivered_kw": [round(d, 4) for d in delivered],
        "delivered_kwh": round(delivered_kwh, 4),
        "contracted_kwh": round(contracted_kwh, 4),
        "shortfall_kwh": round(shortfall_kwh, 4),
        "payment": round(min(delivered_kwh, contracted_kwh) * price, 2),
        "penalty": round(shortfall_kwh * price * penalty_factor, 2),
        "currency": contract.get("currency", "EUR"),
        "computed_at": now.replace(microsecond=0),
    }
