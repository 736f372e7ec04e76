"""The admin UI's marketplace, in a real browser: Debian's Chromium driven by
Playwright against the real app served on loopback, signing in through the built-in
provider's login page (tests/support/ui_browser.py, tests/support/live_ui.py).
Screenshots go to ``test-artifacts/ui/``.

A prosumer publishes an offer, an aggregator contracts it and the prosumer finds
the contract; the offers page's status filter keeps its selection."""

from __future__ import annotations

import pytest

from tests.support.live_ui import Live, live  # noqa: F401  (fixtures)
from tests.support.ui_browser import browser, shot, sign_in  # noqa: F401  (fixtures)

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
