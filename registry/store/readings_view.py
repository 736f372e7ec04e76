"""The measurements collection as readers know it, one document per reading, kept in day buckets.

``db["measurements"]`` is a :class:`ReadingsView` over the buckets of
:mod:`registry.store.timeseries`: Eve's GET (where, sort, pages, projection, the
caller's scope added by the data layer), item GET and DELETE by reading id, and
the raw store in tests see readings as before. A query is planned on the
buckets first: its top-level clauses on ``device_id`` (a value or ``$in``), the
owners (a value) and ``timestamp`` (a value or a range) choose the buckets (by
``_id`` on the embedded store when devices and both ends of the range are known);
any other clause (``$or``, ``power_kw``, ``status.mode`` …) is evaluated on each
reading of those buckets with mongomock's matcher, the same on both backends
(the planning: :mod:`registry.store.readings_query`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from mongomock.filtering import filter_applies
from pymongo.errors import DuplicateKeyError, OperationFailure
from werkzeug.exceptions import BadRequest

from registry.store import embedded, geo_filters, timeseries
from registry.store.clock import as_utc
from registry.store.readings_query import candidate_buckets, plan, within
from registry.store.timeseries import ARRAYS, SLOT_SECONDS


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
        if spec and geo_filters.has_geo(spec):
            raise BadRequest(description="`where`: readings have no location; geo operators do not apply to them")
        p = plan(spec)
        found = []
        try:
            for bucket in candidate_buckets(self._buckets, p):
                for reading in timeseries.flatten(bucket):
                    if within(p, reading["timestamp"]) and (p.exact or filter_applies(spec, reading)):
                        found.append(reading)
        except NotImplementedError as cause:  # as GeoCollection.count says it for the other collections
            raise BadRequest(description=f"`where`: {cause} (the embedded store lacks this operator)") from cause
        except (OperationFailure, TypeError, ValueError) as cause:
            raise BadRequest(description=f"`where` was refused by the store: {cause}") from cause
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
