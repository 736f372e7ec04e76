"""bids: an aggregator's answer to a flexibility request (docs/market.md; InterFlex
``create_offer``, USEF FlexOffer).

Either an offer (``price`` per kWh, ``power_kw`` per slot of the request, the
``device_ids`` behind it, the ``granularity_kw`` it may be cut to) or an explicit
``cannot_offer``. Revised or withdrawn until the request's gate closure; the
rules are in :mod:`registry.market.flex_rules`. ``dso_id`` is copied from the
request (the DSO sees the bids to its requests, without their devices).
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, CURRENCY, DSO_ID, UUID_FIELD
from schemas.vocabulary import BID_STATUSES, MAX_REQUEST_SLOTS

SCHEMA: dict[str, Any] = {
    "request": {"type": "objectid", "required": True},
    "aggregator_id": {**AGGREGATOR_ID, "required": True},
    "cannot_offer": {"type": "boolean", "default": False},
    "price": {"type": "float", "min": 0, "max": 100000},
    "power_kw": {
        "type": "list",
        "maxlength": MAX_REQUEST_SLOTS,
        "schema": {"type": "float", "min": 0, "max": 100000},
    },
    "device_ids": {"type": "list", "maxlength": 500, "schema": UUID_FIELD},
    "granularity_kw": {"type": "float", "min": 0.001, "max": 100000},
    "currency": CURRENCY,
    "status": {"type": "string", "allowed": list(BID_STATUSES), "default": "submitted"},
    "dso_id": {**DSO_ID, "readonly": True},
    # when its terms were last set: ties in the clearing go to the earliest
    "submitted_at": {"type": "datetime", "readonly": True},
    # the clearing's answer (docs/market.md, "Orders"): ACK with the power accepted per
    # slot, the price per kWh and the order; or NACK with the reason
    "accepted_kw": {"type": "list", "readonly": True, "schema": {"type": "float"}},
    "awarded_price": {"type": "float", "readonly": True},
    "order": {"type": "objectid", "readonly": True},
    "rejection_reason": {"type": "string", "readonly": True},
    "cleared_at": {"type": "datetime", "readonly": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "bid",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH"],
    "bulk_enabled": False,
    "mongo_indexes": {
        "request": [("request", 1), ("status", 1)],
        "owner": [("aggregator_id", 1)],
        "dso": [("dso_id", 1)],
    },
}
