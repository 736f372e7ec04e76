"""The store: embedded mongomock by default, a real MongoDB with MONGO_URI.

Both backends sit behind Eve's Mongo data layer. Collections are wrapped in
:class:`GeoCollection`, which gives every reader (Eve's GET, hooks, jobs) the
same geo semantics: on MongoDB only ``count_documents`` needs help (it refuses
``$near``); on mongomock geo clauses are evaluated in Python and ``$near``
results are ordered by distance, as MongoDB orders them.

The embedded client is set up as Eve sets up its MongoDB client
(``tz_aware=True`` and the rest of ``MONGO_OPTIONS``), so dates come back
aware UTC on both backends (:mod:`registry.clock`). The wrapper also binds the
session of a running transaction (:mod:`registry.atomic`) to every call, and
can add latency to each embedded call (``STORE_LATENCY``), so tests see the
interleavings a network round trip allows.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mongomock
from eve.io.mongo import Mongo
from eve.io.mongo.flask_pymongo import PyMongo
from eve.methods.common import abort
from eve.utils import str_to_date
from flask import Flask
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from werkzeug.exceptions import BadRequest

from registry import atomic, geo_filters, ingestion, query
from registry.clock import as_utc

# the embedded helpers are imported from here by the jobs, the demo and the benches
from registry.embedded import (  # noqa: F401
    EMBEDDED_WRITE_LOCK,
    WRITE_METHODS,
    bulk_insert,
    find_all,
    locked,
    pause,
    slowed,
    unique_indexes_suspended,
)

# calls that join the transaction bound by registry.atomic (find, find_one and
# count_documents are GeoCollection's own methods and join it too)
SESSION_METHODS = WRITE_METHODS | {"aggregate", "distinct"}


@dataclass
class Connection:
    """What Eve expects of a driver entry: a client and its database."""

    cx: Any
    db: GeoDatabase


def _as_date(value: Any) -> Any:
    """Request dates as aware UTC, like the dates the store gives back."""
    parsed = str_to_date(value) if isinstance(value, str) else value
    return as_utc(parsed) if hasattr(parsed, "tzinfo") else parsed


class RegistryMongo(Mongo):
    """Eve's Mongo layer on either backend, with geo-aware collections.

    ``scope_filter(resource)`` and ``hidden_fields(resource)`` are set by the
    access policy: every query Eve builds (lists, items, PATCH, DELETE,
    embedded documents, aggregations) passes ``_datasource_ex`` or
    ``aggregate``, so the caller's scope cannot be bypassed by choosing a verb.
    Inserts and updates run the request's :mod:`registry.atomic` plan for the
    resource around Eve's own write; a resource with ``ingest_once_by`` keeps
    one document per key and answers a re-sent document with the stored one.
    """

    # Eve turns true into 1.0 and "2" into 2 before validating; a JSON API takes numbers
    # as numbers, so only those are converted and anything else is left to the validator
    serializers = {
        **Mongo.serializers,
        "integer": lambda v: _as_number(v, int),
        "float": lambda v: _as_number(v, float),
        "datetime": _as_date,
    }
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

    def insert(self, resource: str, doc_or_docs: Any) -> list[Any]:
        docs = [doc_or_docs] if isinstance(doc_or_docs, dict) else list(doc_or_docs)
        key = self.app.config["DOMAIN"][resource].get("ingest_once_by")
        if key:
            return self._ingest(resource, docs, key)
        plan = atomic.take(resource)
        if plan is None:
            return super().insert(resource, docs)
        try:
            return self._run(resource, plan, lambda: self._write(resource).insert_many(docs).inserted_ids)
        except (BulkWriteError, DuplicateKeyError) as error:
            if not ingestion.is_duplicate_key(error):
                raise
            abort(409, description=f"a {resource} document with this key exists already")

    def update(self, resource: str, id_: Any, updates: dict[str, Any], original: dict[str, Any]) -> None:
        plan = atomic.take(resource)
        if plan is None:
            return super().update(resource, id_, updates, original)
        self._run(resource, plan, lambda: self._update_if_unchanged(resource, id_, updates, original))

    def _run(self, resource: str, plan: atomic.Plan, write: Callable[[], Any]) -> Any:
        connection = self.pymongo(resource)
        try:
            return atomic.run(connection.db, connection.cx, plan, write)
        except atomic.Refusal as refusal:
            abort(refusal.status, description=refusal.message)

    def _write(self, resource: str) -> Any:
        datasource, _, _, _ = self._datasource_ex(resource)
        return self.get_collection_with_write_concern(datasource, resource)

    def _update_if_unchanged(self, resource: str, id_: Any, updates: dict[str, Any], original: dict[str, Any]) -> None:
        """Eve's update (the caller's scope, the ETag it read), with errors left to
        the transaction; a document that changed meanwhile is a 412."""
        spec = {self.app.config["DOMAIN"][resource]["id_field"]: id_}
        if "_etag" in original:
            spec["_etag"] = original["_etag"]
        _, filter_, _, _ = self._datasource_ex(resource, spec)
        if self._write(resource).update_one(filter_, {"$set": updates}).matched_count == 0:
            raise self.OriginalChangedError()

    def _ingest(self, resource: str, docs: list[dict[str, Any]], key: list[str]) -> list[Any]:
        """Store the documents whose key is new; the others get the stored document's id."""
        return ingestion.insert_once(self._write(resource), docs, key)

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
        client = self.app.extensions.setdefault("embedded_mongo", embedded_client(self.app.config))
        latency = self.app.config.get("STORE_LATENCY")
        return Connection(
            client,
            GeoDatabase(
                client[self.app.config["MONGO_DBNAME"]], embedded=True, latency=tuple(latency) if latency else None
            ),
        )


def embedded_client(config: dict[str, Any]) -> mongomock.MongoClient:
    """mongomock with the options Eve gives pymongo's MongoClient (eve.io.mongo.
    flask_pymongo): tz_aware=True unless MONGO_OPTIONS says otherwise. mongomock
    keeps UUIDs as uuid.UUID, which is what ``uuidRepresentation="standard"`` reads back."""
    options = {"connect": True, "tz_aware": True, **config.get("MONGO_OPTIONS", {})}
    return mongomock.MongoClient(tz_aware=bool(options["tz_aware"]), connect=bool(options["connect"]))


class GeoDatabase:
    """A database whose collections understand geo clauses on both backends."""

    def __init__(self, db: Any, embedded: bool, latency: tuple[float, float] | None = None) -> None:
        self._db = db
        self.embedded = embedded
        self.latency = latency

    def __getitem__(self, name: str) -> GeoCollection:
        return GeoCollection(self._db[name], self.embedded, self.latency)

    def get_collection(self, name: str, **kwargs: Any) -> GeoCollection:
        return GeoCollection(self._db.get_collection(name, **kwargs), self.embedded, self.latency)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._db, name)
        return GeoCollection(attr, self.embedded, self.latency) if hasattr(attr, "count_documents") else attr


class GeoCollection:
    """A collection proxy; everything but find / find_one / count passes through,
    joined to the bound transaction (MongoDB), locked per write and optionally
    slowed down (embedded)."""

    def __init__(self, collection: Any, embedded: bool, latency: tuple[float, float] | None = None) -> None:
        self._coll = collection
        self.embedded = embedded
        self.latency = latency

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._coll, name)
        if not callable(attr) or name.startswith("_"):
            return attr
        if self.embedded and name in WRITE_METHODS:
            attr = locked(attr)
        elif not self.embedded and name in SESSION_METHODS:
            attr = _in_session(attr)
        return slowed(attr, self.latency) if self.latency else attr

    def with_options(self, *args: Any, **kwargs: Any) -> GeoCollection:
        # Eve writes through with_options(write_concern=…): keep the wrapper
        return GeoCollection(self._coll.with_options(*args, **kwargs), self.embedded, self.latency)

    @property
    def raw(self) -> Any:
        return self._coll

    def find(
        self,
        filter: dict | None = None,
        projection: Any = None,
        *args: Any,
        sort: Any = None,
        skip: int = 0,
        limit: int = 0,
        **kwargs: Any,
    ) -> Any:
        pause(self.latency)
        if not geo_filters.has_geo(filter):
            return self._coll.find(
                filter, projection, *args, sort=sort, skip=skip, limit=limit, **self._session(kwargs)
            )
        if not self.embedded:
            geo_filters.check(filter)
            return self._coll.find(
                filter, projection, *args, sort=sort, skip=skip, limit=limit, **self._session(kwargs)
            )
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
            raise BadRequest(
                description=f"`where`: {cause} (the embedded store lacks this operator; MongoDB has it)"
            ) from cause
        if isinstance(cause, (OperationFailure, TypeError, ValueError)):
            raise BadRequest(description=f"`where` was refused by the store: {cause}") from cause
        raise TypeError("count() is not supported: use count_documents()")

    def count_documents(self, filter: dict, **kwargs: Any) -> int:
        pause(self.latency)
        if not geo_filters.has_geo(filter):
            return self._coll.count_documents(filter, **self._session(kwargs))
        if self.embedded:
            return len(geo_filters.embedded_matching(self._coll, filter)[0])
        return self._coll.count_documents(geo_filters.count_safe(filter), **self._session(kwargs))

    def _session(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        session = None if self.embedded else atomic.current_session()
        return {**kwargs, "session": session} if session is not None and "session" not in kwargs else kwargs


def _as_number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value if kind is int and not float(value).is_integer() else kind(value)


def _in_session(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def joined(*args: Any, **kwargs: Any) -> Any:
        session = atomic.current_session()
        if session is not None and "session" not in kwargs:
            kwargs["session"] = session
        return method(*args, **kwargs)

    return joined


def init_app(app: Flask) -> None:
    """Report which backend is in use (indexes are created by Eve from mongo_indexes)
    and keep document ids server-owned."""
    app.config["STORE_KIND"] = "mongodb" if app.config.get("MONGO_URI") else "embedded"
    refuse_client_ids(app.config["DOMAIN"])


def refuse_client_ids(domain: dict[str, Any]) -> None:
    """Eve accepts an ``_id`` in a POST body (it adds ``_id: objectid`` to every
    schema); the store chooses ids, so a client's ``_id`` is a 422 for every role.
    A resource looked up by its own field (devices: ``device_id``) keeps that field."""
    for settings in domain.values():
        if settings.get("id_field", "_id") == "_id" and "schema" in settings:
            settings["schema"]["_id"] = {"type": "objectid", "readonly": True}
