"""What operators see: request ids, one access log line per request, ``/ready``
and ``/metrics`` (the log format itself: registry.ops.logs).

``init_app`` wraps the WSGI app once, outside Flask, so every answer — a 429
from the limiter, a 401, a 500 — carries ``X-Request-ID``, is timed into
``der_registry_request_duration_seconds`` and gets an access line. Routes:

* ``GET /ready``: readiness (registry.ops.readiness), no token;
* ``GET /metrics``: Prometheus text (registry.ops.metrics), from loopback without
  forwarding headers, or with ``Authorization: Bearer <METRICS_TOKEN>``.

``ORPHANS_REPAIRED`` is the counter for code that repairs orphans outside the
tick (the tick's own repairs are counted from its heartbeat).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, jsonify, request, request_started

from registry.api import limits
from registry.ops import metrics, readiness, request_ids

access_log = logging.getLogger("registry.access")
# probes and scrapes every few seconds: their access lines are DEBUG
QUIET_ENDPOINTS = frozenset({"health", "ready", "metrics"})
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
ENDPOINT_KEY = "registry.endpoint"


def init_app(app: Flask) -> None:
    app.wsgi_app = ObservedApp(app.wsgi_app)  # type: ignore[method-assign]
    request_started.connect(remember_endpoint, app)
    app.add_url_rule("/ready", "ready", readiness.ready_view(app))
    app.add_url_rule("/metrics", "metrics", serve_metrics)
    for endpoint in ("ready", "metrics"):
        limits.exempt(app, endpoint)


class ObservedApp:
    """WSGI middleware: binds the request id, times the answer, writes the access line."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = request_ids.accept(environ.get("HTTP_X_REQUEST_ID"))
        token = request_ids.bind(request_id)
        started, status = time.perf_counter(), ["500"]

        def start(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            return start_response(code, [*headers, (request_ids.HEADER, request_id)], exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            observe(environ, status[0], time.perf_counter() - started)
            request_ids.unbind(token)


def remember_endpoint(sender: Flask, **extra: Any) -> None:
    """Routing is done when a request starts (before any before_request answers)."""
    request.environ[ENDPOINT_KEY] = request.endpoint


def resource_of(environ: dict[str, Any]) -> str:
    """The Eve resource or the endpoint: a bounded label, never the raw path."""
    endpoint = environ.get(ENDPOINT_KEY)
    return endpoint.split("|", 1)[0] if endpoint else "unmatched"


def observe(environ: dict[str, Any], status: str, seconds: float) -> None:
    resource, method = resource_of(environ), environ.get("REQUEST_METHOD", "")
    metrics.REQUEST_SECONDS.labels(resource, method, status).observe(seconds)
    level = logging.DEBUG if resource in QUIET_ENDPOINTS else logging.INFO
    access_log.log(
        level,
        "%s %s %s",
        method,
        environ.get("PATH_INFO", ""),
        status,
        extra={
            "method": method,
            "path": environ.get("PATH_INFO", ""),
            "status": int(status),
            "duration_ms": round(seconds * 1000, 1),
            "resource": resource,
            "remote_addr": environ.get("REMOTE_ADDR"),
            "request_id": request_ids.current(),
        },
    )


def may_scrape() -> bool:
    """METRICS_TOKEN as a bearer token, or a direct connection from this host."""
    expected = current_app.config.get("METRICS_TOKEN")
    offered = request.headers.get("Authorization", "")
    if expected and hmac.compare_digest(offered.encode(), f"Bearer {expected}".encode()):
        return True
    # the socket's peer, before ProxyFix: a local proxy forwarding the world is not "local"
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR") or request.remote_addr
    if any(header in request.headers for header in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(peer or "").is_loopback
    except ValueError:
        return False


def serve_metrics() -> Response:
    if not may_scrape():
        response = jsonify(
            _status="ERR",
            _error={
                "code": 403,
                "message": ("/metrics answers loopback, or a request with Authorization: Bearer <METRICS_TOKEN>"),
            },
        )
        response.status_code = 403
        return response
    body, content_type = metrics.exposition(current_app._get_current_object())  # type: ignore[attr-defined]
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
