"""Queries clients rely on: where (both syntaxes), sort, projection, pages, geo."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from tests.factories import at, device

CENTER = [2.17, 41.38]  # Barcelona
# (name, lat offset in degrees north of CENTER, class, marketplace, capacity)
# one degree of latitude is ~111.3 km, so the offsets are ~1.1, 5.6, 8.9, 11.1, 55.7 km
LAYOUT = [
    ("near-1km", 0.01, "dhwDevice", "yes", 2.0),
    ("near-5km", 0.05, "dhwDevice", "yes", 4.5),
    ("near-9km", 0.08, "dhwDevice", "yes", 3.0),
    ("near-9km-hvac", 0.08, "hvacDevice", "yes", 9.0),
    ("near-5km-off-market", 0.05, "dhwDevice", "no", 8.0),
    ("far-11km", 0.10, "dhwDevice", "yes", 7.0),
    ("far-56km", 0.50, "dhwDevice", "yes", 6.0),
]
IN_10KM = ["near-5km", "near-9km", "near-1km"]  # by capacity, descending


@pytest.fixture
def fleet(insert):
    docs = [
        device(
            device_name=name,
            device_class=cls,
            marketplace_availability=market,
            max_capacity=cap,
            location=at(CENTER[0], CENTER[1] + dlat),
        )
        for name, dlat, cls, market, cap in LAYOUT
    ]
    docs.append(device(device_name="no-location", location=None))
    insert("devices", *docs)
    return {d["device_name"]: d for d in docs}


def get(client, resource="devices", **params):
    query = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}
    response = client.get(f"/{resource}?{urlencode(query)}")
    assert response.status_code == 200, response.json
    return response.json


NEAR = {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": 10000}}
WITHIN = {"$geoWithin": {"$centerSphere": [CENTER, 10000 / 6378100]}}


@pytest.mark.parametrize("geo", [NEAR, WITHIN], ids=["near", "geoWithin"])
def test_flexcoop_example_query(client, fleet, geo):
    where = {"device_class": "dhwDevice", "marketplace_availability": "yes", "location": geo}
    body = get(client, where=where, sort='[("max_capacity", -1)]', projection={"device_id": 1, "max_capacity": 1})
    names = {d["device_id"]: n for n, d in fleet.items()}
    assert [names[i["device_id"]] for i in body["_items"]] == IN_10KM
    assert [i["max_capacity"] for i in body["_items"]] == [4.5, 3.0, 2.0]
    assert body["_meta"]["total"] == 3
    assert all(
        set(i) - {"_id", "_etag", "_updated", "_created", "_links"} == {"device_id", "max_capacity"}
        for i in body["_items"]
    )


def test_near_without_sort_orders_by_distance(client, fleet):
    body = get(
        client,
        where={
            "location": {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": 60000}}
        },
    )
    assert [i["device_name"] for i in body["_items"]][:2] == ["near-1km", "near-5km"]
    assert [i["device_name"] for i in body["_items"]][-2:] == ["far-11km", "far-56km"]
    assert body["_meta"]["total"] == 7


def test_near_min_distance_and_paging_keep_total(client, fleet):
    where = {
        "location": {
            "$near": {
                "$geometry": {"type": "Point", "coordinates": CENTER},
                "$minDistance": 2000,
                "$maxDistance": 20000,
            }
        }
    }
    first = get(client, where=where, max_results=2, page=1)
    second = get(client, where=where, max_results=2, page=2)
    assert first["_meta"]["total"] == second["_meta"]["total"] == 5
    names = [i["device_name"] for i in first["_items"] + second["_items"]]
    assert names[0].startswith("near-5km") and names[-1] in ("near-9km", "near-9km-hvac")
    assert "near-1km" not in names


def test_legacy_near_sphere_in_radians(client, fleet):
    body = get(client, where={"location": {"$nearSphere": CENTER, "$maxDistance": 6000 / 6378100}})
    assert {i["device_name"] for i in body["_items"]} == {"near-1km", "near-5km", "near-5km-off-market"}


@pytest.mark.parametrize(
    "shape,expected",
    [
        ({"$box": [[2.16, 41.385], [2.18, 41.44]]}, {"near-1km", "near-5km", "near-5km-off-market"}),
        (
            {"$polygon": [[2.16, 41.385], [2.18, 41.385], [2.18, 41.47], [2.16, 41.47]]},
            {"near-1km", "near-5km", "near-5km-off-market", "near-9km", "near-9km-hvac"},
        ),
        (
            {
                "$geometry": {
                    "type": "Polygon",
                    "coordinates": [[[2.0, 41.0], [3.0, 41.0], [3.0, 41.395], [2.0, 41.395], [2.0, 41.0]]],
                }
            },
            {"near-1km"},
        ),
    ],
)
def test_geo_within_shapes(client, fleet, shape, expected):
    body = get(client, where={"location": {"$geoWithin": shape}})
    assert {i["device_name"] for i in body["_items"]} == expected
    assert body["_meta"]["total"] == len(expected)


def test_geo_inside_or_is_evaluated(client, fleet):
    where = {"$or": [{"location": WITHIN}, {"device_name": "far-56km"}]}
    body = get(client, where=where)
    assert body["_meta"]["total"] == 6


@pytest.mark.parametrize(
    "where,message",
    [
        ({"location": {"$near": {"$geometry": {"type": "Point", "coordinates": [500, 0]}}}}, "in range"),
        ({"location": {"$near": [2.1, 41.3]}}, "$geometry"),
        (
            {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": -1}}},
            "non-negative",
        ),
        ({"location": {"$geoWithin": {"$centerSphere": [CENTER]}}}, "radius"),
        ({"location": {"$geoWithin": {"$polygon": [[0, 0], [1, 1]]}}}, "three"),
        ({"location": {"$geoWithin": {"$circle": [CENTER, 1]}}}, "$circle is unknown"),
        ({"$or": [{"location": NEAR}, {"device_name": "x"}]}, "inside $or"),
    ],
)
def test_bad_geo_queries_are_400_with_a_message(client, fleet, where, message):
    response = client.get(f"/devices?{urlencode({'where': json.dumps(where)})}")
    assert response.status_code == 400
    assert message in response.json["_error"]["message"]


def test_python_syntax_where(client, fleet):
    body = get(client, where='device_class == "hvacDevice" and max_capacity > 5')
    assert [i["device_name"] for i in body["_items"]] == ["near-9km-hvac"]


def test_pagination_totals_and_links(client, insert):
    insert("devices", *[device(max_capacity=float(i)) for i in range(53)])
    body = get(client, max_results=20, page=3, sort="max_capacity")
    assert body["_meta"] == {"page": 3, "max_results": 20, "total": 53}
    assert [i["max_capacity"] for i in body["_items"]] == [float(i) for i in range(40, 53)]
    assert "next" not in body["_links"] and "prev" in body["_links"]
