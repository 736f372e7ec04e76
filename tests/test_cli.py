"""run.py: the fixed command forms clients and scripts rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from registry import create_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "run.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_every_subcommand():
    out = run_cli("--help").stdout
    for command in ("serve", "token", "seed", "worker", "bridge"):
        assert command in out
    serve_help = run_cli("serve", "--help").stdout
    for option in ("--host", "--port", "--vtn-port", "--no-demo"):
        assert option in serve_help


def test_token_is_accepted_by_a_server_on_the_same_instance(instance_path):
    app = create_app({"INSTANCE_PATH": instance_path, "OAUTH_ISSUER": "http://127.0.0.1:5999"})
    with open(os.path.join(instance_path, "provider.json"), "w") as f:  # as `serve` records it
        json.dump({"issuer": "http://127.0.0.1:5999", "audience": app.config["OAUTH_AUDIENCE"]}, f)
    env = {"INSTANCE_PATH": instance_path}
    env.pop("OAUTH_ISSUER", None)
    result = run_cli("token", "--role", "aggregator", "--aggregator-id", "coop-iberia", env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token
    response = app.test_client().get("/devices", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    os.remove(os.path.join(instance_path, "provider.json"))


def test_a_dso_token_reads_its_grid_areas_and_no_device(instance_path):
    app = create_app({"INSTANCE_PATH": instance_path})
    env = {"INSTANCE_PATH": instance_path, "OAUTH_ISSUER": app.config["OAUTH_ISSUER"]}
    result = run_cli("token", "--role", "dso", "--dso-id", "dso-north", env=env)
    assert result.returncode == 0, result.stderr
    headers = {"Authorization": f"Bearer {result.stdout.strip()}"}
    assert app.test_client().get("/grid_areas", headers=headers).status_code == 200
    assert app.test_client().get("/devices", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "args,message",
    [
        (("token", "--role", "root"), "invalid choice"),
        (("token", "--role", "admin", "--ttl", "7200"), "capped"),
    ],
)
def test_token_refuses_bad_requests(args, message):
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr


def test_seed_refuses_the_embedded_store():
    env = {k: v for k, v in os.environ.items() if k != "MONGO_URI"}
    result = subprocess.run(
        [sys.executable, "run.py", "seed"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert "MONGO_URI is not set" in result.stderr
