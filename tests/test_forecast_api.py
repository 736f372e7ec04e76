"""Forecasts, advice, jobs and prices through the API: who sees what, who may
write, and the aggregator advice request flow (202 -> 202 -> 200)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from registry import jobs
from tests.conftest import as_json
from tests.factories import AGGREGATOR, OTHER_AGGREGATOR, at, device, new_uuid
from tests.history import day_ahead_prices, readings, this_hour

RESOURCES = ["forecasts", "advice", "jobs"]


@pytest.fixture
def world(app, insert) -> dict[str, dict[str, Any]]:
    """Prosumers mine, neighbour (same aggregator) and stranger (another), each with
    one device, ten days of history, and its forecasts, advice and jobs done."""
    parties = {"mine": AGGREGATOR, "neighbour": AGGREGATOR, "stranger": OTHER_AGGREGATOR}
    devices = {}
    for seed, (name, aggregator) in enumerate(parties.items()):
        dev = device(aggregator_id=aggregator, max_capacity=4.0, available_capacity=3.0)
        insert("prosumers", {"account_id": dev["account_id"], "aggregator_id": aggregator, "display_name": name})
        insert("devices", dev)
        insert("measurements", *readings(dev, 10, seed=seed))
        devices[name] = dev
    insert("prices", day_ahead_prices(this_hour()))
    jobs.enqueue_forecasts(devices.values(), "test", kinds=["consumption_forecast"], app=app)
    jobs.run_pending(app)
    return devices


def as_prosumer(client_as, dev):
    return client_as("prosumer", account_id=dev["account_id"], aggregator_id=dev["aggregator_id"])


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_prosumer_sees_only_its_own(client_as, db, world, resource):
    mine = world["mine"]
    body = as_prosumer(client_as, mine).get(f"/{resource}?max_results=100").json
    assert body["_items"] and {i["account_id"] for i in body["_items"]} == {mine["account_id"]}
    assert body["_meta"]["total"] == db[resource].count_documents({"account_id": mine["account_id"]})


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("other", ["neighbour", "stranger"])
def test_another_partys_item_is_a_404_for_a_prosumer(client_as, db, world, resource, other):
    theirs = db[resource].find_one({"account_id": world[other]["account_id"]})
    assert as_prosumer(client_as, world["mine"]).get(f"/{resource}/{theirs['_id']}").status_code == 404


@pytest.mark.parametrize("resource", RESOURCES)
def test_an_aggregator_sees_its_own_portfolio(client_as, db, world, resource):
    body = client_as("aggregator", aggregator_id=AGGREGATOR).get(f"/{resource}?max_results=100").json
    assert {i["aggregator_id"] for i in body["_items"]} == {AGGREGATOR}
    theirs = db[resource].find_one({"aggregator_id": OTHER_AGGREGATOR})
    assert client_as("aggregator", aggregator_id=AGGREGATOR).get(f"/{resource}/{theirs['_id']}").status_code == 404


@pytest.mark.parametrize("role, status", [("prosumer", 403), ("aggregator", 403), ("service", 201)])
def test_only_the_service_writes_forecasts(client_as, world, role, status):
    dev = world["mine"]
    ids = (
        {"account_id": dev["account_id"], "aggregator_id": dev["aggregator_id"]}
        if role == "prosumer"
        else {"aggregator_id": AGGREGATOR}
        if role == "aggregator"
        else {}
    )
    forecast = {
        "device_id": dev["device_id"],
        "kind": "consumption",
        "issued_at": "2026-01-01T00:00:00Z",
        "start": "2026-01-02T00:00:00Z",
        "values": [0.5] * 96,
        "model": "external",
    }
    assert client_as(role, **ids).post("/forecasts", **as_json(forecast)).status_code == status


def test_a_posted_forecast_gets_its_devices_owners_and_needs_96_values(client_as, db, world):
    service, dev = client_as("service"), world["mine"]
    forecast = {
        "device_id": dev["device_id"],
        "kind": "flexibility",
        "direction": "up",
        "issued_at": "2026-01-01T00:00:00Z",
        "start": "2026-01-02T00:00:00Z",
        "values": [0.5] * 96,
        "model": "external",
    }
    created = service.post("/forecasts", **as_json(forecast)).json
    stored = db["forecasts"].find_one({"model": "external"})
    assert created["_status"] == "OK" and stored["account_id"] == dev["account_id"]
    assert service.post("/forecasts", **as_json({**forecast, "values": [0.5] * 95})).status_code == 422
    no_direction = {k: v for k, v in forecast.items() if k != "direction"}
    assert service.post("/forecasts", **as_json(no_direction)).status_code == 422


@pytest.mark.parametrize("role", ["prosumer", "aggregator", "service", "admin"])
def test_prices_are_readable_by_every_role(client_as, world, role):
    ids = (
        {"account_id": new_uuid(), "aggregator_id": AGGREGATOR}
        if role == "prosumer"
        else {"aggregator_id": AGGREGATOR}
        if role == "aggregator"
        else {}
    )
    assert client_as(role, **ids).get("/prices").json["_meta"]["total"] == 1


# --- aggregator advice on request -------------------------------------------------


@pytest.fixture
def portfolio(app, insert) -> dict[str, Any]:
    """Two devices of AGGREGATOR near Barcelona and a bigger one of OTHER_AGGREGATOR,
    each with forecasts for tomorrow."""
    devices = {
        "small": device(max_capacity=2.0, available_capacity=2.0, location=at(2.17, 41.38)),
        "big": device(max_capacity=6.0, available_capacity=5.0, location=at(2.18, 41.39)),
        "theirs": device(
            aggregator_id=OTHER_AGGREGATOR, max_capacity=20.0, available_capacity=20.0, location=at(2.17, 41.38)
        ),
    }
    for seed, dev in enumerate(devices.values()):
        insert(
            "prosumers",
            {"account_id": dev["account_id"], "aggregator_id": dev["aggregator_id"], "display_name": "home"},
        )
        insert("devices", dev)
        insert("measurements", *readings(dev, 10, seed=seed, level=dev["max_capacity"] / 2))
    jobs.enqueue_forecasts(devices.values(), "test", kinds=["consumption_forecast"], app=app)
    jobs.run_pending(app)
    return devices


def evening_request(**overrides: Any) -> dict[str, Any]:
    tomorrow = this_hour().replace(hour=0) + timedelta(days=1)
    return {
        "target_kw": 1.5,
        "start": f"{tomorrow:%Y-%m-%d}T18:00:00Z",
        "end": f"{tomorrow:%Y-%m-%d}T20:00:00Z",
        "direction": "down",
        "point": [2.17, 41.38],
        "radius_km": 10,
        **overrides,
    }


def test_the_advice_request_flow_is_202_then_202_then_200(app, client_as, portfolio):
    aggregator = client_as("aggregator", aggregator_id=AGGREGATOR)
    asked = aggregator.post("/advice-requests", **as_json(evening_request()))
    assert asked.status_code == 202
    job_url, result_url = asked.json["_links"]["job"]["href"], asked.json["_links"]["result"]["href"]
    assert asked.headers["Location"].endswith(job_url)
    assert aggregator.get(job_url).status_code == 202
    assert aggregator.get(result_url).status_code == 202
    jobs.run_pending(app)
    done = aggregator.get(job_url)
    assert done.status_code == 200 and done.json["status"] == "done"
    advice = aggregator.get(result_url)
    assert advice.status_code == 200 and advice.json["kind"] == "aggregator"
    chosen = {d["device_id"] for d in advice.json["devices"]}
    assert chosen and chosen <= {portfolio["small"]["device_id"], portfolio["big"]["device_id"]}
    assert advice.json["expected_total_kw"] > 0


def test_the_same_request_is_the_same_job(client_as, portfolio):
    aggregator = client_as("aggregator", aggregator_id=AGGREGATOR)
    first = aggregator.post("/advice-requests", **as_json(evening_request())).json
    again = aggregator.post("/advice-requests", **as_json(evening_request())).json
    assert first["_id"] == again["_id"]


def test_another_aggregators_request_is_a_404(client_as, portfolio):
    asked = client_as("aggregator", aggregator_id=AGGREGATOR).post("/advice-requests", **as_json(evening_request()))
    other = client_as("aggregator", aggregator_id=OTHER_AGGREGATOR)
    assert other.get(asked.json["_links"]["job"]["href"]).status_code == 404
    assert other.get(asked.json["_links"]["result"]["href"]).status_code == 404
    assert other.get("/advice-requests/not-an-id").status_code == 404


@pytest.mark.parametrize(
    "role, ids, body, status",
    [
        ("prosumer", {"account_id": new_uuid(), "aggregator_id": AGGREGATOR}, {}, 403),
        ("aggregator", {"aggregator_id": AGGREGATOR}, {"aggregator_id": OTHER_AGGREGATOR}, 403),
        ("aggregator", {"aggregator_id": AGGREGATOR}, {"direction": "sideways"}, 422),
        ("aggregator", {"aggregator_id": AGGREGATOR}, {"start": "tomorrow"}, 422),
        ("aggregator", {"aggregator_id": AGGREGATOR}, {"end": "2020-01-01T00:00:00Z"}, 422),
        ("aggregator", {"aggregator_id": AGGREGATOR}, {"target_kw": -1}, 422),
        ("service", {}, {}, 422),  # must name the aggregator
        ("admin", {}, {"aggregator_id": AGGREGATOR}, 202),
    ],
)
def test_advice_requests_are_checked(client_as, role, ids, body, status):
    assert client_as(role, **ids).post("/advice-requests", **as_json(evening_request(**body))).status_code == status


def test_advice_requests_need_a_token(anon):
    assert anon.post("/advice-requests", **as_json(evening_request())).status_code == 401


def test_a_failed_request_answers_422_with_the_reason(app, client_as, portfolio, monkeypatch):
    from registry.jobs import tasks

    def broken(app, batch, now):
        raise ValueError("the flexibility forecasts are unreadable")

    monkeypatch.setitem(tasks.TASKS, "aggregator_advice", broken)
    aggregator = client_as("aggregator", aggregator_id=AGGREGATOR)
    result_url = aggregator.post("/advice-requests", **as_json(evening_request())).json["_links"]["result"]["href"]
    jobs.run_pending(app)
    failed = aggregator.get(result_url)
    assert failed.status_code == 422 and "unreadable" in failed.json["_error"]["message"]
