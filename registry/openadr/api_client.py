"""The bridge's only way into the registry: an async REST client with a service token.

Owns the client-credentials token (fetched, refreshed before expiry and once
more on a 401), retries with exponential back-off while the API is briefly
unavailable (connection errors, 5xx, 429), and the few resource calls the
bridge makes. Telemetry batching is in :mod:`.telemetry`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from registry.ops import request_ids
from schemas.vocabulary import DATE_FORMAT

logger = logging.getLogger("registry.openadr")

# 429: the rate limit of the service client is spent; like 5xx it passes
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
PAGE_SIZE = 500


def format_eve_date(moment: datetime) -> str:
    """Render a datetime in the registry's DATE_FORMAT (ISO 8601, UTC, whole seconds)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


class ApiError(Exception):
    """The registry answered with a status the caller must handle."""

    def __init__(self, status: int, body: Any, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path} -> {status}: {error_message(body)}")
        self.status = status
        self.body = body


def error_message(body: Any) -> str:
    """The readable part of Eve's error shape ``{_status, _error: {code, message}, _issues}``."""
    if not isinstance(body, dict):
        return str(body)[:500]
    error = body.get("_error")
    parts = [error.get("message", "") if isinstance(error, dict) else str(error or "")]
    if body.get("_issues"):
        parts.append(json.dumps(body["_issues"], default=str))
    return " ".join(p for p in parts if p) or json.dumps(body, default=str)[:500]


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
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._token_lock = asyncio.Lock()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ApiClient:
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
        async with self._session.post(
            f"{self.base_url}/oauth/token", headers=auth, data={"grant_type": "client_credentials"}
        ) as resp:
            body = await _read_body(resp)
            if resp.status != 200:
                cls = ApiUnavailable if resp.status in RETRYABLE_STATUSES else ApiError
                raise cls(resp.status, body, "POST", "/oauth/token")
        self.token = body["access_token"]
        # Refresh a little before expiry so a token never dies in flight.
        lifetime = float(body.get("expires_in", 3600))
        self._token_expires = time.monotonic() + max(lifetime - min(60.0, lifetime / 10), 1.0)

    # -- HTTP with retries --------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        retry_for: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; retry connection errors and 5xx with back-off.

        Returns ``(status, body)`` for every non-5xx answer (4xx included: the
        caller decides); raises :class:`ApiUnavailable` once the budget is spent.
        """
        await self.open()
        # one id for the call and its retries: the registry logs it on each
        headers = {request_ids.HEADER: request_ids.outgoing(), **(headers or {})}
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
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                last = ApiUnavailable(0, f"{err.__class__.__name__}: {err}", method, path)
            if time.monotonic() + delay > deadline:
                raise last
            logger.info("registry API unavailable (%s); retrying in %.1fs", last, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _send(
        self, method: str, path: str, json_body: Any, params: dict | None, headers: dict | None, force_token: bool
    ) -> tuple[int, Any]:
        all_headers = {"Authorization": f"Bearer {await self._bearer(force_token)}"}
        all_headers.update(headers or {})
        async with self._session.request(
            method, f"{self.base_url}{path}", json=json_body, params=params, headers=all_headers
        ) as resp:
            return resp.status, await _read_body(resp)

    # -- resources ----------------------------------------------------------

    async def find_one(self, resource: str, where: dict, retry_for: float | None = None) -> dict | None:
        status, body = await self.request(
            "GET", f"/{resource}", retry_for=retry_for, params={"where": json.dumps(where), "max_results": 1}
        )
        _raise_unless(status, body, (200,), "GET", resource)
        items = body.get("_items", [])
        return items[0] if items else None

    async def find_all(
        self, resource: str, where: dict, projection: dict | None = None, page_size: int = PAGE_SIZE
    ) -> list[dict]:
        """Every item matching ``where``, page by page."""
        params = {"where": json.dumps(where), "max_results": page_size}
        if projection:
            params["projection"] = json.dumps(projection)
        found: list[dict] = []
        for page in range(1, 10_000):
            status, body = await self.request("GET", f"/{resource}", params={**params, "page": page})
            _raise_unless(status, body, (200,), "GET", resource)
            items = body.get("_items", [])
            found += items
            if len(items) < page_size or len(found) >= body.get("_meta", {}).get("total", 0):
                return found
        return found

    async def find_ven(self, ven_name: str, retry_for: float | None = None) -> dict | None:
        return await self.find_one("vens", {"ven_name": ven_name}, retry_for)

    async def patch_item(self, resource: str, lookup: str, changes: dict, etag: str | None = None) -> dict:
        """PATCH with If-Match; on a stale ETag re-read the item once and retry."""
        for attempt in range(3):
            if etag is None:
                etag = (await self.get_item(resource, lookup) or {}).get("_etag")
                if etag is None:
                    raise ApiError(404, "not found", "PATCH", f"/{resource}/{lookup}")
            status, body = await self.request(
                "PATCH", f"/{resource}/{lookup}", json_body=changes, headers={"If-Match": etag}
            )
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
