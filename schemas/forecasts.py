"""forecasts: day-ahead, 96 x 15 min per device, written by forecasting jobs (docs/contract.md, "Jobs")."""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, DIRECTION, UUID_FIELD
from schemas.vocabulary import SLOT_SECONDS, SLOTS_PER_DAY

KW_VALUES: dict[str, Any] = {
    "type": "list",
    "minlength": SLOTS_PER_DAY,
    "maxlength": SLOTS_PER_DAY,
    "schema": {"type": "float", "min": -100000, "max": 100000},
}

SCHEMA: dict[str, Any] = {
    "device_id": {**UUID_FIELD, "required": True},
    "kind": {"type": "string", "allowed": ["consumption", "flexibility"], "required": True},
    # flexibility only: up = more power drawn, down = less (kW >= 0 either way)
    "direction": DIRECTION,
    "issued_at": {"type": "datetime", "required": True},
    "start": {"type": "datetime", "required": True},
    "resolution": {"type": "integer", "allowed": [SLOT_SECONDS], "default": SLOT_SECONDS},
    "values": {**KW_VALUES, "required": True},
    "quantiles": {"type": "dict", "schema": {"p10": KW_VALUES, "p90": KW_VALUES}},
    "model": {"type": "string", "required": True, "minlength": 1, "maxlength": 128},
    # mean absolute error (kW) of the same model on the last observed day
    "backtest_mae": {"type": "float", "nullable": True, "min": 0},
    # what a consumption forecast was fitted on (registry/forecast/quality.py)
    "fitted_on": {
        "type": "dict",
        "schema": {
            "history_days": {"type": "integer", "min": 0},
            "days_used": {"type": "integer", "min": 0},
            "share_missing": {"type": "float", "min": 0, "max": 1},
            "excluded_values": {"type": "integer", "min": 0},
            "last_reading": {"type": "datetime", "nullable": True},
        },
    },
    # the job that wrote it (absent when a service posted it through the API)
    "job_id": {"type": "objectid"},
    # copied from the device by a hook so filtering never needs a join
    "account_id": {**UUID_FIELD, "readonly": True},
    "aggregator_id": {**AGGREGATOR_ID, "readonly": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "forecast",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "DELETE"],
    "bulk_enabled": True,
    "default_sort": [("issued_at", -1)],
    "mongo_indexes": {
        "device_latest": [("device_id", 1), ("kind", 1), ("start", -1), ("issued_at", -1)],
        "owner": [("aggregator_id", 1), ("account_id", 1)],
        "job": [("job_id", 1)],
    },
}
