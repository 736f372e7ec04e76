"""The built-in OAuth 2 provider, driven through a minimal Flask app.

Tokens it issues are checked with the same TokenValidator the API uses, so a
test passes only if what the provider emits is what the registry accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import stat
import threading
import time
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs, urlsplit

import mongomock
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from werkzeug.serving import make_server

from registry.auth import (
    ROLES,
    InvalidToken,
    TokenValidator,
    builtin_issuer_config,
    hash_secret,
    init_app,
    load_or_create_signing_key,
    mint_token,
    validator_from_config,
)

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


# --- client credentials -------------------------------------------------------


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


# --- authorization code + PKCE -------------------------------------------------


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


# --- documents -----------------------------------------------------------------


def test_discovery_document(client: FlaskClient) -> None:
    doc = client.get("/.well-known/openid-configuration").json
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert doc["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert doc["jwks_uri"] == f"{ISSUER}/oauth/jwks.json"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["grant_types_supported"]) == {"client_credentials", "authorization_code"}
    assert {"client_secret_basic", "client_secret_post"} <= set(doc["token_endpoint_auth_methods_supported"])


def test_jwks_publishes_only_the_public_key(client: FlaskClient, instance_dir: str) -> None:
    jwks = client.get("/oauth/jwks.json").json
    key = load_or_create_signing_key(instance_dir)
    assert [k["kid"] for k in jwks["keys"]] == [key.kid]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwks["keys"][0])
    assert jwks["keys"][0]["kty"] == "RSA" and jwks["keys"][0]["alg"] == "RS256"


# --- CLI tokens and the shared key -------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_minted_token_round_trips(oauth_app: Flask, instance_dir: str, role: str) -> None:
    token = mint_token(instance_dir, ISSUER, AUDIENCE, role, aggregator_id="AGG-9", account_id=ACCOUNT, ttl=120)
    principal = TokenValidator([builtin_issuer_config(oauth_app.config)]).validate(token)
    assert (principal.role, principal.aggregator_id, principal.account_id, principal.subject) == (
        role,
        "AGG-9",
        ACCOUNT,
        f"cli-{role}",
    )
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize("kwargs", [{"role": "root"}, {"role": "admin", "ttl": 3601}, {"role": "admin", "ttl": 0}])
def test_mint_token_refuses_bad_requests(instance_dir: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        mint_token(instance_dir, ISSUER, AUDIENCE, **kwargs)


def test_token_for_another_audience_or_instance_is_refused(oauth_app: Flask, tmp_path: Any) -> None:
    validator = TokenValidator([builtin_issuer_config(oauth_app.config)])
    with pytest.raises(InvalidToken):
        validator.validate(mint_token(oauth_app.config["INSTANCE_PATH"], ISSUER, "other-api", "admin"))
    with pytest.raises(InvalidToken):
        validator.validate(mint_token(str(tmp_path), ISSUER, AUDIENCE, "admin"))  # other key


def test_key_file_is_created_once_private_and_reused(tmp_path: Any) -> None:
    instance = str(tmp_path / "fresh")
    first = load_or_create_signing_key(instance)
    path = os.path.join(instance, "oauth-signing-keys.json")
    content, mtime = open(path).read(), os.stat(path).st_mtime_ns
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    time.sleep(0.01)
    second = load_or_create_signing_key(instance)
    assert second.kid == first.kid and second.as_dict(private=True) == first.as_dict(private=True)
    assert open(path).read() == content and os.stat(path).st_mtime_ns == mtime
    assert os.listdir(instance) == ["oauth-signing-keys.json"]  # no temp files left behind


def test_server_and_cli_share_the_key(tmp_path: Any) -> None:
    # Two apps on one instance folder stand in for the server and `run.py token`.
    server = make_app(str(tmp_path))
    token = mint_token(str(tmp_path), ISSUER, AUDIENCE, "service")
    assert TokenValidator([builtin_issuer_config(server.config)]).validate(token).role == "service"
    other = make_app(str(tmp_path))
    issued = (
        other.test_client()
        .post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("bridge", "bridge-secret"))
        .json["access_token"]
    )
    assert TokenValidator([builtin_issuer_config(server.config)]).validate(issued).role == "service"


@pytest.mark.parametrize(
    "clients, users",
    [
        ([{**CLIENTS[0], "role": "superuser"}], []),
        ([{**CLIENTS[0], "client_secret_hash": None}], []),
        ([{**CLIENTS[0], "grant_types": ["password"]}], []),
        ([{**CLIENTS[2], "redirect_uris": []}], []),
        ([CLIENTS[0], CLIENTS[0]], []),
        ([], [{**USERS[0], "role": "owner"}]),
    ],
)
def test_inconsistent_settings_fail_at_start(
    tmp_path: Any, clients: list[dict[str, Any]], users: list[dict[str, Any]]
) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(OAUTH_CLIENTS=clients, OAUTH_USERS=users)
    with pytest.raises(ValueError):
        init_app(app, lambda: mongomock.MongoClient().db)


def test_provider_serves_as_an_external_issuer_over_http(tmp_path: Any) -> None:
    # Another process (the UI, the OpenADR bridge) sees the built-in provider
    # only through HTTP: discovery, JWKS and the token endpoint on loopback.
    holder: dict[str, Flask] = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start))
    issuer = f"http://127.0.0.1:{server.server_port}"
    holder["app"] = make_app(str(tmp_path), OAUTH_ISSUER=issuer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        response = requests.post(
            f"{issuer}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("agg-toolkit", "s3cret"),
            timeout=5,
        )
        assert response.status_code == 200
        remote = validator_from_config(
            {
                "INSTANCE_PATH": str(tmp_path / "elsewhere"),
                "OAUTH_PROVIDERS": [
                    {
                        "issuer": issuer,
                        "audience": AUDIENCE,
                        "discovery_url": f"{issuer}/.well-known/openid-configuration",
                    }
                ],
            }
        )
        principal = remote.validate(response.json()["access_token"])
        assert (principal.issuer, principal.role, principal.aggregator_id) == (issuer, "aggregator", "AGG-1")
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_provider_setting_fails_loudly(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="role_path"):
        validator_from_config(
            {
                "INSTANCE_PATH": str(tmp_path),
                "OAUTH_PROVIDERS": [
                    {
                        "issuer": "https://kc.example",
                        "audience": "x",
                        "jwks_uri": "https://kc.example/certs",
                        "role_path": "realm_access.roles",
                    }
                ],
            }
        )


@pytest.mark.parametrize("path, method", [("/oauth/token", "post"), ("/oauth/authorize", "get")])
def test_plain_http_on_a_public_host_is_an_oauth_error(oauth_app: Flask, path: str, method: str) -> None:
    # Authlib insists on TLS except on loopback; behind a TLS proxy the app
    # needs ProxyFix. Either way the client gets OAuth JSON, not a 500.
    client = oauth_app.test_client()
    response = getattr(client, method)(
        path,
        base_url="http://registry.example",
        data={"grant_type": "client_credentials"},
        headers=basic("agg-toolkit", "s3cret"),
    )
    assert (response.status_code, response.json["error"]) == (400, "insecure_transport")


def test_racing_first_starts_agree_on_one_key(tmp_path: Any) -> None:
    instance, kids = str(tmp_path / "racing"), []
    threads = [threading.Thread(target=lambda: kids.append(load_or_create_signing_key(instance).kid)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 4 and len(set(kids)) == 1


def test_key_file_on_a_mount_without_hard_links(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: str, dst: str) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    first = load_or_create_signing_key(str(tmp_path))
    path = os.path.join(str(tmp_path), "oauth-signing-keys.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_signing_key(str(tmp_path)).kid == first.kid
