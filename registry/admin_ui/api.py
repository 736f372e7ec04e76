"""The UI's client of the registry's REST API, acting with the user's token.

Views never read the store: every panel is an API request carrying the
logged-in user's bearer token, so the registry's authentication, role
policy, data scoping and hooks decide what the UI can show or change.

Requests are dispatched in-process through the app's own WSGI stack (a
werkzeug ``Client`` on ``current_app``) rather than over a socket to
``PUBLIC_URL``. That works the same in the one-process embedded server and
behind gunicorn (any worker serves its own API calls: no second worker has to
be free, and ``PUBLIC_URL`` need not be reachable from inside the container).
The sub-request runs in an empty ``contextvars.Context``: Flask would
otherwise reuse the page's app context, and with it ``g`` (where the API
keeps the validated caller).
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from flask import current_app, request
from werkzeug.test import Client, EnvironBuilder, TestResponse


@dataclass
class ApiResult:
    """One API answer: status, JSON body (or {}), and the response headers."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    #: records of a list the registry could not answer (see ``Api.listing``)
    unreadable: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self.body.get("_items") or [])

    @property
    def total(self) -> int:
        return int((self.body.get("_meta") or {}).get("total", len(self.items)))

    @property
    def message(self) -> str:
        """What went wrong, in words a person can act on."""
        return error_message(self.status, self.body)


class ApiUnauthorized(Exception):
    """The API refused the user's token (expired or revoked): log in again."""


def error_message(status: int, body: dict[str, Any]) -> str:
    error = body.get("_error") or {}
    detail = error.get("message") if isinstance(error, dict) else str(error)
    issues = body.get("_issues")
    if issues:
        detail = "; ".join(f"{k}: {_flatten(v)}" for k, v in issues.items())
    prefix = {
        403: "Your role may not do this",
        404: "Not found (or not yours to see)",
        409: "Conflict",
        412: "Someone changed this item in the meantime; reload and try again",
        422: "The registry refused the values",
        428: "The item's version (ETag) is required",
        429: "Too many requests; wait a moment",
    }.get(status, f"The registry answered {status}")
    # Eve's 404 text is werkzeug's "check your spelling"; ours says more.
    return f"{prefix}: {detail}" if detail and status not in (404, 412) else prefix


def _flatten(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_flatten(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    return str(value)


class Api:
    """API calls for one user: ``Api(token).get("devices", where={...})``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get(self, path: str, **params: Any) -> ApiResult:
        return self.call("GET", path, params=params)

    def listing(self, resource: str, **params: Any) -> ApiResult:
        """GET a list page. Should the registry fail on it as a whole (5xx,
        e.g. one stored value it cannot serialise), the page's ids are read
        alone and each record on its own: every record that can be read is
        shown, and ``unreadable`` counts the others."""
        result = self.get(resource, **params)
        if result.status < 500:
            return result
        ids = self.get(resource, **{**params, "projection": {"_id": 1}})
        if not ids.ok:
            return result
        items = [one.body for stub in ids.items if (one := self.get(f"{resource}/{stub.get('_id')}")).ok]
        return ApiResult(200, {**ids.body, "_items": items}, ids.headers, unreadable=len(ids.items) - len(items))

    def post(self, path: str, body: Any) -> ApiResult:
        return self.call("POST", path, body=body)

    def patch(self, path: str, body: dict[str, Any], etag: str) -> ApiResult:
        return self.call("PATCH", path, body=body, headers={"If-Match": etag})

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResult:
        query = {k: _param(v) for k, v in (params or {}).items() if v not in (None, "", {})}
        builder = EnvironBuilder(
            # quoted: an id typed into a /ui URL ("x?a", "x#a") stays one path segment
            path="/" + quote(path.lstrip("/"), safe="/"),
            method=method,
            query_string=query,
            json=body if body is not None else None,
            base_url=request.host_url,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json", **(headers or {})},
            environ_base={"REMOTE_ADDR": request.remote_addr or "127.0.0.1"},
        )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        response: TestResponse = contextvars.Context().run(Client(app, use_cookies=False).open, builder)
        result = ApiResult(response.status_code, _json_body(response), dict(response.headers))
        if result.status == 401:
            raise ApiUnauthorized(result.message)
        return result


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _json_body(response: TestResponse) -> dict[str, Any]:
    data = response.get_json(silent=True)
    return data if isinstance(data, dict) else {}
