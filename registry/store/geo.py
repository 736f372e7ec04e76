"""Geo query clauses: parsing, evaluation in Python and count-safe rewrites.

MongoDB evaluates geo operators natively but refuses ``$near`` inside
``count_documents``; mongomock evaluates none of them. This module turns a
clause such as ``{"$near": {"$geometry": …, "$maxDistance": 5000}}`` into a
:class:`GeoClause` that both stores can use: the real store counts with the
equivalent ``$geoWithin`` (MongoDB's own documented rule), the embedded store
matches points in Python. No library does this for mongomock, hence by hand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# MongoDB's operators are emulated with MongoDB's own radius (see the vocabulary);
# distances this module reports for other callers use the mean radius
from schemas.vocabulary import EARTH_RADIUS_M, MONGODB_EARTH_RADIUS_M

GEO_OPERATORS = ("$near", "$nearSphere", "$geoWithin", "$geoIntersects")
NEAR_OPERATORS = ("$near", "$nearSphere")


class GeoQueryError(ValueError):
    """A geo clause a client sent is malformed or unsupported."""


@dataclass(frozen=True)
class GeoClause:
    """One geo condition on one field, ready to evaluate or rewrite."""

    field: str
    operator: str
    matches: Callable[[float, float], bool]
    center: tuple[float, float] | None = None
    min_m: float | None = None
    max_m: float | None = None

    @property
    def is_near(self) -> bool:
        return self.operator in NEAR_OPERATORS

    def distance_m(self, lng: float, lat: float) -> float:
        assert self.center is not None
        return haversine_m(self.center, (lng, lat), MONGODB_EARTH_RADIUS_M)

    def as_within(self) -> dict[str, Any]:
        """The ``$near`` clause as a count-safe ``$geoWithin`` filter."""
        clauses: list[dict[str, Any]] = []
        if self.max_m is not None:
            clauses.append(
                {
                    self.field: {
                        "$geoWithin": {"$centerSphere": [list(self.center), self.max_m / MONGODB_EARTH_RADIUS_M]}
                    }
                }
            )
        else:
            # $near without a maximum still only returns documents with a location
            clauses.append({self.field: {"$exists": True}})
        if self.min_m:
            clauses.append(
                {
                    self.field: {
                        "$not": {
                            "$geoWithin": {"$centerSphere": [list(self.center), self.min_m / MONGODB_EARTH_RADIUS_M]}
                        }
                    }
                }
            )
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def haversine_m(a: tuple[float, float], b: tuple[float, float], radius_m: float = EARTH_RADIUS_M) -> float:
    """Great-circle distance in metres between two (lng, lat) points on a sphere
    of ``radius_m`` (the mean Earth radius unless told)."""
    lng1, lat1, lng2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2
    return 2 * radius_m * math.asin(min(1.0, math.sqrt(h)))


def point_of(value: Any) -> tuple[float, float] | None:
    """(lng, lat) of a stored GeoJSON point or legacy pair, else None."""
    if isinstance(value, dict) and value.get("type") == "Point":
        value = value.get("coordinates")
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in value)
    ):
        return float(value[0]), float(value[1])
    return None


def is_geo_condition(condition: Any) -> bool:
    return isinstance(condition, dict) and any(op in condition for op in GEO_OPERATORS)


def parse_clause(field: str, condition: dict[str, Any]) -> GeoClause:
    """Parse ``{"$near": …}``-style conditions; raise GeoQueryError on bad input."""
    ops = [op for op in GEO_OPERATORS if op in condition]
    if len(ops) != 1:
        raise GeoQueryError(f"'{field}': use exactly one geo operator per field")
    op = ops[0]
    if op in NEAR_OPERATORS:
        return _parse_near(field, op, condition)
    if op == "$geoIntersects":
        raise GeoQueryError("$geoIntersects is not supported on point fields; use $geoWithin")
    extra = set(condition) - {op}
    if extra:
        raise GeoQueryError(f"'{field}': unexpected keys next to $geoWithin: {sorted(extra)}")
    return GeoClause(field, op, _parse_within(condition[op]))


def _parse_near(field: str, op: str, condition: dict[str, Any]) -> GeoClause:
    body = condition[op]
    extra = set(condition) - {op, "$maxDistance", "$minDistance"}
    if extra:
        raise GeoQueryError(f"'{field}': unexpected keys next to {op}: {sorted(extra)}")
    if isinstance(body, dict) and "$geometry" in body:
        center = _geojson_point(body["$geometry"])
        max_m = _distance(body.get("$maxDistance", condition.get("$maxDistance")), 1.0)
        min_m = _distance(body.get("$minDistance", condition.get("$minDistance")), 1.0)
    elif op == "$nearSphere" and point_of(body):
        center = point_of(body)  # legacy pair: distances are radians
        max_m = _distance(condition.get("$maxDistance"), MONGODB_EARTH_RADIUS_M)
        min_m = _distance(condition.get("$minDistance"), MONGODB_EARTH_RADIUS_M)
    else:
        raise GeoQueryError(f"{op} needs {{'$geometry': {{'type': 'Point', 'coordinates': [lng, lat]}}}}")

    def matches(lng: float, lat: float) -> bool:
        d = haversine_m(center, (lng, lat), MONGODB_EARTH_RADIUS_M)
        return (max_m is None or d <= max_m) and (min_m is None or d >= min_m)

    return GeoClause(field, op, matches, center, min_m, max_m)


def _distance(value: Any, scale: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise GeoQueryError("$maxDistance / $minDistance must be non-negative numbers")
    return float(value) * scale


def _geojson_point(geometry: Any) -> tuple[float, float]:
    point = point_of(geometry) if isinstance(geometry, dict) else None
    if point is None or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90):
        raise GeoQueryError("$geometry must be a GeoJSON Point with [lng, lat] in range")
    return point


def _parse_within(shape: Any) -> Callable[[float, float], bool]:
    if not isinstance(shape, dict) or len(shape) != 1:
        raise GeoQueryError("$geoWithin needs one of $centerSphere, $box, $polygon, $center, $geometry")
    ((kind, value),) = shape.items()
    parsers = {
        "$centerSphere": _center_sphere,
        "$box": _box,
        "$polygon": _polygon,
        "$center": _center,
        "$geometry": _geometry_polygon,
    }
    if kind not in parsers:
        raise GeoQueryError(f"$geoWithin: unsupported shape {kind}")
    return parsers[kind](value)


def _center_and_radius(value: Any, kind: str) -> tuple[tuple[float, float], float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or point_of(value[0]) is None
        or isinstance(value[1], bool)
        or not isinstance(value[1], (int, float))
        or value[1] < 0
    ):
        raise GeoQueryError(f"{kind} needs [[lng, lat], radius]")
    return point_of(value[0]), float(value[1])


def _center_sphere(value: Any) -> Callable[[float, float], bool]:
    center, radians = _center_and_radius(value, "$centerSphere")
    return lambda lng, lat: haversine_m(center, (lng, lat), MONGODB_EARTH_RADIUS_M) <= radians * MONGODB_EARTH_RADIUS_M


def _center(value: Any) -> Callable[[float, float], bool]:
    (cx, cy), r = _center_and_radius(value, "$center")
    return lambda lng, lat: math.hypot(lng - cx, lat - cy) <= r


def _box(value: Any) -> Callable[[float, float], bool]:
    corners = [point_of(p) for p in value] if isinstance(value, list) and len(value) == 2 else []
    if len(corners) != 2 or None in corners:
        raise GeoQueryError("$box needs [[lng, lat] bottom-left, [lng, lat] top-right]")
    (x1, y1), (x2, y2) = corners
    return lambda lng, lat: min(x1, x2) <= lng <= max(x1, x2) and min(y1, y2) <= lat <= max(y1, y2)


def _polygon(value: Any) -> Callable[[float, float], bool]:
    ring = [point_of(p) for p in value] if isinstance(value, list) else []
    if len(ring) < 3 or None in ring:
        raise GeoQueryError("$polygon needs at least three [lng, lat] points")
    return lambda lng, lat: point_in_ring((lng, lat), ring)


def _geometry_polygon(value: Any) -> Callable[[float, float], bool]:
    if isinstance(value, dict) and value.get("type") == "MultiPolygon":  # a grid area (registry/store/geo_areas.py)
        parts = value.get("coordinates")
        if not isinstance(parts, list) or not parts:
            raise GeoQueryError("GeoJSON MultiPolygon needs coordinates [[[[lng, lat], …]]]")
        inside = [_geometry_polygon({"type": "Polygon", "coordinates": part}) for part in parts]
        return lambda lng, lat: any(part(lng, lat) for part in inside)
    if not isinstance(value, dict) or value.get("type") != "Polygon":
        raise GeoQueryError("$geoWithin.$geometry must be a GeoJSON Polygon or MultiPolygon")
    coords = value.get("coordinates")
    if not isinstance(coords, list) or not coords:
        raise GeoQueryError("GeoJSON Polygon needs coordinates [[[lng, lat], …]]")
    rings = [_polygon(ring) for ring in coords]
    outer, holes = rings[0], rings[1:]
    # An even-odd test on the flat plane of raw (lng, lat) degrees, not on the sphere:
    # MongoDB joins a GeoJSON polygon's vertices by great-circle arcs, this by straight
    # lines in degrees, so the two can disagree near long edges and at high latitudes,
    # and a ring across the antimeridian is not understood. Inside the outer ring and
    # in no hole; a point on an edge counts as on that ring (so one on a hole's edge is out).
    return lambda lng, lat: outer(lng, lat) and not any(h(lng, lat) for h in holes)


def point_in_ring(point: tuple[float, float], ring: list[tuple[float, float]]) -> bool:
    """Even-odd rule; points on an edge count as inside, as in MongoDB."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    cross = (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1)
    return abs(cross) < 1e-12 and min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2)
