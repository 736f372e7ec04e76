"""Validation of bearer JWTs from several configured issuers at once.

The issuer is chosen by the token's *unverified* `iss` claim, and from then
on only that issuer's keys, algorithms and audience count: a token that names
issuer A but was signed with issuer B's key fails the signature check.
Algorithms are an allow-list of asymmetric ones per issuer, checked before
any key is touched, which closes `alg: none` and the HS256-with-public-key
trick. Every failure is one exception type, `InvalidToken`, so the API layer
turns all of them into the same 401.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import Key, KeySet
from joserfc.jwt import JWTClaimsRegistry

from .jwks import IssuerKeys, KeysUnavailable, LocalKeys, UnknownKeyId, keyset_from
from .principal import ROLES, Principal

log = logging.getLogger(__name__)

#: Only signature algorithms with a public/private key pair: a symmetric
#: algorithm would let anyone holding the (public) verification key sign.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_SECONDS = 30
#: Far above any real access token (Keycloak's with many roles are ~2 KiB);
#: a bigger one is refused before anything is decoded.
MAX_TOKEN_CHARS = 16 * 1024


class InvalidToken(Exception):
    """The bearer token must not be accepted; `str(error)` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class IssuerConfig:
    """One trusted OAuth provider and where its claims live.

    Claim paths are dotted (`realm_access.roles`). When the role claim holds a
    list, the first entry that is one of `ROLES` is the caller's role.
    `max_ttl` refuses tokens whose `exp - iat` exceeds it (and then `iat` is
    required); the built-in provider sets it to one hour. `local_keys` (the
    built-in provider only, never from settings) is its key ring, followed as
    it is rotated.
    """

    issuer: str
    audience: str
    jwks_uri: str | None = None
    discovery_url: str | None = None
    keys: KeySet | Key | dict[str, Any] | None = None
    algorithms: list[str] = field(default_factory=lambda: ["RS256", "ES256"])
    role_claim: str = "role"
    aggregator_id_claim: str = "aggregator_id"
    account_id_claim: str = "account_id"
    dso_id_claim: str = "dso_id"
    max_ttl: int | None = None
    local_keys: LocalKeys | None = None

    def __post_init__(self) -> None:
        unsafe = set(self.algorithms) - ASYMMETRIC_ALGORITHMS
        if unsafe:
            raise ValueError(f"issuer {self.issuer!r}: algorithms {sorted(unsafe)} are not allowed")
        if self.keys is None and self.local_keys is None and not (self.jwks_uri or self.discovery_url):
            raise ValueError(f"issuer {self.issuer!r} needs keys, a jwks_uri or a discovery_url")


class TokenValidator:
    """Turns a bearer token into a `Principal`, or raises `InvalidToken`."""

    def __init__(
        self,
        issuers: Iterable[IssuerConfig],
        *,
        leeway: int = LEEWAY_SECONDS,
        http_timeout: float = 5.0,
        refetch_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._leeway = leeway
        self._clock = clock
        self._configs: dict[str, IssuerConfig] = {}
        self._keys: dict[str, IssuerKeys] = {}
        for config in issuers:
            if config.issuer in self._configs:
                raise ValueError(f"issuer {config.issuer!r} is configured twice")
            self._configs[config.issuer] = config
            self._keys[config.issuer] = IssuerKeys(
                config.issuer,
                static=keyset_from(config.keys) if config.keys is not None else None,
                local=config.local_keys,
                jwks_uri=config.jwks_uri,
                discovery_url=config.discovery_url,
                http_timeout=http_timeout,
                refetch_interval=refetch_interval,
                clock=clock,
            )

    @property
    def issuers(self) -> list[str]:
        return list(self._configs)

    def keys_generation(self) -> tuple[int, ...]:
        """Changes whenever a local key ring is reloaded (rotated, pruned): what was
        validated before may no longer be."""
        return tuple(c.local_keys.reload_count() for c in self._configs.values() if c.local_keys is not None)

    def validate(self, token: str) -> Principal:
        header, unverified = _peek(token)
        issuer = unverified.get("iss")
        config = self._configs.get(issuer) if isinstance(issuer, str) else None
        if config is None:
            raise InvalidToken("token issuer is not trusted")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in config.algorithms:
            raise InvalidToken(f"algorithm {alg!r} is not accepted for this issuer")
        claims = self._verify(token, header, config, alg)
        return _principal(claims, config)

    def _verify(self, token: str, header: dict[str, Any], config: IssuerConfig, alg: str) -> dict[str, Any]:
        try:
            key = self._keys[config.issuer].find(header.get("kid"))
        except UnknownKeyId:
            raise InvalidToken("token is signed with an unknown key") from None
        except KeysUnavailable:
            raise InvalidToken("keys of the token issuer are unavailable") from None
        if key.alg not in (None, alg):
            raise InvalidToken("token algorithm does not match its key")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
            self._claims_registry(config).validate(claims)
        except BadSignatureError:
            raise InvalidToken("token signature does not verify") from None
        except ExpiredTokenError:
            raise InvalidToken("token has expired") from None
        except MissingClaimError as error:
            raise InvalidToken(f"token lacks required claims: {error.description}") from None
        except JoseError as error:
            raise InvalidToken(f"token is invalid: {error.description or error.error}") from None
        _check_lifetime(claims, config)
        return claims

    def _claims_registry(self, config: IssuerConfig) -> JWTClaimsRegistry:
        essential = {"essential": True}
        return JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self._leeway,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.audience},
            exp=essential,
            sub=essential,
            **({"iat": essential} if config.max_ttl is not None else {}),
        )


def issuer_from_dict(entry: dict[str, Any]) -> IssuerConfig:
    """An `IssuerConfig` from one `OAUTH_PROVIDERS` entry; unknown keys fail loudly."""
    unknown = set(entry) - (set(IssuerConfig.__dataclass_fields__) - {"local_keys"})
    if unknown:
        raise ValueError(f"OAUTH_PROVIDERS entry {entry.get('issuer')!r}: unknown keys {sorted(unknown)}")
    return IssuerConfig(**entry)


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at dotted `path` in `claims`, or None when any step is missing."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims before verification, only to pick issuer and key."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise InvalidToken("token is not a compact JWS")
    head, body, _ = token.split(".")
    try:
        header, claims = _b64json(head), _b64json(body)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested JSON (`[[[[…`) in a segment
        raise InvalidToken("token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("token is not a well-formed JWT")
    return header, claims


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return json.loads(
        base64.urlsafe_b64decode(padded.encode("ascii")), parse_constant=_refuse_constant, parse_float=_finite_float
    )


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN / Infinity, which are not JSON: a NaN `exp`
    # compares false with everything and would never expire.
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise ValueError(f"{text} is out of range")
    return value


def _check_lifetime(claims: dict[str, Any], config: IssuerConfig) -> None:
    if config.max_ttl is None:
        return
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > config.max_ttl:
        raise InvalidToken(f"token lifetime {lifetime:.0f}s exceeds {config.max_ttl}s")


def _principal(claims: dict[str, Any], config: IssuerConfig) -> Principal:
    role = _role(claim_at(claims, config.role_claim))
    if role is None:
        raise InvalidToken(f"token carries no known role (one of {', '.join(ROLES)})")
    return Principal(
        subject=claims["sub"],
        role=role,
        aggregator_id=_optional_str(claim_at(claims, config.aggregator_id_claim)),
        account_id=_optional_str(claim_at(claims, config.account_id_claim)),
        issuer=config.issuer,
        dso_id=_optional_str(claim_at(claims, config.dso_id_claim)),
        # Keycloak names the requesting client `azp`, RFC 9068 `client_id`.
        client_id=_optional_str(claims.get("client_id") or claims.get("azp")),
        token_id=_optional_str(claims.get("jti")),
        expires_at=float(claims["exp"]),
    )


def _role(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value in ROLES else None
    if isinstance(value, list):
        return next((item for item in value if item in ROLES), None)
    return None


def _optional_str(value: Any) -> str | None:
    # Some providers put ids in one-element lists (e.g. user attributes).
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) and value else None
