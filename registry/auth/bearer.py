"""Eve's ``auth=`` class: bearer tokens in, a Principal on ``flask.g`` out.

401 (with ``WWW-Authenticate: Bearer``) for a missing or bad token, 403 for
a role that may not use the method on the resource. A validated token is
cached for at most five minutes and never past its expiry, so a repeated
request costs a dictionary lookup instead of a signature check; whether it was
revoked (signed out) is still looked up on every request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

from eve.auth import TokenAuth
from flask import Response, abort, current_app, g, jsonify, request

from .principal import Principal
from .revocation import TokenRevocations
from .tokens import InvalidToken, TokenValidator

CACHE_SIZE = 4096
CACHE_SECONDS = 300  # how long a validated token is trusted without checking its signature again


class PrincipalCache:
    """A small LRU of validated tokens keyed by their SHA-256.

    Revocation (sign-out) is checked on every call, cache hit or not; the
    revocation list is set by ``registry.auth.init_app``. The cache starts
    over whenever the built-in key ring is reloaded: a pruned key's tokens
    must fail at once, cached or not."""

    def __init__(
        self, validator: TokenValidator, size: int = CACHE_SIZE, revocations: TokenRevocations | None = None
    ) -> None:
        self.validator = validator
        self.size = size
        self.revocations = revocations
        self._items: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._keys_generation = validator.keys_generation()

    def principal_for(self, token: str) -> Principal:
        principal = self._validated(token)
        if self.revocations is not None and self.revocations.is_revoked(principal, token):
            raise InvalidToken("token has been revoked (its owner signed out)")
        return principal

    def _validated(self, token: str) -> Principal:
        key = hashlib.sha256(token.encode()).hexdigest()
        generation = self.validator.keys_generation()
        with self._lock:
            if generation != self._keys_generation:
                self._items.clear()
                self._keys_generation = generation
            hit = self._items.get(key)
            if hit and hit[1] > time.time():
                self._items.move_to_end(key)
                return hit[0]
        principal = self.validator.validate(token)
        expires = principal.expires_at or 0.0  # verified by validate
        with self._lock:
            self._items[key] = (principal, min(expires, time.time() + CACHE_SECONDS))
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return principal


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "").strip()
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def current_principal() -> Principal:
    """The caller of this request (validated once, then kept on ``g``)."""
    if "principal" not in g:
        token = bearer_token()
        if token is None:
            raise InvalidToken("a bearer token is required")
        g.principal = current_app.extensions["principal_cache"].principal_for(token)
    return g.principal


def authenticated() -> Principal:
    """The caller of a route outside Eve's resources: a 401 answered exactly as on
    them (``BearerAuth.authenticate`` aborts) when the token is missing or invalid."""
    try:
        return current_principal()
    except InvalidToken as error:
        g.auth_error = error.message
        current_app.auth.authenticate()
        raise  # not reached: authenticate() aborts


class BearerAuth(TokenAuth):
    """The method policy ``allowed(resource, role)`` lives with the hooks and is
    found in ``app.extensions["access_policy"]`` (Eve instantiates this class)."""

    def authorized(self, allowed_roles: Any, resource: str | None, method: str) -> bool:
        try:
            principal = current_principal()
        except InvalidToken as error:
            g.auth_error = error.message
            return False
        # the audit trail records who, never the token itself
        self.set_user_or_token(f"{principal.role}:{principal.subject}")
        allowed = current_app.extensions["access_policy"]
        if resource and method not in allowed(resource, principal.role):
            abort(403, description=f"a {principal.role} may not {method} {resource}")
        return True

    def authenticate(self) -> Response:
        message = g.get("auth_error", "a bearer token is required")
        response = jsonify({"_status": "ERR", "_error": {"code": 401, "message": message}})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{message}"'
        abort(response)
