"""Aggregated series (docs/timeseries.md, "Aggregated series"; issue 15, item 3).

    GET /series?aggregator_id=…|account_id=…|device_id=…|within=<GeoJSON Polygon>|near=lng,lat&radius_m=…
               &start=…&end=…[&resolution=900|3600|86400|15min|1h|1d][&agg=sum|mean|min|max]
               [&kind=measured|forecast]

Same bearer tokens, rate limit, request id and JSON as every API route; the devices
aggregated are those the caller may read (the data layer's scope filter for
``devices``), ANDed with the selection. A ``device_id`` the caller may not read is a
404, as ``GET /devices/<id>``; an owner or area selection outside the caller's scope is
an empty series (every point ``devices: 0``), as ``GET /devices?where=…`` is an empty list.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import numpy as np
from bson import ObjectId
from eve import Eve
from flask import Blueprint, Response, current_app, jsonify, request

from registry.api.advice_requests import error
from registry.api.series_params import MAX_DAYS, RESOLUTIONS, SeriesParamError, SeriesQuery, parse
from registry.auth.bearer import authenticated, current_principal
from registry.forecast import aggregate
from registry.store import geo_areas, series_source
from schemas.policy import METHODS
from schemas.vocabulary import DATE_FORMAT

bp = Blueprint("series", __name__)
# the work a request may ask for: devices × days of buckets read (10,000 devices × 31 days)
MAX_DEVICE_DAYS = 310_000


@bp.get("/series")
def series() -> Response:
    who = authenticated()
    try:
        query = parse(request.args)
    except SeriesParamError as exc:
        error(400, str(exc))
    resource = "forecasts" if query.kind == "forecast" else "measurements"
    if who.role == "dso":
        check_dso_query(query)
    elif "GET" not in METHODS.get(resource, {}).get(who.role, frozenset()):
        error(403, f"a {who.role} may not read {resource}")
    if query.grid_area:
        use_grid_area(query)
    began = time.perf_counter()
    device_ids = devices_of(query)
    work = len(device_ids) * -(-(query.end - query.start) // timedelta(days=1))
    if work > MAX_DEVICE_DAYS:
        error(
            400,
            f"too much to aggregate: {len(device_ids)} devices × {query.days:g} days is more than "
            f"{MAX_DEVICE_DAYS} device-days; narrow the selection or the window",
        )
    owners = series_source.owners_of(current_app.data.driver.db, device_ids) if who.role == "dso" else None
    columns = (
        forecast_columns(query, device_ids, owners)
        if query.kind == "forecast"
        else measured_columns(query, device_ids, owners)
    )
    if owners is not None:
        hide_small_groups(columns, current_app.config["DSO_MIN_HOUSEHOLDS"])
    body = {
        "kind": query.kind,
        "agg": query.agg,
        "resolution": query.resolution,
        "unit": "kW",
        "start": query.start.strftime(DATE_FORMAT),
        "end": query.end.strftime(DATE_FORMAT),
        "selection": {**query.selection, **(query.area_echo or {})},
        "devices": len(device_ids),
        "points": points(query, columns),
    }
    response = jsonify(body)
    response.headers["Server-Timing"] = f"series;dur={(time.perf_counter() - began) * 1000:.1f}"
    return response


def check_dso_query(query: SeriesQuery) -> None:
    """A grid operator reads sums and means over one of its own grid areas, nothing
    finer: no device, prosumer, portfolio or area of its choosing, no min or max
    (each the value of one device)."""
    if not query.grid_area or query.selection or query.area is not None:
        error(403, "a dso reads aggregated figures of its own grid areas only: give grid_area and no other selector")
    if query.agg not in ("sum", "mean"):
        error(403, "a dso reads sums and means only (min and max are one device's value)")


def use_grid_area(query: SeriesQuery) -> None:
    """The devices inside the grid area (one the caller may read, else 404)."""
    area = current_app.data.find_one("grid_areas", None, _id=ObjectId(query.grid_area))
    if area is None:
        error(404, f"no grid area {query.grid_area} that you may read")
    query.area = geo_areas.within(area["geometry"])
    query.area_echo = {"grid_area": query.grid_area}


def hide_small_groups(columns: dict[str, np.ndarray], minimum: int) -> None:
    """Periods to which fewer than ``minimum`` households contribute give no value and
    no count: an aggregate of one or two households is their own readings (counted
    by household, not by device: one house may have five devices)."""
    few = columns.pop("households") < minimum
    for name, column in columns.items():
        column[few] = 0 if name == "devices" else np.nan


def households(present: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """(devices, periods) contributions, each device's household index → households
    contributing per period."""
    if present.shape[0] == 0:
        return np.zeros(present.shape[1], dtype=int)
    onehot = np.zeros((int(owners.max()) + 1, present.shape[0]), dtype=np.int64)
    onehot[owners, np.arange(present.shape[0])] = 1
    return ((onehot @ present.astype(np.int64)) > 0).sum(axis=0)


def devices_of(query: SeriesQuery) -> list[str]:
    """The devices the caller may read that match the selection (404 for a named device
    the caller may not read, as an item GET). A grid operator's scope is its area."""
    db = current_app.data.driver.db
    scope = [] if current_principal().role == "dso" else list((current_app.data.scope_filter("devices") or {}).items())
    named = query.selection.get("device_id")
    if named and not series_source.select_devices(db, [*scope, ("device_id", named)], None):
        error(404, f"no device {named[:80]} that you may read")
    return series_source.select_devices(db, [*scope, *query.selection.items()], query.area)


def measured_columns(query: SeriesQuery, device_ids: list[str], owners: np.ndarray | None) -> dict[str, np.ndarray]:
    """The aggregate and the devices counted per period; with ``owners`` (each device's
    household index) also the households contributing."""
    db = current_app.data.driver.db
    parts: dict[str, list[np.ndarray]] = {"value": [], "devices": [], "households": []}
    for day in series_source.measured_days(db, device_ids, query.start, query.end):
        per_device = aggregate.device_periods(day, query.per_period)
        value, count = aggregate.across(per_device, query.agg)
        parts["value"].append(value)
        parts["devices"].append(count)
        if owners is not None:
            parts["households"].append(households(~np.isnan(per_device), owners))
    return {name: np.concatenate(columns) for name, columns in parts.items() if columns}


def forecast_columns(query: SeriesQuery, device_ids: list[str], owners: np.ndarray | None) -> dict[str, np.ndarray]:
    db = current_app.data.driver.db
    parts: dict[str, list[np.ndarray]] = {"value": [], "p10": [], "p90": [], "devices": [], "households": []}
    for p50, p10, p90 in series_source.forecast_days(db, device_ids, query.start, query.end):
        for name, column in aggregate.forecast_across(p50, p10, p90, query.per_period, query.agg).items():
            parts[name].append(column)
        if owners is not None:
            present = ~np.isnan(aggregate.device_periods(p50, query.per_period))
            parts["households"].append(households(present, owners))
    return {name: np.concatenate(columns) for name, columns in parts.items() if columns}


def points(query: SeriesQuery, columns: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One point per period: its start, the aggregate (null where no device has a value),
    for forecasts p10 and p90, and the devices counted."""
    step = timedelta(seconds=query.resolution)
    counts = columns.pop("devices").tolist()
    lists = {name: np.where(np.isnan(c), None, np.round(c, 6)).tolist() for name, c in columns.items()}
    return [
        {"timestamp": (query.start + i * step).strftime(DATE_FORMAT), **{n: lists[n][i] for n in lists}, "devices": n}
        for i, n in enumerate(counts)
    ]


def openapi_paths() -> dict[str, Any]:
    """``GET /series`` in the OpenAPI document (not an Eve resource: eve-swagger does not know it)."""

    def param(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}

    text = {"type": "string", "maxLength": 256}
    number = {"type": ["number", "null"]}
    point = {
        "type": "object",
        "properties": {
            "timestamp": {"type": "string", "format": "date-time"},
            "value": number,
            "p10": {**number, "description": "kind=forecast: the 10th percentile of the aggregate"},
            "p90": {**number, "description": "kind=forecast: the 90th percentile of the aggregate"},
            "devices": {"type": "integer", "description": "devices contributing to this period"},
        },
    }
    limits = ", ".join(f"{days} days at {seconds} s" for seconds, days in MAX_DAYS.items())
    parameters = [
        param("device_id", "one device (404 if you may not read it)", text),
        param("account_id", "a prosumer's devices (within your scope)", text),
        param("aggregator_id", "an aggregator's portfolio (within your scope)", text),
        param(
            "grid_area",
            "the devices inside a grid area you may read (a dso: its own, and only this selector)",
            {"type": "string", "pattern": "^[0-9a-f]{24}$"},
        ),
        param("within", "devices whose location is inside this GeoJSON Polygon (JSON text)", {"type": "string"}),
        param("near", "with radius_m: devices within a circle around lng,lat", {"type": "string"}),
        param("radius_m", "the circle's radius in metres", {"type": "number", "minimum": 0, "maximum": 20_000_000}),
        param("start", "UTC ISO 8601, on a period boundary", {"type": "string", "format": "date-time"}, True),
        param("end", f"after start; at most {limits} (7 days for forecasts)", {"type": "string"}, True),
        param("resolution", "seconds or a name; default 900", {"type": "string", "enum": list(RESOLUTIONS)}),
        param("agg", "across devices; forecasts take sum or mean", {"type": "string", "enum": list(aggregate.AGGS)}),
        param(
            "kind", "readings or the latest consumption forecasts", {"type": "string", "enum": ["measured", "forecast"]}
        ),
    ]
    body = {
        "type": "object",
        "properties": {
            "kind": {"type": "string"},
            "agg": {"type": "string"},
            "resolution": {"type": "integer"},
            "unit": {"type": "string", "enum": ["kW"]},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "selection": {"type": "object"},
            "devices": {"type": "integer", "description": "devices selected (within your scope)"},
            "points": {"type": "array", "items": point},
        },
    }
    errors = {code: {"$ref": "#/components/responses/error"} for code in ("400", "401", "403", "404", "429")}
    return {
        "/series": {
            "get": {
                "summary": "An aggregated series of measurements or forecasts (a device, prosumer, portfolio or area)",
                "tags": ["series"],
                "parameters": parameters,
                "responses": {
                    "200": {"description": "one point per period", "content": {"application/json": {"schema": body}}},
                    **errors,
                },
            }
        }
    }


def init_app(app: Eve) -> None:
    app.register_blueprint(bp)
