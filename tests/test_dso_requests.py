"""Flexibility requests (issue 17, item 2; docs/market.md, "Flexibility requests").

N owns an area with devices of agg-alpha and agg-beta inside; agg-gamma's device is
outside. A request is plausible or a clear 4xx that stores nothing; it is seen by
the aggregators with devices in the area, by no other aggregator and no prosumer.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from registry.store.clock import utcnow
from tests.conftest import as_json
from tests.factories import at, device
from tests.test_dso_areas import ELSEWHERE, N, S, area

SOON = (utcnow() + timedelta(days=2)).replace(hour=16, minute=0, second=0)


def when(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def flex_request(grid_area, **changes) -> dict:
    body = {
        "dso_id": N,
        "grid_area": str(grid_area),
        "direction": "down",
        "start": when(SOON),
        "power_kw": [5.0, 7.5, 7.5, 5.0],
        "gate_closure": when(SOON - timedelta(hours=6)),
        "max_price": 0.4,
        "currency": "EUR",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def market(insert) -> dict:
    devices = insert(
        "devices",
        device(aggregator_id="agg-alpha", location=at(2.1, 41.1)),
        device(aggregator_id="agg-beta", location=at(2.05, 41.15)),
        device(aggregator_id="agg-gamma", location=at(3.0, 41.1)),
    )
    north, south = insert("grid_areas", area(N), area(S, ELSEWHERE))
    return {"north": north["_id"], "south": south["_id"], "devices": devices}


def post(client_as, body, dso_id: str = N):
    return client_as("dso", dso_id=dso_id).post("/flexibility_requests", **as_json(body))


def test_a_dso_posts_a_request_for_its_area(client_as, market):
    response = post(client_as, flex_request(market["north"]))
    assert response.status_code == 201, response.json
    stored = client_as("dso", dso_id=N).get(f"/flexibility_requests/{response.json['_id']}").json
    assert stored["status"] == "open"
    assert stored["end"] == when(SOON + timedelta(hours=1))
    assert stored["aggregator_ids"] == ["agg-alpha", "agg-beta"]
    assert stored["area_geometry"]["type"] == "Polygon"


def test_seen_by_the_aggregators_in_the_area_only(client_as, market):
    request_id = post(client_as, flex_request(market["north"])).json["_id"]
    for aggregator, seen in (("agg-alpha", True), ("agg-beta", True), ("agg-gamma", False)):
        api = client_as("aggregator", aggregator_id=aggregator)
        listed = api.get("/flexibility_requests").json
        assert listed["_meta"]["total"] == int(seen)
        item = api.get(f"/flexibility_requests/{request_id}")
        assert item.status_code == (200 if seen else 404)
        if seen:  # which other aggregators operate there is not theirs to know
            assert "aggregator_ids" not in item.json and item.json["power_kw"] == [5.0, 7.5, 7.5, 5.0]
    assert client_as("dso", dso_id=S).get(f"/flexibility_requests/{request_id}").status_code == 404


def test_prosumers_never_see_requests(client_as, market):
    post(client_as, flex_request(market["north"]))
    prosumer = market["devices"][0]
    api = client_as("prosumer", account_id=prosumer["account_id"], aggregator_id="agg-alpha")
    assert api.get("/flexibility_requests").status_code == 403


def test_an_aggregator_cannot_probe_who_else_sees_a_request(client_as, market):
    post(client_as, flex_request(market["north"]))
    where = json.dumps({"aggregator_ids": "agg-beta"})
    response = client_as("aggregator", aggregator_id="agg-alpha").get(f"/flexibility_requests?where={where}")
    assert response.status_code == 400


PAST = utcnow() - timedelta(hours=1)
BAD = {
    "start in the past": {
        "start": when(PAST.replace(minute=0, second=0)),
        "gate_closure": when(PAST - timedelta(hours=2)),
    },
    "start off the slot grid": {"start": when(SOON + timedelta(minutes=7))},
    "gate closure after start": {"gate_closure": when(SOON + timedelta(minutes=15))},
    "gate closure at start": {"gate_closure": when(SOON)},
    "gate closure in the past": {"gate_closure": when(PAST)},
    "zero power": {"power_kw": [5.0, 0.0]},
    "negative power": {"power_kw": [-1.0]},
    "huge power": {"power_kw": [1e12]},
    "no slots": {"power_kw": []},
    "too many slots": {"power_kw": [1.0] * 97},
    "power as text": {"power_kw": ["5"]},
    "power as a boolean": {"power_kw": [True]},
    "negative price": {"max_price": -0.1},
    "huge price": {"max_price": 1e300},
    "bad currency": {"currency": "euro"},
    "bad direction": {"direction": "sideways"},
    "missing deadline": {"gate_closure": None},
    "status other than open": {"status": "cleared"},
    "copied fields": {"aggregator_ids": ["agg-gamma"]},
}


@pytest.mark.parametrize("case", list(BAD))
def test_implausible_requests_are_a_422_and_store_nothing(client_as, market, db, case):
    response = post(client_as, flex_request(market["north"], **BAD[case]))
    assert response.status_code == 422, (case, response.json)
    assert db["flexibility_requests"].count_documents({}) == 0


def test_an_area_that_is_no_id_is_a_422(client_as, market, db):
    assert post(client_as, flex_request("nope")).status_code == 422
    assert db["flexibility_requests"].count_documents({}) == 0


def test_another_dsos_area_is_a_422_as_an_unknown_one(client_as, market, db):
    foreign = post(client_as, flex_request(market["south"]))
    unknown = post(client_as, flex_request("0" * 24))
    assert foreign.status_code == unknown.status_code == 422
    assert "not one of yours" in foreign.json["_error"]["message"]
    assert foreign.json["_error"]["message"].replace(str(market["south"]), "X") == unknown.json["_error"][
        "message"
    ].replace("0" * 24, "X")
    assert db["flexibility_requests"].count_documents({}) == 0


def test_a_request_in_anothers_name_is_a_403(client_as, market, db):
    response = post(client_as, flex_request(market["south"], dso_id=S))
    assert response.status_code == 403
    assert db["flexibility_requests"].count_documents({}) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_a_400(client_as, market, db, number):
    text = json.dumps(flex_request(market["north"])).replace("7.5", number, 1)
    response = client_as("dso", dso_id=N).post("/flexibility_requests", data=text, content_type="application/json")
    assert response.status_code == 400
    assert db["flexibility_requests"].count_documents({}) == 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_and_multipart_bodies_are_refused(client_as, market, db, content_type):
    body = {k: str(v) for k, v in flex_request(market["north"]).items()}
    response = client_as("dso", dso_id=N).post("/flexibility_requests", data=body, content_type=content_type)
    assert response.status_code == 415
    assert db["flexibility_requests"].count_documents({}) == 0


@pytest.mark.parametrize("role", ["aggregator", "prosumer", "service"])
def test_only_a_dso_or_an_admin_posts_requests(client_as, market, db, role):
    ids = {"aggregator": {"aggregator_id": "agg-alpha"}, "prosumer": {"account_id": device()["account_id"]}}
    response = client_as(role, **ids.get(role, {})).post(
        "/flexibility_requests", **as_json(flex_request(market["north"]))
    )
    assert response.status_code == 403
    assert db["flexibility_requests"].count_documents({}) == 0


def test_a_dso_cancels_before_gate_closure_and_nothing_else(client_as, market, db):
    created = post(client_as, flex_request(market["north"])).json
    url = f"/flexibility_requests/{created['_id']}"
    api = client_as("dso", dso_id=N)
    moved = api.patch(url, headers={"If-Match": created["_etag"]}, **as_json({"power_kw": [1.0]}))
    assert moved.status_code == 403
    cleared = api.patch(url, headers={"If-Match": created["_etag"]}, **as_json({"status": "cleared"}))
    assert cleared.status_code == 409
    foreign = client_as("dso", dso_id=S).patch(
        url, headers={"If-Match": created["_etag"]}, **as_json({"status": "cancelled"})
    )
    assert foreign.status_code == 404
    aggregator = client_as("aggregator", aggregator_id="agg-alpha")
    assert (
        aggregator.patch(url, headers={"If-Match": created["_etag"]}, **as_json({"status": "cancelled"})).status_code
        == 403
    )
    done = api.patch(url, headers={"If-Match": created["_etag"]}, **as_json({"status": "cancelled"}))
    assert done.status_code == 200
    assert db["flexibility_requests"].find_one({})["status"] == "cancelled"


def test_no_cancel_after_gate_closure(client_as, market, insert, db):
    (stored,) = insert(
        "flexibility_requests",
        {
            **{k: v for k, v in flex_request(market["north"]).items() if k not in ("start", "gate_closure")},
            "grid_area": market["north"],
            "start": SOON,
            "end": SOON + timedelta(hours=1),
            "gate_closure": utcnow() - timedelta(minutes=1),
            "status": "open",
            "aggregator_ids": ["agg-alpha"],
        },
    )
    response = client_as("dso", dso_id=N).patch(
        f"/flexibility_requests/{stored['_id']}",
        headers={"If-Match": stored["_etag"]},
        **as_json({"status": "cancelled"}),
    )
    assert response.status_code == 409 and "gate closed" in response.json["_error"]["message"]
    assert db["flexibility_requests"].find_one({})["status"] == "open"
