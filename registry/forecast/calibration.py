"""The p10 / p90 band of a forecast: split-conformal quantiles of its own back-test errors.

Each back-cast day of a fit is forecast only from the days before it, as the
forecast day is (the blend's few weights are chosen on the same days, which
barely narrows the errors), so the errors on those days are an honest sample
of the errors to come. Per device and slot, the calibration set is the
errors at the same time of day, +/- ``HALF_WINDOW`` slots, over every
back-cast day; the band adds to the forecast their conformal quantiles, the
ceil(0.9 (m + 1))-th smallest of m for p90 and the floor(0.1 (m + 1))-th for
p10, the finite-sample rule that gives at least 80 % coverage when errors
are exchangeable.

A band is not clipped to the range the history has shown (a warm week can
need more than the last four weeks' maximum); only the sign is kept: a device
that has never exported is not forecast to, nor a generator to draw power.
"""

from __future__ import annotations

import numpy as np

HALF_WINDOW = 4  # slots either side of a time of day pooled into its errors
LOW, HIGH = 0.1, 0.9


def conformal_band(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) offsets (n, 96) from back-cast residuals (n, days, 96), actual - forecast, NaN ignored."""
    h = HALF_WINDOW
    wrapped = np.concatenate([residuals[..., -h:], residuals, residuals[..., :h]], axis=-1)
    windows = np.lib.stride_tricks.sliding_window_view(wrapped, 2 * h + 1, axis=-1)
    n, days, slots, width = windows.shape
    pooled = windows.transpose(0, 2, 1, 3).reshape(n * slots, days * width)
    ordered = np.sort(pooled, axis=1)  # NaN last
    m = (~np.isnan(pooled)).sum(axis=1)
    low = np.clip(np.floor(LOW * (m + 1)).astype(int) - 1, 0, None)
    high = np.clip(np.ceil(HIGH * (m + 1)).astype(int) - 1, 0, np.maximum(m - 1, 0))
    pick = np.take_along_axis(ordered, np.stack([low, high], axis=1), axis=1)
    pick = np.where(m[:, None] > 0, np.nan_to_num(pick), 0.0)
    return pick[:, 0].reshape(n, slots), pick[:, 1].reshape(n, slots)


def sign_bounds(days: np.ndarray, *bands: np.ndarray) -> list[np.ndarray]:
    """Each band kept on the side of zero the device has always been on (n, 96 each)."""
    floor = np.where(np.nanmin(days, axis=(1, 2)) >= 0, 0.0, -np.inf)[:, None]
    ceiling = np.where(np.nanmax(days, axis=(1, 2)) <= 0, 0.0, np.inf)[:, None]
    return [np.clip(band, floor, ceiling) for band in bands]
