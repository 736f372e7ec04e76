"""Store: geo rewrites for MongoDB's count, the embedded client, indexes."""
from __future__ import annotations

import os

import pytest

from registry import geo, geo_filters
from tests.factories import at, device

CENTER = [2.17, 41.38]
NEAR = {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER},
                  "$minDistance": 1000, "$maxDistance": 5000}}


def test_near_is_counted_as_geo_within_center_sphere():
    spec = {"device_class": "dhwDevice", "location": NEAR}
    assert geo_filters.count_safe(spec) == {"$and": [
        {"device_class": "dhwDevice"},
        {"$and": [
            {"location": {"$geoWithin": {"$centerSphere": [CENTER, 5000 / geo.EARTH_RADIUS_M]}}},
            {"location": {"$not": {"$geoWithin": {"$centerSphere": [CENTER, 1000 / geo.EARTH_RADIUS_M]}}}},
        ]},
    ]}


def test_near_without_max_distance_counts_documents_with_a_location():
    clause = geo.parse_clause("location", {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": CENTER}}})
    assert clause.as_within() == {"location": {"$exists": True}}


def test_geo_within_is_kept_verbatim_for_count():
    within = {"$geoWithin": {"$box": [[0, 0], [1, 1]]}}
    assert geo_filters.count_safe({"location": within}) == {"$and": [{}, {"location": within}]}


@pytest.mark.parametrize("a,b,metres", [
    ((0.0, 0.0), (0.0, 1.0), 111319.5),
    ((2.17, 41.38), (2.17, 41.38), 0.0),
    ((-3.7038, 40.4168), (2.1734, 41.3851), 505000),  # Madrid - Barcelona, ~505 km
])
def test_haversine(a, b, metres):
    assert geo.haversine_m(a, b) == pytest.approx(metres, rel=0.01, abs=1)


@pytest.mark.parametrize("point,inside", [((0.5, 0.5), True), ((1.5, 0.5), False), ((1.0, 0.5), True)])
def test_point_in_ring_counts_edges_as_inside(point, inside):
    assert geo.point_in_ring(point, [(0, 0), (1, 0), (1, 1), (0, 1)]) is inside


def test_find_one_and_count_see_geo_on_the_embedded_store(app, insert):
    insert("devices", device(device_name="in", location=at(2.171, 41.381)),
           device(device_name="out", location=at(3.0, 42.0)))
    with app.app_context():
        devices = app.data.driver.db["devices"]
        assert devices.count_documents({"location": NEAR}) == 0
        near = {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": 1000}}}
        assert devices.count_documents(near) == 1
        assert devices.find_one(near)["device_name"] == "in"


def test_embedded_store_is_private_to_each_app(tmp_path):
    from registry import create_app
    a = create_app({"INSTANCE_PATH": str(tmp_path / "a")})
    b = create_app({"INSTANCE_PATH": str(tmp_path / "b")})
    with a.app_context():
        a.data.driver.db["devices"].insert_one(device())
    with b.app_context():
        assert b.data.driver.db["devices"].count_documents({}) == 0


def test_indexes_are_created_at_start(app):
    with app.app_context():
        info = app.data.driver.db["devices"].index_information()
    assert info["device_id_unique"]["unique"] is True
    assert info["location_2dsphere"]["key"] == [("location", "2dsphere")]


@pytest.mark.skipif(not os.environ.get("MONGO_URI"), reason="needs a real MongoDB: set MONGO_URI")
def test_real_mongodb_counts_near_like_the_embedded_store(tmp_path):
    from urllib.parse import urlencode
    import json
    from registry import create_app
    app = create_app({"INSTANCE_PATH": str(tmp_path), "MONGO_DBNAME": f"test_{os.getpid()}"})
    with app.app_context():
        db = app.data.driver.db
        db["devices"].delete_many({})
        db["devices"].insert_many([device(location=at(2.171, 41.381)), device(location=at(3.0, 42.0))])
    near = {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": 1000}}}
    body = app.test_client().get("/devices?" + urlencode({"where": json.dumps(near)})).json
    assert body["_meta"]["total"] == 1
    with app.app_context():
        app.data.driver.cx.drop_database(app.config["MONGO_DBNAME"])


def test_bulk_insert_keeps_unique_indexes_on_the_embedded_store(app):
    from pymongo.errors import DuplicateKeyError
    from registry.store import bulk_insert
    docs = [device() for _ in range(50)]
    with app.app_context():
        devices = app.data.driver.db["devices"]
        bulk_insert(devices, docs)
        assert devices.count_documents({}) == 50
        assert devices.index_information()["device_id_unique"]["unique"] is True
        with pytest.raises(DuplicateKeyError):
            devices.insert_one(device(device_id=docs[0]["device_id"]))
