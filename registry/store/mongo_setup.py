"""How the app talks to MongoDB: write and read concern, the first connection, indexes.

Eve's own default write concern (``{"w": 1}``) would override a ``MONGO_URI`` that
asks for ``w=majority``; here the concern comes from ``MONGO_WRITE_CONCERN``, else
the URI's ``w``, else ``majority``. The read concern (``MONGO_READ_CONCERN``) goes
to the MongoDB client only (mongomock has none).

With ``MONGO_URI`` the app waits for the server at start (``MONGO_CONNECT_RETRIES``
attempts with back-off, ``MONGO_CONNECT_WAIT_SECONDS`` in all) and creates no
index: ``python run.py migrate`` does, once per deployment. The embedded store is
new in every app, so it gets its indexes at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eve import default_settings
from pymongo.errors import OperationFailure, PyMongoError

from registry.ops import logs

log = logging.getLogger("registry.store")

# Eve keeps these per resource; with MONGO_URI they are moved here so that Eve creates none at start
PENDING_INDEXES = "REGISTRY_MONGO_INDEXES"


def write_concern(config: dict[str, Any]) -> dict[str, Any]:
    """MONGO_WRITE_CONCERN if set ("majority", a number or a dict), else the URI's w, else majority."""
    wanted = config.get("MONGO_WRITE_CONCERN")
    if wanted is None:
        wanted = uri_option(config.get("MONGO_URI"), "w") or "majority"
    if isinstance(wanted, dict):
        return dict(wanted)
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        return {"w": int(wanted)}
    return {"w": wanted}


def uri_option(uri: str | None, name: str) -> str | None:
    """One query option of a mongodb:// URI (case-insensitive, as MongoDB reads them)."""
    if not uri:
        return None
    options = {k.lower(): v for k, v in parse_qs(urlsplit(uri).query).items()}
    values = options.get(name.lower())
    return values[-1] if values else None


def configure(config: dict[str, Any]) -> dict[str, Any]:
    """The settings Eve's MongoDB client reads, resolved: write concern always;
    read concern, and the resources' indexes put aside, only with MONGO_URI."""
    config["MONGO_WRITE_CONCERN"] = write_concern(config)
    if not config.get("MONGO_URI"):
        return config
    options = {**default_settings.MONGO_OPTIONS, **(config.get("MONGO_OPTIONS") or {})}
    if config.get("MONGO_READ_CONCERN") and uri_option(config["MONGO_URI"], "readConcernLevel") is None:
        options.setdefault("readConcernLevel", config["MONGO_READ_CONCERN"])
    config["MONGO_OPTIONS"] = options
    domain = config["DOMAIN"]
    config[PENDING_INDEXES] = {
        name: domain[name].pop("mongo_indexes") for name in domain if "mongo_indexes" in domain[name]
    }
    return config


def wait_for_server(app: Any, sleep: Callable[[float], None] = time.sleep) -> None:
    """Ping MongoDB until it answers: MONGO_CONNECT_RETRIES attempts, waiting 0.5 s,
    1 s, 2 s … (at most 8 s each, MONGO_CONNECT_WAIT_SECONDS in all) in between."""
    attempts = max(1, int(app.config.get("MONGO_CONNECT_RETRIES", 10)))
    budget = float(app.config.get("MONGO_CONNECT_WAIT_SECONDS", 60))
    started, delay, slept = time.monotonic(), 0.5, 0.0
    where = logs.redacted(app.config["MONGO_URI"])
    for attempt in range(1, attempts + 1):
        try:
            with app.app_context():
                app.data.pymongo().cx.admin.command("ping")
            return
        except PyMongoError as error:
            waited = time.monotonic() - started
            if attempt == attempts or slept + delay > budget:
                raise RuntimeError(
                    f"MongoDB at {where} did not answer after {attempt} attempts in {waited:.1f} s "
                    f"({type(error).__name__}: {str(error)[:200]}); check MONGO_URI and that the server is up, "
                    "or raise MONGO_CONNECT_RETRIES / MONGO_CONNECT_WAIT_SECONDS"
                ) from error
            log.warning(
                "MongoDB at %s not reachable (attempt %d of %d, %s); retrying in %.1f s",
                where,
                attempt,
                attempts,
                type(error).__name__,
                delay,
            )
            sleep(delay)
            slept += delay
            delay = min(delay * 2, 8.0)


def created_here(db: Any) -> bool:
    """Whether a collection may create its own index on first use: on the embedded
    store (or a bare client in a unit test), never on MongoDB (`run.py migrate` does)."""
    return bool(getattr(db, "embedded", True))


def ensure_indexes(app: Any) -> list[str]:
    """Every index the app needs, on its store: the resources' ``mongo_indexes`` and the
    registry's own collections (``app.extensions["collection_indexes"]``, filled by
    ``create_app``, which knows every layer). Returns the resources' indexes as
    "collection.index"."""
    created: list[str] = []
    pending = app.config.get(PENDING_INDEXES) or {
        name: resource.get("mongo_indexes") or {} for name, resource in app.config["DOMAIN"].items()
    }
    with app.app_context():
        for resource, indexes in pending.items():
            source = app.config["SOURCES"][resource]["source"]
            db = app.data.pymongo(resource).db
            versioned = app.config["DOMAIN"][resource]["versioning"]
            names = [source] + ([source + app.config["VERSIONS"]] if versioned else [])
            for collection in names:
                for name, value in (indexes or {}).items():
                    keys, options = value if isinstance(value, tuple) else (value, {})
                    _create(db[collection], keys, {**options, "name": name})
                    created.append(f"{collection}.{name}")
        db = app.data.driver.db
        for make in app.extensions.get("collection_indexes", ()):
            make(db)
    return created


def _create(collection: Any, keys: Any, options: dict[str, Any]) -> None:
    """Eve's rule: an index whose definition changed is dropped and created again."""
    try:
        collection.create_index(keys, **options)
    except OperationFailure as error:
        if error.code not in (85, 86):
            raise
        collection.drop_index(options["name"])
        collection.create_index(keys, **options)
