"""The admin and demo web UI, mounted at ``/ui``: ``init_app(app)``.

It signs people in through an OAuth provider (authorization code + PKCE)
and shows role-dependent panels by calling the registry's REST API with
their token (see ``admin_ui.api``), so the registry decides what is visible.
"""

from __future__ import annotations

from flask import Flask

from registry.admin_ui import views  # noqa: F401  (registers the views on the blueprint)
from registry.admin_ui.blueprint import bp
from registry.admin_ui.login import register_providers
from registry.admin_ui.session import DEFAULT_SECONDS, ServerSessionInterface, session_backend
from registry.auth import credentials

SESSION_COOKIE = "der_ui_session"


def init_app(app: Flask) -> None:
    """Mount the UI with its session, cookie and sign-in settings.

    Sessions are kept server-side, in Redis with ``REDIS_URL``, else in the
    app's store (``app.data``): the cookie holds only a random id. The secret
    key (``registry.auth.credentials``: configured, or the demo's) signs CSRF tokens."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = credentials.demo_secret_key(app.config.get("INSTANCE_PATH") or app.instance_path)
    https = str(app.config.get("PUBLIC_URL", "")).startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
    )
    lifetime = int(app.config.get("ADMIN_UI_SESSION_SECONDS") or DEFAULT_SECONDS)
    app.session_interface = ServerSessionInterface(session_backend(app.config, lambda: app.data.driver.db), lifetime)
    app.extensions["admin_ui_providers"] = register_providers(app)
    app.register_blueprint(bp)
