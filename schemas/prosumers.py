"""prosumers: device owners; personal fields are hidden from aggregators."""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, UUID_FIELD

SCHEMA: dict[str, Any] = {
    "account_id": {**UUID_FIELD, "required": True, "unique": True},
    "aggregator_id": {**AGGREGATOR_ID, "required": True},
    "display_name": {"type": "string", "required": True, "minlength": 1, "maxlength": 64},
    "name": {"type": "string", "maxlength": 256},
    "email": {"type": "string", "maxlength": 256, "regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
    "phone": {"type": "string", "maxlength": 32, "regex": r"^\+?[0-9 ()-]{3,32}$"},
    "address": {"type": "string", "maxlength": 512},
    "contracted_max_power_kw": {"type": "float", "min": 0},
}

RESOURCE: dict[str, Any] = {
    "item_title": "prosumer",
    "additional_lookup": {"url": 'regex("[a-fA-F0-9-]{36}")', "field": "account_id"},
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH", "DELETE"],
    "mongo_indexes": {
        "account_id_unique": ([("account_id", 1)], {"unique": True}),
        "aggregator": [("aggregator_id", 1)],
    },
}
