"""flexibility_requests: a DSO asks for flexibility in one of its grid areas
(docs/market.md; InterFlex ``create_request``, USEF FlexRequest).

``power_kw`` holds one value per 15-minute slot from ``start``; ``end`` follows
from it. Bids are taken until ``gate_closure``. The plausibility rules are in
:mod:`registry.market.flex_rules`; ``aggregator_ids`` (the aggregators with devices
in the area when it was posted: who may see it) and ``area_geometry`` are copied
by the registry.
"""

from __future__ import annotations

from typing import Any

from schemas.common import CURRENCY, DIRECTION, DSO_ID
from schemas.vocabulary import FLEX_REQUEST_STATUSES, MAX_REQUEST_SLOTS, PRICINGS

SCHEMA: dict[str, Any] = {
    "dso_id": {**DSO_ID, "required": True},
    "grid_area": {"type": "objectid", "required": True},
    "direction": {**DIRECTION, "required": True},
    "start": {"type": "datetime", "required": True},
    "power_kw": {
        "type": "list",
        "required": True,
        "minlength": 1,
        "maxlength": MAX_REQUEST_SLOTS,
        "schema": {"type": "float", "min": 0.001, "max": 100000},
    },
    "end": {"type": "datetime", "readonly": True},
    "gate_closure": {"type": "datetime", "required": True},
    # per kWh of delivered flexibility
    "max_price": {"type": "float", "required": True, "min": 0, "max": 100000},
    "currency": {**CURRENCY, "default": "EUR"},
    "status": {"type": "string", "allowed": list(FLEX_REQUEST_STATUSES), "default": "open"},
    "aggregator_ids": {"type": "list", "readonly": True, "schema": {"type": "string"}},
    "area_geometry": {"type": "dict", "readonly": True},
    # set by the clearing: the power ordered per slot (all orders together), the pricing, when
    "ordered_kw": {"type": "list", "readonly": True, "schema": {"type": "float"}},
    "pricing": {"type": "string", "allowed": list(PRICINGS), "readonly": True},
    "cleared_at": {"type": "datetime", "readonly": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "flexibility_request",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH"],
    "bulk_enabled": False,
    "mongo_indexes": {
        "owner": [("dso_id", 1), ("status", 1)],
        "aggregators": [("aggregator_ids", 1), ("status", 1)],
        "gate": [("status", 1), ("gate_closure", 1)],
    },
}
