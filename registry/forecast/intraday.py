"""Intraday and hour-ahead forecasts: the day-ahead forecast corrected by the readings of the morning.

Issued at any quarter-hour, for the next ``horizon`` slots (32 = 8 hours;
4 = hour-ahead). The history is laid out as for the day-ahead model
(:mod:`registry.forecast.model`): aligned to UTC days, its last day the one
that contains the issue time, readings after the issue time ignored.

For every device at once:

1. the day-ahead forecast of today, as it was issued at midnight, and of
   tomorrow, from everything up to now (so a horizon can cross midnight);
2. the error of today's forecast over the last hour of readings (the level
   the device is at now compared with what was expected);
3. that error added to the next slots, fading with a time constant of
   ``FADE_SLOTS`` (a device switched off this morning is forecast near zero
   for the next hours, not at its usual level), and the band moved with it.

A device whose history fails the day-ahead checks fails here too
(InsufficientData, naming it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from registry.forecast.model import forecast_day_ahead
from registry.forecast.timeseries import as_utc, hide_unobserved, nanmean, target_start
from schemas.vocabulary import SLOT, SLOTS_PER_DAY

INTRADAY_SLOTS = 32  # 8 hours at 15 minutes
HOUR_AHEAD_SLOTS = 4
RECENT_SLOTS = 4  # the last hour of readings sets the level
FADE_SLOTS = 16.0  # the correction fades with a 4-hour time constant


@dataclass(frozen=True)
class IntradayResult:
    """Forecasts (n_devices, horizon) in kW for the slots from ``start``, issued at ``issued_at``."""

    start: datetime
    issued_at: datetime
    p50: np.ndarray
    p10: np.ndarray
    p90: np.ndarray


def forecast_intraday(
    history: np.ndarray,
    issued_at: datetime | str,
    horizon: int = INTRADAY_SLOTS,
    device_ids: Sequence[str] | None = None,
) -> IntradayResult:
    """The next ``horizon`` slots from the first quarter-hour at or after ``issued_at``."""
    moment = as_utc(issued_at)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if target_start(moment) == moment:  # issued at midnight: today is the day that starts now
        midnight -= timedelta(days=1)
    observed = hide_unobserved(history, moment)
    today = forecast_day_ahead(observed[:, :-SLOTS_PER_DAY], midnight, device_ids)
    tomorrow = forecast_day_ahead(observed, moment, device_ids)
    first = int(np.ceil((moment - midnight) / SLOT))
    if not 0 < first + horizon <= 2 * SLOTS_PER_DAY:
        raise ValueError(f"horizon must be 1..{2 * SLOTS_PER_DAY - first} slots from {moment:%H:%M}, not {horizon}")
    bands = {b: np.concatenate([getattr(today, b), getattr(tomorrow, b)], axis=1) for b in ("p50", "p10", "p90")}
    ratio, offset = _recent_level(observed[:, -SLOTS_PER_DAY:], today.p50, first)
    fade = np.exp(-np.arange(horizon) / FADE_SLOTS)[None, :]
    moved = {
        b: v[:, first : first + horizon] * (1 + (ratio[:, None] - 1) * fade) + offset[:, None] * fade
        for b, v in bands.items()
    }
    return IntradayResult(start=midnight + first * SLOT, issued_at=moment, **moved)


def _recent_level(today: np.ndarray, expected: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Per device, (ratio, offset) of the last RECENT_SLOTS readings to today's forecast.

    A ratio where the forecast was clearly away from zero (a PV system an
    hour after sunrise: the clouds scale the rest of the day's curve, they do
    not add a constant to the evening), else an offset (ratio 1); neither
    without readings.
    """
    window = slice(max(first - RECENT_SLOTS, 0), first)
    seen, wanted = today[:, window], expected[:, window]
    level = np.abs(expected).mean(axis=1)
    actual_sum = np.nansum(seen, axis=1)
    expected_sum = np.where(np.isnan(seen), 0.0, wanted).sum(axis=1)
    n_seen = (~np.isnan(seen)).sum(axis=1)
    proportional = (n_seen > 0) & (np.abs(expected_sum) > 0.1 * level * np.maximum(n_seen, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(proportional, np.clip(actual_sum / expected_sum, 0.0, 3.0), 1.0)
    offset = np.where(proportional | (n_seen == 0), 0.0, np.nan_to_num(nanmean(seen - wanted, axis=1)))
    return ratio, offset
