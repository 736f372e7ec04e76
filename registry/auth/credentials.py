"""The secrets an app runs with: configured, or generated for the embedded demo.

Four secrets, each from its variable or from the file its ``*_FILE``
variable names (a mounted secret; never both):

| secret | variable / file | what |
|---|---|---|
| signing keys | ``OAUTH_SIGNING_KEYS`` / ``_FILE`` | the provider's key ring (`registry.auth.keystore`) |
| UI secret | ``SECRET_KEY`` / ``_FILE`` | signs the admin UI's CSRF tokens |
| clients | ``OAUTH_CLIENTS`` / ``_FILE`` | JSON list, secrets as ``client_secret_hash`` |
| users | ``OAUTH_USERS`` / ``_FILE`` | JSON list, passwords as ``password_hash`` |

Every host and worker of a deployment must hold the same ones, so they are
never made up there: with ``MONGO_URI`` (a shared store: a deployment)
`resolve` refuses to start while one is missing, unless ``DEMO_SECRETS=1``.
Without it (the embedded demo) whatever is missing is generated once into
the instance folder — demo users' passwords and the bridge's client secret
into ``demo-credentials.json`` (mode 0600, only hashes reach the provider),
the UI secret into ``ui-secret-key``, the key ring into
``oauth-signing-keys.json`` — by the first process to start; the others read
what it wrote.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from typing import Any

import settings
from registry.auth import hash_secret
from registry.auth.files import create_once, read_secret
from registry.demo import fleet

FILE_NAME = "demo-credentials.json"
SECRET_KEY_FILE_NAME = "ui-secret-key"
UI_CLIENT_ID = "admin-ui"
BRIDGE_CLIENT_ID = "openadr-bridge"
SECRETS = ("OAUTH_SIGNING_KEYS", "SECRET_KEY", "OAUTH_CLIENTS", "OAUTH_USERS")
HELP = 'docs/deploy.md, "Secrets and key rotation"'
log = logging.getLogger(__name__)


class SecretsMissing(RuntimeError):
    """A deployment lacks secrets it must share with its other hosts; the message names them."""


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with every secret in place: read from the files named, or generated for
    the demo. Raises SecretsMissing (a deployment without them) or ValueError (bad ones)."""
    resolved = dict(config)
    for name in ("SECRET_KEY", "OAUTH_CLIENTS", "OAUTH_USERS"):
        resolved[name] = _configured(config, name)
    missing = [name for name in SECRETS if _missing(resolved, name)]
    if missing and generates_nothing(config):
        raise SecretsMissing(
            f"MONGO_URI is set, so this is a deployment whose hosts must share their secrets, and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not configured: set each "
            f"variable or its *_FILE ({HELP}), or DEMO_SECRETS=1 to generate them into "
            f"INSTANCE_PATH for this host alone"
        )
    if missing and len(missing) < len(SECRETS):  # half configured: another host would not match this one
        log.warning("secrets generated into INSTANCE_PATH for this host alone: %s (%s)", ", ".join(missing), HELP)
    instance_path = str(config["INSTANCE_PATH"])
    if "SECRET_KEY" in missing:
        resolved["SECRET_KEY"] = demo_secret_key(instance_path)
    if "OAUTH_CLIENTS" in missing or "OAUTH_USERS" in missing:
        demo_oauth = oauth_settings(instance_path, str(config["PUBLIC_URL"]))
        for name in ("OAUTH_CLIENTS", "OAUTH_USERS", "OAUTH_DEMO_USERS"):
            if resolved.get(name) is None:
                resolved[name] = demo_oauth[name]
    resolved["OAUTH_CLIENTS"] = with_ui_client(resolved["OAUTH_CLIENTS"], str(config["PUBLIC_URL"]))
    return resolved  # signing keys: registry.auth.keystore reads (or generates) them itself


def generates_nothing(config: Mapping[str, Any]) -> bool:
    """True for a deployment: secrets must be configured, none is generated. Tests
    (TESTING) are one host even on a real MongoDB."""
    return bool(config.get("MONGO_URI")) and not (config.get("DEMO_SECRETS") or config.get("TESTING"))


def with_ui_client(clients: list[dict[str, Any]], public_url: str) -> list[dict[str, Any]]:
    """The admin UI's public client (no secret) unless the clients name their own."""
    if not isinstance(clients, list) or not all(isinstance(client, dict) for client in clients):
        raise ValueError("OAUTH_CLIENTS must be a JSON list of objects")
    if any(client.get("client_id") == UI_CLIENT_ID for client in clients):
        return clients
    return [
        *clients,
        {
            "client_id": UI_CLIENT_ID,
            "grant_types": ["authorization_code"],
            "redirect_uris": [f"{public_url.rstrip('/')}/ui/callback"],
        },
    ]


def _configured(config: Mapping[str, Any], name: str) -> Any:
    """The value of `name`, or of the file `name`_FILE names; None when neither is set."""
    value, path = config.get(name), config.get(f"{name}_FILE")
    if value is not None and path:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if not path:
        return value
    try:
        text = read_secret(str(path))
    except OSError as error:
        raise ValueError(f"{name}_FILE {path}: {error.strerror}") from None
    if name == "SECRET_KEY":
        return text.strip() or None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"{name}_FILE {path} is not JSON: {error}") from None


def _missing(config: Mapping[str, Any], name: str) -> bool:
    if name == "OAUTH_SIGNING_KEYS":
        return not (config.get("OAUTH_SIGNING_KEYS") or config.get("OAUTH_SIGNING_KEYS_FILE"))
    return config.get(name) is None


def load_or_create(instance_path: str) -> dict[str, dict[str, dict[str, str]]]:
    """{"users": {name: {secret, hash}}, "clients": {id: {secret, hash}}}, made once.

    Hashes are kept beside the secrets because hashing (scrypt) is slow by
    design and every app start would otherwise pay it for each demo user.
    """

    def make() -> str:
        data = {"users": {name: _secret(12) for name in fleet.identities()}, "clients": {BRIDGE_CLIENT_ID: _secret(32)}}
        return json.dumps(data, indent=2)

    return json.loads(create_once(os.path.join(instance_path, FILE_NAME), make))  # type: ignore[no-any-return]


def demo_secret_key(instance_path: str) -> str:
    """The demo UI secret, made once into the instance folder."""
    return create_once(os.path.join(instance_path, SECRET_KEY_FILE_NAME), lambda: secrets.token_hex(32)).strip()


def _secret(n_bytes: int) -> dict[str, str]:
    secret = secrets.token_urlsafe(n_bytes)
    return {"secret": secret, "hash": hash_secret(secret)}


def secret_of(instance_path: str, kind: str, name: str) -> str:
    """A demo password or client secret, e.g. for the bridge or the banner. In a
    deployment none is made up: the bridge would hold a secret no API host knows."""
    exists = os.path.exists(os.path.join(instance_path, FILE_NAME))
    if not exists and generates_nothing({"MONGO_URI": settings.MONGO_URI, "DEMO_SECRETS": settings.DEMO_SECRETS}):
        raise SecretsMissing(
            f"no demo {kind} in a deployment: configure {name}'s secret "
            f"(the bridge: OPENADR_CLIENT_ID / OPENADR_CLIENT_SECRET; {HELP})"
        )
    return load_or_create(instance_path)[kind][name]["secret"]


def oauth_settings(instance_path: str, public_url: str) -> dict[str, Any]:
    """OAUTH_USERS and OAUTH_CLIENTS for the embedded demo, and OAUTH_DEMO_USERS
    (username -> password hash): the users the sign-in page may name. A user a
    deployment configures itself never matches, so it is never listed."""
    creds = load_or_create(instance_path)
    users = [
        {"username": name, "password_hash": creds["users"][name]["hash"], **claims}
        for name, claims in fleet.identities().items()
        if name in creds["users"]
    ]
    clients = [
        {
            "client_id": BRIDGE_CLIENT_ID,
            "client_secret_hash": creds["clients"][BRIDGE_CLIENT_ID]["hash"],
            "grant_types": ["client_credentials"],
            "role": "service",
        },
        {
            "client_id": UI_CLIENT_ID,
            "grant_types": ["authorization_code"],
            "redirect_uris": [f"{public_url}/ui/callback"],
        },
    ]
    demo_users = {user["username"]: user["password_hash"] for user in users}
    return {"OAUTH_USERS": users, "OAUTH_CLIENTS": clients, "OAUTH_DEMO_USERS": demo_users}
