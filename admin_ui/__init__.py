"""The admin and demo web UI, mounted at ``/ui``: ``init_app(app)``.

It signs people in through an OAuth provider (authorization code + PKCE)
and shows role-dependent panels by calling the registry's REST API with
their token (see ``admin_ui.api``), so the registry decides what is visible.
"""
from __future__ import annotations

import os
import secrets

from flask import Flask

from admin_ui import views  # noqa: F401  (registers the views on the blueprint)
from admin_ui.blueprint import bp
from admin_ui.login import register_providers
from admin_ui.session import DEFAULT_SECONDS, StoreSessionInterface

SECRET_FILE = "ui-secret-key"
SESSION_COOKIE = "der_ui_session"


def init_app(app: Flask) -> None:
    """Mount the UI with its session, cookie and sign-in settings.

    Sessions are kept server-side in the app's store (``app.data``): the
    cookie holds only a random id. The secret key still signs CSRF tokens."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret_key(app.config.get("INSTANCE_PATH") or app.instance_path)
    https = str(app.config.get("PUBLIC_URL", "")).startswith("https://")
    app.config.update(SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=https)
    lifetime = int(app.config.get("ADMIN_UI_SESSION_SECONDS") or DEFAULT_SECONDS)
    app.session_interface = StoreSessionInterface(lambda: app.data.driver.db, lifetime)
    app.extensions["admin_ui_providers"] = register_providers(app)
    app.register_blueprint(bp)


def load_or_create_secret_key(instance_path: str) -> str:
    """The session signing key: made once into the instance folder (mode 0600),
    so sessions survive restarts and every worker of one deployment agrees."""
    path = os.path.join(instance_path, SECRET_FILE)
    if not os.path.exists(path):
        # written aside, then linked into place: a second process starting at
        # the same moment either wins or reads the winner's complete key
        draft = f"{path}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    with open(path) as f:
        return f.read().strip()
