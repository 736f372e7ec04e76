"""Where the built-in provider's key ring lives, and keeping it fresh.

One of three places, in this order:

* ``OAUTH_SIGNING_KEYS``: the ring itself (a JWKS, or one PEM key) in the
  environment; fixed for the life of the process.
* ``OAUTH_SIGNING_KEYS_FILE``: a file holding it (a mounted secret). The
  file is re-read when it changes (checked at most once a second, and at once
  when a token names a kid this process does not know), so `run.py keys
  rotate` on a shared file reaches every process without a restart.
* Neither (the embedded demo only): ``<INSTANCE_PATH>/oauth-signing-keys.json``,
  generated once by whichever process starts first.

    keys = signing_keys_for(app.config)
    keys.ring().current.key       # sign
    keys.public_keyset()          # verify
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from . import files
from .keys import KeyRing, KeyRingError

log = logging.getLogger(__name__)

DEMO_FILENAME = "oauth-signing-keys.json"
LEGACY_FILENAME = "oauth-signing-key.json"  # one JWK, before key rings
CHECK_INTERVAL = 1.0
_shared: dict[tuple[str, str], SigningKeys] = {}
_shared_lock = threading.Lock()


class SigningKeys:
    """A key ring as this process sees it; `path` None: fixed (from the environment)."""

    def __init__(
        self,
        ring: KeyRing,
        path: str | None = None,
        *,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._reloads = 0
        self._ring = ring
        self._stamp = _stamp(path) if path else None
        self._checked = clock()
        self._interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._public = _keyset(ring)

    def ring(self, *, refresh: bool = False) -> KeyRing:
        """The ring; re-read first if the file changed (looked at once a second, or now)."""
        if self.path is None:
            return self._ring
        with self._lock:
            now = self._clock()
            if refresh or now - self._checked >= self._interval:
                self._checked = now
                self._reload_if_changed()
            return self._ring

    def public_keyset(self, *, refresh: bool = False) -> KeySet:
        self.ring(refresh=refresh)
        return self._public

    def current_key(self) -> RSAKey:
        return self.ring().current.key

    def reload_count(self) -> int:
        """Grows with every reload: caches of validated tokens must start over."""
        self.ring()
        return self._reloads

    def _reload_if_changed(self) -> None:
        assert self.path is not None
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            ring = KeyRing.parse(files.read_secret(self.path))
        except (OSError, KeyRingError) as error:
            # a half-edited or vanished file must not take signing down: keep the last good ring
            log.error("signing keys %s unusable, keeping the ones loaded before: %s", self.path, error)
            self._stamp = stamp
            return
        self._ring, self._public, self._stamp = ring, _keyset(ring), stamp
        self._reloads += 1
        log.info(
            "signing keys reloaded from %s: current kid %s, %d published", self.path, ring.current.kid, len(ring.keys)
        )


def signing_keys_for(config: Mapping[str, Any]) -> SigningKeys:
    """The ring `config` names (see the module docstring); one shared object per source."""
    inline, path = config.get("OAUTH_SIGNING_KEYS"), config.get("OAUTH_SIGNING_KEYS_FILE")
    if inline and path:
        raise KeyRingError("set OAUTH_SIGNING_KEYS or OAUTH_SIGNING_KEYS_FILE, not both")
    if inline:
        return _shared_for(("inline", str(inline)), lambda: SigningKeys(_parse(str(inline), "OAUTH_SIGNING_KEYS")))
    if path:
        path = os.path.abspath(str(path))
        return _shared_for(("file", path), lambda: SigningKeys(load_ring(path), path))
    demo = demo_key_path(_instance_path(config))
    return _shared_for(("file", demo), lambda: SigningKeys(load_or_create_demo_ring(demo), demo))


def key_file_for(config: Mapping[str, Any]) -> str:
    """The file `run.py keys` works on: OAUTH_SIGNING_KEYS_FILE, else the demo's ring."""
    if config.get("OAUTH_SIGNING_KEYS_FILE"):
        return os.path.abspath(str(config["OAUTH_SIGNING_KEYS_FILE"]))
    if config.get("OAUTH_SIGNING_KEYS"):
        raise KeyRingError(
            "the signing keys are in OAUTH_SIGNING_KEYS, which no command can change: keep "
            "them in a file (--file PATH, then OAUTH_SIGNING_KEYS_FILE=PATH)"
        )
    return demo_key_path(_instance_path(config))


def edit_ring_file(path: str, change: Callable[[KeyRing | None], KeyRing]) -> KeyRing:
    """Read, change and atomically replace the ring in `path` (None: no file yet), under
    the directory's lock, so two rotations at once cannot lose a key."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with files.directory_lock(directory):
        ring = change(load_ring(path) if os.path.exists(path) else None)
        files.replace_file(path, ring.to_text())
    return ring


def load_ring(path: str) -> KeyRing:
    try:
        text = files.read_secret(path)
    except OSError as error:
        raise KeyRingError(f"signing keys {path}: {error.strerror}") from None
    return _parse(text, path)


def demo_key_path(instance_path: str) -> str:
    return os.path.join(instance_path, DEMO_FILENAME)


def load_or_create_demo_ring(path: str) -> KeyRing:
    """The demo ring in the instance folder, generated by the first process to need it."""
    return _parse(files.create_once(path, lambda: _first_ring(path).to_text()), path)


def load_or_create_signing_key(instance_path: str) -> RSAKey:
    """The current key of the demo ring of `instance_path` (tests and tools)."""
    return load_or_create_demo_ring(demo_key_path(instance_path)).current.key


def _first_ring(path: str) -> KeyRing:
    # an instance folder from before key rings keeps its key (and its tokens stay valid)
    legacy = os.path.join(os.path.dirname(path), LEGACY_FILENAME)
    if os.path.exists(legacy):
        return KeyRing.parse(files.read_secret(legacy))
    return KeyRing.new(datetime.now(UTC))


def _parse(text: str, source: str) -> KeyRing:
    try:
        return KeyRing.parse(text)
    except KeyRingError as error:
        raise KeyRingError(f"signing keys from {source}: {error}") from None


def _shared_for(source: tuple[str, str], make: Callable[[], SigningKeys]) -> SigningKeys:
    with _shared_lock:
        if source not in _shared:
            _shared[source] = make()
        return _shared[source]


def _instance_path(config: Mapping[str, Any]) -> str:
    path = config.get("INSTANCE_PATH")
    if not path:
        raise ValueError("set INSTANCE_PATH: the demo signing keys are kept in the instance folder")
    return os.path.abspath(str(path))


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _keyset(ring: KeyRing) -> KeySet:
    return KeySet.import_key_set(ring.public_jwks())  # type: ignore[arg-type]
