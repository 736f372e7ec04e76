"""Real app processes for tests: gunicorn on a free loopback port, stopped for sure.

with gunicorn(tmp_path, {"REDIS_URL": ...}, workers=2) as served:
    requests.get(served.url + "/health")
served.stderr_lines()  # what it logged, after it stopped
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.redis_server import redis_url

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
CONFIG = str(ROOT / "deploy" / "gunicorn.conf.py")
REDIS_URL = redis_url(0)
# variables of the developer's shell that would change what the app under test does
CLEARED = (
    "MONGO_URI",
    "REDIS_URL",
    "JOBS_BACKEND",
    "WEB_CONCURRENCY",
    "PROMETHEUS_MULTIPROC_DIR",
    "TRUSTED_PROXIES",
    "METRICS_TOKEN",
    "OAUTH_USERS",
    "OAUTH_CLIENTS",
    "PUBLIC_URL",
    "OAUTH_ISSUER",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_prefix() -> str:
    """A Redis key prefix no other test (or run) uses."""
    return f"test-{uuid.uuid4().hex[:12]}"


@dataclass
class Served:
    url: str
    process: subprocess.Popen
    stderr_path: Path
    instance_path: str
    env: dict[str, str] = field(default_factory=dict)

    def stderr_lines(self) -> list[str]:
        return self.stderr_path.read_text().splitlines()


def app_env(instance_path: str, port: int, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "INSTANCE_PATH": instance_path,
            "PORT": str(port),
            "PUBLIC_URL": url,
            "OAUTH_ISSUER": url,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def gunicorn(
    tmp_path: Path,
    extra: dict[str, str] | None = None,
    workers: int = 1,
    instance_path: str | None = None,
    wait: bool = True,
    timeout: float = 60.0,
) -> Iterator[Served]:
    """`gunicorn -c deploy/gunicorn.conf.py -w N 'registry:create_app()'`, in ROOT."""
    port = free_port()
    instance = instance_path or str(tmp_path / f"instance-{port}")
    env = app_env(instance, port, extra or {})
    stderr_path = tmp_path / f"gunicorn-{port}.log"
    command = [GUNICORN, "-c", CONFIG, "-w", str(workers), "-b", f"127.0.0.1:{port}", "registry:create_app()"]
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    served = Served(f"http://127.0.0.1:{port}", process, stderr_path, instance, env)
    try:
        if wait:
            wait_until_up(served, timeout)
        yield served
    finally:
        stop(process)


def wait_until_up(served: Served, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {served.process.returncode}:\n" + "\n".join(served.stderr_lines()[-30:])
            )
        try:
            if requests.get(served.url + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{served.url} did not answer /health in {timeout} s")


def stop(process: subprocess.Popen, grace: float = 15.0) -> int:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL to the whole group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode


def seed_instance(instance_path: str) -> str:
    """An instance folder whose generated secrets (demo credentials, signing key) exist
    before several workers start on it: the first-start race is issue 12.5's, and
    tests of other things should not depend on it."""
    from registry import create_app

    create_app({"INSTANCE_PATH": instance_path, "TESTING": True})
    return instance_path
