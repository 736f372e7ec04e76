"""The built-in provider's clients, users and authorization codes.

Clients and users come from settings (`OAUTH_CLIENTS`, `OAUTH_USERS`) and are
checked once at start-up, so a typo in a role fails loudly instead of minting
tokens the API then refuses. Secrets and passwords are stored only as
werkzeug hashes. Authorization codes live in the `oauth_codes` collection as
SHA-256 digests: a leaked collection yields no usable code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list
from werkzeug.security import check_password_hash, generate_password_hash

from .principal import ROLES

GRANT_TYPES = ("client_credentials", "authorization_code")
# Compared against when a username is unknown, so a wrong username costs as
# much time as a wrong password and does not reveal which users exist.
_DUMMY_HASH = generate_password_hash("no-such-user")


def hash_secret(secret: str) -> str:
    """The werkzeug hash to put in `client_secret_hash` / `password_hash`."""
    return generate_password_hash(secret)


def digest_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class OAuthUser:
    """A person who can log in on the built-in provider's login page."""

    username: str
    password_hash: str
    role: str
    aggregator_id: str | None = None
    account_id: str | None = None
    dso_id: str | None = None

    def get_user_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class OAuthClient(ClientMixin):
    """A registered application; confidential when it has a secret hash."""

    client_id: str
    client_secret_hash: str | None = None
    grant_types: tuple[str, ...] = ("client_credentials",)
    redirect_uris: tuple[str, ...] = ()
    role: str | None = None
    aggregator_id: str | None = None
    account_id: str | None = None
    dso_id: str | None = None
    scope: str = ""

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous default: with several URIs the client must say which.
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = scope_to_list(self.scope) or []
        if not scope:
            return self.scope
        return " ".join(item for item in scope_to_list(scope) if item in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match (RFC 9700 §4.1.3): no prefix or pattern matching.
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return bool(self.client_secret_hash) and check_password_hash(
            self.client_secret_hash,
            client_secret,  # type: ignore[arg-type]
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client_secret_hash:
            return method in ("client_secret_basic", "client_secret_post")
        # Public clients (a browser app) have nothing to authenticate with;
        # PKCE is what binds their code to them.
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass
class StoredCode(AuthorizationCodeMixin):
    """An issued authorization code as read back from `oauth_codes`."""

    client_id: str
    redirect_uri: str
    scope: str
    username: str
    code_challenge: str
    code_challenge_method: str
    expires_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self, now: datetime) -> bool:
        expires_at = self.expires_at
        # pymongo returns naive datetimes (in UTC) unless tz_aware is set.
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return now >= expires_at

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> StoredCode:
        fields = {name: document[name] for name in cls.__dataclass_fields__ if name in document}
        return cls(**fields)


def load_clients(entries: Iterable[dict[str, Any]]) -> dict[str, OAuthClient]:
    """Parse `OAUTH_CLIENTS`; raises ValueError on anything inconsistent."""
    clients: dict[str, OAuthClient] = {}
    for entry in entries:
        client = OAuthClient(
            client_id=entry["client_id"],
            client_secret_hash=entry.get("client_secret_hash"),
            grant_types=tuple(entry.get("grant_types", ("client_credentials",))),
            redirect_uris=tuple(entry.get("redirect_uris", ())),
            role=entry.get("role"),
            aggregator_id=entry.get("aggregator_id"),
            account_id=entry.get("account_id"),
            dso_id=entry.get("dso_id"),
            scope=entry.get("scope", ""),
        )
        _check_client(client)
        if client.client_id in clients:
            raise ValueError(f"OAUTH_CLIENTS: client {client.client_id!r} appears twice")
        clients[client.client_id] = client
    return clients


def load_users(entries: Iterable[dict[str, Any]]) -> dict[str, OAuthUser]:
    """Parse `OAUTH_USERS`; raises ValueError on an unknown role."""
    users: dict[str, OAuthUser] = {}
    for entry in entries:
        user = OAuthUser(**{key: entry.get(key) for key in OAuthUser.__dataclass_fields__})
        if user.role not in ROLES:
            raise ValueError(f"OAUTH_USERS: user {user.username!r} has unknown role {user.role!r}")
        users[user.username] = user
    return users


def authenticate_user(users: dict[str, OAuthUser], username: str, password: str) -> OAuthUser | None:
    user = users.get(username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def _check_client(client: OAuthClient) -> None:
    name = f"OAUTH_CLIENTS: client {client.client_id!r}"
    unknown = set(client.grant_types) - set(GRANT_TYPES)
    if unknown:
        raise ValueError(f"{name} has unsupported grant types {sorted(unknown)}")
    if "client_credentials" in client.grant_types:
        if not client.client_secret_hash:
            raise ValueError(f"{name} uses client_credentials but has no client_secret_hash")
        if client.role not in ROLES:
            raise ValueError(f"{name} has unknown role {client.role!r}")
    if "authorization_code" in client.grant_types and not client.redirect_uris:
        raise ValueError(f"{name} uses authorization_code but has no redirect_uris")
