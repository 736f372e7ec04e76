"""Erasing a prosumer account (docs/privacy.md, "Erasure"): personal fields removed,
the account left as its pseudonymous id, what settlement and the law require kept.

Removed: the prosumer's name, e-mail, phone and address (its display name becomes
"erased account"); its devices' names and locations (the devices stay, switched
off, so that the contracts naming them still resolve); its offers' locations (open
offers are withdrawn); its VEN enrolments (its gateways are refused from then on);
its readings, forecasts, advice and jobs; the same personal fields inside the audit
trail's recorded changes. Kept: its contracts and their settlements (accounting
records), the offers they reference, and the audit entries themselves, all naming
the account only by its id.

Refused (409) while the account has a contract that is not yet settled or called off:
its readings are still needed to settle it. Running it again after a partial failure
finishes the job (every step is idempotent).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from registry.store import timeseries

PERSONAL = ("name", "email", "phone", "address")
ERASED_NAME, ERASED_DEVICE = "erased account", "erased device"
UNSETTLED = ("proposed", "accepted", "active", "completed")
OPLOG = "oplog"


def unsettled_contracts(db: Any, account_id: str) -> list[str]:
    found = db["contracts"].find({"account_ids": account_id, "status": {"$in": list(UNSETTLED)}}, {"_id": 1})
    return sorted(str(c["_id"]) for c in found)


def erase(db: Any, account_id: str, now: datetime) -> dict[str, int]:
    """Erase what the module docstring says; how many documents each step touched."""
    mine = {"account_id": account_id}
    stamp = {"_updated": now, "_etag": uuid.uuid4().hex}  # old ETags stop matching
    prosumer = db["prosumers"].find_one(mine, {"_id": 1})
    device_ids = [d["_id"] for d in db["devices"].find(mine, {"_id": 1})]
    offer_ids = [o["_id"] for o in db["offers"].find(mine, {"_id": 1})]
    counts = {
        "prosumer": db["prosumers"]
        .update_one(
            mine,
            {"$unset": dict.fromkeys(PERSONAL, ""), "$set": {"display_name": ERASED_NAME, "erased_at": now, **stamp}},
        )
        .modified_count,
        "devices": db["devices"]
        .update_many(
            mine,
            {
                "$unset": {"location": ""},
                "$set": {
                    "device_name": ERASED_DEVICE,
                    "availability": "no",
                    "marketplace_availability": "no",
                    "dr_availability": "no",
                    **stamp,
                },
            },
        )
        .modified_count,
        "offers_withdrawn": db["offers"]
        .update_many({**mine, "status": "open"}, {"$set": {"status": "withdrawn", **stamp}})
        .modified_count,
    }
    db["offers"].update_many(mine, {"$unset": {"location": ""}})
    counts["vens"] = db["vens"].delete_many(mine).deleted_count
    counts["measurement_days"] = db[timeseries.COLLECTION].delete_many(mine).deleted_count
    for resource in ("forecasts", "advice", "jobs"):
        counts[resource] = db[resource].delete_many(mine).deleted_count
    counts["audit_entries_scrubbed"] = scrub_audit(db, account_id, prosumer, device_ids + offer_ids)
    return counts


def scrub_audit(db: Any, account_id: str, prosumer: dict[str, Any] | None, owned: list[Any]) -> int:
    """The personal fields out of the changes the audit trail recorded (also in the
    entries of documents deleted earlier, found by the account they named); the
    entries themselves stay."""
    unset = {f"c.{name}": "" for name in (*PERSONAL, "display_name", "device_name", "location")}
    ids = ([prosumer["_id"]] if prosumer else []) + owned
    about = {"$or": [{"i": {"$in": ids}}, {"c.account_id": account_id}]}
    return db[OPLOG].update_many(about, {"$unset": unset}).modified_count
