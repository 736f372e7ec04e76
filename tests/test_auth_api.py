"""Tokens at the API: attacks get 401, two issuers at once, rate limits."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from registry import create_app
from registry.auth import credentials, load_or_create_signing_key
from tests.conftest import as_json
from tests.factories import device
from tests.support.jwt_issuers import JwksServer, forge, jwks_server  # noqa: F401 (fixture)


@pytest.fixture
def signing_key(app) -> RSAKey:
    return load_or_create_signing_key(app.config["INSTANCE_PATH"])


def claims(app, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": app.config["OAUTH_ISSUER"],
        "aud": app.config["OAUTH_AUDIENCE"],
        "sub": "svc",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "role": "service",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def attacks(app, key: RSAKey) -> dict[str, str]:
    now = int(time.time())
    other = RSAKey.generate_key(2048, parameters={"kid": "other"})
    return {
        "alg none": forge({"alg": "none", "kid": key.kid}, claims(app), None),
        "HS256 signed with the public key": forge(
            {"alg": "HS256", "kid": key.kid}, claims(app), key.as_bytes(private=False)
        ),
        "expired": jwt.encode(
            {"alg": "RS256", "kid": key.kid}, claims(app, iat=now - 900, nbf=now - 900, exp=now - 100), key
        ),
        "not yet valid": jwt.encode({"alg": "RS256", "kid": key.kid}, claims(app, nbf=now + 600, exp=now + 1200), key),
        "wrong issuer": jwt.encode({"alg": "RS256", "kid": key.kid}, claims(app, iss="https://evil"), key),
        "wrong audience": jwt.encode({"alg": "RS256", "kid": key.kid}, claims(app, aud="other-api"), key),
        "another issuer's key": jwt.encode({"alg": "RS256", "kid": key.kid}, claims(app), other),
        "unknown kid": jwt.encode({"alg": "RS256", "kid": "nope"}, claims(app), key),
        "garbage": "not.a.token",
    }


ATTACK_NAMES = [
    "alg none",
    "HS256 signed with the public key",
    "expired",
    "not yet valid",
    "wrong issuer",
    "wrong audience",
    "another issuer's key",
    "unknown kid",
    "garbage",
]


@pytest.mark.parametrize("attack", ATTACK_NAMES)
def test_token_attacks_are_401_and_change_nothing(app, anon, db, signing_key, attack):
    token = attacks(app, signing_key)[attack]
    headers = {"Authorization": f"Bearer {token}"}
    for response in (
        anon.get("/devices", headers=headers),
        anon.post("/devices", headers=headers, **as_json(device())),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json["_error"]["message"]
    assert db["devices"].count_documents({}) == 0


def test_the_untampered_baseline_is_accepted(app, anon, signing_key):
    token = jwt.encode({"alg": "RS256", "kid": signing_key.kid}, claims(app), signing_key)
    assert anon.get("/devices", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_non_bearer_credentials_are_401(anon, header):
    response = anon.get("/devices", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_client_credentials_token_from_the_provider_works_on_the_api(app, anon, db):
    secret = credentials.secret_of(app.config["INSTANCE_PATH"], "clients", credentials.BRIDGE_CLIENT_ID)
    basic = base64.b64encode(f"{credentials.BRIDGE_CLIENT_ID}:{secret}".encode()).decode()
    issued = anon.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert issued.status_code == 200
    assert issued.json["expires_in"] <= 3600
    headers = {"Authorization": f"Bearer {issued.json['access_token']}"}
    assert anon.post("/devices", headers=headers, **as_json(device())).status_code == 201
    assert db["devices"].count_documents({}) == 1


def test_two_issuers_at_once(instance_path, jwks_server: JwksServer, token):
    keycloak = jwks_server
    app = create_app(
        {
            "INSTANCE_PATH": instance_path,
            "OAUTH_PROVIDERS": [
                {
                    "issuer": keycloak.issuer,
                    "audience": "account",
                    "discovery_url": f"{keycloak.base}/.well-known/openid-configuration",
                    "role_claim": "realm_access.roles",
                }
            ],
        }
    )
    with app.app_context():
        app.data.driver.db["devices"].insert_many([device(aggregator_id="agg-kc"), device(aggregator_id="agg-x")])
    now = int(time.time())
    kc_claims = {
        "iss": keycloak.issuer,
        "aud": "account",
        "sub": "kc-user",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["offline_access", "aggregator"]},
        "aggregator_id": "agg-kc",
    }
    kc_key = keycloak.keys[0]
    kc_token = jwt.encode({"alg": "RS256", "kid": kc_key.kid}, kc_claims, kc_key)
    client = app.test_client()
    kc_view = client.get("/devices", headers={"Authorization": f"Bearer {kc_token}"})
    assert kc_view.status_code == 200
    assert [d["aggregator_id"] for d in kc_view.json["_items"]] == ["agg-kc"]
    builtin = client.get("/devices", headers={"Authorization": f"Bearer {token('admin')}"})
    assert builtin.json["_meta"]["total"] == 2
    # a token claiming the Keycloak issuer but signed with the built-in key is refused
    own_key = load_or_create_signing_key(instance_path)
    forged = jwt.encode({"alg": "RS256", "kid": own_key.kid}, kc_claims, own_key)
    assert client.get("/devices", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_rate_limit_is_per_subject(instance_path, token):
    app = create_app({"INSTANCE_PATH": instance_path, "RATE_LIMIT": "3 per minute"})
    client = app.test_client()

    def get(tok: str) -> int:
        return client.get("/aggregators", headers={"Authorization": f"Bearer {tok}"}).status_code

    first = token("admin")
    assert [get(first) for _ in range(3)] == [200, 200, 200]
    assert get(first) == 429
    assert get(token("admin")) == 429  # a fresh token of the same subject: same budget
    assert get(token("aggregator", aggregator_id="agg")) == 200  # another subject has its own budget
    service = token("service")
    assert [get(service) for _ in range(5)] == [200] * 5  # services have RATE_LIMIT_SERVICE
    assert client.get("/health").status_code == 200
