"""The clock-driven side of the marketplace: ``advance_lifecycle(now)``.

Offers expire at their end; proposals nobody accepted lapse (rejected) at
their start; accepted contracts become active at their start and completed at
their end (their slots are released); completed contracts are settled once
the settle delay has passed (one without enough history keeps a
``settlement_error`` and is retried hourly for a week). Every move is a compare-and-set on the status,
so running it from several workers at once, or repeatedly, is harmless. The
job worker calls it periodically; tests call it with an injected clock.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Flask, current_app

from registry import reservations
from registry.marketplace import SYSTEM, check_transition
from registry.settlement import BaselineRule, Reading, SettlementError, settle

# a contract that cannot be settled yet (missing history) is retried hourly, for a week
SETTLE_RETRY = timedelta(hours=1)
SETTLE_GIVE_UP = timedelta(days=7)
# (resource, kind, current, target, the moment field that must have passed)
CLOCK_MOVES = [
    ("offers", "offer", "open", "expired", "end"),
    ("contracts", "contract", "proposed", "rejected", "start"),
    ("contracts", "contract", "accepted", "active", "start"),
    ("contracts", "contract", "active", "completed", "end"),
]


def advance_lifecycle(now: datetime | None = None, app: Flask | None = None) -> dict[str, int]:
    """Apply every transition that is due at ``now`` (naive UTC); returns counts."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is not None:  # stored datetimes are naive UTC
        now = now.astimezone(timezone.utc).replace(tzinfo=None)
    with app.app_context():
        db = app.data.driver.db
        counts = {f"{resource}_{target}": move_due(db, resource, kind, current, target, field, now)
                  for resource, kind, current, target, field in CLOCK_MOVES}
        settled, unsettled = settle_due(db, app.config, now)
    return {**counts, "contracts_settled": settled, "contracts_unsettled": unsettled}


def move_due(db: Any, resource: str, kind: str, current: str, target: str, field: str,
             now: datetime) -> int:
    moved = 0
    for doc in db[resource].find({"status": current, field: {"$lte": now}}):
        check_transition(kind, doc, target, SYSTEM, now)
        if reservations.flip(db, resource, doc, target, now):
            moved += 1
            if target == "completed":
                reservations.release(db, doc["_id"])
    return moved


def settle_due(db: Any, config: dict[str, Any], now: datetime) -> tuple[int, int]:
    """Settle completed contracts whose end lies the settle delay in the past."""
    rule = BaselineRule.parse(config["MARKETPLACE_BASELINE"])
    factor = float(config["MARKETPLACE_PENALTY_FACTOR"])
    due = now - timedelta(minutes=int(config["MARKETPLACE_SETTLE_DELAY_MINUTES"]))
    contracts = list(db["contracts"].find({
        "status": "completed", "end": {"$lte": due, "$gte": now - SETTLE_GIVE_UP},
        "$or": [{"settlement_checked_at": {"$exists": False}},
                {"settlement_checked_at": {"$lte": now - SETTLE_RETRY}}]}))
    readings = readings_for(db, contracts, rule) if contracts else {}
    settled = unsettled = 0
    for contract in contracts:
        try:
            document = settle(contract, readings, rule, factor, now)
        except SettlementError as exc:
            db["contracts"].update_one({"_id": contract["_id"], "status": "completed"},
                                       {"$set": {"settlement_error": str(exc), "settlement_checked_at": now}})
            unsettled += 1
            continue
        settled += reservations.flip(db, "contracts", contract, "settled", now,
                                     {"settlement": document, "settlement_error": None})
    return settled, unsettled


def readings_for(db: Any, contracts: list[dict[str, Any]], rule: BaselineRule) -> dict[str, list[Reading]]:
    """The devices' measurements over the baseline look-back and the windows, in
    one query for all contracts (a scan per contract is what makes settlement slow)."""
    spec = {"device_id": {"$in": sorted({d for c in contracts for d in c["device_ids"]})},
            "timestamp": {"$gte": min(c["start"] for c in contracts) - timedelta(days=rule.lookback_days),
                          "$lt": max(c["end"] for c in contracts)}}
    readings: dict[str, list[Reading]] = defaultdict(list)
    for m in db["measurements"].find(spec, {"device_id": 1, "timestamp": 1, "power_kw": 1}):
        readings[m["device_id"]].append((m["timestamp"], m["power_kw"]))
    return readings
