"""Aggregated series over devices (docs/timeseries.md, "Aggregated series"): pure numpy.

Rows are devices, columns 15-minute slots; NaN is "no reading" (or "no forecast").

* :func:`device_periods`: a device's value for a coarser period is the mean of its
  slots that have a value; a device with no value in the period does not contribute.
* :func:`across`: sum / mean / min / max over the devices that contribute to each
  period, and how many they are.
* :func:`forecast_across`: the same for forecasts, with p10 / p90 **of the aggregate**:
  each device's p10 / p90 are read as quantiles of a normal distribution,
  σ_i = (p90 − p10) / (2 · z90); devices are assumed independent, so the sum's
  σ = sqrt(Σ σ_i²) and its p10 / p90 = Σ p50 ∓ z90 · σ. Independence is the usual
  assumption and gives a lower bound of the spread when devices are positively
  correlated; summing the quantiles would instead assume perfect correlation.
  Within one device and one period the slots are taken as perfectly correlated
  (its σ for the period is the mean of its slots' σ), the cautious choice.
"""

from __future__ import annotations

import numpy as np

AGGS = ("sum", "mean", "min", "max")
FORECAST_AGGS = ("sum", "mean")
Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def device_periods(slots: np.ndarray, per_period: int) -> np.ndarray:
    """(n, m·k) slot values → (n, m): each device's mean over the slots of each period
    that have a value, NaN where it has none."""
    n, width = slots.shape
    blocks = slots.reshape(n, width // per_period, per_period)
    present = ~np.isnan(blocks)
    counts = present.sum(axis=2)
    sums = np.where(present, blocks, 0.0).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def across(values: np.ndarray, agg: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) per-device values → ((m,) the aggregate over the devices that have a
    value, NaN where none has; (m,) how many have one)."""
    if agg not in AGGS:
        raise ValueError(f"agg must be one of {AGGS}, got {agg!r}")
    present = ~np.isnan(values)
    counts = present.sum(axis=0)
    if values.shape[0] == 0:
        return np.full(values.shape[1], np.nan), counts
    if agg in ("sum", "mean"):
        out = np.where(present, values, 0.0).sum(axis=0)
        if agg == "mean":
            out = out / np.maximum(counts, 1)
    elif agg == "min":
        out = np.where(present, values, np.inf).min(axis=0)
    else:
        out = np.where(present, values, -np.inf).max(axis=0)
    return np.where(counts > 0, out, np.nan), counts


def sigma(p10: np.ndarray, p90: np.ndarray) -> np.ndarray:
    """The σ of a normal whose 10th and 90th percentiles are p10 and p90."""
    return np.maximum(p90 - p10, 0.0) / (2 * Z90)


def forecast_across(
    p50: np.ndarray, p10: np.ndarray, p90: np.ndarray, per_period: int, agg: str
) -> dict[str, np.ndarray]:
    """(n, m·k) per-device p50 / p10 / p90 → per period: the aggregate of the p50s
    (``value``), the p10 and p90 of the aggregate, and the devices counted."""
    if agg not in FORECAST_AGGS:
        raise ValueError(f"agg must be one of {FORECAST_AGGS} for forecasts, got {agg!r}")
    p10 = np.where(np.isnan(p10), p50, p10)
    p90 = np.where(np.isnan(p90), p50, p90)
    centre = device_periods(p50, per_period)
    spread = device_periods(sigma(p10, p90), per_period)
    value, counts = across(centre, "sum")
    variance = np.where(np.isnan(spread), 0.0, spread**2).sum(axis=0)
    sd = np.sqrt(variance)
    if agg == "mean":
        value, sd = value / np.maximum(counts, 1), sd / np.maximum(counts, 1)
    sd = np.where(counts > 0, sd, np.nan)
    return {"value": value, "p10": value - Z90 * sd, "p90": value + Z90 * sd, "devices": counts}
