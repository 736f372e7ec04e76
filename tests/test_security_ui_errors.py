"""Issue 11 (items 4, 7 and 9, the UI's part) and issue 19 (bug 1), through
the real app on a loopback HTTP server, signed in through the real OAuth
pages with ``requests`` (no browser: none of this depends on one;
tests/support/ui_sign_in.py).

This part: every /ui error is an HTML 4xx page (never the API's JSON / XML,
never 500), and HEAD mirrors GET."""

from __future__ import annotations

import re

import pytest
import requests

from tests.support.live_ui import Live, live  # noqa: F401  (fixtures)
from tests.support.ui_sign_in import admin  # noqa: F401  (fixtures)

ERROR_PAGES = [
    ("/ui/devices/x%3Fa", 404, "Not found"),
    ("/ui/devices?page=0", 400, "page"),
    ("/ui/devices?page=-1", 400, "page"),
    ("/ui/devices?page=%C2%B2", 400, "page"),
    ("/ui/devices?page=abc", 400, "page"),
    ("/ui/devices?page=99999999999999999999", 400, "page"),
    ("/ui/devices?page=999", 404, "There is no page 999"),
    ("/ui/offers?page=999", 404, "There is no page 999"),
    ("/ui/contracts?page=0", 400, "page"),
    ("/ui/jobs?page=999", 404, "There is no page 999"),
    ("/ui/audit?page=999", 404, "There is no page 999"),
    ("/ui/nope", 404, "There is no page at this address"),
    ("/ui/devices/a/b", 404, "There is no page at this address"),
    ("/ui/static/nope.css", 404, "not found"),
    ("/ui/logout", 405, "this address takes POST"),
]


@pytest.mark.parametrize("path, status, words", ERROR_PAGES)
def test_ui_errors_are_html_pages(live: Live, admin: requests.Session, path: str, status: int, words: str) -> None:
    response = admin.get(f"{live.url}{path}", allow_redirects=False, timeout=10)
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")
    assert words.lower() in response.text.lower()
    assert 'data-testid="error-message"' in response.text and "<?xml" not in response.text
    assert '"_status"' not in response.text and response.headers["X-Frame-Options"] == "DENY"
    if status == 405:
        assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize("query", ["endpoint=x", "_method=POST", "page=1&endpoint=admin_ui.audit"])
def test_listing_parameters_named_like_url_for_keywords_are_plain_text(
    live: Live, admin: requests.Session, query: str
) -> None:
    response = admin.get(f"{live.url}/ui/devices?{query}&per_page=10", timeout=10)
    assert response.status_code == 200
    next_link = re.search(r'href="([^"]+)" rel="next"', response.text)
    assert next_link and next_link.group(1).startswith("/ui/devices?") and "page=2" in next_link.group(1)
    assert query.split("&")[-1].split("=")[0] in next_link.group(1)


@pytest.mark.parametrize(
    "path",
    [
        "/ui/devices",
        "/ui/offers",
        "/ui/contracts",
        "/ui/audit",
        "/ui/nope",
        "/ui/devices?page=0",
        "/ui/devices?page=999",
        "/ui/logout",
    ],
)
def test_head_mirrors_get(live: Live, admin: requests.Session, path: str) -> None:
    got = admin.get(f"{live.url}{path}", allow_redirects=False, timeout=10)
    head = admin.head(f"{live.url}{path}", allow_redirects=False, timeout=10)
    assert (head.status_code, head.headers["Content-Type"]) == (got.status_code, got.headers["Content-Type"])
    assert head.content == b"" and got.status_code < 500


def test_head_mirrors_get_when_signed_out(live: Live) -> None:
    for path in ("/ui/", "/ui/login", "/ui/devices"):
        got = requests.get(f"{live.url}{path}", allow_redirects=False, timeout=10)
        head = requests.head(f"{live.url}{path}", allow_redirects=False, timeout=10)
        assert head.status_code == got.status_code and head.headers.get("Location") == got.headers.get("Location")
