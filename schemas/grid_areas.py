"""grid_areas: the parts of the grid a DSO operates (docs/market.md, "Grid areas").

A GeoJSON Polygon or MultiPolygon, checked by the registry's validator
(``check_with: grid_area``: closed rings, finite positions on Earth, a sane size).
A DSO reads and writes its own areas only; inside them it sees aggregated figures,
never a device (docs/contract.md, "Roles and data scoping").
"""

from __future__ import annotations

from typing import Any

from schemas.common import DSO_ID

SCHEMA: dict[str, Any] = {
    "dso_id": {**DSO_ID, "required": True},
    "name": {"type": "string", "required": True, "minlength": 1, "maxlength": 256},
    "geometry": {"type": "dict", "required": True, "check_with": "grid_area"},
}

RESOURCE: dict[str, Any] = {
    "item_title": "grid_area",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH", "DELETE"],
    "mongo_indexes": {"owner": [("dso_id", 1)]},
}
