"""Demo OAuth clients and users, with secrets generated at first start.

Nothing secret is in the repository: passwords and client secrets are made
once into ``<instance>/demo-credentials.json`` (mode 0600) and only their
hashes reach the provider. Deployments configure ``OAUTH_CLIENTS`` /
``OAUTH_USERS`` themselves and this module stays out of the way.
"""
from __future__ import annotations

import json
import os
import secrets
from typing import Any

from registry import demo
from registry.auth import hash_secret

FILE_NAME = "demo-credentials.json"
UI_CLIENT_ID = "admin-ui"
BRIDGE_CLIENT_ID = "openadr-bridge"


def demo_identities() -> dict[str, dict[str, Any]]:
    """username -> claims for the demo users (match the seeded demo data)."""
    people = {"admin": {"role": "admin"}}
    for aggregator_id, _, _ in demo.AGGREGATORS:
        people[aggregator_id] = {"role": "aggregator", "aggregator_id": aggregator_id}
    for p in range(3):
        city, _, _, aggregator_id = demo.CITIES[p]
        people[f"prosumer-{city.lower()}"] = {"role": "prosumer", "aggregator_id": aggregator_id,
                                              "account_id": demo.stable_id("prosumer", p)}
    return people


def load_or_create(instance_path: str) -> dict[str, dict[str, dict[str, str]]]:
    """{"users": {name: {secret, hash}}, "clients": {id: {secret, hash}}}, made once.

    Hashes are kept beside the secrets because hashing (scrypt) is slow by
    design and every app start would otherwise pay it for each demo user.
    """
    path = os.path.join(instance_path, FILE_NAME)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    data = {"users": {name: _secret(12) for name in demo_identities()},
            "clients": {BRIDGE_CLIENT_ID: _secret(32)}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    return data


def _secret(n_bytes: int) -> dict[str, str]:
    secret = secrets.token_urlsafe(n_bytes)
    return {"secret": secret, "hash": hash_secret(secret)}


def secret_of(instance_path: str, kind: str, name: str) -> str:
    """A demo password or client secret, e.g. for the bridge or the banner."""
    return load_or_create(instance_path)[kind][name]["secret"]


def oauth_settings(instance_path: str, public_url: str) -> dict[str, Any]:
    """OAUTH_USERS and OAUTH_CLIENTS for the embedded demo, and OAUTH_DEMO_USERS
    (username -> password hash): the users the sign-in page may name. A user a
    deployment configures itself never matches, so it is never listed."""
    creds = load_or_create(instance_path)
    users = [{"username": name, "password_hash": creds["users"][name]["hash"], **claims}
             for name, claims in demo_identities().items() if name in creds["users"]]
    clients = [
        {"client_id": BRIDGE_CLIENT_ID, "client_secret_hash": creds["clients"][BRIDGE_CLIENT_ID]["hash"],
         "grant_types": ["client_credentials"], "role": "service"},
        {"client_id": UI_CLIENT_ID, "grant_types": ["authorization_code"],
         "redirect_uris": [f"{public_url}/ui/callback"]},
    ]
    demo_users = {user["username"]: user["password_hash"] for user in users}
    return {"OAUTH_USERS": users, "OAUTH_CLIENTS": clients, "OAUTH_DEMO_USERS": demo_users}
