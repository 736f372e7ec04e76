"""prices: tariff or day-ahead market price series the advisor reads.

Scope: an aggregator's own tariff (aggregator_id), a bidding area (area,
e.g. the ISO country code "ES"), or neither (applies everywhere). The
advisor takes the most specific series that covers a slot.
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, CURRENCY
from schemas.vocabulary import SLOT_SECONDS

SCHEMA: dict[str, Any] = {
    "area": {"type": "string", "minlength": 2, "maxlength": 32},
    "aggregator_id": AGGREGATOR_ID,
    "kind": {"type": "string", "allowed": ["day-ahead", "tariff"], "default": "day-ahead"},
    "start": {"type": "datetime", "required": True},
    "resolution": {
        "type": "integer",
        "allowed": [SLOT_SECONDS, 2 * SLOT_SECONDS, 4 * SLOT_SECONDS],
        "default": SLOT_SECONDS,
    },
    # per kWh, one value per slot from start
    "values": {
        "type": "list",
        "required": True,
        "minlength": 1,
        "maxlength": 2976,
        "schema": {"type": "float", "min": -100000, "max": 100000},
    },
    "currency": {**CURRENCY, "default": "EUR"},
    "source": {"type": "string", "maxlength": 256},
}

RESOURCE: dict[str, Any] = {
    "item_title": "price",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "DELETE"],
    "bulk_enabled": True,
    "default_sort": [("start", -1)],
    "mongo_indexes": {
        "scope": [("aggregator_id", 1), ("area", 1), ("start", -1)],
    },
}
