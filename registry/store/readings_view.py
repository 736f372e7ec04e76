"""The measurements collection as readers know it, one document per reading, kept in day buckets.

``db["measurements"]`` is a :class:`ReadingsView` over the buckets of
:mod:`registry.store.timeseries`: Eve's GET (where, sort, pages, projection, the
caller's scope added by the data layer), item GET and DELETE by reading id, and
the raw store in tests see readings as before. A query is planned on the
buckets first: its top-level clauses on ``device_id`` (a value or ``$in``), the
owners (a value) and ``timestamp`` (a value or a range) choose the buckets (by
``_id`` on the embedded store when devices and both ends of the range are known);
any other clause (``$or``, ``power_kw``, ``status.mode`` …) is evaluated on each
reading of those buckets with mongomock's matcher, the same on both backends.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from mongomock.filtering import filter_applies
from pymongo.errors import DuplicateKeyError

from registry.store import embedded, timeseries
from registry.store.clock import as_utc
from registry.store.timeseries import ARRAYS, SLOT_SECONDS

MAX_PROBED_BUCKETS = 50_000  # beyond this many (device, day) ids a scan is cheaper


@dataclass
class Plan:
    devices: set[str] | None = None
    owners: dict[str, Any] = field(default_factory=dict)
    begin: datetime | None = None  # inclusive
    end: datetime | None = None  # inclusive
    begin_open: bool = False
    end_open: bool = False
    exact: bool = True  # the clauses above are the whole filter
    empty: bool = False


def plan(spec: dict[str, Any] | None) -> Plan:
    result = Plan()
    for name, condition in _clauses(spec or {}, result):
        if name == "_id":
            parsed = timeseries.parse_reading_id(condition)
            if parsed is None:
                result.empty = True
                continue
            _devices(result, {parsed[0]})
            _bound(result, "$gte", parsed[1])
            _bound(result, "$lte", parsed[1])
        elif name == "device_id" and isinstance(condition, str):
            _devices(result, {condition})
        elif name == "device_id" and _only(condition, "$in") and isinstance(condition["$in"], list):
            _devices(result, {d for d in condition["$in"] if isinstance(d, str)})
        elif name in timeseries.OWNERS and isinstance(condition, str):
            if result.owners.setdefault(name, condition) != condition:
                result.empty = True
        elif name == "timestamp" and isinstance(condition, datetime):
            _bound(result, "$gte", condition)
            _bound(result, "$lte", condition)
        elif name == "timestamp" and _time_range(condition):
            for op, value in condition.items():
                _bound(result, op, value)
        else:
            result.exact = False
    return result


def _clauses(spec: dict[str, Any], result: Plan) -> list[tuple[str, Any]]:
    out = []
    for name, condition in spec.items():
        if name == "$and" and isinstance(condition, list) and all(isinstance(c, dict) for c in condition):
            for part in condition:
                out += _clauses(part, result)
        elif name.startswith("$"):
            result.exact = False
        else:
            out.append((name, condition))
    return out


def _only(condition: Any, op: str) -> bool:
    return isinstance(condition, dict) and list(condition) == [op]


def _time_range(condition: Any) -> bool:
    ops = {"$gte", "$gt", "$lte", "$lt"}
    return (
        isinstance(condition, dict)
        and bool(condition)
        and set(condition) <= ops
        and all(isinstance(v, datetime) for v in condition.values())
    )


def _devices(result: Plan, devices: set[str]) -> None:
    result.devices = devices if result.devices is None else result.devices & devices


def _bound(result: Plan, op: str, value: datetime) -> None:
    value = as_utc(value)
    if op in ("$gte", "$gt"):
        if result.begin is None or value > result.begin or (value == result.begin and op == "$gt"):
            result.begin, result.begin_open = value, op == "$gt"
    elif result.end is None or value < result.end or (value == result.end and op == "$lt"):
        result.end, result.end_open = value, op == "$lt"


def within(p: Plan, moment: datetime) -> bool:
    if p.begin is not None and (moment < p.begin or (p.begin_open and moment == p.begin)):
        return False
    return p.end is None or not (moment > p.end or (p.end_open and moment == p.end))


def candidate_buckets(buckets: Any, p: Plan) -> list[dict[str, Any]]:
    """The buckets that can hold a matching reading."""
    if p.empty or p.devices == set():
        return []
    if p.devices is not None and p.begin is not None and p.end is not None:
        days = len(timeseries.days_between(p.begin, p.end + timedelta(seconds=1)))
        if len(p.devices) * days <= MAX_PROBED_BUCKETS or not buckets.embedded:
            found = timeseries.fetch(buckets, sorted(p.devices), p.begin, p.end + timedelta(seconds=1))
            return [b for b in found if all(b.get(k) == v for k, v in p.owners.items())]
    first = timeseries.day_of(p.begin) if p.begin is not None else None
    last = timeseries.day_of(p.end) if p.end is not None else None
    if buckets.embedded:
        return embedded.scan(buckets, lambda b: _may_hold(b, p, first, last))
    spec: dict[str, Any] = dict(p.owners)
    if p.devices is not None:
        spec["device_id"] = {"$in": sorted(p.devices)}
    days = {**({"$gte": first} if first else {}), **({"$lte": last} if last else {})}
    if days:
        spec["day"] = days
    return list(buckets.find(spec))


def _may_hold(bucket: dict[str, Any], p: Plan, first: datetime | None, last: datetime | None) -> bool:
    if p.devices is not None and bucket["device_id"] not in p.devices:
        return False
    if any(bucket.get(k) != v for k, v in p.owners.items()):
        return False
    day = as_utc(bucket["day"])
    return (first is None or day >= first) and (last is None or day <= last)


class ReadingsView:
    """What Eve and the raw store call on a collection, answered from the buckets."""

    def __init__(self, buckets: Any) -> None:
        self._buckets = buckets
        self.embedded = buckets.embedded
        self._last: tuple[str, list[dict[str, Any]]] | None = None

    def with_options(self, *args: Any, **kwargs: Any) -> ReadingsView:
        return self

    @property
    def raw(self) -> Any:
        return self._buckets.raw

    def index_information(self) -> dict[str, Any]:
        return self._buckets.index_information()

    # --- reads ---

    def matching(self, spec: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Every reading matching ``spec``, in bucket order (kept for a following count)."""
        key = repr(spec)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        p = plan(spec)
        found = []
        for bucket in candidate_buckets(self._buckets, p):
            for reading in timeseries.flatten(bucket):
                if within(p, reading["timestamp"]) and (p.exact or filter_applies(spec, reading)):
                    found.append(reading)
        self._last = (key, found)
        return found

    def find(
        self,
        filter: dict[str, Any] | None = None,
        projection: Any = None,
        *args: Any,
        sort: Any = None,
        skip: int = 0,
        limit: int = 0,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        found = sorted_readings(self.matching(filter), sort)
        found = found[skip : skip + limit] if limit else found[skip:]
        return [projected(r, projection) for r in found]

    def find_one(self, filter: dict[str, Any] | None = None, projection: Any = None, *args: Any, **kwargs: Any) -> Any:
        return next(iter(self.find(filter, projection, limit=1)), None)

    def count_documents(self, filter: dict[str, Any] | None = None, **kwargs: Any) -> int:
        return len(self.matching(filter))

    def distinct(self, key: str, filter: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        values: list[Any] = []
        for reading in self.matching(filter):
            if key in reading and reading[key] not in values:
                values.append(reading[key])
        return values

    # --- writes ---

    def ingest(self, docs: list[dict[str, Any]]) -> list[str]:
        """Store readings, the first value per (device, timestamp) kept; ids in order."""
        self._last = None
        ids = timeseries.store(self._buckets, docs)
        for doc, id_ in zip(docs, ids):
            doc["_id"] = id_
        return ids

    def insert_many(self, docs: list[dict[str, Any]], *args: Any, **kwargs: Any) -> SimpleNamespace:
        """As into a collection with a unique (device, timestamp) index: a reading stored
        already (or twice in ``docs``) raises DuplicateKeyError, and then nothing is stored."""
        docs = list(docs)
        ids = [timeseries.reading_id(d["device_id"], d["timestamp"]) for d in docs]
        if len(set(ids)) < len(ids) or any(self.find({"_id": i}, limit=1) for i in ids):
            raise DuplicateKeyError("E11000 duplicate key error: a reading per device and timestamp")
        return SimpleNamespace(inserted_ids=self.ingest(docs), acknowledged=True)

    def insert_one(self, doc: dict[str, Any], *args: Any, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(inserted_id=self.insert_many([doc]).inserted_ids[0], acknowledged=True)

    def update_one(self, filter: dict[str, Any], update: dict[str, Any], **kwargs: Any) -> SimpleNamespace:
        """``$set`` of a reading's values (``power_kw``, ``energy_kwh``, ``status``)."""
        changes = update.get("$set") or {}
        if set(update) != {"$set"} or not set(changes) <= set(ARRAYS):
            raise NotImplementedError("a reading's update may only $set power_kw, energy_kwh or status")
        found = self.find(filter, limit=1)
        if found:
            self._rewrite(found, changes)
        return SimpleNamespace(matched_count=len(found), modified_count=len(found))

    def delete_many(self, filter: dict[str, Any] | None = None, **kwargs: Any) -> SimpleNamespace:
        found = self.find(filter)
        self._rewrite(found, None)
        return SimpleNamespace(deleted_count=len(found), acknowledged=True)

    def delete_one(self, filter: dict[str, Any] | None = None, **kwargs: Any) -> SimpleNamespace:
        found = self.find(filter, limit=1)
        self._rewrite(found, None)
        return SimpleNamespace(deleted_count=len(found), acknowledged=True)

    def _rewrite(self, readings: list[dict[str, Any]], changes: dict[str, Any] | None) -> None:
        """Change (``changes``) or remove (None) readings in their buckets: rare admin and
        test writes, each bucket replaced whole (on MongoDB only if unchanged meanwhile)."""
        self._last = None
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for reading in readings:
            bid = timeseries.bucket_id(reading["device_id"], timeseries.day_of(reading["timestamp"]))
            by_bucket.setdefault(bid, []).append(reading)
        with embedded.EMBEDDED_WRITE_LOCK if self.embedded else contextlib.nullcontext():
            for bid, group in by_bucket.items():
                self._rewrite_bucket(bid, group, changes)

    def _rewrite_bucket(self, bid: str, group: list[dict[str, Any]], changes: dict[str, Any] | None) -> None:
        found = embedded.by_ids(self._buckets, [bid]) if self.embedded else list(self._buckets.find({"_id": bid}))
        if not found:
            return
        old = found[0]
        doc = {**old, **{name: list(old[name]) for name in ARRAYS}, "extra": dict(old.get("extra") or {})}
        for reading in group:
            second = int((reading["timestamp"] - as_utc(doc["day"])).total_seconds())
            slot, off_slot = divmod(second, SLOT_SECONDS)
            if off_slot and changes is None:
                doc["extra"].pop(str(second), None)
            elif off_slot:
                doc["extra"][str(second)] = {**doc["extra"][str(second)], **changes}
            for name in ARRAYS if not off_slot else ():
                if changes is None:
                    doc[name][slot] = None
                elif name in changes:
                    doc[name][slot] = changes[name]
            doc["n"] -= 1 if changes is None else 0
        if self.embedded:
            if doc["n"] <= 0:
                embedded.drop_ids(self._buckets, [bid])
            else:
                embedded.put(self._buckets, [doc])
        elif doc["n"] <= 0:
            self._buckets.delete_one({"_id": bid, "_updated": old.get("_updated")})
        else:
            self._buckets.replace_one({"_id": bid, "_updated": old.get("_updated")}, doc)


def sorted_readings(readings: list[dict[str, Any]], sort: Any) -> list[dict[str, Any]]:
    """MongoDB's order: each key in turn, missing values first when ascending."""
    keys = list(sort.items()) if isinstance(sort, dict) else list(sort or [])
    out = list(readings)
    for name, direction in reversed(keys):
        out.sort(key=lambda r, name=name: _order(_get(r, name)), reverse=direction == -1)
    return out


def _get(reading: dict[str, Any], name: str) -> Any:
    value: Any = reading
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _order(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (5, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, datetime):
        return (6, as_utc(value))
    return (3, repr(value))


def projected(reading: dict[str, Any], projection: Any) -> dict[str, Any]:
    if not projection:
        return reading
    if isinstance(projection, (list, tuple)):
        projection = dict.fromkeys(projection, 1)
    included = {k.split(".")[0] for k, v in projection.items() if v and k != "_id"}
    if included:
        keep = included | ({"_id"} if projection.get("_id", 1) else set())
        return {k: v for k, v in reading.items() if k in keep}
    excluded = {k for k, v in projection.items() if not v}
    return {k: v for k, v in reading.items() if k not in excluded}
