"""The suite's own Redis: a private ``redis-server`` on a free loopback port.

Started once per test session (``tests/conftest.py``) so the suite needs no
Redis already running and never touches one that holds someone's data; set
``TEST_REDIS_URL=redis://host:port`` to use another server instead. Tests take
their URLs from :func:`redis_url` (one database number per test module that
wants its own).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time

ENV = "TEST_REDIS_URL"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_url(db: int = 0) -> str:
    return f"{os.environ.get(ENV, 'redis://127.0.0.1:6379').rstrip('/')}/{db}"


class RedisServer:
    """A throw-away redis-server on loopback that a test can stop and start."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("the tests need Debian's redis-server (scripts/test.sh installs it)")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        from redis import Redis

        for _ in range(200):
            try:
                Redis.from_url(self.url).ping()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def start_session_redis() -> None:
    """Start the session's private server unless TEST_REDIS_URL names one."""
    if os.environ.get(ENV):
        return
    server = RedisServer()
    server.start()
    os.environ[ENV] = f"redis://127.0.0.1:{server.port}"
    atexit.register(server.stop)
