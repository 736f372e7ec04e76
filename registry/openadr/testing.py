"""Test and bench aids for the bridge — never used by the running service.

``FakeRegistryApi`` is an in-memory FAKE of the registry's REST API: only the
endpoints the bridge uses, Eve's shapes (``_items``, ``_etag``/``If-Match``,
bulk-insert verdicts, 422 on bad fields) and a client-credentials token check.
``FlakyGateway`` is a loopback reverse proxy that can make any registry (fake
or the real Eve app) answer 503 or refuse connections for a while.
``ServedApp`` runs aiohttp apps on a private event loop in a daemon thread.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import socket
import threading
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp import web

from .api_client import format_eve_date

UUID_FIELD = {"type": str, "length": 36}
DEVICE_FIELDS: dict[str, dict] = {
    "device_id": {**UUID_FIELD, "required": True}, "device_name": {"type": str},
    "account_id": {**UUID_FIELD, "required": True}, "ven_id": {**UUID_FIELD, "required": True},
    "aggregator_id": {"type": str, "required": True},
    "device_class": {"required": True,
                     "allowed": ("hvacDevice", "lightingLoad", "dhwDevice", "otherLoad")},
    "availability": {"required": True, "allowed": ("yes", "no", "")},
    "device_type": {"allowed": ("Demand", "Generation", "Storage")},
    "max_capacity": {"type": float}, "status": {"type": dict},
    "marketplace_availability": {"allowed": ("yes", "no")},
    "dr_availability": {"allowed": ("yes", "no")},
}
MEASUREMENT_FIELDS: dict[str, dict] = {
    "device_id": {**UUID_FIELD, "required": True, "relation": "devices"},
    "timestamp": {"type": "date", "required": True},
    "power_kw": {"type": float, "required": True},
    "energy_kwh": {"type": float}, "status": {"type": dict},
}
VEN_FIELDS: dict[str, dict] = {
    "ven_name": {"type": str, "required": True}, "ven_id": UUID_FIELD,
    "account_id": {**UUID_FIELD, "required": True}, "aggregator_id": {"type": str, "required": True},
    "registration_status": {"allowed": ("enrolled", "registered", "cancelled")},
    "registered_at": {"type": "date"}, "resources": {"type": list}, "fingerprint": {"type": str},
}
CONTRACT_FIELDS: dict[str, dict] = {
    "offers": {"type": list}, "device_ids": {"type": list, "required": True},
    "start": {"type": "date", "required": True}, "end": {"type": "date", "required": True},
    "power_kw": {"type": float}, "direction": {"allowed": ("up", "down")},
    "status": {"type": str}, "ven_response": {"type": dict},
}
RESOURCES = {"devices": ("device_id", DEVICE_FIELDS), "measurements": ("_id", MEASUREMENT_FIELDS),
             "vens": ("_id", VEN_FIELDS), "contracts": ("_id", CONTRACT_FIELDS)}


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
        self._runner = web.AppRunner(self.app, access_log=None)
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


class FakeRegistryApi:
    """FAKE of the registry REST API (in memory), for bridge tests and the bench."""

    def __init__(self, clients: dict[str, tuple[str, str]] | None = None,
                 token_ttl: int = 3600) -> None:
        # client_id -> (client_secret, role)
        self.clients = clients or {"openadr-bridge": ("bridge-secret", "service"),
                                   "admin": ("admin-secret", "admin")}
        self.token_ttl = token_ttl
        self.tokens: dict[str, tuple[str, float]] = {}
        self.store: dict[str, dict[str, dict]] = {name: {} for name in RESOURCES}
        self.requests: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.app = web.Application(middlewares=[self._authenticate], client_max_size=64 * 2**20)
        self.app.add_routes([
            web.post("/oauth/token", self._token),
            web.get("/{resource}", self._list), web.post("/{resource}", self._insert),
            web.get("/{resource}/{lookup}", self._get), web.patch("/{resource}/{lookup}", self._patch),
        ])

    # -- auth ---------------------------------------------------------------

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        key = f"{request.method} {request.path.split('/')[1]}"
        self.requests[key] = self.requests.get(key, 0) + 1
        if request.path == "/oauth/token":
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        role, expires = self.tokens.get(token, (None, 0.0))
        if scheme != "Bearer" or time.monotonic() > expires:
            return _error(401, "Please provide proper credentials")
        if request.method != "GET" and role not in ("service", "admin"):
            return _error(403, "not allowed")
        return await handler(request)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, secret = _basic_auth(request) or (form.get("client_id"), form.get("client_secret"))
        known = self.clients.get(client_id or "")
        if form.get("grant_type") != "client_credentials" or not known or known[0] != secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = (known[1], time.monotonic() + self.token_ttl)
        return web.json_response({"access_token": token, "token_type": "Bearer",
                                  "expires_in": self.token_ttl})

    # -- reads ----------------------------------------------------------------

    def _collection(self, request: web.Request) -> dict[str, dict]:
        name = request.match_info["resource"]
        if name not in self.store:
            raise web.HTTPNotFound()
        return self.store[name]

    async def _list(self, request: web.Request) -> web.Response:
        docs = list(self._collection(request).values())
        try:
            where = json.loads(request.query.get("where", "{}"))
        except ValueError:
            return _error(400, "where is not valid JSON")
        docs = [doc for doc in docs if _matches(doc, where)]
        size, page = int(request.query.get("max_results", 25)), int(request.query.get("page", 1))
        return web.json_response({"_items": docs[(page - 1) * size: page * size],
                                  "_meta": {"total": len(docs), "page": page, "max_results": size}})

    async def _get(self, request: web.Request) -> web.Response:
        doc = self._collection(request).get(request.match_info["lookup"])
        return web.json_response(doc) if doc else _error(404, "not found")

    # -- writes ---------------------------------------------------------------

    async def _insert(self, request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        collection = self._collection(request)
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "malformed JSON")
        docs = body if isinstance(body, list) else [body]
        verdicts = [self._validate(resource, doc, creating=True) for doc in docs]
        lookup = RESOURCES[resource][0]
        for doc, issues in zip(docs, verdicts):
            if not issues and lookup != "_id" and doc[lookup] in collection:
                issues[lookup] = f"value '{doc[lookup]}' is not unique"
        if any(verdicts):
            items = [{"_status": "ERR", "_issues": i} if i else {"_status": "OK"} for i in verdicts]
            return _bulk_response(422, items, body)
        results = []
        for doc in docs:
            stored = self._stamp({**doc, "_id": doc.get("_id") or f"{next(self._ids):024x}"})
            collection[stored[lookup]] = stored
            results.append({"_status": "OK", "_id": stored["_id"], "_etag": stored["_etag"]})
        return _bulk_response(201, results, body)

    async def _patch(self, request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        doc = self._collection(request).get(request.match_info["lookup"])
        if doc is None:
            return _error(404, "not found")
        if "If-Match" not in request.headers:
            return _error(428, "To edit a document its etag must be provided using the If-Match header")
        if request.headers["If-Match"] != doc["_etag"]:
            return _error(412, "Client and server etags don't match")
        changes = await request.json()
        issues = self._validate(resource, changes, creating=False)
        if issues:
            return web.json_response({"_status": "ERR", "_issues": issues}, status=422)
        doc.update(changes)
        self._stamp(doc)
        return web.json_response({"_status": "OK", "_id": doc["_id"], "_etag": doc["_etag"]})

    def _validate(self, resource: str, doc: Any, creating: bool) -> dict[str, str]:
        if not isinstance(doc, dict):
            return {"_": "must be an object"}
        rules = RESOURCES[resource][1]
        issues = {name: "unknown field" for name in doc if name not in rules and name != "_id"}
        for name, rule in rules.items():
            if name not in doc:
                if creating and rule.get("required"):
                    issues[name] = "required field"
                continue
            problem = _check(doc[name], rule, self.store)
            if problem:
                issues[name] = problem
        return issues

    def _stamp(self, doc: dict) -> dict:
        now = format_eve_date(datetime.now(timezone.utc))
        doc.setdefault("_created", now)
        doc["_updated"] = now
        doc["_etag"] = secrets.token_hex(20)
        return doc

    # -- helpers for tests ------------------------------------------------------

    def items(self, resource: str, **where: Any) -> list[dict]:
        return [doc for doc in list(self.store[resource].values())
                if all(doc.get(k) == v for k, v in where.items())]


def _matches(doc: dict, where: dict) -> bool:
    """Equality and ``$in``: the part of Mongo's query language the bridge uses."""
    for key, wanted in where.items():
        if isinstance(wanted, dict) and "$in" in wanted:
            if doc.get(key) not in wanted["$in"]:
                return False
        elif doc.get(key) != wanted:
            return False
    return True


def _check(value: Any, rule: dict, store: dict) -> str | None:
    kind = rule.get("type")
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "must be of number type"
    if kind == "date":
        try:
            parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return "must be of datetime type"
    elif kind not in (None, float) and not isinstance(value, kind):
        return f"must be of {kind.__name__} type"
    if "length" in rule and len(value) != rule["length"]:
        return f"length must be {rule['length']}"
    if "allowed" in rule and value not in rule["allowed"]:
        return f"unallowed value {value!r}"
    if "relation" in rule and value not in store[rule["relation"]]:
        return f"value '{value}' must exist in resource '{rule['relation']}'"
    return None


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Basic":
        return None
    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    return client_id, secret


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"_status": "ERR", "_error": {"code": status, "message": message}},
                             status=status)


def _bulk_response(status: int, items: list[dict], body: Any) -> web.Response:
    if not isinstance(body, list) or len(items) == 1:
        return web.json_response(items[0], status=status)
    payload: dict[str, Any] = {"_status": "ERR" if status >= 400 else "OK", "_items": items}
    return web.json_response(payload, status=status)


class FlakyGateway:
    """A loopback reverse proxy in front of a registry; can fail on demand.

    ``mode`` "up" forwards, "503" answers Service Unavailable, "refuse" closes the
    listening socket so connections are refused.
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
        if mode not in ("up", "503", "refuse"):
            raise ValueError(mode)
        if mode == "refuse" and self.mode != "refuse":
            self.served.call(self.served._unlisten())
        if mode != "refuse" and self.mode == "refuse":
            self.served.call(self.served._listen())
        self.mode = mode

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        self.forwarded[key] = self.forwarded.get(key, 0) + 1
        if self.mode != "up":
            self.failed += 1
            return web.Response(status=503, text="registry down for maintenance")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(request.method, f"{self.upstream}{request.rel_url}",
                                         headers=headers, data=await request.read()) as upstream:
            body = await upstream.read()
            return web.Response(body=body, status=upstream.status,
                                content_type=upstream.content_type)

    def close(self) -> None:
        if self._session is not None:
            self.served.call(self._session.close())
        self.served.close()


def serve_fake_registry(**kwargs: Any) -> tuple[FakeRegistryApi, ServedApp]:
    fake = FakeRegistryApi(**kwargs)
    return fake, ServedApp(fake.app)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Blocking poll used from threads that are not the bridge's loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


__all__ = ["FakeRegistryApi", "FlakyGateway", "ServedApp", "free_port",
           "serve_fake_registry", "wait_until"]
