"""The admin UI's devices panel, in a real browser: Debian's Chromium driven by
Playwright against the real app served on loopback, signing in through the built-in
provider's login page (tests/support/ui_browser.py, tests/support/live_ui.py).
Screenshots go to ``test-artifacts/ui/``.

Its filters give what the API gives for the same query (and the query the panel
builds, geo circle and bad input, is checked without a browser), a prosumer
switches a device's availability, and a device's page draws its charts."""

from __future__ import annotations

import re

from registry.admin_ui.queries import device_query
from tests.support.live_ui import live  # noqa: F401  (fixtures)
from tests.support.ui_browser import browser, shot, shown_devices, shown_total, sign_in  # noqa: F401  (fixtures)

BARCELONA = (41.3851, 2.1734)
# written out, not imported: a km radius becomes radians over the IUGG mean Earth radius
EARTH_RADIUS_KM = 6371.0088


# --- the devices panel ----------------------------------------------------------


def test_filters_match_the_api(browser, live):
    page = sign_in(browser, live, "coop-iberia")
    page.select_option("select[name=device_class]", "hvacDevice")
    page.select_option("select[name=availability]", "yes")
    page.fill("input[name=lat]", str(BARCELONA[0]))
    page.fill("input[name=lng]", str(BARCELONA[1]))
    page.fill("input[name=radius_km]", "50")
    page.select_option("select[name=sort]", "-capacity")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"radius_km=50"))
    where = {
        "device_class": "hvacDevice",
        "availability": "yes",
        "location": {"$geoWithin": {"$centerSphere": [[BARCELONA[1], BARCELONA[0]], 50 / EARTH_RADIUS_KM]}},
    }
    expected = live.api("coop-iberia", "devices", where=where, sort="-max_capacity", max_results=25)
    assert 0 < expected["_meta"]["total"] < live.api("coop-iberia", "devices")["_meta"]["total"]
    assert shown_total(page) == expected["_meta"]["total"]
    assert [r["device_id"] for r in shown_devices(page)] == [d["device_id"] for d in expected["_items"]]
    capacities = [float(t) for t in page.locator("tr[data-device-id] td.num:nth-of-type(3)").all_inner_texts()]
    assert capacities == sorted(capacities, reverse=True)
    shot(page, "devices-filtered")
    page.goto(f"{live.url}/ui/devices?lat=north")  # bad input: a readable message, not a 500
    assert "must be a number" in page.text_content(".flash-error")
    page.context.close()


def test_prosumer_toggles_availability(browser, live):
    page = sign_in(browser, live, "prosumer-madrid")
    first = shown_devices(page)[0]["device_id"]
    cell = page.locator(f"tr[data-device-id='{first}'] td[data-field=marketplace_availability] button")
    before = cell.inner_text()
    after = "no" if before == "yes" else "yes"
    cell.click()
    page.wait_for_selector(".flash-info")
    assert cell.inner_text() == after  # the reloaded list shows the stored value
    stored = live.api("prosumer-madrid", f"devices/{first}")
    assert stored["marketplace_availability"] == after
    shot(page, "devices-toggled")
    page.context.close()


def test_device_detail_draws_the_measurement_chart(browser, live):
    page = sign_in(browser, live, "prosumer-barcelona")
    page.click("tr[data-device-id] a")
    page.wait_for_selector("[data-testid=measurement-chart][data-drawn=true] canvas")
    forecasts = page.locator("[data-testid=forecast-chart], [data-testid=forecast-empty]")
    assert forecasts.count() >= 1
    shot(page, "device-detail")
    page.context.close()


def test_device_query_builds_a_geo_circle_and_reports_bad_input():
    query = device_query(
        {
            "device_class": "dhwDevice",
            "marketplace_availability": "yes",
            "cap_min": "1.5",
            "lat": "41.4",
            "lng": "2.2",
            "radius_km": "10",
            "sort": "-capacity",
            "per_page": "50",
            "page": "2",
        }
    )
    assert query.params["where"] == {
        "device_class": "dhwDevice",
        "marketplace_availability": "yes",
        "max_capacity": {"$gte": 1.5},
        "location": {"$geoWithin": {"$centerSphere": [[2.2, 41.4], 10 / EARTH_RADIUS_KM]}},
    }
    assert (query.params["sort"], query.params["max_results"], query.params["page"]) == ("-max_capacity", 50, 2)
    bad = device_query({"device_class": "toaster", "cap_max": "lots", "lat": "41", "per_page": "7"})
    assert "where" not in bad.params and bad.per_page == 25
    assert len(bad.problems) == 2
