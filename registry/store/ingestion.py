"""Inserts that keep one document per key: a re-sent document is answered with the
stored one (``ingest_once_by`` on a resource, e.g. a measurement per device and time).

A unique index on the key makes it hold against concurrent inserts: on MongoDB
an unordered ``insert_many`` skips the duplicates it meets (a reading another
request stored meanwhile); on the embedded store the check and the insert are
one write under the write lock, with one pass over the stored documents
(mongomock would scan the whole collection once per document inserted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

from registry.store import embedded
from registry.store.clock import as_utc
from registry.store.embedded import EMBEDDED_WRITE_LOCK

DUPLICATE_KEY = 11000


def is_duplicate_key(error: Exception) -> bool:
    """A duplicate key, alone or as the first error of a bulk write."""
    if isinstance(error, BulkWriteError):
        codes = {e.get("code") for e in (error.details or {}).get("writeErrors", [])}
        return codes == {DUPLICATE_KEY}
    return getattr(error, "code", None) == DUPLICATE_KEY


def insert_once(collection: Any, docs: list[dict[str, Any]], key: list[str]) -> list[Any]:
    """Insert the documents whose ``key`` fields are not stored yet (nor earlier in
    ``docs``); every document gets the ``_id`` it is stored under."""
    if getattr(collection, "embedded", False):
        with EMBEDDED_WRITE_LOCK:  # the check and the insert are one write, as on MongoDB
            new = _split(docs, key, embedded.matching(collection, key[0], {d.get(key[0]) for d in docs}, key))
            if new:
                with embedded.unique_checks_skipped(collection):
                    collection.insert_many(new)
    else:
        new = _split(docs, key, _stored(collection, docs, key))
        if new:
            _insert_skipping_duplicates(collection, new, key)
    return [doc["_id"] for doc in docs]


def _split(docs: list[dict[str, Any]], key: list[str], stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give known documents the stored ``_id``; return the new ones (with fresh ids)."""
    known = {_key(d, key): d["_id"] for d in stored}
    new: list[dict[str, Any]] = []
    for doc in docs:
        if _key(doc, key) not in known:
            doc.setdefault("_id", ObjectId())
            known[_key(doc, key)] = doc["_id"]
            new.append(doc)
        doc["_id"] = known[_key(doc, key)]
    return new


def _stored(collection: Any, docs: list[dict[str, Any]], key: list[str]) -> list[dict[str, Any]]:
    spec = {field: {"$in": list({d.get(field) for d in docs})} for field in key}
    return list(collection.find(spec, {field: 1 for field in key}))


def _insert_skipping_duplicates(collection: Any, new: list[dict[str, Any]], key: list[str]) -> None:
    """Unordered insert (MongoDB): a document another request stored meanwhile takes its id."""
    try:
        collection.insert_many(new, ordered=False)
    except BulkWriteError as error:
        if not all(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise
        _split(new, key, _stored(collection, new, key))


def _key(doc: dict[str, Any], key: list[str]) -> tuple:
    return tuple(_comparable(doc.get(field)) for field in key)


def _comparable(value: Any) -> Any:
    """Dates compare as aware UTC (mongomock keeps them naive, requests bring them aware)."""
    return as_utc(value) if isinstance(value, datetime) else value
