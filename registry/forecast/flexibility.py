"""How far each device can move from its consumption forecast: upward and
downward flexibility as forecast results (pure functions over numpy arrays)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from registry.forecast.model import ForecastResult


@dataclass(frozen=True)
class FlexibilityForecast:
    """Upward and downward flexibility (kW >= 0) as two forecast results."""

    up: ForecastResult
    down: ForecastResult


def flexibility_forecast(
    consumption_forecast: ForecastResult,
    max_capacity: np.ndarray,
    available_capacity: np.ndarray,
    availability_flags: Sequence[str],
    min_power: np.ndarray | None = None,
) -> FlexibilityForecast:
    """How far each device can move from its forecast, per slot.

    down = min(forecast - min_power, available_capacity), up =
    min(max_capacity - forecast, available_capacity), both >= 0, and zero
    where the device's availability is not "yes". min_power defaults to 0
    (a load can at most switch off); pass the (negative) generation forecast
    for a generator that can only curtail. A NaN available_capacity means
    "no extra limit"; a NaN max_capacity means "cannot increase". Bands come
    from the consumption quantiles: more consumption, more to shed.
    """
    cons = consumption_forecast
    avail = _column(available_capacity, np.inf)
    gate = (np.asarray(availability_flags) == "yes")[:, None]
    floor = _column(min_power, 0.0) if min_power is not None else 0.0
    ceiling = _column(max_capacity, np.nan)

    def down(power: np.ndarray) -> np.ndarray:
        return np.where(gate, np.clip(np.minimum(power - floor, avail), 0, None), 0.0)

    def up(power: np.ndarray) -> np.ndarray:
        room = np.nan_to_num(np.minimum(ceiling - power, avail))  # NaN ceiling: no room
        return np.where(gate, np.clip(room, 0, None), 0.0)

    flex = dict(model=f"{cons.model}+flex", backtest_mae=None)
    return FlexibilityForecast(
        up=replace(cons, p50=up(cons.p50), p10=up(cons.p90), p90=up(cons.p10), direction="up", **flex),
        down=replace(cons, p50=down(cons.p50), p10=down(cons.p10), p90=down(cons.p90), direction="down", **flex),
    )


def _column(values: np.ndarray | Sequence[float] | None, missing: float) -> np.ndarray:
    """Per-device values as an (n, 1) float column, NaN replaced by `missing`."""
    column = np.asarray(values, dtype=float).reshape(-1, 1)
    return np.where(np.isnan(column), missing, column)
