"""Issue 12.4 / 12.5 in one process (the secrets in tests/support/secrets_setup.py).
What needs several processes (hosts sharing secrets, gunicorn -w 4 on a fresh
folder, rotation seen by running servers) is in tests/test_multiprocess_auth*.py.

This part: UI sessions and token revocations in Redis. Sessions expire and are
shared (and without Redis no one is signed in, not an error); a revocation
reaches a process with another store, and falls back to the store while Redis is
down."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import mongomock
import redis

from registry.admin_ui.session import RedisSessions, StoreSessions
from registry.auth import Principal, TokenRevocations
from tests.support.redis_server import redis_url
from tests.support.secrets_setup import NOW

REDIS_URL = redis_url(0)


def test_sessions_in_redis_expire_and_are_shared(redis_keys: Any) -> None:
    prefix, client = redis_keys
    one, other = RedisSessions(client, prefix), RedisSessions(redis.Redis.from_url(REDIS_URL), prefix)
    one.save("d1", '{"a": 1}', NOW, timedelta(seconds=600))
    assert other.load("d1") == '{"a": 1}' and 590 <= client.ttl(f"{prefix}ui-session:d1") <= 600
    other.delete("d1")
    assert one.load("d1") is None


def test_sessions_without_redis_are_no_one_signed_in_not_an_error() -> None:
    down = RedisSessions(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2), "x:")
    down.save("d1", "{}", NOW, timedelta(seconds=60))
    assert down.load("d1") is None
    down.delete("d1")


def test_sessions_in_the_store_expire() -> None:
    sessions = StoreSessions(lambda: db)
    db = mongomock.MongoClient().db
    sessions.save("live", "{}", datetime.now(UTC) + timedelta(minutes=1), timedelta(minutes=1))
    sessions.save("dead", "{}", datetime.now(UTC) - timedelta(seconds=1), timedelta(minutes=1))
    assert sessions.load("live") == "{}" and sessions.load("dead") is None


def _principal(expires_in: float = 600) -> Principal:
    return Principal(
        subject="ops",
        role="admin",
        aggregator_id=None,
        account_id=None,
        issuer="https://registry.example",
        token_id=uuid.uuid4().hex,
        expires_at=time.time() + expires_in,
    )


def test_a_revocation_in_redis_reaches_a_process_with_another_store(redis_keys: Any) -> None:
    prefix, client = redis_keys
    here = TokenRevocations(lambda: here_db, client, prefix)
    there = TokenRevocations(lambda: there_db, redis.Redis.from_url(REDIS_URL), prefix)
    here_db, there_db = mongomock.MongoClient().db, mongomock.MongoClient().db
    principal, other = _principal(), _principal()
    here.revoke(principal, "token")
    assert there.is_revoked(principal, "token") and not there.is_revoked(other, "token")
    key = next(client.scan_iter(f"{prefix}revoked:*"))
    assert 600 <= client.ttl(key) <= 661  # until the token expires (and the validators' leeway)


def test_revocations_fall_back_to_the_store_while_redis_is_down() -> None:
    db = mongomock.MongoClient().db
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    revocations = TokenRevocations(lambda: db, down, "x:")
    principal = _principal()
    revocations.revoke(principal, "token")
    assert revocations.is_revoked(principal, "token") and not revocations.is_revoked(_principal(), "token")
