"""Measurements in day buckets (docs/timeseries.md), through the API: a re-sent reading
changes nothing, a late one fills its slot, a day boundary splits buckets, a reading
between slot starts keeps its time, and the readers (GET, the device page, the
forecast inputs) read what the buckets hold. Expected values are written out by hand."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from registry.jobs import inputs
from registry.store import timeseries
from tests.conftest import as_json
from tests.factories import device


def reading(dev: dict, at: str, kw: float, **extra: object) -> dict:
    return {"device_id": dev["device_id"], "timestamp": f"2030-01-01T{at}:00Z", "power_kw": kw, **extra}


def bucket(db, dev: dict, day: str) -> dict | None:
    return db[timeseries.COLLECTION].find_one({"_id": f"{dev['device_id']}/{day}"})


def listed(api, **params: object) -> dict:
    query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    response = api.get("/measurements", query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def test_a_resent_reading_changes_nothing_and_keeps_its_id(client_as, insert, db):
    dev = device()
    insert("devices", dev)
    service = client_as("service")
    first = service.post("/measurements", **as_json([reading(dev, "10:00", 1.25), reading(dev, "10:15", 2.5)]))
    again = service.post("/measurements", **as_json([reading(dev, "10:00", 9.0), reading(dev, "10:15", 9.0)]))
    assert (first.status_code, again.status_code) == (201, 201)
    ids = [i["_id"] for i in first.json["_items"]]
    assert ids == [f"{dev['device_id']}@2030-01-01T10:00:00Z", f"{dev['device_id']}@2030-01-01T10:15:00Z"]
    assert [i["_id"] for i in again.json["_items"]] == ids
    stored = bucket(db, dev, "2030-01-01")
    assert stored["n"] == 2 and stored["power_kw"][40:42] == [1.25, 2.5]  # 10:00 is slot 40
    assert [m["power_kw"] for m in listed(service)["_items"]] == [1.25, 2.5]


def test_a_late_reading_fills_its_slot(client_as, insert, db):
    dev = device()
    insert("devices", dev)
    service = client_as("service")
    service.post("/measurements", **as_json([reading(dev, "10:00", 1.0), reading(dev, "10:30", 3.0)]))
    assert bucket(db, dev, "2030-01-01")["power_kw"][40:43] == [1.0, None, 3.0]
    late = service.post("/measurements", **as_json(reading(dev, "10:15", 2.0)))
    assert late.status_code == 201 and late.json["_id"] == f"{dev['device_id']}@2030-01-01T10:15:00Z"
    assert bucket(db, dev, "2030-01-01")["power_kw"][40:43] == [1.0, 2.0, 3.0]
    assert bucket(db, dev, "2030-01-01")["n"] == 3
    assert [m["timestamp"] for m in listed(service)["_items"]] == [
        "2030-01-01T10:00:00Z",
        "2030-01-01T10:15:00Z",
        "2030-01-01T10:30:00Z",
    ]


def test_readings_across_midnight_land_in_two_buckets(client_as, insert, db):
    dev = device()
    insert("devices", dev)
    body = [
        reading(dev, "23:45", 1.5),
        {"device_id": dev["device_id"], "timestamp": "2030-01-02T00:00:00Z", "power_kw": -0.5},
        {"device_id": dev["device_id"], "timestamp": "2030-01-02T00:15:00Z", "power_kw": -1.0, "energy_kwh": -0.25},
    ]
    assert client_as("service").post("/measurements", **as_json(body)).status_code == 201
    first, second = bucket(db, dev, "2030-01-01"), bucket(db, dev, "2030-01-02")
    assert (first["n"], first["power_kw"][95], first["power_kw"].count(None)) == (1, 1.5, 95)
    assert (second["n"], second["power_kw"][:2], second["energy_kwh"][:2]) == (2, [-0.5, -1.0], [None, -0.25])
    assert first["account_id"] == second["account_id"] == dev["account_id"]  # owners copied from the device
    assert db[timeseries.COLLECTION].count_documents({}) == 2


def test_a_reading_between_slot_starts_keeps_its_time(client_as, insert, db):
    dev = device()
    insert("devices", dev)
    service = client_as("service")
    body = [reading(dev, "10:00", 1.0), reading(dev, "10:07", 2.0, status={"mode": "2"})]
    assert service.post("/measurements", **as_json(body)).status_code == 201
    stored = bucket(db, dev, "2030-01-01")
    assert stored["extra"] == {"36420": {"power_kw": 2.0, "status": {"mode": "2"}}}  # 10:07 = 36,420 s
    items = listed(service, where={"timestamp": {"$gt": "2030-01-01T10:00:00Z"}})["_items"]
    assert [(m["timestamp"], m["power_kw"], m["status"]) for m in items] == [
        ("2030-01-01T10:07:00Z", 2.0, {"mode": "2"})
    ]
    history = inputs.load_history(db, [dev["device_id"]], datetime(2030, 1, 2, tzinfo=UTC), 1)
    assert history[0, 40] == 1.5  # the slot's mean: (1.0 + 2.0) / 2


def test_where_sort_and_pages_over_buckets(client_as, insert):
    dev, other = device(), device()
    insert("devices", dev, other)
    service = client_as("service")
    body = [reading(dev, f"{h:02d}:00", float(h)) for h in (22, 23)]
    body += [{"device_id": dev["device_id"], "timestamp": "2030-01-02T01:00:00Z", "power_kw": 25.0}]
    body += [reading(other, "23:00", 100.0)]
    assert service.post("/measurements", **as_json(body)).status_code == 201
    window = {
        "device_id": dev["device_id"],
        "timestamp": {"$gte": "2030-01-01T23:00:00Z", "$lt": "2030-01-03T00:00:00Z"},
    }
    page = listed(service, where=window, sort="-timestamp", max_results=1, page=2)
    assert page["_meta"]["total"] == 2 and [m["power_kw"] for m in page["_items"]] == [23.0]
    assert [m["power_kw"] for m in listed(service, where={"power_kw": {"$gte": 23}}, sort="-power_kw")["_items"]] == [
        100.0,
        25.0,
        23.0,
    ]
    only = listed(service, where=window, projection={"power_kw": 1})["_items"]
    assert [sorted(k for k in m if not k.startswith("_")) for m in only] == [["power_kw"], ["power_kw"]]


def test_item_get_and_admin_delete_by_reading_id(client_as, insert, db):
    dev = device()
    insert("devices", dev)
    admin = client_as("admin")
    created = admin.post("/measurements", **as_json([reading(dev, "10:00", 1.0), reading(dev, "10:15", 2.0)]))
    first = created.json["_items"][0]["_id"]
    item = admin.get(f"/measurements/{first}")
    assert item.status_code == 200 and item.json["power_kw"] == 1.0 and item.json["timestamp"] == "2030-01-01T10:00:00Z"
    assert admin.get(f"/measurements/{dev['device_id']}@2030-01-01T11:00:00Z").status_code == 404
    assert admin.delete(f"/measurements/{first}", headers={"If-Match": item.json["_etag"]}).status_code == 204
    assert bucket(db, dev, "2030-01-01")["power_kw"][40:42] == [None, 2.0]
    assert listed(admin)["_meta"]["total"] == 1


def test_new_readings_trigger_one_forecast_job_per_device(client_as, insert, db):
    dev = device()
    insert("devices", dev)
    client_as("service").post("/measurements", **as_json([reading(dev, "10:00", 1.0), reading(dev, "10:15", 1.0)]))
    jobs = list(db["jobs"].find({"kind": "consumption_forecast"}))
    assert [(j["subject"], j["account_id"]) for j in jobs] == [(dev["device_id"], dev["account_id"])]


def test_forecast_inputs_read_the_buckets(client_as, insert, db):
    dev, quiet = device(), device()
    insert("devices", dev, quiet)
    body = [reading(dev, "00:00", 0.5), reading(dev, "12:15", 2.0)]
    body += [{"device_id": dev["device_id"], "timestamp": "2030-01-02T23:45:00Z", "power_kw": -3.0}]
    assert client_as("service").post("/measurements", **as_json(body)).status_code == 201
    history = inputs.load_history(db, [quiet["device_id"], dev["device_id"]], datetime(2030, 1, 3, tzinfo=UTC), 2)
    assert history.shape == (2, 192)
    assert all(math.isnan(v) for v in history[0])
    filled = {int(i): float(history[1, i]) for i in range(192) if not math.isnan(history[1, i])}
    assert filled == {0: 0.5, 49: 2.0, 191: -3.0}  # 12:15 is slot 49; the next day's 23:45 is 96 + 95


def test_the_device_page_draws_the_buckets_readings(app, client_as, insert, token):
    dev = device()
    insert("devices", dev)
    body = [reading(dev, "10:00", 1.0), reading(dev, "10:15", -2.0)]
    assert client_as("service").post("/measurements", **as_json(body)).status_code == 201
    ui = app.test_client()
    with ui.session_transaction() as session:
        session["ui_user"] = {
            "token": token("admin"),
            "expires_at": 4e9,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    page = ui.get(f"/ui/devices/{dev['device_id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    chart = json.loads(html.split('id="chart-measured">')[1].split("</script>")[0])
    epoch = int(datetime(2030, 1, 1, 10, tzinfo=UTC).timestamp())
    assert chart["x"] == [epoch, epoch + 900]
    assert chart["series"][0]["values"] == [1.0, -2.0]


def test_the_last_second_a_date_can_name_and_a_range_of_millennia(client_as, insert, db):
    """A reading at 9999-12-31T23:59:59Z is stored and read back; a where spanning the whole
    calendar for one device answers without listing its 3.6 million days."""
    dev = device()
    insert("devices", dev)
    service, last = client_as("service"), "9999-12-31T23:59:59Z"
    body = [{"device_id": dev["device_id"], "timestamp": last, "power_kw": 1.5}]
    assert service.post("/measurements", **as_json(body)).status_code == 201
    item = service.get(f"/measurements/{dev['device_id']}@{last}")
    assert item.status_code == 200 and item.json["power_kw"] == 1.5
    assert service.get(f"/measurements/{dev['device_id']}@9999-12-31T23:59:58Z").status_code == 404
    everything = {"$gte": "0001-01-01T00:00:00Z", "$lte": last}
    found = listed(service, where={"device_id": dev["device_id"], "timestamp": everything})
    assert [m["power_kw"] for m in found["_items"]] == [1.5]
