"""Server-side sessions for the UI: the cookie carries only a random session
id; the data (the user's access token and claims, the CSRF secret, the OAuth
state) stays in Redis with ``REDIS_URL`` (keys ``<AUTH_REDIS_PREFIX>ui-session:…``,
shared by every host, also by embedded ones that share no store), else in the
store's ``ui_sessions`` collection.

Signing out deletes the document, so a copied cookie leads back to the login
page, and nothing in the cookie can be read or replayed as a bearer token.
Sessions are keyed by the SHA-256 of the id: a leaked collection yields no
usable cookie. ``regenerate(session)`` gives a session a fresh id (at sign-in
against fixation, at sign-out so the old id is dead).

Hand-written rather than Flask-Session: its MongoDB backend takes a
``pymongo.MongoClient`` (the embedded store is mongomock's) and it brings
msgspec and cachelib along; what the UI needs is an id -> document map with an
expiry, in the store every worker of a deployment already shares.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import Flask, Request, Response
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from registry.store import mongo_setup

log = logging.getLogger(__name__)
COLLECTION = "ui_sessions"
REDIS_KEY = "ui-session:"
DEFAULT_SECONDS = 8 * 3600  # a working day; the access token inside lasts at most one hour
SWEEP_EVERY = 100  # new sessions between two sweeps of expired ones (mongomock has no TTL index)
_SID = re.compile(r"[A-Za-z0-9_-]{43}")


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    """A session dict that knows its id and the id it replaced."""

    def __init__(self, initial: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(session: ServerSession) -> None:
            session.modified = True

        super().__init__(initial, on_update)
        self.new = sid is None
        self.sid = sid or _new_sid()
        self.stale_sid: str | None = None
        self.modified = False


def regenerate(session: Any) -> None:
    """A fresh id for `session`; the old one's document is deleted on save."""
    if isinstance(session, ServerSession):
        if not session.new and session.stale_sid is None:
            session.stale_sid = session.sid
        session.sid = _new_sid()
        session.new = True
        session.modified = True


class SessionBackend(Protocol):
    """id digest -> serialized session data, kept until an expiry."""

    def load(self, digest: str) -> str | None: ...
    def save(self, digest: str, data: str, expires_at: datetime, lifetime: timedelta) -> None: ...
    def delete(self, digest: str) -> None: ...


class StoreSessions:
    """Sessions in `get_db()[ui_sessions]` (the store every worker of one host shares)."""

    def __init__(self, get_db: Callable[[], Any]) -> None:
        self.get_db = get_db
        self._indexes_ready = False
        self._new_count = itertools.count(1)

    def collection(self) -> Any:
        collection = self.get_db()[COLLECTION]
        if not self._indexes_ready:
            if mongo_setup.created_here(self.get_db()):  # on MongoDB: `run.py migrate`
                ensure_indexes(self.get_db())
            self._indexes_ready = True
        return collection

    def load(self, digest: str) -> str | None:
        document = self.collection().find_one({"_id": digest})
        if document is None or _expired(document.get("expires_at")):
            return None
        data = document.get("data")
        return data if isinstance(data, str) else None

    def save(self, digest: str, data: str, expires_at: datetime, lifetime: timedelta) -> None:
        collection = self.collection()
        created = (
            collection.replace_one({"_id": digest}, {"data": data, "expires_at": expires_at}, upsert=True).upserted_id
            is not None
        )
        if created and next(self._new_count) % SWEEP_EVERY == 0:  # mongomock has no TTL index
            collection.delete_many({"expires_at": {"$lt": datetime.now(UTC)}})

    def delete(self, digest: str) -> None:
        self.collection().delete_one({"_id": digest})


class RedisSessions:
    """Sessions in Redis, expiring with the key (every host of a deployment shares them).

    While Redis cannot be reached nobody is signed in (a session cannot be
    read or kept), which the sign-in page then says; it is never a 500."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix + REDIS_KEY

    def load(self, digest: str) -> str | None:
        data = self._call("read", self.client.get, self.prefix + digest)
        return data.decode("utf-8") if isinstance(data, bytes) else None

    def save(self, digest: str, data: str, expires_at: datetime, lifetime: timedelta) -> None:
        self._call(
            "keep",
            self.client.set,
            self.prefix + digest,
            data.encode("utf-8"),
            ex=max(int(lifetime.total_seconds()), 1),
        )

    def delete(self, digest: str) -> None:
        self._call("delete", self.client.delete, self.prefix + digest)

    @staticmethod
    def _call(what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return method(*args, **kwargs)
        except RedisError as error:
            log.error("UI sessions: cannot %s a session in Redis: %s", what, error)
            return None


class ServerSessionInterface(SessionInterface):
    """Sessions in a `SessionBackend`, named by the session cookie."""

    serializer = TaggedJSONSerializer()  # what Flask's cookie sessions use: tuples, bytes, datetimes

    def __init__(self, backend: SessionBackend, lifetime_seconds: int = DEFAULT_SECONDS) -> None:
        self.backend = backend
        self.lifetime = timedelta(seconds=lifetime_seconds)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        sid = request.cookies.get(self.get_cookie_name(app), "")
        if not _SID.fullmatch(sid):
            return ServerSession()
        text = self.backend.load(_digest(sid))
        if text is None:
            return ServerSession()
        try:
            data = self.serializer.loads(text)
        except (KeyError, TypeError, ValueError):
            return ServerSession()
        return ServerSession(data if isinstance(data, dict) else {}, sid)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return
        if session.stale_sid:
            self.backend.delete(_digest(session.stale_sid))
        if not session.modified:
            return
        if not session:
            if not session.new:
                self.backend.delete(_digest(session.sid))
            response.delete_cookie(
                self.get_cookie_name(app), domain=self.get_cookie_domain(app), path=self.get_cookie_path(app)
            )
            return
        expires_at = datetime.now(UTC) + self.lifetime
        self.backend.save(_digest(session.sid), self.serializer.dumps(dict(session)), expires_at, self.lifetime)
        response.set_cookie(
            self.get_cookie_name(app),
            session.sid,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
        )


def session_backend(config: Any, get_db: Callable[[], Any]) -> SessionBackend:
    """Redis with `REDIS_URL`, the store otherwise."""
    if config.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
        return RedisSessions(client, config.get("AUTH_REDIS_PREFIX") or "der-registry:")
    return StoreSessions(get_db)


def _new_sid() -> str:
    return secrets.token_urlsafe(32)  # 43 characters


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("ascii")).hexdigest()


def _expired(expires_at: Any) -> bool:
    if not isinstance(expires_at, datetime):
        return True
    if expires_at.tzinfo is None:  # a store without tz_aware returns naive UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at <= datetime.now(UTC)


def ensure_indexes(db: Any) -> None:
    """The TTL index that sweeps expired sessions on MongoDB."""
    db[COLLECTION].create_index("expires_at", expireAfterSeconds=0)
