"""Rate limits across processes and behind proxies (registry/api/limits.py, issue 12.8).

Real gunicorn processes on loopback sharing the real Redis (a fresh key prefix
per test), and the built-in provider's sign-in endpoints in process.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from registry import create_app
from tests.processes import REDIS_URL, gunicorn, seed_instance, unique_prefix


def statuses(urls: list[str], count: int, headers: dict[str, str] | None = None) -> list[int]:
    """`count` unauthenticated GET /devices, round robin over `urls` (401 until limited)."""
    return [
        requests.get(urls[i % len(urls)] + "/devices", headers=headers, timeout=10).status_code for i in range(count)
    ]


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "per-process"])
def test_a_limit_holds_across_two_processes_only_with_redis(tmp_path: Any, shared: bool) -> None:
    extra = {"RATE_LIMIT": "5 per minute", "RATE_LIMIT_KEY_PREFIX": unique_prefix()}
    if shared:
        extra["REDIS_URL"] = REDIS_URL
    with gunicorn(tmp_path, extra) as first, gunicorn(tmp_path, extra) as second:
        seen = statuses([first.url, second.url], 12)
    if shared:  # five answers in all, whichever process took them
        assert seen == [401] * 5 + [429] * 7
    else:  # each process counts alone: twice the budget
        assert seen == [401] * 10 + [429] * 2


@pytest.mark.parametrize("trusted", [0, 1])
def test_forwarded_for_is_honoured_only_through_trusted_proxies(tmp_path: Any, trusted: int) -> None:
    extra = {
        "RATE_LIMIT": "3 per minute",
        "RATE_LIMIT_KEY_PREFIX": unique_prefix(),
        "REDIS_URL": REDIS_URL,
        "TRUSTED_PROXIES": str(trusted),
    }
    with gunicorn(tmp_path, extra) as served:
        # this test is the proxy: it appends the address it saw
        first_client = statuses([served.url], 4, {"X-Forwarded-For": "203.0.113.1"})
        other_client = statuses([served.url], 1, {"X-Forwarded-For": "203.0.113.2"})
        # the first client forging an address of its own: the proxy appends the real one
        forged = statuses([served.url], 1, {"X-Forwarded-For": "198.51.100.7, 203.0.113.1"})
    assert first_client == [401, 401, 401, 429]
    if trusted:  # behind the load balancer, clients have buckets of their own
        assert other_client == [401]
    else:  # X-Forwarded-For is anyone's to write: everyone is the proxy's address
        assert other_client == [429]
    assert forged == [429]


# --- the built-in provider's sign-in endpoints -------------------------------------------


@pytest.fixture
def provider(instance_path: str) -> Any:
    app = create_app(
        {
            "INSTANCE_PATH": instance_path,
            "TESTING": True,
            "RATE_LIMIT_SIGN_IN": "3 per minute",
            "RATE_LIMIT_SIGN_IN_ADDRESS": "5 per minute",
            "RATE_LIMIT": "1000 per minute",
        }
    )
    return app.test_client()


def token_request(client: Any, client_id: str, address: str) -> int:
    basic = base64.b64encode(f"{client_id}:wrong".encode()).decode()
    return client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        environ_base={"REMOTE_ADDR": address},
    ).status_code


def sign_in(client: Any, username: str, address: str) -> int:
    return client.post(
        "/oauth/authorize?client_id=der-admin-ui&response_type=code",
        data={"username": username, "password": "wrong"},
        environ_base={"REMOTE_ADDR": address},
    ).status_code


def test_the_token_endpoint_is_limited_per_client_and_address(provider: Any) -> None:
    assert [token_request(provider, "client-a", "192.0.2.1") for _ in range(4)] == [401, 401, 401, 429]
    # another client from the same address, and the same client from elsewhere, are not blocked
    assert token_request(provider, "client-b", "192.0.2.1") == 401
    assert token_request(provider, "client-a", "192.0.2.2") == 401


def test_the_sign_in_form_is_limited_per_user(provider: Any) -> None:
    first = [sign_in(provider, "alice", "192.0.2.1") for _ in range(4)]
    assert first[:3] == [first[0]] * 3 and first[0] != 429 and first[3] == 429
    assert sign_in(provider, "bob", "192.0.2.1") != 429
    assert sign_in(provider, " ALICE ", "192.0.2.1") == 429  # the same user however typed


def test_one_address_cannot_rotate_clients_for_ever(provider: Any) -> None:
    answers = [token_request(provider, f"client-{n}", "192.0.2.9") for n in range(6)]
    assert answers == [401] * 5 + [429]
    assert token_request(provider, "client-0", "192.0.2.10") == 401


@pytest.mark.parametrize(
    "body, status", [("grant_type=client_credentials&username=" + "x" * 5000, 413), ("a=1&%zz", 400)]
)
def test_a_body_the_key_cannot_read_does_not_switch_the_limiter_off_redis(
    instance_path: str, body: str, status: int
) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": instance_path,
            "TESTING": True,
            "MAX_CONTENT_LENGTH": 1000,
            "REDIS_URL": REDIS_URL,
            "RATE_LIMIT_KEY_PREFIX": unique_prefix(),
        }
    )
    answer = app.test_client().post("/oauth/token", data=body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == status
    assert app.extensions["rate_limiter"]._storage_dead is False  # still counting in Redis


def test_the_login_page_is_not_a_sign_in(provider: Any) -> None:
    answers = {
        provider.get("/oauth/authorize?client_id=x", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code
        for _ in range(8)
    }
    assert 429 not in answers


# --- per-process counters with several processes ----------------------------------------


def test_several_processes_without_redis_are_refused(instance_path: str) -> None:
    with pytest.raises(RuntimeError, match="RATE_LIMIT_PER_PROCESS_OK"):
        create_app({"INSTANCE_PATH": instance_path, "TESTING": True, "WEB_CONCURRENCY": 3})
    create_app({"INSTANCE_PATH": instance_path, "TESTING": True, "WEB_CONCURRENCY": 3, "REDIS_URL": REDIS_URL})
    create_app(
        {"INSTANCE_PATH": instance_path, "TESTING": True, "WEB_CONCURRENCY": 3, "RATE_LIMIT_PER_PROCESS_OK": True}
    )


def test_gunicorn_with_workers_and_no_redis_stops_with_the_reason(tmp_path: Any) -> None:
    instance = seed_instance(str(tmp_path / "instance"))
    with gunicorn(tmp_path, {}, workers=2, instance_path=instance, wait=False) as served:
        served.process.wait(60)
    assert served.process.returncode != 0
    assert any("no REDIS_URL" in line and "RATE_LIMIT_PER_PROCESS_OK" in line for line in served.stderr_lines())


def test_gunicorn_with_workers_may_accept_per_process_limits_loudly(tmp_path: Any) -> None:
    instance = seed_instance(str(tmp_path / "instance"))
    with gunicorn(tmp_path, {"RATE_LIMIT_PER_PROCESS_OK": "1"}, workers=2, instance_path=instance) as served:
        assert requests.get(served.url + "/health", timeout=5).status_code == 200
    assert any('"level": "ERROR"' in line and "no REDIS_URL" in line for line in served.stderr_lines())
