"""The ``forecasts`` documents written from a forecast result: one per device."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from registry.forecast.model import ForecastResult
from registry.forecast.timeseries import iso
from schemas.vocabulary import SLOT_SECONDS

KINDS = ("consumption", "flexibility")


def documents_for(device_ids: Sequence[str], result: ForecastResult, kind: str, model: str | None = None) -> list[dict]:
    """One `forecasts` document per device, in the order of `device_ids`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if len(device_ids) != result.p50.shape[0]:
        raise ValueError(f"{len(device_ids)} device ids for {result.p50.shape[0]} forecasts")
    common = {
        "kind": kind,
        "issued_at": iso(result.issued_at),
        "start": iso(result.start),
        "resolution": SLOT_SECONDS,
        "model": model or result.model,
    }
    if result.direction:
        common["direction"] = result.direction
    rows = zip(
        device_ids, _rounded(result.p50), _rounded(result.p10), _rounded(result.p90), _maes(result, len(device_ids))
    )
    docs = [
        {**common, "device_id": device_id, "values": p50, "quantiles": {"p10": p10, "p90": p90}, "backtest_mae": mae}
        for device_id, p50, p10, p90, mae in rows
    ]
    for doc, fitted_on in zip(docs, result.fitted_on or ()):
        doc["fitted_on"] = dict(fitted_on)
    return docs


def _rounded(values: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(values, dtype=float), 4).tolist()


def _maes(result: ForecastResult, n: int) -> list[float | None]:
    if result.backtest_mae is None:
        return [None] * n
    return [None if np.isnan(m) else round(float(m), 4) for m in result.backtest_mae]
