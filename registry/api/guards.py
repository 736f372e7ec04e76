"""Request guards: malformed bodies and query parameters are refused with a
clear 400 before Eve sees them (Eve answers some with a 500, ignores others)."""

from __future__ import annotations

import json
from typing import Any

from eve import Eve
from flask import current_app, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

POSITIVE_INT_PARAMS = ("page", "max_results")
EVE_PARAMS = (
    "QUERY_WHERE",
    "QUERY_PROJECTION",
    "QUERY_SORT",
    "QUERY_PAGE",
    "QUERY_MAX_RESULTS",
    "QUERY_EMBEDDED",
    "QUERY_AGGREGATION",
    "VERSION_PARAM",
    "SHOW_DELETED_PARAM",
)


WRITE_METHODS = ("POST", "PATCH", "PUT")
MAX_PAGE = 1_000_000  # beyond it the skip overflows MongoDB's 64-bit offset for large pages


def is_api_endpoint() -> bool:
    """An Eve resource endpoint, or one of the registry's own JSON endpoints."""
    endpoint = request.endpoint or ""
    domain = current_app.config["DOMAIN"]
    return endpoint.split("|")[0] in domain or endpoint.split(".")[0] in JSON_BLUEPRINTS


JSON_BLUEPRINTS = frozenset({"advice_requests", "privacy"})


def check_content_type() -> None:
    """Writes are JSON only. Eve also decodes form and multipart bodies into
    strings (``"3"``, ``"yes"``) that skip the rules written for JSON types."""
    if request.method in WRITE_METHODS and is_api_endpoint() and not request.is_json:
        raise UnsupportedMediaType(
            description=f"send the body as application/json (got {request.mimetype or 'no Content-Type'})"
        )


def check_body() -> None:
    if request.method not in WRITE_METHODS or not request.is_json:
        return
    body = request.get_json(silent=True)
    if body is None and request.get_data():
        raise BadRequest(description="The request body is not valid JSON")
    if request.method == "POST" and isinstance(body, list):
        if not body or not all(isinstance(item, dict) for item in body):
            raise BadRequest(description="A bulk POST body must be a non-empty list of JSON objects")
        return
    if not isinstance(body, dict):
        raise BadRequest(description="The request body must be a JSON object")


def check_query_params() -> None:
    for name in POSITIVE_INT_PARAMS:
        value = request.args.get(name)
        # str.isdigit() is true for "²", which int() refuses
        if value is not None and not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_PAGE):
            raise BadRequest(description=f"`{name}` must be an integer from 1 to {MAX_PAGE}")
    for name in ("projection", "embedded"):
        value = request.args.get(name)
        if value is not None:
            check_field_flags(name, value)


def check_known_params() -> None:
    """A resource's query parameters are Eve's: a typo (``?wehre=…``) would
    otherwise return every document as if no filter had been asked for."""
    endpoint = request.endpoint or ""
    if "|" not in endpoint or endpoint.split("|")[0] not in current_app.config["DOMAIN"]:
        return
    config = current_app.config
    known = {config[k] for k in EVE_PARAMS if config.get(k)}
    unknown = sorted(set(request.args) - known)
    if unknown:
        named = ", ".join(name[:40] for name in unknown[:5])
        raise BadRequest(description=f"unknown query parameter(s): {named}; this API takes {', '.join(sorted(known))}")


def check_field_flags(name: str, text: str) -> None:
    """``projection`` and ``embedded``: a flat JSON object of field names to 0 or 1."""
    try:
        flags: Any = json.loads(text)
    except (ValueError, RecursionError):
        flags = None
    if (
        not isinstance(flags, dict)
        or not flags
        or not all(isinstance(k, str) and k and not k.startswith("$") for k in flags)
        or not all(v in (0, 1) and not isinstance(v, float) for v in flags.values())
    ):
        raise BadRequest(description=f'`{name}` must be a JSON object like {{"field": 1}} or {{"field": 0}}')


def init_app(app: Eve) -> None:
    app.before_request(check_content_type)
    app.before_request(check_body)
    app.before_request(check_query_params)
    app.before_request(check_known_params)
