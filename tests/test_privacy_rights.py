"""A prosumer's rights (issue 18, item 4): one export of everything held about its
account, and erasure that keeps what settlement needs; both audited, both only for
the prosumer itself and admins. Through the API with tokens."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from tests.factories import AGGREGATOR, at, device, new_uuid

EMAIL = "ada@example.org"


@pytest.fixture
def account(app, client_as, insert, db):
    """Prosumer A (two devices, a VEN, readings, an open offer) shares a settled contract with B."""
    a, b = new_uuid(), new_uuid()
    insert(
        "prosumers",
        {"account_id": a, "aggregator_id": AGGREGATOR, "display_name": "Ada", "name": "Ada L.", "email": EMAIL},
        {"account_id": b, "aggregator_id": AGGREGATOR, "display_name": "Bob", "name": "Bob B."},
    )
    mine = [device(account_id=a, location=at(2.1734, 41.3851)), device(account_id=a)]
    theirs = device(account_id=b)
    insert("devices", *mine, theirs)
    insert("vens", {"ven_name": "ada-box", "account_id": a, "aggregator_id": AGGREGATOR, "secret_hash": "sha256:x"})
    readings = [
        {"device_id": mine[0]["device_id"], "timestamp": "2030-01-01T00:00:00Z", "power_kw": 1.5},
        {"device_id": mine[0]["device_id"], "timestamp": "2030-01-01T00:15:00Z", "power_kw": -0.25},
        {"device_id": theirs["device_id"], "timestamp": "2030-01-01T00:00:00Z", "power_kw": 9.0},
    ]
    posted = client_as("service").post("/measurements", data=json.dumps(readings), content_type="application/json")
    assert posted.status_code == 201, posted.get_json()
    offer = {"_id": ObjectId(), "account_id": a, "aggregator_id": AGGREGATOR, "status": "open"}
    insert("offers", {**offer, "device_id": mine[0]["device_id"], "location": at(2.1734, 41.3851)})
    share = {"delivered_kwh": 1.0, "payment": 0.2, "currency": "EUR"}
    contract = {
        "_id": ObjectId(),
        "aggregator_id": AGGREGATOR,
        "account_ids": [a, b],
        "device_ids": [mine[0]["device_id"], theirs["device_id"]],
        "status": "settled",
        "start": datetime(2030, 1, 1, tzinfo=UTC),
        "end": datetime(2030, 1, 1, 1, tzinfo=UTC),
        "settlement": {"delivered_kwh": 3.0, "payment": 0.6, "currency": "EUR"},
        "settlement_shares": [{"account_id": a, **share}, {"account_id": b, "delivered_kwh": 2.0, "payment": 0.4}],
    }
    insert("contracts", contract)
    order = {
        "_id": ObjectId(),
        "aggregator_id": AGGREGATOR,
        "dso_id": "dso-north",
        "status": "completed",
        "start": datetime(2030, 1, 2, tzinfo=UTC),
        "end": datetime(2030, 1, 2, 0, 15, tzinfo=UTC),
        "power_kw": [4.0],
        "device_ids": [mine[1]["device_id"], theirs["device_id"]],
        "account_ids": [a, b],
    }
    insert("orders", order)
    admin = client_as("admin")
    record = admin.get(f"/prosumers/{a}").get_json()
    renamed = admin.patch(
        f"/prosumers/{record['_id']}", json={"address": "1 Analytical St"}, headers={"If-Match": record["_etag"]}
    )
    assert renamed.status_code == 200, renamed.get_json()
    return {"a": a, "b": b, "mine": mine, "theirs": theirs, "contract": contract, "share": share, "order": order}


def unzip(response) -> tuple[dict, list[dict]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/zip" and response.headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(response.data)) as bundle:
        assert sorted(bundle.namelist()) == ["about.txt", "account.json", "measurements.csv"]
        held = json.loads(bundle.read("account.json"))
        rows = list(csv.DictReader(io.StringIO(bundle.read("measurements.csv").decode())))
    return held, rows


def test_a_prosumer_exports_everything_about_its_account_and_nothing_of_others(client_as, account):
    a = account["a"]
    held, rows = unzip(client_as("prosumer", account_id=a).get(f"/accounts/{a}/export"))
    assert held["account_id"] == a and held["prosumer"]["email"] == EMAIL
    assert held["prosumer"]["address"] == "1 Analytical St"
    assert sorted(d["device_id"] for d in held["devices"]) == sorted(d["device_id"] for d in account["mine"])
    assert [v["ven_name"] for v in held["vens"]] == ["ada-box"] and "secret_hash" not in held["vens"][0]
    assert [o["status"] for o in held["offers"]] == ["open"]
    [contract] = held["contracts"]
    assert contract["account_ids"] == [a] and contract["device_ids"] == [account["mine"][0]["device_id"]]
    assert contract["settlement"] == {"account_id": a, **account["share"]} and "settlement_shares" not in contract
    [order] = held["orders"]  # a grid operator's order holding one of its devices, as a prosumer reads it
    assert order["_id"] == str(account["order"]["_id"]) and not {"device_ids", "account_ids"} & set(order)
    assert [(r["device_id"], r["timestamp"], r["power_kw"]) for r in rows] == [
        (account["mine"][0]["device_id"], "2030-01-01T00:00:00Z", "1.5"),
        (account["mine"][0]["device_id"], "2030-01-01T00:15:00Z", "-0.25"),
    ]
    operations = [(e["r"], e["o"]) for e in held["audit"]]
    assert ("prosumers", "PATCH") in operations and ("prosumers", "EXPORT") in operations
    assert account["b"] not in json.dumps(held) and "Bob" not in json.dumps(held)


@pytest.mark.parametrize("verb", ["export", "erase"])
def test_only_the_prosumer_itself_and_admins_reach_an_account(app, client_as, account, verb):
    a = account["a"]

    def call(client, account_id=a):
        url = f"/accounts/{account_id}/{verb}"
        return client.get(url) if verb == "export" else client.post(url, json={"confirm": account_id})

    assert call(client_as("prosumer", account_id=account["b"])).status_code == 404  # not revealed
    assert call(client_as("aggregator", aggregator_id=AGGREGATOR)).status_code == 403
    assert call(client_as("service")).status_code == 403
    assert call(app.test_client()).status_code == 401
    assert call(client_as("admin"), "not-a-uuid").status_code == 404
    assert call(client_as("admin"), new_uuid()).status_code == 404
    if verb == "export":
        assert call(client_as("admin")).status_code == 200


def test_erasure_needs_confirmation_and_waits_for_unsettled_contracts(client_as, account, db):
    a, prosumer = account["a"], client_as("prosumer", account_id=account["a"])
    before = db["prosumers"].find_one({"account_id": a})
    for body in ({}, {"confirm": account["b"]}, {"confirm": a.upper()}):
        assert prosumer.post(f"/accounts/{a}/erase", json=body).status_code == 400
    form = prosumer.post(f"/accounts/{a}/erase", data={"confirm": a})
    assert form.status_code == 415
    db["contracts"].update_one({"_id": account["contract"]["_id"]}, {"$set": {"status": "completed"}})
    refused = prosumer.post(f"/accounts/{a}/erase", json={"confirm": a})
    assert refused.status_code == 409 and str(account["contract"]["_id"]) in refused.get_json()["_error"]["message"]
    assert db["prosumers"].find_one({"account_id": a}) == before


def test_erasure_removes_personal_data_and_keeps_the_settled_contract(client_as, account, db):
    a, admin = account["a"], client_as("admin")
    answer = client_as("prosumer", account_id=a).post(f"/accounts/{a}/erase", json={"confirm": a})
    assert answer.status_code == 200, answer.get_json()
    erased = answer.get_json()["erased"]
    assert (erased["prosumer"], erased["devices"], erased["vens"], erased["offers_withdrawn"]) == (1, 2, 1, 1)
    record = admin.get(f"/prosumers/{a}").get_json()
    assert record["display_name"] == "erased account" and not {"name", "email", "address"} & set(record)
    for d in account["mine"]:
        stored = admin.get(f"/devices/{d['device_id']}").get_json()
        assert stored["device_name"] == "erased device" and "location" not in stored
        assert stored["marketplace_availability"] == "no"
    assert admin.get("/vens", query_string={"where": json.dumps({"account_id": a})}).get_json()["_items"] == []
    readings = admin.get("/measurements", query_string={"where": json.dumps({"account_id": a})}).get_json()
    assert readings["_meta"]["total"] == 0
    theirs = admin.get("/measurements", query_string={"where": json.dumps({"account_id": account["b"]})})
    assert theirs.get_json()["_meta"]["total"] == 1  # the other prosumer's reading stays
    contract = admin.get(f"/contracts/{account['contract']['_id']}").get_json()
    assert contract["status"] == "settled" and contract["settlement_shares"][0]["account_id"] == a
    assert admin.get(f"/orders/{account['order']['_id']}").get_json()["power_kw"] == [4.0]  # kept
    offers = admin.get("/offers", query_string={"where": json.dumps({"account_id": a})}).get_json()["_items"]
    assert [o["status"] for o in offers] == ["withdrawn"] and "location" not in offers[0]
    trail = list(db["oplog"].find({}))
    assert not any(EMAIL in repr(e) or "Analytical" in repr(e) for e in trail)
    [entry] = [e for e in trail if e["o"] == "ERASE"]
    assert entry["u"].startswith("prosumer:") and entry["c"]["erased"] == erased
    again = client_as("prosumer", account_id=a).post(f"/accounts/{a}/erase", json={"confirm": a})
    assert again.status_code == 200 and again.get_json()["erased"]["vens"] == 0
    held, rows = unzip(admin.get(f"/accounts/{a}/export"))
    assert rows == [] and EMAIL not in json.dumps(held) and held["prosumer"]["display_name"] == "erased account"
