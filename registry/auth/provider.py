"""The built-in OAuth 2 provider: token, authorize, JWKS and discovery endpoints.

It exists so the embedded default and the tests need no external identity
provider. Authlib's AuthorizationServer does the protocol work; this module
supplies the storage (settings for clients and users, `oauth_codes` for
codes), the JWT access tokens of `issuing`, and the sign-in form of `login`
(with its back-off and lock-out). Every answer forbids framing.

    init_app(app, get_db)   # get_db() -> pymongo-compatible Database
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from registry.store import mongo_setup

from .accounts import (
    OAuthClient,
    OAuthUser,
    StoredCode,
    digest_code,
    hash_secret,
    load_clients,
    load_users,
)
from .attempts import LoginThrottle
from .issuing import (
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    access_claims,
    builtin_issuer_config,
    instance_path_of,
    mint_token,
    sign_access_token,
    token_ttl,
)
from .keystore import SigningKeys, signing_keys_for
from .login import SignInRefused, listed_users, login_page, sign_in

__all__ = ["bp", "builtin_issuer_config", "hash_secret", "init_app", "mint_token"]

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)
CODE_LIFETIME = timedelta(minutes=10)
CODES = "oauth_codes"
EXTENSION = "der_oauth"


class _ProviderState:
    """Everything one app's provider needs, kept in `app.extensions`."""

    def __init__(self, app: Flask, get_db: Callable[[], Any]) -> None:
        self.get_db = get_db
        self.issuer: str = (app.config.get("OAUTH_ISSUER") or DEFAULT_ISSUER).rstrip("/")
        self.audience: str = app.config.get("OAUTH_AUDIENCE") or DEFAULT_AUDIENCE
        self.ttl = token_ttl(app.config.get("OAUTH_TOKEN_TTL"))
        self.keys: SigningKeys = signing_keys_for({**app.config, "INSTANCE_PATH": instance_path_of(app.config)})
        self.clients = load_clients(app.config.get("OAUTH_CLIENTS") or [])
        self.users = load_users(app.config.get("OAUTH_USERS") or [])
        self.listed_users = listed_users(self.users, app.config.get("OAUTH_DEMO_USERS"))
        self.throttle = LoginThrottle.from_config(app.config)
        self.indexes_ready = False
        self.server = AuthorizationServer()
        self.server.init_app(app, query_client=self.clients.get, save_token=_keep_no_token)
        # JWTs are self-contained, so there is nothing to store per token.
        self.server.register_token_generator("default", self.generate_token)
        self.server.register_grant(_ClientCredentials)
        self.server.register_grant(_AuthorizationCode, [_S256Required(required=True)])

    def generate_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: OAuthUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        # A user's own role and ids win over the client's: the UI client
        # acts on behalf of whoever logged in.
        owner: OAuthUser | OAuthClient = user or client
        claims = access_claims(
            issuer=self.issuer,
            audience=self.audience,
            subject=user.username if user else client.client_id,
            role=owner.role or "",
            client_id=client.client_id,
            ttl=self.ttl,
            scope=scope or client.scope,
            aggregator_id=owner.aggregator_id,
            account_id=owner.account_id,
            dso_id=owner.dso_id,
        )
        return {
            "token_type": "Bearer",
            "access_token": sign_access_token(self.keys.current_key(), claims),
            "expires_in": self.ttl,
            "scope": claims["scope"],
        }

    def codes(self) -> Any:
        collection = self.get_db()[CODES]
        if not self.indexes_ready:
            if mongo_setup.created_here(self.get_db()):  # on MongoDB: `run.py migrate`
                ensure_indexes(self.get_db())
            self.indexes_ready = True
        return collection


def ensure_indexes(db: Any) -> None:
    """On MongoDB the TTL index sweeps unused codes; mongomock ignores it."""
    db[CODES].create_index("code_hash", unique=True)
    db[CODES].create_index("expires_at", expireAfterSeconds=0)


def _keep_no_token(token: dict[str, Any], req: Any) -> None:
    return None


def _state() -> _ProviderState:
    return current_app.extensions[EXTENSION]


def users_of_account(account_id: str) -> list[str]:
    """The built-in provider's sign-in users for a prosumer account (none without the provider)."""
    state = current_app.extensions.get(EXTENSION)
    return sorted(name for name, user in (state.users if state else {}).items() if user.account_id == account_id)


class _ScopeWithinClient:
    """Refuse scopes the client was not registered for (Authlib only checks
    them against the server-wide list)."""

    def validate_requested_scope(self) -> None:
        requested = set(scope_to_list(self.request.payload.scope) or [])  # type: ignore[attr-defined]
        allowed = set(scope_to_list(self.request.client.scope) or [])  # type: ignore[attr-defined]
        if requested - allowed:
            raise InvalidScopeError()


class _ClientCredentials(_ScopeWithinClient, ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class _AuthorizationCode(_ScopeWithinClient, AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, req: Any) -> None:
        payload = req.payload.data
        _state().codes().insert_one(
            {
                "code_hash": digest_code(code),
                "client_id": req.client.client_id,
                "redirect_uri": req.payload.redirect_uri,
                "scope": req.scope or "",
                "username": req.user.username,
                "code_challenge": payload.get("code_challenge"),
                "code_challenge_method": payload.get("code_challenge_method"),
                "expires_at": datetime.now(UTC) + CODE_LIFETIME,
            }
        )

    def query_authorization_code(self, code: str, client: OAuthClient) -> StoredCode | None:
        # Deleting on first read makes codes single-use even when two token
        # requests race: only one of them gets the document back.
        document = _state().codes().find_one_and_delete({"code_hash": digest_code(code), "client_id": client.client_id})
        if document is None:
            return None
        stored = StoredCode.from_document(document)
        return None if stored.is_expired(datetime.now(UTC)) else stored

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        return None  # already consumed by query_authorization_code

    def authenticate_user(self, authorization_code: StoredCode) -> OAuthUser | None:
        return _state().users.get(authorization_code.username)


class _S256Required(CodeChallenge):
    """PKCE on every authorization request, and only with S256 (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE (S256) is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'")
        super().validate_code_challenge(grant, redirect_uri)


@bp.post("/oauth/token")
def token() -> Response:
    return _state().server.create_token_response()


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    state = _state()
    try:
        grant = state.server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        # Errors before the redirect URI is proven go back as JSON, never
        # as a redirect to an address the client did not register.
        return state.server.handle_error_response(None, error)
    client_id = grant.client.client_id
    if request.method == "GET":
        return login_page(client_id, state.listed_users)
    try:
        user = sign_in(state.throttle, state.users, request.form, request.remote_addr)
    except SignInRefused as refused:
        return login_page(
            client_id,
            state.listed_users,
            error=refused.message,
            status=refused.status,
            username=request.form.get("username", ""),
            retry_after=refused.retry_after,
        )
    return state.server.create_authorization_response(grant_user=user, grant=grant)


@bp.get("/oauth/jwks.json")
def jwks() -> Response:
    # every key of the ring: the current one, one staged to sign next, and retired
    # ones whose tokens may not have expired yet
    return jsonify(_state().keys.ring().public_jwks())


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    issuer = _state().issuer
    return jsonify(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "jwks_uri": f"{issuer}/oauth/jwks.json",
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "scopes_supported": sorted({s for c in _state().clients.values() for s in c.scope.split()}),
        }
    )


@bp.after_request
def _no_framing(response: Response) -> Response:
    # The sign-in form must not be framed by another site (clickjacking);
    # the same for every other answer of the provider, HTML or not.
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@bp.errorhandler(OAuth2Error)
def _oauth_error(error: OAuth2Error) -> Response:
    # E.g. Authlib refusing plain HTTP on a non-loopback host is raised
    # outside its own error handling; it must still be an OAuth JSON error.
    return _state().server.handle_error_response(None, error)


def init_app(app: Flask, get_db: Callable[[], Any]) -> None:
    """Register the provider on `app`; `get_db()` returns the store's database."""
    app.config.setdefault("INSTANCE_PATH", app.instance_path)
    app.extensions[EXTENSION] = _ProviderState(app, get_db)
    app.register_blueprint(bp)
