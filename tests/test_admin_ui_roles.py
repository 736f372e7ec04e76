"""Each role in the admin UI, in a real browser: Debian's Chromium driven by Playwright
against the real app served on loopback, signing in through the built-in provider's
login page (tests/support/ui_browser.py, tests/support/live_ui.py). Screenshots go
to ``test-artifacts/ui/``.

What a role sees is compared with what the REST API returns to a token of that
role: the UI must show exactly what the registry allows, no more. The login page
and its cookie, another party's device (not found), the admin's jobs and audit
panels, and a prosumer without them."""

from __future__ import annotations

import re

import pytest

from registry.demo import fleet
from tests.support.live_ui import live  # noqa: F401  (fixtures)
from tests.support.ui_browser import browser, shot, shown_devices, shown_total, sign_in  # noqa: F401  (fixtures)

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
    assert page.locator("table, .empty").count() >= 1
    shot(page, "jobs")
    page.context.close()


def test_prosumer_has_no_admin_panels(browser, live):
    page = sign_in(browser, live, "prosumer-valencia")
    # the panels of what a prosumer may read (its own jobs too), not the audit trail
    shown = page.locator("nav[aria-label=Panels] a").all_inner_texts()
    assert sorted(shown) == ["Advice", "Contracts", "Devices", "Jobs", "Offers"]
    response = page.goto(f"{live.url}/ui/audit")  # typed by hand: the API says no
    assert response.status == 403
    assert "may not" in page.text_content("[data-testid=error-message]")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/ui/login"))
    assert "signed out" in page.text_content(".flash")
    assert page.goto(f"{live.url}/ui/devices").url.endswith("/ui/login")
    page.context.close()
