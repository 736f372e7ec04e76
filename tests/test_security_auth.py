"""Issue 11, items 6, 7 and 9 at the provider and the token check: who the
sign-in page names, back-off and lock-out of password guessing (in process
and in Redis), no framing, malformed JWTs, and revoked tokens.

Everything goes through HTTP (Flask's test client or a real server); the
only thing a test steers from the side is the throttle's clock, so that a
15-minute lock-out does not take 15 minutes.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
import redis
from flask import Flask

from registry import create_app
from registry.auth import REVOCATIONS, hash_secret
from tests.support.oauth_app import USERS, authorize_params, make_app, pkce
from tests.support.redis_server import redis_url

REDIS_URL = redis_url(0)  # the suite's Redis; each test keeps to its own key prefix (redis_keys)
AUTHORIZE = "/oauth/authorize"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def with_clock(app: Flask) -> FakeClock:
    clock = FakeClock()
    app.extensions["der_oauth"].throttle.clock = clock
    return clock


@pytest.fixture(scope="module")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("instance"))


def attempt(client: Any, username: str, password: str, address: str = "192.0.2.10") -> Any:
    return client.post(
        AUTHORIZE,
        query_string=authorize_params(pkce()[1]),
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def shown_error(response: Any) -> str:
    found = re.search(r'data-testid="login-error">([^<]*)<', response.get_data(as_text=True))
    return found.group(1) if found else ""


def codes_issued(app: Flask) -> int:
    return app.extensions["test_db"].oauth_codes.count_documents({})


# --- who the sign-in page names ---------------------------------------------------


def test_a_deployment_with_its_own_users_names_nobody(instance_dir: str) -> None:
    users = [{"username": "operator-anna", "password_hash": hash_secret("pw"), "role": "admin"}]
    clients = [
        {
            "client_id": "admin-ui",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1:5000/ui/callback"],
        }
    ]
    app = create_app({"INSTANCE_PATH": instance_dir, "OAUTH_USERS": users, "OAUTH_CLIENTS": clients})
    page = (
        app.test_client()
        .get(AUTHORIZE, query_string=authorize_params(pkce()[1], redirect_uri="http://127.0.0.1:5000/ui/callback"))
        .get_data(as_text=True)
    )
    assert "<form" in page and "operator-anna" not in page and "Demo users" not in page


def test_the_embedded_demo_names_its_generated_users(instance_dir: str) -> None:
    app = create_app({"INSTANCE_PATH": instance_dir})
    page = (
        app.test_client()
        .get(AUTHORIZE, query_string=authorize_params(pkce()[1], redirect_uri="http://127.0.0.1:5000/ui/callback"))
        .get_data(as_text=True)
    )
    assert "Demo users" in page and "<code>prosumer-madrid</code> — prosumer" in page


# --- back-off and lock-out -----------------------------------------------------------

# (seconds to wait first, password, status, Retry-After): one failure is free,
# then each doubles the wait; the fifth locks for 15 minutes.
GUESSING = [
    (0, "guess-1", 401, None),
    (0, "guess-2", 401, None),
    (0, "guess-3", 429, "1"),
    (1, "guess-3", 401, None),
    (0, "guess-4", 429, "2"),
    (2, "guess-4", 401, None),
    (0, "guess-5", 429, "4"),
    (4, "guess-5", 401, None),
    (60, "alice-pw", 429, "840"),
    (600, "alice-pw", 429, "240"),
]


@pytest.mark.parametrize("username", ["alice", "mallory"], ids=["existing user", "unknown user"])
def test_guessing_one_password_backs_off_then_locks(instance_dir: str, username: str) -> None:
    app = make_app(instance_dir)
    clock, client = with_clock(app), app.test_client()
    seen = []
    for wait, password, _, _ in GUESSING:
        clock.advance(wait)
        response = attempt(client, username, password)
        seen.append((response.status_code, response.headers.get("Retry-After")))
        assert "Location" not in response.headers
        if response.status_code == 429:
            assert shown_error(response).startswith("Too many failed sign-in attempts")
        else:
            assert shown_error(response) == "Wrong username or password."
    # the same answers whether or not the user exists (the test runs for both)
    assert seen == [(status, retry) for _, _, status, retry in GUESSING]
    assert shown_error(attempt(client, username, "alice-pw")).endswith("Try again in 4 minutes.")
    assert codes_issued(app) == 0


def test_the_lock_ends_and_the_right_password_then_works(instance_dir: str) -> None:
    app = make_app(instance_dir)
    clock, client = with_clock(app), app.test_client()
    for step in range(5):
        assert attempt(client, "alice", f"guess-{step}").status_code == 401
        clock.advance(60)
    assert attempt(client, "alice", "alice-pw").status_code == 429
    clock.advance(15 * 60)
    response = attempt(client, "alice", "alice-pw")
    assert response.status_code == 302 and "code=" in response.headers["Location"]
    assert codes_issued(app) == 1


def test_a_locked_user_does_not_lock_others_and_success_resets_the_count(instance_dir: str) -> None:
    app = make_app(instance_dir)
    clock, client = with_clock(app), app.test_client()
    for step in range(5):
        attempt(client, "alice", f"guess-{step}")
        clock.advance(60)
    assert attempt(client, "alice", "alice-pw").status_code == 429
    assert attempt(client, "bob", "bob-pw").status_code == 302  # same address, another user
    for step in range(3):  # bob: wrong, right, wrong, wrong: the right one reset his count
        assert attempt(client, "bob", "nope" if step != 1 else "bob-pw").status_code == (401 if step != 1 else 302)
        clock.advance(5)
    assert attempt(client, "bob", "nope").status_code == 401


def test_one_address_guessing_many_users_is_locked_out(instance_dir: str) -> None:
    app = make_app(instance_dir)
    clock, client = with_clock(app), app.test_client()
    failures = 0
    for n in range(60):  # a patient guesser: a new username each time, waiting as told
        response = attempt(client, f"user-{n}", "password1", address="198.51.100.7")
        assert response.status_code in (401, 429)
        failures += response.status_code == 401
        if failures == 30:
            break
        clock.advance(int(response.headers.get("Retry-After", 0)) or 1)
    assert failures == 30
    locked = attempt(client, "alice", "alice-pw", address="198.51.100.7")  # right, yet refused
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "900" and codes_issued(app) == 0
    assert attempt(client, "alice", "alice-pw", address="203.0.113.9").status_code == 302


def test_an_address_backs_off_before_it_is_locked(instance_dir: str) -> None:
    app = make_app(instance_dir)
    _clock, client = with_clock(app), app.test_client()
    for n in range(11):
        assert attempt(client, f"user-{n}", "x", address="198.51.100.8").status_code == 401
    response = attempt(client, "user-99", "x", address="198.51.100.8")
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("username, password", [("a" * 5000, "x"), ("alice", "p" * 100_000)])
def test_oversized_credentials_are_a_plain_wrong_password(instance_dir: str, username: str, password: str) -> None:
    app = make_app(instance_dir)
    response = attempt(app.test_client(), username, password)
    assert response.status_code == 401 and shown_error(response) == "Wrong username or password."


def test_with_redis_every_process_sees_the_lock(instance_dir: str, redis_keys: tuple[str, Any]) -> None:
    """Two apps stand for two worker processes sharing one Redis."""
    redis_prefix, _ = redis_keys
    config = {"REDIS_URL": REDIS_URL, "LOGIN_ATTEMPTS_PREFIX": redis_prefix}
    first, second = make_app(instance_dir, **config), make_app(instance_dir, **config)
    clock = with_clock(first)
    second.extensions["der_oauth"].throttle.clock = clock
    for step in range(5):
        assert attempt((first, second)[step % 2].test_client(), "alice", f"guess-{step}").status_code == 401
        clock.advance(60)
    assert attempt(second.test_client(), "alice", "alice-pw").status_code == 429
    keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}*"))
    assert keys and not any(b"alice" in key for key in keys)  # counted under a digest
    assert (
        attempt(make_app(instance_dir).test_client(), "alice", "alice-pw").status_code == 302
    )  # no Redis: its own count


def test_with_redis_down_sign_in_still_works_and_counts_in_process(instance_dir: str) -> None:
    app = make_app(instance_dir, REDIS_URL="redis://127.0.0.1:1/0")
    clock, client = with_clock(app), app.test_client()
    assert attempt(client, "alice", "alice-pw").status_code == 302
    for step in range(5):
        assert attempt(client, "alice", f"guess-{step}").status_code == 401
        clock.advance(60)
    assert attempt(client, "alice", "alice-pw").status_code == 429


# --- no framing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, form",
    [
        ("get", AUTHORIZE, None),
        ("post", AUTHORIZE, {"username": "alice", "password": "wrong"}),
        ("get", AUTHORIZE + "?client_id=nobody", None),
        ("post", "/oauth/token", {"grant_type": "client_credentials"}),
        ("get", "/oauth/jwks.json", None),
    ],
)
def test_provider_answers_may_not_be_framed(instance_dir: str, method: str, path: str, form: Any) -> None:
    client = make_app(instance_dir).test_client()
    query = authorize_params(pkce()[1]) if path == AUTHORIZE else None
    response = getattr(client, method)(path, query_string=query, data=form)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    if response.mimetype == "text/html":
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"


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


def test_a_user_listed_by_a_demo_hash_that_differs_is_not_listed(instance_dir: str) -> None:
    app = make_app(instance_dir, OAUTH_DEMO_USERS={"alice": USERS[1]["password_hash"]})
    page = app.test_client().get(AUTHORIZE, query_string=authorize_params(pkce()[1])).get_data(as_text=True)
    assert "<code>alice</code>" not in page


def test_the_kept_username_is_escaped(instance_dir: str) -> None:
    response = attempt(make_app(instance_dir).test_client(), '"><script>alert(1)</script>', "x")
    html = response.get_data(as_text=True)
    assert response.status_code == 401 and "<script>" not in html and "&lt;script&gt;" in html
