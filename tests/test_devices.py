"""The devices resource follows the FLEXCoop CIM schema rule by rule."""

from __future__ import annotations

import pytest

from tests.conftest import as_json
from tests.factories import device, new_uuid

BAD_FIELDS = [
    ("device_id", "not-a-uuid"),
    ("device_id", "123E4567-E89B-12D3-A456-426614174000"),  # not canonical
    ("device_id", "123e4567e89b12d3a456426614174000"),  # no hyphens
    ("device_id", 42),
    ("device_name", 7),
    ("account_id", "abc"),
    ("ven_id", "0" * 36),
    ("aggregator_id", "ab"),
    ("aggregator_id", "x" * 257),
    ("device_class", "fridge"),
    ("availability", "maybe"),
    ("marketplace_availability", ""),
    ("dr_availability", "true"),
    ("device_type", "Consumer"),
    ("max_capacity", "big"),
    ("available_capacity", [1.0]),
    ("location", {"type": "Point", "coordinates": "Barcelona"}),
    ("location", {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1], [0, 0]]]}),
    ("status", {"mode": "6"}),
    ("status", {"operationState": "on"}),
    ("status", {"setPoint": "hot"}),
    ("status", {"x-fanspeed": "fast"}),
    ("status", {"colour": "red"}),
    ("status", "on"),
    ("owner_name", "unknown field"),
]
REQUIRED = ["device_id", "account_id", "ven_id", "aggregator_id", "device_class", "availability"]


def test_valid_device_is_created_and_readable_by_device_id(client):
    doc = device()
    created = client.post("/devices", **as_json(doc))
    assert created.status_code == 201, created.json
    got = client.get(f"/devices/{doc['device_id']}")
    assert got.status_code == 200
    assert {k: got.json[k] for k in doc} == doc
    assert got.headers["Cache-Control"] == "max-age=10,must-revalidate"


@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_each_field_rule_rejects_bad_values_and_stores_nothing(client, db, field, value):
    response = client.post("/devices", **as_json(device(**{field: value})))
    assert response.status_code == 422
    assert field in response.json["_issues"]
    assert db["devices"].count_documents({}) == 0


@pytest.mark.parametrize("field", REQUIRED)
def test_required_fields(client, db, field):
    doc = device()
    del doc[field]
    response = client.post("/devices", **as_json(doc))
    assert response.status_code == 422
    assert "required" in response.json["_issues"][field]
    assert db["devices"].count_documents({}) == 0


def test_device_name_defaults_to_no_name(client):
    doc = device()
    del doc["device_name"]
    assert client.post("/devices", **as_json(doc)).status_code == 201
    assert client.get(f"/devices/{doc['device_id']}").json["device_name"] == "NO NAME"


def test_device_id_is_unique(client, db):
    doc = device()
    assert client.post("/devices", **as_json(doc)).status_code == 201
    again = client.post("/devices", **as_json(device(device_id=doc["device_id"])))
    assert again.status_code == 422
    assert "unique" in again.json["_issues"]["device_id"]
    assert db["devices"].count_documents({}) == 1


@pytest.mark.parametrize("value", ["yes", "no", ""])
def test_availability_accepts_empty_string(client, value):
    assert client.post("/devices", **as_json(device(availability=value))).status_code == 201


def test_item_url_rejects_characters_outside_the_regex(client):
    assert client.get("/devices/abc_def").status_code == 404


def test_unknown_device_is_404(client):
    assert client.get(f"/devices/{new_uuid()}").status_code == 404


def _etag_of(client, device_id):
    return client.get(f"/devices/{device_id}").json["_etag"]


def test_patch_needs_matching_etag(client):
    doc = device()
    client.post("/devices", **as_json(doc))
    url = f"/devices/{doc['device_id']}"
    etag = _etag_of(client, doc["device_id"])
    assert client.patch(url, **as_json({"availability": "no"})).status_code == 428
    stale = client.patch(url, headers={"If-Match": "stale"}, **as_json({"availability": "no"}))
    assert stale.status_code == 412
    assert client.get(url).json["availability"] == "yes"
    ok = client.patch(url, headers={"If-Match": etag}, **as_json({"availability": "no"}))
    assert ok.status_code == 200
    assert client.get(url).json["availability"] == "no"
    # the old ETag no longer matches: the second of two racing writers loses
    late = client.patch(url, headers={"If-Match": etag}, **as_json({"availability": "yes"}))
    assert late.status_code == 412
    assert client.get(url).json["availability"] == "no"


def test_patch_validates_fields(client):
    doc = device()
    client.post("/devices", **as_json(doc))
    url = f"/devices/{doc['device_id']}"
    etag = _etag_of(client, doc["device_id"])
    bad = client.patch(url, headers={"If-Match": etag}, **as_json({"device_class": "toaster"}))
    assert bad.status_code == 422
    assert client.get(url).json["device_class"] == "dhwDevice"


def test_bulk_measurements_get_the_device_owner(client):
    doc = device()
    client.post("/devices", **as_json(doc))
    readings = [
        {"device_id": doc["device_id"], "timestamp": f"2026-11-20T10:{m:02d}:00Z", "power_kw": 1.5 - m / 10}
        for m in (0, 15, 30)
    ]
    created = client.post("/measurements", **as_json(readings))
    assert created.status_code == 201, created.json
    items = client.get("/measurements").json["_items"]
    assert [i["power_kw"] for i in items] == [1.5, 0.0, -1.5]
    assert {i["account_id"] for i in items} == {doc["account_id"]}
    assert {i["aggregator_id"] for i in items} == {doc["aggregator_id"]}


def test_measurements_for_unknown_device_are_refused(client, db):
    reading = {"device_id": new_uuid(), "timestamp": "2026-11-20T10:00:00Z", "power_kw": 1.0}
    response = client.post("/measurements", **as_json(reading))
    assert response.status_code == 422
    assert "unknown device_id" in response.json["_error"]["message"]
    assert db["measurements"].count_documents({}) == 0
