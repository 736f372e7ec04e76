"""The ``admin_ui`` blueprint and what every view shares: CSRF checks,
security headers, role panels, rendering, and the error pages.

Every answer under ``/ui`` is an HTML page: an unknown URL, a wrong method,
a bad ``page`` and a refusal from the app's own request guards get a readable
4xx page here, never the API's JSON / XML error, and a listing never fails as
a whole because one record cannot be rendered."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException, default_exceptions
from wtforms import ValidationError

from registry.admin_ui.api import Api, ApiResult, ApiUnauthorized
from registry.admin_ui.login import User, current_user, expire_session
from registry.admin_ui.queries import InvalidPage, PageOutOfRange
from registry.market.rules import OFFER_TRANSITIONS
from schemas.policy import METHODS, OWNER_FIELD

bp = Blueprint(
    "admin_ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# (endpoint, label, resource): the navigation offers a panel to the roles that may
# read its resource (schemas/policy.py); the API still decides what each one shows.
PANELS = [
    ("admin_ui.devices", "Devices", "devices"),
    ("admin_ui.offers", "Offers", "offers"),
    ("admin_ui.contracts", "Contracts", "contracts"),
    ("admin_ui.advice", "Advice", "advice"),
    ("admin_ui.jobs", "Jobs", "jobs"),
    ("admin_ui.audit", "Audit", "oplog"),
]
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self' {providers}"
)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    user = current_user()
    role = user.role if user else None
    panels = [(e, label) for e, label, resource in PANELS if "GET" in METHODS[resource].get(role, ())]
    return {
        "csrf_token": generate_csrf,
        "current": user,
        "panels": panels,
        "page_url": page_url,
        "num": number,
        # who may withdraw an open offer, and who sees devices beyond one account
        "withdraws_offers": role in OFFER_TRANSITIONS[("open", "withdrawn")].actors,
        "sees_owners": role is not None and OWNER_FIELD.get(role) != "account_id",
    }


def page_url(endpoint: str, args: dict[str, str], to_page: int) -> str:
    """A pager link: the listing's own parameters are query text, never
    ``url_for`` keywords (``?endpoint=x`` or ``?_method=POST`` would be)."""
    return f"{url_for(endpoint)}?{urlencode({**args, 'page': to_page})}"


def number(value: Any, digits: int | None = None) -> str:
    """A stored number as text; "—" for anything that is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}" if digits is not None else str(value)


@bp.before_request
def _check_csrf() -> Any:
    if request.method != "POST":
        return None
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError) as error:
        return render_template(
            "admin_ui/error.html", title="Form expired", message=f"{error} Reload the page and try again."
        ), 400
    return None


@bp.after_request
def _security_headers(response: Response) -> Response:
    # Sign-in forms post to the identity provider's own origin.
    providers = " ".join(sorted({p.issuer for p in _providers()}))
    response.headers.setdefault("Content-Security-Policy", CSP.format(providers=providers))
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "admin_ui.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(ApiUnauthorized)
def _unauthorized(error: ApiUnauthorized) -> Any:
    return expire_session(f"The registry no longer accepts your sign-in ({error}); please sign in again.")


@bp.errorhandler(InvalidPage)
def _invalid_page(error: InvalidPage) -> tuple[str, int]:
    return page("error.html", title="No such page", message=str(error)), 400


@bp.errorhandler(PageOutOfRange)
def _page_out_of_range(error: PageOutOfRange) -> tuple[str, int]:
    return page("error.html", title="No such page", message=str(error.args[0])), 404


def _http_error(error: HTTPException) -> Any:
    # also what the app's request guards raise for a /ui URL (e.g. ?page=0)
    if error.code is None or error.code < 400:
        return error
    response = make_response(page("error.html", title=error.name, message=error.description), error.code)
    for name, value in error.get_headers():
        if name.lower() in ("allow", "retry-after", "www-authenticate"):
            response.headers[name] = value
    return response


# By status code, not only by class: Flask tries the app's handlers for a
# code (Eve's JSON / XML errors) before any blueprint's handler for a class.
bp.register_error_handler(HTTPException, _http_error)
for _code in sorted(code for code in default_exceptions if code >= 400):
    bp.register_error_handler(_code, _http_error)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[str, int]:
    # a bug: logged with its traceback; the person gets a page, not a stack
    current_app.logger.exception("admin UI: %s %s failed", request.method, request.path)
    return page(
        "error.html",
        title="Something went wrong",
        message="This page could not be shown. The error was logged; try again or go back.",
    ), 500


@bp.route("/<path:unknown>", methods=ALL_METHODS)
def not_found(unknown: str) -> Any:
    """Every other /ui URL: 405 when another method would work there, else 404."""
    allowed = _methods_elsewhere(request.path)
    if allowed:
        response = make_response(
            page(
                "error.html",
                title="Method not allowed",
                message=(f"{request.method} is not possible here; this address takes {', '.join(sorted(allowed))}."),
            ),
            405,
        )
        response.headers["Allow"] = ", ".join(sorted(allowed | ({"HEAD"} if "GET" in allowed else set())))
        return response
    return page(
        "error.html", title="Page not found", message="There is no page at this address. Use the navigation above."
    ), 404


def _methods_elsewhere(path: str) -> set[str]:
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = set()
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except HTTPException:
            continue
        if endpoint != "admin_ui.not_found":
            allowed.add(method)
    return allowed


def _providers() -> list[Any]:
    return current_app.extensions.get("admin_ui_providers", [])


def api(user: User) -> Api:
    return Api(user.token)


def page(template: str, **context: Any) -> str:
    return render_template(f"admin_ui/{template}", **context)


def listing(template: str, rows: str, unreadable: int = 0, **context: Any) -> str:
    """A listing page whose `rows` (a list in `context`) the template renders.

    A record the template cannot render (a stored value of an unexpected
    type or shape) is left out with a notice, instead of failing the whole
    page; so are `unreadable` records the registry itself could not answer."""
    notices = _unreadable_notice(unreadable)
    try:
        return page(template, notices=notices, **context)
    except Exception:
        current_app.logger.exception("admin UI: %s could not render every record", template)
    items = list(context[rows])
    shown = [item for item in items if _renders(template, {**context, rows: [item]})]
    notices = _unreadable_notice(unreadable + len(items) - len(shown))
    return page(template, notices=notices, **{**context, rows: shown})


def _renders(template: str, context: dict[str, Any]) -> bool:
    try:
        page(template, **context)
    except Exception:
        return False
    return True


def _unreadable_notice(count: int) -> list[str]:
    if not count:
        return []
    return [
        f"{count} record{'s' if count != 1 else ''} could not be shown (a stored value is not valid); "
        "the others are listed."
    ]


def failure(result: ApiResult, title: str = "The registry refused the request") -> tuple[str, int]:
    """A readable page for a 403 / 404 / 422 / … answer; the registry's own
    failure (5xx, or no answer) is a 502 of this page, not a 500."""
    status = result.status if 400 <= result.status < 500 else 502
    return page("error.html", title=title, message=result.message), status


def back(default_endpoint: str, **values: Any) -> Response:
    """To the ``next`` page the form came from (same site only), or a default."""
    target = request.form.get("next") or ""
    if not target.startswith("/ui/") or target.startswith("//"):
        target = url_for(default_endpoint, **values)
    return redirect(target)  # type: ignore[return-value]
