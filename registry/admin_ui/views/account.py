"""Sign in, the OAuth callback, sign out."""

from __future__ import annotations

from typing import Any

from authlib.integrations.base_client import OAuthError
from flask import current_app, flash, redirect, session, url_for
from requests import RequestException

from registry.admin_ui.blueprint import bp, page
from registry.admin_ui.login import current_user, log_in, log_out, oauth_client, user_from_token
from registry.auth import InvalidToken

PENDING = "ui_login_provider"


def _providers() -> dict[str, Any]:
    return {p.name: p for p in current_app.extensions["admin_ui_providers"]}


@bp.get("/")
def home() -> Any:
    return redirect(url_for("admin_ui.devices" if current_user() else "admin_ui.login"))


@bp.get("/login")
def login() -> Any:
    if current_user() and not current_user().expired:  # type: ignore[union-attr]
        return redirect(url_for("admin_ui.devices"))
    return page("login.html", providers=list(_providers().values()))


@bp.post("/login/<name>")
def start_login(name: str) -> Any:
    if name not in _providers():
        flash("That sign-in provider is not configured.", "error")
        return redirect(url_for("admin_ui.login"))
    session[PENDING] = name
    callback = current_app.config["PUBLIC_URL"].rstrip("/") + url_for("admin_ui.callback")
    try:
        return oauth_client(name).authorize_redirect(callback)
    except Exception as error:  # discovery unreachable, bad metadata: say so, do not 500
        current_app.logger.warning("admin UI: cannot start sign-in with %s: %s", name, error)
        flash(f"{_providers()[name].label} cannot be reached right now; try again later.", "error")
        return redirect(url_for("admin_ui.login"))


@bp.get("/callback")
def callback() -> Any:
    name = session.pop(PENDING, None)
    if name not in _providers():
        flash("That sign-in was not started here (or took too long); please start again.", "error")
        return redirect(url_for("admin_ui.login"))
    try:
        token = oauth_client(name).authorize_access_token()
        user = user_from_token(token, name)
    except OAuthError as error:
        flash(f"Sign-in failed: {error.description or error.error}.", "error")
        return redirect(url_for("admin_ui.login"))
    except InvalidToken as error:
        flash(f"The registry does not accept this provider's token: {error.message}.", "error")
        return redirect(url_for("admin_ui.login"))
    except RequestException as error:  # the token endpoint went away between the two steps
        current_app.logger.warning("admin UI: cannot finish sign-in with %s: %s", name, error)
        flash(f"{_providers()[name].label} cannot be reached right now; try again later.", "error")
        return redirect(url_for("admin_ui.login"))
    log_in(user)
    return redirect(url_for("admin_ui.devices"))


@bp.post("/logout")
def logout() -> Any:
    user = current_user()
    log_out(user)
    flash("You are signed out.", "info")
    end_session = None
    if user and user.provider in _providers():
        try:
            end_session = oauth_client(user.provider).load_server_metadata().get("end_session_endpoint")
        except Exception:  # the provider being down must not keep anyone signed in
            end_session = None
    if end_session:
        back_to = current_app.config["PUBLIC_URL"].rstrip("/") + url_for("admin_ui.login")
        return oauth_client(user.provider).logout_redirect(post_logout_redirect_uri=back_to)  # type: ignore[union-attr]
    return redirect(url_for("admin_ui.login"))
