"""What a forecast may be fitted on: each device's history cleaned and judged on its own.

A forecast is never silently wrong, so before any fit, per device and never
across devices:

* a non-finite value (NaN, +inf, -inf) is missing;
* a spike is missing: a value further from the device's median than
  ``SPIKE_FACTOR`` times the larger of its 99.5th-percentile deviation and
  ``SPIKE_FLOOR_KW`` (a 10,000x reading from a broken meter, never an evening peak);
* a day is usable with less than 20 % of its slots missing;
* a device is *thin* with fewer than ``MIN_DAYS`` usable days, *stale* with
  fewer than ``MIN_RECENT_DAYS`` usable days among the last ``RECENT_DAYS``
  (a history whose last three weeks are missing fails instead of returning a
  flat line). Either gives the device a reason, and only that device fails.

Every forecast carries :meth:`DataReport.fitted_on` of its device: the usable
days, the share of missing slots, the values excluded and the last reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from registry.forecast.timeseries import MAX_MISSING_FRACTION, hide_unobserved, iso, target_start, to_days
from schemas.vocabulary import SLOT, SLOTS_PER_DAY

MIN_DAYS = 7
RECENT_DAYS = 7
MIN_RECENT_DAYS = 2
SPIKE_FACTOR = 20.0
SPIKE_FLOOR_KW = 1.0


@dataclass(frozen=True)
class DataReport:
    """Per device (arrays of n): what its history holds once cleaned, and why it cannot be used."""

    start: datetime
    days_used: np.ndarray
    recent_days: np.ndarray
    share_missing: np.ndarray
    excluded: np.ndarray
    last_slot: np.ndarray  # index of the last observed slot, -1 for none
    n_slots: int
    reasons: list[str | None]

    def fitted_on(self, row: int) -> dict:
        """The document's ``fitted_on``: days used, share missing, values excluded, last reading."""
        last = int(self.last_slot[row])
        reading = iso(self.start - (self.n_slots - last) * SLOT) if last >= 0 else None
        return {
            "history_days": self.n_slots // SLOTS_PER_DAY,
            "days_used": int(self.days_used[row]),
            "share_missing": round(float(self.share_missing[row]), 4),
            "excluded_values": int(self.excluded[row]),
            "last_reading": reading,
        }


def row_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Per row, the q-quantile of the non-NaN values (nearest rank; NaN for an empty row)."""
    ordered = np.sort(values, axis=1)  # NaN last
    count = (~np.isnan(values)).sum(axis=1)
    rank = np.clip(np.round(q * (count - 1)).astype(int), 0, values.shape[1] - 1)
    picked = np.take_along_axis(ordered, rank[:, None], axis=1)[:, 0]
    return np.where(count > 0, picked, np.nan)


def clean(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(copy with non-finite values and spikes set to NaN, values excluded per device)."""
    values = np.array(history, dtype=float)
    present = ~np.isnan(values)
    values[~np.isfinite(values)] = np.nan
    median = row_quantile(values, 0.5)[:, None]
    deviation = np.abs(values - median)
    spread = np.fmax(row_quantile(deviation, 0.995), SPIKE_FLOOR_KW)[:, None]
    with np.errstate(invalid="ignore"):
        values[deviation > SPIKE_FACTOR * spread] = np.nan
    return values, (present & np.isnan(values)).sum(axis=1)


def _usable(days: np.ndarray) -> np.ndarray:
    return np.isnan(days).mean(axis=2) < MAX_MISSING_FRACTION


def assess(history: np.ndarray, issued_at: datetime | str) -> tuple[np.ndarray, DataReport]:
    """The history as a fit may use it (unobserved slots hidden, cleaned) and its report."""
    observed, excluded = clean(hide_unobserved(history, issued_at))
    days = to_days(observed)
    usable = _usable(days)
    start = target_start(issued_at)
    seen = ~np.isnan(observed)
    last = np.where(seen.any(axis=1), observed.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1), -1)
    report = DataReport(
        start=start,
        days_used=usable.sum(axis=1),
        recent_days=usable[:, -RECENT_DAYS:].sum(axis=1),
        share_missing=(~seen).mean(axis=1) if observed.shape[1] else np.ones(observed.shape[0]),
        excluded=excluded,
        last_slot=last,
        n_slots=observed.shape[1],
        reasons=[],
    )
    report.reasons.extend(_reason(report, i) for i in range(observed.shape[0]))
    return observed, report


def _reason(report: DataReport, row: int) -> str | None:
    """Why this device cannot be forecast, in words its owner can act on; None when it can."""
    before = iso(report.start)
    history_days = report.n_slots // SLOTS_PER_DAY
    if report.days_used[row] < MIN_DAYS:
        return (
            f"not enough history to forecast (need {MIN_DAYS} days with less than {MAX_MISSING_FRACTION:.0%} "
            f"missing data, found {int(report.days_used[row])} in the {history_days} days before {before})"
        )
    if report.recent_days[row] < MIN_RECENT_DAYS:
        last = report.fitted_on(row)["last_reading"]
        return (
            f"history too stale to forecast (need {MIN_RECENT_DAYS} days with less than "
            f"{MAX_MISSING_FRACTION:.0%} missing data in the {RECENT_DAYS} days before {before}, found "
            f"{int(report.recent_days[row])}; last reading {last})"
        )
    return None
