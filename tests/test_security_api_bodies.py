"""Regression tests for what an outside attacker found in the REST API.

Each test sends what the attacker sent, through the whole WSGI stack (or
real HTTP), and asserts the refusal *and* that the store did not change
(tests/support/db_snapshot.py). World and roles come from the authorisation
matrix (tests/test_access.py).

This part, request bodies: writes take JSON only and field rules see the decoded
update; non-finite numbers are refused from clients and internal writers, and a
stored NaN never breaks a listing (an admin can repair it); deep bodies are 400."""

from __future__ import annotations

import math

import pytest

from tests.conftest import as_json
from tests.support.db_snapshot import snapshot
from tests.test_access import ACCOUNTS, ROLES, B, item_url, world  # noqa: F401  (fixtures)

# ---------------------------------------------------------------- body types

ENCODINGS = {
    "form": {"content_type": "application/x-www-form-urlencoded"},
    "multipart": {"content_type": "multipart/form-data"},
    "text": {"content_type": "text/plain"},
    "xml": {"content_type": "application/xml"},
    "none": {},
}


# (role, verb, resource, party whose item, body) a form body once slipped past the field rules
FORM_WRITES = [
    ("prosumer", "patch", "devices", "a1", {"aggregator_id": B}),
    ("prosumer", "patch", "devices", "a1", {"account_id": ACCOUNTS["b1"]}),
    ("aggregator", "patch", "vens", "a1", {"ven_id": "stolen-ven"}),
    ("prosumer", "patch", "prosumers", "a1", {"aggregator_id": B}),
    ("prosumer", "post", "offers", None, {"device_id": "x", "power_kw": "3"}),
    ("service", "post", "measurements", None, {"device_id": "x", "power_kw": "1"}),
    ("aggregator", "post", "advice-requests", None, {"target_kw": "5"}),
]


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("role,verb,resource,party,body", FORM_WRITES)
def test_writes_take_json_only(client_as, world, db, encoding, role, verb, resource, party, body):
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    before = snapshot(db, "devices", "vens", "prosumers", "offers", "measurements", "jobs")
    url = item_url(resource, world[resource][party]) if party else f"/{resource}"
    headers = {"If-Match": world[resource][party]["_etag"]} if party else {}
    kwargs = dict(ENCODINGS[encoding])
    data = body if encoding in ("form", "multipart") else "&".join(f"{k}={v}" for k, v in body.items())
    response = getattr(api, verb)(url, data=data, headers=headers, **kwargs)
    assert response.status_code == 415, response.get_data(as_text=True)
    assert "application/json" in response.json["_error"]["message"]
    assert snapshot(db, "devices", "vens", "prosumers", "offers", "measurements", "jobs") == before


@pytest.mark.parametrize("raw_key", ['"\\u0061ggregator_id"', '"aggregator\\u005fid"'])
def test_field_rules_see_the_decoded_update(client_as, world, db, raw_key):
    """An escaped key is the same key once parsed: the rule applies to it."""
    name, ids = ROLES["prosumer"]
    doc = world["devices"]["a1"]
    before = snapshot(db, "devices")
    response = client_as(name, **ids).patch(
        item_url("devices", doc),
        data='{%s: "%s"}' % (raw_key, B),
        content_type="application/json",
        headers={"If-Match": doc["_etag"]},
    )
    assert response.status_code == 403
    assert "aggregator_id" in response.json["_error"]["message"]
    assert snapshot(db, "devices") == before


def test_allowed_field_still_patches(client_as, world, db):
    name, ids = ROLES["prosumer"]
    doc = world["devices"]["a1"]
    response = client_as(name, **ids).patch(
        item_url("devices", doc), headers={"If-Match": doc["_etag"]}, **as_json({"availability": "no"})
    )
    assert response.status_code == 200
    assert db["devices"].find_one({"_id": doc["_id"]})["availability"] == "no"


# ------------------------------------------------------- non-finite numbers

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "123456789012345678901234567890"]


# (role, verb, resource, party, field): every place a number enters through the API
NUMBER_WRITES = [
    ("prosumer", "patch", "devices", "a1", "available_capacity"),
    ("prosumer", "post", "offers", None, "power_kw"),
    ("prosumer", "post", "offers", None, "price"),
    ("aggregator", "post", "contracts", None, "price"),
    ("service", "post", "measurements", None, "power_kw"),
    ("service", "post", "prices", None, "price"),
    ("aggregator", "post", "advice-requests", None, "target_kw"),
]


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize("role,verb,resource,party,field", NUMBER_WRITES)
def test_non_finite_numbers_are_refused(client_as, world, db, number, role, verb, resource, party, field):
    name, ids = ROLES[role]
    url = item_url(resource, world[resource][party]) if party else f"/{resource}"
    headers = {"If-Match": world[resource][party]["_etag"]} if party else {}
    before = snapshot(db, "devices", "offers", "contracts", "measurements", "prices", "jobs")
    body = '{"%s": %s, "device_id": "%s"}' % (field, number, world["devices"]["a1"]["device_id"])
    response = getattr(client_as(name, **ids), verb)(url, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "finite" in response.json["_error"]["message"] or "64 bits" in response.json["_error"]["message"]
    assert snapshot(db, "devices", "offers", "contracts", "measurements", "prices", "jobs") == before


def test_validator_refuses_non_finite_from_internal_writers(app):
    """The bridge and the jobs write with post_internal: same rule, no JSON decoder."""
    from registry.api.validator import RegistryValidator

    schema = {"x": {"type": "float", "min": 0}, "n": {"type": "integer"}}
    for doc in ({"x": math.nan}, {"x": math.inf}, {"x": -math.inf}, {"n": 2**63}, {"x": True}):
        assert not RegistryValidator(schema).validate(doc), doc
    assert RegistryValidator(schema).validate({"x": 2.5, "n": 2**63 - 1})


@pytest.mark.parametrize("role", ["admin", "service", "aggregator", "prosumer"])
def test_a_stored_nan_never_breaks_a_listing(client_as, world, db, role):
    """Written before these checks (or by a tool outside the API): rendered as null."""
    a1 = world["devices"]["a1"]
    db["devices"].update_one({"_id": a1["_id"]}, {"$set": {"available_capacity": math.nan}})
    db["measurements"].update_one({"_id": world["measurements"]["a1"]["_id"]}, {"$set": {"power_kw": math.inf}})
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    devices = api.get("/devices")
    assert devices.status_code == 200
    assert {d["device_id"]: d["available_capacity"] for d in devices.json["_items"]}[a1["device_id"]] is None
    item = api.get(item_url("devices", a1))
    assert item.status_code == 200 and item.json["available_capacity"] is None
    measurements = api.get("/measurements")
    assert measurements.status_code == 200
    assert None in [m["power_kw"] for m in measurements.json["_items"]]


def test_admin_can_repair_a_stored_nan(client, world, db):
    a1 = world["devices"]["a1"]
    db["devices"].update_one({"_id": a1["_id"]}, {"$set": {"available_capacity": math.nan}})
    etag = client.get(item_url("devices", a1)).json["_etag"]
    response = client.patch(item_url("devices", a1), headers={"If-Match": etag}, **as_json({"available_capacity": 1.5}))
    assert response.status_code == 200
    assert db["devices"].find_one({"_id": a1["_id"]})["available_capacity"] == 1.5


# ------------------------------------------------- 500s where a 4xx belongs

DEEP_BODIES = ["[" * 20000, '{"a":' * 5000, "[" * 40 + "]" * 40, '{"status": ' + '{"a": ' * 40 + "1" + "}" * 41]


@pytest.mark.parametrize("body", DEEP_BODIES, ids=lambda b: f"{b[:6]}x{len(b)}")
@pytest.mark.parametrize("who", ["anonymous", "admin"])
def test_deep_bodies_are_400(anon, client, db, body, who):
    api = client if who == "admin" else anon
    before = snapshot(db, "devices")
    response = api.post("/devices", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper" in response.json["_error"]["message"]
    assert snapshot(db, "devices") == before
