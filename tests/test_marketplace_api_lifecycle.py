"""The clock through the API: offers expire, proposals lapse, contracts become
active, complete and are settled; a contract without history waits with a reason,
and skipping ahead by hand is 409."""

from __future__ import annotations

from datetime import UTC

from registry.market.lifecycle import advance_lifecycle
from tests.support.market_setup import contract_offer, history_and_window, market, patch, propose, publish, t  # noqa: F401  (fixtures)

# the clock: expiry, lapse, activation, completion, settlement ------------------------------------


def test_the_clock_moves_offers_and_contracts_to_settlement(app, market, insert, db):
    offer_id, contract_id = contract_offer(market, price=0.4)
    short_offer = publish(market.prosumer_b, market.dev["b"], start=0, end=1)
    proposal = propose(market, "b", start=1, end=2).json["_id"]
    insert("measurements", *history_and_window(market.dev["a"], t(1), [1.0, 2.0, 3.0, 1.0]))
    early = patch(market.service, "contracts", contract_id, {"status": "active"})
    assert early.status_code == 409 and "cannot be active before" in early.json["_error"]["message"]

    with app.app_context():
        assert set(advance_lifecycle(t(0.5)).values()) == {0}
        moved = advance_lifecycle(t(1))
    assert (moved["offers_expired"], moved["contracts_rejected"], moved["contracts_active"]) == (1, 1, 1)
    assert market.prosumer_b.get(f"/offers/{short_offer}").json["status"] == "expired"
    assert market.prosumer_b.get(f"/contracts/{proposal}").json["status"] == "rejected"
    assert market.aggregator.get(f"/contracts/{contract_id}").json["status"] == "active"
    assert db["reservations"].count_documents({}) == 4

    with app.app_context():
        assert advance_lifecycle(t(2))["contracts_completed"] == 1
        assert db["reservations"].count_documents({}) == 0
        assert advance_lifecycle(t(2.25))["contracts_settled"] == 0  # telemetry may still arrive
        assert advance_lifecycle(t(2.5))["contracts_settled"] == 1
        assert set(advance_lifecycle(t(3)).values()) == {0}

    contract = market.prosumer_a.get(f"/contracts/{contract_id}").json
    settlement = contract["settlement"]
    assert contract["status"] == "settled"
    # baseline 3 kW; measured 1, 2, 3, 1 → down 2, 1, 0, 2 kW → 1.25 kWh of 2 kWh at 0.40 €/kWh
    assert settlement["baseline_kw"] == [3.0] * 4 and settlement["delivered_kw"] == [2.0, 1.0, 0.0, 2.0]
    assert (settlement["delivered_kwh"], settlement["contracted_kwh"]) == (1.25, 2.0)
    assert (settlement["payment"], settlement["penalty"], settlement["currency"]) == (0.5, 0.45, "EUR")
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["status"] == "contracted"


def test_a_contract_without_history_waits_with_a_reason(app, market, db):
    _, contract_id = contract_offer(market)
    with app.app_context():
        aware = t(3).replace(tzinfo=UTC)  # the worker's clock may be tz-aware
        assert advance_lifecycle(aware)["contracts_unsettled"] == 1
        assert advance_lifecycle(t(3.5))["contracts_unsettled"] == 0  # retried hourly
        assert advance_lifecycle(t(4))["contracts_unsettled"] == 1
        assert advance_lifecycle(t(24 * 8))["contracts_unsettled"] == 0  # given up after a week
    contract = market.aggregator.get(f"/contracts/{contract_id}").json
    assert contract["status"] == "completed" and "comparable day" in contract["settlement_error"]


def test_skipping_ahead_in_the_lifecycle_is_409(market):
    _, contract_id = contract_offer(market)
    response = patch(market.admin, "contracts", contract_id, {"status": "settled"})
    assert response.status_code == 409
