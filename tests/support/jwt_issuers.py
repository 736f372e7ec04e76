"""Three token issuers and a TokenValidator trusting them, for the
tests/test_auth_tokens_*.py modules and tests/test_auth_api.py.

Issuer A is the built-in provider (static RSA key, one-hour cap), issuer B
signs ES256 with its own static key, issuer C is a Keycloak-like provider
serving OIDC discovery and JWKS over real HTTP on loopback (:class:`JwksServer`);
a fake clock, and helpers to sign and forge tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from registry.auth import IssuerConfig, TokenValidator, load_or_create_signing_key
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
