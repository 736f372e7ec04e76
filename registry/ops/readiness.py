"""``GET /ready``: may a load balancer send this process traffic?

The store always, Redis when REDIS_URL is set, the OpenADR VTN when
READY_VTN_URL is set; each within READY_TIMEOUT_SECONDS. 200 when all pass,
503 naming the check that failed. The answer names checks and exception
types only (no URLs, hosts or messages: it needs no token); the details go
to the log.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pymongo
from flask import Flask, Response, jsonify

log = logging.getLogger("registry.ops.readiness")
REDIS_CLIENT = "readiness_redis"


def check_store(app: Flask, timeout: float) -> None:
    with app.app_context(), pymongo.timeout(timeout):
        app.data.driver.db.command("ping")


def check_redis(app: Flask, timeout: float) -> None:
    client = app.extensions.get(REDIS_CLIENT)
    if client is None:
        from redis import Redis

        client = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=timeout, socket_timeout=timeout)
        app.extensions[REDIS_CLIENT] = client
    client.ping()


def check_vtn(app: Flask, timeout: float) -> None:
    """The VTN accepts TCP connections (its TLS may want a VEN's certificate)."""
    url = urlsplit(app.config["READY_VTN_URL"])
    port = url.port or (443 if url.scheme == "https" else 80)
    socket.create_connection((url.hostname, port), timeout=timeout).close()


def checks_for(config: dict[str, Any]) -> dict[str, Callable[[Flask, float], None]]:
    checks: dict[str, Callable[[Flask, float], None]] = {"store": check_store}
    if config.get("REDIS_URL"):
        checks["redis"] = check_redis
    if config.get("READY_VTN_URL"):
        checks["vtn"] = check_vtn
    return checks


def run_checks(app: Flask) -> dict[str, str]:
    """``{check: "ok" | "failed: <ExceptionType>"}``."""
    timeout = float(app.config["READY_TIMEOUT_SECONDS"])
    results = {}
    for name, check in checks_for(app.config).items():
        try:
            check(app, timeout)
        except Exception as error:
            log.warning("ready: %s check failed: %s: %s", name, type(error).__name__, error)
            results[name] = f"failed: {type(error).__name__}"
        else:
            results[name] = "ok"
    return results


def ready_view(app: Flask) -> Callable[[], Response]:
    def ready() -> Response:
        results = run_checks(app)
        failed = sorted(name for name, result in results.items() if result != "ok")
        response = jsonify(status="unavailable" if failed else "ready", checks=results, failed=failed)
        response.status_code = 503 if failed else 200
        response.headers["Cache-Control"] = "no-store"
        return response

    return ready
