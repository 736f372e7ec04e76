"""Day-ahead forecasts of 15-minute device power, vectorised across devices.

Pure functions over numpy arrays; no store access. A history is a 2-D array
(n_devices, n_slots) of 15-minute mean power in kW (+ consumption, - export),
NaN where missing, aligned to UTC days: its last column is the slot that ends
at 00:00 UTC of the target day, the first UTC midnight at or after the issue
time. Slots that end after the issue time are treated as not yet observed.

The model ("lagblend") is a per-device linear blend of lagged-day features
(yesterday, a week ago, 7-day mean and median, same-weekday mean, 28-day
mean of the target's day type, smoothed profiles, the recent level). Its
weights are fitted on the history itself: each device's last 14 days are
forecast from the days before them and the weights minimise the absolute
error of those back-casts (least absolute deviations by iteratively
reweighted least squares), with every device scaled to its own mean level.
Each device's weights are shrunk towards weights pooled over all devices,
which are shrunk towards fixed prior weights, so short histories stay sane.
All devices are fitted at once with batched linear algebra. The p10 / p90
bands are empirical quantiles of each device's back-cast residuals around
the same time of day.

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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from registry.forecast.features import PRIOR_WEIGHTS, lag_features
from registry.forecast.quality import MIN_DAYS, MIN_RECENT_DAYS, RECENT_DAYS, DataReport, assess
from registry.forecast.timeseries import MAX_MISSING_FRACTION, as_utc, target_start, to_days
from registry.forecast.timeseries import nanmean as _nanmean
from schemas.vocabulary import SLOTS_PER_DAY

MODEL_NAME = "lagblend-v1"
RIDGE = 200.0
DEVICE_RIDGE = 50.0
FIT_DAYS = 14
QUANTILE_HALF_WINDOW = 4  # slots either side pooled into the residual quantiles


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


def fit_weights(features: np.ndarray, target: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Per-device blend weights (n, k) minimising absolute error.

    Iteratively reweighted least squares; each pass fits pooled weights
    (shrunk to PRIOR_WEIGHTS) and per-device weights shrunk to the pooled
    ones, so short or odd histories borrow strength from the others.
    features (n, T, 96, k) and target (n, T, 96) are scaled per device;
    NaN targets are ignored.
    """
    n, k = features.shape[0], features.shape[-1]
    x = features.reshape(n, -1, k)
    seen = ~np.isnan(target.reshape(n, -1))
    y = np.where(seen, target.reshape(n, -1), 0.0)
    weights = np.broadcast_to(PRIOR_WEIGHTS, (n, k))
    for _ in range(iterations):
        irls = seen / np.maximum(np.abs(y - (x @ weights[..., None])[..., 0]), 0.05)
        xw = (x * irls[..., None]).transpose(0, 2, 1)
        lhs, rhs = xw @ x, (xw @ y[..., None])[..., 0]
        pooled = np.linalg.solve(lhs.sum(0) + RIDGE * np.eye(k), rhs.sum(0) + RIDGE * PRIOR_WEIGHTS)
        weights = np.linalg.solve(lhs + DEVICE_RIDGE * np.eye(k), (rhs + DEVICE_RIDGE * pooled)[..., None])[..., 0]
    return weights


def _residual_bands(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per device and slot, p10 / p90 of residuals near that time of day."""
    h = QUANTILE_HALF_WINDOW
    wrapped = np.concatenate([residuals[..., -h:], residuals, residuals[..., :h]], axis=-1)
    windows = np.lib.stride_tricks.sliding_window_view(wrapped, 2 * h + 1, axis=-1)
    n, days, slots, width = windows.shape
    pooled = windows.transpose(0, 2, 1, 3).reshape(n, slots, days * width)
    if np.isnan(pooled).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(pooled, [0.1, 0.9], axis=-1)
        return np.nan_to_num(low), np.nan_to_num(high)
    ranks = [int(0.1 * (days * width - 1)), int(np.ceil(0.9 * (days * width - 1)))]
    ordered = np.partition(pooled, ranks, axis=-1)
    return ordered[..., ranks[0]], ordered[..., ranks[1]]


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
    weights = fit_weights(features[:, :-1], days[:, first:] / scale)
    fitted = (features @ weights[:, None, :, None])[..., 0] * scale
    low, high = _residual_bands(days[:, first:] - fitted[:, :-1])
    p50 = fitted[:, -1]
    return _bounded_result(days, issued_at, p50, p50 + np.minimum(low, 0), p50 + np.maximum(high, 0))


def _bounded_result(
    days: np.ndarray, issued_at: datetime | str, p50: np.ndarray, p10: np.ndarray, p90: np.ndarray
) -> ForecastResult:
    """Clip every band to the range each device has shown in its history."""
    low = np.nanmin(days, axis=(1, 2))[:, None]
    high = np.nanmax(days, axis=(1, 2))[:, None]
    p10, p50, p90 = (np.clip(band, low, high) for band in (p10, p50, p90))
    return ForecastResult(start=target_start(issued_at), issued_at=as_utc(issued_at), p50=p50, p10=p10, p90=p90)


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
