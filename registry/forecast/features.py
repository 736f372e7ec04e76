"""The lagblend model's features: lagged days of each device's own history, per target day.

Pure numpy over (n_devices, n_days, 96) days in kW, NaN where missing; see
:mod:`registry.forecast.model` for how they are blended.
"""

from __future__ import annotations

import numpy as np

from registry.forecast.timeseries import nanmean as _nanmean
from schemas.vocabulary import SLOTS_PER_DAY

FEATURES = (
    "yesterday",
    "week_ago_relevelled",
    "median7",
    "weeks_relevelled",
    "smooth_day_type_mean28",
    "yesterday_moved",
    "high_5_of_10",
    "median14",
)
RELEVEL_WEEKS = (7, 14, 21)
TAIL_SLOTS = 8  # the last two hours before the day: the level a forecast starts from
LEVEL_FADE_SLOTS = 96.0  # how fast those hours' level gives way to yesterday's daily level

_MAX_LAG = 28


def lag_features(days: np.ndarray, weekend: np.ndarray, first: int) -> np.ndarray:
    """Features (n, T, 96, k) in kW for target days first..n_days.

    `days` is (n, n_days, 96); `weekend` flags days 0..n_days (the last one
    is the target day after the history). Missing values fall back to the
    7-day mean, then to the recent level, then to zero.
    """
    padded = _pad_days(days)
    lag = _lagger(padded, first, days.shape[1] + 1)
    recent = np.stack([lag(k) for k in range(1, 8)], axis=-1)
    mean7 = _nanmean(recent, axis=-1)
    level7 = np.broadcast_to(_nanmean(mean7, axis=2)[..., None], mean7.shape)
    mean7 = np.where(np.isnan(mean7), level7, mean7)
    median7 = np.partition(np.where(np.isnan(recent), mean7[..., None], recent), 3, axis=-1)[..., 3]
    recent14 = np.stack([lag(k) for k in range(1, 15)], axis=-1)
    daytype = _day_type_mean(padded, weekend, first)
    moved = _relevelled(lag)
    moved_yesterday = _nanmean(np.stack([lag(1) + lag(k) - lag(k + 1) for k in RELEVEL_WEEKS], -1), axis=-1)
    columns = {
        "yesterday": lag(1),
        "median7": median7,
        "smooth_day_type_mean28": _smooth(daytype),
        "week_ago_relevelled": moved[..., 0],
        "weeks_relevelled": _nanmean(moved, axis=-1),
        "yesterday_moved": moved_yesterday,
        "high_5_of_10": _high_days(recent14[..., :10], 5),
        "median14": _median(recent14, mean7),
    }
    features = np.stack([columns[name] for name in FEATURES], axis=-1)
    fallback = np.where(np.isnan(mean7), 0.0, mean7)[..., None]
    return np.where(np.isnan(features), fallback, features)


def _median(recent: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Per slot, the median of an even number of days, missing ones counted at ``fallback``."""
    half = recent.shape[-1] // 2
    ordered = np.partition(np.where(np.isnan(recent), fallback[..., None], recent), [half - 1, half], axis=-1)
    return (ordered[..., half - 1] + ordered[..., half]) / 2


def _high_days(recent: np.ndarray, x: int) -> np.ndarray:
    """Per slot, the mean of the ``x`` days of ``recent`` (n, T, 96, days) with the most energy.

    The "high X of Y" baseline without the day type: for PV the clear days,
    which is what minimises absolute error when most days are sunny."""
    energy = np.where(np.isnan(recent), 0.0, np.abs(recent)).sum(axis=2, keepdims=True)
    energy = np.where(np.isnan(recent).all(axis=2, keepdims=True), -np.inf, energy)
    rank = np.argsort(np.argsort(-energy, axis=-1), axis=-1)
    return _nanmean(np.where(rank < x, recent, np.nan), axis=-1)


def _relevelled(lag) -> np.ndarray:
    """The same weekday of the last weeks, each moved to the current level (n, T, 96, weeks).

    The additive adjustment of demand-response baselines: week k's day plus
    the difference between yesterday and the day before week k's, measured
    over the last hour at the start of the day and fading into the
    difference of the daily means (grid demand follows weather and season).
    """
    fade = np.exp(-np.arange(SLOTS_PER_DAY) / LEVEL_FADE_SLOTS)
    yesterday = lag(1)
    moved = []
    for k in RELEVEL_WEEKS:
        before = lag(k + 1)
        tail = _nanmean(yesterday[..., -TAIL_SLOTS:] - before[..., -TAIL_SLOTS:], axis=-1)
        daily = _nanmean(yesterday - before, axis=-1)
        moved.append(lag(k) + fade * tail[..., None] + (1 - fade) * daily[..., None])
    return np.stack(moved, axis=-1)


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
