"""Registry rules that keep derived fields consistent (no heavy work here)."""

from __future__ import annotations

from typing import Any

from eve.methods.common import abort
from flask import current_app


def copy_owner_from_device(items: list[dict[str, Any]]) -> None:
    """Measurements carry their device's owners, so filtering needs no join."""
    device_ids = sorted({item["device_id"] for item in items})
    devices = current_app.data.driver.db["devices"].find(
        {"device_id": {"$in": device_ids}}, {"device_id": 1, "account_id": 1, "aggregator_id": 1}
    )
    owners = {d["device_id"]: d for d in devices}
    missing = [d for d in device_ids if d not in owners]
    if missing:
        abort(422, description=f"unknown device_id: {', '.join(missing[:5])}")
    for item in items:
        owner = owners[item["device_id"]]
        item["account_id"] = owner["account_id"]
        item["aggregator_id"] = owner["aggregator_id"]


HOOKS = [
    ("on_insert_measurements", copy_owner_from_device),
]
