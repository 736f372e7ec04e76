"""The store: embedded mongomock by default, a real MongoDB with MONGO_URI.

Both backends sit behind Eve's Mongo data layer. Collections are wrapped in
:class:`GeoCollection`, which gives every reader (Eve's GET, hooks, jobs) the
same geo semantics: on MongoDB only ``count_documents`` needs help (it refuses
``$near``); on mongomock geo clauses are evaluated in Python and ``$near``
results are ordered by distance, as MongoDB orders them.
"""
from __future__ import annotations

import functools
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

import mongomock
from eve.io.mongo import Mongo
from eve.io.mongo.flask_pymongo import PyMongo
from flask import Flask
from pymongo.errors import OperationFailure
from werkzeug.exceptions import BadRequest

from registry import geo_filters, query

# mongomock checks unique indexes and update filters without a lock (insert,
# then count; find, then modify), so concurrent requests could both win or both
# lose. One lock per process makes each embedded write call atomic, as a single
# write is on MongoDB; reads stay unlocked.
EMBEDDED_WRITE_LOCK = threading.RLock()
WRITE_METHODS = frozenset({"insert_one", "insert_many", "update_one", "update_many", "replace_one",
                           "delete_one", "delete_many", "find_one_and_update", "find_one_and_replace",
                           "find_one_and_delete", "bulk_write"})


@dataclass
class Connection:
    """What Eve expects of a driver entry: a client and its database."""

    cx: Any
    db: "GeoDatabase"


class RegistryMongo(Mongo):
    """Eve's Mongo layer on either backend, with geo-aware collections.

    ``scope_filter(resource)`` and ``hidden_fields(resource)`` are set by the
    access policy: every query Eve builds (lists, items, PATCH, DELETE,
    embedded documents, aggregations) passes ``_datasource_ex`` or
    ``aggregate``, so the caller's scope cannot be bypassed by choosing a verb.
    """

    # Eve turns true into 1.0 and "2" into 2 before validating; a JSON API takes numbers
    # as numbers, so only those are converted and anything else is left to the validator
    serializers = {**Mongo.serializers, "integer": lambda v: _as_number(v, int),
                   "float": lambda v: _as_number(v, float)}
    scope_filter: Callable[[str], dict[str, Any] | None] = staticmethod(lambda resource: None)
    hidden_fields: Callable[[str], frozenset[str]] = staticmethod(lambda resource: frozenset())

    def _datasource_ex(self, resource: str, query: dict | None = None, *args: Any, **kwargs: Any) -> tuple:
        datasource, filter_, projection, sort = super()._datasource_ex(resource, query, *args, **kwargs)
        scope = self.scope_filter(resource)
        if scope:
            filter_ = self.combine_queries(filter_, scope) if filter_ else dict(scope)
        hidden = self.hidden_fields(resource)
        if hidden and projection:
            projection = {k: v for k, v in projection.items() if k.split(".")[0] not in hidden}
        return datasource, filter_, projection, sort

    def aggregate(self, resource: str, pipeline: list[dict], options: dict) -> Any:
        scope = self.scope_filter(resource)
        return super().aggregate(resource, ([{"$match": scope}] if scope else []) + pipeline, options)

    def _convert_where_request_to_dict(self, resource: str, req: Any) -> dict[str, Any]:
        if not (req and req.where):
            return {}
        domain = self.app.config["DOMAIN"][resource]
        blacklist = self.app.config["MONGO_QUERY_BLACKLIST"]
        allowed = query.allowed_operators(blacklist, domain.get("mongo_query_whitelist", []))
        return query.parse_where(req.where, allowed, blacklist)

    def _convert_sort_request_to_dict(self, req: Any) -> list[tuple[str, int]] | dict:
        return query.parse_sort(req.sort) if req and req.sort else {}

    def pymongo(self, resource: str | None = None, prefix: str | None = None) -> Connection:
        px = prefix or self.current_mongo_prefix(resource=resource)
        if px not in self.driver:
            self.driver[px] = self._connect(px)
        self.mongo_prefix = None
        return self.driver[px]

    def _connect(self, prefix: str) -> Connection:
        if self.app.config.get("MONGO_URI"):
            client = PyMongo(self.app, prefix)
            return Connection(client.cx, GeoDatabase(client.db, embedded=False))
        client = self.app.extensions.setdefault("embedded_mongo", mongomock.MongoClient())
        return Connection(client, GeoDatabase(client[self.app.config["MONGO_DBNAME"]], embedded=True))


class GeoDatabase:
    """A database whose collections understand geo clauses on both backends."""

    def __init__(self, db: Any, embedded: bool) -> None:
        self._db = db
        self.embedded = embedded

    def __getitem__(self, name: str) -> "GeoCollection":
        return GeoCollection(self._db[name], self.embedded)

    def get_collection(self, name: str, **kwargs: Any) -> "GeoCollection":
        return GeoCollection(self._db.get_collection(name, **kwargs), self.embedded)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._db, name)
        return GeoCollection(attr, self.embedded) if hasattr(attr, "count_documents") else attr


class GeoCollection:
    """A collection proxy; everything but find / find_one / count passes through."""

    def __init__(self, collection: Any, embedded: bool) -> None:
        self._coll = collection
        self.embedded = embedded

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if self.embedded and name in WRITE_METHODS:
            return _locked(attr)
        return attr

    def with_options(self, *args: Any, **kwargs: Any) -> "GeoCollection":
        # Eve writes through with_options(write_concern=…): keep the wrapper
        return GeoCollection(self._coll.with_options(*args, **kwargs), self.embedded)

    @property
    def raw(self) -> Any:
        return self._coll

    def find(self, filter: dict | None = None, projection: Any = None, *args: Any,
             sort: Any = None, skip: int = 0, limit: int = 0, **kwargs: Any) -> Any:
        if not geo_filters.has_geo(filter):
            return self._coll.find(filter, projection, *args, sort=sort, skip=skip, limit=limit, **kwargs)
        if not self.embedded:
            geo_filters.check(filter)
            return self._coll.find(filter, projection, *args, sort=sort, skip=skip, limit=limit, **kwargs)
        return geo_filters.embedded_find(self._coll, filter, projection, sort, skip, limit)

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        return next(iter(self.find(filter, *args, limit=1, **kwargs)), None)

    def count(self) -> int:
        """Eve calls ``count()`` only after ``count_documents`` failed on a client's
        ``where`` (its ``except Exception`` hides why, and neither pymongo 4 nor
        mongomock has ``count``): the store refused the query, so the client gets
        a 400 saying why instead of a 500."""
        cause = sys.exc_info()[1]
        if isinstance(cause, NotImplementedError):
            raise BadRequest(description=f"`where`: {cause} (the embedded store lacks this operator; "
                                         "MongoDB has it)") from cause
        if isinstance(cause, (OperationFailure, TypeError, ValueError)):
            raise BadRequest(description=f"`where` was refused by the store: {cause}") from cause
        raise TypeError("count() is not supported: use count_documents()")

    def count_documents(self, filter: dict, **kwargs: Any) -> int:
        if not geo_filters.has_geo(filter):
            return self._coll.count_documents(filter, **kwargs)
        if self.embedded:
            return len(geo_filters.embedded_matching(self._coll, filter)[0])
        return self._coll.count_documents(geo_filters.count_safe(filter), **kwargs)


def _as_number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value if kind is int and not float(value).is_integer() else kind(value)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with EMBEDDED_WRITE_LOCK:
            return method(*args, **kwargs)
    return locked


def bulk_insert(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Insert many documents at once, fast on both backends.

    mongomock checks a unique index by scanning the collection for every
    document inserted (quadratic for a bulk load: 5k devices take ~15 s), so
    on the embedded store unique indexes are dropped and recreated around the
    load; ``create_index`` then checks uniqueness once.
    """
    raw = getattr(collection, "raw", collection)
    if not getattr(collection, "embedded", False) or not docs:
        raw.insert_many(docs)
        return
    unique = {name: spec for name, spec in raw.index_information().items() if spec.get("unique")}
    with EMBEDDED_WRITE_LOCK:
        for name in unique:
            raw.drop_index(name)
        try:
            raw.insert_many(docs)
        finally:
            for name, spec in unique.items():
                raw.create_index(spec["key"], name=name, unique=True)


def init_app(app: Flask) -> None:
    """Report which backend is in use; indexes are created by Eve from mongo_indexes."""
    app.config["STORE_KIND"] = "mongodb" if app.config.get("MONGO_URI") else "embedded"


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
