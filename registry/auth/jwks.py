"""Where the verification keys of one issuer come from, and how long they stay.

An issuer's keys are a static key set, the built-in provider's own key ring
(`LocalKeys`: no HTTP; looked at again on an unknown kid, as the ring may just
have been rotated), or a JWKS document fetched over HTTP, found directly
(`jwks_uri`) or through OIDC discovery. Fetched keys are cached.
A token signed with a kid we do not know may mean the issuer rotated its key,
so the key set is fetched again — but at most once per `refetch_interval`
per issuer, so garbage kids cannot turn us into a load generator against the
identity provider.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import requests
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key, KeySet

log = logging.getLogger(__name__)


class KeysUnavailable(Exception):
    """The issuer's key set could not be fetched or parsed."""


class UnknownKeyId(Exception):
    """No key of the issuer carries the token's kid, even after a refetch."""


class LocalKeys(Protocol):
    """A key ring in this process (`registry.auth.keystore.SigningKeys`)."""

    def public_keyset(self, *, refresh: bool = False) -> KeySet: ...

    def reload_count(self) -> int: ...


class IssuerKeys:
    """The verification keys of one issuer, fetched lazily and cached.

    `clock` returns seconds; tests pass a fake one to step over the refetch
    interval without sleeping.
    """

    def __init__(
        self,
        issuer: str,
        *,
        static: KeySet | None = None,
        local: LocalKeys | None = None,
        jwks_uri: str | None = None,
        discovery_url: str | None = None,
        http_timeout: float = 5.0,
        cache_ttl: float = 3600.0,
        refetch_interval: float = 30.0,
        clock: Callable[[], float],
    ) -> None:
        if static is None and local is None and not (jwks_uri or discovery_url):
            raise ValueError(f"issuer {issuer!r} needs keys, a jwks_uri or a discovery_url")
        self.issuer = issuer
        self._static = static
        self._local = local
        self._jwks_uri = jwks_uri
        self._discovery_url = discovery_url
        self._timeout = http_timeout
        self._cache_ttl = cache_ttl
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: KeySet | None = static
        self._fetched_at: float | None = None
        self._last_refetch: float | None = None
        self._last_failure: float | None = None
        # One fetch at a time per issuer: a burst of requests after a key
        # rotation must not become a burst of JWKS downloads.
        self._lock = threading.Lock()

    def find(self, kid: str | None) -> Key:
        """The key for `kid`; refetches once (rate-limited) when it is unknown."""
        if self._local is not None:
            key = _pick(self._local.public_keyset(), kid)
            if key is None:  # rotated a moment ago? the ring re-reads its file only if it changed
                key = _pick(self._local.public_keyset(refresh=True), kid)
            if key is None:
                raise UnknownKeyId(f"no key with kid {kid!r} for issuer {self.issuer}")
            return key
        with self._lock:
            keys, just_loaded = self._current_keys()
            key = _pick(keys, kid)
            # A key set loaded a moment ago for this very call is as fresh as
            # a refetch would be; only an older cached set is worth refreshing.
            if key is None and not just_loaded and self._may_refetch():
                self._last_refetch = self._clock()
                keys = self._load()
                key = _pick(keys, kid)
            if key is None:
                raise UnknownKeyId(f"no key with kid {kid!r} for issuer {self.issuer}")
            return key

    def _current_keys(self) -> tuple[KeySet, bool]:
        """The cached key set (loading it if missing or old) and whether it was just loaded."""
        if self._static is not None:
            return self._static, False
        now = self._clock()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._cache_ttl
        if self._keys is not None and fresh:
            return self._keys, False
        if self._keys is None and self._recently_failed(now):
            raise KeysUnavailable(f"keys of issuer {self.issuer} are unavailable")
        try:
            return self._load(), True
        except KeysUnavailable:
            if self._keys is not None:
                # A stale key set beats none when the provider is briefly down.
                log.warning("keeping stale keys of %s after a failed refresh", self.issuer)
                return self._keys, False
            raise

    def _may_refetch(self) -> bool:
        if self._static is not None:
            return False
        if self._last_refetch is None:
            return True
        return self._clock() - self._last_refetch >= self._refetch_interval

    def _recently_failed(self, now: float) -> bool:
        return self._last_failure is not None and now - self._last_failure < self._refetch_interval

    def _load(self) -> KeySet:
        try:
            document = _get_json(self._resolve_jwks_uri(), self._timeout)
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (KeysUnavailable, JoseError, KeyError, TypeError, ValueError) as error:
            self._last_failure = self._clock()
            log.warning("cannot load keys of issuer %s: %s", self.issuer, error)
            raise KeysUnavailable(f"keys of issuer {self.issuer} are unavailable") from error
        self._keys, self._fetched_at = keys, self._clock()
        return keys

    def _resolve_jwks_uri(self) -> str:
        if self._jwks_uri:
            return self._jwks_uri
        assert self._discovery_url is not None
        document = _get_json(self._discovery_url, self._timeout)
        # OIDC Discovery §4.3: the document must name the issuer we expect,
        # or an attacker-controlled document could point us at its own keys.
        if document.get("issuer") != self.issuer:
            raise KeysUnavailable(f"discovery document names issuer {document.get('issuer')!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise KeysUnavailable("discovery document has no jwks_uri")
        self._jwks_uri = jwks_uri
        return jwks_uri


def keyset_from(value: KeySet | Key | dict[str, Any]) -> KeySet:
    """Accept a KeySet, a key, a JWKS dict or a JWK dict; keep public halves only."""
    if isinstance(value, KeySet):
        keys = list(value)
    elif isinstance(value, dict) and "keys" in value:
        keys = list(KeySet.import_key_set(value))  # type: ignore[arg-type]
    elif isinstance(value, dict):
        keys = [JWKRegistry.import_key(value)]  # type: ignore[arg-type]
    else:
        keys = [value]
    # Verification needs no private material; dropping it means a static key
    # set can never be used to sign by mistake.
    return KeySet.import_key_set({"keys": [key.as_dict(private=False) for key in keys]})


def _pick(keys: KeySet, kid: str | None) -> Key | None:
    candidates = [key for key in keys if key.get("use") in (None, "sig")]
    if kid is None:
        # Tokens without kid are only unambiguous against a one-key set.
        return candidates[0] if len(candidates) == 1 else None
    for key in candidates:
        if key.kid == kid:
            return key
    return None


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise KeysUnavailable(f"GET {url} failed: {error}") from error
    if not isinstance(document, dict):
        raise KeysUnavailable(f"GET {url} did not return a JSON object")
    return document
