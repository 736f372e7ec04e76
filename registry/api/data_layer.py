"""Eve's Mongo data layer with the registry's rules: the store behind the API.

:class:`RegistryMongo` is what Eve reads and writes through, on either backend
(embedded mongomock by default, a real MongoDB with MONGO_URI). It scopes every
query to the caller (``scope_filter``), parses the client's ``where`` and
``sort`` (:mod:`registry.api.query`), reads request dates as aware UTC, runs
multi-document writes as one plan (:mod:`registry.store.atomic`), keeps
measurements in day buckets (:mod:`registry.store.timeseries`) and hands out
:class:`registry.store.collections.GeoDatabase` connections.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eve.io.mongo import Mongo
from eve.io.mongo.flask_pymongo import PyMongo
from eve.methods.common import abort
from eve.utils import str_to_date
from flask import Flask
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry.api import query
from registry.store import atomic, ingestion, mongo_setup, timeseries
from registry.store.clock import as_utc
from registry.store.collections import GeoDatabase, embedded_client
from registry.store.readings_view import ReadingsView


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
    Inserts and updates run the request's :mod:`registry.store.atomic` plan for the
    resource around Eve's own write; measurements go to their day buckets, one
    reading per device and time (:mod:`registry.store.timeseries`).
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

    def __init__(self, app: Flask | None = None) -> None:
        self._readings_resources: dict[str, bool] = {}
        self._date_fields: dict[str, set[str]] = {}
        super().__init__(app)

    def _datasource_ex(self, resource: str, query: dict | None = None, *args: Any, **kwargs: Any) -> tuple:
        datasource, filter_, projection, sort = super()._datasource_ex(resource, query, *args, **kwargs)
        scope = self.scope_filter(resource)
        if scope:
            filter_ = scoped(filter_, scope, self.combine_queries)
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
        spec = query.parse_where(req.where, allowed, blacklist)
        query.check_dates(spec, self._dates_of(resource), self.app.config["DATE_FORMAT"])
        return spec

    def _dates_of(self, resource: str) -> set[str]:
        """The resource's date fields, meta dates included (its schema is fixed: read once)."""
        if resource not in self._date_fields:
            config, schema = self.app.config, self.app.config["DOMAIN"][resource].get("schema", {})
            dates = {*query.date_fields(schema), config["LAST_UPDATED"], config["DATE_CREATED"]}
            self._date_fields[resource] = dates
        return self._date_fields[resource]

    def _convert_sort_request_to_dict(self, req: Any) -> list[tuple[str, int]] | dict:
        return query.parse_sort(req.sort) if req and req.sort else {}

    def insert(self, resource: str, doc_or_docs: Any) -> list[Any]:
        docs = [doc_or_docs] if isinstance(doc_or_docs, dict) else list(doc_or_docs)
        if self._is_readings(resource):  # measurements: day buckets, one reading per key
            return self._write(resource).ingest(docs)
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

    def _is_readings(self, resource: str) -> bool:
        """Whether ``resource`` is stored as day buckets (fixed per resource: asked once,
        so that every other insert, such as each write's oplog entry, skips the lookup)."""
        if resource not in self._readings_resources:
            self._readings_resources[resource] = isinstance(self._write(resource), ReadingsView)
        return self._readings_resources[resource]

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


def scoped(filter_: dict | None, scope: dict[str, Any], combine: Callable[[dict, dict], dict]) -> dict:
    """``filter_`` AND ``scope``. A scope field the filter does not name, or names with
    the very same string, is added to the filter's own top level (``{a: 1} AND {b: 2}`` is
    ``{a: 1, b: 2}``): the same documents as ``$and``, which the embedded store evaluates
    as a second pass over each document. Anything else keeps Eve's ``$and``."""
    if not filter_:
        return dict(scope)
    plain = all(
        not field.startswith("$")
        and isinstance(value, str)
        and (field not in filter_ or (type(filter_[field]) is str and filter_[field] == value))
        for field, value in scope.items()
    )
    return {**filter_, **scope} if plain else combine(filter_, scope)


def _as_number(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value if kind is int and not float(value).is_integer() else kind(value)


def init_app(app: Flask) -> None:
    """Report which backend is in use (indexes are created by Eve from mongo_indexes,
    the measurements' buckets' here on the embedded store, by `run.py migrate` on
    MongoDB) and keep document ids server-owned."""
    app.config["STORE_KIND"] = "mongodb" if app.config.get("MONGO_URI") else "embedded"
    refuse_client_ids(app.config["DOMAIN"])
    with app.app_context():
        if mongo_setup.created_here(app.data.driver.db):
            timeseries.ensure_indexes(app.data.driver.db)


def refuse_client_ids(domain: dict[str, Any]) -> None:
    """Eve accepts an ``_id`` in a POST body (it adds ``_id: objectid`` to every
    schema); the store chooses ids, so a client's ``_id`` is a 422 for every role.
    A resource looked up by its own field (devices: ``device_id``) keeps that field."""
    for settings in domain.values():
        if settings.get("id_field", "_id") == "_id" and "schema" in settings:
            settings["schema"]["_id"] = {"type": "objectid", "readonly": True}
