"""Bad input gets a clear 4xx with a message and changes nothing."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.conftest import as_json
from tests.factories import device


@pytest.fixture
def one_device(client, db):
    doc = device()
    assert client.post("/devices", **as_json(doc)).status_code == 201
    return doc


def snapshot(db):
    return sorted((d["device_id"], d["_etag"]) for d in db["devices"].find())


@pytest.mark.parametrize(
    "body,status",
    [
        ("{not json", 400),
        ('{"device_id": ', 400),
        ("[]", 422),
        ('"a string"', 400),
        ("42", 400),
        ("null", 400),
    ],
)
def test_malformed_bodies_are_refused(client, db, one_device, body, status):
    before = snapshot(db)
    response = client.post("/devices", data=body, content_type="application/json")
    assert response.status_code in (status, 400, 422)
    assert response.status_code < 500
    assert response.json["_status"] == "ERR"
    assert snapshot(db) == before


def test_oversize_body_is_413(app, client, db, one_device):
    before = snapshot(db)
    huge = {**device(), "device_name": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)}
    response = client.post("/devices", **as_json(huge))
    assert response.status_code == 413
    assert snapshot(db) == before


def test_bulk_with_one_bad_item_stores_none(client, db, one_device):
    readings = [
        {"device_id": one_device["device_id"], "timestamp": "2026-11-20T10:00:00Z", "power_kw": 1.0},
        {"device_id": one_device["device_id"], "timestamp": "yesterday", "power_kw": 1.0},
    ]
    response = client.post("/measurements", **as_json(readings))
    assert response.status_code == 422
    assert db["measurements"].count_documents({}) == 0


def test_unknown_field_in_patch(client, db, one_device):
    before = snapshot(db)
    url = f"/devices/{one_device['device_id']}"
    etag = client.get(url).json["_etag"]
    response = client.patch(url, headers={"If-Match": etag}, **as_json({"colour": "red"}))
    assert response.status_code == 422
    assert "colour" in response.json["_issues"]
    assert snapshot(db) == before


DANGEROUS_WHERE = [
    ({"$where": "sleep(10000)"}, "$where is not allowed"),
    ({"device_name": {"$regex": "^(a+)+$"}}, "$regex is not allowed"),
    ({"$expr": {"$function": {"body": "function(){return 1}", "args": [], "lang": "js"}}}, "not allowed"),
    ({"device_name": {"$accumulator": {}}}, "$accumulator is not allowed"),
    ({"device_name": {"$function": {}}}, "$function is not allowed"),
    ({"$text": {"$search": "x"}}, "$text is not allowed"),
    ({"device_name": {"$jsonSchema": {}}}, "unknown or unsupported"),
    ('"$where" == "sleep(10000)"', "$where is not allowed"),
    ("device_name in ['a']", "Unable to parse"),
    ("import os", "Unable to parse"),
    ("[1, 2]", "must be a JSON object"),
    ({"a": {"$and": [{"b": 1}]}} if False else {"x" * 9000: 1}, "longer than"),
]


@pytest.mark.parametrize("where,message", DANGEROUS_WHERE)
def test_dangerous_or_malformed_where_is_400(client, one_device, where, message):
    text = where if isinstance(where, str) else json.dumps(where)
    response = client.get(f"/devices?{urlencode({'where': text})}")
    assert response.status_code == 400
    assert message in response.json["_error"]["message"]


def test_deeply_nested_where_is_400(client, one_device):
    where: dict = {"device_name": "x"}
    for _ in range(20):
        where = {"$and": [where]}
    response = client.get(f"/devices?{urlencode({'where': json.dumps(where)})}")
    assert response.status_code == 400
    assert "nested deeper" in response.json["_error"]["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "[(1, 2)]"},
        {"sort": '[("max_capacity", 5)]'},
        {"sort": "{'a': 1}"},
        {"sort": '[("$natural", 1)]'},
        {"sort": ","},
        {"projection": "{not json"},
        {"projection": '{"device_id": "yes"}'},
        {"max_results": "lots"},
        {"page": "-3"},
        {"page": "first"},
    ],
)
def test_bad_query_parameters_are_4xx(client, one_device, params):
    response = client.get(f"/devices?{urlencode(params)}")
    assert 400 <= response.status_code < 500, response.data


# found by schemathesis (tests/test_api_fuzz.py): Eve turned true into 1.0 and "2" into 2.0
@pytest.mark.parametrize(
    "field,value",
    [
        ("max_capacity", True),
        ("max_capacity", False),
        ("max_capacity", "2.5"),
        ("available_capacity", [1.0]),
    ],
)
def test_a_number_field_takes_only_numbers(client, db, field, value):
    response = client.post("/devices", **as_json(device(**{field: value})))
    assert response.status_code == 422
    assert field in response.json["_issues"]
    assert db["devices"].count_documents({}) == 0


def test_numbers_in_lists_and_integers_refuse_booleans(client, db, one_device):
    price = {"start": "2026-11-20T00:00:00Z", "values": [0.1, False], "resolution": 900}
    assert client.post("/prices", **as_json(price)).status_code == 422
    assert client.post("/prices", **as_json({**price, "values": [0.1], "resolution": True})).status_code == 422
    assert client.post("/prices", **as_json({**price, "values": [0.1, 2]})).status_code == 201
    assert db["prices"].find_one()["values"] == [0.1, 2.0]


@pytest.mark.parametrize("coordinates", [[2.17, 41.38, 12.0], [200.0, 41.38], [2.17, -91.0], [True, 41.38]])
def test_a_location_is_a_longitude_and_a_latitude_on_earth(client, db, coordinates):
    # MongoDB's 2dsphere index would refuse these with a write error (a 500), not a 422
    response = client.post("/devices", **as_json(device(location={"type": "Point", "coordinates": coordinates})))
    assert response.status_code == 422
    assert "location" in response.json["_issues"]
    assert db["devices"].count_documents({}) == 0


@pytest.mark.parametrize("url", ["/devices?wehre={}", "/devices?where={}&x=1", "/offers?max_result=5"])
def test_an_unknown_query_parameter_is_refused(client, one_device, url):
    # a typo in `where` used to return every document, as if no filter had been asked for
    response = client.get(url)
    assert response.status_code == 400
    assert "unknown query parameter" in response.json["_error"]["message"]


def test_eve_query_parameters_and_other_endpoints_are_not_affected(client, one_device):
    assert (
        client.get('/devices?where={}&sort=-max_capacity&projection={"device_id":1}&page=1&max_results=5').status_code
        == 200
    )
    assert client.get("/health?probe=1").status_code == 200
