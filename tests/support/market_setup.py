"""What tests/test_marketplace_api_*.py (and the atomicity and system-write tests)
start from: the ``market`` fixture (two prosumers of AGGREGATOR, one of
OTHER_AGGREGATOR, their devices and every role's client), moments from tomorrow on
the hour, offer and contract bodies, the API steps that publish, contract, propose
and patch, the stored state a refused request must leave unchanged, and measurement
history for settlement."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

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


def contract_offer(market, **kw) -> tuple[str, str]:
    offer_id = publish(market.prosumer_a, market.dev["a"])
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id], **kw)))
    assert response.status_code == 201, response.json
    return offer_id, response.json["_id"]


def propose(market, device_key: str = "a", start: float = 1, end: float = 2):
    body = {
        **contract_body([], start=start, end=end),
        "device_ids": [market.dev[device_key]],
        "direction": "up",
        "power_kw": 1.5,
        "price": 0.4,
    }
    return market.aggregator.post("/contracts", **as_json(body))


def history_and_window(device_id: str, start: datetime, window_kw: list[float]) -> list[dict]:
    """3 kW in the window's slots on each of the 28 days before, then ``window_kw``."""

    def reading(moment: datetime, kw: float) -> dict:
        return {"device_id": device_id, "timestamp": moment, "power_kw": kw}

    past = [reading(start - timedelta(days=d, minutes=-15 * i), 3.0) for d in range(1, 29) for i in range(4)]
    return past + [reading(start + timedelta(minutes=15 * i), kw) for i, kw in enumerate(window_kw)]
