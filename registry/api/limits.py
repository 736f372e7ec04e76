"""Rate limiting (Flask-Limiter), and who the caller is: token subject or client address.

Eve's built-in limiter keys on the Basic-auth username, which bearer
requests lack, so all of them share one bucket. Here the key is the validated
token's issuer and subject (a fresh token does not reset the budget), and the
client address when the request carries no valid token. The address is the
one the trusted proxies (``TRUSTED_PROXIES``) saw, so clients behind a load
balancer do not share its address. The token endpoint and the sign-in form
are limited per client + user + address and per address, so one client
hammering a login cannot lock out everyone behind the same proxy.

Counters live in Redis with ``REDIS_URL`` (shared by every process and host);
without it each process counts alone, which start-up refuses when several
processes serve (``WEB_CONCURRENCY`` > 1) unless ``RATE_LIMIT_PER_PROCESS_OK``.
"""

from __future__ import annotations

import logging

from eve import Eve
from flask import current_app, request
from flask_limiter import Limit, Limiter
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from registry.auth import InvalidToken
from registry.auth.bearer import current_principal

EXTENSION = "rate_limiter"
# the built-in provider's endpoints that take a client's or a user's secret
SIGN_IN_ENDPOINTS = ("oauth.token", "oauth.authorize")
KEY_PART_LIMIT = 128  # a form field is client text: bound what goes into a Redis key

log = logging.getLogger("registry.api.limits")


def caller_key() -> str:
    try:
        principal = current_principal()
    except InvalidToken:
        return f"addr:{request.remote_addr}"
    return f"sub:{principal.issuer}|{principal.subject}"


def sign_in_key() -> str:
    """Client id (Basic auth, form or query) + username (sign-in form) + address."""
    basic = request.authorization
    client = (
        (basic.username if basic and basic.type == "basic" else None)
        or form_field("client_id")
        or request.args.get("client_id")
        or ""
    )
    user = form_field("username").strip().lower()
    return f"sign-in:{client[:KEY_PART_LIMIT]}|{user[:KEY_PART_LIMIT]}|{request.remote_addr}"


def form_field(name: str) -> str:
    """A field of the parsed form, "" when the body cannot be parsed: the view answers
    that (413, 400); a key function that raised would make the limiter believe its
    storage is down and count per process."""
    try:
        return request.form.get(name, "")
    except HTTPException:
        return ""


def address_key() -> str:
    return f"addr:{request.remote_addr}"


def limit_for_caller() -> str:
    """Service components (the OpenADR bridge, workers) carry many parties'
    traffic through one subject, so they get their own, larger budget."""
    config = current_app.config
    try:
        role = current_principal().role
    except InvalidToken:
        role = None
    return config["RATE_LIMIT_SERVICE"] if role == "service" else config["RATE_LIMIT"]


def is_sign_in() -> bool:
    return request.method == "POST" and request.endpoint in SIGN_IN_ENDPOINTS


def init_app(app: Eve) -> None:
    trust_proxies(app)
    storage = app.config.get("REDIS_URL") or "memory://"
    if storage == "memory://":
        check_per_process_counters(app.config)
    config = app.config
    limits = [
        Limit(limit_for_caller, exempt_when=is_sign_in),
        Limit(lambda: config["RATE_LIMIT_SIGN_IN"], key_function=sign_in_key, exempt_when=lambda: not is_sign_in()),
        Limit(
            lambda: config["RATE_LIMIT_SIGN_IN_ADDRESS"],
            key_function=address_key,
            scope="sign-in-address",
            exempt_when=lambda: not is_sign_in(),
        ),
    ]
    # a Redis outage must not take the API down: fall back to per-process counters
    limiter = Limiter(
        caller_key,
        app=app,
        default_limits=limits,
        storage_uri=storage,
        key_prefix=config.get("RATE_LIMIT_KEY_PREFIX", ""),
        headers_enabled=True,
        strategy="sliding-window-counter",
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        storage_options={"socket_connect_timeout": 1},
    )
    app.extensions[EXTENSION] = limiter


def trust_proxies(app: Eve) -> None:
    """Believe X-Forwarded-For / -Proto / -Host from exactly TRUSTED_PROXIES hops
    (the right-most entries, the ones our own proxies appended)."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops < 0:
        raise ValueError(f"TRUSTED_PROXIES must be 0 or more, not {hops}")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def check_per_process_counters(config: dict) -> None:
    """Several processes without Redis would each allow the whole budget."""
    processes = int(config.get("WEB_CONCURRENCY") or 1)
    if processes <= 1:
        return
    message = (
        f"{processes} web processes (WEB_CONCURRENCY) but no REDIS_URL: every process would "
        f"count rate limits and sign-in attempts alone, allowing {processes} times each limit"
    )
    if not config.get("RATE_LIMIT_PER_PROCESS_OK"):
        log.error("%s; refusing to start (set REDIS_URL, or RATE_LIMIT_PER_PROCESS_OK=1 to accept it)", message)
        raise RuntimeError(f"{message}. Set REDIS_URL, or RATE_LIMIT_PER_PROCESS_OK=1 to accept it.")
    log.error("%s; starting anyway because RATE_LIMIT_PER_PROCESS_OK=1", message)


def exempt(app: Eve, endpoint: str) -> None:
    app.extensions[EXTENSION].exempt(app.view_functions[endpoint])
