"""Offers through the API, for each role: a prosumer publishes, changes and withdraws
its own offers, refusals change nothing, and an aggregator finds open offers near a
point, in a window, by direction, sorted by price."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.conftest import as_json
from tests.factories import AGGREGATOR, new_uuid
from tests.support.market_setup import iso, market, offer_body, patch, publish, t  # noqa: F401  (fixtures)

# offers -------------------------------------------------------------------------------------


def test_prosumer_publishes_an_offer_with_copied_owners(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    got = market.prosumer_a.get(f"/offers/{offer_id}").json
    assert got["status"] == "open" and got["currency"] == "EUR"
    stored = db["offers"].find_one()
    assert stored["aggregator_id"] == AGGREGATOR and stored["location"]["coordinates"] == [2.17, 41.39]
    assert market.aggregator.get(f"/offers/{offer_id}").status_code == 200
    for foreign in (market.prosumer_b, market.other_aggregator, market.prosumer_c):
        assert foreign.get(f"/offers/{offer_id}").status_code == 404


@pytest.mark.parametrize(
    "device_key,extra,status,words",
    [
        ("b", {}, 422, "unknown device_id"),
        ("c", {}, 422, "unknown device_id"),
        ("a_off", {}, 409, "not available to the marketplace"),
        ("a", {"power_kw": 5.0}, 422, "max_capacity"),
        ("a", {"start": 4, "end": 0}, 422, "before end"),
        ("a", {"start": -48, "end": -47}, 422, "future"),
        ("a", {"status": "contracted"}, 422, "always open"),
        ("a", {"account_id": new_uuid()}, 422, None),
        ("a", {"price": -1}, 422, None),
        ("a", {"currency": "euro"}, 422, None),
        ("a", {"direction": "sideways"}, 422, None),
    ],
)
def test_offer_refusals_change_nothing(market, db, device_key, extra, status, words):
    body = offer_body(market.dev[device_key], **{k: v for k, v in extra.items() if k in ("start", "end")})
    body.update({k: v for k, v in extra.items() if k not in ("start", "end")})
    response = market.prosumer_a.post("/offers", **as_json(body))
    assert response.status_code == status, response.json
    assert words is None or words in response.json["_error"]["message"]
    assert db["offers"].count_documents({}) == 0


@pytest.mark.parametrize("role", ["aggregator", "service"])
def test_only_prosumers_and_admins_publish_offers(market, db, role):
    response = getattr(market, role).post("/offers", **as_json(offer_body(market.dev["a"])))
    assert response.status_code == 403
    assert market.admin.post("/offers", **as_json(offer_body(market.dev["a"]))).status_code == 201


def test_prosumer_changes_an_open_offer_then_withdraws_it(market):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    assert patch(market.prosumer_a, "offers", offer_id, {"price": 0.35}).status_code == 200
    assert patch(market.prosumer_a, "offers", offer_id, {"start": iso(t(1))}).status_code == 403
    assert patch(market.prosumer_a, "offers", offer_id, {"status": "expired"}).status_code == 403
    assert patch(market.prosumer_a, "offers", offer_id, {"status": "withdrawn"}).status_code == 200
    again = patch(market.prosumer_a, "offers", offer_id, {"price": 0.1})
    assert again.status_code == 409 and "only open offers" in again.json["_error"]["message"]
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["price"] == 0.35
    assert patch(market.aggregator, "offers", offer_id, {"status": "open"}).status_code == 403


# what aggregators ask ----------------------------------------------------------------------------


def query(client, resource: str, **params) -> list[dict]:
    encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    response = client.get(f"/{resource}?{urlencode(encoded)}")
    assert response.status_code == 200, response.json
    return response.json["_items"]


def test_open_offers_near_a_point_in_a_window_by_direction_sorted_by_price(market):
    ids = {
        "a_cheap": publish(market.prosumer_a, market.dev["a"], start=0, end=4, price=0.10),
        "a_dear": publish(market.prosumer_a, market.dev["a"], start=0, end=8, price=0.30),
        "a_up": publish(market.prosumer_a, market.dev["a"], direction="up", price=0.05),
        "a_late": publish(market.prosumer_a, market.dev["a"], start=5, end=8, price=0.01),
        "b_far": publish(market.prosumer_b, market.dev["b"], price=0.02),  # ~15 km away
    }
    patch(market.prosumer_a, "offers", ids["a_cheap"], {"price": 0.2})
    names = {v: k for k, v in ids.items()}
    near = {"$near": {"$geometry": {"type": "Point", "coordinates": [2.17, 41.38]}, "$maxDistance": 5000}}
    where = {
        "status": "open",
        "direction": "down",
        "location": near,
        "start": {"$lte": iso(t(1))},
        "end": {"$gte": iso(t(3))},
    }
    found = query(market.aggregator, "offers", where=where, sort="price")
    assert [names[o["_id"]] for o in found] == ["a_cheap", "a_dear"]
    within = {**where, "location": {"$geoWithin": {"$centerSphere": [[2.17, 41.38], 20 / 6378.1]}}}
    found = query(market.aggregator, "offers", where=within, sort="-price")
    assert [names[o["_id"]] for o in found] == ["a_dear", "a_cheap", "b_far"]
    assert query(market.other_aggregator, "offers", where=within) == []
