"""Offers and contracts through the API, for each role."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from registry.market.lifecycle import advance_lifecycle
from tests.conftest import as_json
from tests.factories import AGGREGATOR, OTHER_AGGREGATOR, at, device, new_uuid

FMT = "%Y-%m-%dT%H:%M:%SZ"
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)


def t(hours: float) -> datetime:
    """BASE (tomorrow, on the hour) plus ``hours``."""
    return BASE + timedelta(hours=hours)


def iso(moment: datetime) -> str:
    return moment.strftime(FMT)


@pytest.fixture
def market(insert, client_as):
    """Two prosumers of AGGREGATOR, one of OTHER_AGGREGATOR, and their clients."""
    a, b, c = new_uuid(), new_uuid(), new_uuid()
    devices = {
        "a": device(account_id=a, max_capacity=4.0, location=at(2.17, 41.39)),
        "a_off": device(account_id=a, marketplace_availability="no"),
        "b": device(account_id=b, location=at(2.30, 41.50)),
        "c": device(account_id=c, aggregator_id=OTHER_AGGREGATOR),
    }
    insert("devices", *devices.values())
    return SimpleNamespace(
        dev={k: d["device_id"] for k, d in devices.items()},
        prosumer_a=client_as("prosumer", account_id=a, aggregator_id=AGGREGATOR),
        prosumer_b=client_as("prosumer", account_id=b, aggregator_id=AGGREGATOR),
        prosumer_c=client_as("prosumer", account_id=c, aggregator_id=OTHER_AGGREGATOR),
        aggregator=client_as("aggregator", aggregator_id=AGGREGATOR),
        other_aggregator=client_as("aggregator", aggregator_id=OTHER_AGGREGATOR),
        service=client_as("service"),
        admin=client_as("admin"),
    )


def offer_body(device_id: str, start: float = 0, end: float = 4, **extra) -> dict:
    return {
        "device_id": device_id,
        "start": iso(t(start)),
        "end": iso(t(end)),
        "direction": "down",
        "power_kw": 2.0,
        "price": 0.2,
        **extra,
    }


def publish(client, device_id: str, **kw) -> str:
    response = client.post("/offers", **as_json(offer_body(device_id, **kw)))
    assert response.status_code == 201, response.json
    return response.json["_id"]


def contract_body(offers: list[str], start: float = 1, end: float = 2, **extra) -> dict:
    return {"aggregator_id": AGGREGATOR, "offers": offers, "start": iso(t(start)), "end": iso(t(end)), **extra}


def patch(client, resource: str, item_id: str, changes: dict, reader=None):
    etag = (reader or client).get(f"/{resource}/{item_id}").json["_etag"]
    return client.patch(f"/{resource}/{item_id}", headers={"If-Match": etag}, **as_json(changes))


def state(db) -> tuple:
    """Everything a refused request must leave unchanged."""

    def docs(name):
        return sorted(json.dumps(d, default=str, sort_keys=True) for d in db[name].find())

    return docs("offers"), docs("contracts"), docs("reservations")


# offers -------------------------------------------------------------------------------------


def test_prosumer_publishes_an_offer_with_copied_owners(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    got = market.prosumer_a.get(f"/offers/{offer_id}").json
    assert got["status"] == "open" and got["currency"] == "EUR"
    stored = db["offers"].find_one()
    assert stored["aggregator_id"] == AGGREGATOR and stored["location"]["coordinates"] == [2.17, 41.39]
    assert market.aggregator.get(f"/offers/{offer_id}").status_code == 200
    for foreign in (market.prosumer_b, market.other_aggregator, market.prosumer_c):
        assert foreign.get(f"/offers/{offer_id}").status_code == 404


@pytest.mark.parametrize(
    "device_key,extra,status,words",
    [
        ("b", {}, 422, "unknown device_id"),
        ("c", {}, 422, "unknown device_id"),
        ("a_off", {}, 409, "not available to the marketplace"),
        ("a", {"power_kw": 5.0}, 422, "max_capacity"),
        ("a", {"start": 4, "end": 0}, 422, "before end"),
        ("a", {"start": -48, "end": -47}, 422, "future"),
        ("a", {"status": "contracted"}, 422, "always open"),
        ("a", {"account_id": new_uuid()}, 422, None),
        ("a", {"price": -1}, 422, None),
        ("a", {"currency": "euro"}, 422, None),
        ("a", {"direction": "sideways"}, 422, None),
    ],
)
def test_offer_refusals_change_nothing(market, db, device_key, extra, status, words):
    body = offer_body(market.dev[device_key], **{k: v for k, v in extra.items() if k in ("start", "end")})
    body.update({k: v for k, v in extra.items() if k not in ("start", "end")})
    response = market.prosumer_a.post("/offers", **as_json(body))
    assert response.status_code == status, response.json
    assert words is None or words in response.json["_error"]["message"]
    assert db["offers"].count_documents({}) == 0


@pytest.mark.parametrize("role", ["aggregator", "service"])
def test_only_prosumers_and_admins_publish_offers(market, db, role):
    response = getattr(market, role).post("/offers", **as_json(offer_body(market.dev["a"])))
    assert response.status_code == 403
    assert market.admin.post("/offers", **as_json(offer_body(market.dev["a"]))).status_code == 201


def test_prosumer_changes_an_open_offer_then_withdraws_it(market):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    assert patch(market.prosumer_a, "offers", offer_id, {"price": 0.35}).status_code == 200
    assert patch(market.prosumer_a, "offers", offer_id, {"start": iso(t(1))}).status_code == 403
    assert patch(market.prosumer_a, "offers", offer_id, {"status": "expired"}).status_code == 403
    assert patch(market.prosumer_a, "offers", offer_id, {"status": "withdrawn"}).status_code == 200
    again = patch(market.prosumer_a, "offers", offer_id, {"price": 0.1})
    assert again.status_code == 409 and "only open offers" in again.json["_error"]["message"]
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["price"] == 0.35
    assert patch(market.aggregator, "offers", offer_id, {"status": "open"}).status_code == 403


# contracts on offers ---------------------------------------------------------------------------


def contract_offer(market, **kw) -> tuple[str, str]:
    offer_id = publish(market.prosumer_a, market.dev["a"])
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id], **kw)))
    assert response.status_code == 201, response.json
    return offer_id, response.json["_id"]


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


# proposals -------------------------------------------------------------------------------------


def propose(market, device_key: str = "a", start: float = 1, end: float = 2):
    body = {
        **contract_body([], start=start, end=end),
        "device_ids": [market.dev[device_key]],
        "direction": "up",
        "power_kw": 1.5,
        "price": 0.4,
    }
    return market.aggregator.post("/contracts", **as_json(body))


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


# the clock: expiry, lapse, activation, completion, settlement ------------------------------------


def history_and_window(device_id: str, start: datetime, window_kw: list[float]) -> list[dict]:
    """3 kW in the window's slots on each of the 28 days before, then ``window_kw``."""

    def reading(moment: datetime, kw: float) -> dict:
        return {"device_id": device_id, "timestamp": moment, "power_kw": kw}

    past = [reading(start - timedelta(days=d, minutes=-15 * i), 3.0) for d in range(1, 29) for i in range(4)]
    return past + [reading(start + timedelta(minutes=15 * i), kw) for i, kw in enumerate(window_kw)]


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


# what aggregators ask ----------------------------------------------------------------------------


def query(client, resource: str, **params) -> list[dict]:
    encoded = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    response = client.get(f"/{resource}?{urlencode(encoded)}")
    assert response.status_code == 200, response.json
    return response.json["_items"]


def test_open_offers_near_a_point_in_a_window_by_direction_sorted_by_price(market):
    ids = {
        "a_cheap": publish(market.prosumer_a, market.dev["a"], start=0, end=4, price=0.10),
        "a_dear": publish(market.prosumer_a, market.dev["a"], start=0, end=8, price=0.30),
        "a_up": publish(market.prosumer_a, market.dev["a"], direction="up", price=0.05),
        "a_late": publish(market.prosumer_a, market.dev["a"], start=5, end=8, price=0.01),
        "b_far": publish(market.prosumer_b, market.dev["b"], price=0.02),  # ~15 km away
    }
    patch(market.prosumer_a, "offers", ids["a_cheap"], {"price": 0.2})
    names = {v: k for k, v in ids.items()}
    near = {"$near": {"$geometry": {"type": "Point", "coordinates": [2.17, 41.38]}, "$maxDistance": 5000}}
    where = {
        "status": "open",
        "direction": "down",
        "location": near,
        "start": {"$lte": iso(t(1))},
        "end": {"$gte": iso(t(3))},
    }
    found = query(market.aggregator, "offers", where=where, sort="price")
    assert [names[o["_id"]] for o in found] == ["a_cheap", "a_dear"]
    within = {**where, "location": {"$geoWithin": {"$centerSphere": [[2.17, 41.38], 20 / 6378.1]}}}
    found = query(market.aggregator, "offers", where=within, sort="-price")
    assert [names[o["_id"]] for o in found] == ["a_dear", "a_cheap", "b_far"]
    assert query(market.other_aggregator, "offers", where=within) == []


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
