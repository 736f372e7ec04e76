"""Issue 12.4 / 12.5 in one process (the secrets in tests/support/secrets_setup.py).
What needs several processes (hosts sharing secrets, gunicorn -w 4 on a fresh
folder, rotation seen by running servers) is in tests/test_multiprocess_auth*.py.

This part: where secrets come from. A deployment refuses to start without its
secrets and takes every one from its files (or the environment); bad settings
fail at start with a message; the embedded store generates nothing when secrets
are configured and names half-configured ones in a warning."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt

from registry import create_app
from registry.auth import KeyRing, credentials
from registry.auth.keystore import signing_keys_for
from tests.support.secrets_setup import DEMO_FILES, bridge_client, configured, deployment, ring_text, secrets_dir  # noqa: F401  (fixtures)


@pytest.mark.parametrize(
    "given",
    [
        [],
        ["OAUTH_SIGNING_KEYS_FILE"],
        ["SECRET_KEY_FILE", "OAUTH_CLIENTS_FILE"],
        ["OAUTH_SIGNING_KEYS_FILE", "SECRET_KEY_FILE", "OAUTH_CLIENTS_FILE"],
    ],
)
def test_a_deployment_without_its_secrets_refuses_to_start(tmp_path: Path, secrets_dir: Path, given: list[str]) -> None:
    config = deployment(tmp_path, **{k: v for k, v in configured(secrets_dir).items() if k in given})
    with pytest.raises(credentials.SecretsMissing) as refused:
        create_app(config)
    message = str(refused.value)
    for name in ("OAUTH_SIGNING_KEYS", "SECRET_KEY", "OAUTH_CLIENTS", "OAUTH_USERS"):
        assert (name in message) == (f"{name}_FILE" not in given), message
    assert "DEMO_SECRETS=1" in message and "docs/deploy.md" in message
    instance = Path(config["INSTANCE_PATH"])
    assert not instance.exists() or not DEMO_FILES & set(os.listdir(instance))  # nothing made up


def test_a_deployment_takes_every_secret_from_its_files(tmp_path: Path, secrets_dir: Path, ring_text: str) -> None:
    resolved = credentials.resolve(deployment(tmp_path, **configured(secrets_dir)))
    assert resolved["SECRET_KEY"] == "k" * 64
    assert [c["client_id"] for c in resolved["OAUTH_CLIENTS"]] == ["openadr-bridge", "admin-ui"]
    assert resolved["OAUTH_CLIENTS"][1]["redirect_uris"] == ["https://registry.example/ui/callback"]
    assert [u["username"] for u in resolved["OAUTH_USERS"]] == ["ops"] and not resolved.get("OAUTH_DEMO_USERS")
    keys = signing_keys_for(resolved)
    assert keys.current_key().kid == KeyRing.parse(ring_text).current.kid
    assert not os.path.exists(resolved["INSTANCE_PATH"])


def test_secrets_from_the_environment_itself(tmp_path: Path, ring_text: str) -> None:
    config = deployment(
        tmp_path, OAUTH_SIGNING_KEYS=ring_text, SECRET_KEY="s" * 40, OAUTH_CLIENTS=[bridge_client()], OAUTH_USERS=[]
    )
    resolved = credentials.resolve(config)
    assert resolved["SECRET_KEY"] == "s" * 40 and resolved["OAUTH_USERS"] == []
    assert signing_keys_for(resolved).current_key().kid == KeyRing.parse(ring_text).current.kid


@pytest.mark.parametrize("flag", ["DEMO_SECRETS", "TESTING"])
def test_demo_secrets_on_mongodb_only_when_asked(tmp_path: Path, flag: str) -> None:
    resolved = credentials.resolve(deployment(tmp_path, **{flag: True}))
    assert resolved["SECRET_KEY"] and resolved["OAUTH_DEMO_USERS"]
    assert {"demo-credentials.json", "ui-secret-key"} <= set(os.listdir(resolved["INSTANCE_PATH"]))


@pytest.mark.parametrize(
    "change, words",
    [
        ({"SECRET_KEY": "x" * 40}, "SECRET_KEY or SECRET_KEY_FILE, not both"),
        ({"OAUTH_CLIENTS": []}, "OAUTH_CLIENTS or OAUTH_CLIENTS_FILE, not both"),
        ({"OAUTH_USERS_FILE": "/nonexistent/users.json"}, "No such file"),
        ({"OAUTH_CLIENTS_FILE": "{bad}"}, "is not JSON"),
        ({"OAUTH_CLIENTS_FILE": "{}"}, "JSON list of objects"),
        ({"OAUTH_SIGNING_KEYS_FILE": "/nonexistent/keys.json"}, "No such file"),
        ({"OAUTH_SIGNING_KEYS_FILE": "not a key"}, "neither a PEM key nor JSON"),
        ({"OAUTH_SIGNING_KEYS": "{}"}, "OAUTH_SIGNING_KEYS or OAUTH_SIGNING_KEYS_FILE, not both"),
    ],
)
def test_bad_secret_settings_fail_at_start_with_a_message(
    tmp_path: Path, secrets_dir: Path, change: dict[str, Any], words: str
) -> None:
    config = deployment(tmp_path, **configured(secrets_dir))
    for name, value in change.items():
        if name.endswith("_FILE") and value.startswith(("{", "not")):
            (tmp_path / "bad").write_text(value)
            value = str(tmp_path / "bad")
        config[name] = value
    with pytest.raises(ValueError, match=words):
        create_app({**config, "MONGO_URI": None})


def test_an_embedded_app_on_configured_secrets_generates_nothing(tmp_path: Path, secrets_dir: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True, **configured(secrets_dir)})
    assert app.config["SECRET_KEY"] == "k" * 64
    assert not DEMO_FILES & set(os.listdir(app.config["INSTANCE_PATH"]))
    response = app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("openadr-bridge", "bridge-secret")
    )
    assert response.status_code == 200, response.json
    kid = jwt.decode(response.json["access_token"], signing_keys_for(app.config).current_key()).header["kid"]
    assert kid == KeyRing.parse((secrets_dir / "signing-keys.json").read_text()).current.kid
    assert app.extensions["der_oauth"].listed_users == []  # a deployment's users are never named


def test_the_bridge_gets_no_made_up_secret_in_a_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import settings

    monkeypatch.setattr(settings, "MONGO_URI", "mongodb://db.invalid/der")
    with pytest.raises(credentials.SecretsMissing, match="OPENADR_CLIENT_SECRET"):
        credentials.secret_of(str(tmp_path), "clients", credentials.BRIDGE_CLIENT_ID)
    assert os.listdir(tmp_path) == []


def test_half_configured_secrets_on_the_embedded_store_are_named_in_a_warning(
    tmp_path: Path, secrets_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PUBLIC_URL": "http://127.0.0.1:5000",
        "SECRET_KEY_FILE": str(secrets_dir / "secret-key"),
    }
    with caplog.at_level("WARNING", logger="registry.auth.credentials"):
        resolved = credentials.resolve(config)
    assert resolved["SECRET_KEY"] == "k" * 64
    assert "for this host alone: OAUTH_SIGNING_KEYS, OAUTH_CLIENTS, OAUTH_USERS" in caplog.text
