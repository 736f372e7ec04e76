"""The registry's own writes (the clock, claimed and reopened offers, settlements)
go through one path: audited in the oplog as the system, with a new ETag, and
firing Eve's update events, as an API PATCH does (registry/market/system_writes.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from bson import ObjectId
from eve.utils import document_etag

from registry.hooks import access
from registry.market.lifecycle import advance_lifecycle
from tests.conftest import as_json
from tests.factories import AGGREGATOR
from tests.support.killed_workers import WorkerKilled, kill, later, tick
from tests.support.market_setup import (  # noqa: F401 - market is a fixture
    FMT,
    contract_body,
    contract_offer,
    history_and_window,
    iso,
    market,
    patch,
    publish,
    t,
)


def oplog(market, resource: str, item_id: str) -> list[dict[str, Any]]:
    """The changes to one document, as an admin reads them at /oplog, oldest first."""
    items = market.admin.get("/oplog?max_results=1000").json["_items"]
    mine = [e for e in items if (e["r"], e["i"], e["o"]) == (resource, item_id, "PATCH")]
    return sorted(mine, key=lambda e: (e["_updated"], e["_id"]))


def system_entry(market, resource: str, item_id: str, status: str) -> dict[str, Any]:
    [entry] = [e for e in oplog(market, resource, item_id) if e["c"].get("status") == status]
    return entry


def etag_of(client, resource: str, item_id: str) -> str:
    return client.get(f"/{resource}/{item_id}").json["_etag"]


def advice_keys(db, account_id: str) -> set[str]:
    return {k for j in db["jobs"].find({"kind": "prosumer_advice", "subject": account_id}) for k in j["input_keys"]}


def account_of(db, device_id: str) -> str:
    return db["devices"].find_one({"device_id": device_id})["account_id"]


def spy(app, event: str) -> list[tuple[dict, dict, Any]]:
    """Record (updates, original, the principal the hooks see) for an Eve update event."""
    calls: list[tuple[dict, dict, Any]] = []
    getattr(app, event).__iadd__(lambda updates, original: calls.append((updates, original, access.principal())))
    return calls


def test_the_clock_activates_completes_and_settles_through_the_audited_path(app, market, insert, db):
    offer_id, contract_id = contract_offer(market, price=0.4)
    account = account_of(db, market.dev["a"])
    insert("forecasts", {"kind": "consumption", "account_id": account, "aggregator_id": AGGREGATOR})
    market_start = t(1)
    insert("measurements", *history_and_window(market.dev["a"], market_start, [1.0, 2.0, 3.0, 1.0]))
    stale = etag_of(market.service, "contracts", contract_id)
    stored = db["contracts"].find_one({"_id": ObjectId(contract_id)})
    assert not any(k.endswith(f"/contract:{contract_id}@active") for k in advice_keys(db, account))
    updated = spy(app, "on_updated_contracts")

    with app.app_context():
        assert advance_lifecycle(market_start)["contracts_active"] == 1
        expected_etag = document_etag({**stored, "status": "active", "_updated": market_start})

    # on_updated fired once, with Eve's (updates, original), seeing no caller
    assert [(u["status"], o["status"], who) for u, o, who in updated] == [("active", "accepted", None)]
    entry = system_entry(market, "contracts", contract_id, "active")
    assert (entry["u"], entry["o"], entry["ip"], entry["c"]) == ("system", "PATCH", None, {"status": "active"})
    assert entry["_updated"] == entry["_created"] == market_start.strftime(FMT)
    fresh = etag_of(market.service, "contracts", contract_id)
    assert fresh == expected_etag != stale  # Eve's ETag of the original plus the update
    answer = {"ven_response": {"opt": "optIn", "event_id": "ev-1", "at": iso(t(1))}}
    late = market.service.patch(f"/contracts/{contract_id}", headers={"If-Match": stale}, **as_json(answer))
    assert late.status_code == 412
    on_time = market.service.patch(f"/contracts/{contract_id}", headers={"If-Match": fresh}, **as_json(answer))
    assert on_time.status_code == 200
    assert updated[0][0]["_etag"] == fresh
    assert updated[1][2].role == "service"  # an API write's hooks see its caller, as before
    # the advice job was asked for again, for the contract gone active
    assert any(k.endswith(f"/contract:{contract_id}@active") for k in advice_keys(db, account))

    with app.app_context():
        assert advance_lifecycle(t(2))["contracts_completed"] == 1
    assert system_entry(market, "contracts", contract_id, "completed")["c"] == {"status": "completed"}
    assert db["reservations"].count_documents({}) == 0  # freed by the marketplace hook's closing step

    with app.app_context():
        assert advance_lifecycle(t(2.5))["contracts_settled"] == 1
    settled = system_entry(market, "contracts", contract_id, "settled")
    assert settled["u"] == "system" and settled["c"]["settlement_error"] is None
    # baseline 3 kW; measured 1, 2, 3, 1 → down 2, 1, 0, 2 kW → 1.25 of 2 kWh at 0.40 €/kWh, penalty 0.75 kWh
    assert (settled["c"]["settlement"]["payment"], settled["c"]["settlement"]["penalty"]) == (0.5, 0.45)
    assert [u.get("status") for u, _, _ in updated] == ["active", None, "completed", "settled"]
    assert [e["c"].get("status") for e in oplog(market, "contracts", contract_id)] == [
        None,  # the service's ven_response
        "active",
        "completed",
        "settled",
    ]
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["status"] == "contracted"


def test_an_expired_offer_is_audited_and_its_old_etag_is_refused(app, market):
    offer_id = publish(market.prosumer_b, market.dev["b"], start=0, end=1)
    stale = etag_of(market.prosumer_b, "offers", offer_id)
    updated = spy(app, "on_updated_offers")
    with app.app_context():
        assert advance_lifecycle(t(1))["offers_expired"] == 1

    entry = system_entry(market, "offers", offer_id, "expired")
    assert (entry["u"], entry["c"], entry["_updated"]) == ("system", {"status": "expired"}, t(1).strftime(FMT))
    fresh = etag_of(market.prosumer_b, "offers", offer_id)
    assert fresh != stale
    price = as_json({"price": 0.3})
    assert market.prosumer_b.patch(f"/offers/{offer_id}", headers={"If-Match": stale}, **price).status_code == 412
    refused = market.prosumer_b.patch(f"/offers/{offer_id}", headers={"If-Match": fresh}, **price)
    assert refused.status_code == 409 and "expired" in refused.json["_error"]["message"]  # past the ETag check
    assert [(u["status"], o["status"], u["_etag"]) for u, o, _ in updated] == [("expired", "open", fresh)]


def test_an_offer_taken_and_reopened_is_audited_as_the_system_for_the_request(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    published = etag_of(market.prosumer_a, "offers", offer_id)
    updated = spy(app, "on_updated_offers")
    stored_when_fired: list[int] = []
    app.on_updated_offers += lambda updates, original: stored_when_fired.append(db["contracts"].count_documents({}))

    created = market.aggregator.post(
        "/contracts", headers={"X-Request-ID": "take-1"}, **as_json(contract_body([offer_id]))
    )
    assert created.status_code == 201
    contract_id = created.json["_id"]
    taken = system_entry(market, "offers", offer_id, "contracted")
    assert (taken["u"], taken["ip"], taken["c"]) == (
        "system:take-1",
        "127.0.0.1",
        {"status": "contracted", "contract_id": contract_id},
    )
    assert stored_when_fired == [1]  # on_updated waited for the contract's own write
    contracted = etag_of(market.prosumer_a, "offers", offer_id)
    assert contracted != published

    cancel = market.aggregator.patch(
        f"/contracts/{contract_id}",
        headers={"If-Match": etag_of(market.aggregator, "contracts", contract_id), "X-Request-ID": "cancel-1"},
        **as_json({"status": "cancelled"}),
    )
    assert cancel.status_code == 200 and cancel.json["_status"] == "OK"
    reopened = system_entry(market, "offers", offer_id, "open")
    assert (reopened["u"], reopened["c"]) == ("system:cancel-1", {"status": "open", "contract_id": None})
    [by_caller] = oplog(market, "contracts", contract_id)  # the cancel itself is the aggregator's
    assert by_caller["u"].startswith("aggregator:") and by_caller["c"]["status"] == "cancelled"
    assert [(u["status"], o["status"], who) for u, o, who in updated] == [
        ("contracted", "open", None),
        ("open", "contracted", None),
    ]

    price = as_json({"price": 0.25})
    for old in (published, contracted):
        assert market.prosumer_a.patch(f"/offers/{offer_id}", headers={"If-Match": old}, **price).status_code == 412
    current = etag_of(market.prosumer_a, "offers", offer_id)
    assert market.prosumer_a.patch(f"/offers/{offer_id}", headers={"If-Match": current}, **price).status_code == 200
    # what the system may do, a caller still may not
    taking = patch(market.prosumer_a, "offers", offer_id, {"status": "contracted"})
    assert taking.status_code == 403 and "a prosumer may not move" in taking.json["_error"]["message"]


def test_an_unsettleable_contract_is_audited_once_per_check(app, market):
    _, contract_id = contract_offer(market)
    with app.app_context():
        assert advance_lifecycle(t(3))["contracts_unsettled"] == 1
        assert advance_lifecycle(t(3.5))["contracts_unsettled"] == 0  # retried hourly
    checks = [e for e in oplog(market, "contracts", contract_id) if "settlement_error" in e["c"]]
    assert len(checks) == 1 and checks[0]["u"] == "system"
    assert "comparable day" in checks[0]["c"]["settlement_error"]
    assert checks[0]["c"]["settlement_checked_at"] == t(3).strftime(FMT)


def test_an_orphan_offer_reopened_by_the_tick_is_audited(app, market):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    app.extensions["faults"] = {"after:claim_offers": kill}
    with pytest.raises(WorkerKilled):
        market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    app.extensions["faults"] = {}
    claimed = system_entry(market, "offers", offer_id, "contracted")  # written before the kill
    assert tick(app, later())["orphan_offers_reopened"] == 1
    reopened = system_entry(market, "offers", offer_id, "open")
    assert (reopened["u"], reopened["c"]) == ("system", {"status": "open", "contract_id": None})
    assert reopened["c"]["contract_id"] is None and claimed["c"]["contract_id"] is not None


def test_racing_ticks_activate_once_and_log_once(app, market, request):
    _, contract_id = contract_offer(market)
    racers = 3
    both_read = threading.Barrier(racers, timeout=30)

    def meet(updates: dict, original: dict) -> None:
        if updates.get("status") == "active":
            both_read.wait()  # every tick read the contract as accepted before any writes

    app.on_update_contracts += meet
    updated = spy(app, "on_updated_contracts")
    request.getfixturevalue("slow_store")
    start = threading.Barrier(racers)

    def run_tick(i: int) -> dict[str, int]:
        start.wait()
        return advance_lifecycle(t(1 + i / 60), app=app)  # workers' clocks differ: so do their updates

    with ThreadPoolExecutor(racers) as pool:
        counts = list(pool.map(run_tick, range(racers)))

    assert sorted(c["contracts_active"] for c in counts) == [0] * (racers - 1) + [1]
    assert [e["c"] for e in oplog(market, "contracts", contract_id)] == [{"status": "active"}]
    assert [u["status"] for u, _, _ in updated] == ["active"]
    assert market.aggregator.get(f"/contracts/{contract_id}").json["status"] == "active"
