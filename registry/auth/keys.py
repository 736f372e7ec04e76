"""The built-in provider's signing key: created once, shared by processes.

The server and the CLI `token` command are separate processes that must sign
with the same key, so the key lives in the instance folder as a private JWK
(`oauth-signing-key.json`, mode 0600). Its `kid` is the RFC 7638 thumbprint,
which is stable for the key and therefore identical in every process.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from typing import Any

from joserfc.jwk import RSAKey

log = logging.getLogger(__name__)

KEY_FILENAME = "oauth-signing-key.json"
KEY_SIZE = 2048
SIGNING_ALG = "RS256"


def key_path(instance_path: str) -> str:
    """Where the signing key of the instance at `instance_path` is kept."""
    return os.path.join(instance_path, KEY_FILENAME)


def load_or_create_signing_key(instance_path: str) -> RSAKey:
    """Return the instance's RSA signing key, generating it on first start.

    Safe when two processes start at once: the key is written to a temporary
    file and hard-linked into place, so a reader never sees half a file and
    exactly one generated key wins; the loser reads the winner's key.
    """
    path = key_path(instance_path)
    if os.path.exists(path):
        return _read_key(path)
    os.makedirs(instance_path, exist_ok=True)
    key = _generate_key()
    _publish_key(path, key)
    # Read back rather than return `key`: if another process won the race,
    # its key is the one everybody must use.
    return _read_key(path)


def public_jwks(key: RSAKey) -> dict[str, Any]:
    """The JWKS document that publishes the public half of `key`."""
    public = key.as_dict(private=False)
    public.setdefault("use", "sig")
    public.setdefault("alg", SIGNING_ALG)
    return {"keys": [public]}


def _generate_key() -> RSAKey:
    key = RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": SIGNING_ALG})
    key.ensure_kid()
    return key


def _publish_key(path: str, key: RSAKey) -> None:
    directory = os.path.dirname(path)
    # mkstemp creates the file with mode 0600, so the private key is never
    # readable by others, not even for a moment.
    fd, tmp = tempfile.mkstemp(prefix=".oauth-key-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(key.as_dict(private=True), handle)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            log.info("created OAuth signing key %s (kid %s)", path, key.kid)
        except FileExistsError:
            pass  # another process published its key first; use that one
        except OSError:
            # Some mounts (SMB, some container volumes) have no hard links;
            # an exclusive create still lets only one process win.
            _write_exclusive(path, key)
    finally:
        os.unlink(tmp)


def _write_exclusive(path: str, key: RSAKey) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key.as_dict(private=True), handle)


def _read_key(path: str) -> RSAKey:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        log.warning("signing key %s is readable by others (mode %o); chmod 600 it", path, mode)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    key = RSAKey.import_key(data)
    if not key.is_private:
        raise ValueError(f"{path} holds no private key; delete it to generate a new one")
    key.ensure_kid()
    return key
