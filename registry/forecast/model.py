"""Day-ahead forecasts of 15-minute device power, vectorised across devices.

Pure functions over numpy arrays; no store access. A history is a 2-D array
(n_devices, n_slots) of 15-minute mean power in kW (+ consumption, - export),
NaN where missing, aligned to UTC days: its last column is the slot that ends
at 00:00 UTC of the target day, the first UTC midnight at or after the issue
time. Slots that end after the issue time are treated as not yet observed.

The model ("lagblend-v2") blends, per device, forecasts of the target day
made from its own lagged days (:mod:`registry.forecast.features`): the same
weekday of the last weeks moved to the current level (the additive
adjustment of demand-response baselines, from the last two hours and
yesterday's mean), yesterday moved by last weeks' change to the target
weekday, yesterday, the 7- and 14-day medians, the mean of the 5 days with
most energy among the last 10, and the 28-day mean of the target's day type.
Every feature is back-cast on the device's last 21 days, each day from
the days before it only, and weighs its back-cast MAE to the power -8: what
would have forecast this device well recently counts, the rest fades out (a
grid feeder ends up on the moved weeks, a PV system on the median). A level
correction then adds the blend's own error of the last hours before the
day, fading over the day into yesterday's mean error, with gains fitted per
device by least absolute deviations and shrunk to a pooled gain.
All devices are computed at once with batched numpy. The p10 / p90 band is
calibrated on cross-fitted back-test errors (:mod:`registry.forecast.calibration`).

Before the fit every device's history is cleaned and judged on its own
(:mod:`registry.forecast.quality`): non-finite values and spikes are left
out, and a history too thin or too stale is refused rather than forecast.

The usual demand-response baselines (seasonal naive, yesterday naive,
"X of Y", "high X of Y") live in :mod:`registry.forecast.baselines`; how far
a device can move from its forecast in :mod:`registry.forecast.flexibility`;
the ``forecasts`` documents written from a result in
:mod:`registry.forecast.documents`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from registry.forecast.calibration import conformal_band, sign_bounds
from registry.forecast.features import LEVEL_FADE_SLOTS, TAIL_SLOTS, lag_features
from registry.forecast.quality import MIN_DAYS, MIN_RECENT_DAYS, RECENT_DAYS, DataReport, assess
from registry.forecast.timeseries import MAX_MISSING_FRACTION, as_utc, target_start, to_days
from registry.forecast.timeseries import nanmean as _nanmean
from schemas.vocabulary import SLOTS_PER_DAY

MODEL_NAME = "lagblend-v2"
RIDGE = 200.0
DEVICE_RIDGE = 50.0
FIT_DAYS = 21
SHARPNESS = 8.0
SHIFT_Z = 6.0


class InsufficientData(ValueError):
    """Raised when some devices lack the history a forecast needs."""

    def __init__(self, reason: str, devices: Sequence[str]):
        self.devices = list(devices)
        shown = ", ".join(self.devices[:20])
        more = f" (and {len(self.devices) - 20} more)" if len(self.devices) > 20 else ""
        super().__init__(f"{reason}: {shown}{more}")


@dataclass(frozen=True)
class ForecastResult:
    """A 96-slot forecast per device; arrays are (n_devices, 96) in kW."""

    start: datetime
    issued_at: datetime
    p50: np.ndarray
    p10: np.ndarray
    p90: np.ndarray
    model: str = MODEL_NAME
    backtest_mae: np.ndarray | None = None
    direction: str | None = None
    fitted_on: tuple[dict, ...] | None = None


# --- the lagblend model -----------------------------------------------------


def fit_weights(features: np.ndarray, target: np.ndarray, prior: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Per-device linear gains (n, k) minimising absolute error (the level correction's).

    Iteratively reweighted least squares; each pass fits pooled weights
    (shrunk to ``prior``) and per-device weights shrunk to the pooled
    ones, so short or odd histories borrow strength from the others.
    features (n, T, 96, k) and target (n, T, 96) are scaled per device;
    NaN targets are ignored.
    """
    n, k = features.shape[0], features.shape[-1]
    x = features.reshape(n, -1, k)
    seen = ~np.isnan(target.reshape(n, -1))
    y = np.where(seen, target.reshape(n, -1), 0.0)
    weights = np.broadcast_to(prior, (n, k))
    for _ in range(iterations):
        irls = seen / np.maximum(np.abs(y - (x @ weights[..., None])[..., 0]), 0.05)
        xw = (x * irls[..., None]).transpose(0, 2, 1)
        lhs, rhs = xw @ x, (xw @ y[..., None])[..., 0]
        pooled = np.linalg.solve(lhs.sum(0) + RIDGE * np.eye(k), rhs.sum(0) + RIDGE * prior)
        weights = np.linalg.solve(lhs + DEVICE_RIDGE * np.eye(k), (rhs + DEVICE_RIDGE * pooled)[..., None])[..., 0]
    return weights


def blend_weights(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-device blend weights (n, k): each feature's back-cast MAE to the power -SHARPNESS.

    Every feature of a back-cast day is computed from the days before it, so
    these errors are out of sample: a feature that would have forecast the
    device's last two weeks well weighs more, one that did not fades out.
    """
    mae = _nanmean(np.abs(features - target[..., None]), axis=(1, 2))
    mae = np.where(np.isnan(mae), np.inf, np.fmax(mae, 1e-9))
    best = np.fmin(mae.min(axis=1, keepdims=True), 1e300)
    weights = (mae / best) ** -SHARPNESS
    return weights / weights.sum(axis=1, keepdims=True)


def level_correction(residuals: np.ndarray) -> np.ndarray:
    """(n, T + 1, 96) corrections of days first..n_days from the day before's residuals.

    What demand-response baselines call the additive adjustment: the error
    the blend made in the last hour before a day starts, fading over the
    day into its error over the whole day before, each with a gain fitted
    per device (shrunk to a pooled gain, which is shrunk to 0) by the same
    least-absolute-deviation fit as the blend. The first day gets none.

    Gains learnt from ordinary days cannot know a switch-off: an error beyond
    SHIFT_Z robust deviations of the device's usual ones is taken whole (the
    device is assumed to stay where it went).
    """
    fade = np.exp(-np.arange(SLOTS_PER_DAY) / LEVEL_FADE_SLOTS)
    errors = [np.nan_to_num(_nanmean(residuals[..., -TAIL_SLOTS:], axis=-1)), np.nan_to_num(_nanmean(residuals, -1))]
    inputs = np.stack([errors[0][..., None] * fade, errors[1][..., None] * (1 - fade)], axis=-1)  # day t for t + 1
    gains = fit_weights(inputs[:, :-1], residuals[:, 1:], prior=np.zeros(2))
    shifted = [np.abs(e) > SHIFT_Z * 1.4826 * np.median(np.abs(e), axis=1, keepdims=True) + 1e-3 for e in errors]
    gains = np.where(np.stack(shifted, axis=-1), 1.0, gains[:, None, :])  # (n, T + 1, 2)
    correction = (inputs * gains[:, :, None, :]).sum(axis=-1)
    return np.concatenate([np.zeros_like(correction[:, :1]), correction], axis=1)


def _device_scale(days: np.ndarray) -> np.ndarray:
    """Mean absolute power per device (kW), floored to keep ratios finite."""
    scale = _nanmean(np.abs(days), axis=(1, 2))
    return np.where(np.isnan(scale) | (scale < 1e-3), 1.0, scale)


def _weekend_flags(start: datetime, n_days: int) -> np.ndarray:
    """Weekend flags for the n_days history days and the target day."""
    return np.array([(start - timedelta(days=n_days - i)).weekday() >= 5 for i in range(n_days + 1)])


def forecast_day_ahead(
    history: np.ndarray,
    issued_at: datetime | str,
    device_ids: Sequence[str] | None = None,
    fit_days: int = FIT_DAYS,
    backtest: bool = False,
) -> ForecastResult:
    """Forecast the 96 slots of the day after `history` for every device.

    Each device's history is cleaned on its own (:mod:`registry.forecast.quality`);
    raises InsufficientData naming every device whose history is too thin or
    too stale (a job forecasts the others: :func:`assess` first). With
    `backtest`, the result also carries each device's back-test MAE.
    """
    observed, report = assess(history, issued_at)
    _raise_for(report, device_ids)
    result = _fit_and_forecast(to_days(observed), issued_at, fit_days)
    result = replace(result, fitted_on=tuple(report.fitted_on(i) for i in range(observed.shape[0])))
    if backtest:
        result = replace(result, backtest_mae=backtest_mae(history, issued_at, fit_days))
    return result


def _raise_for(report: DataReport, device_ids: Sequence[str] | None) -> None:
    failing = [i for i, reason in enumerate(report.reasons) if reason]
    if failing:
        names = [str(device_ids[i]) if device_ids is not None else f"row {i}" for i in failing]
        raise InsufficientData(
            f"need at least {MIN_DAYS} days with less than {MAX_MISSING_FRACTION:.0%} missing data, "
            f"{MIN_RECENT_DAYS} of them in the last {RECENT_DAYS}, for",
            names,
        )


def _fit_and_forecast(days: np.ndarray, issued_at: datetime | str, fit_days: int) -> ForecastResult:
    """The lagblend fit and forecast on cleaned days (n, n_days, 96)."""
    first = max(2, days.shape[1] - fit_days)
    scale = _device_scale(days)[:, None, None]
    weekend = _weekend_flags(target_start(issued_at), days.shape[1])
    features = lag_features(days, weekend, first) / scale[..., None]
    target = days[:, first:] / scale
    every_day = np.ones(target.shape[1], bool)
    p50 = _blend(features, target, every_day)[:, -1] * scale[:, 0]
    # Cross-fitted back-casts for the band: each back-cast day forecast with
    # weights chosen on the other half of the days, so its error is out of sample.
    odd = np.arange(target.shape[1]) % 2 == 1
    crossed = np.where(
        odd[None, :, None], _blend(features, target, ~odd)[:, :-1], _blend(features, target, odd)[:, :-1]
    )
    low, high = conformal_band((target - crossed)[:, 1:] * scale)
    p10, p50, p90 = sign_bounds(days, p50 + np.minimum(low, 0), p50, p50 + np.maximum(high, 0))
    return ForecastResult(start=target_start(issued_at), issued_at=as_utc(issued_at), p50=p50, p10=p10, p90=p90)


def _blend(features: np.ndarray, target: np.ndarray, chosen_on: np.ndarray) -> np.ndarray:
    """Blend (with its level correction) of every day, weights chosen on the days ``chosen_on``; scaled units."""
    weights = blend_weights(features[:, :-1][:, chosen_on], target[:, chosen_on])
    fitted = (features @ weights[:, None, :, None])[..., 0]
    return fitted + level_correction(target - fitted[:, :-1])


def backtest_mae(history: np.ndarray, issued_at: datetime | str, fit_days: int = FIT_DAYS) -> np.ndarray:
    """Fit on all but the last day, score on the last day: MAE per device.

    Devices whose shorter history is too thin or stale, or with no observed
    slot on the last day, get NaN.
    """
    observed, _ = assess(history, issued_at)
    past, actual = observed[:, :-SLOTS_PER_DAY], observed[:, -SLOTS_PER_DAY:]
    mae = np.full(observed.shape[0], np.nan)
    if not past.shape[1]:
        return mae
    day_before = target_start(issued_at) - timedelta(days=1)
    ok = np.array([reason is None for reason in assess(past, day_before)[1].reasons])
    if ok.any():
        result = forecast_day_ahead(past[ok], day_before, fit_days=fit_days)
        mae[ok] = _nanmean(np.abs(result.p50 - actual[ok]), axis=1)
    return mae
