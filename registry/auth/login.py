"""The built-in provider's sign-in form: the page, and the password check
behind the back-off and lock-out of `attempts`.

The page names users (with their roles) only in demo mode, that is only the
users `registry.auth.credentials` generated for the embedded demo
(``OAUTH_DEMO_USERS``: username -> password hash); a deployment's own
``OAUTH_USERS`` are never listed. Every refusal reads the same whether or
not the username exists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flask import Response, make_response, render_template_string

from .accounts import OAuthUser, authenticate_user
from .attempts import LoginThrottle

WRONG = "Wrong username or password."
MAX_USERNAME = 256
MAX_PASSWORD = 1024
#: The page has no script and loads nothing; it may not be framed (clickjacking).
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · DER Registry</title></head>
<body style="font-family:sans-serif;max-width:28rem;margin:3rem auto">
<h1>Sign in</h1>
<p><strong>{{ client_id }}</strong> asks to act on your behalf.</p>
{% if error %}<p role="alert" style="color:#b00" data-testid="login-error">{{ error }}</p>{% endif %}
<form method="post">
  <label>Username <input name="username" autocomplete="username" maxlength="{{ max_username }}"
    value="{{ username }}" required></label><br>
  <label>Password <input name="password" type="password" autocomplete="current-password"
    maxlength="{{ max_password }}" required></label><br>
  <button type="submit">Sign in</button>
</form>
{% if users %}<h2>Demo users</h2><ul>
{% for user in users %}<li><code>{{ user.username }}</code> — {{ user.role }}</li>{% endfor %}
</ul>{% endif %}
</body></html>"""


class SignInRefused(Exception):
    """What the person is told, with the status and (for a wait) Retry-After."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.retry_after = message, status, retry_after


def listed_users(users: Mapping[str, OAuthUser], demo_hashes: Mapping[str, str] | None) -> list[OAuthUser]:
    """The users the page may name: the generated demo users, nobody else."""
    demo = demo_hashes or {}
    return [user for user in users.values() if demo.get(user.username) == user.password_hash]


def sign_in(
    throttle: LoginThrottle, users: Mapping[str, OAuthUser], form: Mapping[str, Any], address: str | None
) -> OAuthUser:
    """The user whose password this is, or `SignInRefused`."""
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    wait = throttle.retry_after(username, address)
    if wait > 0:
        raise SignInRefused(_wait_message(wait), 429, wait)
    user = None
    if len(username) <= MAX_USERNAME and len(password) <= MAX_PASSWORD:
        user = authenticate_user(dict(users), username, password)
    if user is None:
        throttle.failed(username, address)
        raise SignInRefused(WRONG, 401)
    throttle.succeeded(username)
    return user


def login_page(
    client_id: str,
    users: list[OAuthUser],
    error: str | None = None,
    username: str = "",
    status: int = 200,
    retry_after: float | None = None,
) -> Response:
    html = render_template_string(
        LOGIN_PAGE,
        client_id=client_id,
        error=error,
        users=users,
        username=username[:MAX_USERNAME],
        max_username=MAX_USERNAME,
        max_password=MAX_PASSWORD,
    )
    response = make_response(html, status)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    if retry_after:
        response.headers["Retry-After"] = str(math.ceil(retry_after))
    return response


def _wait_message(seconds: float) -> str:
    if seconds > 90:
        span = f"{math.ceil(seconds / 60)} minutes"
    else:
        span = f"{math.ceil(seconds)} second{'s' if math.ceil(seconds) != 1 else ''}"
    return f"Too many failed sign-in attempts for this username or from this address. Try again in {span}."
