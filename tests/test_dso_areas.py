"""The dso role and its grid areas (issue 17, item 1; docs/market.md, "Grid areas").

Two grid operators, N and S, each with an area; devices of two aggregators inside
N's area and one outside. Areas are assigned by an admin (a DSO drawing its own could
draw one around a house); a DSO reads its own areas only and may rename them, sees
counts and capacity inside them when enough households are there, and never a
device, a prosumer or a reading.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import as_json
from tests.factories import at, device

N, S = "dso-north", "dso-south"
SQUARE = [[[2.0, 41.0], [2.2, 41.0], [2.2, 41.2], [2.0, 41.2], [2.0, 41.0]]]
ELSEWHERE = [[[10.0, 50.0], [10.2, 50.0], [10.2, 50.2], [10.0, 50.2], [10.0, 50.0]]]


def area(dso_id: str = N, coordinates=SQUARE, kind: str = "Polygon", **extra) -> dict:
    return {
        "dso_id": dso_id,
        "name": f"area of {dso_id}",
        "geometry": {"type": kind, "coordinates": coordinates},
        **extra,
    }


@pytest.fixture
def grid(insert) -> dict:
    devices = insert(
        "devices",
        device(aggregator_id="agg-alpha", location=at(2.1, 41.1), max_capacity=3.0, device_class="dhwDevice"),
        device(aggregator_id="agg-beta", location=at(2.05, 41.15), max_capacity=5.0, device_class="hvacDevice"),
        device(aggregator_id="agg-beta", location=at(2.15, 41.05), marketplace_availability="no", max_capacity=2.0),
        device(aggregator_id="agg-alpha", location=at(3.0, 41.1), max_capacity=100.0),
    )
    areas = insert("grid_areas", area(N), area(S, ELSEWHERE))
    return {"devices": devices, "north": areas[0], "south": areas[1]}


def dso(client_as, dso_id: str = N):
    return client_as("dso", dso_id=dso_id)


def test_a_dso_lists_and_reads_only_its_own_areas(client_as, grid):
    body = dso(client_as).get("/grid_areas").json
    assert [a["dso_id"] for a in body["_items"]] == [N] and body["_meta"]["total"] == 1
    assert dso(client_as).get(f"/grid_areas/{grid['south']['_id']}").status_code == 404
    assert dso(client_as, S).get(f"/grid_areas/{grid['north']['_id']}").status_code == 404
    where = json.dumps({"dso_id": S})
    assert dso(client_as).get(f"/grid_areas?where={where}").json["_meta"]["total"] == 0


def test_a_dso_sees_counts_and_capacity_inside_never_a_device(app, client_as, grid):
    app.config["DSO_MIN_HOUSEHOLDS"] = 3  # the three devices inside are three households'
    body = dso(client_as).get(f"/grid_areas/{grid['north']['_id']}").json
    assert body["figures"] == {
        "devices": 3,
        "marketplace_devices": 2,
        "max_capacity_kw": 10.0,
        "available_capacity_kw": 6.0,
        "devices_by_class": {"dhwDevice": 2, "hvacDevice": 1},
    }
    text = json.dumps(body)
    for d in grid["devices"]:
        assert d["device_id"] not in text and d["account_id"] not in text


@pytest.mark.parametrize(
    "resource",
    ["devices", "prosumers", "measurements", "vens", "offers", "contracts", "forecasts", "advice", "jobs", "oplog"],
)
def test_a_dso_reads_no_device_prosumer_reading_or_market_document(client_as, grid, resource):
    response = dso(client_as).get(f"/{resource}")
    assert response.status_code == 403


def test_a_dso_reads_the_public_directories(client_as, grid, insert):
    insert("aggregators", {"aggregator_id": "agg-alpha", "name": "Alpha"})
    assert dso(client_as).get("/aggregators").json["_meta"]["total"] == 1
    assert dso(client_as).get("/prices").status_code == 200


def test_fewer_households_than_the_minimum_withhold_the_figures(app, client_as, grid, insert):
    app.config["DSO_MIN_HOUSEHOLDS"] = 4
    body = dso(client_as).get(f"/grid_areas/{grid['north']['_id']}").json
    assert body["figures"] == {"withheld": "fewer than 4 households in this area"}
    same_home = grid["devices"][0]["account_id"]  # a fourth device of a household already inside
    insert("devices", device(account_id=same_home, location=at(2.12, 41.12)))
    assert "withheld" in dso(client_as).get(f"/grid_areas/{grid['north']['_id']}").json["figures"]
    admin = client_as("admin").get(f"/grid_areas/{grid['north']['_id']}").json  # the operator sees all
    assert admin["figures"]["devices"] == 4


def test_areas_are_assigned_by_an_admin_not_drawn_by_a_dso(client_as, db):
    response = client_as("admin").post(
        "/grid_areas", **as_json(area(N, kind="MultiPolygon", coordinates=[SQUARE, ELSEWHERE]))
    )
    assert response.status_code == 201, response.json
    response = dso(client_as).post("/grid_areas", **as_json(area(N)))
    assert response.status_code == 403
    assert db["grid_areas"].count_documents({}) == 1


@pytest.mark.parametrize(
    "role,ids",
    [("aggregator", {"aggregator_id": "agg-alpha"}), ("prosumer", {"account_id": device()["account_id"]})],
)
def test_other_roles_cannot_touch_grid_areas(client_as, grid, db, role, ids):
    api = client_as(role, **ids)
    assert api.get("/grid_areas").status_code == 403
    assert api.post("/grid_areas", **as_json(area(N))).status_code == 403
    assert api.get(f"/grid_areas/{grid['north']['_id']}").status_code == 403
    assert db["grid_areas"].count_documents({}) == 2


def test_tokens_without_a_dso_id_are_refused(client_as, grid):
    response = client_as("dso").get("/grid_areas")
    assert response.status_code == 403 and "carries no dso_id" in response.json["_error"]["message"]


def test_a_dso_renames_its_own_area_and_nothing_more(client_as, grid, db):
    north, south = grid["north"], grid["south"]
    api = dso(client_as)
    renamed = api.patch(f"/grid_areas/{north['_id']}", headers={"If-Match": north["_etag"]}, **as_json({"name": "N1"}))
    assert renamed.status_code == 200
    etag = {"If-Match": renamed.json["_etag"]}
    assert api.patch(f"/grid_areas/{north['_id']}", headers=etag, **as_json({"dso_id": S})).status_code == 403
    reshaped = api.patch(f"/grid_areas/{north['_id']}", headers=etag, **as_json({"geometry": area(N)["geometry"]}))
    assert reshaped.status_code == 403
    foreign = api.patch(f"/grid_areas/{south['_id']}", headers={"If-Match": south["_etag"]}, **as_json({"name": "x"}))
    assert foreign.status_code == 404
    assert api.delete(f"/grid_areas/{north['_id']}", headers=etag).status_code == 403
    assert db["grid_areas"].find_one({"_id": south["_id"]})["name"] == f"area of {S}"
    assert db["grid_areas"].count_documents({}) == 2


BAD_GEOMETRIES = {
    "open ring": {"type": "Polygon", "coordinates": [SQUARE[0][:-1]]},
    "three positions": {"type": "Polygon", "coordinates": [[[2.0, 41.0], [2.2, 41.0], [2.0, 41.0]]]},
    "latitude off Earth": {"type": "Polygon", "coordinates": [[[2, 41], [2.2, 41], [2.2, 91], [2, 41]]]},
    "a line": {"type": "Polygon", "coordinates": [[[2, 41], [2.1, 41], [2.2, 41], [2, 41]]]},
    "a continent": {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 60], [-10, 60], [-10, 35]]]},
    "a point": {"type": "Point", "coordinates": [2.0, 41.0]},
    "no rings": {"type": "Polygon", "coordinates": []},
    "extra member": {"type": "Polygon", "coordinates": SQUARE, "crs": "x"},
    "strings": {"type": "Polygon", "coordinates": [[["2", "41"], [2.2, 41], [2.2, 41.2], ["2", "41"]]]},
    "booleans": {"type": "Polygon", "coordinates": [[[True, 41], [2.2, 41], [2.2, 41.2], [True, 41]]]},
    "multipolygon of a bad part": {"type": "MultiPolygon", "coordinates": [SQUARE, [SQUARE[0][:3]]]},
    "too many positions": {"type": "Polygon", "coordinates": [[[2 + i * 1e-5, 41.0] for i in range(10_001)]]},
    "not a dict": [[2, 41]],
    # shapes MongoDB's $geoWithin refuses (found by a security review): a ring crossing itself, a hole outside
    "a bow tie": {
        "type": "Polygon",
        "coordinates": [[[2.1, 41.3], [2.3, 41.4], [2.3, 41.3], [2.1, 41.35], [2.1, 41.3]]],
    },
    "a hole outside its shell": {
        "type": "Polygon",
        "coordinates": [SQUARE[0], [[3.0, 41.0], [3.1, 41.0], [3.1, 41.1], [3.0, 41.1], [3.0, 41.0]]],
    },
}


@pytest.mark.parametrize("name", list(BAD_GEOMETRIES))
def test_bad_geometries_are_a_422(client_as, db, name):
    body = {"dso_id": N, "name": "bad", "geometry": BAD_GEOMETRIES[name]}
    response = client_as("admin").post("/grid_areas", **as_json(body))
    assert response.status_code == 422, (name, response.json)
    assert db["grid_areas"].count_documents({}) == 0


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_coordinates_are_a_400(client_as, db, number):
    text = json.dumps(area(N)).replace("2.2", number, 1)
    response = client_as("admin").post("/grid_areas", data=text, content_type="application/json")
    assert response.status_code == 400
    assert db["grid_areas"].count_documents({}) == 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_and_multipart_bodies_are_refused(client_as, db, content_type):
    response = client_as("admin").post("/grid_areas", data={"dso_id": N, "name": "x"}, content_type=content_type)
    assert response.status_code == 415
    assert db["grid_areas"].count_documents({}) == 0
