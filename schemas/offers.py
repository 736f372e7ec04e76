"""offers: one device's flexibility on the market (docs/contract.md, "Marketplace resources", docs/marketplace.md)."""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, CURRENCY, DIRECTION, POINT, UUID_FIELD
from schemas.vocabulary import OFFER_STATUSES

SCHEMA: dict[str, Any] = {
    "device_id": {**UUID_FIELD, "required": True},
    "start": {"type": "datetime", "required": True},
    "end": {"type": "datetime", "required": True},
    "direction": {**DIRECTION, "required": True},
    "power_kw": {"type": "float", "required": True, "min": 0.001, "max": 100000},
    # per kWh of delivered flexibility
    "price": {"type": "float", "required": True, "min": 0, "max": 100000},
    "currency": {**CURRENCY, "default": "EUR"},
    "status": {"type": "string", "allowed": list(OFFER_STATUSES), "default": "open"},
    # copied from the device by a hook, so filtering and geo queries need no join
    "account_id": {**UUID_FIELD, "readonly": True},
    "aggregator_id": {**AGGREGATOR_ID, "readonly": True},
    "location": {**POINT, "readonly": True},
    "contract_id": {"type": "objectid", "readonly": True, "nullable": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "offer",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH", "DELETE"],
    "mongo_indexes": {
        "location_2dsphere": [("location", "2dsphere")],
        "market": [("status", 1), ("direction", 1), ("start", 1), ("price", 1)],
        "device": [("device_id", 1), ("status", 1)],
        "owner": [("aggregator_id", 1), ("account_id", 1)],
        "expiry": [("status", 1), ("end", 1)],
    },
}
