"""Issue 11, items 6, 7 and 9 at the provider and the token check (the provider
app in tests/support/oauth_app.py). Everything goes through HTTP (Flask's test
client or a real server); the only thing a test steers from the side is the
throttle's clock, so that a 15-minute lock-out does not take 15 minutes.

This part: who the sign-in page names (nobody in a deployment with its own
users, only generated demo users, escaped), and no framing of the provider's
answers."""

from __future__ import annotations

from typing import Any

import pytest

from registry import create_app
from registry.auth import hash_secret
from tests.support.oauth_app import AUTHORIZE, USERS, attempt, authorize_params, instance_dir, make_app, pkce  # noqa: F401  (fixtures)

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


def test_a_user_listed_by_a_demo_hash_that_differs_is_not_listed(instance_dir: str) -> None:
    app = make_app(instance_dir, OAUTH_DEMO_USERS={"alice": USERS[1]["password_hash"]})
    page = app.test_client().get(AUTHORIZE, query_string=authorize_params(pkce()[1])).get_data(as_text=True)
    assert "<code>alice</code>" not in page


def test_the_kept_username_is_escaped(instance_dir: str) -> None:
    response = attempt(make_app(instance_dir).test_client(), '"><script>alert(1)</script>', "x")
    html = response.get_data(as_text=True)
    assert response.status_code == 401 and "<script>" not in html and "&lt;script&gt;" in html


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
