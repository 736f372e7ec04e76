"""The bridge's only way into the registry: an async REST client with a service token.

Owns three things: the client-credentials token (fetched, refreshed before expiry
and once more on a 401), retries with exponential back-off while the API is
briefly unavailable (connection errors, 5xx), and the measurement buffer that
batches telemetry and never drops a batch the registry has not accepted.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp

logger = logging.getLogger("registry.openadr")

EVE_DATE_FORMAT = "%a, %d %b %Y %H:%M:%S GMT"
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
DATA_VERDICTS = frozenset({400, 413, 422})  # answers that judge the documents themselves


def format_eve_date(moment: datetime) -> str:
    """Render a datetime in Eve's default DATE_FORMAT (RFC 1123, UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime(EVE_DATE_FORMAT)


class ApiError(Exception):
    """The registry answered with a status the caller must handle."""

    def __init__(self, status: int, body: Any, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path} -> {status}: {body}")
        self.status = status
        self.body = body


class ApiUnavailable(ApiError):
    """The registry could not be reached (or kept answering 5xx) within the retry budget."""


@dataclass
class ApiClient:
    """Async client for the registry's Eve REST API.

    ``client_id``/``client_secret`` are exchanged at ``{base_url}/oauth/token``; a
    fixed ``token`` may be given instead (development tokens from ``run.py token``).
    ``retry_for`` bounds how long one call keeps retrying an unavailable API.
    """

    base_url: str
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None
    timeout: float = 10.0
    retry_for: float = 8.0
    backoff_initial: float = 0.1
    backoff_max: float = 2.0
    _session: aiohttp.ClientSession | None = field(default=None, init=False, repr=False)
    _token_expires: float = field(default=float("inf"), init=False, repr=False)
    _token_lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.token is None and not self.client_id:
            raise ValueError("ApiClient needs either a token or client_id/client_secret")

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> "ApiClient":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- token -------------------------------------------------------------

    async def _bearer(self, force: bool = False) -> str:
        if not self.client_id:
            return self.token  # a fixed token cannot be refreshed
        async with self._token_lock:
            if force or self.token is None or time.monotonic() >= self._token_expires:
                await self._fetch_token()
            return self.token

    async def _fetch_token(self) -> None:
        credentials = f"{self.client_id}:{self.client_secret or ''}".encode()
        auth = {"Authorization": f"Basic {base64.b64encode(credentials).decode()}"}
        async with self._session.post(f"{self.base_url}/oauth/token", headers=auth,
                                      data={"grant_type": "client_credentials"}) as resp:
            body = await _read_body(resp)
            if resp.status != 200:
                cls = ApiUnavailable if resp.status in RETRYABLE_STATUSES else ApiError
                raise cls(resp.status, body, "POST", "/oauth/token")
        self.token = body["access_token"]
        # Refresh a little before expiry so a token never dies in flight.
        lifetime = float(body.get("expires_in", 3600))
        self._token_expires = time.monotonic() + max(lifetime - min(60.0, lifetime / 10), 1.0)

    # -- HTTP with retries --------------------------------------------------

    async def request(self, method: str, path: str, *, json_body: Any = None,
                      params: dict | None = None, headers: dict | None = None,
                      retry_for: float | None = None) -> tuple[int, Any]:
        """Send one request; retry connection errors and 5xx with back-off.

        Returns ``(status, body)`` for every non-5xx answer (4xx included: the
        caller decides); raises :class:`ApiUnavailable` once the budget is spent.
        """
        await self.open()
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        delay, refreshed, last = self.backoff_initial, False, None
        while True:
            try:
                status, body = await self._send(method, path, json_body, params, headers, refreshed)
                if status == 401 and not refreshed and self.client_id:
                    refreshed = True  # token revoked or expired early: fetch a new one, once
                    continue
                if status not in RETRYABLE_STATUSES:
                    return status, body
                last = ApiUnavailable(status, body, method, path)
            except ApiUnavailable as err:
                last = err
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as err:
                last = ApiUnavailable(0, f"{err.__class__.__name__}: {err}", method, path)
            if time.monotonic() + delay > deadline:
                raise last
            logger.info("registry API unavailable (%s); retrying in %.1fs", last, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _send(self, method: str, path: str, json_body: Any, params: dict | None,
                    headers: dict | None, force_token: bool) -> tuple[int, Any]:
        all_headers = {"Authorization": f"Bearer {await self._bearer(force_token)}"}
        all_headers.update(headers or {})
        async with self._session.request(method, f"{self.base_url}{path}", json=json_body,
                                         params=params, headers=all_headers) as resp:
            return resp.status, await _read_body(resp)

    # -- resources ----------------------------------------------------------

    async def find_one(self, resource: str, where: dict) -> dict | None:
        status, body = await self.request("GET", f"/{resource}",
                                          params={"where": json.dumps(where)})
        _raise_unless(status, body, (200,), "GET", resource)
        items = body.get("_items", [])
        return items[0] if items else None

    async def find_ven(self, ven_name: str) -> dict | None:
        return await self.find_one("vens", {"ven_name": ven_name})

    async def patch_item(self, resource: str, lookup: str, changes: dict,
                         etag: str | None = None) -> dict:
        """PATCH with If-Match; on a stale ETag re-read the item once and retry."""
        for attempt in range(3):
            if etag is None:
                etag = (await self.get_item(resource, lookup) or {}).get("_etag")
                if etag is None:
                    raise ApiError(404, "not found", "PATCH", f"/{resource}/{lookup}")
            status, body = await self.request("PATCH", f"/{resource}/{lookup}", json_body=changes,
                                              headers={"If-Match": etag})
            if status == 412 and attempt < 2:
                etag = None
                continue
            _raise_unless(status, body, (200,), "PATCH", f"{resource}/{lookup}")
            return body
        raise AssertionError("unreachable")

    async def get_item(self, resource: str, lookup: str) -> dict | None:
        status, body = await self.request("GET", f"/{resource}/{lookup}")
        if status == 404:
            return None
        _raise_unless(status, body, (200,), "GET", f"{resource}/{lookup}")
        return body

    async def upsert_device(self, device: dict, owned: set[str] | None = None) -> str:
        """Create the device, or PATCH the ``owned`` fields when its id already exists."""
        current = await self.get_item("devices", device["device_id"])
        if current is None:
            status, body = await self.request("POST", "/devices", json_body=device)
            if status in (200, 201):
                return "created"
            # A concurrent registration may have inserted it first (409, or 422 "not unique").
            current = await self.get_item("devices", device["device_id"])
            if current is None:
                _raise_unless(status, body, (200, 201), "POST", "devices")
        owned = set(device) if owned is None else owned
        changes = {k: v for k, v in device.items()
                   if k in owned and k != "device_id" and current.get(k) != v}
        if changes:
            await self.patch_item("devices", device["device_id"], changes, current.get("_etag"))
        return "updated"

    async def post_measurements(self, docs: list[dict], retry_for: float = 0.0) -> tuple[int, Any]:
        return await self.request("POST", "/measurements", json_body=docs, retry_for=retry_for)


async def _read_body(resp: aiohttp.ClientResponse) -> Any:
    text = await resp.text()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _raise_unless(status: int, body: Any, ok: tuple[int, ...], method: str, path: str) -> None:
    if status not in ok:
        raise ApiError(status, body, method, f"/{path}")


@dataclass
class MeasurementBuffer:
    """Batches measurement documents and posts them in bulk, losing none.

    A batch stays queued until the registry accepts it: while the API is down it
    is re-sent with back-off. A 4xx answer is a verdict on the data, so the
    rejected documents are logged and dropped and the rest re-sent; without
    per-item detail the batch is split until the bad document is isolated.
    """

    api: ApiClient
    batch_size: int = 500
    flush_interval: float = 0.5
    backoff_max: float = 2.0
    sent: int = 0
    dropped: int = 0
    _pending: list[dict] = field(default_factory=list, repr=False)
    _wakeup: asyncio.Event | None = field(default=None, repr=False)
    _task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, docs: list[dict]) -> None:
        self._pending.extend(docs)
        if self._wakeup is not None and len(self._pending) >= self.batch_size:
            self._wakeup.set()

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, drain_for: float = 5.0) -> None:
        """Stop the loop after trying (for ``drain_for`` s) to send what is queued."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        deadline = time.monotonic() + drain_for
        while self._pending and time.monotonic() < deadline:
            if not await self.flush_once():
                await asyncio.sleep(0.2)
        if self._pending:
            logger.error("bridge stopped with %d measurements not yet accepted by the registry",
                         len(self._pending))

    async def _run(self) -> None:
        delay = self.flush_interval
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            ok = True
            while self._pending and ok:
                ok = await self.flush_once()
            delay = self.flush_interval if ok else min(max(delay * 2, 0.1), self.backoff_max)

    async def flush_once(self) -> bool:
        """Send one batch; False when the registry is unavailable (batch kept)."""
        batch = self._pending[: self.batch_size]
        if not batch:
            return True
        try:
            accepted, rejected = await self._deliver(batch)
        except ApiUnavailable as err:
            logger.warning("measurements kept for re-send (%d queued): %s", len(self._pending), err)
            return False
        except Exception:  # a bug must not lose telemetry either
            logger.exception("measurements kept for re-send after an unexpected error")
            return False
        del self._pending[: len(batch)]
        self.sent += accepted
        self.dropped += rejected
        return True

    async def _deliver(self, batch: list[dict]) -> tuple[int, int]:
        status, body = await self.api.post_measurements(batch)
        if status in (200, 201):
            return len(batch), 0
        if status not in DATA_VERDICTS:  # credentials, routing or rate limit, not the data: keep it
            raise ApiUnavailable(status, body, "POST", "/measurements")
        issues = _per_item_issues(body, len(batch))
        if issues is not None and any(issues):
            for doc, issue in zip(batch, issues):
                if issue:
                    logger.error("registry rejected measurement %s (dropped): %s", doc, issue)
            good = [doc for doc, issue in zip(batch, issues) if not issue]
            accepted, rejected = await self._deliver(good) if good else (0, 0)
            return accepted, rejected + sum(1 for issue in issues if issue)
        if len(batch) == 1:
            logger.error("registry rejected measurement %s (dropped): %s %s", batch[0], status, body)
            return 0, 1
        half = len(batch) // 2  # no per-item verdict: bisect to find the culprit
        first, second = await self._deliver(batch[:half]), await self._deliver(batch[half:])
        return first[0] + second[0], first[1] + second[1]


def _per_item_issues(body: Any, count: int) -> list[Any] | None:
    """Eve's bulk-insert verdict: one ``_status`` per document, in order."""
    if not isinstance(body, dict):
        return None
    items = body.get("_items") if count > 1 else [body]
    if not isinstance(items, list) or len(items) != count:
        return None
    return [None if item.get("_status") == "OK" else (item.get("_issues") or "rejected")
            for item in items]
