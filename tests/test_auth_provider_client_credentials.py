"""The built-in OAuth 2 provider, driven through a minimal Flask app
(tests/support/oauth_app.py). Tokens it issues are checked with the same
TokenValidator the API uses, so a test passes only if what the provider emits is
what the registry accepts.

This part: the client-credentials grant. A token carries the client's identity
and names its key (RS256); bad credentials, bad requests and JSON bodies are
OAuth errors, never a 500; the lifetime is capped at an hour."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from joserfc import jwt

from registry.auth import TokenValidator, load_or_create_signing_key
from tests.support.oauth_app import basic, claims_of, client, instance_dir, make_app, oauth_app, validator  # noqa: F401  (fixtures)


@pytest.mark.parametrize("how", ["basic", "form"])
def test_client_credentials_token_carries_client_identity(
    client: FlaskClient, validator: TokenValidator, how: str
) -> None:
    form = {"grant_type": "client_credentials"}
    headers = basic("agg-toolkit", "s3cret") if how == "basic" else {}
    if how == "form":
        form.update(client_id="agg-toolkit", client_secret="s3cret")
    response = client.post("/oauth/token", data=form, headers=headers)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert response.headers["Cache-Control"] == "no-store"
    principal = validator.validate(body["access_token"])
    assert (principal.subject, principal.role, principal.aggregator_id, principal.client_id) == (
        "agg-toolkit",
        "aggregator",
        "AGG-1",
        "agg-toolkit",
    )
    claims = claims_of(body["access_token"])
    assert {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "client_id", "scope", "role"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 3600 and "account_id" not in claims
    assert claims["scope"] == "devices:read contracts:write"


def test_token_header_names_key_and_rs256(client: FlaskClient, instance_dir: str) -> None:
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("bridge", "bridge-secret")
    ).json["access_token"]
    key = load_or_create_signing_key(instance_dir)
    header = jwt.decode(token, key, algorithms=["RS256"]).header
    assert header["alg"] == "RS256" and header["kid"] == key.kid


@pytest.mark.parametrize(
    "headers, form, status",
    [
        (basic("agg-toolkit", "wrong"), {}, 401),
        ({}, {"client_id": "agg-toolkit", "client_secret": "wrong"}, 401),
        (basic("nobody", "s3cret"), {}, 401),
        ({}, {}, 401),
        ({}, {"client_id": "admin-ui"}, 401),  # a public client has no credentials to present
        ({"Authorization": "Basic !!!not-base64"}, {}, 401),
    ],
)
def test_bad_client_credentials_are_invalid_client(
    client: FlaskClient, headers: dict[str, str], form: dict[str, str], status: int
) -> None:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", **form}, headers=headers)
    assert (response.status_code, response.json["error"]) == (status, "invalid_client")
    assert "access_token" not in response.json


@pytest.mark.parametrize(
    "form, headers, error",
    [
        ({"grant_type": "password", "username": "alice", "password": "alice-pw"}, {}, "unsupported_grant_type"),
        ({}, {}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "admin:all"}, basic("agg-toolkit", "s3cret"), "invalid_scope"),
        ({"grant_type": "authorization_code", "code": "x"}, basic("agg-toolkit", "s3cret"), "unauthorized_client"),
        ({"grant_type": "client_credentials"}, basic("confidential-ui", "ui-secret"), "unauthorized_client"),
    ],
)
def test_token_endpoint_errors_are_oauth_json(
    client: FlaskClient, form: dict[str, str], headers: dict[str, str], error: str
) -> None:
    response = client.post("/oauth/token", data=form, headers=headers)
    assert response.status_code == 400 and response.json["error"] == error


def test_json_body_is_a_400_not_a_500(client: FlaskClient) -> None:
    response = client.post(
        "/oauth/token", json={"grant_type": "client_credentials"}, headers=basic("agg-toolkit", "s3cret")
    )
    assert response.status_code == 400 and response.json["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("configured, issued", [(600, 600), (99999, 3600), (None, 3600)])
def test_token_ttl_is_capped_at_one_hour(instance_dir: str, configured: int | None, issued: int) -> None:
    app = make_app(instance_dir, OAUTH_TOKEN_TTL=configured)
    response = app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("bridge", "bridge-secret")
    )
    claims = claims_of(response.json["access_token"])
    assert response.json["expires_in"] == issued and claims["exp"] - claims["iat"] == issued
