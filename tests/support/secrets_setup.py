"""Secrets as a deployment mounts them, for the tests/test_secrets_*.py modules:
a key ring (``ring_text``), a folder of secret files (``secrets_dir``), the
settings naming them (:func:`configured`) and the rest of a deployment's settings
(:func:`deployment`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.auth import KeyRing, hash_secret

NOW = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)


DEMO_FILES = {"demo-credentials.json", "ui-secret-key", "oauth-signing-keys.json"}


def bridge_client(secret: str = "bridge-secret") -> dict[str, Any]:
    return {
        "client_id": "openadr-bridge",
        "client_secret_hash": hash_secret(secret),
        "grant_types": ["client_credentials"],
        "role": "service",
    }


@pytest.fixture(scope="module")
def ring_text() -> str:
    return KeyRing.new(NOW).to_text()


@pytest.fixture
def secrets_dir(tmp_path: Path, ring_text: str) -> Path:
    """Mounted secrets, as a deployment has them."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "signing-keys.json").write_text(ring_text)
    (folder / "secret-key").write_text("k" * 64 + "\n")
    (folder / "clients.json").write_text(json.dumps([bridge_client()]))
    (folder / "users.json").write_text(
        json.dumps([{"username": "ops", "password_hash": hash_secret("pw"), "role": "admin"}])
    )
    for path in folder.iterdir():
        path.chmod(0o600)
    return folder


def configured(secrets_dir: Path) -> dict[str, Any]:
    return {
        "OAUTH_SIGNING_KEYS_FILE": str(secrets_dir / "signing-keys.json"),
        "SECRET_KEY_FILE": str(secrets_dir / "secret-key"),
        "OAUTH_CLIENTS_FILE": str(secrets_dir / "clients.json"),
        "OAUTH_USERS_FILE": str(secrets_dir / "users.json"),
    }


def deployment(tmp_path: Path, **config: Any) -> dict[str, Any]:
    return {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUBLIC_URL": "https://registry.example",
        "MONGO_URI": "mongodb://db.invalid:27017/der",
        **config,
    }
