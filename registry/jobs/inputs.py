"""What the jobs read from the store, shaped for the pure forecasting and advisor functions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from registry.forecast.model import ForecastResult
from registry.store import timeseries
from registry.store.clock import as_utc
from registry.store.embedded import find_all
from schemas.vocabulary import LIVE_CONTRACT_STATES, SLOT_SECONDS, SLOTS_PER_DAY

MAX_SERIES_DAYS = 31  # the longest price series (schemas/prices.py: 2976 slots)


def load_history(db: Any, device_ids: Sequence[str], day: datetime, days: int) -> np.ndarray:
    """(n, days*96) mean kW per 15-minute slot of the ``days`` before ``day``; NaN where nothing
    was measured. Read from the measurements' day buckets (registry/store/timeseries.py)."""
    return timeseries.slot_matrix(db[timeseries.COLLECTION], device_ids, as_utc(day) - timedelta(days=days), days)


def devices_by_id(db: Any, device_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {d["device_id"]: d for d in db["devices"].find({"device_id": {"$in": list(device_ids)}})}


def latest_forecasts(db: Any, spec: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The newest forecast per (device, direction) among those matching ``spec``."""
    latest: dict[tuple[str, str | None], dict[str, Any]] = {}
    for doc in find_all(db["forecasts"], spec, sort=[("start", -1), ("issued_at", -1), ("_id", -1)]):
        latest.setdefault((doc["device_id"], doc.get("direction")), doc)
    return latest


def as_result(docs: Sequence[dict[str, Any]]) -> ForecastResult:
    """Stored consumption forecasts (same start) back as one ForecastResult."""
    p50 = np.array([d["values"] for d in docs], dtype=float)
    quantiles = [d.get("quantiles") or {} for d in docs]
    p10 = np.array([q.get("p10") or d["values"] for q, d in zip(quantiles, docs)], dtype=float)
    p90 = np.array([q.get("p90") or d["values"] for q, d in zip(quantiles, docs)], dtype=float)
    return ForecastResult(
        start=as_utc(docs[0]["start"]),
        issued_at=as_utc(docs[0]["issued_at"]),
        p50=p50,
        p10=p10,
        p90=p90,
        model=docs[0].get("model", "unknown"),
    )


def capacity_columns(devices: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """flexibility_forecast's per-device arguments: a load can switch off and rise
    to max_capacity; a generator (negative power) can only curtail towards 0 kW;
    storage can swing from -max_capacity to +max_capacity."""
    kind = np.array([d.get("device_type", "Demand") for d in devices])
    cap = np.array([d.get("max_capacity", np.nan) for d in devices], dtype=float)
    return {
        "max_capacity": np.where(kind == "Generation", 0.0, cap),
        "available_capacity": np.array([d.get("available_capacity", np.nan) for d in devices], dtype=float),
        "availability_flags": [d.get("availability", "") for d in devices],
        "min_power": np.where(kind == "Storage", -np.nan_to_num(cap), 0.0),
    }


def price_series(db: Any, aggregator: dict[str, Any] | None, aggregator_id: str, day: datetime) -> list[float | None]:
    """96 prices for ``day``: the aggregator's tariff, else its area's, else a global series."""
    begin, end = as_utc(day), as_utc(day) + timedelta(days=1)
    scopes = [{"aggregator_id": aggregator_id}]
    if aggregator and aggregator.get("country"):
        scopes.append({"area": aggregator["country"], "aggregator_id": None})
    scopes.append({"area": None, "aggregator_id": None})
    values: list[float | None] = [None] * SLOTS_PER_DAY
    for scope in reversed(scopes):  # the most specific series written last wins
        spec = {**scope, "start": {"$lt": end, "$gte": begin - timedelta(days=MAX_SERIES_DAYS)}}
        for doc in db["prices"].find(spec, sort=[("start", 1)]):
            _fill(values, doc, begin)
    return values


def _fill(values: list[float | None], doc: dict[str, Any], day_begin: datetime) -> None:
    step = int(doc.get("resolution", SLOT_SECONDS))
    for i, price in enumerate(doc["values"]):
        at = doc["start"] + timedelta(seconds=step * i)
        first = int((at - day_begin).total_seconds() // SLOT_SECONDS)
        for slot in range(max(first, 0), min(first + max(1, step // SLOT_SECONDS), SLOTS_PER_DAY)):
            values[slot] = price


def contract_windows(db: Any, spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per device, the accepted or active contracts matching ``spec``."""
    windows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    query = {**spec, "status": {"$in": list(LIVE_CONTRACT_STATES)}}
    for contract in db["contracts"].find(query, {"device_ids": 1, "start": 1, "end": 1, "status": 1, "direction": 1}):
        for device_id in contract.get("device_ids") or []:
            windows[device_id].append(contract)
    return windows
