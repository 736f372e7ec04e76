"""The ``admin_ui`` blueprint and what every view shares: CSRF checks,
security headers, role panels, rendering, and the API error pages."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from admin_ui.api import Api, ApiResult, ApiUnauthorized
from admin_ui.login import User, current_user, expire_session

bp = Blueprint("admin_ui", __name__, url_prefix="/ui", template_folder="templates",
               static_folder="static", static_url_path="/static")

# (endpoint, label, roles): what the navigation offers; the API still decides.
PANELS = [
    ("admin_ui.devices", "Devices", {"aggregator", "prosumer", "service", "admin"}),
    ("admin_ui.offers", "Offers", {"aggregator", "prosumer", "service", "admin"}),
    ("admin_ui.contracts", "Contracts", {"aggregator", "prosumer", "service", "admin"}),
    ("admin_ui.advice", "Advice", {"aggregator", "prosumer", "service", "admin"}),
    ("admin_ui.jobs", "Jobs", {"service", "admin"}),
    ("admin_ui.audit", "Audit", {"admin"}),
]
# The availability fields each role may flip from the device list (SPEC §4).
TOGGLES = {
    "prosumer": ("availability", "marketplace_availability", "dr_availability"),
    "aggregator": ("dr_availability",),
    "service": ("availability",),
    "admin": ("availability", "marketplace_availability", "dr_availability"),
}
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self' {providers}")


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    user = current_user()
    panels = [(e, label) for e, label, roles in PANELS if user and user.role in roles]
    return {"csrf_token": generate_csrf, "current": user, "panels": panels}


@bp.before_request
def _check_csrf() -> Any:
    if request.method != "POST":
        return None
    try:
        validate_csrf(request.form.get("csrf_token"))
    except (ValidationError, CSRFError) as error:
        return render_template("admin_ui/error.html", title="Form expired",
                               message=f"{error} Reload the page and try again."), 400
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


def _providers() -> list[Any]:
    return current_app.extensions.get("admin_ui_providers", [])


def api(user: User) -> Api:
    return Api(user.token)


def page(template: str, **context: Any) -> str:
    return render_template(f"admin_ui/{template}", **context)


def failure(result: ApiResult, title: str = "The registry refused the request") -> tuple[str, int]:
    """A readable page for a 403 / 404 / 422 / … answer."""
    status = result.status if 400 <= result.status < 600 else 502
    return page("error.html", title=title, message=result.message), status


def unavailable(resource: str) -> str:
    return f"The {resource} resource is not available in this deployment yet."


def back(default_endpoint: str, **values: Any) -> Response:
    """To the ``next`` page the form came from (same site only), or a default."""
    target = request.form.get("next") or ""
    if not target.startswith("/ui/") or target.startswith("//"):
        target = url_for(default_endpoint, **values)
    return redirect(target)  # type: ignore[return-value]
