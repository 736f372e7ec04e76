"""Measurements as day buckets (docs/timeseries.md): one document per device and UTC day.

A bucket ``"<device_id>/<YYYY-MM-DD>"`` holds the device's readings of that day:
the reading taken at a slot's start (00:00, 00:15, … 23:45) in three 96-item
arrays (``power_kw``, ``energy_kwh``, ``status``; ``None`` where nothing was
measured), a reading between slot starts (a VEN reporting every minute) in
``extra`` keyed by its second of the day, the owners copied from the device, and
``n``, the number of readings. The key (device, day) is unique, and a reading is
unique per (device, timestamp): the first value written for a slot is kept, a
re-sent reading changes nothing, a late one fills its empty slot.

Writes are upserts per bucket: on the embedded store read, changed and put back
by ``_id`` under the write lock (:mod:`registry.store.embedded`); on MongoDB one
``$setOnInsert`` per bucket, then one conditional ``$set`` per reading (matched only
while its slot is empty), so concurrent writers keep the first value too.
Reads by device and day fetch buckets by ``_id`` on the embedded store (mongomock
has no indexes) and through the ``device_day`` index on MongoDB.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pymongo import ASCENDING, UpdateOne

from registry.store import embedded
from registry.store.clock import as_utc, utcnow
from schemas.vocabulary import DATE_FORMAT, SLOT_SECONDS, SLOTS_PER_DAY

READINGS = "measurements"  # the API's resource: a reading per document, as readers see it
COLLECTION = "measurement_days"  # where they are kept: a bucket per device and day
ARRAYS = ("power_kw", "energy_kwh", "status")
OWNERS = ("account_id", "aggregator_id")


def day_of(moment: datetime) -> datetime:
    return as_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_id(device_id: str, day: datetime) -> str:
    return f"{device_id}/{day:%Y-%m-%d}"


def reading_id(device_id: str, moment: datetime) -> str:
    """A reading's id in the API: its device and time, ``<device_id>@<YYYY-MM-DDTHH:MM:SSZ>``."""
    return f"{device_id}@{as_utc(moment).strftime(DATE_FORMAT)}"


def parse_reading_id(value: Any) -> tuple[str, datetime] | None:
    if not isinstance(value, str) or "@" not in value:
        return None
    device_id, _, moment = value.partition("@")
    try:
        return device_id, datetime.strptime(moment, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def etag(reading: dict[str, Any]) -> str:
    values = "|".join(str(reading.get(k)) for k in ("_id", *ARRAYS))
    return hashlib.sha1(values.encode()).hexdigest()


def ensure_indexes(db: Any) -> None:
    """The buckets' indexes (``run.py migrate`` on MongoDB; at start on the embedded store)."""
    buckets = db[COLLECTION]
    buckets.create_index([("device_id", ASCENDING), ("day", ASCENDING)], unique=True, name="device_day")
    buckets.create_index(
        [("aggregator_id", ASCENDING), ("account_id", ASCENDING), ("day", ASCENDING)], name="owner_day"
    )
    buckets.create_index([("day", ASCENDING)], name="day")


# --- writing -------------------------------------------------------------------------------


def store(buckets: Any, readings: Sequence[dict[str, Any]], now: datetime | None = None) -> list[str]:
    """Store readings (``device_id``, ``timestamp``, ``power_kw``, optional ``energy_kwh``
    and ``status``, the owners); keep the first value per (device, timestamp).
    Returns each reading's id, in order."""
    now = now or utcnow()
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    ids = []
    for reading in readings:
        moment = as_utc(reading["timestamp"])
        day = day_of(moment)
        grouped[bucket_id(reading["device_id"], day)].append((int((moment - day).total_seconds()), reading))
        ids.append(reading_id(reading["device_id"], moment))
    if getattr(buckets, "embedded", False):
        _store_embedded(buckets, grouped, now)
    elif grouped:
        _store_mongodb(buckets, grouped, now)
    return ids


def new_bucket(bid: str, reading: dict[str, Any], now: datetime, naive: bool) -> dict[str, Any]:
    day = day_of(reading["timestamp"])
    return {
        "_id": bid,
        "device_id": reading["device_id"],
        **{owner: reading.get(owner) for owner in OWNERS},
        "day": day.replace(tzinfo=None) if naive else day,
        **{name: [None] * SLOTS_PER_DAY for name in ARRAYS},
        "extra": {},
        "n": 0,
        "_created": now.replace(tzinfo=None) if naive else now,
    }


def _values(reading: dict[str, Any]) -> dict[str, Any]:
    return {name: reading.get(name) for name in ARRAYS if reading.get(name) is not None}


def _store_embedded(buckets: Any, grouped: dict[str, list[tuple[int, dict[str, Any]]]], now: datetime) -> None:
    naive_now = now.replace(tzinfo=None)  # as mongomock keeps dates
    with embedded.EMBEDDED_WRITE_LOCK:  # read, change, put back: one write, as on MongoDB
        stored = {doc["_id"]: doc for doc in embedded.by_ids(buckets, list(grouped))}
        changed = []
        for bid, entries in grouped.items():
            old = stored.get(bid) or new_bucket(bid, entries[0][1], now, naive=True)
            doc = {**old, **{name: list(old[name]) for name in ARRAYS}, "extra": dict(old["extra"])}
            added = 0
            for second, reading in entries:
                added += _fill(doc, second, reading)
            if added or bid not in stored:
                doc["n"] += added
                doc["_updated"] = naive_now
                changed.append(doc)
        embedded.put(buckets, changed)


def _fill(doc: dict[str, Any], second: int, reading: dict[str, Any]) -> int:
    """Write ``reading`` into its place in ``doc`` if that is empty: 1 if written."""
    slot, off_slot = divmod(second, SLOT_SECONDS)
    if off_slot:
        if str(second) in doc["extra"]:
            return 0
        doc["extra"][str(second)] = _values(reading)
        return 1
    if doc["power_kw"][slot] is not None:
        return 0
    for name, value in _values(reading).items():
        doc[name][slot] = dict(value) if isinstance(value, dict) else value
    return 1


def _store_mongodb(buckets: Any, grouped: dict[str, list[tuple[int, dict[str, Any]]]], now: datetime) -> None:
    creations = [
        UpdateOne({"_id": bid}, {"$setOnInsert": new_bucket(bid, entries[0][1], now, naive=False)}, upsert=True)
        for bid, entries in grouped.items()
    ]
    buckets.bulk_write(creations, ordered=False)
    slots = []
    for bid, entries in grouped.items():
        seen = set()
        for second, reading in entries:
            if second in seen:
                continue
            seen.add(second)
            slot, off_slot = divmod(second, SLOT_SECONDS)
            if off_slot:
                spec = {"_id": bid, f"extra.{second}": {"$exists": False}}
                values = {f"extra.{second}": _values(reading)}
            else:
                spec = {"_id": bid, f"power_kw.{slot}": None}
                values = {f"{name}.{slot}": value for name, value in _values(reading).items()}
            slots.append(UpdateOne(spec, {"$set": {**values, "_updated": now}, "$inc": {"n": 1}}))
    buckets.bulk_write(slots, ordered=False)


# --- reading -------------------------------------------------------------------------------


def days_between(begin: datetime, end: datetime) -> list[datetime]:
    """The UTC days that [begin, end) touches (the last one a date can name, 9999-12-31,
    included without stepping past it)."""
    return [day_of(begin) + timedelta(days=k) for k in range(day_count(begin, end))]


def day_count(begin: datetime, end: datetime) -> int:
    """How many UTC days [begin, end) touches, counted without listing them: a client's
    range may span millennia."""
    first, stop = day_of(begin), as_utc(end)
    if stop <= first:
        return 0
    whole, rest = divmod(stop - first, timedelta(days=1))
    return whole + (1 if rest else 0)


def fetch(buckets: Any, device_ids: Iterable[str], begin: datetime, end: datetime) -> list[dict[str, Any]]:
    """The buckets of these devices for the days [begin, end) touches: by ``_id`` on the
    embedded store (the store's own documents: read them, never change them), through
    the ``device_day`` index on MongoDB."""
    device_ids = list(device_ids)
    if getattr(buckets, "embedded", False):
        days = days_between(begin, end)
        return embedded.by_ids(buckets, [bucket_id(d, day) for d in device_ids for day in days])
    count = day_count(begin, end)
    if not count:
        return []
    first = day_of(begin)
    spec = {"device_id": {"$in": device_ids}, "day": {"$gte": first, "$lte": first + timedelta(days=count - 1)}}
    return list(buckets.find(spec))


def flatten(bucket: dict[str, Any]) -> list[dict[str, Any]]:
    """A bucket's readings as the API shows them, in time order."""
    day = as_utc(bucket["day"])
    common = {"device_id": bucket["device_id"], **{owner: bucket.get(owner) for owner in OWNERS}}
    meta = {"_created": as_utc(bucket["_created"]), "_updated": as_utc(bucket.get("_updated") or bucket["_created"])}
    entries = [(slot * SLOT_SECONDS, slot) for slot, kw in enumerate(bucket["power_kw"]) if kw is not None]
    entries += [(int(second), second) for second in bucket.get("extra") or {}]
    if bucket.get("extra"):
        entries.sort()
    out = []
    for second, where in entries:
        if isinstance(where, str):
            values = bucket["extra"][where]
        else:
            values = {name: bucket[name][where] for name in ARRAYS if bucket[name][where] is not None}
        moment = day + timedelta(seconds=second)
        reading = {"_id": reading_id(bucket["device_id"], moment), **common, "timestamp": moment}
        reading.update({k: dict(v) if isinstance(v, dict) else v for k, v in values.items()})
        reading.update(meta)
        reading["_etag"] = etag(reading)
        out.append(reading)
    return out


def slot_matrix(buckets: Any, device_ids: Sequence[str], begin: datetime, days: int) -> np.ndarray:
    """(n, days*96) mean kW per 15-minute slot from ``begin`` (a slot's start) on; NaN where
    nothing was measured. A slot's value is the mean of its readings (the one at its start
    and any between)."""
    begin = as_utc(begin)
    n_slots = days * SLOTS_PER_DAY
    row = {device_id: i for i, device_id in enumerate(device_ids)}
    out = np.full((len(device_ids), n_slots), np.nan)
    for bucket in fetch(buckets, device_ids, begin, begin + timedelta(days=days)):
        first = int((as_utc(bucket["day"]) - begin).total_seconds()) // SLOT_SECONDS
        values = np.array(bucket["power_kw"], dtype=float)
        if bucket.get("extra"):
            values = _with_extra(values, bucket["extra"])
        lo, hi = max(first, 0), min(first + SLOTS_PER_DAY, n_slots)
        out[row[bucket["device_id"]], lo:hi] = values[lo - first : hi - first]
    return out


def _with_extra(values: np.ndarray, extra: dict[str, dict[str, Any]]) -> np.ndarray:
    sums, counts = np.nan_to_num(values), (~np.isnan(values)).astype(float)
    for second, reading in extra.items():
        slot = int(second) // SLOT_SECONDS
        sums[slot] += reading["power_kw"]
        counts[slot] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def power_readings(
    buckets: Any, device_ids: Sequence[str], begin: datetime, end: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """Per device, (timestamp, kW) of every reading in [begin, end), in time order."""
    begin, end = as_utc(begin), as_utc(end)
    out: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for bucket in sorted(fetch(buckets, device_ids, begin, end), key=lambda b: as_utc(b["day"])):
        for reading in flatten(bucket):
            if begin <= reading["timestamp"] < end:
                out[reading["device_id"]].append((reading["timestamp"], reading["power_kw"]))
    return out
