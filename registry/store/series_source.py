"""What an aggregated series reads (docs/timeseries.md, "Aggregated series"): the devices
selected, then their measurements or latest consumption forecasts, one UTC day at a time.

* :func:`select_devices`: the ids of the devices matching equality conditions (the
  caller's scope and the selection, ANDed) and an optional geo condition on
  ``location``; on the embedded store one pass over the stored devices, on MongoDB one
  indexed ``find`` projected to ``device_id``.
* :func:`measured_days`: per UTC day of the window, a (devices, slots) matrix of mean kW
  per 15-minute slot (:func:`registry.store.timeseries.slot_matrix`: one bucket read per
  device and day, by ``_id`` on the embedded store, one ``find`` per day on MongoDB).
* :func:`forecast_days`: the same shape for the p50 / p10 / p90 of each device's newest
  consumption forecast that overlaps the window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from registry.store import embedded, geo, timeseries
from registry.store.clock import as_utc
from schemas.vocabulary import SLOT_SECONDS, SLOTS_PER_DAY


def select_devices(db: Any, conditions: Sequence[tuple[str, str]], area: dict[str, Any] | None) -> list[str]:
    """Ids of the devices with every ``field == value`` of ``conditions`` and, with
    ``area``, a ``location`` inside it (a ``$geoWithin`` condition), sorted."""
    wanted: dict[str, str] = {}
    for field, value in conditions:
        if wanted.setdefault(field, value) != value:
            return []  # two different values for one field: nothing matches
    devices = db["devices"]
    if getattr(devices, "embedded", False):
        inside = geo.parse_clause("location", area).matches if area else None

        def keep(doc: dict[str, Any]) -> bool:
            if any(doc.get(field) != value for field, value in wanted.items()):
                return False
            if inside is None:
                return True
            point = geo.point_of(doc.get("location"))
            return point is not None and inside(*point)

        found = embedded.scan(devices, keep)
    else:
        spec: dict[str, Any] = dict(wanted)
        if area:
            spec["location"] = area
        found = devices.find(spec, {"device_id": 1})
    return sorted({doc["device_id"] for doc in found if doc.get("device_id")})


def window_days(start: datetime, end: datetime) -> Iterator[tuple[datetime, int, int]]:
    """(UTC day, first slot, end slot) of each day [start, end) touches: the slots of
    that day inside the window."""
    for day in timeseries.days_between(start, end):
        lo = max(0, int((start - day).total_seconds()) // SLOT_SECONDS)
        hi = min(SLOTS_PER_DAY, -(-int((end - day).total_seconds()) // SLOT_SECONDS))
        yield day, lo, hi


def owners_of(db: Any, device_ids: Sequence[str]) -> np.ndarray:
    """Each device's household as a small index (devices of one account share one)."""
    accounts = {
        d["device_id"]: d.get("account_id")
        for d in db["devices"].find({"device_id": {"$in": list(device_ids)}}, {"device_id": 1, "account_id": 1})
    }
    index: dict[Any, int] = {}
    return np.array([index.setdefault(accounts.get(d) or d, len(index)) for d in device_ids], dtype=np.int64)


def measured_days(db: Any, device_ids: Sequence[str], start: datetime, end: datetime) -> Iterator[np.ndarray]:
    """Per day of the window, (devices, slots of that day in the window) mean kW; NaN
    where a device has no reading in a slot."""
    buckets = db[timeseries.COLLECTION]
    for day, lo, hi in window_days(start, end):
        yield timeseries.slot_matrix(buckets, device_ids, day, 1)[:, lo:hi]


def latest_forecasts(db: Any, device_ids: Sequence[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per device, its newest consumption forecast (latest ``issued_at``, then ``start``)
    that overlaps [start, end)."""
    wanted = set(device_ids)
    forecasts = db["forecasts"]
    if getattr(forecasts, "embedded", False):
        docs = embedded.scan(forecasts, lambda d: d.get("kind") == "consumption" and d.get("device_id") in wanted)
    else:
        spec = {"kind": "consumption", "device_id": {"$in": sorted(wanted)}, "start": {"$lt": end}}
        docs = forecasts.find(
            spec, {"device_id": 1, "issued_at": 1, "start": 1, "resolution": 1, "values": 1, "quantiles": 1}
        )
    newest: dict[str, tuple[tuple[datetime, datetime], dict[str, Any]]] = {}
    for doc in docs:
        begins = as_utc(doc["start"])
        if doc.get("resolution", SLOT_SECONDS) != SLOT_SECONDS or not doc.get("values"):
            continue
        if begins >= end or begins + timedelta(seconds=SLOT_SECONDS * len(doc["values"])) <= start:
            continue
        key = (as_utc(doc.get("issued_at") or begins), begins)
        if doc["device_id"] not in newest or key > newest[doc["device_id"]][0]:
            newest[doc["device_id"]] = (key, doc)
    return [newest[d][1] for d in sorted(newest)]


def forecast_days(
    db: Any, device_ids: Sequence[str], start: datetime, end: datetime
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per day of the window, (forecasts, slots of that day in the window) p50, p10 and
    p90 of each device's newest forecast; NaN where it says nothing."""
    rows = []
    for doc in latest_forecasts(db, device_ids, start, end):
        quantiles = doc.get("quantiles") or {}
        p50 = np.array(doc["values"], dtype=float)
        p10 = np.array(quantiles.get("p10") or doc["values"], dtype=float)
        p90 = np.array(quantiles.get("p90") or doc["values"], dtype=float)
        offset = int((as_utc(doc["start"]) - start).total_seconds()) // SLOT_SECONDS
        rows.append((offset, p50, p10, p90))
    for day, lo, hi in window_days(start, end):
        first = int((day - start).total_seconds()) // SLOT_SECONDS + lo  # the day's first slot in the window
        out = np.full((3, len(rows), hi - lo), np.nan)
        for i, (offset, *series) in enumerate(rows):
            a, b = max(first, offset), min(first + hi - lo, offset + len(series[0]))
            if a < b:
                for q, values in enumerate(series):
                    out[q, i, a - first : b - first] = values[a - offset : b - offset]
        yield out[0], out[1], out[2]
