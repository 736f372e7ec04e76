"""A VEN's identity, issued by the registry at enrolment.

``POST /vens`` gets a ``ven_id`` (uuid4) and a per-enrolment secret from the
server, never from the client: device ids derive from the ``ven_id``, so a
client-chosen one could name another party's devices. The secret is returned
once, in the POST answer; only its SHA-256 is stored. It is 256 random bits,
so a fast hash is enough (there is no dictionary to try), and a VTN can check
it on every message without slowing telemetry down.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

HASH_PREFIX = "sha256$"


def new_ven_id() -> str:
    return str(uuid.uuid4())


def new_secret() -> str:
    """43 URL-safe characters (no ``:``), usable in HTTP Basic and in a URL's userinfo."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str | None, stored_hash: str | None) -> bool:
    """Constant-time check of a presented secret against an enrolment's hash."""
    if not secret or not stored_hash or not stored_hash.startswith(HASH_PREFIX):
        return False
    return hmac.compare_digest(hash_secret(secret), stored_hash)
