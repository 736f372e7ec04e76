"""The built-in OAuth 2 provider, driven through a minimal Flask app
(tests/support/oauth_app.py). Tokens it issues are checked with the same
TokenValidator the API uses, so a test passes only if what the provider emits is
what the registry accepts.

This part: the authorization code with PKCE. The sign-in page names only
generated demo users; a code is single-use, bound to its client, verifier and
redirect URI, and expires; the provider never redirects to an unproven URI."""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from registry.auth import TokenValidator, hash_secret
from tests.support.oauth_app import (  # noqa: F401  (fixtures)
    ACCOUNT,
    CALLBACK,
    USERS,
    authorize_params,
    basic,
    client,
    codes,
    exchange,
    get_code,
    instance_dir,
    make_app,
    oauth_app,
    pkce,
    validator,
)


def test_login_page_names_no_configured_user(client: FlaskClient) -> None:
    response = client.get("/oauth/authorize", query_string=authorize_params(pkce()[1]))
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<form" in page and "admin-ui" in page
    assert "alice" not in page and "bob" not in page and "prosumer" not in page
    assert "alice-pw" not in page and "pbkdf2" not in page and "scrypt" not in page


@pytest.mark.parametrize(
    "demo, listed",
    [
        ({"alice": USERS[0]["password_hash"]}, ["alice"]),
        ({"alice": hash_secret("another"), "bob": USERS[1]["password_hash"]}, ["bob"]),  # a configured alice
        ({}, []),
    ],
)
def test_login_page_names_only_generated_demo_users(instance_dir: str, demo: dict[str, str], listed: list[str]) -> None:
    client = make_app(instance_dir, OAUTH_DEMO_USERS=demo).test_client()
    page = client.get("/oauth/authorize", query_string=authorize_params(pkce()[1])).get_data(as_text=True)
    assert [name for name in ("alice", "bob") if f"<code>{name}</code>" in page] == listed
    assert "alice-pw" not in page and "scrypt" not in page


def test_code_flow_with_pkce_issues_user_token(client: FlaskClient, validator: TokenValidator, codes: Any) -> None:
    verifier, challenge = pkce()
    code = get_code(client, challenge)
    stored = codes.find_one({})
    assert stored["client_id"] == "admin-ui" and code not in json.dumps(stored, default=str)
    response = exchange(client, code, verifier)
    assert response.status_code == 200, response.json
    principal = validator.validate(response.json["access_token"])
    assert (principal.subject, principal.role, principal.account_id, principal.aggregator_id, principal.client_id) == (
        "alice",
        "prosumer",
        ACCOUNT,
        "AGG-1",
        "admin-ui",
    )
    assert "refresh_token" not in response.json
    assert codes.count_documents({}) == 0


def test_confidential_client_code_flow_with_basic_auth(client: FlaskClient, validator: TokenValidator) -> None:
    verifier, challenge = pkce()
    code = get_code(client, challenge, username="bob", password="bob-pw", client_id="confidential-ui")
    response = exchange(
        client, code, verifier, client_id="confidential-ui", headers=basic("confidential-ui", "ui-secret")
    )
    assert response.status_code == 200, response.json
    assert validator.validate(response.json["access_token"]).role == "aggregator"


def test_code_is_single_use(client: FlaskClient) -> None:
    verifier, challenge = pkce()
    code = get_code(client, challenge)
    assert exchange(client, code, verifier).status_code == 200
    again = exchange(client, code, verifier)
    assert (again.status_code, again.json["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "verifier, error",
    [
        ("another-verifier-" + "x" * 40, "invalid_grant"),
        ("short", "invalid_request"),
        (None, "invalid_request"),
    ],
    ids=["foreign verifier", "too short", "missing"],
)
def test_wrong_verifier_fails_and_burns_the_code(client: FlaskClient, verifier: str | None, error: str) -> None:
    right, challenge = pkce()
    code = get_code(client, challenge)
    response = exchange(client, code, verifier)
    assert (response.status_code, response.json["error"]) == (400, error)
    # A failed attempt consumes the code: it cannot be retried with the right one.
    assert exchange(client, code, right).json["error"] == "invalid_grant"


@pytest.mark.parametrize("redirect_uri", ["http://127.0.0.1:8000/other", CALLBACK + "/", "https://evil.example/cb"])
def test_token_request_with_another_redirect_uri_fails(client: FlaskClient, redirect_uri: str) -> None:
    verifier, challenge = pkce()
    code = get_code(client, challenge)
    response = exchange(client, code, verifier, redirect_uri=redirect_uri)
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")


def test_code_of_another_client_is_refused(client: FlaskClient) -> None:
    verifier, challenge = pkce()
    code = get_code(client, challenge)
    response = exchange(
        client, code, verifier, client_id="confidential-ui", headers=basic("confidential-ui", "ui-secret")
    )
    assert (response.status_code, response.json["error"]) == (400, "invalid_grant")
    assert exchange(client, code, verifier).status_code == 200  # still the owner's


def test_expired_code_is_refused(client: FlaskClient, codes: Any) -> None:
    from datetime import datetime, timedelta

    verifier, challenge = pkce()
    code = get_code(client, challenge)
    codes.update_one({}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    assert exchange(client, code, verifier).json["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": CALLBACK + "?x=1"},
        {"client_id": "nobody"},
        {"client_id": None},
        {"redirect_uri": None},  # two registered URIs: no default to fall back on
    ],
)
def test_authorize_never_redirects_to_unproven_uri(
    client: FlaskClient, codes: Any, changes: dict[str, str | None]
) -> None:
    for method in (client.get, client.post):
        response = method(
            "/oauth/authorize",
            query_string=authorize_params(pkce()[1], **changes),
            data={"username": "alice", "password": "alice-pw"},
        )
        assert response.status_code in (400, 401) and "Location" not in response.headers
        assert response.json["error"] in ("invalid_request", "invalid_client")
    assert codes.count_documents({}) == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
        {"code_challenge": "too-short"},
        {"response_type": "token"},
        {"scope": "admin:all"},
    ],
)
def test_bad_authorization_request_redirects_with_error(
    client: FlaskClient, codes: Any, changes: dict[str, str | None]
) -> None:
    response = client.post(
        "/oauth/authorize",
        query_string=authorize_params(pkce()[1], **changes),
        data={"username": "alice", "password": "alice-pw"},
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert "code" not in query and query["error"][0] in (
        "invalid_request",
        "unsupported_response_type",
        "invalid_scope",
    )
    assert codes.count_documents({}) == 0


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("mallory", "alice-pw"), ("", "")])
def test_wrong_login_shows_form_again_and_issues_nothing(
    client: FlaskClient, codes: Any, username: str, password: str
) -> None:
    response = client.post(
        "/oauth/authorize", query_string=authorize_params(pkce()[1]), data={"username": username, "password": password}
    )
    assert response.status_code == 401 and "Location" not in response.headers
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert codes.count_documents({}) == 0
