"""Grid areas: what a grid operator sees inside its own (docs/market.md, "Grid areas").

A DSO reads no device, prosumer or reading. Reading one of its areas, it gets
the area's aggregated figures: how many devices lie inside, how many are on the
marketplace, their capacity in total and per class. Per-period figures come from
``GET /series?grid_area=…`` (registry/api/series.py).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from flask import current_app

from registry.hooks import access
from registry.store import geo_areas

FIGURE_FIELDS = ("device_class", "marketplace_availability", "max_capacity", "available_capacity", "account_id")


def area_figures(geometry: dict[str, Any], minimum: int = 0) -> dict[str, Any]:
    """Counts and sums over the devices inside ``geometry``; never an id. Withheld
    when fewer than ``minimum`` households have devices there (a tiny area's figures
    would be one house's)."""
    devices = geo_areas.devices_inside(current_app.data.driver.db, geometry, FIGURE_FIELDS)
    homes = len({d.get("account_id") for d in devices})
    if homes < minimum:
        return {"withheld": f"fewer than {minimum} households in this area"}
    return {
        "devices": len(devices),
        "marketplace_devices": sum(d.get("marketplace_availability") == "yes" for d in devices),
        "max_capacity_kw": round(sum(_kw(d.get("max_capacity")) for d in devices), 3),
        "available_capacity_kw": round(sum(_kw(d.get("available_capacity")) for d in devices), 3),
        "devices_by_class": dict(sorted(Counter(d.get("device_class") or "unknown" for d in devices).items())),
    }


def _kw(value: Any) -> float:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else 0.0
    )


def add_figures(item: dict[str, Any]) -> None:
    """The figures, under the households' minimum for a grid operator."""
    who = access.principal()
    minimum = current_app.config["DSO_MIN_HOUSEHOLDS"] if who is None or who.role == "dso" else 0
    if isinstance(item.get("geometry"), dict) and not geo_areas.area_problem(item["geometry"]):
        item["figures"] = area_figures(item["geometry"], minimum)


HOOKS = [("on_fetched_item_grid_areas", add_figures)]
