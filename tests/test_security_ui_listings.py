"""Issue 11 (items 4, 7 and 9, the UI's part) and issue 19 (bug 1), through
the real app on a loopback HTTP server, signed in through the real OAuth
pages with ``requests`` (no browser: none of this depends on one;
tests/support/ui_sign_in.py).

This part: a listing shows every record it can, whatever one stored record holds
(non-finite numbers, a list the registry cannot answer whole)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from registry import create_app
from registry.auth import mint_token
from tests.support.live_ui import Live, live  # noqa: F401  (fixtures)
from tests.support.ui_sign_in import admin, count  # noqa: F401  (fixtures)


@pytest.fixture
def bad_offers(live: Live) -> Iterator[list[Any]]:
    """Two offers as no API would store them, first on page 1: a NaN power
    and an infinite price (shown as "—"), and an open one whose end is a number
    (its contract form cannot be filled in: the row is left out, with a notice)."""
    with live.app.app_context():
        db = live.app.data.driver.db
        template = db.offers.find_one({})
        assert template, "the demo data has offers"
        latest = db.offers.find_one({}, sort=[("start", -1)])["start"]  # first on the panel's page 1
        template = {k: v for k, v in template.items() if k != "_id"}
        template.update(start=latest + timedelta(days=1), end=latest + timedelta(days=1, hours=1))
        ids = db.offers.insert_many(
            [
                {**template, "power_kw": float("nan"), "price": float("inf")},
                {**template, "status": "open", "end": 5},
            ]
        ).inserted_ids
    yield ids
    with live.app.app_context():
        db.offers.delete_many({"_id": {"$in": ids}})


def test_offers_panel_shows_every_record_it_can(live: Live, admin: requests.Session, bad_offers: list[Any]) -> None:
    response = admin.get(f"{live.url}/ui/offers?per_page=25", timeout=10)
    assert response.status_code == 200, response.text[:300]
    rows = re.findall(r'<tr data-offer-id="([0-9a-f]+)"', response.text)
    assert str(bad_offers[0]) in rows and str(bad_offers[1]) not in rows
    assert "1 record could not be shown" in response.text
    expected = min(count(live, "offers"), 25) - 1
    assert len(rows) == expected
    nan_row = response.text.split(f'data-offer-id="{bad_offers[0]}"')[1].split("</tr>")[0]
    assert "nan" not in nan_row.lower() and "inf" not in nan_row.lower() and "—" in nan_row


def test_a_device_with_non_finite_numbers_still_shows(live: Live, admin: requests.Session) -> None:
    with live.app.app_context():
        db = live.app.data.driver.db
        device = db.devices.find_one({})
        db.devices.update_one({"_id": device["_id"]}, {"$set": {"available_capacity": float("nan")}})
    try:
        for path in (f"/ui/devices/{device['device_id']}", "/ui/devices?per_page=100"):
            response = admin.get(f"{live.url}{path}", timeout=10)
            assert response.status_code == 200 and device["device_id"] in response.text
            assert ">nan<" not in response.text.lower()
    finally:
        with live.app.app_context():
            db.devices.update_one(
                {"_id": device["_id"]}, {"$set": {"available_capacity": device.get("available_capacity")}}
            )


def test_a_list_the_registry_cannot_answer_whole_is_shown_record_by_record(instance_path: str) -> None:
    """Fault injection: the registry fails (500) on the offers list and on one
    offer; the panel shows the others and says one could not be shown."""
    from registry.demo import seeding as demo

    app = create_app({"INSTANCE_PATH": instance_path, "RATE_LIMIT": "100000 per minute"})
    demo.seed(app, demo.build_demo(6), measurement_days_count=1, progress=False)
    with app.app_context():
        offers = list(app.data.driver.db.offers.find({}, {"_id": 1}))
    assert len(offers) >= 2
    poisoned = str(offers[0]["_id"])

    def fail_on_poisoned_list(response: dict[str, Any]) -> None:
        if any(str(item.get("_id")) == poisoned and "device_id" in item for item in response["_items"]):
            raise ValueError("cannot serialise a stored value")

    def fail_on_poisoned_item(response: dict[str, Any]) -> None:
        if str(response.get("_id")) == poisoned:
            raise ValueError("cannot serialise a stored value")

    app.on_fetched_resource_offers += fail_on_poisoned_list
    app.on_fetched_item_offers += fail_on_poisoned_item
    client = app.test_client()
    token = mint_token(instance_path, app.config["OAUTH_ISSUER"], app.config["OAUTH_AUDIENCE"], "admin")
    assert client.get("/offers", headers={"Authorization": f"Bearer {token}"}).status_code == 500
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": token,
            "expires_at": 4e9,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.get("/ui/offers")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:300]
    rows = re.findall(r'<tr data-offer-id="([0-9a-f]+)"', html)
    assert poisoned not in rows and len(rows) == min(len(offers), 25) - 1
    assert "1 record could not be shown" in html
