"""Idempotency-Key retries of POST /offers and /contracts: a retry is the same offer or
contract, the same key for another body is 422, malformed keys are 400, a refused
request releases its key, and a retry after a killed request replays the stored
contract or, once the first attempt is surely dead, takes over."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import as_json
from tests.support.killed_workers import WorkerKilled, held_by, kill
from tests.support.market_setup import contract_body, market, publish, state  # noqa: F401  (fixtures)

# --- Idempotency-Key ---------------------------------------------------------------------------


def post(client, resource: str, body: Any, key: str | None = "key-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/{resource}", headers=headers, **as_json(body))


def test_a_retried_contract_is_the_same_contract(market, db):
    body = contract_body([publish(market.prosumer_a, market.dev["a"])])
    first, again = post(market.aggregator, "contracts", body), post(market.aggregator, "contracts", body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert db["contracts"].count_documents({}) == 1 and sum(held_by(db).values()) == 4


def test_a_retried_offer_is_the_same_offer(market, db):
    from tests.support.market_setup import offer_body

    body = offer_body(market.dev["a"])
    first, again = post(market.prosumer_a, "offers", body), post(market.prosumer_a, "offers", body)
    assert (first.status_code, again.status_code, again.json["_id"]) == (201, 201, first.json["_id"])
    assert db["offers"].count_documents({}) == 1
    # another caller's key is another key
    assert post(market.admin, "offers", body).json["_id"] != first.json["_id"]


def test_the_same_key_for_another_body_is_422_and_changes_nothing(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    post(market.aggregator, "contracts", contract_body([offer_id]))
    before = state(db)
    other = post(market.aggregator, "contracts", contract_body([offer_id], start=2, end=3))
    assert other.status_code == 422 and "different request body" in other.json["_error"]["message"]
    assert state(db) == before


@pytest.mark.parametrize("key", ["", "é", "x" * 256, "two words"])
def test_a_malformed_key_is_400(market, db, key):
    response = post(market.aggregator, "contracts", contract_body([]), key=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json["_error"]["message"]
    assert db["idempotency_keys"].count_documents({}) == 0


def test_a_refused_request_releases_its_key(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    body = contract_body([offer_id], price=0.1)  # below the asking price: 422
    assert post(market.aggregator, "contracts", body).status_code == 422
    assert db["idempotency_keys"].count_documents({}) == 0
    db["offers"].update_one({}, {"$set": {"price": 0.05}})
    assert post(market.aggregator, "contracts", body).status_code == 201


def test_a_retry_after_a_kill_after_the_write_replays_the_stored_contract(app, market, db):
    body = contract_body([publish(market.prosumer_a, market.dev["a"])])
    app.extensions["faults"] = {"after:write": kill}
    with pytest.raises(WorkerKilled):
        post(market.aggregator, "contracts", body)
    app.extensions["faults"] = {}
    stored = db["contracts"].find_one()
    again = post(market.aggregator, "contracts", body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["_id"] == str(stored["_id"]) and again.json["_etag"] == stored["_etag"]
    assert db["contracts"].count_documents({}) == 1


def test_a_retry_after_a_kill_before_the_write_waits_then_takes_over(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    body = contract_body([offer_id])
    app.extensions["faults"] = {"after:claim_offers": kill}
    with pytest.raises(WorkerKilled):
        post(market.aggregator, "contracts", body)
    app.extensions["faults"] = {}
    before = state(db)
    busy = post(market.aggregator, "contracts", body)
    assert busy.status_code == 409 and "still being processed" in busy.json["_error"]["message"]
    assert state(db) == before
    app.config["REQUEST_GRACE_SECONDS"] = 0  # the first attempt is surely dead now
    from registry.ops.metrics import ORPHANS_REPAIRED

    repaired_before = ORPHANS_REPAIRED.labels("reservations")._value.get()
    taken = post(market.aggregator, "contracts", body)
    assert taken.status_code == 201
    assert ORPHANS_REPAIRED.labels("reservations")._value.get() - repaired_before == 4  # at once, not by the tick
    contract = db["contracts"].find_one()
    assert db["contracts"].count_documents({}) == 1 and held_by(db) == {contract["_id"]: 4}
    assert db["offers"].find_one()["contract_id"] == contract["_id"]
