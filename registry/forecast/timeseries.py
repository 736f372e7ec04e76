"""Time and shape helpers shared by the forecasting model and the baselines.

A history is a 2-D array (n_devices, n_slots) of 15-minute mean power in kW,
NaN where missing, aligned to UTC days (see :mod:`registry.forecast.model`).
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta

import numpy as np

from registry.store.clock import as_utc
from schemas.vocabulary import DATE_FORMAT, SLOT, SLOTS_PER_DAY

# a day with this much missing data or more is not usable
MAX_MISSING_FRACTION = 0.2


def target_start(issued_at: datetime | str) -> datetime:
    """The first UTC midnight at or after `issued_at`: the forecast day."""
    moment = as_utc(issued_at)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z suffix, as stored in documents."""
    return as_utc(moment).strftime(DATE_FORMAT)


def to_days(history: np.ndarray) -> np.ndarray:
    """View (n, n_slots) as (n, n_days, 96); n_slots must be whole days."""
    history = np.asarray(history, dtype=float)
    if history.ndim != 2 or history.shape[1] % SLOTS_PER_DAY:
        raise ValueError(f"history must be (n_devices, k*{SLOTS_PER_DAY}), got shape {history.shape}")
    return history.reshape(history.shape[0], -1, SLOTS_PER_DAY)


def hide_unobserved(history: np.ndarray, issued_at: datetime | str) -> np.ndarray:
    """Copy of `history` with slots ending after `issued_at` set to NaN."""
    start = target_start(issued_at)
    hidden = int(np.ceil((start - as_utc(issued_at)) / SLOT))
    masked = np.array(history, dtype=float)
    if hidden:
        masked[:, -hidden:] = np.nan
    return masked


def nanmean(values: np.ndarray, axis: int | tuple[int, ...]) -> np.ndarray:
    """nanmean that returns NaN for all-missing slices without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)
