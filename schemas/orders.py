"""orders: what the clearing of a flexibility request agreed with one aggregator
(docs/market.md, "Orders"; USEF FlexOrder, InterFlex's ACK).

One per accepted bid, written by the registry only (the tick, as the system):
the accepted power per slot of the request's window, the price per kWh, the bid's
devices and their owners. It holds its devices' slots in the same reservations as
bilateral contracts (:mod:`registry.market.orders`), so no device is sold twice
across both markets. Read-only for every role.
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, CURRENCY, DIRECTION, DSO_ID, UUID_FIELD
from schemas.vocabulary import ORDER_STATUSES, PRICINGS

SCHEMA: dict[str, Any] = {
    "request": {"type": "objectid", "readonly": True},
    "bid": {"type": "objectid", "readonly": True},
    "aggregator_id": {**AGGREGATOR_ID, "readonly": True},
    "dso_id": {**DSO_ID, "readonly": True},
    "grid_area": {"type": "objectid", "readonly": True},
    "direction": {**DIRECTION, "readonly": True},
    "start": {"type": "datetime", "readonly": True},
    "end": {"type": "datetime", "readonly": True},
    # accepted kW in each 15-minute slot from start (0: the slot is not the order's)
    "power_kw": {"type": "list", "readonly": True, "schema": {"type": "float"}},
    "price": {"type": "float", "readonly": True},
    "currency": {**CURRENCY, "readonly": True},
    "pricing": {"type": "string", "allowed": list(PRICINGS), "readonly": True},
    "device_ids": {"type": "list", "readonly": True, "schema": UUID_FIELD},
    "account_ids": {"type": "list", "readonly": True, "schema": {"type": "string"}},
    "status": {"type": "string", "allowed": list(ORDER_STATUSES), "readonly": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "order",
    "resource_methods": ["GET"],
    "item_methods": ["GET"],
    "mongo_indexes": {
        # one order per bid: a clearing resumed after a crash finds it instead of a second
        "bid": ([("bid", 1)], {"unique": True}),
        "request": [("request", 1)],
        "owner": [("aggregator_id", 1), ("status", 1)],
        "dso": [("dso_id", 1)],
        "accounts": [("account_ids", 1)],
        "clock": [("status", 1), ("start", 1)],
    },
}
