"""The built-in provider's access tokens: one claims layout, one signer.

Both the token endpoint and `python run.py token` build tokens here, so a
token minted on the command line is indistinguishable from one the running
server issues, and `builtin_issuer_config` describes exactly what both emit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

import settings

from .keys import SIGNING_ALG
from .keystore import signing_keys_for
from .principal import ROLES
from .tokens import IssuerConfig, TokenValidator, issuer_from_dict

#: docs/contract.md, "Roles and data scoping": access tokens of at most one hour.
MAX_TOKEN_TTL = 3600
DEFAULT_ISSUER = "http://127.0.0.1:5000"
DEFAULT_AUDIENCE = "der-registry"


def token_ttl(requested: int | None) -> int:
    """The lifetime to issue: the requested one, capped at one hour."""
    if requested is None:
        return MAX_TOKEN_TTL
    if requested <= 0:
        raise ValueError("token lifetime must be positive")
    return min(int(requested), MAX_TOKEN_TTL)


def access_claims(
    *,
    issuer: str,
    audience: str,
    subject: str,
    role: str,
    client_id: str,
    ttl: int,
    scope: str = "",
    aggregator_id: str | None = None,
    account_id: str | None = None,
    dso_id: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of an access token (RFC 9068 plus the registry's own)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {ROLES}")
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + token_ttl(ttl),
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "scope": scope,
        "role": role,
    }
    # Absent rather than null: a claim that is there always means something.
    if aggregator_id:
        claims["aggregator_id"] = aggregator_id
    if account_id:
        claims["account_id"] = account_id
    if dso_id:
        claims["dso_id"] = dso_id
    return claims


def sign_access_token(key: RSAKey, claims: Mapping[str, Any]) -> str:
    header = {"alg": SIGNING_ALG, "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, dict(claims), key, algorithms=[SIGNING_ALG])


def mint_token(
    keys_from: str | Mapping[str, Any],
    issuer: str,
    audience: str,
    role: str,
    aggregator_id: str | None = None,
    account_id: str | None = None,
    ttl: int = MAX_TOKEN_TTL,
    subject: str | None = None,
    dso_id: str | None = None,
) -> str:
    """A development token signed with the current signing key, without a server.

    `keys_from` is an app's config, or an instance folder: then the keys this
    environment configures (`OAUTH_SIGNING_KEYS[_FILE]`), else the folder's
    demo keys, exactly as a server started here would use. Raises ValueError
    for an unknown role or a lifetime over one hour (a command-line user
    should hear that, not get a silently shorter token).
    """
    if ttl > MAX_TOKEN_TTL:
        raise ValueError(f"token lifetime is capped at {MAX_TOKEN_TTL} seconds")
    key = signing_keys_for(_keys_config(keys_from)).current_key()
    claims = access_claims(
        issuer=issuer,
        audience=audience,
        subject=subject or f"cli-{role}",
        role=role,
        client_id="cli",
        ttl=ttl,
        aggregator_id=aggregator_id,
        account_id=account_id,
        dso_id=dso_id,
    )
    return sign_access_token(key, claims)


def builtin_issuer_config(app_config: Mapping[str, Any]) -> IssuerConfig:
    """How to validate the built-in provider's tokens: its own key ring, no HTTP."""
    keys = signing_keys_for({**app_config, "INSTANCE_PATH": instance_path_of(app_config)})
    return IssuerConfig(
        issuer=app_config.get("OAUTH_ISSUER") or DEFAULT_ISSUER,
        audience=app_config.get("OAUTH_AUDIENCE") or DEFAULT_AUDIENCE,
        local_keys=keys,
        algorithms=[SIGNING_ALG],
        max_ttl=MAX_TOKEN_TTL,
    )


def validator_from_config(app_config: Mapping[str, Any]) -> TokenValidator:
    """The API's validator: the built-in issuer plus every `OAUTH_PROVIDERS` entry."""
    extra = [issuer_from_dict(dict(entry)) for entry in app_config.get("OAUTH_PROVIDERS") or []]
    return TokenValidator([builtin_issuer_config(app_config), *extra])


def _keys_config(keys_from: str | Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(keys_from, str):
        return {**keys_from, "INSTANCE_PATH": instance_path_of(keys_from)}
    return {
        "INSTANCE_PATH": keys_from,
        "OAUTH_SIGNING_KEYS": settings.OAUTH_SIGNING_KEYS,
        "OAUTH_SIGNING_KEYS_FILE": settings.OAUTH_SIGNING_KEYS_FILE,
    }


def instance_path_of(app_config: Mapping[str, Any], default: str | None = None) -> str:
    """`INSTANCE_PATH` from settings, else the Flask app's instance folder."""
    path = app_config.get("INSTANCE_PATH") or default
    if not path:
        raise ValueError("set INSTANCE_PATH: the signing key is kept in the instance folder")
    return str(path)
