"""Authentication for the registry: who is calling, and the built-in provider.

`TokenValidator` turns a bearer token from any configured issuer into a
`Principal`; `init_app` mounts the built-in OAuth 2 provider whose tokens
`builtin_issuer_config` describes and `mint_token` forges for the CLI, and
the revocation list that sign-out writes and the API's token check reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from . import provider
from .accounts import hash_secret
from .issuing import MAX_TOKEN_TTL, builtin_issuer_config, mint_token, validator_from_config
from .keys import KeyRing, KeyRingError, public_jwks
from .keystore import load_or_create_signing_key, signing_keys_for
from .principal import ROLES, Principal
from .revocation import EXTENSION as REVOCATIONS
from .revocation import TokenRevocations
from .tokens import InvalidToken, IssuerConfig, TokenValidator, issuer_from_dict

__all__ = [
    "MAX_TOKEN_TTL",
    "REVOCATIONS",
    "ROLES",
    "InvalidToken",
    "IssuerConfig",
    "KeyRing",
    "KeyRingError",
    "Principal",
    "TokenRevocations",
    "TokenValidator",
    "builtin_issuer_config",
    "hash_secret",
    "init_app",
    "issuer_from_dict",
    "load_or_create_signing_key",
    "mint_token",
    "public_jwks",
    "signing_keys_for",
    "validator_from_config",
]


def init_app(app: Flask, get_db: Callable[[], Any]) -> None:
    """The built-in provider and the revocation list, both kept in `get_db()`'s
    database (revocations also in Redis with ``REDIS_URL``); the app's
    `principal_cache` (when there is one) checks the list."""
    revocations = TokenRevocations.from_config(app.config, get_db)
    app.extensions[REVOCATIONS] = revocations
    cache = app.extensions.get("principal_cache")
    if cache is not None:
        cache.revocations = revocations
    provider.init_app(app, get_db)
