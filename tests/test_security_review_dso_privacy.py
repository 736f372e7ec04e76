"""Findings of an outside attack on the dso role, a prosumer's rights and `where` on
dates (a security review of issues 17 and 18's first parts). Each test states what
the docs promise; each failed on main at 9388028, before the fixes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from registry.store import timeseries
from tests.factories import AGGREGATOR, at, device, new_uuid

N = "dso-north"
DAY = "2030-01-01"


def box(lng: float, lat: float, d: float = 1e-4) -> dict:
    ring = [[lng - d, lat - d], [lng + d, lat - d], [lng + d, lat + d], [lng - d, lat + d], [lng - d, lat - d]]
    return {"type": "Polygon", "coordinates": [ring]}


def readings(db, devices, kw_of) -> None:
    timeseries.store(
        db[timeseries.COLLECTION],
        [
            {
                "device_id": d["device_id"],
                "account_id": d["account_id"],
                "aggregator_id": d["aggregator_id"],
                "timestamp": datetime.fromisoformat(f"{DAY}T10:00:00").replace(tzinfo=UTC),
                "power_kw": kw_of(i),
            }
            for i, d in enumerate(devices)
        ],
    )


def new_area(client, geometry) -> str:
    """An area assigned by the operator (admins assign grid areas; a DSO cannot draw one)."""
    posted = client.post("/grid_areas", json={"dso_id": N, "name": "probe", "geometry": geometry})
    assert posted.status_code == 201, posted.json
    return posted.json["_id"]


def series(client, area_id):
    return client.get(
        "/series", query_string={"grid_area": area_id, "start": f"{DAY}T10:00:00Z", "end": f"{DAY}T10:15:00Z"}
    )


# --- 1. the dso role: one household's data through a tiny area ---


def test_a_dso_cannot_read_one_households_readings_through_a_tiny_area(app, client_as, insert, db):
    """docs/market.md: a DSO never reads a prosumer's data; the DSO_MIN_DEVICES blank
    is "so that no aggregate is one or two households' readings". But the minimum
    counts devices, not households, and a DSO may draw any area anywhere: a box of
    20 m around one house with 5 devices gives that household's own series."""
    account = new_uuid()
    house = [device(account_id=account, location=at(-9.13694, 38.68712)) for _ in range(5)]
    insert("devices", *house)
    readings(db, house, lambda i: 0.5 + i)
    dso = client_as("dso", dso_id=N)
    answer = series(dso, new_area(client_as("admin"), box(-9.13694, 38.68712)))
    assert answer.status_code in (200, 403), answer.json
    values = [p["value"] for p in answer.json.get("points", [])]
    assert values in ([], [None]), f"one prosumer's household readings reached a DSO: {values}"


def test_a_dso_cannot_draw_the_areas_it_could_subtract(client_as, db):
    """Two areas that differ by one house, each over the minimum, would give that
    house's readings as the difference of their sums: a DSO draws no area at all."""
    dso = client_as("dso", dso_id=N)
    refused = dso.post("/grid_areas", json={"dso_id": N, "name": "probe", "geometry": box(2.12, 41.10)})
    assert refused.status_code == 403 and db["grid_areas"].count_documents({}) == 0


def test_a_dsos_area_figures_never_describe_one_device(app, client_as, insert):
    """docs/market.md: the item carries figures "and nothing finer"; a DSO never sees a
    device. An area drawn around one device gives that device's class, capacity and
    whether its owner put it on the marketplace (and locates it to a few metres)."""
    insert("devices", device(location=at(5.5, 45.5), max_capacity=7.25, available_capacity=3.5))
    dso = client_as("dso", dso_id=N)
    area_id = new_area(client_as("admin"), box(5.5, 45.5))
    figures = dso.get(f"/grid_areas/{area_id}").json.get("figures") or {}
    assert figures.get("max_capacity_kw") != 7.25 and figures.get("devices", 0) != 1, figures


# --- 2. /measurements: operators mongomock lacks reach the store un-translated: a 500 ---


@pytest.mark.parametrize(
    "where",
    [
        {"power_kw": {"$mod": [2, 0]}},
        {"timestamp": {"$mod": [2, 0]}},
        {"device_id": {"$bitsAnySet": [1]}},
        {"power_kw": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}},
        {"timestamp": {"$geoWithin": {"$centerSphere": [[0, 0], 1]}}},
    ],
)
def test_a_where_on_measurements_is_never_a_500(app, client_as, insert, db, where):
    """docs/contract.md, "Quality bars": bad input gets a clear 4xx. The same `where`
    on /devices or /contracts is a 400 ("refused by the store"); on /measurements
    (registry/store/readings_view.py calls mongomock's filter_applies directly) it is
    a 500, for any prosumer or aggregator."""
    mine = device()
    insert("devices", mine)
    readings(db, [mine], lambda i: 1.0)
    client = client_as("prosumer", account_id=mine["account_id"])
    answer = client.get("/measurements", query_string={"where": json.dumps(where)})
    assert answer.status_code == 400, answer.status_code


# --- 3. where on dates: a non-date compared with a date field is silently empty ---


@pytest.mark.parametrize(
    "where",
    [
        {"start": {"$elemMatch": {"$gt": "garbage"}}},
        {"ven_response.history": {"$elemMatch": {"at": "garbage"}}},
        {"ven_response.history.0.at": "garbage"},
        {"ven_response.history": {"$elemMatch": {"at": {"$gt": 5}}}},
    ],
)
def test_a_date_compared_with_a_non_date_is_a_400_also_nested(client_as, insert, where):
    """docs/contract.md: "a date field compared with anything but a date written
    2030-01-31T12:00:00Z" is a 400. Through $elemMatch or an array index the check
    is skipped and the answer is an empty 200."""
    insert(
        "contracts",
        {
            "aggregator_id": AGGREGATOR,
            "status": "settled",
            "start": datetime(2030, 1, 1, tzinfo=UTC),
            "end": datetime(2030, 1, 1, 1, tzinfo=UTC),
            "ven_response": {
                "opt": "optIn",
                "event_id": "e1",
                "at": datetime(2030, 1, 1, tzinfo=UTC),
                "history": [{"opt": "optIn", "event_id": "e1", "at": datetime(2030, 1, 1, tzinfo=UTC)}],
            },
        },
    )
    answer = client_as("admin").get("/contracts", query_string={"where": json.dumps(where)})
    assert answer.status_code == 400, (answer.status_code, answer.json.get("_meta"))


# --- 4. a prosumer's rights ---


def test_erasure_leaves_no_reading_forecast_or_ven_of_the_account_in_the_audit_trail(client_as, insert, db):
    """docs/privacy.md: erasure removes the account's readings, forecasts and VEN
    enrolments; the oplog is kept "with personal values removed". But a DELETE's
    oplog entry holds the whole deleted document, and scrub_audit only unsets name,
    email, phone, address, display_name, device_name and location: the deleted
    reading's power, the VEN's name and id stay readable by admins."""
    a = new_uuid()
    insert("prosumers", {"account_id": a, "aggregator_id": AGGREGATOR, "display_name": "Ada"})
    mine = device(account_id=a)
    insert("devices", mine)
    [ven] = insert("vens", {"ven_name": "ada-house-gateway", "account_id": a, "aggregator_id": AGGREGATOR})
    readings(db, [mine], lambda i: 4.321)
    prosumer, admin = client_as("prosumer", account_id=a), client_as("admin")
    gone = prosumer.delete(f"/vens/{ven['_id']}", headers={"If-Match": ven["_etag"]})
    assert gone.status_code == 204, gone.json
    reading = admin.get("/measurements", query_string={"where": json.dumps({"account_id": a})}).json["_items"][0]
    gone = admin.delete(f"/measurements/{reading['_id']}", headers={"If-Match": reading["_etag"]})
    assert gone.status_code == 204, gone.json
    erased = prosumer.post(f"/accounts/{a}/erase", json={"confirm": a})
    assert erased.status_code == 200, erased.json
    trail = json.dumps(admin.get("/oplog", query_string={"max_results": 200}).json["_items"])
    assert "ada-house-gateway" not in trail, "the erased VEN enrolment's name is still in the audit trail"
    assert "4.321" not in trail, "the erased account's reading is still in the audit trail"


def test_a_prosumer_never_sees_another_prosumers_ven_answers_of_a_shared_contract(client_as, insert):
    """docs/contract.md: "a prosumer sees only its own share of a contract several
    prosumers share" (shares.py: "its own account, devices, offers and settlement,
    none of the others'"). ven_response and its history are left whole: prosumer A
    reads B's VEN id and B's opt-out, in GET /contracts and in its export."""
    a, b = new_uuid(), new_uuid()
    theirs_ven = new_uuid()
    insert(
        "prosumers",
        {"account_id": a, "aggregator_id": AGGREGATOR, "display_name": "A"},
        {"account_id": b, "aggregator_id": AGGREGATOR, "display_name": "B"},
    )
    mine, theirs = device(account_id=a), device(account_id=b, ven_id=theirs_ven)
    insert("devices", mine, theirs)
    when = datetime(2030, 1, 1, tzinfo=UTC)
    answer = {"opt": "optOut", "event_id": "ev-b", "ven_id": theirs_ven, "at": when}
    insert(
        "contracts",
        {
            "_id": ObjectId(),
            "aggregator_id": AGGREGATOR,
            "account_ids": [a, b],
            "device_ids": [mine["device_id"], theirs["device_id"]],
            "status": "settled",
            "start": when,
            "end": datetime(2030, 1, 1, 1, tzinfo=UTC),
            "ven_response": {**answer, "history": [answer]},
        },
    )
    prosumer = client_as("prosumer", account_id=a)
    listed = prosumer.get("/contracts")
    assert listed.status_code == 200 and listed.json["_meta"]["total"] == 1
    assert theirs_ven not in listed.get_data(as_text=True), "B's VEN and its answer reached prosumer A"
    exported = prosumer.get(f"/accounts/{a}/export")
    assert exported.status_code == 200
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(exported.data)) as bundle:
        assert theirs_ven not in bundle.read("account.json").decode(), "B's VEN is in A's export"


# --- 5. a request at the end of the calendar: a 500 ---


def test_a_request_ending_after_year_9999_is_a_422_not_a_500(client_as, insert):
    """docs/market.md: a bad request is refused "with a 422 that says why". A start of
    9999-12-31T23:45:00Z passes every check, then `end = start + slots × 15 min`
    overflows (registry/market/flex_rules.py, check_new_request): OverflowError, 500."""
    from tests.test_dso_areas import area

    [mine] = insert("grid_areas", area(N))
    body = {
        "dso_id": N,
        "grid_area": str(mine["_id"]),
        "direction": "down",
        "start": "9999-12-31T23:45:00Z",
        "power_kw": [5.0],
        "gate_closure": "9999-12-31T23:00:00Z",
        "max_price": 0.4,
    }
    answer = client_as("dso", dso_id=N).post("/flexibility_requests", json=body)
    assert answer.status_code == 422, answer.status_code


# --- 6. a device's audit entries are keyed by device_id: neither exported nor scrubbed ---


def test_erasure_scrubs_and_the_export_lists_a_devices_audit_entries(client_as, insert):
    """docs/privacy.md: the export holds "the audit entries about these documents";
    erasure removes "the same personal fields inside the changes the oplog recorded".
    Eve keys a device's oplog entries by its id_field, device_id (a string), but
    privacy_export.audit_entries and privacy_erase.scrub_audit look them up by the
    device's ObjectId _id: a PATCH of a device's name and location (by the bridge, the
    service role) is missing from the export, and survives erasure in the oplog."""
    a = new_uuid()
    insert("prosumers", {"account_id": a, "aggregator_id": AGGREGATOR, "display_name": "Ada"})
    mine = device(account_id=a)
    insert("devices", mine)
    service, admin, prosumer = client_as("service"), client_as("admin"), client_as("prosumer", account_id=a)
    etag = service.get(f"/devices/{mine['device_id']}").json["_etag"]
    moved = service.patch(
        f"/devices/{mine['device_id']}",
        json={"device_name": "Kitchen of Ms Secretname", "location": at(2.11111, 41.22222)},
        headers={"If-Match": etag},
    )
    assert moved.status_code == 200, moved.json
    import io
    import zipfile

    exported = prosumer.get(f"/accounts/{a}/export")
    with zipfile.ZipFile(io.BytesIO(exported.data)) as bundle:
        audit = json.loads(bundle.read("account.json"))["audit"]
    assert any(e["r"] == "devices" for e in audit), "the device's audit entry is not in the export"
    assert prosumer.post(f"/accounts/{a}/erase", json={"confirm": a}).status_code == 200
    trail = json.dumps(admin.get("/oplog", query_string={"max_results": 200}).json["_items"])
    assert "Secretname" not in trail and "41.22222" not in trail, "the device's name and location survive erasure"
