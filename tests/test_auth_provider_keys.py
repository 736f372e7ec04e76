"""The built-in OAuth 2 provider, driven through a minimal Flask app
(tests/support/oauth_app.py). Tokens it issues are checked with the same
TokenValidator the API uses, so a test passes only if what the provider emits is
what the registry accepts.

This part: the published documents and the signing key. Discovery and JWKS
(public key only); tokens minted by the CLI round-trip and are refused for
another audience or instance; the key file is created once, private, shared by
server and CLI, agreed on by racing first starts, and works without hard links."""

from __future__ import annotations

import os
import stat
import threading
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from registry.auth import (
    ROLES,
    InvalidToken,
    TokenValidator,
    builtin_issuer_config,
    load_or_create_signing_key,
    mint_token,
)
from tests.support.oauth_app import (  # noqa: F401  (fixtures)
    ACCOUNT,
    AUDIENCE,
    ISSUER,
    basic,
    claims_of,
    client,
    instance_dir,
    make_app,
    oauth_app,
)


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
