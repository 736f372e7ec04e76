"""Hostile fuzzing of the REST API, beyond what the OpenAPI document describes.

schemathesis (tests/test_api_fuzz.py) sends JSON shaped by the document;
attackers do not. Here hypothesis writes the raw request: JSON, form and
multipart bodies; keys spelled with escapes, in other scripts, dotted or
``$``-prefixed; NaN, ±Infinity, 1e400 and 30-digit integers; nesting far
deeper than any schema; and ``where`` / ``sort`` / ``projection`` in both
syntaxes naming hidden fields in every disguise. For every role:

* nothing answers 5xx;
* a refused write changes nothing in the store;
* a hidden field, however it is spelled, is never filterable by an aggregator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.db_snapshot import snapshot
from tests.test_access import ROLES, item_url, world  # noqa: F401  (world is a fixture)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIELDS = [
    "device_id",
    "device_name",
    "account_id",
    "aggregator_id",
    "ven_id",
    "available_capacity",
    "max_capacity",
    "power_kw",
    "price",
    "status",
    "location",
    "availability",
    "_id",
    "_etag",
    "_created",
    "registration_status",
    "email",
    "name",
    "display_name",
    "$set",
    "a.b",
    "",
]
HIDDEN = ["email", "name", "phone", "address"]


def escaped(name: str, draw: Any) -> str:
    """``name`` as JSON key text, with some characters written as \\uXXXX."""
    mask = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return '"' + "".join(f"\\u{ord(c):04x}" if m else c for c, m in zip(name, mask)) + '"'


NUMBERS = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e999",
        "123456789012345678901234567890",
        "0",
        "-1",
        "2.5",
        "1e308",
        "true",
        "null",
    ]
)
SCALARS = st.one_of(NUMBERS, st.text(max_size=12).map(json.dumps))


@st.composite
def raw_json(draw: Any, depth: int = 0) -> str:
    """JSON text built by hand, so it can say what json.dumps never would."""
    if depth > 2 or draw(st.integers(0, 3)) == 0:
        return draw(SCALARS)
    if draw(st.booleans()):
        return "[" + ", ".join(draw(st.lists(raw_json(depth + 1), max_size=3))) + "]"
    keys = draw(st.lists(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), max_size=4))
    pairs = [f"{escaped(k, draw)}: {draw(raw_json(depth + 1))}" for k in keys]
    return "{" + ", ".join(pairs) + "}"


@st.composite
def hostile_body(draw: Any) -> str:
    body = draw(raw_json())
    if draw(st.integers(0, 5)) == 0:  # wrap it far deeper than any schema
        levels = draw(st.sampled_from([40, 900, 5000]))
        body = '{"status": ' * levels + body + "}" * levels
    return body


WRITES = [
    ("prosumer", "patch", "devices"),
    ("aggregator", "patch", "devices"),
    ("prosumer", "post", "offers"),
    ("aggregator", "post", "contracts"),
    ("service", "post", "measurements"),
    ("aggregator", "post", "vens"),
    ("prosumer", "patch", "prosumers"),
    ("admin", "post", "devices"),
    ("admin", "patch", "devices"),
]
RESOURCES = ["devices", "offers", "contracts", "measurements", "vens", "prosumers"]


@pytest.mark.parametrize("role,verb,resource", WRITES)
@FUZZ
@given(body=hostile_body(), encoding=st.sampled_from(["json", "json", "json", "form", "multipart"]))
def test_hostile_writes(client_as, world, db, role, verb, resource, body, encoding):
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    url, headers = f"/{resource}", {}
    if verb == "patch":
        doc = world[resource]["a1"]
        url = item_url(resource, doc)
        headers = {"If-Match": api.get(url).headers.get("ETag", "x")}
    before = snapshot(db, *RESOURCES)
    if encoding == "json":
        response = getattr(api, verb)(url, data=body, content_type="application/json", headers=headers)
    else:
        fields = {"body": body[:200], "aggregator_id": "agg-beta"}
        content_type = "multipart/form-data" if encoding == "multipart" else "application/x-www-form-urlencoded"
        response = getattr(api, verb)(url, data=fields, content_type=content_type, headers=headers)
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert snapshot(db, *RESOURCES) == before
    assert api.get(f"/{resource}").status_code == 200  # nothing stored poisons the listing


@st.composite
def where_naming(draw: Any, field: str) -> tuple[str, str]:
    """A where in either syntax that filters on ``field``, in disguise."""
    operator = draw(st.sampled_from(["$lt", "$gte", "$ne", "$exists", "$in"]))
    operand = {"$exists": "true", "$in": '["a"]'}.get(operator, '"m"')
    key = escaped(field, draw) if draw(st.booleans()) else json.dumps(field + draw(st.sampled_from(["", ".x"])))
    clause = '{%s: {"%s": %s}}' % (key, operator, operand)
    style = draw(st.sampled_from(["plain", "or", "and", "python", "python-wide"]))
    if style == "or":
        return "where", '{"$or": [{"display_name": "x"}, %s]}' % clause
    if style == "and":
        return "where", '{"$and": [%s, {"aggregator_id": "agg-alpha"}]}' % clause
    if style.startswith("python"):
        wide = "".join(chr(ord(c) + 0xFEE0) if c.isalpha() and draw(st.booleans()) else c for c in field)
        return "where", f'{wide if style == "python-wide" else field} >= "a" and display_name != "x"'
    return "where", clause


@st.composite
def hidden_query(draw: Any) -> dict[str, str]:
    field = draw(st.sampled_from(HIDDEN))
    kind = draw(st.sampled_from(["where", "where", "sort", "projection"]))
    if kind == "where":
        return dict([draw(where_naming(field))])
    key = escaped(field, draw)
    if kind == "sort":
        return {"sort": draw(st.sampled_from([f"[({key}, 1)]", f"-{field}", f"display_name,{field}"]))}
    return {"projection": "{%s: %d}" % (key, draw(st.sampled_from([0, 1])))}


@FUZZ
@given(params=hidden_query())
def test_hidden_fields_in_every_disguise(client_as, world, params):
    name, ids = ROLES["aggregator"]
    response = client_as(name, **ids).get("/prosumers", query_string=params)
    assert response.status_code == 400, (params, response.get_data(as_text=True)[:300])


@st.composite
def hostile_where(draw: Any, depth: int = 0) -> str:
    if depth > 3 or draw(st.integers(0, 2)) == 0:
        return draw(SCALARS)
    operator = draw(
        st.sampled_from(
            [
                "$in",
                "$nin",
                "$all",
                "$mod",
                "$size",
                "$type",
                "$not",
                "$elemMatch",
                "$or",
                "$and",
                "$nor",
                "$exists",
                "$bitsAllSet",
                "$near",
                "$geoWithin",
                "$options",
                "$regex",
                "$where",
                "$gt",
                "$eq",
                "max_capacity",
                "$comment",
            ]
        )
    )
    inner = draw(st.lists(hostile_where(depth + 1), max_size=3))
    operand = draw(st.sampled_from(["[" + ", ".join(inner) + "]", inner[0] if inner else "{}"]))
    return "{%s: %s}" % (json.dumps(operator), operand)


@pytest.mark.parametrize("role", ["admin", "service", "aggregator", "prosumer"])
@FUZZ
@given(where=hostile_where(), page=st.sampled_from([None, "1", "²", "0", "-3", "1e2", "٣"]))
def test_hostile_queries(client_as, world, role, where, page):
    name, ids = ROLES[role]
    params = {"where": where, **({"page": page} if page else {})}
    for resource in ("devices", "prosumers", "offers"):
        response = client_as(name, **ids).get(f"/{resource}", query_string=params)
        assert response.status_code < 500, (params, response.get_data(as_text=True)[:300])
