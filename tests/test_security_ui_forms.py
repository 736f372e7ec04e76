"""Issue 11 (items 4, 7 and 9, the UI's part) and issue 19 (bug 1), through
the real app on a loopback HTTP server, signed in through the real OAuth
pages with ``requests`` (no browser: none of this depends on one;
tests/support/ui_sign_in.py).

This part: forms refuse non-finite and out-of-range numbers and write nothing;
a plain number is accepted; a NaN filter is refused with a message."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support.live_ui import Live, live  # noqa: F401  (fixtures)
from tests.support.ui_sign_in import admin, count, csrf_of, sign_in  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def prosumer(live: Live) -> requests.Session:
    return sign_in(live, "prosumer-barcelona")


def offer_form(live: Live, prosumer: requests.Session) -> tuple[str, dict[str, str]]:
    page = prosumer.get(f"{live.url}/ui/offers", timeout=10).text
    device = re.search(r'<select name="device_id" required><option value="([^"]+)"', page)
    assert device, "the prosumer needs a device on the marketplace"
    start = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:00")
    end = (datetime.now(UTC) + timedelta(hours=5)).strftime("%Y-%m-%dT%H:00")
    return page, {
        "csrf_token": csrf_of(page),
        "device_id": device.group(1),
        "start": start,
        "end": end,
        "direction": "up",
        "power_kw": "1.0",
        "price": "0.2",
        "currency": "EUR",
    }


NOT_A_POWER = [
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "-1e400",
    "1e999",
    "abc",
    "",
    "0",
    "-1",
    "100001",
]


NOT_A_PRICE = ["nan", "inf", "-Infinity", "1e400", "-0.5", "x"]


@pytest.mark.parametrize("field, value", [("power_kw", v) for v in NOT_A_POWER] + [("price", v) for v in NOT_A_PRICE])
def test_offer_form_refuses_what_is_not_a_finite_number_in_range(
    live: Live, prosumer: requests.Session, field: str, value: str
) -> None:
    _, form = offer_form(live, prosumer)
    before = count(live, "offers")
    response = prosumer.post(f"{live.url}/ui/offers", data={**form, field: value}, timeout=10)
    assert response.status_code == 200 and response.url.endswith("/ui/offers")
    label = {
        "power_kw": "Power must be a number from 0.001 to 100000 kW",
        "price": "Price must be a number from 0 to 100000 per kWh",
    }[field]
    assert label in response.text
    assert count(live, "offers") == before


def test_offer_form_accepts_a_plain_number(live: Live, prosumer: requests.Session) -> None:
    page, form = offer_form(live, prosumer)
    for name, low in (("power_kw", "0.001"), ("price", "0")):
        tag = re.search(rf'<input name="{name}"[^>]*>', page).group(0)  # type: ignore[union-attr]
        assert 'type="number"' in tag and f'min="{low}"' in tag and 'max="100000' in tag and 'step="any"' in tag
    before = count(live, "offers")
    response = prosumer.post(f"{live.url}/ui/offers", data={**form, "power_kw": "0.75"}, timeout=10)
    assert "Offer published." in response.text
    assert count(live, "offers") == before + 1


@pytest.mark.parametrize(
    "field, value", [("power_kw", "nan"), ("power_kw", "inf"), ("price", "NaN"), ("price", "1e400")]
)
def test_contract_form_refuses_non_finite_numbers(
    live: Live, prosumer: requests.Session, field: str, value: str
) -> None:
    _, form = offer_form(live, prosumer)
    prosumer.post(f"{live.url}/ui/offers", data=form, timeout=10)
    aggregator = sign_in(live, "coop-iberia")
    page = aggregator.get(f"{live.url}/ui/offers?status=open", timeout=10).text
    offer_id = re.search(r'action="/ui/offers/([0-9a-f]+)/contract"', page).group(1)  # type: ignore[union-attr]
    before = count(live, "contracts")
    response = aggregator.post(
        f"{live.url}/ui/offers/{offer_id}/contract",
        timeout=10,
        data={
            "csrf_token": csrf_of(page),
            "start": form["start"],
            "end": form["end"],
            "power_kw": "0.5",
            "price": "0.2",
            field: value,
            "next": "/ui/offers?status=open",
        },
    )
    assert response.status_code == 200 and "must be a number from" in response.text
    assert count(live, "contracts") == before


def test_a_nan_filter_is_refused_with_a_message(live: Live, admin: requests.Session) -> None:
    for query in ("cap_min=nan", "cap_max=inf", "lat=nan&lng=2&radius_km=5", "radius_km=1e400&lat=1&lng=2"):
        response = admin.get(f"{live.url}/ui/devices?{query}", timeout=10)
        assert response.status_code == 200 and "must be a number" in response.text, query
