"""Hosts of the registry as real processes on loopback, for the
tests/test_multiprocess_auth_*.py modules: configured secrets shared by hosts with
separate instance folders (``shared_secrets``), two such hosts started at once
(:func:`two_hosts`), a Redis key prefix per test (``prefix``), the keys CLI, and
reading tokens, key ids and API answers."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import requests

from registry.auth import KeyRing, hash_secret
from tests.processes import REDIS_URL, ROOT, Served, gunicorn
from tests.support.secrets_setup import DEMO_FILES

SECRETS = (
    "OAUTH_SIGNING_KEYS",
    "OAUTH_SIGNING_KEYS_FILE",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "OAUTH_USERS_FILE",
    "OAUTH_CLIENTS_FILE",
    "DEMO_SECRETS",
    "AUTH_REDIS_PREFIX",
)


NO_SECRETS = {name: "" for name in SECRETS}  # whatever the developer's shell has: not configured here


BRIDGE_SECRET = "bridge-" + "s" * 24


COOKIE = "der_ui_session"


QUIET = {"JOBS_EMBEDDED_WORKER": "0", "LOG_FORMAT": "text"}


def client_token(url: str, secret: str, client_id: str = "openadr-bridge") -> str:
    response = requests.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret), timeout=10
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def api_status(url: str, token: str) -> tuple[int, str]:
    response = requests.get(f"{url}/devices", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code, response.text


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def jwks_kids(url: str) -> list[str]:
    return [key["kid"] for key in requests.get(f"{url}/oauth/jwks.json", timeout=10).json()["keys"]]


def keys_cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "run.py", "keys", *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in SECRETS},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def generated(instance_path: str) -> set[str]:
    return DEMO_FILES & set(os.listdir(instance_path)) if os.path.isdir(instance_path) else set()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone (sessions, revocations, rate limits); removed after."""
    value = f"test-{uuid.uuid4().hex[:12]}"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{value}*"):
        client.delete(key)


@pytest.fixture
def shared_secrets(tmp_path: Path) -> dict[str, str]:
    """Configured secrets in mounted files, as every host of a deployment gets them."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "signing-keys.json").write_text(KeyRing.new(datetime.now(UTC)).to_text())
    (folder / "secret-key").write_text(uuid.uuid4().hex * 2)
    (folder / "clients.json").write_text(
        json.dumps(
            [
                {
                    "client_id": "openadr-bridge",
                    "client_secret_hash": hash_secret(BRIDGE_SECRET),
                    "grant_types": ["client_credentials"],
                    "role": "service",
                }
            ]
        )
    )
    (folder / "users.json").write_text(
        json.dumps([{"username": "ops", "password_hash": hash_secret("ops-password"), "role": "admin"}])
    )
    for path in folder.iterdir():
        path.chmod(0o600)
    return {
        "OAUTH_SIGNING_KEYS_FILE": str(folder / "signing-keys.json"),
        "SECRET_KEY_FILE": str(folder / "secret-key"),
        "OAUTH_CLIENTS_FILE": str(folder / "clients.json"),
        "OAUTH_USERS_FILE": str(folder / "users.json"),
    }


@contextlib.contextmanager
def two_hosts(
    tmp_path: Path, secrets_a: dict[str, str], secrets_b: dict[str, str], extra: dict[str, str] | None = None
) -> Iterator[tuple[Served, Served]]:
    """Host A, and host B behind the same public URL and issuer (as a load balancer
    would put them), each with its own instance folder and embedded store."""
    common = {**NO_SECRETS, **QUIET, **(extra or {})}
    with gunicorn(tmp_path, {**common, **secrets_a}, instance_path=str(tmp_path / "instance-a")) as a:
        shared_url = {"PUBLIC_URL": a.url, "OAUTH_ISSUER": a.url}
        with gunicorn(tmp_path, {**common, **secrets_b, **shared_url}, instance_path=str(tmp_path / "instance-b")) as b:
            yield a, b
