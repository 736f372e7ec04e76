"""advice: advisor output (registry/forecast/advisor.py), written by advisor jobs.

prosumer: one tagged entry per 15-minute slot (1 consumption strongly
recommended … 5 forbidden) with a machine-readable code; aggregator: the
devices to contract for a flexibility target.
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, DIRECTION, POINT, UUID_FIELD
from schemas.vocabulary import SLOTS_PER_DAY

SLOT: dict[str, Any] = {
    "type": "dict",
    "schema": {
        "start": {"type": "datetime", "required": True},
        "tag": {"type": "integer", "min": 1, "max": 5, "required": True},
        "code": {"type": "string", "maxlength": 64, "required": True},
        "message": {"type": "string", "maxlength": 256},
    },
}

RECOMMENDED_DEVICE: dict[str, Any] = {
    "type": "dict",
    "schema": {
        "device_id": {**UUID_FIELD, "required": True},
        "expected_kw": {"type": "float", "min": 0},
        "confidence": {"type": "float", "min": 0, "max": 1},
    },
}

SCHEMA: dict[str, Any] = {
    "kind": {"type": "string", "allowed": ["prosumer", "aggregator"], "required": True},
    "account_id": UUID_FIELD,
    "aggregator_id": {**AGGREGATOR_ID, "required": True},
    "device_id": UUID_FIELD,
    "issued_at": {"type": "datetime"},
    "start": {"type": "datetime", "required": True},
    "end": {"type": "datetime"},
    "resolution": {"type": "integer", "min": 60},
    # prosumer advice
    "slots": {"type": "list", "maxlength": 31 * SLOTS_PER_DAY, "schema": SLOT},  # at most a month
    # aggregator advice
    "target_kw": {"type": "float", "min": 0},
    "direction": DIRECTION,
    "point": POINT,
    "radius_km": {"type": "float", "min": 0},
    "devices": {"type": "list", "schema": RECOMMENDED_DEVICE},
    "expected_total_kw": {"type": "float", "min": 0},
    "shortfall_kw": {"type": "float", "min": 0},
    "job_id": {"type": "objectid"},
}

RESOURCE: dict[str, Any] = {
    "item_title": "advice",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "DELETE"],
    "bulk_enabled": True,
    "default_sort": [("_created", -1)],
    "mongo_indexes": {
        "owner": [("aggregator_id", 1), ("account_id", 1), ("kind", 1)],
        "job": [("job_id", 1)],
    },
}
