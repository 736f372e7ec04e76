"""GET /series?grid_area=…: a grid operator's aggregated figures (issue 17, item 1).

Inside N's area: d1..d3 of two aggregators; d4 outside. A DSO gets sums and means
over its own area, with too small groups left blank, and nothing finer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry.store import timeseries
from tests.factories import at, device
from tests.test_dso_areas import ELSEWHERE, SQUARE, N, S, area

DAY = "2030-01-01"


@pytest.fixture
def metered(insert, db) -> dict:
    devices = insert(
        "devices",
        device(aggregator_id="agg-alpha", location=at(2.1, 41.1)),
        device(aggregator_id="agg-beta", location=at(2.05, 41.15)),
        device(aggregator_id="agg-beta", location=at(2.15, 41.05)),
        device(aggregator_id="agg-alpha", location=at(3.0, 41.1)),
    )
    # 10:00: all four report; 10:15: only d1 (inside) and d4 (outside)
    readings = [(d, "10:00", 1.0 + i) for i, d in enumerate(devices)] + [(devices[0], "10:15", 7.0)]
    readings.append((devices[3], "10:15", 100.0))
    timeseries.store(
        db[timeseries.COLLECTION],
        [
            {
                "device_id": d["device_id"],
                "account_id": d["account_id"],
                "aggregator_id": d["aggregator_id"],
                "timestamp": datetime.fromisoformat(f"{DAY}T{hhmm}:00").replace(tzinfo=UTC),
                "power_kw": kw,
            }
            for d, hhmm, kw in readings
        ],
    )
    north, south = insert("grid_areas", area(N), area(S, ELSEWHERE))
    return {"north": str(north["_id"]), "south": str(south["_id"])}


def window(**params) -> dict:
    return {"start": f"{DAY}T10:00:00Z", "end": f"{DAY}T10:30:00Z", **params}


def test_a_dso_reads_the_sum_over_its_area_with_small_groups_blank(app, client_as, metered):
    app.config["DSO_MIN_HOUSEHOLDS"] = 2
    response = client_as("dso", dso_id=N).get("/series", query_string=window(grid_area=metered["north"]))
    assert response.status_code == 200, response.json
    assert response.json["devices"] == 3
    assert [(p["value"], p["devices"]) for p in response.json["points"]] == [(6.0, 3), (None, 0)]
    assert response.json["selection"] == {"grid_area": metered["north"]}
    assert "device_id" not in response.text


def test_the_minimum_counts_households_not_devices(app, client_as, metered, db):
    app.config["DSO_MIN_HOUSEHOLDS"] = 2
    inside = [d["device_id"] for d in db["devices"].find({}) if d["location"]["coordinates"][0] < 2.5]
    db["devices"].update_many({"device_id": {"$in": inside}}, {"$set": {"account_id": "one-household"}})
    response = client_as("dso", dso_id=N).get("/series", query_string=window(grid_area=metered["north"]))
    assert [(p["value"], p["devices"]) for p in response.json["points"]] == [(None, 0), (None, 0)]


def test_the_default_minimum_hides_an_area_of_three(client_as, metered):
    response = client_as("dso", dso_id=N).get("/series", query_string=window(grid_area=metered["north"], agg="mean"))
    assert [p["value"] for p in response.json["points"]] == [None, None]


def test_another_dsos_area_is_a_404(client_as, metered):
    response = client_as("dso", dso_id=S).get("/series", query_string=window(grid_area=metered["north"]))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"aggregator_id": "agg-alpha"},
        {"within": '{"type": "Polygon", "coordinates": %s}' % SQUARE},
        {"agg": "max"},
        {"agg": "min"},
    ],
)
def test_a_dso_gets_nothing_finer_than_its_area(client_as, metered, params):
    query = window(**({"grid_area": metered["north"]} if params.get("agg") or params.get("aggregator_id") else {}))
    response = client_as("dso", dso_id=N).get("/series", query_string={**query, **params})
    assert response.status_code in (400, 403), response.json
    assert "points" not in response.json


def test_a_device_id_is_refused_too(client_as, metered, db):
    device_id = db["devices"].find_one({})["device_id"]
    response = client_as("dso", dso_id=N).get("/series", query_string=window(device_id=device_id))
    assert response.status_code == 403


def test_an_aggregator_cannot_name_a_grid_area(client_as, metered):
    response = client_as("aggregator", aggregator_id="agg-alpha").get(
        "/series", query_string=window(grid_area=metered["north"])
    )
    assert response.status_code == 404


def test_an_admin_reads_any_area_unblanked(client, metered):
    response = client.get("/series", query_string=window(grid_area=metered["north"], agg="max"))
    assert [p["value"] for p in response.json["points"]] == [3.0, 7.0]


@pytest.mark.parametrize("value", ["", "zz", "0" * 25, "not-an-id"])
def test_a_bad_grid_area_id_is_a_400(client_as, metered, value):
    response = client_as("dso", dso_id=N).get("/series", query_string=window(grid_area=value))
    assert response.status_code == 400


def test_grid_area_is_in_the_openapi_document(client):
    names = [p["name"] for p in client.get("/api-docs").json["paths"]["/series"]["get"]["parameters"]]
    assert "grid_area" in names
