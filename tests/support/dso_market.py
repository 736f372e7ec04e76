"""What tests/test_dso_orders*.py start from: N's request over its area (5, 7.5, 7.5, 5
kW at most 0.4 per kWh) and three aggregators' bids to it, the tick at gate closure
with an injected clock, and the contract that holds a device bilaterally.

By hand (docs/market.md, "Orders"): beta (0.25; 3, 3, 5, 5; steps of 2) fits whole,
leaving 2, 4.5, 2.5, 0; alpha (0.30; 4, 7.5, 6, 0; steps of 1) takes 2, 4, 2, 0;
gamma (0.35; 2, 2, 2, 2; steps of 2) finds 0, 0.5, 0.5, 0 left: no whole step, NACK.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from registry.jobs import tick
from tests.conftest import as_json
from tests.factories import at, device
from tests.test_dso_areas import ELSEWHERE, N, S, area
from tests.test_dso_requests import SOON, flex_request, when

A, B, C = "agg-alpha", "agg-beta", "agg-gamma"
GATE = SOON - timedelta(hours=6)
AFTER_GATE = GATE + timedelta(minutes=1)
BIDS = {
    A: {"price": 0.30, "power_kw": [4.0, 7.5, 6.0, 0.0], "granularity_kw": 1.0, "devices": ("a1", "a2")},
    B: {"price": 0.25, "power_kw": [3.0, 3.0, 5.0, 5.0], "granularity_kw": 2.0, "devices": ("b1", "b2")},
    C: {"price": 0.35, "power_kw": [2.0, 2.0, 2.0, 2.0], "granularity_kw": 2.0, "devices": ("c1",)},
}


@pytest.fixture
def flex(client_as, insert):
    """The request, open, with the three bids submitted."""
    spots = {"a1": (A, 3.0), "a2": (A, 5.0), "b1": (B, 5.0), "b2": (B, 5.0), "c1": (C, 3.0)}
    devices = {k: device(aggregator_id=agg, max_capacity=kw, location=at(2.1, 41.1)) for k, (agg, kw) in spots.items()}
    insert("devices", *devices.values())
    north, _ = insert("grid_areas", area(N), area(S, ELSEWHERE))
    dso = client_as("dso", dso_id=N)
    created = dso.post("/flexibility_requests", **as_json(flex_request(north["_id"])))
    assert created.status_code == 201, created.json
    world = SimpleNamespace(request=created.json["_id"], dso=dso, devices=devices, bids={}, aggregators={})
    for aggregator, terms in BIDS.items():
        client = world.aggregators[aggregator] = client_as("aggregator", aggregator_id=aggregator)
        body = {
            "request": world.request,
            "aggregator_id": aggregator,
            **{k: v for k, v in terms.items() if k != "devices"},
            "device_ids": [devices[k]["device_id"] for k in terms["devices"]],
        }
        response = client.post("/bids", **as_json(body))
        assert response.status_code == 201, response.json
        world.bids[aggregator] = response.json["_id"]
    return world


def clear_at_gate(app, now=AFTER_GATE) -> dict[str, int]:
    return tick(app, now=now)


def bid_of(flex, aggregator: str) -> dict:
    return flex.aggregators[aggregator].get(f"/bids/{flex.bids[aggregator]}").json


def hold_bilaterally(client_as, device_doc: dict) -> str:
    """The device's prosumer offers it over the request's window and its aggregator
    contracts the offer (accepted at once: the slots are held)."""
    prosumer = client_as("prosumer", account_id=device_doc["account_id"], aggregator_id=device_doc["aggregator_id"])
    window = {"start": when(SOON), "end": when(SOON + timedelta(hours=1))}
    body = {"device_id": device_doc["device_id"], **window, "direction": "down", "power_kw": 2.0, "price": 0.2}
    offer = prosumer.post("/offers", **as_json(body))
    assert offer.status_code == 201, offer.json
    aggregator = client_as("aggregator", aggregator_id=device_doc["aggregator_id"])
    contract = {"aggregator_id": device_doc["aggregator_id"], "offers": [offer.json["_id"]], **window}
    response = aggregator.post("/contracts", **as_json(contract))
    assert response.status_code == 201, response.json
    return response.json["_id"]
