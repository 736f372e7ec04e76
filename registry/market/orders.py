"""Clearing at gate closure, run by the tick, and the orders it makes (docs/market.md,
"Orders").

Every open flexibility request whose gate has closed is claimed with a
compare-and-set (open → clearing: one ticker wins, however many run at once),
then cleared with the pure :func:`registry.market.clearing.clear` over its
submitted bids. Bids with a device already held in the window (a bilateral
contract accepted after the bid, or another order) are left out before the merit
order, so the power goes to the next bids. Each award becomes an order that
reserves its devices' slots in the reservations both markets share, in one atomic
run with the order's insert; a reservation lost to a contract accepted in between
(a race) rejects that bid, and its power is not offered again. The bids get their
ACK (accepted, with the power per slot, the price and the order) or NACK
(rejected, with the reason), and the request becomes cleared with the power ordered.

Every write is a system write (:mod:`registry.market.system_writes`): audited,
with Eve's events. A clearing whose ticker died half-way (still ``clearing``
after ``REQUEST_GRACE_SECONDS``) is taken over by one later tick (a compare-and-set
on its ``_updated``) and finished: an order is unique per bid, and a bid already
answered is left as it is.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from registry.market import reservations, system_writes
from registry.market.clearing import Award, Bid, clear, merit_order
from registry.store.atomic import Plan, Refusal, Step

COUNTS = ("requests_cleared", "orders_created", "bids_accepted", "bids_rejected")


def clear_due(db: Any, config: dict[str, Any], now: datetime) -> dict[str, int]:
    """Clear every request whose gate closure has passed (and finish any clearing left
    half-done by a dead ticker); returns counts."""
    counts = dict.fromkeys(COUNTS, 0)
    pricing = str(config.get("CLEARING_PRICING", "pay_as_bid"))
    for request in db["flexibility_requests"].find({"status": "open", "gate_closure": {"$lte": now}}):
        if reservations.flip(db, "flexibility_requests", request, "clearing", now, {"pricing": pricing}):
            clear_claimed(db, request["_id"], now, counts)
    stuck = now - timedelta(seconds=int(config.get("REQUEST_GRACE_SECONDS", 120)))
    for request in db["flexibility_requests"].find({"status": "clearing", "_updated": {"$lte": stuck}}):
        taken_over = {"_updated": request["_updated"]}
        if system_writes.apply(db, "flexibility_requests", request, {"pricing": request["pricing"]}, now, taken_over):
            clear_claimed(db, request["_id"], now, counts)
    return counts


def clear_claimed(db: Any, request_id: Any, now: datetime, counts: dict[str, int]) -> None:
    """The clearing of one request this ticker holds (status clearing)."""
    request = db["flexibility_requests"].find_one({"_id": request_id})
    # a resumed clearing keeps what a dead ticker decided: answered bids stay answered,
    # orders made stay made and take their power off what is left to clear
    made = {o["bid"]: o for o in db["orders"].find({"request": request_id})}
    bids = list(db["bids"].find({"request": request_id, "status": "submitted"}))
    for bid in [b for b in bids if b["_id"] in made]:
        acknowledge(db, bid, made[bid["_id"]], now, counts)
    bids = [b for b in bids if b["_id"] not in made]
    offers = [b for b in bids if not b.get("cannot_offer")]
    for bid in bids:
        if bid.get("cannot_offer"):
            answer(db, bid, now, counts, rejection_reason="the bid offered nothing (cannot_offer)")
    refused = {b["_id"]: reason for b in offers if (reason := unavailable(db, b, request))}
    for bid_id, reason in refused.items():
        answer(db, by_id(offers, bid_id), now, counts, rejection_reason=reason)
    free = [as_bid(b) for b in offers if b["_id"] not in refused]
    left = [max(w - sum(o["power_kw"][i] for o in made.values()), 0.0) for i, w in enumerate(request["power_kw"])]
    awards = clear(left, request["max_price"], free, request["pricing"])
    for award in awards:
        bid = by_id(offers, award.bid_id)
        if not award.accepted:
            answer(db, bid, now, counts, rejection_reason=why_not(award, free, awards, request["max_price"]))
        else:
            make_order(db, request, bid, award, now, counts)
    ordered = [0.0] * len(request["power_kw"])
    for order in db["orders"].find({"request": request_id}):  # what stands, whoever made it
        ordered = [o + a for o, a in zip(ordered, order["power_kw"])]
    done = {"ordered_kw": [round(kw, 9) for kw in ordered], "cleared_at": now}
    if reservations.flip(db, "flexibility_requests", request, "cleared", now, done):
        counts["requests_cleared"] += 1


def make_order(
    db: Any, request: dict[str, Any], bid: dict[str, Any], award: Award, now: datetime, counts: dict[str, int]
) -> bool:
    """The bid's order with its reservations, then the bid's ACK; a NACK if a device
    was taken meanwhile. True if the bid holds an order."""
    order = db["orders"].find_one({"bid": bid["_id"]})
    if order is None:
        order = order_document(db, request, bid, award)
        steps = [unchanged_step(bid, now), reservations.holding_step(reservations.order_reservation_docs(order, now))]
        try:
            system_writes.create(db, "orders", order, now, Plan(before=steps))
            counts["orders_created"] += 1
        except BidMoved:
            answer(db, bid, now, counts, rejection_reason="the bid was revised or withdrawn while the clearing ran")
            return False
        except reservations.Conflict:  # its message names the device: not the DSO's to read
            answer(db, bid, now, counts, rejection_reason="a device of this bid was taken while the clearing ran")
            return False
        except DuplicateKeyError:  # another ticker finishing the same clearing made it
            order = db["orders"].find_one({"bid": bid["_id"]}) or order
    acknowledge(db, bid, order, now, counts)
    return True


class BidMoved(Refusal):
    """The bid is no longer what the clearing read (a revision or withdrawal landed)."""


def unchanged_step(bid: dict[str, Any], now: datetime) -> Step:
    """A compare-and-set on the bid as the clearing read it (its ETag, still submitted),
    in the order's own atomic run: a revision or a withdrawal that lands while the
    clearing runs either comes first (no order) or is refused by its own ETag."""

    def do(db: Any) -> None:
        spec = {"_id": bid["_id"], "_etag": bid["_etag"], "status": "submitted"}
        # a new ETag: a revision sent with the one read before now gets a 412
        if db["bids"].update_one(spec, {"$set": {"cleared_at": now, "_etag": uuid.uuid4().hex}}).matched_count == 0:
            raise BidMoved("the bid changed while the clearing ran")

    def undo(db: Any) -> None:
        db["bids"].update_one({"_id": bid["_id"]}, {"$set": {"_etag": bid["_etag"]}, "$unset": {"cleared_at": ""}})

    return Step("bid unchanged", do, undo)


def acknowledge(db: Any, bid: dict[str, Any], order: dict[str, Any], now: datetime, counts: dict[str, int]) -> None:
    changes = {"accepted_kw": list(order["power_kw"]), "awarded_price": order["price"], "order": order["_id"]}
    answer(db, bid, now, counts, **changes)


def unavailable(db: Any, bid: dict[str, Any], request: dict[str, Any]) -> str | None:
    """Why a bid's devices cannot be ordered now, or None; the reasons name no device
    (the DSO reads them). A device held in the window by anything but this request's
    own orders, or no longer on the marketplace, or no longer the bidder's."""
    if held_slot(db, bid, request):
        return "a device of this bid is held in the request's window by a contract or order"
    devices = list(db["devices"].find({"device_id": {"$in": bid["device_ids"]}}))
    if len(devices) != len(set(bid["device_ids"])) or any(
        d.get("marketplace_availability") != "yes" or d.get("aggregator_id") != bid["aggregator_id"] for d in devices
    ):
        return "a device of this bid is no longer on the marketplace, or no longer the bidder's"
    return None


def order_document(db: Any, request: dict[str, Any], bid: dict[str, Any], award: Award) -> dict[str, Any]:
    devices = db["devices"].find({"device_id": {"$in": bid["device_ids"]}}, {"account_id": 1})
    return {
        "_id": ObjectId(),
        "request": request["_id"],
        "bid": bid["_id"],
        "aggregator_id": bid["aggregator_id"],
        "dso_id": request["dso_id"],
        "grid_area": request["grid_area"],
        "direction": request["direction"],
        "start": request["start"],
        "end": request["end"],
        "power_kw": list(award.accepted_kw),
        "price": award.price,
        "currency": request.get("currency", "EUR"),
        "pricing": request["pricing"],
        "device_ids": sorted(bid["device_ids"]),
        "account_ids": sorted({d["account_id"] for d in devices if d.get("account_id")}),
        "status": "accepted",
    }


def answer(db: Any, bid: dict[str, Any], now: datetime, counts: dict[str, int], **changes: Any) -> None:
    """ACK (``order`` given) or NACK (``rejection_reason``) of a submitted bid; a bid
    already answered (a resumed clearing) is left alone."""
    if bid["status"] != "submitted":
        return
    target = "accepted" if "order" in changes else "rejected"
    if reservations.flip(db, "bids", bid, target, now, {**changes, "cleared_at": now}):
        counts[f"bids_{target}"] += 1


def held_slot(db: Any, bid: dict[str, Any], request: dict[str, Any]) -> dict[str, Any] | None:
    """A slot of the request's window where a device of the bid is held by anything
    but this request's own orders (those of a clearing being finished)."""
    own = db["orders"].distinct("_id", {"request": request["_id"]})
    return db[reservations.COLLECTION].find_one(
        {
            "device_id": {"$in": bid["device_ids"]},
            "slot_start": {"$gte": request["start"], "$lt": request["end"]},
            "order_id": {"$nin": own},
        }
    )


def why_not(award: Award, bids: list[Bid], awards: list[Award], max_price: float) -> str:
    bid = next(b for b in bids if b.bid_id == award.bid_id)
    if bid.price > max_price:
        return f"priced above the request's maximum of {max_price}"
    won = {a.bid_id for a in awards if a.accepted}
    before = merit_order(bids)[: merit_order(bids).index(bid)]
    if any(set(b.device_ids) & set(bid.device_ids) for b in before if b.bid_id in won):
        return "a device of this bid is in a bid accepted before it in merit order"
    return "outbid: cheaper or earlier bids took the power asked for (or no whole step of the granularity fitted)"


def as_bid(bid: dict[str, Any]) -> Bid:
    return Bid(
        bid_id=str(bid["_id"]),
        price=float(bid["price"]),
        power_kw=tuple(float(kw) for kw in bid["power_kw"]),
        granularity_kw=float(bid.get("granularity_kw") or 0),
        submitted_at=bid.get("submitted_at") or bid["_created"],
        device_ids=tuple(bid["device_ids"]),
    )


def by_id(bids: list[dict[str, Any]], bid_id: Any) -> dict[str, Any]:
    return next(b for b in bids if str(b["_id"]) == str(bid_id))


def advance_orders(db: Any, now: datetime) -> dict[str, int]:
    """Orders become active at their start and completed at their end, when their
    slots are freed (a release lost to a crash is repaired as an orphan)."""
    active = sum(
        reservations.flip(db, "orders", o, "active", now)
        for o in db["orders"].find({"status": "accepted", "start": {"$lte": now}})
    )
    completed = 0
    for order in db["orders"].find({"status": "active", "end": {"$lte": now}}):
        if reservations.flip(db, "orders", order, "completed", now):
            reservations.release(db, order["_id"], "order_id")
            completed += 1
    return {"orders_active": active, "orders_completed": completed}
