"""Contracts on offers through the API, for each role: an aggregator contracts an
offer (a device is never sold twice, refusals change nothing), cancels it (the
device is freed and the offer reopens), the terms never change, a stale ETag is
412, and the service records the VEN's response."""

from __future__ import annotations

import pytest

from tests.conftest import as_json
from tests.factories import OTHER_AGGREGATOR, new_uuid
from tests.support.market_setup import contract_body, contract_offer, iso, market, patch, propose, publish, state, t  # noqa: F401  (fixtures)

# contracts on offers ---------------------------------------------------------------------------


def test_aggregator_contracts_an_offer(market, db):
    offer_id, contract_id = contract_offer(market)
    contract = market.prosumer_a.get(f"/contracts/{contract_id}").json
    assert contract["status"] == "accepted"
    assert contract["device_ids"] == [market.dev["a"]] and contract["account_ids"] == [
        db["devices"].find_one({"device_id": market.dev["a"]})["account_id"]
    ]
    assert (contract["power_kw"], contract["price"], contract["direction"]) == (2.0, 0.2, "down")
    offer = market.prosumer_a.get(f"/offers/{offer_id}").json
    assert offer["status"] == "contracted" and offer["contract_id"] == contract_id
    assert db["reservations"].count_documents({"device_id": market.dev["a"]}) == 4
    assert market.prosumer_a.get("/contracts").json["_meta"]["total"] == 1
    for foreign in (market.prosumer_b, market.other_aggregator, market.prosumer_c):
        assert foreign.get(f"/contracts/{contract_id}").status_code == 404
        assert foreign.get("/contracts").json["_meta"]["total"] == 0


@pytest.mark.parametrize(
    "second_offer,kw,words",
    [
        (True, {"start": 1.5, "end": 2.5}, "already held"),  # another offer, overlapping slots
        (False, {"start": 2, "end": 3}, "contracted, not open"),  # free slots, but the offer is taken
    ],
)
def test_a_device_is_never_sold_twice(market, db, second_offer, kw, words):
    offer_id, _ = contract_offer(market)
    if second_offer:
        offer_id = publish(market.prosumer_a, market.dev["a"], start=1, end=3, price=0.1)
    before = state(db)
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id], **kw)))
    assert response.status_code == 409 and words in response.json["_error"]["message"]
    assert state(db) == before


@pytest.mark.parametrize(
    "kw,status,words",
    [
        ({"start": 3, "end": 5}, 422, "inside offer"),
        ({"power_kw": 3.0}, 422, "exceeds offer"),
        ({"price": 0.1}, 422, "below"),
        ({"direction": "up"}, 422, "does not match"),
        ({"start": 1.1, "end": 2}, 422, "15-minute"),
        ({"status": "active"}, 422, "set by the marketplace"),
        ({"aggregator_id": OTHER_AGGREGATOR}, 403, "must be your own"),
        ({"settlement": {"payment": 1.0}}, 422, None),
        ({"ven_response": {"opt": "optIn", "event_id": "ev-1", "at": "2030-01-01T00:00:00Z"}}, 422, "OpenADR bridge"),
        ({"account_ids": [new_uuid()]}, 422, None),
        ({"_id": "6b0f9ccaad9e32b0b92cdea2"}, 422, None),
    ],
)
def test_contract_refusals_change_nothing(market, db, kw, status, words):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    before = state(db)
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id], **kw)))
    assert response.status_code == status, response.json
    assert words is None or words in response.json["_error"]["message"]
    assert state(db) == before


def test_another_aggregators_offer_does_not_exist_for_it(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    body = {**contract_body([offer_id]), "aggregator_id": OTHER_AGGREGATOR}
    response = market.other_aggregator.post("/contracts", **as_json(body))
    assert response.status_code == 422 and "offers" in response.json["_issues"]
    assert db["contracts"].count_documents({}) == 0


def test_a_device_going_off_market_blocks_new_contracts(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    db["devices"].update_one({"device_id": market.dev["a"]}, {"$set": {"marketplace_availability": "no"}})
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    assert response.status_code == 409 and "marketplace" in response.json["_error"]["message"]


@pytest.mark.parametrize("role", ["prosumer_a", "service"])
def test_only_aggregators_and_admins_create_contracts(market, role):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    assert getattr(market, role).post("/contracts", **as_json(contract_body([offer_id]))).status_code == 403


# cancel ----------------------------------------------------------------------------------------


def test_aggregator_cancels_which_frees_the_device_and_reopens_the_offer(market, db):
    offer_id, contract_id = contract_offer(market)
    assert patch(market.prosumer_a, "contracts", contract_id, {"status": "cancelled"}).status_code == 403
    assert (
        patch(
            market.other_aggregator, "contracts", contract_id, {"status": "cancelled"}, reader=market.aggregator
        ).status_code
        == 404
    )
    assert patch(market.aggregator, "contracts", contract_id, {"status": "cancelled"}).status_code == 200
    assert db["reservations"].count_documents({}) == 0
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["status"] == "open"
    again = market.aggregator.post("/contracts", **as_json(contract_body([offer_id], start=1.5, end=2.5)))
    assert again.status_code == 201
    final = patch(market.aggregator, "contracts", contract_id, {"status": "accepted"})
    assert final.status_code == 409 and "from cancelled to accepted" in final.json["_error"]["message"]


def test_contract_terms_cannot_change(market, db):
    _, contract_id = contract_offer(market)
    assert patch(market.aggregator, "contracts", contract_id, {"power_kw": 1.0}).status_code == 403
    response = patch(market.admin, "contracts", contract_id, {"end": iso(t(3))})
    assert response.status_code == 422 and "cannot change" in response.json["_error"]["message"]


def test_stale_etag_is_412(market):
    _, contract_id = contract_offer(market)
    stale = market.aggregator.get(f"/contracts/{contract_id}").json["_etag"]
    assert (
        patch(
            market.service,
            "contracts",
            contract_id,
            {"ven_response": {"opt": "optIn", "event_id": "ev-1", "at": iso(t(0))}},
        ).status_code
        == 200
    )
    late = market.aggregator.patch(
        f"/contracts/{contract_id}", headers={"If-Match": stale}, **as_json({"status": "cancelled"})
    )
    assert late.status_code == 412


# the VEN's response ----------------------------------------------------------------------------


def test_service_records_the_ven_response(market):
    _, contract_id = contract_offer(market)
    answer = {"opt": "optOut", "event_id": "ev-42", "at": iso(t(0))}
    assert patch(market.service, "contracts", contract_id, {"ven_response": answer}).status_code == 200
    assert market.aggregator.get(f"/contracts/{contract_id}").json["ven_response"] == answer
    bad = patch(market.service, "contracts", contract_id, {"ven_response": {**answer, "opt": "maybe"}})
    assert bad.status_code == 422
    assert patch(market.aggregator, "contracts", contract_id, {"ven_response": answer}).status_code == 403
    proposal = propose(market, "b").json["_id"]
    refused = patch(market.service, "contracts", proposal, {"ven_response": answer})
    assert refused.status_code == 409
