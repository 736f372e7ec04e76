"""The usual demand-response baselines, for the forecast comparisons and for settlement.

Seasonal naive (7 days), yesterday naive, and the "X of Y" customer baselines.
The X of Y rule is written once, in :func:`x_of_y`; the forecast comparisons
here and settlement (:mod:`registry.market.settlement`) both call it:

* the candidates are earlier occurrences of the same window (a whole UTC day
  for a day-ahead comparison, the contract's window for settlement);
* a candidate counts when it is comparable (the same kind of day, weekday or
  weekend, as the target) and complete (no slot of the window missing);
* of the last Y counting days, ``high`` averages the X with the highest
  consumption in the window (the more recent of two equal days first), as DSOs
  settle ("high 4 of 5", "high 5 of 10"); ``recent`` averages the X most recent
  ("10 of 10");
* the baseline of each slot is the mean of the chosen days in that slot.

With fewer than X counting days settlement refuses (it needs the rule it
names); a forecast comparison averages what there is (NaN with nothing).
Histories are as described in :mod:`registry.forecast.model`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from registry.forecast.timeseries import as_utc, nanmean, to_days

SELECTIONS = ("high", "recent")


def seasonal_naive(history: np.ndarray, period_days: int = 7) -> np.ndarray:
    """Same slot `period_days` before the target day."""
    days = to_days(history)
    return days[:, -period_days].copy()


def yesterday_naive(history: np.ndarray) -> np.ndarray:
    """Same slot on the day before the target day."""
    return seasonal_naive(history, period_days=1)


def x_of_y(
    days: np.ndarray, comparable: np.ndarray, x: int, y: int, select: str = "high"
) -> tuple[np.ndarray, np.ndarray]:
    """The X of Y baseline of each device, and how many days counted.

    ``days`` is (n_devices, n_candidates, n_slots): power per slot of the
    window on each candidate day, oldest first, NaN where missing;
    ``comparable`` is (n_candidates,) or (n_devices, n_candidates). Returns
    (baseline (n_devices, n_slots), counted (n_devices,)): counted is the
    number of counting days among the last Y, at most Y.
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}, not {select!r}")
    days = np.asarray(days, dtype=float)
    counting = np.broadcast_to(np.asarray(comparable, dtype=bool), days.shape[:2]) & ~np.isnan(days).any(axis=2)
    from_end = np.cumsum(counting[:, ::-1], axis=1)[:, ::-1]  # counting days from this one to the newest
    last_y = counting & (from_end <= y)
    if select == "recent":
        chosen = counting & (from_end <= min(x, y))
    else:
        energy = np.where(last_y, days.sum(axis=2), -np.inf)[:, ::-1]  # newest first: ties go to the newer
        rank = np.argsort(np.argsort(-energy, axis=1, kind="stable"), axis=1)[:, ::-1]
        chosen = last_y & (rank < x)
    baseline = nanmean(np.where(chosen[:, :, None], days, np.nan), axis=1)
    return baseline, last_y.sum(axis=1)


def _comparable_days(n_days: int, target_day: datetime | None) -> np.ndarray:
    """(n_days,) whether each day of a history has the target's day type."""
    if target_day is None:
        return np.ones(n_days, dtype=bool)
    target = as_utc(target_day)
    weekend = np.array([(target - timedelta(days=n_days - i)).weekday() >= 5 for i in range(n_days)], dtype=bool)
    return weekend == (target.weekday() >= 5)


def x_of_y_baseline(history: np.ndarray, x: int = 10, y: int = 10, target_day: datetime | None = None) -> np.ndarray:
    """ "recent X of Y" ("10 of 10") over a history's days; see :func:`x_of_y`.

    Without `target_day` every day is comparable."""
    days = to_days(history)
    return x_of_y(days, _comparable_days(days.shape[1], target_day), x, y, "recent")[0]


def high_x_of_y(history: np.ndarray, x: int = 5, y: int = 10, target_day: datetime | None = None) -> np.ndarray:
    """ "high X of Y" over a history's days; see :func:`x_of_y`."""
    days = to_days(history)
    return x_of_y(days, _comparable_days(days.shape[1], target_day), x, y, "high")[0]
