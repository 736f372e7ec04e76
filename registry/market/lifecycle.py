"""The clock-driven side of the marketplace: ``advance_lifecycle(now)``.

Offers expire at their end; proposals nobody accepted lapse (rejected) at
their start; accepted contracts become active at their start and completed at
their end (their slots are released); completed contracts are settled once
the settle delay has passed (one without enough history keeps a
``settlement_error`` and is retried hourly for a week). Every move is a
compare-and-set on the status, so running it from several workers at once,
or repeatedly, is harmless. Every move is a system write
(:mod:`registry.market.system_writes`): recorded in the oplog, with Eve's
update events, whose marketplace hook frees the slots of a contract that
stops holding them. The job worker calls it periodically; tests call it with
an injected clock.

It also repairs what a request killed between two writes left behind (only
possible without a transaction, see :mod:`registry.store.atomic`), once it is older
than ``REQUEST_GRACE_SECONDS`` (longer than any request may run):
reservations of a contract that does not exist or no longer holds slots are
deleted; offers ``contracted`` for a contract that does not exist, or was
cancelled or rejected, are reopened (and expire as usual if their end has
passed).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from registry.market import orders, reservations, system_writes
from registry.market.settlement import BaselineRule, Reading, SettlementError, settle, settle_shares
from registry.store import idempotency_keys, timeseries
from registry.store.clock import as_utc, utcnow
from schemas.vocabulary import LIVE_CONTRACT_STATES, LIVE_ORDER_STATES

# a contract that cannot be settled yet (missing history) is retried hourly, for a week
SETTLE_RETRY = timedelta(hours=1)
SETTLE_GIVE_UP = timedelta(days=7)
# contract states whose offers stay contracted
HOLDS_OFFERS = ("accepted", "active", "completed", "settled")
# (resource, current, target, the moment field that must have passed)
CLOCK_MOVES = [
    ("offers", "open", "expired", "end"),
    ("contracts", "proposed", "rejected", "start"),
    ("contracts", "accepted", "active", "start"),
    ("contracts", "active", "completed", "end"),
]


def advance_lifecycle(now: datetime | None = None, app: Flask | None = None) -> dict[str, int]:
    """Repair orphans, then apply every transition that is due at ``now``; returns counts."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    now = as_utc(now) if now is not None else utcnow()
    with app.app_context():
        db = app.data.driver.db
        counts = repair_orphans(db, now, timedelta(seconds=int(app.config.get("REQUEST_GRACE_SECONDS", 120))))
        counts["idempotency_keys_expired"] = idempotency_keys.sweep(db, now)
        counts.update(
            {
                f"{resource}_{target}": move_due(db, resource, current, target, field, now)
                for resource, current, target, field in CLOCK_MOVES
            }
        )
        counts.update(orders.clear_due(db, app.config, now))
        counts.update(orders.advance_orders(db, now))
        settled, unsettled = settle_due(db, app.config, now)
    return {**counts, "contracts_settled": settled, "contracts_unsettled": unsettled}


def repair_orphans(db: Any, now: datetime, grace: timedelta) -> dict[str, int]:
    """Undo what requests that died half-way left, once they are surely dead."""
    cutoff = now - grace
    return {
        "orphan_reservations_deleted": delete_orphan_reservations(db, cutoff),
        "orphan_offers_reopened": reopen_orphan_offers(db, cutoff, now),
    }


def delete_orphan_reservations(db: Any, cutoff: datetime) -> int:
    """Reservations of contracts, and of orders, that do not exist or no longer hold slots."""
    old = {"$or": [{"reserved_at": {"$lte": cutoff}}, {"reserved_at": {"$exists": False}}]}
    holders = [("contract_id", "contracts", LIVE_CONTRACT_STATES), ("order_id", "orders", LIVE_ORDER_STATES)]
    deleted = 0
    for field, resource, live in holders:
        ids = [i for i in db[reservations.COLLECTION].distinct(field, old) if i is not None]
        alive = {"_id": {"$in": ids}, "status": {"$in": list(live)}}
        holding = {d["_id"] for d in db[resource].find(alive, {"_id": 1})}
        dead = [i for i in ids if i not in holding]
        if dead:
            deleted += db[reservations.COLLECTION].delete_many({field: {"$in": dead}, **old}).deleted_count
    return deleted


def reopen_orphan_offers(db: Any, cutoff: datetime, now: datetime) -> int:
    offers = list(db["offers"].find({"status": "contracted", "_updated": {"$lte": cutoff}}))
    contract_ids = list({o.get("contract_id") for o in offers})
    live = {
        c["_id"]
        for c in db["contracts"].find({"_id": {"$in": contract_ids}, "status": {"$in": list(HOLDS_OFFERS)}}, {"_id": 1})
    }
    return sum(
        reservations.flip(
            db, "offers", offer, "open", now, {"contract_id": None}, {"contract_id": offer.get("contract_id")}
        )
        for offer in offers
        if offer.get("contract_id") not in live
    )


def move_due(db: Any, resource: str, current: str, target: str, field: str, now: datetime) -> int:
    """``current`` → ``target`` for the documents whose ``field`` has passed (a
    completed contract's slots are freed by the hook the write fires)."""
    return sum(
        reservations.flip(db, resource, doc, target, now)
        for doc in db[resource].find({"status": current, field: {"$lte": now}})
    )


def settle_due(db: Any, config: dict[str, Any], now: datetime) -> tuple[int, int]:
    """Settle completed contracts whose end lies the settle delay in the past."""
    rule = BaselineRule.parse(config["MARKETPLACE_BASELINE"])
    factor = float(config["MARKETPLACE_PENALTY_FACTOR"])
    due = now - timedelta(minutes=int(config["MARKETPLACE_SETTLE_DELAY_MINUTES"]))
    contracts = list(
        db["contracts"].find(
            {
                "status": "completed",
                "end": {"$lte": due, "$gte": now - SETTLE_GIVE_UP},
                "$or": [
                    {"settlement_checked_at": {"$exists": False}},
                    {"settlement_checked_at": {"$lte": now - SETTLE_RETRY}},
                ],
            }
        )
    )
    readings = readings_for(db, contracts, rule) if contracts else {}
    owners = owners_of(db, contracts)
    settled = unsettled = 0
    for contract in contracts:
        try:
            document = settle(contract, readings, rule, factor, now)
            shares = (
                settle_shares(contract, readings, rule, factor, now, owners)
                if len(contract.get("account_ids") or []) > 1
                else None
            )
        except SettlementError as exc:
            # still completed, and not checked by another worker meanwhile
            checked = {"settlement_checked_at": contract.get("settlement_checked_at")}
            unsettled += system_writes.apply(
                db, "contracts", contract, {"settlement_error": str(exc), "settlement_checked_at": now}, now, checked
            )
            continue
        extra = {"settlement": document, "settlement_error": None}
        settled += reservations.flip(
            db, "contracts", contract, "settled", now, {**extra, "settlement_shares": shares} if shares else extra
        )
    return settled, unsettled


def owners_of(db: Any, contracts: list[dict[str, Any]]) -> dict[str, str]:
    """device_id -> account_id for the devices of contracts several prosumers share."""
    shared = {d for c in contracts if len(c.get("account_ids") or []) > 1 for d in c["device_ids"]}
    if not shared:
        return {}
    return {
        d["device_id"]: d["account_id"]
        for d in db["devices"].find({"device_id": {"$in": sorted(shared)}}, {"device_id": 1, "account_id": 1})
    }


def readings_for(db: Any, contracts: list[dict[str, Any]], rule: BaselineRule) -> dict[str, list[Reading]]:
    """The devices' measurements over the baseline look-back and the windows, in
    one read of their day buckets for all contracts (a scan per contract is what makes
    settlement slow)."""
    return timeseries.power_readings(
        db[timeseries.COLLECTION],
        sorted({d for c in contracts for d in c["device_ids"]}),
        min(c["start"] for c in contracts) - timedelta(days=rule.lookback_days),
        max(c["end"] for c in contracts),
    )
