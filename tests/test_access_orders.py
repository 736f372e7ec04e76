"""The authorisation matrix for orders (docs/market.md, "Orders"), in the world of
tests/test_access.py: every role x verb x own / foreign order. Written by the
clearing only, so every write is a 405 for every role."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from tests.conftest import as_json
from tests.test_access import ACCOUNTS, PARTIES, ROLES, A, world  # noqa: F401

# A's order holds a1's device for dso-north, B's holds b1's for dso-south
ORDER_SEES = {
    "admin": {"a1", "b1"},
    "service": {"a1", "b1"},
    "aggregator": {"a1"},
    "prosumer": {"a1"},
    "dso": {"a1"},
}


@pytest.fixture
def orders(insert, world) -> dict[str, dict[str, Any]]:
    def order(party: str, dso_id: str) -> dict[str, Any]:
        return {
            "request": ObjectId(),
            "bid": ObjectId(),
            "aggregator_id": PARTIES[party],
            "dso_id": dso_id,
            "power_kw": [1.0],
            "price": 0.3,
            "device_ids": [world["devices"][party]["device_id"]],
            "account_ids": [ACCOUNTS[party]],
            "status": "accepted",
        }

    stored = insert("orders", order("a1", "dso-north"), order("b1", "dso-south"))
    return dict(zip(("a1", "b1"), stored))


@pytest.mark.parametrize("role", list(ROLES))
def test_orders_by_role(client_as, orders, role):
    name, ids = ROLES[role]
    api = client_as(name, **ids)
    listed = api.get("/orders").json["_items"]
    assert {o["aggregator_id"] for o in listed} == {PARTIES[p] for p in ORDER_SEES[role]}
    for party, doc in orders.items():
        url = f"/orders/{doc['_id']}"
        assert api.get(url).status_code == (200 if party in ORDER_SEES[role] else 404)
        assert api.patch(url, headers={"If-Match": doc["_etag"]}, **as_json({"price": 1.0})).status_code == 405
        assert api.delete(url, headers={"If-Match": doc["_etag"]}).status_code == 405
    assert api.post("/orders", **as_json({"aggregator_id": A})).status_code == 405
    hidden = role in ("dso", "prosumer")
    assert all(("device_ids" in o) != hidden and ("account_ids" in o) != hidden for o in listed)
