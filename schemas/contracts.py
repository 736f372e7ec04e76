"""contracts: an aggregator's contract on devices' flexibility (docs/contract.md, "Marketplace resources").

Created ``accepted`` when open offers cover it, or ``proposed`` (device_ids,
no offers) for the prosumer to accept; the lifecycle is in
:mod:`registry.market.rules`, the settlement in :mod:`registry.market.settlement`.
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, CURRENCY, DIRECTION, UUID_FIELD
from schemas.vocabulary import CONTRACT_STATUSES

KW_SERIES: dict[str, Any] = {"type": "list", "schema": {"type": "float", "nullable": True}}

VEN_ANSWER: dict[str, Any] = {
    "opt": {"type": "string", "allowed": ["optIn", "optOut"], "required": True},
    "event_id": {"type": "string", "required": True, "minlength": 1, "maxlength": 256},
    "ven_id": {"type": "string", "maxlength": 256},
    "at": {"type": "datetime", "required": True},
}
# the contract's answer, and every change of a VEN's answer with its time (the OpenADR bridge)
VEN_RESPONSE: dict[str, Any] = {
    "type": "dict",
    "schema": {
        **VEN_ANSWER,
        "history": {"type": "list", "maxlength": 100, "schema": {"type": "dict", "schema": VEN_ANSWER}},
    },
}

SETTLEMENT: dict[str, Any] = {
    "type": "dict",
    "readonly": True,  # written by the marketplace only
    "schema": {
        "baseline_method": {"type": "string"},
        "baseline_kw": KW_SERIES,
        "measured_kw": KW_SERIES,
        "delivered_kw": KW_SERIES,
        "delivered_kwh": {"type": "float"},
        "contracted_kwh": {"type": "float"},
        "shortfall_kwh": {"type": "float"},
        "payment": {"type": "float"},
        "penalty": {"type": "float"},
        "currency": {"type": "string"},
        "computed_at": {"type": "datetime"},
    },
}

SCHEMA: dict[str, Any] = {
    "offers": {
        "type": "list",
        "maxlength": 100,
        "default": [],
        "schema": {"type": "objectid", "data_relation": {"resource": "offers", "embeddable": True}},
    },
    # derived from the offers, or given for a proposal
    "device_ids": {"type": "list", "maxlength": 100, "schema": UUID_FIELD},
    "aggregator_id": {**AGGREGATOR_ID, "required": True},
    "account_ids": {"type": "list", "readonly": True, "schema": UUID_FIELD},
    "start": {"type": "datetime", "required": True},
    "end": {"type": "datetime", "required": True},
    # per device; defaults to the smallest offer's power
    "power_kw": {"type": "float", "min": 0.001, "max": 100000},
    # per kWh; defaults to the highest asking price of the offers
    "price": {"type": "float", "min": 0, "max": 100000},
    "currency": CURRENCY,
    "direction": DIRECTION,
    "status": {"type": "string", "allowed": list(CONTRACT_STATUSES)},
    "ven_response": VEN_RESPONSE,
    "settlement": SETTLEMENT,
    # per prosumer of a contract several share; a prosumer reads its own as `settlement`
    "settlement_shares": {
        "type": "list",
        "readonly": True,
        "schema": {"type": "dict", "schema": {"account_id": UUID_FIELD, **SETTLEMENT["schema"]}},
    },
    "settlement_error": {"type": "string", "readonly": True, "nullable": True},
    "settlement_checked_at": {"type": "datetime", "readonly": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "contract",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH"],
    "bulk_enabled": False,
    "mongo_indexes": {
        "aggregator": [("aggregator_id", 1), ("status", 1)],
        "accounts": [("account_ids", 1)],
        "devices": [("device_ids", 1)],
        "lifecycle_start": [("status", 1), ("start", 1)],
        "lifecycle_end": [("status", 1), ("end", 1)],
    },
}
