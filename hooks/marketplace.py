"""Hooks that wire the marketplace rules to offers and contracts.

The decisions are pure functions (:mod:`registry.marketplace`); the side
effects are atomic store operations (:mod:`registry.reservations`). Each side
effect registers its undo first; if the request ends in an error (a 409 from a
rule, a 412 from a racing PATCH), the undo runs, so a refused request changes
nothing.
"""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any, Callable

from bson import ObjectId
from eve import Eve
from eve.methods.common import abort
from flask import Response, current_app, g

from hooks import access
from registry import reservations
from registry.marketplace import (SYSTEM, MarketError, check_acceptance, check_contract_update,
                                  check_new_contract, check_new_offer, check_offer_update)
from registry.reservations import Conflict


def utcnow() -> datetime:
    """Naive UTC, as Eve stores datetimes."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def actor() -> str:
    who = access.principal()
    return who.role if who else SYSTEM


def _db() -> Any:
    return current_app.data.driver.db


def refusals(hook: Callable[..., None]) -> Callable[..., None]:
    """Turn rule refusals into HTTP errors with the rule's message."""
    @functools.wraps(hook)
    def wrapped(*args: Any) -> None:
        try:
            hook(*args)
        except MarketError as exc:
            abort(exc.status, description=exc.message)
        except Conflict as exc:
            abort(409, description=exc.message)
    return wrapped


def on_failure(undo: Callable[[], Any]) -> None:
    g.setdefault("market_undo", []).append(undo)


def undo_if_failed(response: Response) -> Response:
    undo = g.pop("market_undo", [])
    if response.status_code >= 400:
        for step in reversed(undo):
            step()
    return response


def visible_devices(device_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The devices among ``device_ids`` that the caller may see."""
    spec: dict[str, Any] = {"device_id": {"$in": list(device_ids)}, **(access.scope_filter("devices") or {})}
    return {d["device_id"]: d for d in _db()["devices"].find(spec)}


@refusals
def check_offers_on_insert(items: list[dict[str, Any]]) -> None:
    """Offer the caller's own device; copy its owners and location."""
    devices = visible_devices(sorted({item["device_id"] for item in items}))
    for item in items:
        if item["device_id"] not in devices:
            abort(422, description=f"unknown device_id {item['device_id']}")
        item.update(check_new_offer(item, devices[item["device_id"]], utcnow()))


@refusals
def check_offer_on_update(updates: dict[str, Any], original: dict[str, Any]) -> None:
    device = _db()["devices"].find_one({"device_id": original["device_id"]})
    check_offer_update(original, updates, actor(), device, utcnow())


def refuse_deleting_contracted_offer(item: dict[str, Any]) -> None:
    if item.get("status") == "contracted":
        abort(409, description=f"offer {item['_id']} belongs to contract {item.get('contract_id')}; "
                               "cancel the contract first")


@refusals
def check_contracts_on_insert(items: list[dict[str, Any]]) -> None:
    for item in items:
        create_contract(item, utcnow())


def create_contract(item: dict[str, Any], now: datetime) -> None:
    """Validate, then hold the slots and claim the offers (atomically) before Eve stores it."""
    db = _db()
    offers = list(db["offers"].find({"_id": {"$in": item.get("offers") or []}}))
    device_ids = [o["device_id"] for o in offers] or item.get("device_ids") or []
    item.update(check_new_contract(item, offers, visible_devices(device_ids), now))
    item["_id"] = ObjectId()
    if item["status"] == "proposed":
        taken = reservations.first_taken(db, item)
        if taken:
            raise Conflict(f"device {taken['device_id']} is already contracted at "
                           f"{taken['slot_start']:%Y-%m-%dT%H:%M:%SZ}")
        return
    hold_slots(item)
    on_failure(lambda: reservations.reopen_offers(db, item["_id"], now))
    reservations.claim_offers(db, offers, item["_id"], now)


def hold_slots(contract: dict[str, Any]) -> None:
    db = _db()
    on_failure(lambda: reservations.release(db, contract["_id"]))
    reservations.reserve(db, contract)


@refusals
def check_contract_on_update(updates: dict[str, Any], original: dict[str, Any]) -> None:
    now = utcnow()
    check_contract_update(original, updates, actor(), now)
    if original["status"] == "proposed" and updates.get("status") == "accepted":
        found = _db()["devices"].find({"device_id": {"$in": original["device_ids"]}})
        devices = {d["device_id"]: d for d in found}
        check_acceptance(original, devices, now)
        hold_slots(original)


def release_on_close(updates: dict[str, Any], original: dict[str, Any]) -> None:
    """A cancelled or rejected contract frees its slots and reopens its offers."""
    if updates.get("status") in ("cancelled", "rejected"):
        reservations.release(_db(), original["_id"])
        reservations.reopen_offers(_db(), original["_id"], utcnow())


HOOKS = [
    ("on_insert_offers", check_offers_on_insert),
    ("on_update_offers", check_offer_on_update),
    ("on_delete_item_offers", refuse_deleting_contracted_offer),
    ("on_insert_contracts", check_contracts_on_insert),
    ("on_update_contracts", check_contract_on_update),
    ("on_updated_contracts", release_on_close),
]


def init_app(app: Eve) -> None:
    """The reservations index, and the undo of side effects of failed requests."""
    with app.app_context():
        reservations.ensure_indexes(app.data.driver.db)
    app.after_request(undo_if_failed)
