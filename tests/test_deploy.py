"""The reference deployment's pieces (deploy/, docs/deploy.md): gunicorn booting
several workers on a fresh instance folder, web processes that never run RQ
jobs, and the compose file, Caddyfile and systemd units checked by their own
tools where this machine has them (no Docker daemon, no MongoDB here).
"""

from __future__ import annotations

import glob
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from registry import create_app, jobs
from registry.auth import mint_token
from tests.factories import device
from tests.processes import REDIS_URL, ROOT, gunicorn, unique_prefix
from tests.support.observed_app import value

DEPLOY = ROOT / "deploy"


def metrics_page(url: str) -> str:
    return requests.get(url + "/metrics", timeout=10).text


# --- gunicorn -----------------------------------------------------------------------------


def test_gunicorn_boots_three_workers_on_a_fresh_instance_folder(tmp_path: Any) -> None:
    extra = {"REDIS_URL": REDIS_URL, "RATE_LIMIT_KEY_PREFIX": unique_prefix()}
    with gunicorn(tmp_path, extra, workers=3) as served:
        assert requests.get(served.url + "/health", timeout=10).json()["status"] == "ok"
        ready = requests.get(served.url + "/ready", timeout=10)
        assert (ready.status_code, ready.json()["checks"]) == (200, {"store": "ok", "redis": "ok"})
        booted = [line for line in served.stderr_lines() if "Booting worker" in line]
        time.sleep(2)  # a worker crashing at start shows up here, after the first answers
        assert served.process.poll() is None
    lines = served.stderr_lines()
    assert len(booted) == 3 and not [line for line in lines if "Exception in worker" in line]


def test_sigterm_stops_gunicorn_cleanly(tmp_path: Any) -> None:
    with gunicorn(tmp_path, {}, workers=1) as served:
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(40) == 0
    assert any("Shutting down: Master" in line for line in served.stderr_lines())


# --- jobs never run in web processes with RQ ----------------------------------------------


def post_device(url: str, instance_path: str) -> dict[str, Any]:
    admin = mint_token(instance_path, url, "der-registry", "admin")
    dev = device()
    answer = requests.post(
        url + "/devices",
        data=json.dumps(dev),
        timeout=10,
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 201, answer.text
    return dev


def test_web_processes_with_rq_never_run_jobs_or_the_tick(tmp_path: Any) -> None:
    from redis import Redis
    from rq import Queue

    queue_name = unique_prefix()
    extra = {
        "REDIS_URL": REDIS_URL,
        "JOBS_BACKEND": "rq",
        "JOBS_QUEUE": queue_name,
        "JOBS_TICK_SECONDS": "1",
        "RATE_LIMIT_KEY_PREFIX": unique_prefix(),
    }
    queue = Queue(queue_name, connection=Redis.from_url(REDIS_URL))
    try:
        with gunicorn(tmp_path, extra, workers=1) as served:
            post_device(served.url, served.instance_path)
            time.sleep(3)  # three tick periods: an embedded worker would have ticked and run both jobs
            page = metrics_page(served.url)
        assert value(page, "der_registry_jobs", status="queued") == 2
        assert value(page, "der_registry_tick_lag_seconds") == float("inf")
        assert queue.count == 2  # handed to RQ for `python run.py worker`
    finally:
        queue.delete(delete_jobs=True)


def test_the_embedded_backend_runs_jobs_and_the_tick_in_the_web_process(tmp_path: Any) -> None:
    with gunicorn(tmp_path, {"JOBS_TICK_SECONDS": "1"}, workers=1) as served:
        post_device(served.url, served.instance_path)
        deadline, page = time.monotonic() + 20, ""
        while time.monotonic() < deadline:
            page = metrics_page(served.url)
            if (
                value(page, "der_registry_jobs", status="queued")
                == value(page, "der_registry_jobs", status="running")
                == 0
            ):
                break
            time.sleep(0.5)
    assert value(page, "der_registry_jobs", status="queued") == 0
    assert value(page, "der_registry_jobs", status="running") == 0
    assert value(page, "der_registry_jobs", status="failed") == 2  # a new device has no history: loud failures
    assert value(page, "der_registry_tick_lag_seconds") < 5


@pytest.mark.parametrize(
    "backend, wanted, starts",
    [
        ("embedded", "auto", True),
        ("embedded", True, True),
        ("embedded", False, False),
        ("rq", "auto", False),
        ("rq", False, False),
    ],
)
def test_the_embedded_worker_follows_the_backend(instance_path: str, backend: str, wanted: Any, starts: bool) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": instance_path,
            "JOBS_BACKEND": backend,
            "REDIS_URL": REDIS_URL,
            "JOBS_EMBEDDED_WORKER": wanted,
            "RATE_LIMIT_KEY_PREFIX": unique_prefix(),
        }
    )
    try:
        thread = getattr(app.extensions["jobs"], "thread", None)
        assert (thread is not None and thread.is_alive()) is starts
    finally:
        jobs.stop_worker(app)


@pytest.mark.parametrize("wanted, message", [(True, "RQ backend"), ("yes", "auto, 1 or 0")])
def test_a_contradictory_embedded_worker_setting_is_refused(instance_path: str, wanted: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(
            {
                "INSTANCE_PATH": instance_path,
                "TESTING": True,
                "JOBS_BACKEND": "rq",
                "REDIS_URL": REDIS_URL,
                "JOBS_EMBEDDED_WORKER": wanted,
            }
        )


# --- the compose file, the proxy, the units ----------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_compose_file_has_the_reference_deployment() -> None:
    services = compose()["services"]
    mongos = [services[f"mongo{n}"] for n in (1, 2, 3)]
    assert all("--replSet" in m["command"] and "--keyFile" in m["command"] for m in mongos)
    assert services["mongo-init"]["restart"] == "no"
    assert services["migrate"]["command"][-1] == "migrate" and services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):  # indexes once per upgrade, never by every process at start
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["web"]["environment"]["TRUSTED_PROXIES"] == "1"
    assert "gunicorn" in services["web"]["command"] and "deploy/gunicorn.conf.py" in services["web"]["command"]
    assert services["worker"]["command"][-1] == "worker" and services["bridge"]["command"][2] == "bridge"
    assert "bridge" not in [k for k in services if services[k].get("deploy", {}).get("replicas")]
    assert {"80:80", "443:443"} <= set(services["caddy"]["ports"])
    assert "replicaSet=rs0" in services["web"]["environment"]["MONGO_URI"]


def test_the_compose_file_sets_only_settings_the_app_reads() -> None:
    known = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', (ROOT / "settings.py").read_text()))
    bridge_fields = {
        "OPENADR_API_URL",
        "OPENADR_CLIENT_ID",
        "OPENADR_CLIENT_SECRET",
        "OPENADR_HTTP_CERT",
        "OPENADR_HTTP_KEY",
        "OPENADR_HTTP_CA_FILE",
    }
    for name in ("web", "worker", "bridge"):
        unknown = set(compose()["services"][name]["environment"]) - known - bridge_fields
        assert not unknown, f"{name} sets {unknown}, which nothing reads (a typo?)"


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose (Debian's) is not installed")
def test_docker_compose_validates_the_compose_file(tmp_path: Any) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    (copy / "secrets").mkdir(exist_ok=True)
    for secret in compose()["secrets"].values():
        (copy / secret["file"]).touch()
    env = (DEPLOY / "env.example").read_text()
    (copy / ".env").write_text(re.sub(r"=\n", "=x\n", env))
    checked = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "--quiet"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.skipif(not shutil.which("caddy"), reason="caddy is not installed")
def test_caddy_validates_the_caddyfile() -> None:
    checked = subprocess.run(
        ["caddy", "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PUBLIC_HOST": "registry.example.org", "PATH": "/usr/bin:/bin"},
    )
    assert checked.returncode == 0 and "Valid configuration" in checked.stdout + checked.stderr, checked.stderr


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_verifies_the_units(tmp_path: Any) -> None:
    """The units as they would be installed, with /opt/der-registry at this checkout."""
    root = tmp_path / "root"
    root.mkdir()
    (root / ".venv").symlink_to(ROOT / ".venv")
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(unit.read_text().replace("/opt/der-registry", str(root)))
        units.append(str(tmp_path / name))
    checked = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60, check=False
    )
    assert len(units) == 4
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stdout + checked.stderr


def test_the_gunicorn_config_is_the_documented_one() -> None:
    config: dict[str, Any] = {}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), config)
    assert config["preload_app"] is False and config["worker_tmp_dir"] in ("/dev/shm", None)
    assert config["graceful_timeout"] < config["timeout"]
    assert {"on_starting", "child_exit", "worker_exit"} <= set(config)


def test_every_setting_is_documented() -> None:
    names = set(
        re.findall(
            r'(?:environ\.get|_env_int|_env_switch|environ)\s*[(\[]\s*"([A-Z][A-Z0-9_]+)"',
            (ROOT / "settings.py").read_text(),
        )
    )
    docs = "".join(Path(p).read_text() for p in [ROOT / "README.md", *glob.glob(str(ROOT / "docs" / "*.md"))])
    assert len(names) > 40 and not sorted(n for n in names if n not in docs)
