"""Signing in to the admin UI served on loopback (the ``live`` app of
tests/support/live_ui.py) through the real OAuth pages with ``requests``, for the
tests/test_security_ui_*.py modules: a signed-in session (:func:`sign_in`, the
``admin`` fixture), the CSRF token of a page, and counting records through the API
with an admin token."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from registry.auth import mint_token
from tests.support.live_ui import Live


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(live: Live, username: str) -> requests.Session:
    """Through /ui/login, the provider's form and the callback, as a browser would."""
    session = requests.Session()
    login = session.get(f"{live.url}/ui/login", timeout=10)
    form = session.post(f"{live.url}/ui/login/builtin", data={"csrf_token": csrf_of(login.text)}, timeout=10)
    assert "/oauth/authorize" in form.url and form.status_code == 200, form.text[:300]
    done = session.post(form.url, data={"username": username, "password": live.password(username)}, timeout=20)
    assert done.url.endswith("/ui/devices") and done.status_code == 200, (done.url, done.text[:300])
    return session


def admin_token(live: Live) -> str:
    return mint_token(live.instance_path, live.app.config["OAUTH_ISSUER"], live.app.config["OAUTH_AUDIENCE"], "admin")


def count(live: Live, resource: str, where: dict[str, Any] | None = None) -> int:
    params = {"where": json.dumps(where)} if where else {}
    response = requests.get(
        f"{live.url}/{resource}", params=params, timeout=10, headers={"Authorization": f"Bearer {admin_token(live)}"}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["_meta"]["total"])


@pytest.fixture(scope="module")
def admin(live: Live) -> requests.Session:
    return sign_in(live, "admin")
