"""Equality indexes for the embedded store (mongomock scans every document on every find).

mongomock evaluates a filter by running its Python matcher over every stored
document (``Collection._iter_documents``); every find, count, update and
delete goes through that one method. Here it first narrows the documents to
*candidates* when the filter pins an indexed field to strings, then runs
mongomock's own matcher on the candidates only, in storage order — so a find
returns exactly what the scan returned (same documents, same order, same
counts and pages); only documents that could never match are skipped.

What is indexed: the top-level fields named by the collection's declared
indexes (the resources' ``mongo_indexes``, which Eve creates on mongomock
too), and for each document only its **string** values (a string, or the
strings inside a list). A filter ``{field: "x"}``, ``{field: {"$eq": "x"}}``
or ``{field: {"$in": ["x", …]}}`` (with any other operators beside it), at
the top level or inside a top-level ``$and``, can only match a document whose
``field`` is ``"x"`` or a list holding ``"x"``: a number, date, None, missing
field or sub-document never equals a string. A value of any other type is kept
in an "always a candidate" bucket. Any other filter scans as before.

Why the index is never stale (a stale index could hide a document):

* every insert, replace, rollback, delete and TTL expiry writes the store's
  document dict (``CollectionStore._documents``): it is swapped for
  :class:`IndexedDocuments`, which re-indexes each key it is given;
* mongomock's updates change a stored document in place, all inside
  ``Collection._update``, and every document they change is one
  ``_iter_documents`` handed out: during an update the documents handed out in
  that thread are noted and re-indexed before the next lookup of that update
  (mongomock's unique check runs after each change) and when the update ends
  (also when it fails), whether or not the index existed when they were handed out;
* ``drop()`` replaces the dict: a plain dict is indexed again on the next find.

The index only adds work where the scan did a full pass anyway; both apps on a
shared store (the registry and the bench's plain Eve) use it alike.
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from mongomock import collection as mongomock_collection
from mongomock import helpers
from mongomock.filtering import filter_applies

ANY = object()  # the bucket of documents whose value is neither a string nor a known non-string
NEVER_A_STRING = (type(None), int, float, dict)  # bool is an int; datetime, ObjectId … fall in ANY

_tracked = threading.local()


def string_keys(value: Any) -> set[Any]:
    """The index keys of one field's value."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, (list, tuple)):
        return set().union(*(string_keys(v) for v in value)) if value else set()
    if isinstance(value, NEVER_A_STRING):
        return set()
    return {ANY}


class IndexedDocuments(collections.OrderedDict):
    """mongomock's document dict, keeping ``field → string → ids`` and each key's storage position."""

    def __init__(self, fields: Iterable[str], items: Iterable[tuple[Any, dict]] = ()) -> None:
        super().__init__()
        self.fields = frozenset(fields)
        self.entries: dict[str, dict[Any, set[Any]]] = {f: {} for f in self.fields}
        self.keys_of: dict[Any, tuple[tuple[str, Any], ...]] = {}
        self.position: dict[Any, int] = {}
        self.counter = itertools.count()
        self.lock = threading.RLock()
        for key, doc in items:
            self[key] = doc

    def __setitem__(self, key: Any, doc: dict) -> None:
        with self.lock:
            if key not in self:
                self.position[key] = next(self.counter)  # a new key goes last, a replaced one keeps its place
            super().__setitem__(key, doc)
            self.reindex(key)

    def __delitem__(self, key: Any) -> None:
        with self.lock:
            super().__delitem__(key)
            self._unindex(key)
            del self.position[key]

    def pop(self, key: Any, *default: Any) -> Any:
        with self.lock:
            if key not in self:
                return super().pop(key, *default)
            doc = self[key]
            del self[key]
            return doc

    def clear(self) -> None:
        with self.lock:
            for key in list(self):
                del self[key]

    def reindex(self, key: Any) -> None:
        with self.lock:
            self._unindex(key)
            doc = self.get(key)
            if doc is None:
                return
            pairs = tuple((f, k) for f in self.fields for k in string_keys(doc.get(f)))
            for field, k in pairs:
                self.entries[field].setdefault(k, set()).add(key)
            if pairs:
                self.keys_of[key] = pairs

    def _unindex(self, key: Any) -> None:
        for field, k in self.keys_of.pop(key, ()):
            ids = self.entries[field].get(k)
            if ids is not None:
                ids.discard(key)
                if not ids:
                    del self.entries[field][k]

    def candidates(self, spec: Any) -> list[dict] | None:
        """The documents ``spec`` could match, in storage order; None when it pins no indexed field."""
        with self.lock:
            sets = sorted(self._constraints(spec), key=len)
            if not sets:
                return None
            smallest, others = sets[0], sets[1:]  # read only: never copy or change the index's own sets
            ids = [i for i in smallest if all(i in s for s in others)]
            ids.sort(key=self.position.__getitem__)
            return [self[i] for i in ids]

    def _constraints(self, spec: Any) -> Iterator[set[Any] | frozenset[Any]]:
        if not isinstance(spec, dict):
            return
        for field, condition in spec.items():
            if field == "$and" and isinstance(condition, list):
                for part in condition:
                    yield from self._constraints(part)
            elif field in self.fields:
                wanted = pinned_strings(condition)
                if wanted is not None:
                    index = self.entries[field]
                    found = [index[k] for k in (*wanted, ANY) if k in index]
                    yield found[0] if len(found) == 1 else frozenset().union(*found)


def pinned_strings(condition: Any) -> list[str] | None:
    """The strings a field's condition restricts it to, or None when it does not."""
    if isinstance(condition, str):
        return [condition]
    if not isinstance(condition, dict) or not condition or not all(str(k).startswith("$") for k in condition):
        return None
    if isinstance(condition.get("$eq"), str):
        return [condition["$eq"]]
    listed = condition.get("$in")
    if isinstance(listed, list) and all(isinstance(v, str) for v in listed):
        return listed
    return None


def declared_fields(store: Any) -> set[str]:
    """Top-level fields of the collection's ascending / descending indexes."""
    return {
        name
        for spec in list(store.indexes.values())
        for name, order in spec.get("key", ())
        if "." not in name and not name.startswith("$") and order in (1, -1)
    }


def index_of(store: Any) -> IndexedDocuments | None:
    """The store's index, built (or rebuilt, with any newly declared field) when missing."""
    documents = store._documents
    fields = declared_fields(store)
    if isinstance(documents, IndexedDocuments) and fields <= documents.fields:
        return documents
    if not fields:
        return None
    with store._rwlock.writer():  # no insert or delete while the documents are copied
        current = store._documents
        known = current.fields if isinstance(current, IndexedDocuments) else frozenset()
        indexed = IndexedDocuments(fields | known, current.items())
        store._documents = indexed
    return indexed


def _iter_documents(self: Any, filter: Any) -> Iterator[dict]:
    store = self._store
    touched = getattr(_tracked, "stack", None)
    if touched:  # inside an update of this thread: what it changed so far (a unique check follows)
        _reindex(touched[-1])
    if store.is_empty:  # also expires TTL documents, as the scan did
        filter_applies(filter, {})  # validates the filter even if nothing can match, as the scan did
        return iter(())
    index = index_of(store)
    candidates = index.candidates(filter) if index is not None else None
    if candidates is None:
        candidates = list(store.documents)
    found = (doc for doc in candidates if filter_applies(filter, doc))
    return _noting(found, store, touched[-1]) if touched else found


def _noting(docs: Iterator[dict], store: Any, touched: list) -> Iterator[dict]:
    for doc in docs:
        key = doc.get("_id")
        touched.append((store, helpers.hashdict(key) if isinstance(key, dict) else key))  # as mongomock keys it
        yield doc


def _reindex(touched: list[tuple[Any, Any]]) -> None:
    """Index again the documents an update handed out (and may have changed in place)."""
    for store, key in touched:
        documents = store._documents
        if isinstance(documents, IndexedDocuments):
            documents.reindex(key)
    touched.clear()


def _update(original: Any) -> Any:
    @functools.wraps(original)
    def update(self: Any, *args: Any, **kwargs: Any) -> Any:
        stack = _tracked.__dict__.setdefault("stack", [])
        stack.append([])
        try:
            return original(self, *args, **kwargs)
        finally:
            _reindex(stack.pop())

    update.embedded_index = True
    return update


_install_lock = threading.Lock()


def install() -> None:
    """Teach mongomock's collections to use the indexes (once per process)."""
    with _install_lock:
        cls = mongomock_collection.Collection
        if getattr(cls._update, "embedded_index", False):
            return
        cls._update = _update(cls._update)
        cls._iter_documents = _iter_documents
