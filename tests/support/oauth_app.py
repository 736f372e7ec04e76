"""The built-in OAuth 2 provider in a minimal Flask app, for the
tests/test_auth_provider_*.py and tests/test_security_auth_*.py modules: its clients and
users, the fixtures (``oauth_app``, ``client``, ``codes``, ``validator``) and the
steps of the authorization-code flow with PKCE, and a sign-in attempt
(:func:`attempt`)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mongomock
import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry.auth import TokenValidator, builtin_issuer_config, hash_secret, init_app

ISSUER = "http://127.0.0.1:5000"


AUDIENCE = "der-registry"


CALLBACK = "http://127.0.0.1:8000/callback"


ACCOUNT = "5f1c2a9e-3b7d-4c8e-9a6f-1d2e3f4a5b6c"


CLIENTS = [
    {
        "client_id": "agg-toolkit",
        "client_secret_hash": hash_secret("s3cret"),
        "grant_types": ["client_credentials"],
        "role": "aggregator",
        "aggregator_id": "AGG-1",
        "scope": "devices:read contracts:write",
    },
    {
        "client_id": "bridge",
        "client_secret_hash": hash_secret("bridge-secret"),
        "grant_types": ["client_credentials"],
        "role": "service",
    },
    {
        "client_id": "admin-ui",
        "grant_types": ["authorization_code"],
        "redirect_uris": [CALLBACK, "http://127.0.0.1:8000/other"],
        "scope": "openid",
    },
    {
        "client_id": "confidential-ui",
        "client_secret_hash": hash_secret("ui-secret"),
        "grant_types": ["authorization_code"],
        "redirect_uris": [CALLBACK],
    },
]


USERS = [
    {
        "username": "alice",
        "password_hash": hash_secret("alice-pw"),
        "role": "prosumer",
        "aggregator_id": "AGG-1",
        "account_id": ACCOUNT,
    },
    {"username": "bob", "password_hash": hash_secret("bob-pw"), "role": "aggregator", "aggregator_id": "AGG-1"},
]


def make_app(instance: str, **config: Any) -> Flask:
    app = Flask(__name__, instance_path=instance)
    app.config.update(
        {"OAUTH_ISSUER": ISSUER, "OAUTH_AUDIENCE": AUDIENCE, "OAUTH_CLIENTS": CLIENTS, "OAUTH_USERS": USERS, **config}
    )
    db = mongomock.MongoClient().db
    app.extensions["test_db"] = db
    init_app(app, lambda: db)
    return app


@pytest.fixture(scope="module")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture()
def oauth_app(instance_dir: str) -> Flask:
    return make_app(instance_dir)


@pytest.fixture()
def client(oauth_app: Flask) -> FlaskClient:
    return oauth_app.test_client()


@pytest.fixture()
def codes(oauth_app: Flask) -> Any:
    return oauth_app.extensions["test_db"].oauth_codes


@pytest.fixture()
def validator(oauth_app: Flask) -> TokenValidator:
    return TokenValidator([builtin_issuer_config(oauth_app.config)])


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def claims_of(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge: str, **changes: str | None) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": "admin-ui",
        "redirect_uri": CALLBACK,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)  # type: ignore[arg-type]
    return {key: value for key, value in params.items() if value is not None}


def get_code(
    client: FlaskClient, challenge: str, username: str = "alice", password: str = "alice-pw", **changes: str | None
) -> str:
    response = client.post(
        "/oauth/authorize",
        query_string=authorize_params(challenge, **changes),
        data={"username": username, "password": password},
    )
    assert response.status_code == 302, response.data
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == changes.get("redirect_uri", CALLBACK)
    assert query["state"] == ["xyz"]
    return query["code"][0]


def exchange(
    client: FlaskClient,
    code: str,
    verifier: str | None,
    redirect_uri: str = CALLBACK,
    client_id: str = "admin-ui",
    headers: dict[str, str] | None = None,
) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "client_id": client_id}
    if verifier is not None:
        form["code_verifier"] = verifier
    return client.post("/oauth/token", data=form, headers=headers or {})


AUTHORIZE = "/oauth/authorize"


def attempt(client: Any, username: str, password: str, address: str = "192.0.2.10") -> Any:
    return client.post(
        AUTHORIZE,
        query_string=authorize_params(pkce()[1]),
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
