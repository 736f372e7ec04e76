"""devices: exactly the FLEXCoop CIM schema (docs/contract.md, "Devices")."""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, POINT, STATUS, UUID_FIELD, YES_NO
from schemas.vocabulary import DEVICE_CLASSES, DEVICE_TYPES

SCHEMA: dict[str, Any] = {
    "device_id": {**UUID_FIELD, "required": True, "unique": True},
    "device_name": {"type": "string", "required": True, "default": "NO NAME"},
    "status": STATUS,
    "account_id": {**UUID_FIELD, "required": True},
    "ven_id": {**UUID_FIELD, "required": True},
    "aggregator_id": {**AGGREGATOR_ID, "required": True},
    "device_class": {"type": "string", "allowed": list(DEVICE_CLASSES), "required": True},
    "availability": {"type": "string", "allowed": ["yes", "no", ""], "required": True},
    "marketplace_availability": YES_NO,
    "dr_availability": YES_NO,
    "location": POINT,
    "device_type": {"type": "string", "allowed": list(DEVICE_TYPES)},
    "max_capacity": {"type": "float"},
    "available_capacity": {"type": "float"},
}

RESOURCE: dict[str, Any] = {
    "item_title": "devices",
    "id_field": "device_id",
    "item_lookup_field": "device_id",
    "item_url": 'regex("[a-zA-Z0-9-]+")',
    "cache_control": "max-age=10,must-revalidate",
    "cache_expires": 10,
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH", "DELETE"],
    "mongo_indexes": {
        "device_id_unique": ([("device_id", 1)], {"unique": True}),
        "location_2dsphere": [("location", "2dsphere")],
        "owner": [("aggregator_id", 1), ("account_id", 1)],
        "marketplace": [("device_class", 1), ("marketplace_availability", 1), ("max_capacity", -1)],
        "ven": [("ven_id", 1)],
    },
}
