"""The admin UI's sessions without a browser: a token the API refuses and an expired
session send the user back to the login page, and a POST without the CSRF token is
refused."""

from __future__ import annotations

import pytest

from tests.support.live_ui import live  # noqa: F401  (fixtures)


def test_a_token_the_api_refuses_sends_the_user_back_to_login(live):
    client = live.app.test_client()
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": "not.a.jwt",
            "expires_at": 4e9,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.get("/ui/devices")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")
    assert "sign in again" in client.get("/ui/login").get_data(as_text=True)


def test_an_expired_session_sends_the_user_back_to_login(live):
    client = live.app.test_client()
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": "x",
            "expires_at": 1.0,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.get("/ui/devices")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")


@pytest.mark.parametrize(
    "path", ["/ui/logout", "/ui/login/builtin", "/ui/offers", "/ui/devices/x/toggle", "/ui/contracts/x/cancel"]
)
def test_a_post_without_the_csrf_token_is_refused(live, path):
    response = live.app.test_client().post(path, data={"field": "availability", "value": "no"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
