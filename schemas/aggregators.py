"""aggregators: the parties that contract prosumers' flexibility."""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID

SCHEMA: dict[str, Any] = {
    "aggregator_id": {**AGGREGATOR_ID, "required": True, "unique": True},
    "name": {"type": "string", "required": True, "minlength": 1, "maxlength": 256},
    "country": {"type": "string", "minlength": 2, "maxlength": 2},
    "contact_email": {"type": "string", "maxlength": 256},
}

RESOURCE: dict[str, Any] = {
    "item_title": "aggregator",
    "additional_lookup": {"url": 'regex("[\\w.-]+")', "field": "aggregator_id"},
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH", "DELETE"],
    "mongo_indexes": {"aggregator_id_unique": ([("aggregator_id", 1)], {"unique": True})},
}
