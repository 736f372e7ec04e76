"""Clearing at gate closure by the tick, and its orders (issue 17, item 4; docs/market.md,
"Orders"): the known answer of tests/support/dso_market.py over the real API, both
pricings, ACK / NACK, scoping per role, reservations, the audit trail, and a tick run
twice (or before the gate) changing nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from registry import create_app
from tests.conftest import as_json
from tests.support.dso_market import AFTER_GATE, GATE, A, B, C, bid_of, clear_at_gate, flex  # noqa: F401
from tests.test_dso_areas import N, S
from tests.test_dso_requests import SOON


def orders_by_aggregator(client) -> dict[str, dict]:
    response = client.get("/orders")
    assert response.status_code == 200, response.json
    return {o["aggregator_id"]: o for o in response.json["_items"]}


def test_the_tick_clears_the_request_once_its_gate_has_closed(app, flex, db):
    assert clear_at_gate(app, now=GATE - timedelta(minutes=1))["requests_cleared"] == 0
    assert db["orders"].count_documents({}) == 0
    counts = clear_at_gate(app)
    assert (counts["requests_cleared"], counts["orders_created"]) == (1, 2)
    assert (counts["bids_accepted"], counts["bids_rejected"]) == (2, 1)
    request = flex.dso.get(f"/flexibility_requests/{flex.request}").json
    assert request["status"] == "cleared" and request["ordered_kw"] == [5.0, 7.0, 7.0, 5.0]
    assert request["pricing"] == "pay_as_bid"


def test_known_answer_pay_as_bid_with_ack_and_nack(app, flex):
    clear_at_gate(app)
    alpha, beta, gamma = (bid_of(flex, x) for x in (A, B, C))
    assert (alpha["status"], alpha["accepted_kw"], alpha["awarded_price"]) == ("accepted", [2.0, 4.0, 2.0, 0.0], 0.3)
    assert (beta["status"], beta["accepted_kw"], beta["awarded_price"]) == ("accepted", [3.0, 3.0, 5.0, 5.0], 0.25)
    assert gamma["status"] == "rejected" and "outbid" in gamma["rejection_reason"] and "order" not in gamma
    orders = orders_by_aggregator(flex.aggregators[A])
    assert list(orders) == [A] and orders[A]["_id"] == alpha["order"]
    order = orders[A]
    assert (order["power_kw"], order["price"], order["status"], order["dso_id"]) == (
        [2.0, 4.0, 2.0, 0.0],
        0.3,
        "accepted",
        N,
    )
    assert order["device_ids"] == sorted(flex.devices[k]["device_id"] for k in ("a1", "a2"))
    assert orders_by_aggregator(flex.aggregators[C]) == {}


def test_uniform_pricing_pays_every_winner_the_marginal_price(app, flex):
    app.config["CLEARING_PRICING"] = "uniform"
    clear_at_gate(app)
    assert [bid_of(flex, x)["awarded_price"] for x in (A, B)] == [0.3, 0.3]
    assert {o["price"] for o in orders_by_aggregator(flex.dso).values()} == {0.3}


def test_an_unknown_pricing_stops_the_start(instance_path):
    with pytest.raises(ValueError, match="CLEARING_PRICING"):
        create_app({"INSTANCE_PATH": instance_path, "TESTING": True, "CLEARING_PRICING": "cheapest"})


def test_orders_reserve_exactly_the_accepted_slots(app, flex, db):
    clear_at_gate(app)
    held = {(r["device_id"], r["slot_start"]) for r in db["reservations"].find({"order_id": {"$exists": True}})}
    slots = [SOON + timedelta(minutes=15 * i) for i in range(4)]
    dev = {k: d["device_id"] for k, d in flex.devices.items()}
    expected = {(dev[k], s) for k in ("a1", "a2") for s in slots[:3]} | {
        (dev[k], s) for k in ("b1", "b2") for s in slots
    }
    assert held == expected


def test_who_sees_which_order(app, flex, client_as):
    clear_at_gate(app)
    seen = orders_by_aggregator(flex.dso)
    assert set(seen) == {A, B} and all("device_ids" not in o and "account_ids" not in o for o in seen.values())
    assert flex.devices["a1"]["device_id"] not in json.dumps(seen)
    assert client_as("dso", dso_id=S).get("/orders").json["_meta"]["total"] == 0
    owner = flex.devices["b1"]
    prosumer = client_as("prosumer", account_id=owner["account_id"], aggregator_id=B)
    mine = prosumer.get("/orders").json["_items"]
    assert [o["aggregator_id"] for o in mine] == [B] and "device_ids" not in mine[0]
    outsider = client_as("prosumer", account_id=flex.devices["c1"]["account_id"], aggregator_id=C)
    assert outsider.get("/orders").json["_meta"]["total"] == 0
    assert outsider.get(f"/orders/{seen[B]['_id']}").status_code == 404
    assert flex.aggregators[C].get(f"/orders/{seen[A]['_id']}").status_code == 404
    assert prosumer.get("/orders?where=" + json.dumps({"device_ids": owner["device_id"]})).status_code == 400


@pytest.mark.parametrize("role", ["admin", "service", "aggregator", "dso", "prosumer"])
def test_orders_are_the_clearings_to_write(app, flex, client_as, db, role):
    clear_at_gate(app)
    order = db["orders"].find_one({"aggregator_id": A})
    ids = {
        "aggregator": {"aggregator_id": A},
        "dso": {"dso_id": N},
        "prosumer": {"account_id": "x", "aggregator_id": A},
    }
    client = client_as(role, **ids.get(role, {}))
    body = {"request": flex.request, "aggregator_id": A, "power_kw": [1.0]}
    assert client.post("/orders", **as_json(body)).status_code in (403, 405)
    patched = client.patch(f"/orders/{order['_id']}", headers={"If-Match": order["_etag"]}, **as_json({"price": 9.0}))
    assert patched.status_code in (403, 405)
    assert client.delete(f"/orders/{order['_id']}", headers={"If-Match": order["_etag"]}).status_code in (403, 405)
    assert db["orders"].find_one({"_id": order["_id"]})["price"] == 0.3


def test_the_clearing_is_audited_as_the_system(app, flex, db):
    clear_at_gate(app)
    entries = list(
        db["oplog"].find({"r": {"$in": ["orders", "bids", "flexibility_requests"]}, "u": {"$regex": "^system"}})
    )
    moves = sorted((e["r"], e["o"]) for e in entries)
    assert moves.count(("orders", "POST")) == 2 and moves.count(("bids", "PATCH")) == 3
    assert moves.count(("flexibility_requests", "PATCH")) == 2  # open -> clearing -> cleared


def test_a_second_tick_changes_nothing(app, flex, db):
    clear_at_gate(app)
    before = sorted(
        json.dumps(d, default=str, sort_keys=True) for n in ("orders", "bids", "reservations") for d in db[n].find()
    )
    again = clear_at_gate(app, now=AFTER_GATE + timedelta(minutes=5))
    assert (again["requests_cleared"], again["orders_created"], again["bids_accepted"], again["bids_rejected"]) == (
        0,
        0,
        0,
        0,
    )
    after = sorted(
        json.dumps(d, default=str, sort_keys=True) for n in ("orders", "bids", "reservations") for d in db[n].find()
    )
    assert after == before


def test_after_the_gate_bids_and_requests_are_frozen(app, flex):
    clear_at_gate(app)
    client = flex.aggregators[C]
    etag = bid_of(flex, C)["_etag"]
    response = client.patch(f"/bids/{flex.bids[C]}", headers={"If-Match": etag}, **as_json({"status": "submitted"}))
    assert response.status_code == 409


def test_orders_go_active_then_complete_and_free_their_slots(app, flex, db):
    clear_at_gate(app)
    assert clear_at_gate(app, now=SOON)["orders_active"] == 2
    done = clear_at_gate(app, now=SOON + timedelta(hours=1))
    assert done["orders_completed"] == 2
    assert db["reservations"].count_documents({"order_id": {"$exists": True}}) == 0
    assert {o["status"] for o in orders_by_aggregator(flex.dso).values()} == {"completed"}


@pytest.mark.parametrize(
    "send,expected",
    [
        (lambda c: c.post("/orders", data={"price": "1"}), {405, 415}),
        (lambda c: c.post("/orders", data=b'{"price": NaN}', content_type="application/json"), {400, 405}),
        (lambda c: c.get("/orders?where=" + json.dumps({"start": {"$gt": "tomorrow"}})), {400}),
        (lambda c: c.get("/orders?where=" + json.dumps({"power_kw": {"$where": "1"}})), {400}),
        (lambda c: c.get("/orders/not-an-id"), {404}),
    ],
)
def test_bad_requests_about_orders_are_4xx(app, flex, client_as, send, expected):
    clear_at_gate(app)
    assert send(client_as("aggregator", aggregator_id=A)).status_code in expected
