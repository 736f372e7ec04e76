"""Without transactions a contract's writes still succeed or fail together: a refused
claim undoes exactly its own reservations, and what a request killed between writes
leaves (orphan reservations, a claimed offer) is repaired by the tick once the grace
period is over, never a live contract's."""

from __future__ import annotations

import pytest
from bson import ObjectId

from tests.conftest import as_json
from tests.support.killed_workers import GRACE, WorkerKilled, held_by, kill, later, tick
from tests.support.market_setup import contract_body, market, patch, publish, state  # noqa: F401  (fixtures)

# --- the embedded path: exact undo ------------------------------------------------------------


def test_a_refused_claim_undoes_only_its_own_reservations(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    other = market.aggregator.post(
        "/contracts", **as_json(contract_body([publish(market.prosumer_b, market.dev["b"])]))
    ).json["_id"]

    def withdrawn_meanwhile() -> None:  # between our reserve and our claim
        db["offers"].update_one({"_id": ObjectId(offer_id)}, {"$set": {"status": "withdrawn"}})

    app.extensions["faults"] = {"after:reserve": withdrawn_meanwhile}
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    assert response.status_code == 409 and "withdrawn meanwhile" in response.json["_error"]["message"]
    assert held_by(db) == {ObjectId(other): 4}
    assert db["contracts"].count_documents({}) == 1


# --- a worker killed between writes, repaired by the tick --------------------------------------


@pytest.mark.parametrize("fault", ["after:reserve", "after:claim_offers"])
def test_a_killed_request_leaves_orphans_the_tick_repairs(app, market, db, fault):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    app.extensions["faults"] = {fault: kill}
    with pytest.raises(WorkerKilled):
        market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    app.extensions["faults"] = {}
    assert db["contracts"].count_documents({}) == 0 and sum(held_by(db).values()) == 4
    claimed = fault == "after:claim_offers"
    assert db["offers"].find_one()["status"] == ("contracted" if claimed else "open")

    soon = tick(app, later(GRACE - 10))  # the request might still be running: hands off
    assert (soon["orphan_reservations_deleted"], soon["orphan_offers_reopened"]) == (0, 0)
    repaired = tick(app, later())
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (4, int(claimed))
    assert db["reservations"].count_documents({}) == 0
    offer = market.prosumer_a.get(f"/offers/{offer_id}").json
    assert (offer["status"], offer.get("contract_id")) == ("open", None)
    assert market.aggregator.post("/contracts", **as_json(contract_body([offer_id]))).status_code == 201


def test_a_cancel_killed_before_freeing_the_slots_is_repaired(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    contract_id = market.aggregator.post("/contracts", **as_json(contract_body([offer_id]))).json["_id"]
    app.extensions["faults"] = {"after:write": kill}
    with pytest.raises(WorkerKilled):
        patch(market.aggregator, "contracts", contract_id, {"status": "cancelled"})
    app.extensions["faults"] = {}
    assert db["contracts"].find_one()["status"] == "cancelled" and sum(held_by(db).values()) == 4
    repaired = tick(app, later())
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (4, 1)
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["status"] == "open"


def test_the_tick_leaves_live_contracts_alone(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    before = state(db)
    repaired = tick(app, later())
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (0, 0)
    assert state(db)[2] == before[2] and db["offers"].find_one()["status"] == "contracted"
