"""Issue 11, items 6, 7 and 9 at the provider and the token check (the provider
app in tests/support/oauth_app.py). Everything goes through HTTP (Flask's test
client or a real server); the only thing a test steers from the side is the
throttle's clock, so that a 15-minute lock-out does not take 15 minutes.

This part: malformed JWTs at the API are 401 and change nothing; a revoked
token is refused even when cached, and the revocation list forgets tokens once
they have expired."""

from __future__ import annotations

import base64
import json

import pytest

from registry.auth import REVOCATIONS

# --- malformed tokens at the API ------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


GOOD_HEADER = b64(b'{"alg":"RS256","typ":"JWT"}')


GOOD_CLAIMS = b64(b'{"iss":"http://127.0.0.1:5000","sub":"x","aud":"der-registry","exp":4000000000}')


NESTED_LISTS = b64(b"[" * 20000 + b"]" * 20000)


NESTED_OBJECTS = b64(b'{"a":' * 5000 + b"1" + b"}" * 5000)


def with_exp(exp: bytes) -> str:
    return b64(b'{"iss":"http://127.0.0.1:5000","sub":"x","aud":"der-registry","exp":' + exp + b"}")


MALFORMED = {
    "header nested 20000 deep": f"{NESTED_LISTS}.{GOOD_CLAIMS}.c2ln",
    "header nested objects": f"{NESTED_OBJECTS}.{GOOD_CLAIMS}.c2ln",
    "payload nested 20000 deep": f"{GOOD_HEADER}.{NESTED_LISTS}.c2ln",
    "exp NaN": f"{GOOD_HEADER}.{with_exp(b'NaN')}.c2ln",
    "exp Infinity": f"{GOOD_HEADER}.{with_exp(b'Infinity')}.c2ln",
    "exp 1e400": f"{GOOD_HEADER}.{with_exp(b'1e400')}.c2ln",
    "header a list": f"{b64(b'[1,2]')}.{GOOD_CLAIMS}.c2ln",
    "header a string": b64(b'"RS256"') + f".{GOOD_CLAIMS}.c2ln",
    "payload null": f"{GOOD_HEADER}.{b64(b'null')}.c2ln",
    "not base64": f"!!!.{GOOD_CLAIMS}.c2ln",
    "not utf-8": f"{b64(bytes([0xFF, 0xFE, 0xFD]))}.{GOOD_CLAIMS}.c2ln",
    "non-ascii text": f"{GOOD_HEADER}.\u00e9.c2ln",
    "four segments": f"{GOOD_HEADER}.{GOOD_CLAIMS}.c2ln.c2ln",
    "empty segments": "..",
    "200 KiB": f"{GOOD_HEADER}.{'A' * 200_000}.c2ln",
}


@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_malformed_tokens_are_401_and_change_nothing(app, db, name: str, method: str) -> None:
    before = db.devices.count_documents({})
    response = app.test_client().open(
        "/devices",
        method=method,
        headers={"Authorization": f"Bearer {MALFORMED[name]}"},
        data=json.dumps({"device_name": "x"}) if method == "POST" else None,
        content_type="application/json",
    )
    assert response.status_code == 401, response.get_data(as_text=True)[:300]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert db.devices.count_documents({}) == before


# --- revoked tokens --------------------------------------------------------------------


def test_a_revoked_token_is_refused_even_when_cached(app, token) -> None:
    kept, revoked = token("admin"), token("admin")
    client = app.test_client()
    for bearer in (kept, revoked):  # both validated once, so both are in the cache
        assert client.get("/devices", headers={"Authorization": f"Bearer {bearer}"}).status_code == 200
    cache = app.extensions["principal_cache"]
    with app.app_context():
        app.extensions[REVOCATIONS].revoke(cache.principal_for(revoked), revoked)
    refused = client.get("/devices", headers={"Authorization": f"Bearer {revoked}"})
    assert refused.status_code == 401 and "revoked" in refused.get_json()["_error"]["message"]
    assert client.get("/devices", headers={"Authorization": f"Bearer {kept}"}).status_code == 200


def test_the_revocation_list_forgets_tokens_once_they_have_expired(app, db, token) -> None:
    cache, revocations = app.extensions["principal_cache"], app.extensions[REVOCATIONS]
    with app.app_context():
        short = token("admin", ttl=60)
        revocations.revoke(cache.principal_for(short), short)
        stored = db.revoked_tokens.find_one({})
        lifetime = stored["expires_at"].timestamp() - stored["revoked_at"].timestamp()
        assert 50 <= lifetime <= 61
        db.revoked_tokens.update_one({}, {"$set": {"expires_at": stored["revoked_at"]}})
        other = token("admin")
        revocations.revoke(cache.principal_for(other), other)  # sweeps what has expired
        assert db.revoked_tokens.count_documents({}) == 1
