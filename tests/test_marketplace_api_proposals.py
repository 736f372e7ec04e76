"""Proposals through the API: an aggregator proposes terms for a prosumer's device,
the prosumer accepts or rejects; acceptance is revalidated, loses to a contract
accepted meanwhile or an ETag race without keeping any slot, and refusals change
nothing."""

from __future__ import annotations

import pytest

from tests.support.market_setup import contract_offer, market, patch, propose, state  # noqa: F401  (fixtures)

# proposals -------------------------------------------------------------------------------------


def test_prosumer_accepts_a_proposal(market, db):
    created = propose(market)
    assert created.status_code == 201, created.json
    contract_id = created.json["_id"]
    assert market.prosumer_a.get(f"/contracts/{contract_id}").json["status"] == "proposed"
    assert db["reservations"].count_documents({}) == 0
    assert patch(market.aggregator, "contracts", contract_id, {"status": "accepted"}).status_code == 403
    assert (
        patch(market.prosumer_b, "contracts", contract_id, {"status": "accepted"}, reader=market.admin).status_code
        == 404
    )
    assert patch(market.prosumer_a, "contracts", contract_id, {"status": "accepted"}).status_code == 200
    assert db["reservations"].count_documents({"contract_id": db["contracts"].find_one()["_id"]}) == 4


def test_prosumer_rejects_a_proposal(market, db):
    contract_id = propose(market).json["_id"]
    assert patch(market.prosumer_a, "contracts", contract_id, {"status": "rejected"}).status_code == 200
    assert db["contracts"].find_one()["status"] == "rejected"
    assert db["reservations"].count_documents({}) == 0


def test_acceptance_is_revalidated_and_refusal_changes_nothing(market, db):
    contract_id = propose(market).json["_id"]
    db["devices"].update_one({"device_id": market.dev["a"]}, {"$set": {"marketplace_availability": "no"}})
    before = state(db)
    response = patch(market.prosumer_a, "contracts", contract_id, {"status": "accepted"})
    assert response.status_code == 409 and "marketplace" in response.json["_error"]["message"]
    assert state(db) == before


def test_acceptance_loses_to_a_contract_accepted_meanwhile(market, db):
    contract_id = propose(market, start=1, end=2).json["_id"]
    contract_offer(market, start=1.5, end=2.5)
    before = state(db)
    response = patch(market.prosumer_a, "contracts", contract_id, {"status": "accepted"})
    assert response.status_code == 409 and "already held" in response.json["_error"]["message"]
    assert state(db) == before


def test_acceptance_losing_an_etag_race_releases_its_slots(app, market, db, monkeypatch):
    """The slots are held before the compare-and-set on the ETag; if that loses
    to a concurrent change (412), exactly this request's hold is undone."""
    contract_id = propose(market).json["_id"]

    def changed_meanwhile(*args, **kwargs):
        assert db["reservations"].count_documents({}) == 4  # held, then the write loses
        raise app.data.OriginalChangedError()

    monkeypatch.setattr(app.data, "_update_if_unchanged", changed_meanwhile)
    response = patch(market.prosumer_a, "contracts", contract_id, {"status": "accepted"})
    assert response.status_code == 412
    assert db["reservations"].count_documents({}) == 0
    assert db["contracts"].find_one()["status"] == "proposed"


@pytest.mark.parametrize("device_key,status,words", [("c", 422, "unknown device_id"), ("a_off", 409, "marketplace")])
def test_proposal_refusals(market, db, device_key, status, words):
    response = propose(market, device_key)
    assert response.status_code == status and words in response.json["_error"]["message"]
    assert db["contracts"].count_documents({}) == 0


def test_proposal_on_held_slots_is_409(market, db):
    contract_offer(market)
    response = propose(market, start=1.75, end=3)
    assert response.status_code == 409 and "already contracted" in response.json["_error"]["message"]
