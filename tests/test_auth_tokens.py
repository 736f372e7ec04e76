"""TokenValidator: every accepted token is right, every attack is refused.

Issuer A is the built-in provider (static RSA key, one-hour cap), issuer B
signs ES256 with its own static key, issuer C is a Keycloak-like provider
serving OIDC discovery and JWKS over real HTTP on loopback.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from registry.auth import (
    IssuerConfig, InvalidToken, Principal, TokenValidator, load_or_create_signing_key, public_jwks,
)
from registry.auth.issuing import builtin_issuer_config

ISSUER_A = "http://127.0.0.1:5000"
ISSUER_B = "https://flex.example.org"
AUDIENCE = "der-registry"


class FakeClock:
    """Wall time that tests can move forward without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class JwksServer:
    """A tiny OIDC provider on 127.0.0.1: discovery plus a rotatable JWKS."""

    def __init__(self) -> None:
        self.keys: list[RSAKey] = [new_rsa("c-1")]
        self.hits: dict[str, int] = {"/jwks.json": 0, "/.well-known/openid-configuration": 0}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path not in owner.hits:
                    self.send_error(404)
                    return
                owner.hits[self.path] += 1
                body = json.dumps(owner.document(self.path)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        self.issuer = f"{self.base}/realms/flex"

    def document(self, path: str) -> dict[str, Any]:
        if path == "/jwks.json":
            return {"keys": [key.as_dict(private=False) for key in self.keys]}
        return {"issuer": self.issuer, "jwks_uri": f"{self.base}/jwks.json"}


@pytest.fixture()
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def new_rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@pytest.fixture(scope="module")
def key_b() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "b-1"})


@pytest.fixture()
def key_a(tmp_path: Any) -> RSAKey:
    return load_or_create_signing_key(str(tmp_path))


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def validator(tmp_path: Any, key_a: RSAKey, key_b: ECKey, jwks_server: JwksServer,
              clock: FakeClock) -> TokenValidator:
    return TokenValidator([
        builtin_issuer_config({"INSTANCE_PATH": str(tmp_path), "OAUTH_ISSUER": ISSUER_A,
                               "OAUTH_AUDIENCE": AUDIENCE}),
        IssuerConfig(issuer=ISSUER_B, audience=AUDIENCE, keys=key_b.as_dict(private=False),
                     algorithms=["ES256"], role_claim="ext.role",
                     aggregator_id_claim="ext.aggregator", account_id_claim="ext.account"),
        IssuerConfig(issuer=jwks_server.issuer, audience="account",
                     discovery_url=f"{jwks_server.base}/.well-known/openid-configuration",
                     role_claim="realm_access.roles", aggregator_id_claim="aggregator_id",
                     account_id_claim="account_id"),
    ], clock=clock)


def claims_a(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER_A, "aud": AUDIENCE, "sub": "agg-client", "iat": now, "nbf": now,
              "exp": now + 600, "jti": "j1", "client_id": "agg-client", "role": "aggregator",
              "aggregator_id": "AGG-1"}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def sign(key: Any, claims: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, **header}, claims, key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{b64(signature)}"


def test_builtin_token_becomes_principal(validator: TokenValidator, key_a: RSAKey) -> None:
    principal = validator.validate(sign(key_a, claims_a()))
    assert principal == Principal(subject="agg-client", role="aggregator", aggregator_id="AGG-1",
                                  account_id=None, issuer=ISSUER_A, client_id="agg-client")


def test_es256_token_from_second_issuer(validator: TokenValidator, key_b: ECKey) -> None:
    claims = claims_a(iss=ISSUER_B, role=None, aggregator_id=None,
                      ext={"role": "prosumer", "account": "acc-7", "aggregator": "AGG-2"})
    principal = validator.validate(sign(key_b, claims, alg="ES256"))
    assert (principal.issuer, principal.role, principal.account_id, principal.aggregator_id) == (
        ISSUER_B, "prosumer", "acc-7", "AGG-2")


@pytest.mark.parametrize("roles, expected", [
    (["offline_access", "uma_authorization", "prosumer"], "prosumer"),
    (["service", "admin"], "service"),
    (["admin"], "admin"),
])
def test_keycloak_realm_roles_over_http(validator: TokenValidator, jwks_server: JwksServer,
                                        roles: list[str], expected: str) -> None:
    claims = claims_a(iss=jwks_server.issuer, aud=["account", "broker"], role=None,
                      azp="admin-ui", client_id=None, realm_access={"roles": roles},
                      account_id="acc-1")
    principal = validator.validate(sign(jwks_server.keys[0], claims))
    assert (principal.role, principal.client_id, principal.account_id) == (expected, "admin-ui", "acc-1")
    assert jwks_server.hits == {"/jwks.json": 1, "/.well-known/openid-configuration": 1}


def test_two_issuers_share_one_validator_and_cache(validator: TokenValidator, key_a: RSAKey,
                                                   jwks_server: JwksServer) -> None:
    keycloak = claims_a(iss=jwks_server.issuer, aud="account", role=None,
                        realm_access={"roles": ["aggregator"]})
    for _ in range(3):
        assert validator.validate(sign(jwks_server.keys[0], keycloak)).issuer == jwks_server.issuer
        assert validator.validate(sign(key_a, claims_a())).issuer == ISSUER_A
    assert jwks_server.hits["/jwks.json"] == 1


def test_rotation_refetches_once_per_interval(validator: TokenValidator, jwks_server: JwksServer,
                                              clock: FakeClock) -> None:
    def token_for(key: RSAKey) -> str:
        return sign(key, claims_a(iss=jwks_server.issuer, aud="account", role=None,
                                  realm_access={"roles": ["service"]}))

    old, new, newest = jwks_server.keys[0], new_rsa("c-2"), new_rsa("c-3")
    validator.validate(token_for(old))
    jwks_server.keys = [new]
    assert validator.validate(token_for(new)).role == "service"  # unknown kid -> one refetch
    assert jwks_server.hits["/jwks.json"] == 2
    jwks_server.keys = [newest]
    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(token_for(newest))  # refetched < 30 s ago: no new download
    assert jwks_server.hits["/jwks.json"] == 2
    clock.offset += 31
    assert validator.validate(token_for(newest)).role == "service"
    assert jwks_server.hits["/jwks.json"] == 3
    with pytest.raises(InvalidToken, match="unknown key"):
        validator.validate(token_for(old))  # rotated out
    assert jwks_server.hits["/jwks.json"] == 3


def test_unreachable_jwks_is_invalid_token_not_crash(key_a: RSAKey) -> None:
    validator = TokenValidator([IssuerConfig(issuer="https://gone.example", audience=AUDIENCE,
                                             jwks_uri="http://127.0.0.1:9/jwks.json")],
                               http_timeout=1.0)
    with pytest.raises(InvalidToken, match="unavailable"):
        validator.validate(sign(key_a, claims_a(iss="https://gone.example")))


def test_discovery_naming_another_issuer_is_refused(jwks_server: JwksServer) -> None:
    validator = TokenValidator([IssuerConfig(
        issuer="https://impostor.example", audience="account",
        discovery_url=f"{jwks_server.base}/.well-known/openid-configuration")])
    token = sign(jwks_server.keys[0], claims_a(iss="https://impostor.example", aud="account"))
    with pytest.raises(InvalidToken, match="unavailable"):
        validator.validate(token)


def _attack_tokens(key_a: RSAKey, key_b: ECKey, other: RSAKey) -> dict[str, str]:
    now = int(time.time())
    public_pem = key_a.as_bytes(private=False)
    valid = sign(key_a, claims_a())
    head, body, sig = valid.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered["role"] = "admin"
    return {
        "alg none": forge({"alg": "none", "kid": key_a.kid}, claims_a(), None),
        "alg None": forge({"alg": "None", "kid": key_a.kid}, claims_a(), None),
        "HS256 with public PEM": forge({"alg": "HS256", "kid": key_a.kid}, claims_a(), public_pem),
        "HS256 with public JWK": forge({"alg": "HS256", "kid": key_a.kid}, claims_a(),
                                       json.dumps(public_jwks(key_a)["keys"][0]).encode()),
        "ES256 not allowed for A": sign(key_b, claims_a(), alg="ES256"),
        "RS256 not allowed for B": sign(key_a, claims_a(iss=ISSUER_B), alg="RS256"),
        "PS256 not allowed for A": sign(key_a, claims_a(), alg="PS256"),
        "expired": sign(key_a, claims_a(iat=now - 900, nbf=now - 900, exp=now - 120)),
        "nbf in future": sign(key_a, claims_a(nbf=now + 600, exp=now + 1200)),
        "iat in future": sign(key_a, claims_a(iat=now + 600, exp=now + 1200)),
        "missing exp": sign(key_a, claims_a(exp=None)),
        "missing iat at builtin": sign(key_a, claims_a(iat=None)),
        "ttl over one hour": sign(key_a, claims_a(iat=now, exp=now + 7200)),
        "wrong iss": sign(key_a, claims_a(iss="https://evil.example")),
        "missing iss": sign(key_a, claims_a(iss=None)),
        "iss as list": sign(key_a, claims_a(iss=[ISSUER_A])),
        "wrong aud": sign(key_a, claims_a(aud="another-api")),
        "missing aud": sign(key_a, claims_a(aud=None)),
        "missing sub": sign(key_a, claims_a(sub=None)),
        "B's key claiming A, B's kid": sign(other, claims_a()),
        "B's key claiming A, A's kid": jwt.encode({"alg": "RS256", "kid": key_a.kid}, claims_a(), other),
        "unknown kid": jwt.encode({"alg": "RS256", "kid": "nope"}, claims_a(), key_a),
        "tampered payload": f"{head}.{b64(json.dumps(tampered).encode())}.{sig}",
        "missing role": sign(key_a, claims_a(role=None)),
        "unknown role": sign(key_a, claims_a(role="superuser")),
        "role list without known role": sign(key_a, claims_a(role=["viewer"])),
        "empty": "",
        "garbage": "not-a-token",
        "three dots": "a.b.c",
        "bad base64": "!!!.???.***",
        "json array header": f"{b64(b'[1]')}.{b64(b'{}')}.",
        "four parts": valid + ".x",
    }


ATTACK_NAMES = [
    "alg none", "alg None", "HS256 with public PEM", "HS256 with public JWK",
    "ES256 not allowed for A", "RS256 not allowed for B", "PS256 not allowed for A", "expired",
    "nbf in future", "iat in future", "missing exp", "missing iat at builtin", "ttl over one hour",
    "wrong iss", "missing iss", "iss as list", "wrong aud", "missing aud", "missing sub",
    "B's key claiming A, B's kid", "B's key claiming A, A's kid", "unknown kid", "tampered payload",
    "missing role", "unknown role", "role list without known role", "empty", "garbage",
    "three dots", "bad base64", "json array header", "four parts",
]


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_attack_is_invalid_token(validator: TokenValidator, key_a: RSAKey, key_b: ECKey,
                                 attack: str) -> None:
    other = new_rsa(key_a.kid + "-b") if attack != "B's key claiming A, A's kid" else new_rsa("x")
    tokens = _attack_tokens(key_a, key_b, other)
    assert set(tokens) == set(ATTACK_NAMES)
    with pytest.raises(InvalidToken) as caught:
        validator.validate(tokens[attack])
    assert caught.value.message


def test_attack_baseline_is_accepted(validator: TokenValidator, key_a: RSAKey) -> None:
    # The attacks above differ from this token in one respect each; if this
    # were refused too, they would prove nothing.
    assert validator.validate(sign(key_a, claims_a(iat=int(time.time()) - 30))).role == "aggregator"


@pytest.mark.parametrize("algorithms", [["HS256"], ["none"], ["RS256", "HS512"]])
def test_symmetric_algorithms_cannot_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValueError):
        IssuerConfig(issuer=ISSUER_B, audience=AUDIENCE, jwks_uri="https://x/jwks",
                     algorithms=algorithms)


def test_issuer_without_keys_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        IssuerConfig(issuer=ISSUER_B, audience=AUDIENCE)
