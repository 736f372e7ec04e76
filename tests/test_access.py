"""The authorisation matrix: every role x resource x verb x own / foreign item.

World: aggregators A and B; prosumers a1, a2 (of A) and b1 (of B); one
device, one VEN enrolment and two measurements each.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from bson import ObjectId

from tests.conftest import as_json
from tests.factories import device, new_uuid

A, B = "agg-alpha", "agg-beta"
PARTIES = {"a1": A, "a2": A, "b1": B}
ACCOUNTS = {name: new_uuid() for name in PARTIES}
ROLES = {  # name -> (role, ids)
    "admin": ("admin", {}),
    "service": ("service", {}),
    "aggregator": ("aggregator", {"aggregator_id": A}),
    "prosumer": ("prosumer", {"account_id": ACCOUNTS["a1"], "aggregator_id": A}),
    "dso": ("dso", {"dso_id": "dso-north"}),
}
# which parties each role sees (a dso reads none of these resources: 403)
SEES = {"admin": {"a1", "a2", "b1"}, "service": {"a1", "a2", "b1"}, "aggregator": {"a1", "a2"}, "prosumer": {"a1"}}
RESOURCES = ["devices", "prosumers", "measurements", "vens"]


@pytest.fixture
def world(insert) -> dict[str, dict[str, dict[str, Any]]]:
    docs: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
    for name, agg in PARTIES.items():
        owner = {"account_id": ACCOUNTS[name], "aggregator_id": agg}
        docs["prosumers"][name] = {
            **owner,
            "display_name": f"home {name}",
            "name": f"Real Name {name}",
            "email": f"{name}@example.org",
            "phone": "+34 600 000 000",
            "address": f"{name} street",
        }
        docs["devices"][name] = device(**owner, device_name=f"device {name}")
        docs["vens"][name] = {**owner, "ven_name": f"osb-{name}", "registration_status": "enrolled"}
        docs["measurements"][name] = {
            **owner,
            "device_id": docs["devices"][name]["device_id"],
            "timestamp": _dt("2026-11-20T10:00:00Z"),
            "power_kw": 1.0,
        }
    for resource in RESOURCES:
        stored = insert(resource, *docs[resource].values())
        for name, doc in zip(docs[resource], stored):
            docs[resource][name] = doc
    insert("aggregators", {"aggregator_id": A, "name": "Alpha"}, {"aggregator_id": B, "name": "Beta"})
    return docs


def _dt(text: str):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def item_url(resource: str, doc: dict[str, Any]) -> str:
    key = doc["device_id"] if resource == "devices" else str(doc["_id"])
    return f"/{resource}/{key}"


def owner_of(resource: str, doc: dict[str, Any]) -> str:
    return next(n for n, acc in ACCOUNTS.items() if acc == doc["account_id"])


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("resource", RESOURCES)
def test_lists_show_exactly_what_the_role_may_see_with_totals(client_as, world, role, resource):
    name, ids = ROLES[role]
    if role not in SEES:
        assert client_as(name, **ids).get(f"/{resource}").status_code == 403
        return
    body = client_as(name, **ids).get(f"/{resource}").json
    seen = {owner_of(resource, d) for d in body["_items"]}
    assert seen == SEES[role]
    assert body["_meta"]["total"] == len(SEES[role])


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("party", ["a1", "b1"])
def test_item_get_is_404_for_other_parties(client_as, world, role, resource, party):
    name, ids = ROLES[role]
    response = client_as(name, **ids).get(item_url(resource, world[resource][party]))
    assert response.status_code == (200 if party in SEES.get(role, ()) else 404 if role in SEES else 403)


def test_every_role_reads_the_aggregator_directory(client_as, world):
    for name, ids in ROLES.values():
        assert client_as(name, **ids).get("/aggregators").json["_meta"]["total"] == 2


# (resource, role, body, expected status for own item, for a foreign one)
PATCHES = [
    ("devices", "prosumer", {"availability": "no"}, 200, 404),
    # a field the role may never change is refused on the parsed update, after
    # the lookup: another party's item stays a 404 whatever the body says
    ("devices", "prosumer", {"account_id": ACCOUNTS["a2"]}, 403, 404),
    ("devices", "prosumer", {"aggregator_id": B}, 403, 404),
    ("devices", "prosumer", {"device_class": "hvacDevice"}, 403, 404),
    ("devices", "aggregator", {"dr_availability": "no"}, 200, 404),
    ("devices", "aggregator", {"availability": "no"}, 403, 404),
    ("devices", "service", {"device_name": "renamed"}, 200, 200),
    ("devices", "admin", {"aggregator_id": "agg-gamma"}, 200, 200),
    ("prosumers", "prosumer", {"phone": "+34 611 111 111"}, 200, 404),
    ("prosumers", "prosumer", {"aggregator_id": B}, 403, 404),
    # a verb the role may not use at all is a 403 before any lookup
    ("prosumers", "aggregator", {"display_name": "x"}, 403, 403),
    ("vens", "aggregator", {"registration_status": "cancelled"}, 200, 404),
    ("vens", "prosumer", {"registration_status": "cancelled"}, 403, 403),
    ("measurements", "service", {"power_kw": 2.0}, 405, 405),
    ("devices", "dso", {"availability": "no"}, 403, 403),
    ("prosumers", "dso", {"display_name": "x"}, 403, 403),
]


@pytest.mark.parametrize("resource,role,body,own,foreign", PATCHES)
def test_patch_by_role(app, client_as, world, db, resource, role, body, own, foreign):
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    for party, expected in (("a1", own), ("b1", foreign)):
        doc = world[resource][party]
        before = db[resource].find_one({"_id": doc["_id"]})
        response = api.patch(item_url(resource, doc), headers={"If-Match": doc["_etag"]}, **as_json(body))
        assert response.status_code == expected, (party, response.json)
        after = db[resource].find_one({"_id": doc["_id"]})
        changed = {k: after.get(k) for k in body} != {k: before.get(k) for k in body}
        assert changed == (expected == 200)


# (resource, role, expected for own, for foreign)
DELETES = [
    ("devices", "admin", 204, 204),
    ("devices", "service", 403, 403),
    ("devices", "aggregator", 403, 403),
    ("devices", "prosumer", 403, 403),
    ("vens", "prosumer", 204, 404),
    ("vens", "aggregator", 204, 404),
    ("vens", "service", 403, 403),
    ("prosumers", "aggregator", 403, 403),
    ("measurements", "prosumer", 403, 403),
    ("vens", "dso", 403, 403),
]


@pytest.mark.parametrize("resource,role,own,foreign", DELETES)
def test_delete_by_role(client_as, world, db, resource, role, own, foreign):
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    for party, expected in (("a1", own), ("b1", foreign)):
        doc = world[resource][party]
        response = api.delete(item_url(resource, doc), headers={"If-Match": doc["_etag"]})
        assert response.status_code == expected
        assert (db[resource].find_one({"_id": doc["_id"]}) is None) == (expected == 204)


@pytest.mark.parametrize("role,expected", [(r, 201 if r in ("admin", "service") else 403) for r in ROLES])
def test_only_service_and_admin_insert_devices(client_as, world, db, role, expected):
    name, ids = ROLES[role]
    doc = device(account_id=ACCOUNTS["a1"], aggregator_id=A)
    assert client_as(name, **ids).post("/devices", **as_json(doc)).status_code == expected
    assert (db["devices"].find_one({"device_id": doc["device_id"]}) is not None) == (expected == 201)


@pytest.mark.parametrize(
    "role,account,aggregator,expected",
    [
        ("prosumer", "a1", A, 201),  # its own enrolment
        ("prosumer", "a2", A, 403),  # someone else's account
        ("aggregator", "a2", A, 201),  # a prosumer of its own
        ("aggregator", "b1", B, 403),  # another aggregator's prosumer
        ("aggregator", "b1", A, 422),  # a prosumer that is not its own
    ],
)
def test_insert_owner_fields_are_checked(client_as, world, db, role, account, aggregator, expected):
    name, ids = ROLES[role]
    enrolment = {"ven_name": f"new-{role}-{account}", "account_id": ACCOUNTS[account], "aggregator_id": aggregator}
    response = client_as(name, **ids).post("/vens", **as_json(enrolment))
    assert response.status_code == expected, response.json
    assert (db["vens"].find_one({"ven_name": enrolment["ven_name"]}) is not None) == (expected == 201)


def test_aggregators_see_prosumers_pseudonymously(client_as, world):
    agg = client_as("aggregator", aggregator_id=A)
    for doc in agg.get("/prosumers").json["_items"] + [agg.get(item_url("prosumers", world["prosumers"]["a2"])).json]:
        assert "display_name" in doc
        assert not {"name", "email", "phone", "address"} & set(doc)
    mine = client_as("prosumer", account_id=ACCOUNTS["a1"]).get("/prosumers").json["_items"][0]
    assert mine["email"] == "a1@example.org"


@pytest.mark.parametrize(
    "params",
    [
        {"where": json.dumps({"email": "a2@example.org"})},
        {"where": 'name == "Real Name a2"'},
        {"sort": "address"},
        {"projection": json.dumps({"phone": 1})},
    ],
)
def test_aggregators_cannot_probe_personal_fields(client_as, world, params):
    response = client_as("aggregator", aggregator_id=A).get(f"/prosumers?{urlencode(params)}")
    assert response.status_code == 400
    assert "not visible" in response.json["_error"]["message"]


@pytest.mark.parametrize(
    "where",
    [
        {"aggregator_id": B},
        {"$or": [{"aggregator_id": B}, {"aggregator_id": A}]},
        {"account_id": ACCOUNTS["b1"]},
    ],
)
def test_where_cannot_escape_the_scope(client_as, world, where):
    body = client_as("aggregator", aggregator_id=A).get(f"/devices?{urlencode({'where': json.dumps(where)})}").json
    assert {d["aggregator_id"] for d in body["_items"]} <= {A}
    assert body["_meta"]["total"] == len(body["_items"])


@pytest.mark.parametrize("role,ids", [("aggregator", {}), ("prosumer", {"aggregator_id": A})])
def test_tokens_without_their_owner_claim_are_refused(client_as, world, role, ids):
    response = client_as(role, **ids).get("/devices")
    assert response.status_code == 403
    assert "carries no" in response.json["_error"]["message"]


def test_audit_trail_records_who_changed_what(client_as, world):
    prosumer = client_as("prosumer", account_id=ACCOUNTS["a1"], aggregator_id=A)
    doc = world["devices"]["a1"]
    assert (
        prosumer.patch(
            item_url("devices", doc), headers={"If-Match": doc["_etag"]}, **as_json({"availability": "no"})
        ).status_code
        == 200
    )
    entries = client_as("admin").get("/oplog").json["_items"]
    entry = next(e for e in entries if e["o"] == "PATCH")
    assert entry["r"] == "devices" and entry["i"] == doc["device_id"]
    assert entry["u"].startswith("prosumer:test-prosumer")
    assert entry["c"]["availability"] == "no"
    assert "Bearer" not in json.dumps(entries) and "ey" not in entry["u"]
    for role in ("service", "aggregator", "prosumer", "dso"):
        name, ids = ROLES[role]
        assert client_as(name, **ids).get("/oplog").status_code == 403


def test_embedded_documents_are_scoped_too(client_as, insert):
    """A contract over two prosumers' offers: each prosumer gets only its own offer embedded."""
    start = datetime(2030, 1, 2, 16)
    offers = insert(
        "offers",
        *[
            {
                "_id": ObjectId(),
                "device_id": new_uuid(),
                "start": start,
                "end": start + timedelta(hours=2),
                "direction": "down",
                "power_kw": 1.0,
                "price": 0.1,
                "currency": "EUR",
                "status": "contracted",
                "account_id": ACCOUNTS[name],
                "aggregator_id": A,
            }
            for name in ("a1", "a2")
        ],
    )
    insert(
        "contracts",
        {
            "offers": [o["_id"] for o in offers],
            "device_ids": [o["device_id"] for o in offers],
            "aggregator_id": A,
            "account_ids": [ACCOUNTS["a1"], ACCOUNTS["a2"]],
            "start": start,
            "end": start + timedelta(hours=1),
            "power_kw": 1.0,
            "price": 0.1,
            "status": "accepted",
        },
    )
    url = '/contracts?embedded={"offers": 1}'
    mine = client_as("prosumer", account_id=ACCOUNTS["a1"], aggregator_id=A).get(url).json["_items"][0]
    assert [o["account_id"] for o in mine["offers"]] == [ACCOUNTS["a1"]]
    theirs = client_as("aggregator", aggregator_id=A).get(url).json["_items"][0]
    assert sorted(o["account_id"] for o in theirs["offers"]) == sorted([ACCOUNTS["a1"], ACCOUNTS["a2"]])
    assert client_as("aggregator", aggregator_id=B).get(url).json["_meta"]["total"] == 0
