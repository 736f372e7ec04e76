"""Debian's Chromium driven by Playwright, for tests/test_admin_ui_*.py: the
module-scoped ``browser`` fixture, a fresh context signed in through the real login
pages (:func:`sign_in`), screenshots to ``test-artifacts/ui/`` (:func:`shot`), and
the devices list as a page shows it."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live_ui import Live

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
TIMEOUT_MS = 10_000


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
