"""Contract terms as pure functions (no app, no store): a contract on offers derives
its terms from them, a proposal names devices and its own terms, acceptance is
revalidated, and which updates each role may make; each refusal with its status
and reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from bson import ObjectId

from registry.market.rules import check_acceptance, check_contract_update, check_new_contract
from tests.factories import AGGREGATOR, device
from tests.support.market_rule_inputs import END, NOW, START, an_offer, refusal


def a_contract(**overrides) -> dict:
    return {"aggregator_id": AGGREGATOR, "start": START, "end": END, **overrides}


# contract terms --------------------------------------------------------------------------------


def test_contract_on_offers_is_accepted_with_derived_terms():
    first, second = device(), device(max_capacity=5.0)
    offers = [an_offer(first, power_kw=1.5, price=0.2), an_offer(second, power_kw=3.0, price=0.3)]
    devices = {d["device_id"]: d for d in (first, second)}
    derived = check_new_contract(a_contract(offers=[o["_id"] for o in offers]), offers, devices, NOW)
    assert derived == {
        "device_ids": [first["device_id"], second["device_id"]],
        "direction": "down",
        "power_kw": 1.5,
        "price": 0.3,
        "currency": "EUR",
        "account_ids": sorted([first["account_id"], second["account_id"]]),
        "status": "accepted",
    }


@pytest.mark.parametrize(
    "offer_overrides,contract_overrides,dev_overrides,status,words",
    [
        ({"status": "contracted"}, {}, {}, 409, "is contracted, not open"),
        ({"status": "withdrawn"}, {}, {}, 409, "is withdrawn, not open"),
        ({"start": START + timedelta(minutes=15)}, {}, {}, 422, "inside offer"),
        ({"end": END - timedelta(minutes=15)}, {}, {}, 422, "inside offer"),
        ({"direction": "up"}, {"direction": "down"}, {}, 422, "does not match"),
        ({}, {"power_kw": 2.5}, {}, 422, "exceeds offer"),
        ({"power_kw": 5.0}, {"power_kw": 4.0}, {}, 422, "max_capacity"),
        ({}, {"price": 0.1}, {}, 422, "below"),
        ({}, {"currency": "USD"}, {}, 422, "one currency"),
        ({}, {}, {"marketplace_availability": "no"}, 409, "not available to the marketplace"),
        ({"aggregator_id": "agg-south"}, {}, {}, 422, "portfolio"),
        ({}, {"status": "accepted"}, {}, 422, "status is set by the marketplace"),
        ({}, {"device_ids": ["0" * 8 + "-0000-4000-8000-" + "0" * 12]}, {}, 422, "device_ids must be"),
        ({}, {"start": START + timedelta(minutes=1)}, {}, 422, "15-minute"),
    ],
)
def test_contract_on_offers_refusals(offer_overrides, contract_overrides, dev_overrides, status, words):
    dev = device(**dev_overrides)
    offer = an_offer(dev, **offer_overrides)
    contract = a_contract(offers=[offer["_id"]], **contract_overrides)
    error = refusal(check_new_contract, contract, [offer], {dev["device_id"]: dev}, NOW)
    assert error.status == status and words in error.message, error.message


def test_unknown_or_repeated_offers_are_422():
    dev = device()
    offer, again = an_offer(dev), an_offer(dev)
    devices = {dev["device_id"]: dev}

    def message(offer_ids, found):
        return refusal(check_new_contract, a_contract(offers=offer_ids), found, devices, NOW).message

    assert "unknown offer" in message([ObjectId()], [])
    assert "listed twice" in message([offer["_id"]] * 2, [offer])
    assert "one offer per device" in message([offer["_id"], again["_id"]], [offer, again])


def test_unseen_device_is_unknown():
    dev = device()
    offer = an_offer(dev)
    assert (
        "unknown device_id" in refusal(check_new_contract, a_contract(offers=[offer["_id"]]), [offer], {}, NOW).message
    )


PROPOSAL = {"direction": "up", "power_kw": 1.0, "price": 0.5}


def test_proposal_without_offers_is_proposed():
    dev = device()
    derived = check_new_contract(
        a_contract(device_ids=[dev["device_id"]], **PROPOSAL), [], {dev["device_id"]: dev}, NOW
    )
    assert derived == {"account_ids": [dev["account_id"]], "status": "proposed", "currency": "EUR"}


@pytest.mark.parametrize(
    "contract_overrides,two_accounts,words",
    [
        ({"device_ids": []}, False, "needs offers, or device_ids"),
        ({"direction": None}, False, "needs direction"),
        ({"power_kw": None}, False, "needs power_kw"),
        ({"price": None}, False, "needs price"),
        ({"power_kw": 9.0}, False, "max_capacity"),
        ({"aggregator_id": "agg-south"}, False, "portfolio"),
        ({}, True, "one prosumer"),
    ],
)
def test_proposal_refusals(contract_overrides, two_accounts, words):
    devs = [device(), device()] if two_accounts else [device()]
    contract = a_contract(**{"device_ids": [d["device_id"] for d in devs], **PROPOSAL, **contract_overrides})
    error = refusal(check_new_contract, contract, [], {d["device_id"]: d for d in devs}, NOW)
    assert error.status == 422 and words in error.message, error.message


def test_acceptance_is_revalidated():
    dev = device()
    proposal = a_contract(device_ids=[dev["device_id"]], status="proposed", **PROPOSAL)
    check_acceptance(proposal, {dev["device_id"]: dev}, NOW)
    assert (
        refusal(check_acceptance, proposal, {dev["device_id"]: {**dev, "marketplace_availability": "no"}}, NOW).status
        == 409
    )
    assert refusal(check_acceptance, proposal, {dev["device_id"]: {**dev, "max_capacity": 0.5}}, NOW).status == 422
    assert "future" in refusal(check_acceptance, proposal, {dev["device_id"]: dev}, START).message


@pytest.mark.parametrize(
    "status,updates,actor,code,words",
    [
        ("accepted", {"power_kw": 1.0}, "admin", 422, "power_kw cannot change"),
        ("proposed", {"ven_response": {"opt": "optIn"}}, "service", 409, "VEN response"),
        ("accepted", {"status": "accepted"}, "prosumer", None, None),
        ("accepted", {"ven_response": {"opt": "optOut"}}, "service", None, None),
        ("accepted", {"status": "cancelled"}, "prosumer", 403, "may not move"),
        ("proposed", {"status": "accepted"}, "aggregator", 403, "may not move"),
    ],
)
def test_contract_updates(status, updates, actor, code, words):
    contract = a_contract(status=status)
    if code is None:
        check_contract_update(contract, updates, actor, NOW)
        return
    error = refusal(check_contract_update, contract, updates, actor, NOW)
    assert error.status == code and words in error.message
