"""Loopback servers for the bridge's tests and bench.

``LoopbackRegistry`` serves the real registry app (``create_app``) with
werkzeug on a loopback port, as ``python run.py`` would. ``FlakyGateway`` is a
loopback reverse proxy that can make it answer 503 or refuse connections for a
while. ``ServedApp`` runs aiohttp apps on a private event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from aiohttp import web


def with_credentials(vtn_url: str, ven_name: str, secret: str) -> str:
    """The VTN URL with ``ven_name:secret`` as userinfo: openleadr's client (aiohttp)
    then sends them as HTTP Basic with every message."""
    parts = urlsplit(vtn_url)
    userinfo = f"{quote(ven_name, safe='')}:{quote(secret, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServedApp:
    """An aiohttp application served on 127.0.0.1 from a private loop in a thread."""

    def __init__(self, app: web.Application, port: int | None = None) -> None:
        self.app, self.port = app, port or free_port()
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self._setup())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, coroutine: Awaitable, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _setup(self) -> None:
        # a request still in flight at close (a client gone mid-answer) is waited for 2 s, not 60
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()

    async def _unlisten(self) -> None:
        await self._site.stop()

    def close(self) -> None:
        self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class LoopbackRegistry:
    """The real registry on ``127.0.0.1:<free port>``: werkzeug's threaded server in a thread.

    The socket is bound before the app is built, so ``PUBLIC_URL`` and the
    OAuth issuer name the real port. ``service`` holds the built-in bridge
    client's credentials (its secret lives in the instance folder).
    """

    def __init__(self, instance_path: str, overrides: dict[str, Any] | None = None) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        from registry import create_app
        from registry.auth import credentials

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any) -> None:  # errors are still logged
                pass

        self.server = make_server("127.0.0.1", 0, _not_ready, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.app = create_app(
            {"INSTANCE_PATH": instance_path, "PUBLIC_URL": self.url, "OAUTH_ISSUER": self.url, **(overrides or {})}
        )
        self.server.app = self.app
        client_id = credentials.BRIDGE_CLIENT_ID
        self.service = (client_id, credentials.secret_of(instance_path, "clients", client_id))
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def token(self, role: str, ttl: int = 3600, **ids: str | None) -> str:
        """A bearer token of the built-in provider, e.g. ``token("prosumer", account_id=…)``."""
        from registry.auth import mint_token

        config = self.app.config
        return mint_token(
            config["INSTANCE_PATH"],
            config["OAUTH_ISSUER"],
            config["OAUTH_AUDIENCE"],
            role,
            ttl=ttl,
            subject=f"loopback-{role}-{'-'.join(filter(None, ids.values()))}",
            **ids,
        )

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(5)
        self.server.server_close()
        from registry import jobs

        jobs.stop_worker(self.app, timeout=5)


def _not_ready(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


class FlakyGateway:
    """A loopback reverse proxy in front of a registry; can fail on demand.

    ``mode`` "up" forwards, "503" answers Service Unavailable, "refuse" closes the
    listening socket so connections are refused, "lose-answer" forwards the
    request and then answers 503, as a request that timed out after the
    registry had done it.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "up"
        self.failed = 0
        self.forwarded: dict[str, int] = {}  # "METHOD /path" -> requests seen
        self._session: aiohttp.ClientSession | None = None
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.served = ServedApp(app)

    @property
    def url(self) -> str:
        return self.served.url

    def set_mode(self, mode: str) -> None:
        if mode not in ("up", "503", "refuse", "lose-answer"):
            raise ValueError(mode)
        if mode == "refuse" and self.mode != "refuse":
            self.served.call(self.served._unlisten())
        if mode != "refuse" and self.mode == "refuse":
            self.served.call(self.served._listen())
        self.mode = mode

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        self.forwarded[key] = self.forwarded.get(key, 0) + 1
        if self.mode not in ("up", "lose-answer"):
            self.failed += 1
            return web.Response(status=503, text="registry down for maintenance")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, f"{self.upstream}{request.rel_url}", headers=headers, data=await request.read()
        ) as upstream:
            body = await upstream.read()
            if self.mode == "lose-answer":
                self.failed += 1
                return web.Response(status=503, text="the answer was lost on the way")
            return web.Response(body=body, status=upstream.status, content_type=upstream.content_type)

    def close(self) -> None:
        if self._session is not None:
            self.served.call(self._session.close())
        self.served.close()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Blocking poll used from threads that are not the bridge's loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


__all__ = ["FlakyGateway", "LoopbackRegistry", "ServedApp", "free_port", "wait_until", "with_credentials"]


def serve_quietly(app: Any) -> tuple[str, Callable[[], None]]:
    """``app`` on werkzeug's threaded server at ``127.0.0.1:<free port>`` without
    access lines; returns its URL and a function that stops it."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:
            pass

    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        thread.join(timeout=10)

    return f"http://127.0.0.1:{httpd.server_port}", stop
