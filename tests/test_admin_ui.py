"""The admin UI in a real browser: Debian's Chromium driven by Playwright
against the real app served on loopback, signing in through the built-in
provider's login page. Screenshots go to ``test-artifacts/ui/``.

What a role sees is compared with what the REST API returns to a token of
that role: the UI must show exactly what the registry allows, no more.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from registry import create_app
from registry.admin_ui.queries import device_query
from registry.admin_ui.series import advice_timeline, forecast_chart, outer_quantiles
from registry.auth import credentials, mint_token
from registry.demo import fleet
from registry.demo import seeding as demo

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
TIMEOUT_MS = 10_000
BARCELONA = (41.3851, 2.1734)
# written out, not imported: a km radius becomes radians over the IUGG mean Earth radius
EARTH_RADIUS_KM = 6371.0088


@dataclass
class Live:
    """The served app, and API access as any demo user."""

    url: str
    app: Any
    instance_path: str

    def password(self, username: str) -> str:
        return credentials.secret_of(self.instance_path, "users", username)

    def api(self, username: str, path: str, **params: Any) -> dict[str, Any]:
        claims = fleet.identities()[username]
        token = mint_token(
            self.instance_path,
            self.app.config["OAUTH_ISSUER"],
            self.app.config["OAUTH_AUDIENCE"],
            claims["role"],
            aggregator_id=claims.get("aggregator_id"),
            account_id=claims.get("account_id"),
        )
        query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        response = requests.get(
            f"{self.url}/{path}", params=query, timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def live(instance_path: str) -> Iterator[Live]:
    """The real app on a loopback port, seeded with (a smaller) demo data set.

    The server binds first so PUBLIC_URL and the issuer can name the real
    port before the app (and its OAuth client registration) is built."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app(
        {"INSTANCE_PATH": instance_path, "PUBLIC_URL": url, "OAUTH_ISSUER": url, "RATE_LIMIT": "100000 per minute"}
    )
    demo.seed(app, demo.build_demo(24), measurement_days_count=2, progress=False)
    server.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(url, app, instance_path)
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"the UI tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def sign_in(browser: Any, live: Live, username: str) -> Any:
    """A fresh browser context signed in through the real login pages."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{live.url}/ui/")
    page.click("button[data-provider=builtin]")
    page.wait_for_url(re.compile(r"/oauth/authorize"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", live.password(username))
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/devices"))
    return page


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def shown_devices(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        "tr[data-device-id]",
        """rows => rows.map(r => ({
        device_id: r.dataset.deviceId, account_id: r.dataset.accountId, aggregator_id: r.dataset.aggregatorId}))""",
    )


def shown_total(page: Any) -> int:
    return int(page.text_content("[data-testid=total]").split()[0])


# --- signing in ---------------------------------------------------------------


def test_login_page_lists_providers_and_sets_safe_cookies(browser, live):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live.url}/ui/devices")
    assert page.url.endswith("/ui/login")  # not signed in: to the login page
    assert page.locator("button[data-provider=builtin]").inner_text() == "Sign in with DER Registry (built-in)"
    shot(page, "login")
    cookie = next(c for c in context.cookies() if c["name"] == "der_ui_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert "default-src 'self'" in page.request.get(f"{live.url}/ui/login").headers["content-security-policy"]
    context.close()


@pytest.mark.parametrize("username", ["prosumer-barcelona", "coop-iberia", "admin"])
def test_each_role_sees_exactly_what_the_api_gives_it(browser, live, username):
    page = sign_in(browser, live, username)
    claims = fleet.identities()[username]
    assert page.text_content("[data-testid=role]") == claims["role"]
    expected = live.api(username, "devices", sort="device_name", max_results=25)
    assert shown_total(page) == expected["_meta"]["total"]
    rows = shown_devices(page)
    assert [r["device_id"] for r in rows] == [d["device_id"] for d in expected["_items"]]
    if claims["role"] == "prosumer":
        assert {r["account_id"] for r in rows} == {claims["account_id"]}
    if claims["role"] == "aggregator":
        assert {r["aggregator_id"] for r in rows} == {claims["aggregator_id"]}
        assert shown_total(page) < live.api("admin", "devices")["_meta"]["total"]
    shot(page, f"devices-{claims['role']}")
    if claims["role"] == "prosumer":  # the same page on a phone
        page.set_viewport_size({"width": 390, "height": 844})
        shot(page, "devices-prosumer-phone")
    page.context.close()


def test_another_partys_device_is_not_found(browser, live):
    page = sign_in(browser, live, "prosumer-barcelona")
    madrid_device = live.api("prosumer-madrid", "devices")["_items"][0]["device_id"]
    response = page.goto(f"{live.url}/ui/devices/{madrid_device}")
    assert response.status == 404
    assert "Not found (or not yours to see)" in page.text_content("[data-testid=error-message]")
    shot(page, "device-not-yours")
    page.context.close()


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


# --- the marketplace --------------------------------------------------------------


def marketplace_ready(live: Live) -> None:
    missing = [r for r in ("offers", "contracts") if r not in live.app.config["DOMAIN"]]
    if missing:
        pytest.xfail(f"the marketplace resources {missing} are not in this build yet (issue 4)")


def test_offer_is_contracted_and_seen_by_the_prosumer(browser, live):
    marketplace_ready(live)
    prosumer = sign_in(browser, live, "prosumer-barcelona")
    prosumer.click("nav[aria-label=Panels] a:text-is('Offers')")
    device_select = prosumer.locator("form[aria-label='New offer'] select[name=device_id]")
    assert device_select.count() == 1, prosumer.text_content("main")
    device_id = device_select.input_value()
    before = {o["_id"] for o in live.api("prosumer-barcelona", "offers", max_results=100)["_items"]}
    prosumer.fill("form[aria-label='New offer'] input[name=power_kw]", "0.5")
    prosumer.click("form[aria-label='New offer'] button[type=submit]")
    prosumer.wait_for_selector(".flash")
    assert prosumer.text_content(".flash") == "Offer published.", prosumer.text_content(".flash")
    created = [o for o in live.api("prosumer-barcelona", "offers", max_results=100)["_items"] if o["_id"] not in before]
    assert [(o["device_id"], o["power_kw"], o["status"]) for o in created] == [(device_id, 0.5, "open")]
    offer_id = created[0]["_id"]
    assert prosumer.locator(f"tr[data-offer-id='{offer_id}']").count() == 1
    shot(prosumer, "offers-prosumer")

    aggregator = sign_in(browser, live, "coop-iberia")
    aggregator.goto(f"{live.url}/ui/offers?status=open")
    row = aggregator.locator(f"tr[data-offer-id='{offer_id}']")
    row.locator("summary").click()
    shot(aggregator, "offers-aggregator")
    row.locator("form[aria-label='Contract this offer'] button[type=submit]").click()
    aggregator.wait_for_selector(".flash")
    assert aggregator.text_content(".flash") == "Contract accepted.", aggregator.text_content(".flash")
    assert aggregator.url.endswith("/ui/contracts")
    contract_row = aggregator.locator(f"tr[data-contract-id]:has([data-offer='{offer_id}'])")
    assert contract_row.count() == 1
    shot(aggregator, "contracts-aggregator")

    prosumer.goto(f"{live.url}/ui/contracts")
    mine = prosumer.locator(f"tr[data-contract-id]:has([data-offer='{offer_id}'])")
    assert mine.count() == 1
    # its offer covered it (docs/contract.md, "Marketplace resources")
    assert mine.get_attribute("data-status") == "accepted"
    assert "0.5" in mine.inner_text()
    shot(prosumer, "contracts-prosumer")
    prosumer.context.close()
    aggregator.context.close()


# --- admins -----------------------------------------------------------------------


def test_admin_sees_jobs_and_the_audit_trail(browser, live):
    page = sign_in(browser, live, "admin")
    for label in ("Devices", "Offers", "Contracts", "Advice", "Jobs", "Audit"):
        assert page.locator(f"nav[aria-label=Panels] a:text-is('{label}')").count() == 1
    page.locator("tr[data-device-id] td[data-field=dr_availability] button").first.click()
    page.wait_for_selector(".flash-info")
    page.click("nav[aria-label=Panels] a:text-is('Audit')")
    assert page.locator("table.audit td", has_text="devices").count() >= 1
    assert page.locator("table.audit td", has_text="admin:").count() >= 1
    shot(page, "audit")
    page.click("nav[aria-label=Panels] a:text-is('Jobs')")
    assert page.locator("table, .empty, [data-testid=unavailable]").count() >= 1
    shot(page, "jobs")
    page.context.close()


def test_prosumer_has_no_admin_panels(browser, live):
    page = sign_in(browser, live, "prosumer-valencia")
    assert page.locator("nav[aria-label=Panels] a:text-is('Audit')").count() == 0
    response = page.goto(f"{live.url}/ui/audit")  # typed by hand: the API says no
    assert response.status == 403
    assert "may not" in page.text_content("[data-testid=error-message]")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/ui/login"))
    assert "signed out" in page.text_content(".flash")
    assert page.goto(f"{live.url}/ui/devices").url.endswith("/ui/login")
    page.context.close()


# --- without a browser: sessions, CSRF, and the pure parts ------------------------------


def test_a_token_the_api_refuses_sends_the_user_back_to_login(live):
    client = live.app.test_client()
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": "not.a.jwt",
            "expires_at": 4e9,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.get("/ui/devices")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")
    assert "sign in again" in client.get("/ui/login").get_data(as_text=True)


def test_an_expired_session_sends_the_user_back_to_login(live):
    client = live.app.test_client()
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": "x",
            "expires_at": 1.0,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.get("/ui/devices")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")


@pytest.mark.parametrize(
    "path", ["/ui/logout", "/ui/login/builtin", "/ui/offers", "/ui/devices/x/toggle", "/ui/contracts/x/cancel"]
)
def test_a_post_without_the_csrf_token_is_refused(live, path):
    response = live.app.test_client().post(path, data={"field": "availability", "value": "no"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)


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


def test_forecast_chart_uses_the_outer_quantiles_as_a_band():
    forecast = {
        "kind": "consumption",
        "start": "2026-01-01T00:00:00Z",
        "resolution": 900,
        "values": [1.0, 2.0],
        "quantiles": {"p50": [1, 2], "p10": [0.5, 1.5], "p90": [1.5, 2.5]},
    }
    chart = forecast_chart(forecast)
    assert chart["x"][1] - chart["x"][0] == 900
    assert [s["label"] for s in chart["series"]][:2] == ["p10", "p90"] and chart["band"] == [0, 1]
    assert outer_quantiles([{"q": 0.9, "values": [1]}], 1) == (None, None)
    assert forecast_chart({"values": []}) is None


def test_advice_timeline_reads_tags_per_slot():
    slots = advice_timeline(
        {
            "start": "2026-01-01T00:00:00Z",
            "resolution": 900,
            "slots": [{"tag": 1, "code": "CHEAP"}, {"tag": 5, "code": "PEAK"}, {"tag": 9}],
        }
    )
    assert [(s.time, s.tag, s.code) for s in slots] == [("00:00", 1, "CHEAP"), ("00:15", 5, "PEAK")]
    assert [s.tag for s in advice_timeline({"tags": [2, 3]})] == [2, 3]


def test_advice_panel_draws_a_day_of_tags(live):
    advice = {
        "kind": "prosumer",
        "start": "2026-01-01T00:00:00Z",
        "resolution": 900,
        "slots": [{"tag": 1 + i % 5, "code": "LOW_PRICE", "message": "cheap"} for i in range(96)],
    }
    ranked = {"kind": "aggregator", "target_kw": 5, "devices": [{"device_id": "d" * 36, "expected_kw": 2.5}]}
    with live.app.test_request_context("/ui/advice"):
        from flask import render_template

        from registry.admin_ui.series import recommended_devices
        from schemas.vocabulary import TAG_WORDS

        html = render_template(
            "admin_ui/advice.html",
            tag_words=TAG_WORDS,
            entries=[
                {"doc": d, "timeline": advice_timeline(d), "devices": recommended_devices(d)} for d in (advice, ranked)
            ],
        )
    assert html.count('<li class="tag tag-') == 96 and "Prosumer advice for 2026-01-01" in html
    assert "d" * 8 + "…" in html and "2.5" in html


def test_offers_status_filter_keeps_its_selection(live):
    """The page's `status` filter value, not a macro of the same name, drives the form."""
    from flask import render_template

    from schemas.vocabulary import OFFER_STATUSES

    with live.app.test_request_context("/ui/offers?status=withdrawn"):
        html = render_template(
            "admin_ui/offers.html",
            offers=[],
            total=0,
            own_devices=[],
            can_contract=False,
            default_start="",
            default_end="",
            form={},
            page=1,
            pages=1,
            args={},
            status="withdrawn",
            statuses=OFFER_STATUSES,
        )
    assert "<option selected>withdrawn</option>" in html
    assert "No offers match." in html
