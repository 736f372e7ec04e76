"""Test documents: valid by default, overridable per test."""

from __future__ import annotations

import uuid
from typing import Any

AGGREGATOR = "agg-north"
OTHER_AGGREGATOR = "agg-south"


def new_uuid() -> str:
    return str(uuid.uuid4())


def device(**overrides: Any) -> dict[str, Any]:
    doc = {
        "device_id": new_uuid(),
        "device_name": "Hot water tank",
        "account_id": new_uuid(),
        "ven_id": new_uuid(),
        "aggregator_id": AGGREGATOR,
        "device_class": "dhwDevice",
        "availability": "yes",
        "marketplace_availability": "yes",
        "dr_availability": "yes",
        "device_type": "Demand",
        "max_capacity": 3.0,
        "available_capacity": 2.0,
        "location": {"type": "Point", "coordinates": [2.1734, 41.3851]},
        "status": {"setPoint": 55.0, "x-fanspeed": 0.0, "mode": "1", "operationState": "1"},
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def at(lng: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lng, lat]}
