"""The ingestion fast path (registry/api/ingest.py) and the scoping of readings read
from buckets: a bad reading refuses its batch with Eve's per-item ``_issues`` and
stores nothing, NaN and Infinity are a 400, an unknown device or another party's is
"unknown device_id", and each role sees and writes only what it owns."""

from __future__ import annotations

import pytest

from registry.store import timeseries
from tests.conftest import as_json
from tests.factories import device, new_uuid

A, B = "agg-alpha", "agg-beta"


def reading(dev: dict, minute: int, kw: float = 1.0) -> dict:
    return {"device_id": dev["device_id"], "timestamp": f"2030-01-01T10:{minute:02d}:00Z", "power_kw": kw}


def buckets(db) -> int:
    return db[timeseries.COLLECTION].count_documents({})


@pytest.fixture
def parties(insert) -> dict[str, dict]:
    """Two prosumers of aggregator A (a1, a2) and one of B (b1), a device each."""
    devices = {
        "a1": device(aggregator_id=A),
        "a2": device(aggregator_id=A),
        "b1": device(aggregator_id=B),
    }
    insert("devices", *devices.values())
    return devices


def as_prosumer(client_as, dev: dict):
    return client_as("prosumer", account_id=dev["account_id"], aggregator_id=dev["aggregator_id"])


def test_a_bad_reading_refuses_the_batch_with_per_item_issues(client_as, parties, db):
    dev = parties["a1"]
    batch = [
        reading(dev, 0),
        {**reading(dev, 15), "power_kw": "2"},
        reading(dev, 30, kw=100001.0),
        {**reading(dev, 45), "timestamp": "2030-02-30T10:00:00Z"},
        {"device_id": dev["device_id"], "power_kw": 1.0, "account_id": dev["account_id"], "colour": "red"},
        {**reading(dev, 0), "device_id": "not-a-uuid"},
        {**reading(dev, 0), "energy_kwh": True},
        {**reading(dev, 0), "timestamp": None},
        {**reading(dev, 0), "status": {"x-fanspeed": False}},
    ]
    response = client_as("service").post("/measurements", **as_json(batch))
    assert response.status_code == 422
    assert response.json["_status"] == "ERR" and response.json["_error"]["code"] == 422
    assert [item["_status"] for item in response.json["_items"]] == ["OK"] + ["ERR"] * 8
    assert [item.get("_issues") for item in response.json["_items"]] == [
        None,
        {"power_kw": "must be of float type"},
        {"power_kw": "max value is 100000"},
        {"timestamp": "must be of datetime type"},
        {"timestamp": "required field", "account_id": "field is read-only", "colour": "unknown field"},
        {"device_id": "must be of uuid type"},
        {"energy_kwh": "must be of float type"},
        {"timestamp": "null value not allowed"},
        {"status": {"x-fanspeed": "must be of float type"}},
    ]
    assert buckets(db) == 0 and db["jobs"].count_documents({}) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinity_are_refused_before_anything_is_stored(client_as, parties, db, number):
    body = (
        f'[{{"device_id": "{parties["a1"]["device_id"]}", "timestamp": "2030-01-01T10:00:00Z", "power_kw": {number}}}]'
    )
    response = client_as("service").post("/measurements", data=body, content_type="application/json")
    assert response.status_code == 400
    assert buckets(db) == 0


def test_an_unknown_device_is_refused_per_reading(client_as, parties, db):
    ghost = new_uuid()
    batch = [reading(parties["a1"], 0), {**reading(parties["a1"], 15), "device_id": ghost}]
    response = client_as("service").post("/measurements", **as_json(batch))
    assert response.status_code == 422
    assert response.json["_items"][1]["_issues"] == {"device_id": f"unknown device_id {ghost}"}
    assert f"unknown device_id {ghost}" in response.json["_error"]["message"]
    assert buckets(db) == 0


def test_a_prosumer_writes_readings_of_its_own_devices_only(client_as, parties, db):
    mine, neighbours = parties["a1"], parties["a2"]
    prosumer = as_prosumer(client_as, mine)
    refused = prosumer.post("/measurements", **as_json([reading(mine, 0), reading(neighbours, 0)]))
    assert refused.status_code == 422  # another party's device is as unknown as a missing one
    assert refused.json["_items"][1]["_issues"] == {"device_id": f"unknown device_id {neighbours['device_id']}"}
    assert buckets(db) == 0
    assert prosumer.post("/measurements", **as_json([reading(mine, 0)])).status_code == 201
    assert buckets(db) == 1


def test_an_aggregator_writes_readings_of_its_portfolio_only(client_as, parties, db):
    aggregator = client_as("aggregator", aggregator_id=A)
    accepted = aggregator.post("/measurements", **as_json([reading(parties["a1"], 0), reading(parties["a2"], 0)]))
    assert accepted.status_code == 201
    refused = aggregator.post("/measurements", **as_json(reading(parties["b1"], 0)))
    assert refused.status_code == 422 and refused.json["_issues"] == {
        "device_id": f"unknown device_id {parties['b1']['device_id']}"
    }
    assert buckets(db) == 2


def test_reads_are_scoped_to_the_caller(client_as, parties):
    body = [reading(dev, m, kw=float(i)) for i, dev in enumerate(parties.values()) for m in (0, 15)]
    assert client_as("service").post("/measurements", **as_json(body)).status_code == 201

    def seen(api, **params) -> list[str]:
        response = api.get("/measurements", query_string=params)
        assert response.status_code == 200
        items = response.json["_items"]
        assert response.json["_meta"]["total"] == len(items)
        return sorted({m["device_id"] for m in items})

    ids = {name: dev["device_id"] for name, dev in parties.items()}
    assert seen(as_prosumer(client_as, parties["a1"])) == [ids["a1"]]
    assert seen(as_prosumer(client_as, parties["a1"]), where=f'{{"device_id": "{ids["a2"]}"}}') == []
    assert seen(client_as("aggregator", aggregator_id=A)) == sorted([ids["a1"], ids["a2"]])
    assert seen(client_as("aggregator", aggregator_id=B)) == [ids["b1"]]
    assert seen(client_as("admin")) == sorted(ids.values())
    foreign = f"/measurements/{ids['b1']}@2030-01-01T10:00:00Z"
    assert client_as("aggregator", aggregator_id=A).get(foreign).status_code == 404
    assert client_as("aggregator", aggregator_id=B).get(foreign).status_code == 200


def test_a_token_is_required_and_a_prosumer_token_needs_its_account(client_as, anon, parties, db):
    assert anon.post("/measurements", **as_json([reading(parties["a1"], 0)])).status_code == 401
    assert client_as("prosumer").post("/measurements", **as_json([reading(parties["a1"], 0)])).status_code == 403
    assert buckets(db) == 0
