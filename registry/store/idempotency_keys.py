"""Where ``Idempotency-Key`` records are kept (the protocol: :mod:`registry.api.idempotency`).

Storage only, so that the clock-driven housekeeping below the API (the
marketplace tick) can expire keys without reaching up into the request layer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

COLLECTION = "idempotency_keys"


def ensure_indexes(db: Any) -> None:
    db[COLLECTION].create_index([("caller", 1), ("resource", 1), ("key", 1)], unique=True, name="identity")
    db[COLLECTION].create_index([("expires_at", 1)], expireAfterSeconds=0, name="expiry")


def sweep(db: Any, now: datetime) -> int:
    """Expired keys (MongoDB's TTL index does this too; the embedded store has none)."""
    return db[COLLECTION].delete_many({"expires_at": {"$lte": now}}).deleted_count
