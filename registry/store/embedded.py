"""What makes the embedded store (mongomock) behave like MongoDB, and fast enough.

* One write lock per process: mongomock checks unique indexes and update
  filters without a lock (insert, then count; find, then modify), so
  concurrent requests could both win or both lose. With the lock each
  embedded write call is atomic, as a single write is on MongoDB; reads stay
  unlocked. Nothing that takes several calls may rely on it: that is what
  :mod:`registry.store.atomic` is for.
* Latency (``STORE_LATENCY``, tests and benches): every call takes a network
  round trip's time, half before and half after it, so requests interleave
  between their writes as they do against a real server.
* Bulk loads and full reads without mongomock's quadratic costs.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

EMBEDDED_WRITE_LOCK = threading.RLock()
WRITE_METHODS = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "find_one_and_update",
        "find_one_and_replace",
        "find_one_and_delete",
        "bulk_write",
    }
)


def locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` as one atomic write."""

    @functools.wraps(method)
    def atomic_write(*args: Any, **kwargs: Any) -> Any:
        with EMBEDDED_WRITE_LOCK:
            return method(*args, **kwargs)

    return atomic_write


def pause(latency: tuple[float, float] | None) -> None:
    if latency:
        time.sleep(random.uniform(*latency) / 2)


def slowed(method: Callable[..., Any], latency: tuple[float, float]) -> Callable[..., Any]:
    """Half the round trip before the call, half after: another request can act in between."""

    @functools.wraps(method)
    def slowed(*args: Any, **kwargs: Any) -> Any:
        pause(latency)
        try:
            return method(*args, **kwargs)
        finally:
            pause(latency)

    return slowed


def bulk_insert(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Insert many documents at once, fast on both backends."""
    raw = getattr(collection, "raw", collection)
    if not docs:
        return
    with unique_indexes_suspended(collection):
        raw.insert_many(docs)


@contextlib.contextmanager
def unique_indexes_suspended(collection: Any) -> Iterator[None]:
    """mongomock checks a unique index by scanning the collection for every
    document inserted (quadratic for a bulk load: 5k devices take ~15 s), so
    on the embedded store unique indexes are dropped during a load and
    recreated with their options after it; ``create_index`` then checks
    uniqueness once (and raises if the load broke it). Writes of other threads
    wait meanwhile. On MongoDB this does nothing."""
    raw = getattr(collection, "raw", collection)
    if not getattr(collection, "embedded", False):
        yield
        return
    with EMBEDDED_WRITE_LOCK:
        unique = {name: spec for name, spec in raw.index_information().items() if spec.get("unique")}
        for name in unique:
            raw.drop_index(name)
        try:
            yield
        finally:
            for name, spec in unique.items():
                options = {k: v for k, v in spec.items() if k not in ("key", "v", "ns")}
                raw.create_index(spec["key"], name=name, **options)


def find_all(collection: Any, filter: dict[str, Any], projection: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every matching document as a list, fast on both backends.

    mongomock's cursor copies the rest of its results on every step
    (quadratic: 80k measurements take ~30 s); on the embedded store the
    results are taken from the cursor in one piece.
    """
    cursor = collection.find(filter, projection, **kwargs)
    if getattr(collection, "embedded", False) and hasattr(cursor, "_compute_results"):
        return list(cursor._compute_results(with_limit_and_skip=True))
    return list(cursor)


@contextlib.contextmanager
def unique_checks_skipped(collection: Any) -> Iterator[None]:
    """For a caller that has just checked the keys of what it inserts itself, under
    the write lock: mongomock would check every unique index once per document
    inserted, by a scan of the collection (0.6 s per reading at 250k). The
    indexes stay (and stay unique); only mongomock's re-check is skipped."""
    raw = getattr(collection, "raw", collection)
    with EMBEDDED_WRITE_LOCK:
        unique = [spec for spec in raw._store.indexes.values() if spec.get("unique")]
        for spec in unique:
            spec["unique"] = False
        try:
            yield
        finally:
            for spec in unique:
                spec["unique"] = True


def by_ids(collection: Any, ids: list[Any]) -> list[dict[str, Any]]:
    """The stored documents with these ``_id``s, looked up by key (mongomock's query
    engine would scan every document). They are the store's own dicts, dates naive
    UTC: read them, never change them."""
    documents = getattr(collection, "raw", collection)._store._documents
    return [documents[i] for i in ids if i in documents]


def scan(collection: Any, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The stored documents ``keep`` accepts, in one pass without copies (as :func:`by_ids`)."""
    return [d for d in list(getattr(collection, "raw", collection)._store._documents.values()) if keep(d)]


def put(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Store whole documents by ``_id`` (new or replacing), as mongomock keeps them
    (dates naive UTC), under the write lock. No index is checked: the caller's
    ``_id`` is its unique key."""
    store = getattr(collection, "raw", collection)._store
    with EMBEDDED_WRITE_LOCK:
        for doc in docs:
            store[doc["_id"]] = doc


def drop_ids(collection: Any, ids: list[Any]) -> None:
    """Delete documents by ``_id``, under the write lock."""
    store = getattr(collection, "raw", collection)._store
    with EMBEDDED_WRITE_LOCK:
        for i in ids:
            if i in store:
                del store[i]
