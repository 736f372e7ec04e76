"""A date in ``where`` is written as the API writes dates (YYYY-MM-DDTHH:MM:SSZ);
anything else compared with a date field is a 400 that says so, in both syntaxes.

Before, Eve left such a value as a string (or a number), MongoDB compared a date
with it, nothing matched, and the client got an empty list as if no document
qualified."""

from __future__ import annotations

import json

import pytest

from tests.factories import device

EARLY = "2000-01-01T00:00:00Z"


@pytest.fixture
def readings(client_as, insert):
    d = device()
    insert("devices", d)
    body = [
        {"device_id": d["device_id"], "timestamp": f"2030-01-01T0{h}:00:00Z", "power_kw": float(h)} for h in range(3)
    ]
    answer = client_as("service").post("/measurements", data=json.dumps(body), content_type="application/json")
    assert answer.status_code == 201, answer.get_json()
    return d


def get(client, resource: str, where: str):
    return client.get(f"/{resource}", query_string={"where": where})


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 01 Jan 2030 01:00:00 GMT",  # RFC 1123, Eve's own default format
        "2030-01-01T01:00:00+00:00",  # an offset
        "2030-01-01T01:00:00.000Z",  # fractions of a second
        "2030-01-01",  # a day
        "yesterday",
        1893459600,  # a Unix time
        True,
    ],
)
def test_a_reading_time_not_written_as_the_api_writes_dates_is_a_400(client, readings, value):
    for where in (
        {"timestamp": {"$gte": value}},
        {"timestamp": value},
        {"$and": [{"device_id": readings["device_id"]}, {"timestamp": {"$lt": value}}]},
        {"$or": [{"timestamp": {"$in": [EARLY, value]}}]},
        {"timestamp": {"$not": {"$gt": value}}},
    ):
        answer = get(client, "measurements", json.dumps(where))
        assert answer.status_code == 400, (where, answer.get_json())
        assert "timestamp is a date, written as 2030-01-31T12:00:00Z" in answer.get_json()["_error"]["message"]


def test_dates_written_as_the_api_writes_them_still_select(client, readings):
    where = {"device_id": readings["device_id"], "timestamp": {"$gte": "2030-01-01T01:00:00Z"}}
    answer = get(client, "measurements", json.dumps(where))
    assert answer.status_code == 200
    assert [r["power_kw"] for r in answer.get_json()["_items"]] == [1.0, 2.0]
    missing = get(client, "measurements", json.dumps({"timestamp": None}))
    assert missing.status_code == 200 and missing.get_json()["_meta"]["total"] == 0


def test_the_python_syntax_is_checked_the_same_and_may_build_dates(client, readings):
    refused = get(client, "measurements", 'timestamp >= "Tue, 01 Jan 2030 01:00:00 GMT"')
    assert refused.status_code == 400 and "timestamp is a date" in refused.get_json()["_error"]["message"]
    built = get(client, "measurements", "timestamp >= datetime(2030, 1, 1, 2)")
    assert built.status_code == 200 and [r["power_kw"] for r in built.get_json()["_items"]] == [2.0]
    written = get(client, "measurements", 'timestamp >= "2030-01-01T02:00:00Z"')
    assert written.status_code == 200 and [r["power_kw"] for r in written.get_json()["_items"]] == [2.0]


def test_meta_dates_and_nested_dates_are_checked_too(client, readings):
    assert get(client, "devices", json.dumps({"_created": {"$gt": EARLY}})).get_json()["_meta"]["total"] == 1
    for resource, field in (("devices", "_created"), ("devices", "_updated"), ("contracts", "ven_response.at")):
        answer = get(client, resource, json.dumps({field: {"$gt": "01/01/2030"}}))
        assert answer.status_code == 400, (resource, field, answer.get_json())
        assert f"{field} is a date" in answer.get_json()["_error"]["message"]
