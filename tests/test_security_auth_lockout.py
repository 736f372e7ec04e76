"""Issue 11, items 6, 7 and 9 at the provider and the token check (the provider
app in tests/support/oauth_app.py). Everything goes through HTTP (Flask's test
client or a real server); the only thing a test steers from the side is the
throttle's clock, so that a 15-minute lock-out does not take 15 minutes.

This part: back-off and lock-out of password guessing, per user and per
address, in process and in Redis (every process sees the lock; with Redis down,
sign-in still works and counts in process)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis
from flask import Flask

from tests.support.oauth_app import attempt, instance_dir, make_app  # noqa: F401  (fixtures)
from tests.support.redis_server import redis_url

REDIS_URL = redis_url(0)  # the suite's Redis; each test keeps to its own key prefix (redis_keys)


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


def shown_error(response: Any) -> str:
    found = re.search(r'data-testid="login-error">([^<]*)<', response.get_data(as_text=True))
    return found.group(1) if found else ""


def codes_issued(app: Flask) -> int:
    return app.extensions["test_db"].oauth_codes.count_documents({})


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
