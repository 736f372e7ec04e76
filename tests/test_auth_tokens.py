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
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from registry.auth import (
    InvalidToken,
    IssuerConfig,
    Principal,
    TokenValidator,
    load_or_create_signing_key,
    public_jwks,
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
            def do_GET(self) -> None:
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
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def new_rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@pytest.fixture(scope="module")
def key_b() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "b-1"})


@pytest.fixture(scope="module")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    # One instance folder for the module: generating RSA keys per test is slow.
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="module")
def key_a(instance_dir: str) -> RSAKey:
    return load_or_create_signing_key(instance_dir)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def validator(
    instance_dir: str, key_a: RSAKey, key_b: ECKey, jwks_server: JwksServer, clock: FakeClock
) -> TokenValidator:
    return TokenValidator(
        [
            builtin_issuer_config(
                {"INSTANCE_PATH": instance_dir, "OAUTH_ISSUER": ISSUER_A, "OAUTH_AUDIENCE": AUDIENCE}
            ),
            IssuerConfig(
                issuer=ISSUER_B,
                audience=AUDIENCE,
                keys=key_b.as_dict(private=False),
                algorithms=["ES256"],
                role_claim="ext.role",
                aggregator_id_claim="ext.aggregator",
                account_id_claim="ext.account",
            ),
            IssuerConfig(
                issuer=jwks_server.issuer,
                audience="account",
                discovery_url=f"{jwks_server.base}/.well-known/openid-configuration",
                role_claim="realm_access.roles",
                aggregator_id_claim="aggregator_id",
                account_id_claim="account_id",
            ),
        ],
        clock=clock,
    )


def claims_a(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER_A,
        "aud": AUDIENCE,
        "sub": "agg-client",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j1",
        "client_id": "agg-client",
        "role": "aggregator",
        "aggregator_id": "AGG-1",
    }
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
    assert principal == Principal(
        subject="agg-client",
        role="aggregator",
        aggregator_id="AGG-1",
        account_id=None,
        issuer=ISSUER_A,
        client_id="agg-client",
    )


def test_es256_token_from_second_issuer(validator: TokenValidator, key_b: ECKey) -> None:
    claims = claims_a(
        iss=ISSUER_B, role=None, aggregator_id=None, ext={"role": "prosumer", "account": "acc-7", "aggregator": "AGG-2"}
    )
    principal = validator.validate(sign(key_b, claims, alg="ES256"))
    assert (principal.issuer, principal.role, principal.account_id, principal.aggregator_id) == (
        ISSUER_B,
        "prosumer",
        "acc-7",
        "AGG-2",
    )


@pytest.mark.parametrize(
    "roles, expected",
    [
        (["offline_access", "uma_authorization", "prosumer"], "prosumer"),
        (["service", "admin"], "service"),
        (["admin"], "admin"),
    ],
)
def test_keycloak_realm_roles_over_http(
    validator: TokenValidator, jwks_server: JwksServer, roles: list[str], expected: str
) -> None:
    claims = claims_a(
        iss=jwks_server.issuer,
        aud=["account", "broker"],
        role=None,
        azp="admin-ui",
        client_id=None,
        realm_access={"roles": roles},
        account_id="acc-1",
    )
    principal = validator.validate(sign(jwks_server.keys[0], claims))
    assert (principal.role, principal.client_id, principal.account_id) == (expected, "admin-ui", "acc-1")
    assert jwks_server.hits == {"/jwks.json": 1, "/.well-known/openid-configuration": 1}


def test_two_issuers_share_one_validator_and_cache(
    validator: TokenValidator, key_a: RSAKey, jwks_server: JwksServer
) -> None:
    keycloak = claims_a(iss=jwks_server.issuer, aud="account", role=None, realm_access={"roles": ["aggregator"]})
    for _ in range(3):
        assert validator.validate(sign(jwks_server.keys[0], keycloak)).issuer == jwks_server.issuer
        assert validator.validate(sign(key_a, claims_a())).issuer == ISSUER_A
    assert jwks_server.hits["/jwks.json"] == 1


def test_rotation_refetches_once_per_interval(
    validator: TokenValidator, jwks_server: JwksServer, clock: FakeClock
) -> None:
    def token_for(key: RSAKey) -> str:
        return sign(
            key, claims_a(iss=jwks_server.issuer, aud="account", role=None, realm_access={"roles": ["service"]})
        )

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
    validator = TokenValidator(
        [IssuerConfig(issuer="https://gone.example", audience=AUDIENCE, jwks_uri="http://127.0.0.1:9/jwks.json")],
        http_timeout=1.0,
    )
    with pytest.raises(InvalidToken, match="unavailable"):
        validator.validate(sign(key_a, claims_a(iss="https://gone.example")))


def test_discovery_naming_another_issuer_is_refused(jwks_server: JwksServer) -> None:
    validator = TokenValidator(
        [
            IssuerConfig(
                issuer="https://impostor.example",
                audience="account",
                discovery_url=f"{jwks_server.base}/.well-known/openid-configuration",
            )
        ]
    )
    token = sign(jwks_server.keys[0], claims_a(iss="https://impostor.example", aud="account"))
    with pytest.raises(InvalidToken, match="unavailable"):
        validator.validate(token)


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
