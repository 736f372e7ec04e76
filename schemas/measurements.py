"""measurements: device telemetry, 15-minute or finer; bulk POST, idempotent per (device_id, timestamp)."""

from __future__ import annotations

from typing import Any

from schemas.common import STATUS, UUID_FIELD

SCHEMA: dict[str, Any] = {
    "device_id": {**UUID_FIELD, "required": True},
    "timestamp": {"type": "datetime", "required": True},
    # signed: + consumption, - export
    "power_kw": {"type": "float", "required": True, "min": -100000, "max": 100000},
    "energy_kwh": {"type": "float"},
    "status": STATUS,
    # copied from the device by a hook so filtering never needs a join
    "account_id": {**UUID_FIELD, "readonly": True},
    "aggregator_id": {"type": "string", "readonly": True},
}

RESOURCE: dict[str, Any] = {
    "item_title": "measurement",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "DELETE"],
    "bulk_enabled": True,
    "default_sort": [("timestamp", 1)],
    # one reading per device and time: a re-sent reading is answered with the stored one
    # (registry.api.data_layer.RegistryMongo.insert), so a re-sent batch stores nothing twice
    "ingest_once_by": ["device_id", "timestamp"],
    "mongo_indexes": {
        "device_time": ([("device_id", 1), ("timestamp", 1)], {"unique": True}),
        "owner": [("aggregator_id", 1), ("account_id", 1)],
    },
}
