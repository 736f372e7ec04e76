"""Bids (issue 17, item 3; docs/market.md, "Bids").

N's request over its area; inside it agg-alpha's d1 (3 kW), d2 (5 kW), d3 (off the
marketplace) and agg-beta's d5; agg-alpha's d4 is outside. A bid is checked whole,
revised or withdrawn until gate closure and refused after, and seen by its
aggregator and the request's DSO (without its devices) only.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from bson import ObjectId

from registry.store.clock import utcnow
from tests.conftest import as_json
from tests.factories import at, device
from tests.test_dso_areas import ELSEWHERE, N, S, area
from tests.test_dso_requests import SOON, flex_request

A, B = "agg-alpha", "agg-beta"


@pytest.fixture
def market(client_as, insert) -> dict:
    devices = insert(
        "devices",
        device(aggregator_id=A, location=at(2.1, 41.1), max_capacity=3.0),
        device(aggregator_id=A, location=at(2.05, 41.15), max_capacity=5.0),
        device(aggregator_id=A, location=at(2.15, 41.05), marketplace_availability="no"),
        device(aggregator_id=A, location=at(3.0, 41.1)),
        device(aggregator_id=B, location=at(2.12, 41.12)),
    )
    north, _ = insert("grid_areas", area(N), area(S, ELSEWHERE))
    created = client_as("dso", dso_id=N).post("/flexibility_requests", **as_json(flex_request(north["_id"])))
    assert created.status_code == 201, created.json
    ids = {f"d{i + 1}": d["device_id"] for i, d in enumerate(devices)}
    return {"request": created.json["_id"], "area": north["_id"], **ids}


def bid(market, **changes) -> dict:
    body = {
        "request": market["request"],
        "aggregator_id": A,
        "price": 0.3,
        "power_kw": [4.0, 7.5, 6.0, 0.0],
        "device_ids": [market["d1"], market["d2"]],
        "granularity_kw": 1.0,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def alpha(client_as):
    return client_as("aggregator", aggregator_id=A)


def test_an_aggregator_bids_and_the_dso_sees_it_without_devices(client_as, market):
    created = alpha(client_as).post("/bids", **as_json(bid(market)))
    assert created.status_code == 201, created.json
    mine = alpha(client_as).get(f"/bids/{created.json['_id']}").json
    assert mine["dso_id"] == N and mine["status"] == "submitted" and mine["device_ids"] == [market["d1"], market["d2"]]
    seen = client_as("dso", dso_id=N).get("/bids").json["_items"]
    assert len(seen) == 1 and "device_ids" not in seen[0] and seen[0]["price"] == 0.3
    assert market["d1"] not in json.dumps(seen)
    assert client_as("dso", dso_id=S).get("/bids").json["_meta"]["total"] == 0
    assert client_as("aggregator", aggregator_id=B).get(f"/bids/{created.json['_id']}").status_code == 404
    prosumer = client_as("prosumer", account_id=device()["account_id"], aggregator_id=A)
    assert prosumer.get("/bids").status_code == 403


def test_cannot_offer_is_an_answer(client_as, market):
    body = {"request": market["request"], "aggregator_id": B, "cannot_offer": True}
    response = client_as("aggregator", aggregator_id=B).post("/bids", **as_json(body))
    assert response.status_code == 201, response.json
    seen = client_as("dso", dso_id=N).get("/bids").json["_items"]
    assert [b["cannot_offer"] for b in seen] == [True]


BAD = {
    "another aggregator's device": {"device_ids": ["d1", "d5"]},
    "a device off the marketplace": {"device_ids": ["d1", "d3"]},
    "a device outside the area": {"device_ids": ["d1", "d4"]},
    "an unknown device": {"device_ids": ["d1", "00000000-0000-4000-8000-000000000000"]},
    "a device twice": {"device_ids": ["d1", "d1"]},
    "no devices": {"device_ids": []},
    "above the maximum price": {"price": 0.41},
    "negative price": {"price": -1.0},
    "fewer slots": {"power_kw": [1.0, 1.0]},
    "more than requested": {"power_kw": [5.5, 1.0, 1.0, 1.0]},
    "more than the devices' capacity": {"power_kw": [5.0, 7.5, 7.5, 5.0], "device_ids": ["d1"]},
    "nothing offered": {"power_kw": [0.0, 0.0, 0.0, 0.0]},
    "negative power": {"power_kw": [-1.0, 1.0, 1.0, 1.0]},
    "granularity above the power": {"granularity_kw": 8.0},
    "another currency": {"currency": "DKK"},
    "no price": {"price": None},
    "cannot offer with a price": {"cannot_offer": True, "power_kw": None, "device_ids": None, "granularity_kw": None},
    "a status of its own": {"status": "accepted"},
    "a dso of its own": {"dso_id": S},
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_bids_are_a_422_and_store_nothing(client_as, market, db, case):
    changes = dict(BAD[case])
    if changes.get("device_ids"):
        changes["device_ids"] = [market.get(d, d) for d in changes["device_ids"]]
    response = alpha(client_as).post("/bids", **as_json(bid(market, **changes)))
    assert response.status_code == 422, (case, response.json)
    assert db["bids"].count_documents({}) == 0


def test_a_request_not_open_to_the_aggregator_is_a_422(client_as, market, db):
    gamma = client_as("aggregator", aggregator_id="agg-gamma")
    response = gamma.post("/bids", **as_json(bid(market, aggregator_id="agg-gamma", device_ids=[market["d4"]])))
    assert response.status_code == 422 and "no flexibility request" in response.json["_error"]["message"]
    response = alpha(client_as).post("/bids", **as_json(bid(market, request=str(ObjectId()))))
    assert response.status_code == 422
    assert db["bids"].count_documents({}) == 0


def test_a_bid_in_anothers_name_is_a_403(client_as, market, db):
    response = alpha(client_as).post("/bids", **as_json(bid(market, aggregator_id=B, device_ids=[market["d5"]])))
    assert response.status_code == 403
    assert db["bids"].count_documents({}) == 0


def test_a_device_held_by_a_live_contract_is_a_409(client_as, market, db):
    db["reservations"].insert_one(
        {"device_id": market["d2"], "slot_start": SOON + timedelta(minutes=30), "contract_id": ObjectId()}
    )
    response = alpha(client_as).post("/bids", **as_json(bid(market)))
    assert response.status_code == 409 and market["d2"] in response.json["_error"]["message"]
    assert db["bids"].count_documents({}) == 0


def test_a_device_in_two_live_bids_to_one_request_is_a_409(client_as, market, db):
    assert alpha(client_as).post("/bids", **as_json(bid(market))).status_code == 201
    second = alpha(client_as).post("/bids", **as_json(bid(market, device_ids=[market["d2"]], power_kw=[1.0] * 4)))
    assert second.status_code == 409
    assert db["bids"].count_documents({}) == 1


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_a_400(client_as, market, db, number):
    text = json.dumps(bid(market)).replace("0.3", number, 1)
    response = alpha(client_as).post("/bids", data=text, content_type="application/json")
    assert response.status_code == 400
    assert db["bids"].count_documents({}) == 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_and_multipart_bodies_are_refused(client_as, market, db, content_type):
    body = {k: str(v) for k, v in bid(market).items()}
    assert alpha(client_as).post("/bids", data=body, content_type=content_type).status_code == 415
    assert db["bids"].count_documents({}) == 0


def test_revise_then_withdraw_before_gate_closure(client_as, market, db):
    created = alpha(client_as).post("/bids", **as_json(bid(market))).json
    url = f"/bids/{created['_id']}"
    before = db["bids"].find_one({})["submitted_at"]
    bad = alpha(client_as).patch(url, headers={"If-Match": created["_etag"]}, **as_json({"device_ids": [market["d4"]]}))
    assert bad.status_code == 422
    revised = alpha(client_as).patch(url, headers={"If-Match": created["_etag"]}, **as_json({"price": 0.25}))
    assert revised.status_code == 200, revised.json
    assert db["bids"].find_one({})["price"] == 0.25 and db["bids"].find_one({})["submitted_at"] >= before
    forged = alpha(client_as).patch(url, headers={"If-Match": revised.json["_etag"]}, **as_json({"status": "accepted"}))
    assert forged.status_code == 409
    dso = client_as("dso", dso_id=N).patch(url, headers={"If-Match": revised.json["_etag"]}, **as_json({"price": 0.0}))
    assert dso.status_code == 403
    gone = alpha(client_as).patch(url, headers={"If-Match": revised.json["_etag"]}, **as_json({"status": "withdrawn"}))
    assert gone.status_code == 200
    again = alpha(client_as).patch(url, headers={"If-Match": gone.json["_etag"]}, **as_json({"status": "submitted"}))
    assert again.status_code == 409
    assert db["bids"].find_one({})["status"] == "withdrawn"


@pytest.fixture
def closed(market, insert, db) -> dict:
    """The gate of the request closed a minute ago, with a bid of agg-alpha on it."""
    db["flexibility_requests"].update_one(
        {"_id": ObjectId(market["request"])}, {"$set": {"gate_closure": utcnow() - timedelta(minutes=1)}}
    )
    (stored,) = insert(
        "bids",
        {
            **bid(market),
            "request": ObjectId(market["request"]),
            "dso_id": N,
            "status": "submitted",
            "cannot_offer": False,
            "submitted_at": utcnow() - timedelta(hours=1),
        },
    )
    return {**market, "bid": stored}


def test_after_gate_closure_no_bid_revision_or_withdrawal(client_as, closed, db):
    late = alpha(client_as).post("/bids", **as_json(bid(closed, device_ids=[closed["d1"]], power_kw=[1.0] * 4)))
    assert late.status_code == 409 and "gate closed" in late.json["_error"]["message"]
    url, etag = f"/bids/{closed['bid']['_id']}", closed["bid"]["_etag"]
    for change in ({"price": 0.1}, {"status": "withdrawn"}):
        response = alpha(client_as).patch(url, headers={"If-Match": etag}, **as_json(change))
        assert response.status_code == 409 and "gate closed" in response.json["_error"]["message"]
    assert db["bids"].count_documents({}) == 1 and db["bids"].find_one({})["price"] == 0.3
