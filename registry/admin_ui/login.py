"""Logging in: the providers on offer, the Authlib clients, the session user.

Every provider is an OAuth 2 authorization server the registry already
trusts (the built-in one, or an ``OAUTH_PROVIDERS`` issuer that has a UI
client in ``ADMIN_UI_CLIENTS``). Login is the authorization code flow with
PKCE (S256) through Authlib's Flask client; the access token it returns is
checked with the registry's own validator, which also says who the user is
(role, aggregator, account). That token and those claims are kept in the
server-side session (``admin_ui.session``); the cookie carries only its id.
Signing out deletes the session and revokes the token, so neither a copied
cookie nor a copied token works afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import wraps
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, flash, redirect, session, url_for

from registry.admin_ui.session import regenerate
from registry.auth import REVOCATIONS, InvalidToken
from registry.auth.credentials import UI_CLIENT_ID

BUILTIN = "builtin"
SESSION_KEY = "ui_user"
OAUTH_EXTENSION = "authlib.integrations.flask_client"


@dataclass(frozen=True)
class Provider:
    """A login button: which Authlib client it uses and what it is called."""

    name: str
    label: str
    issuer: str


@dataclass(frozen=True)
class User:
    """The logged-in person, as the registry's validator saw their token."""

    token: str
    expires_at: float
    role: str
    subject: str
    provider: str
    aggregator_id: str | None = None
    account_id: str | None = None

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


def register_providers(app: Flask) -> list[Provider]:
    """One Authlib client per provider; returns them in login-page order."""
    oauth = OAuth(app)
    issuer = app.config["OAUTH_ISSUER"].rstrip("/")
    oauth.register(
        BUILTIN,
        client_id=UI_CLIENT_ID,
        token_endpoint_auth_method="none",
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"code_challenge_method": "S256"},
    )
    providers = [Provider(BUILTIN, "DER Registry (built-in)", issuer)]
    ui_clients = app.config.get("ADMIN_UI_CLIENTS") or {}
    for index, entry in enumerate(app.config.get("OAUTH_PROVIDERS") or []):
        client = ui_clients.get(entry["issuer"])
        if not client:
            continue  # an issuer for machine tokens only
        name = f"oidc{index}"
        discovery = entry.get("discovery_url") or f"{entry['issuer'].rstrip('/')}/.well-known/openid-configuration"
        oauth.register(
            name,
            client_id=client["client_id"],
            client_secret=client.get("client_secret"),
            server_metadata_url=discovery,
            client_kwargs={"code_challenge_method": "S256", "scope": client.get("scope", "openid")},
        )
        providers.append(Provider(name, client.get("label") or entry["issuer"], entry["issuer"]))
    return providers


def oauth_client(name: str) -> Any:
    return current_app.extensions[OAUTH_EXTENSION].create_client(name)


def user_from_token(token: dict[str, Any], provider: str) -> User:
    """Ask the registry's validator who this token is; raises InvalidToken."""
    access_token = token.get("access_token")
    if not isinstance(access_token, str):
        raise InvalidToken("the provider returned no access token")
    principal = current_app.extensions["principal_cache"].principal_for(access_token)
    expires_at = float(token.get("expires_at") or time.time() + float(token.get("expires_in") or 300))
    return User(
        token=access_token,
        expires_at=expires_at,
        role=principal.role,
        subject=principal.subject,
        provider=provider,
        aggregator_id=principal.aggregator_id,
        account_id=principal.account_id,
    )


def log_in(user: User) -> None:
    session.clear()
    regenerate(session)  # a fresh session id on login: no fixation of an old one
    session[SESSION_KEY] = asdict(user)
    session.permanent = False


def log_out(user: User | None) -> None:
    """End the session (its id dies with it) and revoke the user's token."""
    session.clear()
    regenerate(session)
    if user is not None:
        revoke(user.token)


def revoke(token: str) -> None:
    """Put the token on the registry's revocation list until it expires."""
    revocations = current_app.extensions.get(REVOCATIONS)
    if revocations is None:
        return
    try:
        principal = current_app.extensions["principal_cache"].principal_for(token)
    except InvalidToken:
        return  # expired or refused already: nothing left to end
    revocations.revoke(principal, token)


def current_user() -> User | None:
    data = session.get(SESSION_KEY)
    try:
        return User(**data) if isinstance(data, dict) else None
    except TypeError:  # a session written by another version of the UI
        return None


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Views get the user as their first argument; no or expired login: to the login page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("admin_ui.login"))
        if user.expired:
            return expire_session()
        return view(user, *args, **kwargs)

    return wrapper


def expire_session(message: str = "Your session has expired; please sign in again.") -> Any:
    session.clear()
    regenerate(session)
    flash(message, "error")
    return redirect(url_for("admin_ui.login"))
