"""Erasing a prosumer account (docs/privacy.md, "Erasure"): personal fields removed,
the account left as its pseudonymous id, what settlement and the law require kept.

Removed: the prosumer's name, e-mail, phone and address (its display name becomes
"erased account"); its devices' names and locations (the devices stay, switched
off, so that the contracts naming them still resolve); its offers' locations (open
offers are withdrawn); its VEN enrolments (its gateways are refused from then on);
its readings, forecasts, advice and jobs; the recorded values of the audit entries
about the account's documents. Kept: its contracts and their settlements, grid
operators' orders holding its devices (accounting records), the offers they
reference, and the audit entries themselves, all naming the account only by its id.

Refused (409) while the account has a contract that is not yet settled or called off:
its readings are still needed to settle it. Running it again after a partial failure
finishes the job (every step is idempotent).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from registry.store import timeseries
from schemas.vocabulary import CALLED_OFF_CONTRACT_STATES, CONTRACT_STATUSES

PERSONAL = ("name", "email", "phone", "address")
ERASED_NAME, ERASED_DEVICE = "erased account", "erased device"
UNSETTLED = tuple(s for s in CONTRACT_STATUSES if s not in ("settled", *CALLED_OFF_CONTRACT_STATES))
OPLOG = "oplog"


def unsettled_contracts(db: Any, account_id: str) -> list[str]:
    found = db["contracts"].find({"account_ids": account_id, "status": {"$in": list(UNSETTLED)}}, {"_id": 1})
    return sorted(str(c["_id"]) for c in found)


def erase(db: Any, account_id: str, now: datetime, audited: list[Any]) -> dict[str, int]:
    """Erase what the module docstring says; how many documents each step touched.
    ``audited``: the ids the oplog names the account's documents by."""
    mine = {"account_id": account_id}
    stamp = {"_updated": now, "_etag": uuid.uuid4().hex}  # old ETags stop matching
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
    counts["audit_entries_scrubbed"] = scrub_audit(db, account_id, audited)
    return counts


def scrub_audit(db: Any, account_id: str, audited: list[Any]) -> int:
    """The recorded changes (``c``) out of the audit entries about the account's
    documents, also of those deleted earlier (a DELETE records the whole document,
    found by the account it named): who did what and when stays, the values (names,
    places, readings, forecasts, VEN names) go. A contract's entries are not the
    account's documents and keep theirs."""
    kept = {"$nin": ["contracts", "orders"]}  # accounting records, kept whole
    about = {"$or": [{"i": {"$in": audited}}, {"c.account_id": account_id}], "r": kept}
    return db[OPLOG].update_many({**about, "c": {"$exists": True}}, {"$unset": {"c": ""}}).modified_count
