"""The query parameters of ``GET /series`` (registry/api/series.py), checked: every bad
value is a :class:`SeriesParamError` with a message the client can act on (a 400)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.datastructures import MultiDict

from registry.api import json_io
from registry.forecast.aggregate import AGGS, FORECAST_AGGS
from registry.store import geo
from schemas.vocabulary import MONGODB_EARTH_RADIUS_M, SLOT_SECONDS

RESOLUTIONS = {"900": 900, "15min": 900, "3600": 3600, "1h": 3600, "86400": 86400, "1d": 86400}
# the longest window per resolution: at most 2,976 / 2,208 / 366 points
MAX_DAYS = {900: 31, 3600: 92, 86400: 366}
KINDS = ("measured", "forecast")
MAX_FORECAST_DAYS = 7  # consumption forecasts are day-ahead: a week covers every stored one
SELECTORS = ("device_id", "account_id", "aggregator_id")
PARAMS = frozenset({*SELECTORS, "grid_area", "within", "near", "radius_m", "start", "end", "resolution", "agg", "kind"})
MAX_TEXT = 256
MAX_WITHIN = 20_000  # characters of the polygon's JSON
MAX_VERTICES = 1_000
MAX_RADIUS_M = 20_000_000


class SeriesParamError(ValueError):
    """A query parameter of /series is missing or wrong."""


@dataclass
class SeriesQuery:
    start: datetime
    end: datetime
    resolution: int
    agg: str
    kind: str
    selection: dict[str, str] = field(default_factory=dict)
    area: dict[str, Any] | None = None  # a $geoWithin condition on ``location``
    area_echo: dict[str, Any] | None = None  # the area as the client gave it
    grid_area: str | None = None  # a grid area's id: its geometry becomes ``area`` (registry/api/series.py)

    @property
    def per_period(self) -> int:
        return self.resolution // SLOT_SECONDS

    @property
    def days(self) -> float:
        return (self.end - self.start) / timedelta(days=1)


def parse(args: MultiDict) -> SeriesQuery:
    unknown = sorted(set(args) - PARAMS)
    if unknown:
        raise SeriesParamError(
            f"unknown query parameter(s): {', '.join(n[:40] for n in unknown[:5])}; "
            f"/series takes {', '.join(sorted(PARAMS))}"
        )
    repeated = sorted(name for name in args if len(args.getlist(name)) > 1)
    if repeated:
        raise SeriesParamError(f"give each parameter once: {', '.join(repeated)}")
    values = {name: args[name] for name in args}
    if any(len(values[name]) > (MAX_WITHIN if name == "within" else MAX_TEXT) for name in values):
        raise SeriesParamError("a query parameter is too long")
    resolution = _choice(values, "resolution", RESOLUTIONS, "900")
    kind = _choice(values, "kind", {k: k for k in KINDS}, "measured")
    aggs = FORECAST_AGGS if kind == "forecast" else AGGS
    agg = _choice(values, "agg", {a: a for a in aggs}, "sum")
    start, end = _time(values, "start"), _time(values, "end")
    if end <= start:
        raise SeriesParamError("end must be after start")
    for name, moment in (("start", start), ("end", end)):
        if (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() % resolution:
            raise SeriesParamError(f"{name} must fall on a period boundary of the resolution ({resolution} s, UTC)")
    longest = MAX_FORECAST_DAYS if kind == "forecast" else MAX_DAYS[resolution]
    if end - start > timedelta(days=longest):
        raise SeriesParamError(f"at most {longest} days at this resolution and kind ({resolution} s, {kind})")
    query = SeriesQuery(start, end, resolution, agg, kind)
    query.selection = {name: values[name] for name in SELECTORS if values.get(name)}
    for name in SELECTORS:
        if name in values and not values[name]:
            raise SeriesParamError(f"{name} must not be empty")
    _area(values, query)
    _grid_area(values, query)
    if not query.selection and query.area is None and query.grid_area is None:
        raise SeriesParamError(
            "name what to aggregate: device_id, account_id, aggregator_id, grid_area, within or near"
        )
    return query


def _choice(values: dict[str, str], name: str, allowed: dict[str, Any], default: str) -> Any:
    text = values.get(name, default)
    if text not in allowed:
        raise SeriesParamError(f"{name} must be one of {', '.join(allowed)} (got {text[:40]!r})")
    return allowed[text]


def _time(values: dict[str, str], name: str) -> datetime:
    text = values.get(name)
    if not text:
        raise SeriesParamError(f"{name} is required: a UTC ISO 8601 time, e.g. 2030-01-15T00:00:00Z")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted by its offset
        raise SeriesParamError(f"{name} must be a UTC ISO 8601 time, e.g. 2030-01-15T00:00:00Z") from None
    if not datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime(9000, 1, 1, tzinfo=UTC):
        raise SeriesParamError(f"{name} is out of range")
    return moment


def _area(values: dict[str, str], query: SeriesQuery) -> None:
    within, near, radius = values.get("within"), values.get("near"), values.get("radius_m")
    if within is not None and (near is not None or radius is not None):
        raise SeriesParamError("give either within (a polygon) or near and radius_m (a circle), not both")
    if within is not None:
        polygon = _polygon(within)
        query.area = {"$geoWithin": {"$geometry": polygon}}
        query.area_echo = {"within": polygon}
    elif near is not None or radius is not None:
        if near is None or radius is None:
            raise SeriesParamError("a circle needs both near=lng,lat and radius_m")
        lng, lat = _point(near)
        metres = _number(radius, "radius_m")
        if not 0 < metres <= MAX_RADIUS_M:
            raise SeriesParamError(f"radius_m must be more than 0 and at most {MAX_RADIUS_M}")
        query.area = {"$geoWithin": {"$centerSphere": [[lng, lat], metres / MONGODB_EARTH_RADIUS_M]}}
        query.area_echo = {"near": [lng, lat], "radius_m": metres}
    if query.area is not None:
        try:
            geo.parse_clause("location", query.area)
        except geo.GeoQueryError as exc:
            raise SeriesParamError(f"bad area: {exc}") from None


def _grid_area(values: dict[str, str], query: SeriesQuery) -> None:
    if "grid_area" not in values:
        return
    if query.area is not None:
        raise SeriesParamError("give either grid_area or within / near, not both")
    if not re.fullmatch(r"[0-9a-f]{24}", values["grid_area"]):
        raise SeriesParamError("grid_area must be a grid area's _id (24 hexadecimal digits)")
    query.grid_area = values["grid_area"]


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SeriesParamError(f"{name} must be a number (got {text[:40]!r})") from None
    if not math.isfinite(value):
        raise SeriesParamError(f"{name} must be a finite number")
    return value


def _point(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise SeriesParamError("near must be lng,lat (e.g. near=2.17,41.38)")
    lng, lat = _number(parts[0], "near's longitude"), _number(parts[1], "near's latitude")
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        raise SeriesParamError("near must be lng,lat with longitude in [-180, 180] and latitude in [-90, 90]")
    return lng, lat


def _polygon(text: str) -> dict[str, Any]:
    """A GeoJSON Polygon: closed rings of at least four [lng, lat] positions."""
    try:
        value = json_io.strict_loads(text)
    except Exception:  # BadRequest for NaN / Infinity / depth, ValueError for bad JSON
        raise SeriesParamError("within must be a GeoJSON Polygon in JSON, with finite numbers") from None
    rings = value.get("coordinates") if isinstance(value, dict) and value.get("type") == "Polygon" else None
    if not isinstance(rings, list) or not rings or set(value) - {"type", "coordinates"}:
        raise SeriesParamError(
            'within must be a GeoJSON Polygon: {"type": "Polygon", "coordinates": [[[lng, lat], …]]}'
        )
    vertices = 0
    for ring in rings:
        points = [geo.point_of(p) for p in ring] if isinstance(ring, list) else [None]
        vertices += len(points)
        if None in points or len(points) < 4 or points[0] != points[-1]:
            raise SeriesParamError("each ring of the polygon must be closed ([lng, lat] × 4 or more, last = first)")
        if not all(-180 <= lng <= 180 and -90 <= lat <= 90 for lng, lat in points):
            raise SeriesParamError("the polygon's positions must be [lng, lat] within [-180, 180] × [-90, 90]")
    if vertices > MAX_VERTICES:
        raise SeriesParamError(f"the polygon has more than {MAX_VERTICES} positions")
    return value
