"""Issue 11 (items 4, 7 and 9, the UI's part) and issue 19 (bug 1), through
the real app on a loopback HTTP server, signed in through the real OAuth
pages with ``requests`` (no browser: none of this depends on one;
tests/support/ui_sign_in.py).

This part: sign-out ends the session and the token (the old cookie leads to the
login page, the old bearer token gets 401 from the API, also when the token was
already dead); the cookie is an opaque id, and a new one is issued at sign-in."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import requests

from tests.support.live_ui import Live, live  # noqa: F401  (fixtures)
from tests.support.ui_sign_in import csrf_of, sign_in

COOKIE = "der_ui_session"


def stored_session(live: Live, sid: str) -> dict[str, Any] | None:
    with live.app.app_context():
        document = live.app.data.driver.db["ui_sessions"].find_one({"_id": hashlib.sha256(sid.encode()).hexdigest()})
    return None if document is None else live.app.session_interface.serializer.loads(document["data"])


def api_status(live: Live, token: str) -> tuple[int, str]:
    response = requests.get(f"{live.url}/devices", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code, response.text


def test_sign_out_ends_the_session_and_revokes_the_token(live: Live) -> None:
    leaving, staying = sign_in(live, "prosumer-madrid"), sign_in(live, "coop-iberia")
    cookie = leaving.cookies[COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)  # an opaque id: no token, no claims
    token = stored_session(live, cookie)["ui_user"]["token"]  # type: ignore[index]
    assert token not in cookie and api_status(live, token)[0] == 200

    page = leaving.get(f"{live.url}/ui/devices", timeout=10)
    out = leaving.post(f"{live.url}/ui/logout", data={"csrf_token": csrf_of(page.text)}, timeout=10)
    assert out.url.endswith("/ui/login") and "signed out" in out.text

    replayed = requests.get(f"{live.url}/ui/devices", cookies={COOKIE: cookie}, allow_redirects=False, timeout=10)
    assert replayed.status_code == 302 and replayed.headers["Location"].endswith("/ui/login")
    assert stored_session(live, cookie) is None
    status, body = api_status(live, token)
    assert status == 401 and "revoked" in body
    # the other person is still signed in, with a working token
    assert staying.get(f"{live.url}/ui/devices", timeout=10).url.endswith("/ui/devices")
    assert api_status(live, stored_session(live, staying.cookies[COOKIE])["ui_user"]["token"])[0] == 200  # type: ignore[index]


def test_sign_in_issues_a_new_session_id(live: Live) -> None:
    session = requests.Session()
    session.get(f"{live.url}/ui/login", timeout=10)
    before = session.cookies[COOKIE]
    assert stored_session(live, before) is not None  # the anonymous session (CSRF, OAuth state)
    session.close()
    signed_in = sign_in(live, "prosumer-valencia")
    after = signed_in.cookies[COOKIE]
    assert after != before and "ui_user" in (stored_session(live, after) or {})
    planted = requests.get(f"{live.url}/ui/devices", cookies={COOKIE: before}, allow_redirects=False, timeout=10)
    assert planted.status_code == 302  # an id known before sign-in is not signed in


@pytest.mark.parametrize("cookie", ["", "x" * 43, "not-an-id", "a" * 5000, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"])
def test_a_forged_cookie_is_just_not_signed_in(live: Live, cookie: str) -> None:
    response = requests.get(f"{live.url}/ui/devices", cookies={COOKIE: cookie}, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")


@pytest.mark.parametrize("token", ["not.a.jwt", "x"])
def test_signing_out_with_a_dead_token_still_signs_out(live: Live, token: str) -> None:
    client = live.app.test_client()
    csrf = csrf_of(client.get("/ui/login").get_data(as_text=True))  # the session's CSRF secret, then the user
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": token,
            "expires_at": 4e9,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.post("/ui/logout", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")
    assert client.get("/ui/devices").status_code == 302
