"""Marketplace writes that hold slots and flip statuses, on both backends.

* Slot reservations: one document per device and 15-minute slot of every
  accepted or active contract, under a unique index on (device_id,
  slot_start). Reserving is one ordered ``insert_many`` of documents whose
  ``_id`` s this call chose; the first duplicate stops it (:class:`Conflict`),
  and undoing it deletes exactly those ``_id`` s — never the slots another
  request holds for the same contract. No check-then-insert anywhere.
* Status flips: through the one write path for system writes
  (:mod:`registry.market.system_writes`): compare-and-set on the status,
  recorded in the oplog, with Eve's update events; False means someone else
  moved the document first.

The steps are run by :mod:`registry.store.atomic` (one transaction on a replica
set); ``reserved_at`` lets the lifecycle tick tell a request in flight from an
orphan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError, DuplicateKeyError

from registry.market import system_writes
from registry.market.rules import slot_starts
from registry.store.atomic import Refusal, Step
from schemas.vocabulary import DATE_FORMAT

COLLECTION = "reservations"
SLOT_INDEX = [("device_id", 1), ("slot_start", 1)]
DUPLICATE_KEY = 11000


class Conflict(Refusal):
    """Someone else holds the slot or moved the document first (HTTP 409)."""


def ensure_indexes(db: Any) -> None:
    """Created at start with the resources' indexes (plain pymongo API)."""
    db[COLLECTION].create_index(SLOT_INDEX, unique=True, name="device_slot_unique")
    db[COLLECTION].create_index([("contract_id", 1)], name="contract")
    db[COLLECTION].create_index([("reserved_at", 1)], name="reserved_at")


def reservation_docs(contract: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """In one global order (device, then time), so racing requests meet on
    their first shared slot instead of each holding a part."""
    slots = slot_starts(contract["start"], contract["end"])
    return [
        {
            "_id": ObjectId(),
            "device_id": device_id,
            "slot_start": slot,
            "contract_id": contract["_id"],
            "reserved_at": now,
        }
        for device_id in sorted(contract["device_ids"])
        for slot in slots
    ]


def order_reservation_docs(order: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """An order holds its devices in the slots where it accepted power (``order_id``
    instead of ``contract_id``; the same unique index, so neither market sells a
    device the other holds)."""
    slots = [slot for slot, kw in zip(slot_starts(order["start"], order["end"]), order["power_kw"]) if kw > 0]
    return [
        {"_id": ObjectId(), "device_id": d, "slot_start": slot, "order_id": order["_id"], "reserved_at": now}
        for d in sorted(order["device_ids"])
        for slot in slots
    ]


def reserve(db: Any, docs: list[dict[str, Any]]) -> None:
    """Hold every slot of ``docs`` or raise :class:`Conflict` (the caller undoes
    the part that was stored, with :func:`unreserve`)."""
    try:
        db[COLLECTION].insert_many([dict(d) for d in docs], ordered=True)
    except (BulkWriteError, DuplicateKeyError) as exc:
        if not _duplicate(exc):
            raise  # e.g. a transaction's write conflict: the transaction retries
        raise Conflict(_taken_message(exc)) from exc


def unreserve(db: Any, docs: list[dict[str, Any]]) -> int:
    """Delete the reservations this call inserted (by their ``_id`` s), nothing else."""
    return db[COLLECTION].delete_many({"_id": {"$in": [d["_id"] for d in docs]}}).deleted_count


def reserve_step(contract: dict[str, Any], now: datetime) -> Step:
    return holding_step(reservation_docs(contract, now))


def holding_step(docs: list[dict[str, Any]]) -> Step:
    """Hold ``docs`` (undone by deleting exactly them)."""
    return Step("reserve", lambda db: reserve(db, docs), lambda db: unreserve(db, docs))


def _duplicate(exc: Exception) -> bool:
    if isinstance(exc, BulkWriteError):
        return (exc.details or {}).get("writeErrors", [{}])[0].get("code") == DUPLICATE_KEY
    return getattr(exc, "code", None) == DUPLICATE_KEY


def _taken_message(exc: Exception) -> str:
    errors = getattr(exc, "details", None) or {}
    op = (errors.get("writeErrors") or [{}])[0].get("op") or {}
    where = (
        f"device {op['device_id']} at {op['slot_start']:{DATE_FORMAT}}"
        if "device_id" in op
        else "a device of this contract"
    )
    return f"{where} is already held by another accepted or active contract or order"


def release(db: Any, holder_id: ObjectId, field: str = "contract_id") -> int:
    """Free the slots of a contract (or, by ``order_id``, an order) that no longer
    holds them (closed, completed)."""
    return db[COLLECTION].delete_many({field: holder_id}).deleted_count


def first_taken(db: Any, contract: dict[str, Any]) -> dict[str, Any] | None:
    """A courtesy check for proposals; acceptance reserves atomically."""
    return db[COLLECTION].find_one(
        {
            "device_id": {"$in": contract["device_ids"]},
            "slot_start": {"$gte": contract["start"], "$lt": contract["end"]},
        }
    )


def flip(
    db: Any,
    resource: str,
    doc: dict[str, Any],
    target: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
    match: dict[str, Any] | None = None,
) -> bool:
    """Compare-and-set ``doc``'s status to ``target`` (if ``doc`` still has its
    status, and ``match``), with ``extra`` fields; False if it moved meanwhile.
    A system write: audited, with a new ETag and Eve's update events."""
    return system_writes.apply(db, resource, doc, {**(extra or {}), "status": target}, now, match)


def claim_offers(db: Any, offers: list[dict[str, Any]], contract_id: ObjectId, now: datetime) -> None:
    """open → contracted for each offer, or :class:`Conflict` (the caller reopens)."""
    for offer in offers:
        if not flip(db, "offers", offer, "contracted", now, {"contract_id": contract_id}):
            raise Conflict(f"offer {offer['_id']} was contracted or withdrawn meanwhile")


def claim_step(offers: list[dict[str, Any]], contract_id: ObjectId, now: datetime) -> Step:
    """Undone by reopening only the offers that carry this (new) contract's id."""
    return Step(
        "claim_offers",
        lambda db: claim_offers(db, offers, contract_id, now),
        lambda db: reopen_offers(db, contract_id, now),
    )


def reopen_offers(db: Any, contract_id: ObjectId, now: datetime) -> int:
    """contracted → open for the offers of a cancelled (or failed) contract."""
    owned = {"contract_id": contract_id}
    offers = list(db["offers"].find({**owned, "status": "contracted"}))
    return sum(flip(db, "offers", offer, "open", now, {"contract_id": None}, owned) for offer in offers)
