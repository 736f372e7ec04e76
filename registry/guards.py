"""Request guards: malformed bodies and query parameters are refused with a
clear 400 before Eve sees them (Eve answers some with a 500, ignores others)."""
from __future__ import annotations

import json
from typing import Any

from eve import Eve
from flask import current_app, request
from werkzeug.exceptions import BadRequest

POSITIVE_INT_PARAMS = ("page", "max_results")
EVE_PARAMS = ("QUERY_WHERE", "QUERY_PROJECTION", "QUERY_SORT", "QUERY_PAGE", "QUERY_MAX_RESULTS",
              "QUERY_EMBEDDED", "QUERY_AGGREGATION", "VERSION_PARAM", "SHOW_DELETED_PARAM")


def check_body() -> None:
    if request.method not in ("POST", "PATCH", "PUT") or not request.is_json:
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
        if value is not None and not (value.isdigit() and int(value) > 0):
            raise BadRequest(description=f"`{name}` must be a positive integer")
    projection = request.args.get("projection")
    if projection is not None:
        check_projection(projection)


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
        raise BadRequest(description=f"unknown query parameter(s): {named}; "
                                     f"this API takes {', '.join(sorted(known))}")


def check_projection(text: str) -> None:
    try:
        projection: Any = json.loads(text)
    except ValueError:
        projection = None
    if (not isinstance(projection, dict) or not projection
            or not all(isinstance(k, str) and not k.startswith("$") for k in projection)
            or not all(v in (0, 1) and not isinstance(v, float) for v in projection.values())):
        raise BadRequest(description='`projection` must be a JSON object like {"field": 1} or {"field": 0}')


def init_app(app: Eve) -> None:
    app.before_request(check_body)
    app.before_request(check_query_params)
    app.before_request(check_known_params)
