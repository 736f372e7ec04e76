"""Store: geo rewrites for MongoDB's count, the embedded client, indexes."""

from __future__ import annotations

import os
from datetime import UTC

import pytest

from registry.store import geo, geo_filters
from tests.factories import at, device

CENTER = [2.17, 41.38]
# MongoDB's own metres -> radians radius (kRadiusOfEarthInMeters), written out: a count
# must select what MongoDB's $near does
MONGODB_RADIUS_M = 6378100.0
NEAR = {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$minDistance": 1000, "$maxDistance": 5000}}


def test_near_is_counted_as_geo_within_center_sphere():
    spec = {"device_class": "dhwDevice", "location": NEAR}
    assert geo_filters.count_safe(spec) == {
        "$and": [
            {"device_class": "dhwDevice"},
            {
                "$and": [
                    {"location": {"$geoWithin": {"$centerSphere": [CENTER, 5000 / MONGODB_RADIUS_M]}}},
                    {"location": {"$not": {"$geoWithin": {"$centerSphere": [CENTER, 1000 / MONGODB_RADIUS_M]}}}},
                ]
            },
        ]
    }


def test_near_without_max_distance_counts_documents_with_a_location():
    clause = geo.parse_clause("location", {"$nearSphere": {"$geometry": {"type": "Point", "coordinates": CENTER}}})
    assert clause.as_within() == {"location": {"$exists": True}}


def test_geo_within_is_kept_verbatim_for_count():
    within = {"$geoWithin": {"$box": [[0, 0], [1, 1]]}}
    assert geo_filters.count_safe({"location": within}) == {"$and": [{}, {"location": within}]}


@pytest.mark.parametrize(
    "a,b,metres",
    [
        ((0.0, 0.0), (0.0, 1.0), 111194.9),  # one degree on the mean radius 6371.0088 km
        ((2.17, 41.38), (2.17, 41.38), 0.0),
        ((-3.7038, 40.4168), (2.1734, 41.3851), 505000),  # Madrid - Barcelona, ~505 km
    ],
)
def test_haversine(a, b, metres):
    assert geo.haversine_m(a, b) == pytest.approx(metres, rel=0.001 if metres < 200000 else 0.01, abs=1)


@pytest.mark.parametrize("point,inside", [((0.5, 0.5), True), ((1.5, 0.5), False), ((1.0, 0.5), True)])
def test_point_in_ring_counts_edges_as_inside(point, inside):
    assert geo.point_in_ring(point, [(0, 0), (1, 0), (1, 1), (0, 1)]) is inside


def test_find_one_and_count_see_geo_on_the_embedded_store(app, insert):
    insert(
        "devices",
        device(device_name="in", location=at(2.171, 41.381)),
        device(device_name="out", location=at(3.0, 42.0)),
    )
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
def test_real_mongodb_counts_near_like_the_embedded_store(app, client, insert, throwaway_mongodb):
    """On the run's own database (tests/conftest.py drops it), as an admin."""
    import json
    from urllib.parse import urlencode

    assert app.config["STORE_KIND"] == "mongodb"
    assert app.config["MONGO_DBNAME"] == throwaway_mongodb
    insert("devices", device(location=at(2.171, 41.381)), device(location=at(3.0, 42.0)))
    near = {"location": {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": 1000}}}
    response = client.get("/devices?" + urlencode({"where": json.dumps(near)}))
    assert response.status_code == 200, response.json
    assert response.json["_meta"]["total"] == 1


def test_bulk_insert_keeps_unique_indexes_on_the_embedded_store(app):
    from pymongo.errors import DuplicateKeyError

    from registry.store.embedded import bulk_insert

    docs = [device() for _ in range(50)]
    with app.app_context():
        devices = app.data.driver.db["devices"]
        bulk_insert(devices, docs)
        assert devices.count_documents({}) == 50
        assert devices.index_information()["device_id_unique"]["unique"] is True
        with pytest.raises(DuplicateKeyError):
            devices.insert_one(device(device_id=docs[0]["device_id"]))


# --- dates as Eve's MongoDB client gives them ---------------------------------------------


def test_the_embedded_store_is_set_up_like_eves_mongodb_client(app, insert):
    from datetime import datetime

    with app.app_context():
        client = app.data.pymongo().cx
        assert client.codec_options.tz_aware is True
        app.data.driver.db["prices"].insert_one({"start": datetime(2030, 1, 1, 18, 0)})  # naive = UTC
        stored = app.data.driver.db["prices"].find_one()["start"]
    assert stored.utcoffset().total_seconds() == 0 and stored == datetime(2030, 1, 1, 18, tzinfo=UTC)


# --- one reading per device and time -------------------------------------------------------


def batch(dev: dict, first: int, count: int, kw: float = 1.0) -> list[dict]:
    return [
        {
            "device_id": dev["device_id"],
            "timestamp": f"2030-01-01T{(first + i) // 4:02d}:{(first + i) % 4 * 15:02d}:00Z",
            "power_kw": kw,
        }
        for i in range(count)
    ]


def readings_stored(db) -> list[tuple]:
    return sorted((m["timestamp"], m["power_kw"]) for m in db["measurements"].find())


def test_a_resent_batch_stores_nothing_twice_and_answers_success(client_as, insert, db):
    from tests.conftest import as_json

    dev = device()
    insert("devices", dev)
    service = client_as("service")
    first = service.post("/measurements", **as_json(batch(dev, 0, 8)))
    stored = readings_stored(db)
    again = service.post("/measurements", **as_json(batch(dev, 0, 8, kw=9.0)))
    assert (first.status_code, again.status_code) == (201, 201)
    assert [i["_id"] for i in again.json["_items"]] == [i["_id"] for i in first.json["_items"]]
    assert readings_stored(db) == stored  # the first reading of a slot is kept
    overlapping = service.post("/measurements", **as_json(batch(dev, 4, 8)))
    assert overlapping.status_code == 201 and db["measurements"].count_documents({}) == 12
    twice_in_one = service.post("/measurements", **as_json(batch(dev, 20, 1) * 3))
    ids = {i["_id"] for i in twice_in_one.json["_items"]}
    assert twice_in_one.status_code == 201 and len(ids) == 1 and db["measurements"].count_documents({}) == 13
    assert db["measurements"].index_information()["device_day"]["unique"] is True  # one bucket per device and day


def test_racing_bulk_inserts_of_one_batch_store_it_once(server, slow_store, insert, token, db):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    dev = device()
    insert("devices", dev)
    headers = {"Authorization": f"Bearer {token('service')}"}
    readings = batch(dev, 0, 12)
    with ThreadPoolExecutor(4) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    requests.post(f"{server}/measurements", headers=headers, json=readings, timeout=60).status_code
                ),
                range(4),
            )
        )
    assert codes == [201] * 4 and db["measurements"].count_documents({}) == 12


def test_a_reading_is_unique_per_device_and_timestamp_in_the_store(app, insert):
    from datetime import datetime

    from pymongo.errors import DuplicateKeyError

    dev = device()
    reading = {"device_id": dev["device_id"], "timestamp": datetime(2030, 1, 1, tzinfo=UTC), "power_kw": 1.0}
    with app.app_context():
        measurements = app.data.driver.db["measurements"]
        assert measurements.index_information()["device_day"]["unique"] is True  # the buckets' key
        measurements.insert_one(dict(reading))
        with pytest.raises(DuplicateKeyError):
            measurements.insert_one(dict(reading))


# --- ids are the store's -------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    ["offers", "contracts", "measurements", "prices", "forecasts", "advice", "vens", "prosumers", "aggregators"],
)
def test_a_client_chosen_id_is_refused_for_every_resource(client, db, resource):
    from tests.conftest import as_json

    response = client.post(f"/{resource}", **as_json({"_id": "6b0f9ccaad9e32b0b92cdea2"}))
    assert response.status_code == 422 and "read-only" in str(response.json["_issues"]["_id"])
    assert db[resource].count_documents({}) == 0


def test_a_valid_offer_with_an_id_is_refused_and_nothing_stored(client_as, insert, db):
    from tests.conftest import as_json

    dev = device()
    insert("devices", dev)
    prosumer = client_as("prosumer", account_id=dev["account_id"], aggregator_id=dev["aggregator_id"])
    body = {
        "_id": "6b0f9ccaad9e32b0b92cdea2",
        "device_id": dev["device_id"],
        "start": "2030-01-02T18:00:00Z",
        "end": "2030-01-02T19:00:00Z",
        "direction": "down",
        "power_kw": 1.0,
        "price": 0.2,
    }
    response = prosumer.post("/offers", **as_json(body))
    assert response.status_code == 422 and "_id" in response.json["_issues"]
    assert db["offers"].count_documents({}) == 0
