"""Issue 12.4 / 12.5 across real processes, over real HTTP on loopback
(tests/support/auth_hosts.py). Every process is stopped in a `finally`; Redis
keys carry a prefix per test.

This part:
- four app processes started at the same moment on one fresh instance folder,
  and ``gunicorn -w 4`` on another, all boot and sign with one key;
- a deployment (MONGO_URI) without secrets stops with a message that says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, Served, app_env, free_port, gunicorn, stop, wait_until_up
from tests.support.auth_hosts import NO_SECRETS, QUIET, api_status, client_token, generated, jwks_kids, kid_of
from tests.support.secrets_setup import DEMO_FILES

# --- 12.5: the first start of several processes on one instance folder ------------------------------

CHILD = """
import sys, time
from werkzeug.serving import make_server
from registry import create_app
port, start = int(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # every process imported the app: now all at once
make_server("127.0.0.1", port, create_app(), threaded=True).serve_forever()
"""


def test_four_processes_starting_at_once_on_a_fresh_folder_share_one_key(tmp_path: Path) -> None:
    instance, ports = str(tmp_path / "fresh"), [free_port() for _ in range(4)]
    issuer = f"http://127.0.0.1:{ports[0]}"  # one deployment: one issuer
    start = time.time() + 12
    served: list[Served] = []
    try:
        for port in ports:
            env = app_env(instance, port, {**NO_SECRETS, **QUIET, "PUBLIC_URL": issuer, "OAUTH_ISSUER": issuer})
            log = tmp_path / f"app-{port}.log"
            with open(log, "w") as stderr:
                process = subprocess.Popen(
                    [sys.executable, "-c", CHILD, str(port), str(start)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
            served.append(Served(f"http://127.0.0.1:{port}", process, log, instance, env))
        for one in served:
            wait_until_up(one, 90)
        assert time.time() > start
        for one in served:
            assert "Traceback" not in one.stderr_path.read_text(), one.stderr_path.read_text()
        secret = json.loads(Path(instance, "demo-credentials.json").read_text())["clients"]["openadr-bridge"]["secret"]
        tokens = [client_token(one.url, secret) for one in served]
        assert len({kid_of(token) for token in tokens}) == 1
        assert all(jwks_kids(one.url) == [kid_of(tokens[0])] for one in served)
        for token in tokens:  # a token from any process is accepted by all of them
            assert [api_status(one.url, token)[0] for one in served] == [200] * 4
        assert sorted(name for name in os.listdir(instance) if not name.startswith("prometheus")) == sorted(DEMO_FILES)
    finally:
        for one in served:
            stop(one.process)


def test_gunicorn_with_four_workers_boots_on_a_fresh_folder(tmp_path: Path) -> None:
    extra = {**NO_SECRETS, **QUIET, "RATE_LIMIT_PER_PROCESS_OK": "1"}
    with gunicorn(tmp_path, extra, workers=4, instance_path=str(tmp_path / "fresh"), timeout=90) as served:
        deadline = time.monotonic() + 60
        while served.stderr_path.read_text().count("Booting worker") < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # a worker that fails to boot halts the master within moments
        log = served.stderr_path.read_text()
        assert served.process.poll() is None, log[-3000:]
        assert log.count("Booting worker") == 4 and "Traceback" not in log and "failed to boot" not in log, log[-3000:]
        secret = json.loads(Path(served.instance_path, "demo-credentials.json").read_text())["clients"][
            "openadr-bridge"
        ]["secret"]
        tokens = [client_token(served.url, secret) for _ in range(8)]
        assert len({kid_of(token) for token in tokens}) == 1
        for token in tokens:  # new connections each time: spread over the workers
            assert [api_status(served.url, token)[0] for _ in range(4)] == [200] * 4


# --- a deployment without secrets -----------------------------------------------------------------------


def test_a_deployment_without_secrets_stops_with_a_message(tmp_path: Path) -> None:
    extra = {**NO_SECRETS, **QUIET, "MONGO_URI": "mongodb://127.0.0.1:9/der_registry"}
    with gunicorn(tmp_path, extra, workers=2, wait=False) as served:
        try:
            served.process.wait(60)
        except subprocess.TimeoutExpired:
            pytest.fail("gunicorn kept running without secrets:\n" + served.stderr_path.read_text()[-2000:])
    log = served.stderr_path.read_text()
    assert served.process.returncode != 0
    assert "SecretsMissing" in log and "OAUTH_SIGNING_KEYS, SECRET_KEY, OAUTH_CLIENTS, OAUTH_USERS" in log, log[-2000:]
    assert "Worker failed to boot" in log
    assert generated(served.instance_path) == set()
