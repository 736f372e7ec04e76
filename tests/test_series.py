"""GET /series (registry/api/series.py): aggregated measurements per slot and per
coarser period, device counts, scoping by role, areas, and bad input. Expected values
are computed by hand in each test."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from registry.store import timeseries
from tests.factories import at, device

A, B = "agg-alpha", "agg-beta"
DAY = "2030-01-01"


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def fleet(insert, db) -> dict[str, dict]:
    """d1, d2, d3 of aggregator A (one prosumer each), d4 of B; readings 10:00-10:45:

    d1: 1, 2, 3, 4          d2: 10, -, 30, 40        d3: 100, 200, -, -      d4: 1000 at 10:00
    and on the next day d1: 5 at 00:00."""
    devices = {
        "d1": device(aggregator_id=A, location=at(2.0, 41.0)),
        "d2": device(aggregator_id=A, location=at(2.001, 41.001)),
        "d3": device(aggregator_id=A, location=at(10.0, 50.0)),
        "d4": device(aggregator_id=B, location=at(2.0, 41.0)),
    }
    insert("devices", *devices.values())
    values = {"d1": [1, 2, 3, 4], "d2": [10, None, 30, 40], "d3": [100, 200, None, None], "d4": [1000]}
    readings = [
        {**owners(devices[name]), "timestamp": when(f"{DAY}T10:{15 * i:02d}:00"), "power_kw": float(kw)}
        for name, series in values.items()
        for i, kw in enumerate(series)
        if kw is not None
    ]
    readings.append({**owners(devices["d1"]), "timestamp": when("2030-01-02T00:00:00"), "power_kw": 5.0})
    timeseries.store(db[timeseries.COLLECTION], readings)
    return devices


def owners(dev: dict) -> dict:
    return {"device_id": dev["device_id"], "account_id": dev["account_id"], "aggregator_id": dev["aggregator_id"]}


def get_series(client, **params):
    return client.get("/series", query_string=params)


def hour(**params) -> dict:
    return {"start": f"{DAY}T10:00:00Z", "end": f"{DAY}T11:00:00Z", **params}


def column(response, name: str = "value") -> list:
    assert response.status_code == 200, response.json
    return [point[name] for point in response.json["points"]]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("sum", [111.0, 202.0, 33.0, 44.0]),
        ("mean", [37.0, 101.0, 16.5, 22.0]),
        ("min", [1.0, 2.0, 3.0, 4.0]),
        ("max", [100.0, 200.0, 30.0, 40.0]),
    ],
)
def test_each_aggregate_per_slot_with_the_devices_counted(client_as, fleet, agg, expected):
    response = get_series(client_as("aggregator", aggregator_id=A), **hour(aggregator_id=A, agg=agg))
    assert column(response) == expected
    assert column(response, "devices") == [3, 2, 2, 2]
    body = response.json
    assert body["devices"] == 3 and body["resolution"] == 900 and body["agg"] == agg and body["unit"] == "kW"
    assert [p["timestamp"] for p in body["points"]] == [f"{DAY}T10:{m:02d}:00Z" for m in (0, 15, 30, 45)]


def test_one_hour_is_each_devices_mean_of_its_readings_then_the_aggregate(client_as, fleet):
    client = client_as("service")
    # per device: d1 (1+2+3+4)/4 = 2.5, d2 (10+30+40)/3 = 26.666667, d3 (100+200)/2 = 150
    assert column(get_series(client, **hour(aggregator_id=A, resolution="1h"))) == [179.166667]
    assert column(get_series(client, **hour(aggregator_id=A, resolution="3600", agg="max"))) == [150.0]
    assert column(get_series(client, **hour(aggregator_id=A, resolution="1h")), "devices") == [3]


def test_one_day_and_a_day_without_readings(client_as, fleet):
    client = client_as("admin")
    params = {"aggregator_id": A, "resolution": "1d", "start": f"{DAY}T00:00:00Z", "end": "2030-01-04T00:00:00Z"}
    response = get_series(client, **params)
    assert column(response) == [179.166667, 5.0, None]
    assert column(response, "devices") == [3, 1, 0]
    assert column(get_series(client, **{**params, "agg": "mean"})) == [59.722222, 5.0, None]


def test_one_device_and_one_prosumer(client_as, fleet):
    d2 = fleet["d2"]
    client = client_as("aggregator", aggregator_id=A)
    assert column(get_series(client, **hour(device_id=d2["device_id"]))) == [10.0, None, 30.0, 40.0]
    assert column(get_series(client, **hour(account_id=d2["account_id"])), "devices") == [1, 0, 1, 1]


def test_a_prosumer_asking_for_the_portfolio_gets_only_its_own_devices(client_as, fleet):
    d1 = fleet["d1"]
    prosumer = client_as("prosumer", account_id=d1["account_id"], aggregator_id=A)
    response = get_series(prosumer, **hour(aggregator_id=A))
    assert column(response) == [1.0, 2.0, 3.0, 4.0]
    assert response.json["devices"] == 1
    assert get_series(prosumer, **hour(device_id=fleet["d2"]["device_id"])).status_code == 404
    assert column(get_series(prosumer, **hour(account_id=fleet["d2"]["account_id"])), "devices") == [0] * 4


def test_an_aggregator_cannot_read_another_portfolio(client_as, fleet):
    other = client_as("aggregator", aggregator_id=B)
    response = get_series(other, **hour(aggregator_id=A))
    assert column(response) == [None] * 4 and column(response, "devices") == [0] * 4
    assert response.json["devices"] == 0
    assert get_series(other, **hour(device_id=fleet["d1"]["device_id"])).status_code == 404
    assert get_series(other, **hour(device_id="no-such-device")).status_code == 404
    # its own portfolio: d4 alone
    assert column(get_series(other, **hour(aggregator_id=B))) == [1000.0, None, None, None]


SQUARE = {"type": "Polygon", "coordinates": [[[1.9, 40.9], [2.1, 40.9], [2.1, 41.1], [1.9, 41.1], [1.9, 40.9]]]}


def test_an_area_is_scoped_too(client_as, fleet):
    area = {"within": json.dumps(SQUARE)}
    mine = get_series(client_as("aggregator", aggregator_id=A), **hour(**area))
    assert column(mine) == [11.0, 2.0, 33.0, 44.0]  # d1 and d2; d3 is far, d4 is B's
    everyone = get_series(client_as("service"), **hour(**area))
    assert column(everyone) == [1011.0, 2.0, 33.0, 44.0] and everyone.json["devices"] == 3
    circle = get_series(client_as("admin"), **hour(near="2.0,41.0", radius_m="1000"))
    assert column(circle) == [1011.0, 2.0, 33.0, 44.0]
    assert circle.json["selection"] == {"near": [2.0, 41.0], "radius_m": 1000.0}
    small = get_series(client_as("admin"), **hour(near="2.0,41.0", radius_m="10"))
    assert column(small, "devices") == [2, 1, 1, 1]  # d1 and d4, not d2 (about 140 m away)


def test_an_area_and_an_owner_together(client_as, fleet):
    response = get_series(client_as("admin"), **hour(within=json.dumps(SQUARE), aggregator_id=B))
    assert column(response) == [1000.0, None, None, None]


def test_without_a_token_401(anon, fleet):
    assert get_series(anon, **hour(aggregator_id=A)).status_code == 401


def test_documented_in_the_openapi_document(client):
    paths = client.get("/api-docs").json["paths"]
    names = {p["name"] for p in paths["/series"]["get"]["parameters"]}
    assert {"device_id", "account_id", "aggregator_id", "within", "near", "radius_m", "start", "end"} <= names
    assert {"200", "400", "401", "404", "429"} <= set(paths["/series"]["get"]["responses"])
