"""Issue 11 (items 4, 7 and 9, the UI's part) and issue 19 (bug 1), through
the real app on a loopback HTTP server, signed in through the real OAuth
pages with ``requests`` (no browser: none of this depends on one).

- sign-out ends the session and the token: the old cookie leads to the login
  page, the old bearer token gets 401 from the API;
- the cookie is an opaque id, and a new one is issued at sign-in;
- every /ui error is an HTML 4xx page (never the API's JSON / XML, never 500);
- HEAD mirrors GET;
- forms refuse non-finite and out-of-range numbers and write nothing;
- a listing shows every record it can, whatever one stored record holds.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from registry import create_app
from registry.auth import mint_token
from tests.test_admin_ui import Live, live  # noqa: F401  (the served app fixture)

COOKIE = "der_ui_session"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def sign_in(live: Live, username: str) -> requests.Session:
    """Through /ui/login, the provider's form and the callback, as a browser would."""
    session = requests.Session()
    login = session.get(f"{live.url}/ui/login", timeout=10)
    form = session.post(f"{live.url}/ui/login/builtin", data={"csrf_token": csrf_of(login.text)}, timeout=10)
    assert "/oauth/authorize" in form.url and form.status_code == 200, form.text[:300]
    done = session.post(form.url, data={"username": username, "password": live.password(username)}, timeout=20)
    assert done.url.endswith("/ui/devices") and done.status_code == 200, (done.url, done.text[:300])
    return session


def stored_session(live: Live, sid: str) -> dict[str, Any] | None:
    with live.app.app_context():
        document = live.app.data.driver.db["ui_sessions"].find_one({"_id": hashlib.sha256(sid.encode()).hexdigest()})
    return None if document is None else live.app.session_interface.serializer.loads(document["data"])


def api_status(live: Live, token: str) -> tuple[int, str]:
    response = requests.get(f"{live.url}/devices", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return response.status_code, response.text


def admin_token(live: Live) -> str:
    return mint_token(live.instance_path, live.app.config["OAUTH_ISSUER"], live.app.config["OAUTH_AUDIENCE"], "admin")


def count(live: Live, resource: str, where: dict[str, Any] | None = None) -> int:
    params = {"where": json.dumps(where)} if where else {}
    response = requests.get(
        f"{live.url}/{resource}", params=params, timeout=10, headers={"Authorization": f"Bearer {admin_token(live)}"}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["_meta"]["total"])


@pytest.fixture(scope="module")
def admin(live: Live) -> requests.Session:
    return sign_in(live, "admin")


# --- sign-out really signs out --------------------------------------------------------


def test_sign_out_ends_the_session_and_revokes_the_token(live: Live) -> None:
    leaving, staying = sign_in(live, "prosumer-madrid"), sign_in(live, "coop-iberia")
    cookie = leaving.cookies[COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", cookie)  # an opaque id: no token, no claims
    token = stored_session(live, cookie)["ui_user"]["token"]  # type: ignore[index]
    assert token not in cookie and api_status(live, token)[0] == 200

    page = leaving.get(f"{live.url}/ui/devices", timeout=10)
    out = leaving.post(f"{live.url}/ui/logout", data={"csrf_token": csrf_of(page.text)}, timeout=10)
    assert out.url.endswith("/ui/login") and "signed out" in out.text

    replayed = requests.get(f"{live.url}/ui/devices", cookies={COOKIE: cookie}, allow_redirects=False, timeout=10)
    assert replayed.status_code == 302 and replayed.headers["Location"].endswith("/ui/login")
    assert stored_session(live, cookie) is None
    status, body = api_status(live, token)
    assert status == 401 and "revoked" in body
    # the other person is still signed in, with a working token
    assert staying.get(f"{live.url}/ui/devices", timeout=10).url.endswith("/ui/devices")
    assert api_status(live, stored_session(live, staying.cookies[COOKIE])["ui_user"]["token"])[0] == 200  # type: ignore[index]


def test_sign_in_issues_a_new_session_id(live: Live) -> None:
    session = requests.Session()
    session.get(f"{live.url}/ui/login", timeout=10)
    before = session.cookies[COOKIE]
    assert stored_session(live, before) is not None  # the anonymous session (CSRF, OAuth state)
    session.close()
    signed_in = sign_in(live, "prosumer-valencia")
    after = signed_in.cookies[COOKIE]
    assert after != before and "ui_user" in (stored_session(live, after) or {})
    planted = requests.get(f"{live.url}/ui/devices", cookies={COOKIE: before}, allow_redirects=False, timeout=10)
    assert planted.status_code == 302  # an id known before sign-in is not signed in


@pytest.mark.parametrize("cookie", ["", "x" * 43, "not-an-id", "a" * 5000, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"])
def test_a_forged_cookie_is_just_not_signed_in(live: Live, cookie: str) -> None:
    response = requests.get(f"{live.url}/ui/devices", cookies={COOKIE: cookie}, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")


# --- HTML 4xx pages, never 500 ------------------------------------------------------------

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


# --- numbers in forms ------------------------------------------------------------------------


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


# --- one bad record never breaks a listing ------------------------------------------------------


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


@pytest.mark.parametrize("token", ["not.a.jwt", "x"])
def test_signing_out_with_a_dead_token_still_signs_out(live: Live, token: str) -> None:
    client = live.app.test_client()
    csrf = csrf_of(client.get("/ui/login").get_data(as_text=True))  # the session's CSRF secret, then the user
    with client.session_transaction() as session:
        session["ui_user"] = {
            "token": token,
            "expires_at": 4e9,
            "role": "admin",
            "subject": "admin",
            "provider": "builtin",
        }
    response = client.post("/ui/logout", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/login")
    assert client.get("/ui/devices").status_code == 302
