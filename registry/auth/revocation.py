"""Revoked access tokens: signing out ends a token before its `exp`.

A revoked token is remembered by issuer and `jti` (by its SHA-256 when the
provider sets no `jti`) until it would have expired anyway, in the store's
`revoked_tokens` collection, so every process that shares the store refuses
it. The API's `PrincipalCache` asks on every request, cached token or not:
a copied token stops working the moment its owner signs out.

    revocations = TokenRevocations(get_db)   # get_db() -> pymongo-compatible Database
    revocations.revoke(principal, token)
    revocations.is_revoked(principal, token) -> bool
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Callable

from .principal import Principal

COLLECTION = "revoked_tokens"
EXTENSION = "token_revocations"


def revocation_key(principal: Principal, token: str) -> str:
    if principal.token_id:
        return f"{principal.issuer} jti:{principal.token_id}"
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenRevocations:
    """The revocation list, kept in the registry's store."""

    def __init__(self, get_db: Callable[[], Any]) -> None:
        self.get_db = get_db
        self.indexes_ready = False

    def collection(self) -> Any:
        collection = self.get_db()[COLLECTION]
        if not self.indexes_ready:
            # On MongoDB the TTL index sweeps entries whose token has expired;
            # mongomock ignores it, so `revoke` also sweeps.
            collection.create_index("expires_at", expireAfterSeconds=0)
            self.indexes_ready = True
        return collection

    def revoke(self, principal: Principal, token: str) -> None:
        now = datetime.now(timezone.utc)
        expires = principal.expires_at or now.timestamp() + 3600
        collection = self.collection()
        collection.update_one(
            {"_id": revocation_key(principal, token)},
            {"$set": {"expires_at": datetime.fromtimestamp(expires, timezone.utc),
                      "subject": principal.subject, "revoked_at": now}},
            upsert=True)
        collection.delete_many({"expires_at": {"$lt": now}})

    def is_revoked(self, principal: Principal, token: str) -> bool:
        return self.collection().find_one({"_id": revocation_key(principal, token)}, {"_id": 1}) is not None
