"""TokenValidator: every accepted token is right, every attack is refused.

Issuer A is the built-in provider (static RSA key, one-hour cap), issuer B
signs ES256 with its own static key, issuer C is a Keycloak-like provider
serving OIDC discovery and JWKS over real HTTP on loopback
(tests/support/jwt_issuers.py).

This part: the attacks. Every forged, tampered, misdirected or expired token is
an invalid token (its baseline is accepted, so each attack changes one thing);
symmetric algorithms and issuers without keys cannot be configured."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from registry.auth import InvalidToken, IssuerConfig, TokenValidator, public_jwks
from tests.support.jwt_issuers import (  # noqa: F401  (fixtures)
    AUDIENCE,
    ISSUER_A,
    ISSUER_B,
    b64,
    claims_a,
    clock,
    forge,
    instance_dir,
    jwks_server,
    key_a,
    key_b,
    new_rsa,
    sign,
    validator,
)


@pytest.fixture(scope="module")
def key_other() -> RSAKey:
    """Another issuer's RSA key, used to sign tokens that claim issuer A."""
    return new_rsa("other-1")


def _unbound(key: RSAKey) -> RSAKey:
    # The same key material without `alg`, so joserfc lets us sign PS256 with it.
    data = {name: value for name, value in key.as_dict(private=True).items() if name != "alg"}
    return RSAKey.import_key(data)


def _tampered(token: str) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["role"] = "admin"
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


NOW = int(time.time())


ATTACKS: dict[str, Callable[[RSAKey, ECKey, RSAKey], str]] = {
    "alg none": lambda a, b, o: forge({"alg": "none", "kid": a.kid}, claims_a(), None),
    "alg None": lambda a, b, o: forge({"alg": "None", "kid": a.kid}, claims_a(), None),
    "HS256 with public PEM": lambda a, b, o: forge(
        {"alg": "HS256", "kid": a.kid}, claims_a(), a.as_bytes(private=False)
    ),
    "HS256 with public JWK": lambda a, b, o: forge(
        {"alg": "HS256", "kid": a.kid}, claims_a(), json.dumps(public_jwks(a)["keys"][0]).encode()
    ),
    "ES256 not allowed for A": lambda a, b, o: sign(b, claims_a(), alg="ES256"),
    "RS256 not allowed for B": lambda a, b, o: sign(a, claims_a(iss=ISSUER_B)),
    "PS256 not allowed for A": lambda a, b, o: jwt.encode(
        {"alg": "PS256", "kid": a.kid}, claims_a(), _unbound(a), algorithms=["PS256"]
    ),
    "expired": lambda a, b, o: sign(a, claims_a(iat=NOW - 900, nbf=NOW - 900, exp=NOW - 120)),
    "nbf in future": lambda a, b, o: sign(a, claims_a(nbf=NOW + 600, exp=NOW + 1200)),
    "iat in future": lambda a, b, o: sign(a, claims_a(iat=NOW + 600, exp=NOW + 1200)),
    "missing exp": lambda a, b, o: sign(a, claims_a(exp=None)),
    "missing iat at builtin": lambda a, b, o: sign(a, claims_a(iat=None)),
    "ttl over one hour": lambda a, b, o: sign(a, claims_a(iat=NOW, exp=NOW + 7200)),
    "wrong iss": lambda a, b, o: sign(a, claims_a(iss="https://evil.example")),
    "missing iss": lambda a, b, o: sign(a, claims_a(iss=None)),
    "iss as list": lambda a, b, o: sign(a, claims_a(iss=[ISSUER_A])),
    "wrong aud": lambda a, b, o: sign(a, claims_a(aud="another-api")),
    "missing aud": lambda a, b, o: sign(a, claims_a(aud=None)),
    "missing sub": lambda a, b, o: sign(a, claims_a(sub=None)),
    "other key claiming A, own kid": lambda a, b, o: sign(o, claims_a()),
    "other key claiming A, A's kid": lambda a, b, o: jwt.encode({"alg": "RS256", "kid": a.kid}, claims_a(), o),
    "unknown kid": lambda a, b, o: jwt.encode({"alg": "RS256", "kid": "nope"}, claims_a(), a),
    "tampered payload": lambda a, b, o: _tampered(sign(a, claims_a())),
    "missing role": lambda a, b, o: sign(a, claims_a(role=None)),
    "unknown role": lambda a, b, o: sign(a, claims_a(role="superuser")),
    "role list without known role": lambda a, b, o: sign(a, claims_a(role=["viewer"])),
    "empty": lambda a, b, o: "",
    "garbage": lambda a, b, o: "not-a-token",
    "three dots": lambda a, b, o: "a.b.c",
    "bad base64": lambda a, b, o: "!!!.???.***",
    "json array header": lambda a, b, o: f"{b64(b'[1]')}.{b64(b'{}')}.",
    "four parts": lambda a, b, o: sign(a, claims_a()) + ".x",
}


REASONS = {
    "alg none": "algorithm",
    "alg None": "algorithm",
    "HS256 with public PEM": "algorithm",
    "HS256 with public JWK": "algorithm",
    "ES256 not allowed for A": "algorithm",
    "RS256 not allowed for B": "algorithm",
    "PS256 not allowed for A": "algorithm",
    "expired": "expired",
    "nbf in future": "not yet valid",
    "iat in future": "issued in the future",
    "missing exp": "'exp'",
    "missing iat at builtin": "'iat'",
    "ttl over one hour": "lifetime",
    "wrong iss": "issuer",
    "missing iss": "issuer",
    "iss as list": "issuer",
    "wrong aud": "'aud'",
    "missing aud": "'aud'",
    "missing sub": "'sub'",
    "other key claiming A, own kid": "unknown key",
    "other key claiming A, A's kid": "signature",
    "unknown kid": "unknown key",
    "tampered payload": "signature",
    "missing role": "role",
    "unknown role": "role",
    "role list without known role": "role",
    "empty": "compact",
    "garbage": "compact",
    "three dots": "well-formed",
    "bad base64": "well-formed",
    "json array header": "well-formed",
    "four parts": "compact",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_invalid_token(
    validator: TokenValidator, key_a: RSAKey, key_b: ECKey, key_other: RSAKey, attack: str
) -> None:
    token = ATTACKS[attack](key_a, key_b, key_other)
    with pytest.raises(InvalidToken, match=REASONS[attack]):
        validator.validate(token)


def test_attack_baseline_is_accepted(validator: TokenValidator, key_a: RSAKey) -> None:
    # The attacks above differ from this token in one respect each; if this
    # were refused too, they would prove nothing.
    assert validator.validate(sign(key_a, claims_a(iat=int(time.time()) - 30))).role == "aggregator"


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS512"]])
def test_symmetric_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        IssuerConfig(issuer=ISSUER_B, audience=AUDIENCE, jwks_uri="https://x/jwks", algorithms=algorithms)


def test_issuer_without_keys_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        IssuerConfig(issuer=ISSUER_B, audience=AUDIENCE)
