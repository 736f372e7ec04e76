"""A contract several prosumers share: each prosumer sees only its own share of it
(accounts, devices, offers, settlement) and cannot probe the others' with a filter
or a sort."""

from __future__ import annotations

import json

import pytest

from registry.market.lifecycle import advance_lifecycle
from tests.conftest import as_json
from tests.support.market_setup import contract_body, history_and_window, market, publish, t  # noqa: F401  (fixtures)

# a contract several prosumers share --------------------------------------------------------------


def shared_contract(market) -> tuple[dict, str]:
    offers = {"a": publish(market.prosumer_a, market.dev["a"]), "b": publish(market.prosumer_b, market.dev["b"])}
    response = market.aggregator.post("/contracts", **as_json(contract_body(list(offers.values()))))
    assert response.status_code == 201, response.json
    return offers, response.json["_id"]


def test_each_prosumer_sees_only_its_share_of_a_shared_contract(market, db):
    offers, contract_id = shared_contract(market)
    accounts = {k: db["devices"].find_one({"device_id": market.dev[k]})["account_id"] for k in ("a", "b")}
    for key, client in (("a", market.prosumer_a), ("b", market.prosumer_b)):
        item = client.get(f"/contracts/{contract_id}").json
        listed = client.get("/contracts").json["_items"]
        embedded = client.get(f'/contracts/{contract_id}?embedded={{"offers": 1}}').json
        for seen in (item, *listed):
            assert (seen["account_ids"], seen["device_ids"], seen["offers"]) == (
                [accounts[key]],
                [market.dev[key]],
                [offers[key]],
            )
        assert [o["_id"] for o in embedded["offers"]] == [offers[key]]
    full = market.aggregator.get(f"/contracts/{contract_id}").json
    assert sorted(full["account_ids"]) == sorted(accounts.values()) and len(full["offers"]) == 2


@pytest.mark.parametrize("field", ["device_ids", "offers", "account_ids", "settlement_shares.account_id"])
def test_a_prosumer_cannot_probe_the_others_share_with_a_filter(market, db, field):
    """The attack: filter on B's device id and read _meta.total (1 = B is in it)."""
    offers, _ = shared_contract(market)
    theirs = {
        "device_ids": market.dev["b"],
        "offers": offers["b"],
        "account_ids": db["devices"].find_one({"device_id": market.dev["b"]})["account_id"],
        "settlement_shares.account_id": "x",
    }[field]
    for params in ({"where": json.dumps({field: theirs})}, {"sort": field}):
        response = market.prosumer_a.get("/contracts", query_string=params)
        assert response.status_code == 400, response.json
        assert "not visible to your role" in response.json["_error"]["message"]
    probe = {"where": json.dumps({"device_ids": market.dev["b"]})}
    assert market.aggregator.get("/contracts", query_string=probe).json["_meta"]["total"] == 1  # the filter works


def test_each_prosumer_sees_only_its_share_of_the_settlement(app, market, insert):
    _, contract_id = shared_contract(market)
    insert(
        "measurements",
        *history_and_window(market.dev["a"], t(1), [1.0, 1.0, 1.0, 1.0]),
        *history_and_window(market.dev["b"], t(1), [3.0, 3.0, 3.0, 3.0]),
    )
    with app.app_context():
        for moment in (t(1), t(2), t(2.5)):
            advance_lifecycle(moment)
    full = market.aggregator.get(f"/contracts/{contract_id}").json
    assert full["status"] == "settled" and full["settlement"]["delivered_kw"] == [2.0] * 4
    shares = {s["account_id"]: s for s in full["settlement_shares"]}
    mine = market.prosumer_a.get(f"/contracts/{contract_id}").json
    assert "settlement_shares" not in mine
    assert mine["settlement"] == shares[mine["account_ids"][0]]
    # a's devices delivered 2 kW of its 2 kW; b's nothing: neither reads the other's measurements
    assert mine["settlement"]["delivered_kw"] == [2.0] * 4 and mine["settlement"]["measured_kw"] == [1.0] * 4
    theirs = market.prosumer_b.get(f"/contracts/{contract_id}").json["settlement"]
    assert theirs["delivered_kw"] == [0.0] * 4 and theirs["measured_kw"] == [3.0] * 4
