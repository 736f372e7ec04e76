"""The usual demand-response baselines, for comparison and settlement.

Seasonal naive (7 days), yesterday naive, "X of Y" and "high X of Y"
customer baselines; pure functions over histories as described in
:mod:`registry.forecasting`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from registry.forecast.timeseries import MAX_MISSING_FRACTION, as_utc, nanmean, to_days


def seasonal_naive(history: np.ndarray, period_days: int = 7) -> np.ndarray:
    """Same slot `period_days` before the target day."""
    days = to_days(history)
    return days[:, -period_days].copy()


def yesterday_naive(history: np.ndarray) -> np.ndarray:
    """Same slot on the day before the target day."""
    return seasonal_naive(history, period_days=1)


def _eligible_days(days: np.ndarray, target_day: datetime | None) -> np.ndarray:
    """Bool (n, n_days): complete enough, and of the target's day type."""
    ok = np.isnan(days).mean(axis=2) < MAX_MISSING_FRACTION
    if target_day is not None:
        n_days = days.shape[1]
        weekdays = [(as_utc(target_day) - timedelta(days=n_days - i)).weekday() for i in range(n_days)]
        weekend = np.array(weekdays) >= 5
        ok &= weekend[None, :] == (as_utc(target_day).weekday() >= 5)
    return ok


def _last_eligible(eligible: np.ndarray, y: int) -> np.ndarray:
    """Keep only the last `y` eligible days of each device."""
    from_end = np.cumsum(eligible[:, ::-1], axis=1)[:, ::-1]
    return eligible & (from_end <= y)


def x_of_y_baseline(history: np.ndarray, x: int = 10, y: int = 10, target_day: datetime | None = None) -> np.ndarray:
    """Mean of the `x` most recent of the last `y` eligible days ("10 of 10").

    Eligible: less than 20 % missing and, when `target_day` is given, the same
    day type (weekday / weekend) as the target.
    """
    days = to_days(history)
    chosen = _last_eligible(_eligible_days(days, target_day), min(x, y))
    return _masked_day_mean(days, chosen)


def high_x_of_y(history: np.ndarray, x: int = 5, y: int = 10, target_day: datetime | None = None) -> np.ndarray:
    """Mean of the `x` highest-consumption days among the last `y` eligible."""
    days = to_days(history)
    window = _last_eligible(_eligible_days(days, target_day), y)
    energy = np.where(window, np.nanmean(days, axis=2), -np.inf)
    rank = np.argsort(np.argsort(-energy, axis=1, kind="stable"), axis=1)
    return _masked_day_mean(days, window & (rank < x))


def _masked_day_mean(days: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    picked = np.where(chosen[:, :, None], days, np.nan)
    return nanmean(picked, axis=1)
