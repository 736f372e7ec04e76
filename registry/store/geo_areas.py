"""Grid areas as GeoJSON Polygon / MultiPolygon: what makes one acceptable, and
which points lie inside it (docs/market.md, "Grid areas").

An area is refused unless every ring is closed, has four positions or more,
finite [lng, lat] on Earth and a non-zero surface, and the whole stays within a
sane size (a DSO's area is a region, not a continent): MongoDB would refuse some
of these with a write or query error, the rest would make the selection of
devices meaningless. Inside-tests are those of :mod:`registry.store.geo` (the same
planar even-odd rule the embedded store uses for every ``$geoWithin``).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from shapely.geometry import shape
from shapely.validation import explain_validity

from registry.store import geo

MAX_POSITIONS = 10_000
MAX_POLYGONS = 100
MAX_RINGS = 100
# degrees of longitude and latitude the whole area may span
MAX_SPAN_DEGREES = 20.0
# square degrees: below this a ring is a line or a point (about 1 m²)
MIN_RING_AREA = 1e-10


def area_problem(value: Any) -> str | None:
    """Why ``value`` is not an acceptable grid area, or None."""
    if not isinstance(value, dict) or value.get("type") not in ("Polygon", "MultiPolygon"):
        return 'must be a GeoJSON Polygon or MultiPolygon: {"type": "Polygon", "coordinates": [[[lng, lat], …]]}'
    if set(value) - {"type", "coordinates"}:
        return "takes type and coordinates only"
    coordinates = value.get("coordinates")
    polygons = [coordinates] if value["type"] == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons or len(polygons) > MAX_POLYGONS:
        return f"needs coordinates: 1 to {MAX_POLYGONS} polygons of rings of [lng, lat] positions"
    positions: list[tuple[float, float]] = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon or len(polygon) > MAX_RINGS:
            return f"each polygon needs 1 to {MAX_RINGS} rings (the outer one first, then holes)"
        for ring in polygon:
            problem = _ring_problem(ring)
            if problem:
                return problem
            positions.extend(geo.point_of(p) for p in ring)
            if len(positions) > MAX_POSITIONS:
                return f"has more than {MAX_POSITIONS} positions"
    lngs, lats = [p[0] for p in positions], [p[1] for p in positions]
    if max(lngs) - min(lngs) > MAX_SPAN_DEGREES or max(lats) - min(lats) > MAX_SPAN_DEGREES:
        return f"spans more than {MAX_SPAN_DEGREES:g} degrees of longitude or latitude; a grid area is a region"
    # shapely's OGC validity: rings that cross themselves or each other, holes outside
    # their shell, overlapping parts: shapes MongoDB's $geoWithin refuses to query
    validity = explain_validity(shape(value))
    if validity != "Valid Geometry":
        return f"is not a valid polygon: {validity}"
    return None


def _ring_problem(ring: Any) -> str | None:
    points = [geo.point_of(p) for p in ring] if isinstance(ring, list) else [None]
    if None in points or len(points) < 4 or points[0] != points[-1]:
        return "each ring must be closed: 4 or more [lng, lat] positions, the last equal to the first"
    if not all(math.isfinite(x) for p in points for x in p):
        return "positions must be finite numbers"
    if not all(-180 <= lng <= 180 and -90 <= lat <= 90 for lng, lat in points):
        return "positions must be [lng, lat] within [-180, 180] × [-90, 90]"
    if abs(_shoelace(points)) < MIN_RING_AREA:
        return "each ring must enclose a surface (its positions are on one line or one point)"
    return None


def _shoelace(points: list[tuple[float, float]]) -> float:
    return sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(points)) / 2


def within(geometry: dict[str, Any]) -> dict[str, Any]:
    """The ``$geoWithin`` condition on ``location`` that selects the devices inside."""
    return {"$geoWithin": {"$geometry": geometry}}


def devices_inside(db: Any, geometry: dict[str, Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """The devices located inside the area, with ``fields`` only (both stores: the
    embedded one evaluates the ``$geoWithin`` in Python)."""
    projection = {name: 1 for name in fields} | {"_id": 0}
    return list(db["devices"].find({"location": within(geometry)}, projection))


def contains(geometry: dict[str, Any], location: Any) -> bool:
    """Whether a stored GeoJSON point lies inside the area (on an edge counts)."""
    point = geo.point_of(location)
    return point is not None and geo.parse_clause("location", within(geometry)).matches(*point)
