"""No device sold twice across both markets (issue 17, item 4; docs/market.md,
"Orders"): a bilateral contract accepted between a bid and its clearing, one accepted
while the clearing reserves, two ticks at once, a tick racing contracts over real
HTTP with a slow store, and a clearing resumed after its ticker died."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests

from registry.market import orders
from tests.support.dso_market import AFTER_GATE, A, B, C, bid_of, clear_at_gate, flex, hold_bilaterally  # noqa: F401
from tests.test_dso_requests import SOON, when


def holders(db, device_id: str) -> set[str]:
    """Which kinds of holder hold the device in the request's window."""
    spec = {"device_id": device_id, "slot_start": {"$gte": SOON, "$lt": SOON + timedelta(hours=1)}}
    return {"order" if "order_id" in r else "contract" for r in db["reservations"].find(spec)}


def test_a_contract_accepted_after_the_bid_takes_the_device_and_the_power_goes_on(app, flex, client_as, db):
    hold_bilaterally(client_as, flex.devices["a1"])
    counts = clear_at_gate(app)
    alpha, gamma = bid_of(flex, A), bid_of(flex, C)
    assert alpha["status"] == "rejected" and "is held in the request" in alpha["rejection_reason"]
    # alpha left out before the merit order: after beta, gamma takes 2, 2, 2 and nothing in the last slot
    assert (gamma["status"], gamma["accepted_kw"]) == ("accepted", [2.0, 2.0, 2.0, 0.0])
    assert counts["orders_created"] == 2 and holders(db, flex.devices["a1"]["device_id"]) == {"contract"}


def test_a_contract_accepted_while_the_clearing_reserves_rejects_the_bid(app, flex, client_as, db, monkeypatch):
    """The check before the merit order passed; the contract won the slot after it."""
    checked = orders.held_slot
    monkeypatch.setattr(orders, "held_slot", lambda *a: None)
    hold_bilaterally(client_as, flex.devices["a2"])
    counts = clear_at_gate(app)
    monkeypatch.setattr(orders, "held_slot", checked)
    alpha = bid_of(flex, A)
    assert (
        alpha["status"] == "rejected"
        and alpha["rejection_reason"] == "a device of this bid was taken while the clearing ran"
    )
    assert counts["orders_created"] == 1 and db["orders"].count_documents({"aggregator_id": A}) == 0
    assert holders(db, flex.devices["a2"]["device_id"]) == {"contract"}
    assert holders(db, flex.devices["a1"]["device_id"]) == set()  # the order's partial hold was undone
    assert flex.dso.get(f"/flexibility_requests/{flex.request}").json["ordered_kw"] == [3.0, 3.0, 5.0, 5.0]


@pytest.mark.parametrize("latency", [False, True], ids=["direct", "slow-store"])
def test_two_ticks_at_once_clear_once(request, app, flex, db, latency):
    if latency:
        request.getfixturevalue("slow_store")
    gate = threading.Barrier(2)

    def one_tick(_):
        gate.wait()
        return clear_at_gate(app)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one_tick, range(2)))
    assert sorted(r["requests_cleared"] for r in results) == [0, 1]
    assert db["orders"].count_documents({}) == 2 and db["bids"].count_documents({"status": "submitted"}) == 0
    assert db["reservations"].count_documents({}) == 2 * 3 + 2 * 4


def test_the_tick_races_a_contract_over_http_and_one_of_them_holds_the_device(app, flex, server, token, db, slow_store):
    dev = flex.devices["a1"]
    prosumer = {"Authorization": f"Bearer {token('prosumer', account_id=dev['account_id'], aggregator_id=A)}"}
    window = {"start": when(SOON), "end": when(SOON + timedelta(hours=1))}
    body = {"device_id": dev["device_id"], **window, "direction": "down", "power_kw": 2.0, "price": 0.2}
    offer = requests.post(f"{server}/offers", headers=prosumer, json=body, timeout=30).json()
    aggregator = {"Authorization": f"Bearer {token('aggregator', aggregator_id=A)}"}
    gate = threading.Barrier(2)

    def contract():
        gate.wait()
        terms = {"aggregator_id": A, "offers": [offer["_id"]], **window}
        return requests.post(f"{server}/contracts", headers=aggregator, json=terms, timeout=60)

    def tick():
        gate.wait()
        return clear_at_gate(app)

    with ThreadPoolExecutor(2) as pool:
        answered, _ = pool.submit(contract), pool.submit(tick)
        status = answered.result().status_code
    held = holders(db, dev["device_id"])
    alpha = db["bids"].find_one({"aggregator_id": A})
    assert (status, held, alpha["status"]) in [(201, {"contract"}, "rejected"), (409, {"order"}, "accepted")]


def test_a_clearing_left_half_done_is_finished_by_a_later_tick(app, flex, db, monkeypatch):
    def dies(*args, **kwargs):
        raise SystemExit("the ticker died")

    monkeypatch.setattr(orders, "answer", dies)
    with pytest.raises(SystemExit):
        clear_at_gate(app)
    monkeypatch.undo()
    assert db["flexibility_requests"].find_one()["status"] == "clearing"
    assert clear_at_gate(app, now=AFTER_GATE + timedelta(seconds=30))["requests_cleared"] == 0  # not yet dead
    finished = clear_at_gate(app, now=AFTER_GATE + timedelta(minutes=5))
    assert finished["requests_cleared"] == 1
    assert db["orders"].count_documents({}) == 2
    assert {b["aggregator_id"]: b["status"] for b in db["bids"].find()} == {A: "accepted", B: "accepted", C: "rejected"}
