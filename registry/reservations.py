"""Atomic marketplace writes, the same on MongoDB and the embedded store.

* Slot reservations: one document per device and 15-minute slot of every
  accepted or active contract, under a unique index on (device_id,
  slot_start). Reserving is one ordered ``insert_many``; the first duplicate
  stops it and the partial reservation is rolled back, so of many requests
  racing for a device and time exactly one holds the slots — no
  check-then-insert anywhere.
* Status flips: compare-and-set ``update_one({_id, status: current})``; a
  ``modified_count`` of 0 means someone else moved the document first.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from eve.utils import document_etag
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry.marketplace import slot_starts

COLLECTION = "reservations"
SLOT_INDEX = [("device_id", 1), ("slot_start", 1)]


class Conflict(Exception):
    """Someone else holds the slot or moved the document first (HTTP 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def ensure_indexes(db: Any) -> None:
    """Created at start with the resources' indexes (plain pymongo API)."""
    db[COLLECTION].create_index(SLOT_INDEX, unique=True, name="device_slot_unique")
    db[COLLECTION].create_index([("contract_id", 1)], name="contract")


def reservation_docs(contract: dict[str, Any]) -> list[dict[str, Any]]:
    """In one global order (device, then time), so racing requests meet on
    their first shared slot instead of each holding a part."""
    slots = slot_starts(contract["start"], contract["end"])
    return [{"device_id": device_id, "slot_start": slot, "contract_id": contract["_id"]}
            for device_id in sorted(contract["device_ids"]) for slot in slots]


def reserve(db: Any, contract: dict[str, Any]) -> None:
    """Hold every slot of ``contract`` or none (raises :class:`Conflict`)."""
    try:
        db[COLLECTION].insert_many(reservation_docs(contract), ordered=True)
    except (BulkWriteError, DuplicateKeyError) as exc:
        release(db, contract["_id"])
        raise Conflict(_taken_message(exc)) from exc


def _taken_message(exc: Exception) -> str:
    errors = getattr(exc, "details", None) or {}
    op = (errors.get("writeErrors") or [{}])[0].get("op") or {}
    where = (f"device {op['device_id']} at {op['slot_start']:%Y-%m-%dT%H:%M:%SZ}"
             if "device_id" in op else "a device of this contract")
    return f"{where} is already held by another accepted or active contract"


def release(db: Any, contract_id: ObjectId) -> int:
    return db[COLLECTION].delete_many({"contract_id": contract_id}).deleted_count


def first_taken(db: Any, contract: dict[str, Any]) -> dict[str, Any] | None:
    """A courtesy check for proposals; acceptance reserves atomically."""
    return db[COLLECTION].find_one({
        "device_id": {"$in": contract["device_ids"]},
        "slot_start": {"$gte": contract["start"], "$lt": contract["end"]},
    })


def flip(db: Any, resource: str, doc: dict[str, Any], target: str, now: datetime,
         extra: dict[str, Any] | None = None) -> bool:
    """Compare-and-set ``doc``'s status to ``target``; False if it moved meanwhile.
    The ETag changes too, so clients holding the old one get a 412."""
    changes = {**(extra or {}), "status": target, "_updated": now.replace(microsecond=0)}
    changes["_etag"] = document_etag({k: v for k, v in {**doc, **changes}.items() if k != "_etag"})
    result = db[resource].update_one({"_id": doc["_id"], "status": doc["status"]}, {"$set": changes})
    return result.modified_count == 1


def claim_offers(db: Any, offers: list[dict[str, Any]], contract_id: ObjectId, now: datetime) -> None:
    """open → contracted for each offer, or :class:`Conflict` (the caller reopens)."""
    for offer in offers:
        if not flip(db, "offers", offer, "contracted", now, {"contract_id": contract_id}):
            raise Conflict(f"offer {offer['_id']} was contracted or withdrawn meanwhile")


def reopen_offers(db: Any, contract_id: ObjectId, now: datetime) -> int:
    """contracted → open for the offers of a cancelled (or failed) contract."""
    offers = db["offers"].find({"contract_id": contract_id, "status": "contracted"})
    return sum(flip(db, "offers", offer, "open", now, {"contract_id": None}) for offer in offers)
