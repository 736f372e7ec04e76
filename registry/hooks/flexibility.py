"""Hooks that wire the grid operators' market rules (registry/market/flex_rules.py)
to flexibility requests and bids (docs/market.md).

A request is checked against its DSO's own grid area and the clock, and gets the
aggregators that may see it (those with devices inside the area) and the area's
shape. A bid is checked against its request (open to its aggregator, gate not
closed), the aggregator's own devices and the slots live contracts hold; a
revision is checked again as a whole. The clearing's own writes (the system) step
past the checks of what a caller may change.
"""

from __future__ import annotations

from typing import Any

from eve.methods.common import abort
from flask import current_app

from registry.hooks import access
from registry.hooks.marketplace import refusals
from registry.market import flex_rules, reservations, system_writes
from registry.market.rules import SYSTEM
from registry.store import geo_areas
from registry.store.clock import utcnow
from schemas.vocabulary import DATE_FORMAT


def _db() -> Any:
    return current_app.data.driver.db


def _actor() -> str:
    who = access.principal()
    return who.role if who else SYSTEM


# --- requests ----------------------------------------------------------------------


@refusals
def check_requests_on_insert(items: list[dict[str, Any]]) -> None:
    for item in items:
        area = _db()["grid_areas"].find_one({"_id": item["grid_area"]})
        inside = geo_areas.devices_inside(_db(), area["geometry"], ("aggregator_id",)) if area else []
        aggregators = {d["aggregator_id"] for d in inside if d.get("aggregator_id")}
        item.update(flex_rules.check_new_request(item, area, aggregators, utcnow()))


@refusals
def check_request_on_update(updates: dict[str, Any], original: dict[str, Any]) -> None:
    if not system_writes.active():
        flex_rules.check_request_update(original, updates, _actor(), utcnow())


# --- bids --------------------------------------------------------------------------


def request_for(bid: dict[str, Any]) -> dict[str, Any] | None:
    """The request a bid answers, if it is open to the bid's aggregator."""
    return _db()["flexibility_requests"].find_one({"_id": bid["request"], "aggregator_ids": bid["aggregator_id"]})


def portfolio(bid: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The bid's devices that belong to its aggregator."""
    spec = {"device_id": {"$in": list(bid.get("device_ids") or [])}, "aggregator_id": bid["aggregator_id"]}
    return {d["device_id"]: d for d in _db()["devices"].find(spec)}


def check_bid_whole(bid: dict[str, Any], request: dict[str, Any] | None) -> dict[str, Any]:
    """Every rule of a bid, and that its devices are free in the request's window:
    not held by a live contract or order, not in another live bid to this request."""
    now = utcnow()
    derived = flex_rules.check_bid(bid, request, portfolio(bid), now)
    if bid.get("cannot_offer") or request is None:
        return derived
    window = {"device_ids": bid["device_ids"], "start": request["start"], "end": request["end"]}
    taken = reservations.first_taken(_db(), window)
    if taken:
        abort(409, description=f"device {taken['device_id']} is held at {taken['slot_start']:{DATE_FORMAT}}")
    rival = _db()["bids"].find_one(
        {
            "request": request["_id"],
            "status": "submitted",
            "device_ids": {"$in": bid["device_ids"]},
            "_id": {"$ne": bid.get("_id")},
        }
    )
    if rival:
        abort(409, description=f"a device of this bid is in bid {rival['_id']} to the same request already")
    return derived


@refusals
def check_bids_on_insert(items: list[dict[str, Any]]) -> None:
    for item in items:
        if item.get("status", "submitted") != "submitted":
            abort(422, description="a new bid is submitted")
        item.update(check_bid_whole(item, request_for(item)))


@refusals
def check_bid_on_update(updates: dict[str, Any], original: dict[str, Any]) -> None:
    if system_writes.active():
        return
    request = request_for(original)
    flex_rules.check_bid_update(original, updates, _actor(), request, utcnow())
    if any(name in updates for name in flex_rules.BID_TERMS):
        merged = {**original, **updates}
        updates.update(check_bid_whole(merged, request))


HOOKS = [
    ("on_insert_flexibility_requests", check_requests_on_insert),
    ("on_update_flexibility_requests", check_request_on_update),
    ("on_insert_bids", check_bids_on_insert),
    ("on_update_bids", check_bid_on_update),
]
