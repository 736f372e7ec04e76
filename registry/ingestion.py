"""Inserts that keep one document per key: a re-sent document is answered with the
stored one (``ingest_once_by`` on a resource, e.g. a measurement per device and time).

A unique index on the key makes it hold against concurrent inserts: on MongoDB
an unordered ``insert_many`` skips the duplicates it meets; on the embedded
store one scan under the write lock finds them (mongomock would scan the
collection once per document inserted).
"""
from __future__ import annotations

from typing import Any, Callable

from bson import ObjectId
from pymongo.errors import BulkWriteError

from registry.clock import as_utc
from registry.embedded import EMBEDDED_WRITE_LOCK, bulk_insert, find_all

DUPLICATE_KEY = 11000


def is_duplicate_key(error: Exception) -> bool:
    """A duplicate key, alone or as the first error of a bulk write."""
    if isinstance(error, BulkWriteError):
        codes = {e.get("code") for e in (error.details or {}).get("writeErrors", [])}
        return codes == {DUPLICATE_KEY}
    return getattr(error, "code", None) == DUPLICATE_KEY


def insert_once(collection: Any, docs: list[dict[str, Any]], key: list[str]) -> list[Any]:
    """:func:`insert_new`, atomic on the embedded store too."""
    if getattr(collection, "embedded", False):
        with EMBEDDED_WRITE_LOCK:
            return insert_new(collection, docs, key)
    return insert_new(collection, docs, key)


def insert_new(collection: Any, docs: list[dict[str, Any]], key: list[str]) -> list[Any]:
    """Insert the documents whose ``key`` fields are not stored yet (nor earlier in
    ``docs``); every document gets the ``_id`` it is stored under. A unique index
    on ``key`` makes this safe against concurrent inserts on both backends."""
    def key_of(doc: dict[str, Any]) -> tuple:
        return tuple(_comparable(doc.get(field)) for field in key)

    stored = {key_of(d): d["_id"] for d in _existing(collection, docs, key)}
    new: list[dict[str, Any]] = []
    for doc in docs:
        if key_of(doc) in stored:
            doc["_id"] = stored[key_of(doc)]
        else:
            doc.setdefault("_id", ObjectId())
            stored[key_of(doc)] = doc["_id"]
            new.append(doc)
    if new:
        _insert_ignoring_duplicates(collection, new, key, key_of)
    return [doc["_id"] for doc in docs]


def _existing(collection: Any, docs: list[dict[str, Any]], key: list[str]) -> list[dict[str, Any]]:
    spec = {field: {"$in": list({_comparable(d.get(field)) for d in docs})} for field in key}
    return find_all(collection, spec, {field: 1 for field in key})


def _insert_ignoring_duplicates(collection: Any, new: list[dict[str, Any]], key: list[str],
                                key_of: Callable[[dict[str, Any]], tuple]) -> None:
    """Unordered insert; a document that another request stored meanwhile takes its id."""
    if getattr(collection, "embedded", False):
        bulk_insert(collection, new)  # under the caller's lock: nothing was stored meanwhile
        return
    try:
        collection.insert_many(new, ordered=False)
    except BulkWriteError as error:
        if not all(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise
        stored = {key_of(d): d["_id"] for d in _existing(collection, new, key)}
        for doc in new:
            doc["_id"] = stored.get(key_of(doc), doc["_id"])


def _comparable(value: Any) -> Any:
    return as_utc(value) if hasattr(value, "tzinfo") and hasattr(value, "year") else value
