"""Fixtures: a fresh app and store per test, a client, and request helpers."""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from registry import create_app
from tests.support.redis_server import redis_url, start_session_redis


def pytest_configure(config: pytest.Config) -> None:
    """The suite's private redis-server, before any test module reads its URL."""
    start_session_redis()


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory) -> str:
    """One instance folder (signing key, demo credentials) for the session:
    generating an RSA key and scrypt hashes per test would dominate the run."""
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="session", autouse=True)
def throwaway_mongodb(tmp_path_factory) -> Any:
    """With MONGO_URI (a real MongoDB, `MONGO_URI=… bash scripts/test.sh`): a database
    of this run's own, der_registry_test_<random>, with the indexes `run.py migrate`
    creates, dropped at the end; no other database on that server is touched."""
    if not os.environ.get("MONGO_URI"):
        yield None
        return
    import settings
    from registry.store import mongo_setup

    name = f"der_registry_test_{secrets.token_hex(6)}"
    patch = pytest.MonkeyPatch()
    patch.setattr(settings, "MONGO_DBNAME", name)
    patch.setattr(settings, "DEMO_SECRETS", True)  # the suite's own generated secrets
    app = create_app({"INSTANCE_PATH": str(tmp_path_factory.mktemp("migrate")), "TESTING": True})
    mongo_setup.ensure_indexes(app)
    try:
        yield name
    finally:
        with app.app_context():
            app.data.driver.cx.drop_database(name)
        patch.undo()


@pytest.fixture
def app(instance_path, throwaway_mongodb):
    """A fresh app and a fresh embedded store (with MONGO_URI: the run's database, emptied after each test)."""
    app = create_app({"INSTANCE_PATH": instance_path, "TESTING": True})
    yield app
    if throwaway_mongodb and app.config["MONGO_DBNAME"] == throwaway_mongodb:
        with app.app_context():
            db = app.data.driver.db
            for name in db.list_collection_names():
                db[name].delete_many({})  # the indexes stay


@pytest.fixture
def token(app) -> Callable[..., str]:
    """token(role, aggregator_id=…, account_id=…, dso_id=…) from the built-in provider's key."""
    from registry.auth import mint_token

    def token(
        role: str,
        aggregator_id: str | None = None,
        account_id: str | None = None,
        ttl: int = 3600,
        dso_id: str | None = None,
    ) -> str:
        return mint_token(
            app.config["INSTANCE_PATH"],
            app.config["OAUTH_ISSUER"],
            app.config["OAUTH_AUDIENCE"],
            role,
            aggregator_id=aggregator_id,
            account_id=account_id,
            ttl=ttl,
            subject=f"test-{role}-{aggregator_id or dso_id}-{account_id}",
            dso_id=dso_id,
        )

    return token


@pytest.fixture
def client_as(app, token) -> Callable[..., Any]:
    """A test client sending a bearer token for the given role and ids."""

    def client_as(role: str, **ids: str | None) -> Any:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token(role, **ids)}"
        return client

    return client_as


@pytest.fixture
def client(client_as):
    """An admin: sees and may change everything."""
    return client_as("admin")


@pytest.fixture
def server(app):
    """The app on a threaded HTTP server on loopback (port chosen by the OS),
    for tests of what only a real server shows: races between requests."""
    import threading

    from werkzeug.serving import make_server

    app.config["RATE_LIMIT"] = "1000000 per minute"
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def slow_store(app):
    """Every embedded store call takes 0.05-0.2 s, half before and half after it, as
    a network round trip to MongoDB does: other requests act in between."""
    with app.app_context():
        database = app.data.pymongo().db
    database.latency = (0.05, 0.2)
    yield database.latency
    database.latency = None


@pytest.fixture
def anon(app):
    """A client without a token."""
    return app.test_client()


@pytest.fixture
def db(app):
    """The raw store, to check what was (not) written."""
    with app.app_context():
        return app.data.driver.db


@pytest.fixture
def insert(app, db) -> Callable[..., list[dict]]:
    """Put documents straight into the store, as Eve would have stored them."""
    from eve.utils import document_etag

    from registry.store.clock import utcnow

    def insert(resource: str, *docs: dict[str, Any]) -> list[dict]:
        now = utcnow()
        stored = [{**d, "_created": now, "_updated": now} for d in docs]
        with app.app_context():
            for d in stored:
                d["_etag"] = document_etag(d)
        ids = db[resource].insert_many([dict(d) for d in stored]).inserted_ids
        return [{**d, "_id": i} for d, i in zip(stored, ids)]

    return insert


def as_json(data: Any) -> dict[str, Any]:
    return {"data": json.dumps(data), "content_type": "application/json"}


@pytest.fixture
def redis_client() -> Any:
    """The suite's one Redis (tests/support/redis_server.py, started in pytest_configure).
    A test that must stop and restart a server (tests/test_faults.py) starts its own
    RedisServer instead."""
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisDown

    client = Redis.from_url(redis_url(0))
    try:
        client.ping()
    except RedisDown:
        pytest.fail(f"the tests need a Redis server at {redis_url(0)} (scripts/test.sh starts one)")
    return client


@pytest.fixture
def redis_keys(redis_client: Any) -> Iterator[tuple[str, Any]]:
    """(key prefix, client): keys under the prefix are this test's alone and are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield prefix, redis_client
    for key in redis_client.scan_iter(f"{prefix}*"):
        redis_client.delete(key)
