"""measurements: device telemetry, 15-minute or finer; bulk POST, idempotent per (device_id, timestamp).

The schema is what a client sends and reads; the store keeps day buckets (docs/timeseries.md)."""

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
    # stored in day buckets (registry/store/timeseries.py, docs/timeseries.md): a reading's id
    # is its device and time, <device_id>@<YYYY-MM-DDTHH:MM:SSZ>; one reading per device and
    # time, a re-sent one is answered with the stored one's id and changes nothing
    "item_url": 'regex("[0-9a-f-]{36}@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")',
    # POST takes the ingestion fast path (registry/api/ingest.py); the buckets' indexes are
    # created by registry.store.timeseries.ensure_indexes
}
