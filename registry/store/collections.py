"""The collections every reader and writer uses (Eve's GET, hooks, jobs), on both backends.

:class:`GeoDatabase` wraps each collection in :class:`GeoCollection`, which gives
all of them the same geo semantics: on MongoDB only ``count_documents`` needs
help (it refuses ``$near``); on mongomock geo clauses are evaluated in Python and
``$near`` results are ordered by distance, as MongoDB orders them. The wrapper
also binds the session of a running transaction (:mod:`registry.store.atomic`)
to every call, and can add latency to each embedded call (``STORE_LATENCY``),
so tests see the interleavings a network round trip allows.

The embedded client is set up as Eve sets up its MongoDB client
(``tz_aware=True`` and the rest of ``MONGO_OPTIONS``), so dates come back aware
UTC on both backends (:mod:`registry.store.clock`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import mongomock
from pymongo.errors import OperationFailure
from werkzeug.exceptions import BadRequest

from registry.store import atomic, embedded_index, geo_filters, timeseries
from registry.store.embedded import WRITE_METHODS, locked, pause, slowed
from registry.store.readings_view import ReadingsView

# calls that join the transaction bound by registry.store.atomic (find, find_one and
# count_documents are GeoCollection's own methods and join it too)
SESSION_METHODS = WRITE_METHODS | {"aggregate", "distinct"}


def embedded_client(config: dict[str, Any]) -> mongomock.MongoClient:
    """mongomock with the options Eve gives pymongo's MongoClient (eve.io.mongo.
    flask_pymongo): tz_aware=True unless MONGO_OPTIONS says otherwise. mongomock
    keeps UUIDs as uuid.UUID, which is what ``uuidRepresentation="standard"`` reads back."""
    options = {"connect": True, "tz_aware": True, **config.get("MONGO_OPTIONS", {})}
    embedded_index.install()  # equality indexes over mongomock's scans (registry.store.embedded_index)
    return mongomock.MongoClient(tz_aware=bool(options["tz_aware"]), connect=bool(options["connect"]))


class GeoDatabase:
    """A database whose collections understand geo clauses on both backends; its
    ``measurements`` are readings kept in day buckets (:mod:`registry.store.readings_view`)."""

    def __init__(self, db: Any, embedded: bool, latency: tuple[float, float] | None = None) -> None:
        self._db = db
        self.embedded = embedded
        self.latency = latency

    def __getitem__(self, name: str) -> Any:
        if name == timeseries.READINGS:  # readings, kept in day buckets
            return ReadingsView(self[timeseries.COLLECTION])
        return GeoCollection(self._db[name], self.embedded, self.latency)

    def get_collection(self, name: str, **kwargs: Any) -> Any:
        if name == timeseries.READINGS:
            return ReadingsView(self.get_collection(timeseries.COLLECTION, **kwargs))
        return GeoCollection(self._db.get_collection(name, **kwargs), self.embedded, self.latency)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name == timeseries.READINGS:
            return self[name]
        attr = getattr(self._db, name)
        return GeoCollection(attr, self.embedded, self.latency) if hasattr(attr, "count_documents") else attr


class GeoCollection:
    """A collection proxy. ``find``, ``find_one``, ``count`` and ``count_documents``
    are its own (geo clauses, sessions, a 400 for a refused ``where``). Every other
    attribute is the collection's, with three changes: on the embedded store a
    write method (``WRITE_METHODS``) takes the embedded write lock; on MongoDB a
    ``SESSION_METHODS`` call joins the bound transaction; with ``STORE_LATENCY``
    every call is slowed."""

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


def _in_session(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def joined(*args: Any, **kwargs: Any) -> Any:
        session = atomic.current_session()
        if session is not None and "session" not in kwargs:
            kwargs["session"] = session
        return method(*args, **kwargs)

    return joined
