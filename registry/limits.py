"""Rate limiting per token subject (Flask-Limiter).

Eve's built-in limiter keys on the Basic-auth username, which bearer
requests lack, so all of them share one bucket. Here the key is the validated
token's issuer and subject (a fresh token does not reset the budget), and the
client address when the request carries no valid token.
"""
from __future__ import annotations

from eve import Eve
from flask import request
from flask_limiter import Limiter

from registry.auth import InvalidToken
from registry.auth.bearer import current_principal

EXTENSION = "rate_limiter"


def caller_key() -> str:
    try:
        principal = current_principal()
    except InvalidToken:
        return f"addr:{request.remote_addr}"
    return f"sub:{principal.issuer}|{principal.subject}"


def init_app(app: Eve) -> None:
    storage = app.config.get("REDIS_URL") or "memory://"
    limiter = Limiter(caller_key, app=app, default_limits=[app.config["RATE_LIMIT"]],
                      storage_uri=storage, headers_enabled=True, strategy="moving-window")
    app.extensions[EXTENSION] = limiter


def exempt(app: Eve, endpoint: str) -> None:
    app.extensions[EXTENSION].exempt(app.view_functions[endpoint])
