"""Rate limiting per token subject (Flask-Limiter).

Eve's built-in limiter keys on the Basic-auth username, which bearer
requests lack, so all of them share one bucket. Here the key is the validated
token's issuer and subject (a fresh token does not reset the budget), and the
client address when the request carries no valid token.
"""
from __future__ import annotations

from eve import Eve
from flask import current_app, request
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


def limit_for_caller() -> str:
    """Service components (the OpenADR bridge, workers) carry many parties'
    traffic through one subject, so they get their own, larger budget."""
    config = current_app.config
    try:
        role = current_principal().role
    except InvalidToken:
        role = None
    return config["RATE_LIMIT_SERVICE"] if role == "service" else config["RATE_LIMIT"]


def init_app(app: Eve) -> None:
    storage = app.config.get("REDIS_URL") or "memory://"
    # a Redis outage must not take the API down: fall back to per-process counters
    limiter = Limiter(caller_key, app=app, default_limits=[limit_for_caller], storage_uri=storage,
                      headers_enabled=True, strategy="moving-window", swallow_errors=True,
                      in_memory_fallback_enabled=True, storage_options={"socket_connect_timeout": 1})
    app.extensions[EXTENSION] = limiter


def exempt(app: Eve, endpoint: str) -> None:
    app.extensions[EXTENSION].exempt(app.view_functions[endpoint])
