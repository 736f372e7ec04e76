"""Whole day buckets at once from arrays, for seeding and benches (docs/timeseries.md).

Per-reading upserts (:func:`registry.store.timeseries.store`) would dominate a load
of weeks of history; here each device's days are built as bucket documents from a
numpy series and stored in one call. Days already stored take the ordinary path, so
the first value per (device, timestamp) is still the one kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from registry.store import embedded
from registry.store.clock import as_utc, utcnow
from registry.store.timeseries import OWNERS, bucket_id, day_of, new_bucket, store
from schemas.vocabulary import SLOT_SECONDS, SLOTS_PER_DAY


def load_series(
    buckets: Any,
    device: dict[str, Any],
    begin: datetime,
    power: np.ndarray,
    energy: np.ndarray | None = None,
    now: datetime | None = None,
) -> int:
    """A device's readings at consecutive slot starts from ``begin`` (a slot's start), in
    whole buckets at once: for seeding and benches, where per-reading upserts would
    dominate. Days stored already take the ordinary path (first value kept).
    Returns the number of readings given."""
    now, begin = now or utcnow(), as_utc(begin)
    first_day = day_of(begin)
    lead = int((begin - first_day).total_seconds()) // SLOT_SECONDS
    days = -(-(lead + len(power)) // SLOTS_PER_DAY)
    width = days * SLOTS_PER_DAY
    grids = {"power_kw": _padded(power, lead, width)}
    if energy is not None:
        grids["energy_kwh"] = _padded(energy, lead, width)
    naive = bool(getattr(buckets, "embedded", False))
    ids = [bucket_id(device["device_id"], first_day + timedelta(days=d)) for d in range(days)]
    if naive:
        stored = {doc["_id"] for doc in embedded.by_ids(buckets, ids)}
    else:
        stored = {doc["_id"] for doc in buckets.find({"_id": {"$in": ids}}, {"_id": 1})}
    fresh, later = [], []
    for d, bid in enumerate(ids):
        cut = slice(d * SLOTS_PER_DAY, (d + 1) * SLOTS_PER_DAY)
        day = first_day + timedelta(days=d)
        if bid in stored:
            later += _readings_of(device, day, {k: g[cut] for k, g in grids.items()})
            continue
        doc = new_bucket(bid, {**device, "timestamp": day}, now, naive)
        for name, grid in grids.items():
            doc[name] = [None if v != v else v for v in grid[cut].tolist()]
        doc["n"] = int(np.count_nonzero(~np.isnan(grids["power_kw"][cut])))
        doc["_updated"] = doc["_created"]
        if doc["n"]:
            fresh.append(doc)
    if naive:
        embedded.put(buckets, fresh)
    elif fresh:
        buckets.insert_many(fresh, ordered=False)
    if later:
        store(buckets, later, now)
    return len(power)


def _padded(values: np.ndarray, lead: int, width: int) -> np.ndarray:
    grid = np.full(width, np.nan)
    grid[lead : lead + len(values)] = values
    return grid


def _readings_of(device: dict[str, Any], day: datetime, grids: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    owners = {owner: device.get(owner) for owner in OWNERS}
    return [
        {
            "device_id": device["device_id"],
            "timestamp": day + timedelta(seconds=slot * SLOT_SECONDS),
            **owners,
            **{name: float(grid[slot]) for name, grid in grids.items()},
        }
        for slot in np.flatnonzero(~np.isnan(grids["power_kw"]))
    ]
