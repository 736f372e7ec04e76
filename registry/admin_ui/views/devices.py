"""The devices panel (filters, sort, paging, availability toggles) and a
device's detail page (status, measurement and forecast charts, its market)."""

from __future__ import annotations

from typing import Any

from flask import flash, request

from registry.admin_ui.blueprint import api, back, bp, failure, listing, page
from registry.admin_ui.login import User, login_required
from registry.admin_ui.queries import (
    DEVICE_SORTS,
    PAGE_SIZES,
    device_query,
    pager,
    without_page,
)
from registry.admin_ui.series import forecast_chart, measurement_chart
from schemas.policy import TOGGLES
from schemas.vocabulary import AVAILABILITY_FIELDS, DEVICE_CLASSES, DEVICE_TYPES, SLOTS_PER_DAY

MEASUREMENT_POINTS = 2 * SLOTS_PER_DAY  # the last two days


@bp.get("/devices")
@login_required
def devices(user: User) -> Any:
    query = device_query(request.args)
    for problem in query.problems:
        flash(problem, "error")
    result = api(user).listing("devices", **query.params)
    if not result.ok:
        return failure(result, "The devices could not be listed")
    return listing(
        "devices.html",
        "devices",
        result.unreadable,
        devices=result.items,
        **pager(result.total, query.page, query.per_page),
        per_page=query.per_page,
        args=without_page(request.args),
        filters=request.args,
        classes=DEVICE_CLASSES,
        types=DEVICE_TYPES,
        availability_fields=AVAILABILITY_FIELDS,
        sorts=DEVICE_SORTS,
        page_sizes=PAGE_SIZES,
        toggles=TOGGLES.get(user.role, ()),
    )


@bp.post("/devices/<device_id>/toggle")
@login_required
def toggle_availability(user: User, device_id: str) -> Any:
    field, value = request.form.get("field", ""), request.form.get("value", "")
    if field not in AVAILABILITY_FIELDS or value not in ("yes", "no"):
        flash("Only the availability fields can be switched here.", "error")
        return back("admin_ui.devices")
    result = api(user).patch(f"devices/{device_id}", {field: value}, request.form.get("etag", ""))
    if result.ok:
        flash(f"{field.replace('_', ' ')} is now “{value}”.", "info")
    else:
        flash(result.message, "error")
    return back("admin_ui.devices")


@bp.get("/devices/<device_id>")
@login_required
def device(user: User, device_id: str) -> Any:
    client = api(user)
    found = client.get(f"devices/{device_id}")
    if not found.ok:
        return failure(found, "This device cannot be shown")
    measured = client.listing(
        "measurements", where={"device_id": device_id}, sort="-timestamp", max_results=MEASUREMENT_POINTS
    )
    forecasts = _latest_forecasts(user, device_id)
    offers, contracts = _market_of(user, device_id)
    return page(
        "device.html",
        device=found.body,
        measurement_chart=measurement_chart(measured.items) if measured.ok else None,
        forecasts=forecasts,
        offers=offers,
        contracts=contracts,
        toggles=TOGGLES.get(user.role, ()),
    )


def _latest_forecasts(user: User, device_id: str) -> dict[str, Any]:
    """{"available": bool, "charts": [(kind, chart, forecast)], "message": str}."""
    result = api(user).get("forecasts", where={"device_id": device_id}, sort="-issued_at", max_results=10)
    if not result.ok:
        return {"available": False, "charts": [], "message": result.message}
    latest: dict[str, dict[str, Any]] = {}
    for forecast in result.items:
        latest.setdefault(str(forecast.get("kind", "forecast")), forecast)
    charts = [(kind, chart, f) for kind, f in latest.items() if (chart := forecast_chart(f))]
    return {"available": True, "charts": charts, "message": "No forecast for this device yet."}


def _market_of(user: User, device_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The device's offers and contracts."""
    client = api(user)
    found = []
    for resource in ("offers", "contracts"):
        where = {"device_id": device_id} if resource == "offers" else {"device_ids": device_id}
        result = client.listing(resource, where=where, sort="-start", max_results=20)
        found.append({"items": result.items, "error": None if result.ok else result.message})
    return found[0], found[1]
