"""JSON in and out of the API: strict on what enters, never failing on what leaves.

In: Python's ``json`` accepts ``NaN``, ``Infinity`` and ``1e400`` (which it
turns into ``inf``); Cerberus' ``min`` / ``max`` let NaN through (every
comparison with NaN is false), so one such number would be stored. Integers
beyond 64 bits cannot be stored by MongoDB at all. Deep nesting makes the
decoder recurse until ``RecursionError``. Each of these is a 400 with a
message here, before Eve sees the body.

Out: a non-finite number already in the store (written before these checks,
or by a tool outside the API) must not turn every listing that includes it
into a 500: it is rendered as ``null``, as ECMA-262 serialises it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import simplejson
from eve.render import JSONRenderer
from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

MAX_DEPTH = 32
INT64_MAX = 2**63 - 1


def _refuse_constant(name: str) -> Any:
    raise BadRequest(description=f"{name} is not a number this API accepts: numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(description=f"{text[:40]} is out of range: numbers must be finite")
    return value


def _int64(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        value = INT64_MAX + 1
    if abs(value) > INT64_MAX:
        raise BadRequest(description=f"{text[:40]}… is out of range: integers must fit in 64 bits")
    return value


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def strict_loads(text: str | bytes) -> Any:
    """Decode a request body: finite numbers, 64-bit integers, bounded depth."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_int64)
    except RecursionError:
        raise BadRequest(description=f"the JSON body is nested deeper than {MAX_DEPTH} levels") from None
    if depth(value) > MAX_DEPTH:
        raise BadRequest(description=f"the JSON body is nested deeper than {MAX_DEPTH} levels")
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON with :func:`strict_loads` for every ``request.get_json()``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s)


class SafeJSONRenderer(JSONRenderer):
    """Eve's renderer, writing a stored NaN or ±Infinity as ``null`` instead of failing."""

    def render(self, data: Any) -> str:
        indent = 4 if "GET" in request.method and "pretty" in request.args else None
        return simplejson.dumps(
            data,
            indent=indent,
            cls=current_app.data.json_encoder_class,
            sort_keys=current_app.config["JSON_SORT_KEYS"],
            ignore_nan=True,
        )


def init_app(app: Any) -> None:
    app.json = StrictJSONProvider(app)
