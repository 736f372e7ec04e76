"""A review of the clearing and its orders (issue 17, item 4) as regression tests:
each failed before its fix (docs/market.md, "Bids", "Clearing", "Orders")."""

from __future__ import annotations

import json

from registry.market import flex_rules, orders
from tests.conftest import as_json
from tests.support.dso_market import A, B, C, bid_of, clear_at_gate, flex, hold_bilaterally  # noqa: F401


def test_a_dso_never_learns_a_bids_device_ids_through_its_rejection_reason(app, flex, client_as):
    """docs/market.md: the DSO reads the bids to its requests *without device_ids* ("a
    device's identity is not the DSO's to know before an order needs it"). The NACK of a
    bid whose device is held writes the device_id into rejection_reason, which the DSO reads."""
    hold_bilaterally(client_as, flex.devices["a1"])
    clear_at_gate(app)
    seen = flex.dso.get(f"/bids/{flex.bids[A]}").json
    assert "device_ids" not in seen
    assert flex.devices["a1"]["device_id"] not in json.dumps(seen)
    listed = flex.dso.get("/bids").json["_items"]
    assert flex.devices["a1"]["device_id"] not in json.dumps(listed)


def test_a_device_taken_off_the_marketplace_after_its_bid_is_not_ordered(app, flex, client_as, db):
    """A bid may only name devices on the marketplace (marketplace_availability yes); a
    prosumer who takes its device off the marketplace before the gate closes still has it
    ordered and its slots held by the order (the clearing checks only reservations)."""
    dev = flex.devices["a1"]
    prosumer = client_as("prosumer", account_id=dev["account_id"], aggregator_id=A)
    stored = prosumer.get(f"/devices/{dev['device_id']}").json
    response = prosumer.patch(
        f"/devices/{dev['device_id']}",
        headers={"If-Match": stored["_etag"]},
        **as_json({"marketplace_availability": "no"}),
    )
    assert response.status_code == 200, response.json
    clear_at_gate(app)
    held = db["reservations"].count_documents({"device_id": dev["device_id"], "order_id": {"$exists": True}})
    assert held == 0


def test_a_resumed_clearing_makes_no_order_for_a_bid_it_already_rejected(app, flex, client_as, db, monkeypatch):
    """docs/market.md: a clearing left half-done is finished by a later tick, and "a bid
    already answered stays as it is". Alpha is NACKed (its device held by a contract), the
    ticker dies before its first order, the contract is cancelled meanwhile: the resumed
    clearing runs the merit order again *with* the NACKed alpha, makes an order for it
    (holding its devices) and leaves the bid rejected with no `order`."""
    from datetime import timedelta

    from tests.support.dso_market import AFTER_GATE

    contract = hold_bilaterally(client_as, flex.devices["a1"])
    real = orders.make_order

    def dies(*args, **kwargs):
        raise SystemExit("the ticker died")

    monkeypatch.setattr(orders, "make_order", dies)
    try:
        clear_at_gate(app)
    except SystemExit:
        pass
    monkeypatch.setattr(orders, "make_order", real)
    assert db["bids"].find_one({"aggregator_id": A})["status"] == "rejected"
    aggregator = flex.aggregators[A]
    etag = aggregator.get(f"/contracts/{contract}").json["_etag"]
    cancelled = aggregator.patch(
        f"/contracts/{contract}", headers={"If-Match": etag}, **as_json({"status": "cancelled"})
    )
    assert cancelled.status_code == 200, cancelled.json
    clear_at_gate(app, now=AFTER_GATE + timedelta(minutes=5))
    alpha = db["bids"].find_one({"aggregator_id": A})
    made = db["orders"].find_one({"bid": alpha["_id"]})
    assert made is None or alpha["status"] == "accepted", (
        alpha["status"],
        alpha.get("rejection_reason"),
        made["power_kw"],
    )


def test_a_resumed_clearing_never_orders_more_than_requested(app, flex, client_as, db, monkeypatch):
    """The first run NACKs alpha (device held), orders beta (3, 3, 5, 5) and gamma (2, 2, 2, 0)
    and dies before marking the request cleared; the contract is cancelled; the resumed
    clearing re-runs the merit order with alpha, orders it (2, 4, 2, 0) as well, keeps
    gamma's order: 7, 9, 9, 5 kW ordered of 5, 7.5, 7.5, 5 requested, while the request's
    ordered_kw says 5, 7, 7, 5."""
    from datetime import timedelta

    from registry.market import reservations
    from tests.support.dso_market import AFTER_GATE

    contract = hold_bilaterally(client_as, flex.devices["a1"])
    real_flip = reservations.flip

    def dies_at_cleared(db_, resource, doc, target, *args, **kwargs):
        if resource == "flexibility_requests" and target == "cleared":
            raise SystemExit("the ticker died")
        return real_flip(db_, resource, doc, target, *args, **kwargs)

    monkeypatch.setattr(reservations, "flip", dies_at_cleared)
    try:
        clear_at_gate(app)
    except SystemExit:
        pass
    monkeypatch.setattr(reservations, "flip", real_flip)
    aggregator = flex.aggregators[A]
    etag = aggregator.get(f"/contracts/{contract}").json["_etag"]
    cancelled = aggregator.patch(
        f"/contracts/{contract}", headers={"If-Match": etag}, **as_json({"status": "cancelled"})
    )
    assert cancelled.status_code == 200, cancelled.json
    clear_at_gate(app, now=AFTER_GATE + timedelta(minutes=5))
    request = db["flexibility_requests"].find_one()
    total = [0.0] * len(request["power_kw"])
    for order in db["orders"].find({"request": request["_id"]}):
        total = [t + p for t, p in zip(total, order["power_kw"])]
    assert all(t <= w + 1e-9 for t, w in zip(total, request["power_kw"])), (total, request["power_kw"])
    assert total == request["ordered_kw"], (total, request["ordered_kw"])


def test_an_admin_cannot_reshape_an_open_request_past_its_rules(app, flex, client_as, db):
    """docs/market.md, "Flexibility requests": the registry never holds a request whose
    gate closure is not strictly before its start, or whose end does not follow from its
    slots. An admin's PATCH skips every rule (only the status move is checked): here
    power_kw grows to 6 slots (end stays 4 slots later), start moves to the end and the gate
    closure onto start (start == end: an order's reservations would cover no slot)."""
    admin = client_as("admin")
    request = admin.get(f"/flexibility_requests/{flex.request}").json
    stored = db["flexibility_requests"].find_one()
    changes = {
        "power_kw": [5.0, 7.5, 7.5, 5.0, 5.0, 5.0],
        "start": request["end"],
        "gate_closure": request["end"],
    }
    response = admin.patch(
        f"/flexibility_requests/{flex.request}", headers={"If-Match": request["_etag"]}, **as_json(changes)
    )
    after = db["flexibility_requests"].find_one()
    assert response.status_code in (403, 409, 422), (response.status_code, after["start"], after["end"])
    assert after["start"] == stored["start"]


def test_an_order_over_devices_behind_two_vens_asks_for_its_power_once_not_per_ven():
    """docs/market.md, "Activation": one event per VEN behind the order's devices, with
    "minus the accepted kW" per slot. An order is one aggregator's bid over several
    devices (usually several households): each VEN is sent the *whole* order's power, so
    an order of 4 kW over two households' VENs asks for 8 kW of load shed in total."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from bson import ObjectId

    from registry.openadr.contracts import ContractEvents

    class Server:
        def __init__(self):
            self.events = {}

        def add_raw_event(self, ven_id, event, callback):
            self.events[ven_id] = event
            return event.event_descriptor.event_id

    start = datetime(2030, 1, 15, 16, tzinfo=UTC)
    order = {
        "_id": ObjectId(),
        "direction": "down",
        "start": start,
        "end": start + timedelta(minutes=15),
        "power_kw": [4.0],
        "device_ids": ["dev-1", "dev-2"],
        "status": "accepted",
    }
    server = Server()
    events = ContractEvents(None, server, {"dev-1": ("ven-1", "r1"), "dev-2": ("ven-2", "r2")}, "ctx")
    asyncio.run(events.activate(order, ["dev-1", "dev-2"], answered=False))
    shed = 0.0
    for event in server.events.values():
        [dispatch] = [s for s in event.event_signals if s.signal_name == "LOAD_DISPATCH"]
        shed += sum(i.signal_payload for i in dispatch.intervals)
    assert set(server.events) == {"ven-1", "ven-2"}
    assert abs(shed) <= 4.0 + 1e-9, f"the VENs are asked for {-shed} kW of an order of 4 kW"


def _withdraw_or_revise_between_read_and_answer(monkeypatch, flex, changes):
    """The bid's PATCH passed its hook before the gate (request open) and its write
    lands after the tick read the bids (a slow store): simulated deterministically by
    making the PATCH while the tick runs the merit order over what it read."""
    real_clear = orders.clear
    client = flex.aggregators[A]

    def clear_while_a_patch_lands(*args, **kwargs):
        etag = bid_of(flex, A)["_etag"]
        with monkeypatch.context() as passed:  # the hook's gate check ran before the claim
            passed.setattr(flex_rules, "check_gate_open", lambda *a: None)
            response = client.patch(f"/bids/{flex.bids[A]}", headers={"If-Match": etag}, **as_json(changes))
        assert response.status_code == 200, response.json
        return real_clear(*args, **kwargs)

    monkeypatch.setattr(orders, "clear", clear_while_a_patch_lands)


def test_a_bid_withdrawn_while_the_clearing_runs_gets_no_order(app, flex, db, monkeypatch):
    """A withdrawal the API answered 200 must not be followed by an order holding the
    bid's devices (the order is made before the ACK, whose compare-and-set then fails
    quietly: the bid stays withdrawn, with no `order`, and the order stands)."""
    _withdraw_or_revise_between_read_and_answer(monkeypatch, flex, {"status": "withdrawn"})
    clear_at_gate(app)
    alpha = db["bids"].find_one({"aggregator_id": A})
    made = db["orders"].find_one({"aggregator_id": A})
    assert not (alpha["status"] == "withdrawn" and made is not None), (alpha["status"], made and made["power_kw"])


def test_the_ack_never_lands_on_terms_the_clearing_did_not_see(app, flex, db, monkeypatch):
    """A revision landing during the clearing: the ACK (compare-and-set on the status
    only) is written onto the revised bid, which then reads accepted_kw above its own
    power_kw (2, 4, 2, 0 accepted of 1, 1, 1, 1 offered)."""
    _withdraw_or_revise_between_read_and_answer(monkeypatch, flex, {"power_kw": [1.0, 1.0, 1.0, 1.0]})
    clear_at_gate(app)
    alpha = db["bids"].find_one({"aggregator_id": A})
    if alpha["status"] == "accepted":
        assert all(a <= p + 1e-9 for a, p in zip(alpha["accepted_kw"], alpha["power_kw"])), (
            alpha["accepted_kw"],
            alpha["power_kw"],
        )
