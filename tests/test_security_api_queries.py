"""Regression tests for what an outside attacker found in the REST API.

Each test sends what the attacker sent, through the whole WSGI stack (or
real HTTP), and asserts the refusal *and* that the store did not change
(tests/support/db_snapshot.py). World and roles come from the authorisation
matrix (tests/test_access.py).

This part, queries and methods: an aggregator cannot query hidden personal
fields (not even by binary search on an email) but may filter and sort on the
display name; malformed queries are 400; HEAD mirrors GET; over real HTTP nothing
answers 500."""

from __future__ import annotations

import json

import pytest
import requests

from tests.test_access import ROLES, item_url, world  # noqa: F401  (fixtures)

# ------------------------------------------------------- hidden personal fields

HIDDEN_QUERIES = [
    {"where": '{"\\u0065mail": {"$lt": "m"}}'},
    {"where": '{"$or": [{"display_name": "x"}, {"\\u0065mail": {"$gte": ""}}]}'},
    {"where": '{"address.city": "x"}'},
    {"where": '{"$and": [{"phone": {"$exists": true}}]}'},
    {"where": 'ｎame == "Real Name a1"'},  # full-width n: Python's parser normalises it
    {"where": 'email >= "a" and display_name != "x"'},
    {"where": '{"ｅmail": {"$gt": ""}}'},  # non-ASCII in JSON: refused outright
    {"sort": '[("\\u0065mail", 1)]'},
    {"sort": "-email"},
    {"sort": '[("name", -1)]'},
    {"projection": '{"\\u0065mail": 1}'},
    {"projection": '{"phone": 0}'},
]


@pytest.mark.parametrize("params", HIDDEN_QUERIES, ids=lambda p: json.dumps(p, ensure_ascii=True))
def test_aggregator_cannot_query_hidden_fields(client_as, world, params):
    name, ids = ROLES["aggregator"]
    response = client_as(name, **ids).get("/prosumers", query_string=params)
    assert response.status_code == 400, response.json
    assert "not visible to your role" in response.json["_error"]["message"]


def test_binary_search_on_email_gets_nowhere(client_as, world):
    """The attack: bisect the email with $lt and read _meta.total."""
    name, ids = ROLES["aggregator"]
    api = client_as(name, **ids)
    answers = {
        api.get("/prosumers", query_string={"where": json.dumps({"\u0065mail": {"$lt": c}})}).status_code for c in "am"
    }
    assert answers == {400}


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"where": '{"display_name": "home a2"}'}, ["home a2"]),
        ({"where": 'display_name == "home a1"'}, ["home a1"]),
        ({"sort": "-display_name"}, ["home a2", "home a1"]),
        ({"sort": '[("display_name", 1)]', "projection": '{"display_name": 1}'}, ["home a1", "home a2"]),
    ],
)
def test_aggregator_may_filter_and_sort_on_display_name(client_as, world, params, expected):
    name, ids = ROLES["aggregator"]
    response = client_as(name, **ids).get("/prosumers", query_string=params)
    assert response.status_code == 200, response.json
    assert [p["display_name"] for p in response.json["_items"]] == expected
    assert all("email" not in p and "name" not in p for p in response.json["_items"])


@pytest.mark.parametrize("role", ["prosumer", "admin"])
def test_who_may_see_email_may_filter_on_it(client_as, world, role):
    name, ids = ROLES[role]
    response = client_as(name, **ids).get("/prosumers", query_string={"where": '{"email": "a1@example.org"}'})
    assert response.status_code == 200
    assert [p["email"] for p in response.json["_items"]] == ["a1@example.org"]


BAD_QUERIES = [
    {"where": '{"device_name": {"$options": "i"}}'},
    {"where": '{"device_name": {"$regex": "a", "$options": "i"}}'},
    {"where": '{"max_capacity": {"$mod": [2]}}'},
    {"where": '{"max_capacity": {"$mod": [0, 1]}}'},
    {"where": '{"max_capacity": {"$bitsAllSet": "x"}}'},
    {"where": '{"max_capacity": {"$bitsAllSet": 1}}'},  # the embedded store lacks it: 400 saying so
    {"where": '{"device_id": {"$in": "x"}}'},
    {"where": '{"device_id": {"$nin": 3}}'},
    {"where": '{"device_id": {"$all": 3}}'},
    {"where": '{"$or": 3}'},
    {"where": '{"$or": []}'},
    {"where": '{"$and": [3]}'},
    {"where": '{"max_capacity": {"$not": 3}}'},
    {"where": '{"max_capacity": {"$size": -1}}'},
    {"where": '{"max_capacity": {"$type": 2.5}}'},
    {"where": '{"max_capacity": {"$type": "no-such-type"}}'},
    {"where": "[" * 8000},
    {"where": '{"a": ' * 2000 + "1" + "}" * 2000},
    {"where": "(" * 3000 + "a == 1" + ")" * 3000},
    {"page": "²"},
    {"page": "0"},
    {"page": "-1"},
    {"page": "1e3"},
    {"page": "99999999999999999999"},
    {"max_results": "³"},
    {"max_results": "0"},
    {"projection": '{"a": ' * 3000 + "1" + "}" * 3000},
    {"projection": '{"device_id": {"a": 1}}'},
    {"embedded": '{"a": ' * 3000 + "1" + "}" * 3000},
    {"embedded": "[1]"},
    {"sort": "[" * 3000},
]


@pytest.mark.parametrize("params", BAD_QUERIES, ids=lambda p: json.dumps(p)[:60])
@pytest.mark.parametrize("role", ["admin", "aggregator"])
def test_bad_queries_are_400(client_as, world, params, role):
    name, ids = ROLES[role]
    response = client_as(name, **ids).get("/devices", query_string=params)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.json["_error"]["message"]


READABLE = [
    "devices",
    "prosumers",
    "measurements",
    "vens",
    "offers",
    "contracts",
    "forecasts",
    "advice",
    "jobs",
    "prices",
    "aggregators",
    "oplog",
]


@pytest.mark.parametrize("role", ["admin", "service", "aggregator", "prosumer"])
def test_head_mirrors_get(client_as, world, role):
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    for resource in READABLE:
        got, head = api.get(f"/{resource}"), api.head(f"/{resource}")
        assert head.status_code == got.status_code, resource
        assert head.get_data() == b""
        if got.status_code == 200:
            assert (
                head.headers["ETag" if "ETag" in got.headers else "Content-Type"]
                == got.headers["ETag" if "ETag" in got.headers else "Content-Type"]
            )
    own, foreign = world["devices"]["a1"], world["devices"]["b1"]
    for doc in (own, foreign):
        assert api.head(item_url("devices", doc)).status_code == api.get(item_url("devices", doc)).status_code


def test_over_real_http_nothing_answers_500(server, token, world):
    """The same attacks through a real server and client (no test-client shortcuts)."""
    admin = {"Authorization": f"Bearer {token('admin')}"}
    attacks = [
        ("post", "/devices", {"data": "[" * 20000, "headers": {"Content-Type": "application/json"}}),
        ("post", "/devices", {"data": "[" * 20000, "headers": {**admin, "Content-Type": "application/json"}}),
        (
            "post",
            "/devices",
            {"data": '{"max_capacity": NaN}', "headers": {**admin, "Content-Type": "application/json"}},
        ),
        ("post", "/devices", {"data": {"device_id": "x"}, "headers": admin}),
        ("post", "/devices", {"files": {"f": ("a.txt", b"x")}, "data": {"device_id": "x"}, "headers": admin}),
        ("get", "/devices", {"params": {"where": '{"x": {"$in": "x"}}'}, "headers": admin}),
        ("get", "/devices", {"params": {"page": "²"}, "headers": admin}),
        ("head", "/devices", {"headers": admin}),
    ]
    statuses = [getattr(requests, verb)(server + path, timeout=30, **kw).status_code for verb, path, kw in attacks]
    assert all(400 <= s < 500 or s == 200 for s in statuses), statuses
    assert statuses[-1] == 200
    assert requests.get(server + "/devices", headers=admin, timeout=30).json()["_meta"]["total"] == 3
