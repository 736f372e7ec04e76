"""The built-in OAuth 2 provider, driven through a minimal Flask app
(tests/support/oauth_app.py). Tokens it issues are checked with the same
TokenValidator the API uses, so a test passes only if what the provider emits is
what the registry accepts.

This part: the provider's settings. Inconsistent or unknown settings fail at
start, loudly; the provider serves as an external issuer over HTTP; plain HTTP on
a public host is an OAuth error."""

from __future__ import annotations

import threading
from typing import Any

import mongomock
import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from registry.auth import init_app, validator_from_config
from tests.support.oauth_app import AUDIENCE, CLIENTS, USERS, basic, instance_dir, make_app, oauth_app  # noqa: F401  (fixtures)


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
