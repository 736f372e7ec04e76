"""The store: embedded mongomock by default, a real MongoDB with MONGO_URI.

Both backends sit behind Eve's Mongo data layer. Collections are wrapped in
:class:`GeoCollection`, which gives every reader (Eve's GET, hooks, jobs) the
same geo semantics: on MongoDB only ``count_documents`` needs help (it refuses
``$near``); on mongomock geo clauses are evaluated in Python and ``$near``
results are ordered by distance, as MongoDB orders them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import mongomock
from eve.io.mongo import Mongo
from eve.io.mongo.flask_pymongo import PyMongo
from flask import Flask
from werkzeug.exceptions import BadRequest

from registry import geo, query

Replace = Callable[[geo.GeoClause, dict], dict[str, Any]]


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
        return getattr(self._coll, name)

    @property
    def raw(self) -> Any:
        return self._coll

    def find(self, filter: dict | None = None, projection: Any = None, *args: Any,
             sort: Any = None, skip: int = 0, limit: int = 0, **kwargs: Any) -> Any:
        if not _has_geo(filter):
            return self._coll.find(filter, projection, *args, sort=sort, skip=skip, limit=limit, **kwargs)
        if not self.embedded:
            _check_geo(filter)
            return self._coll.find(filter, projection, *args, sort=sort, skip=skip, limit=limit, **kwargs)
        spec, near = self._evaluate_geo(filter)
        if near is None or sort:
            return self._coll.find(spec, projection, *args, sort=sort, skip=skip, limit=limit, **kwargs)
        return self._find_by_distance(spec, near, projection, skip, limit)

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Any:
        return next(iter(self.find(filter, *args, limit=1, **kwargs)), None)

    def count_documents(self, filter: dict, **kwargs: Any) -> int:
        if not _has_geo(filter):
            return self._coll.count_documents(filter, **kwargs)
        if self.embedded:
            return self._coll.count_documents(self._evaluate_geo(filter)[0], **kwargs)
        # MongoDB's rule: count $near as the equivalent $geoWithin $centerSphere
        count_safe = _rewrite(filter, lambda c, cond: c.as_within() if c.is_near else {c.field: cond})
        return self._coll.count_documents(count_safe, **kwargs)

    def _evaluate_geo(self, spec: dict) -> tuple[dict, geo.GeoClause | None]:
        """Replace each geo clause by the ids of the documents it matches."""
        nears: list[geo.GeoClause] = []

        def to_ids(clause: geo.GeoClause, condition: dict) -> dict[str, Any]:
            if clause.is_near:
                nears.append(clause)
            ids = [doc["_id"] for doc in self._coll.find({clause.field: {"$exists": True}},
                                                          {clause.field: 1})
                   if _matches(clause, doc)]
            return {"_id": {"$in": ids}}

        return _rewrite(spec, to_ids), (nears[0] if nears else None)

    def _find_by_distance(self, spec: dict, near: geo.GeoClause, projection: Any,
                          skip: int, limit: int) -> list[dict]:
        located = self._coll.find(spec, {near.field: 1})
        ordered = sorted(located, key=lambda d: near.distance_m(*geo.point_of(_dotted(d, near.field))))
        page_ids = [d["_id"] for d in ordered[skip: skip + limit if limit else None]]
        docs = {d["_id"]: d for d in self._coll.find({"_id": {"$in": page_ids}}, projection)}
        return [docs[i] for i in page_ids if i in docs]


def _matches(clause: geo.GeoClause, doc: dict) -> bool:
    point = geo.point_of(_dotted(doc, clause.field))
    return point is not None and clause.matches(*point)


def _dotted(doc: dict, path: str) -> Any:
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _has_geo(spec: Any) -> bool:
    if isinstance(spec, dict):
        return any(geo.is_geo_condition(v) or _has_geo(v) for k, v in spec.items()
                   if k in ("$and", "$or", "$nor") or not k.startswith("$"))
    if isinstance(spec, list):
        return any(_has_geo(v) for v in spec)
    return False


def _check_geo(spec: dict) -> None:
    _rewrite(spec, lambda clause, condition: {})


def _rewrite(spec: dict, replace: Replace, in_or: bool = False) -> dict:
    """Return ``spec`` with every geo clause replaced; validates while walking."""
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for key, value in spec.items():
        if key in ("$and", "$or", "$nor") and isinstance(value, list):
            nested_or = in_or or key != "$and"
            out[key] = [_rewrite(v, replace, nested_or) if isinstance(v, dict) else v for v in value]
        elif not key.startswith("$") and geo.is_geo_condition(value):
            extra.append(replace(_parse(key, value, in_or), value))
        else:
            out[key] = value
    return {"$and": [out, *extra]} if extra else out


def _parse(field: str, condition: dict, in_or: bool) -> geo.GeoClause:
    try:
        clause = geo.parse_clause(field, condition)
    except geo.GeoQueryError as exc:
        raise BadRequest(description=f"Invalid geo query: {exc}") from exc
    if clause.is_near and in_or:
        raise BadRequest(description="Invalid geo query: $near / $nearSphere cannot sit inside $or / $nor")
    return clause


def init_app(app: Flask) -> None:
    """Report which backend is in use; indexes are created by Eve from mongo_indexes."""
    app.config["STORE_KIND"] = "mongodb" if app.config.get("MONGO_URI") else "embedded"
