"""Revoked access tokens: signing out ends a token before its `exp`.

A revoked token is remembered by issuer and `jti` (by its SHA-256 when the
provider sets no `jti`) until it would have expired anyway, in the store's
`revoked_tokens` collection and, with ``REDIS_URL``, also in Redis (keys
``<AUTH_REDIS_PREFIX>revoked:…``), so every process of every host refuses it,
also embedded ones that share no store. The API's `PrincipalCache` asks on
every request, cached token or not: a copied token stops working the moment
its owner signs out. Redis answers first; while it cannot be reached the
store does (shared by the hosts of a deployment on MongoDB).

    revocations = TokenRevocations(get_db, redis_client=None, prefix="der-registry:")
    revocations.revoke(principal, token)
    revocations.is_revoked(principal, token) -> bool
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from registry.store import mongo_setup

from .principal import Principal

log = logging.getLogger(__name__)
COLLECTION = "revoked_tokens"
EXTENSION = "token_revocations"
REDIS_KEY = "revoked:"


def revocation_key(principal: Principal, token: str) -> str:
    if principal.token_id:
        return f"{principal.issuer} jti:{principal.token_id}"
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRevocations:
    """The revocation list: the store, and Redis in front of it when there is one."""

    def __init__(self, get_db: Callable[[], Any], redis_client: Any = None, prefix: str = "der-registry:") -> None:
        self.get_db = get_db
        self.redis = redis_client
        self.prefix = prefix + REDIS_KEY
        self.indexes_ready = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], get_db: Callable[[], Any]) -> TokenRevocations:
        client = None
        if config.get("REDIS_URL"):
            import redis

            client = redis.Redis.from_url(config["REDIS_URL"], socket_connect_timeout=1, socket_timeout=1)
        return cls(get_db, client, config.get("AUTH_REDIS_PREFIX") or "der-registry:")

    def collection(self) -> Any:
        db = self.get_db()
        if not self.indexes_ready:
            if mongo_setup.created_here(db):  # on MongoDB: `run.py migrate`
                ensure_indexes(db)
            self.indexes_ready = True
        return db[COLLECTION]

    def revoke(self, principal: Principal, token: str) -> None:
        now = datetime.now(UTC)
        expires = principal.expires_at or now.timestamp() + 3600
        key = revocation_key(principal, token)
        if self.redis is not None:
            # a little past `exp`: validators allow some clock leeway
            seconds = max(math.ceil(expires - now.timestamp()) + 60, 1)
            self._redis("remember", self.redis.set, self._redis_key(key), principal.subject or "", ex=seconds)
        collection = self.collection()
        collection.update_one(
            {"_id": key},
            {
                "$set": {
                    "expires_at": datetime.fromtimestamp(expires, UTC),
                    "subject": principal.subject,
                    "revoked_at": now,
                }
            },
            upsert=True,
        )
        collection.delete_many({"expires_at": {"$lt": now}})

    def is_revoked(self, principal: Principal, token: str) -> bool:
        key = revocation_key(principal, token)
        if self.redis is not None:
            found = self._redis("look up", self.redis.exists, self._redis_key(key))
            if found is not None:
                return bool(found)
        return self.collection().find_one({"_id": key}, {"_id": 1}) is not None

    def _redis_key(self, key: str) -> str:
        return self.prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()

    @staticmethod
    def _redis(what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return method(*args, **kwargs)
        except RedisError as error:
            log.warning("revoked tokens: cannot %s in Redis (%s); the store answers", what, error)
            return None


def ensure_indexes(db: Any) -> None:
    """On MongoDB the TTL index sweeps entries whose token has expired; mongomock
    ignores it, so `revoke` also sweeps."""
    db[COLLECTION].create_index("expires_at", expireAfterSeconds=0)
