"""The lagblend model's features: lagged days of each device's own history, per target day.

Pure numpy over (n_devices, n_days, 96) days in kW, NaN where missing; see
:mod:`registry.forecast.model` for how they are blended.
"""

from __future__ import annotations

import numpy as np

from registry.forecast.timeseries import nanmean as _nanmean

FEATURES = (
    "yesterday",
    "week_ago",
    "mean7",
    "median7",
    "weekday_mean",
    "smooth_mean7",
    "level7",
    "smooth_day_type_mean28",
    "smooth_yesterday",
)
# Prior weights: a robust recent-median profile. Used alone when the history
# is too short to fit, and as the shrinkage target otherwise.
PRIOR_WEIGHTS = np.array([0.05, 0.05, 0.1, 0.3, 0.1, 0.1, 0.1, 0.2, 0.0])

_MAX_LAG = 28


def lag_features(days: np.ndarray, weekend: np.ndarray, first: int) -> np.ndarray:
    """Features (n, T, 96, k) in kW for target days first..n_days.

    `days` is (n, n_days, 96); `weekend` flags days 0..n_days (the last one
    is the target day after the history). Missing values fall back to the
    recent mean, then to the recent level, then to zero.
    """
    padded = _pad_days(days)
    lag = _lagger(padded, first, days.shape[1] + 1)
    recent = np.stack([lag(k) for k in range(1, 8)], axis=-1)
    mean7 = _nanmean(recent, axis=-1)
    level7 = np.broadcast_to(_nanmean(mean7, axis=2)[..., None], mean7.shape)
    mean7 = np.where(np.isnan(mean7), level7, mean7)
    median7 = np.partition(np.where(np.isnan(recent), mean7[..., None], recent), 3, axis=-1)[..., 3]
    weekday = _nanmean(np.stack([lag(k) for k in (7, 14, 21, 28)], axis=2), axis=2)
    daytype = _day_type_mean(padded, weekend, first)
    columns = {
        "yesterday": lag(1),
        "week_ago": lag(7),
        "mean7": mean7,
        "median7": median7,
        "weekday_mean": weekday,
        "smooth_mean7": _smooth(mean7),
        "level7": level7,
        "smooth_day_type_mean28": _smooth(daytype),
        "smooth_yesterday": _smooth(lag(1)),
    }
    features = np.stack([columns[name] for name in FEATURES], axis=-1)  # in PRIOR_WEIGHTS' order
    fallback = np.where(np.isnan(mean7), 0.0, mean7)[..., None]
    return np.where(np.isnan(features), fallback, features)


def _pad_days(days: np.ndarray) -> np.ndarray:
    """Prepend _MAX_LAG and append one all-NaN day so every lag is a slice."""
    n, _, slots = days.shape
    before = np.full((n, _MAX_LAG, slots), np.nan)
    after = np.full((n, 1, slots), np.nan)
    return np.concatenate([before, days, after], axis=1)


def _lagger(padded: np.ndarray, first: int, stop: int):
    """lag(k) -> (n, T, 96): the day k before each target day first..stop-1."""

    def lag(k: int) -> np.ndarray:
        return padded[:, _MAX_LAG + first - k : _MAX_LAG + stop - k]

    return lag


def _day_type_mean(padded: np.ndarray, weekend: np.ndarray, first: int) -> np.ndarray:
    """Mean of the last 28 days of the target's type (weekday / weekend)."""
    kind = np.concatenate([np.zeros(_MAX_LAG, bool), weekend])
    day = np.arange(kind.size)
    ends = day[_MAX_LAG + first :, None]
    pick = (kind[None, :] == kind[ends]) & (day < ends) & (day >= ends - _MAX_LAG)
    seen = ~np.isnan(padded)
    total = _per_target_sum(pick, np.where(seen, padded, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / _per_target_sum(pick, seen)


def _per_target_sum(pick: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(T, D) day selection x (n, D, 96) values -> (n, T, 96), one GEMM."""
    n, d, slots = values.shape
    flat = values.astype(float).transpose(1, 0, 2).reshape(d, n * slots)
    return (pick.astype(float) @ flat).reshape(-1, n, slots).transpose(1, 0, 2)


def _smooth(profile: np.ndarray, half_width: int = 2) -> np.ndarray:
    """Moving mean over neighbouring slots (wrapping around midnight)."""
    shifts = range(-half_width, half_width + 1)
    return sum(np.roll(profile, s, axis=-1) for s in shifts) / len(shifts)
