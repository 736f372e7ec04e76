"""Hooks that wire the marketplace rules to offers and contracts.

The decisions are pure functions (:mod:`registry.market.rules`); the side
effects (hold slots, claim offers, free them again) are steps of the
request's :mod:`registry.store.atomic` plan, which the data layer runs with Eve's
own write: one transaction on a replica set; elsewhere in order, undoing
exactly what this request wrote if the write is refused. Nothing here writes
before Eve does, so a refused request changes nothing, and a request that
fails after the contract was stored never frees that contract's slots.

The same update hooks fire for the writes the registry makes itself (the
clock, claimed and reopened offers: :mod:`registry.market.system_writes`);
there the checks of what a caller may change step aside, and the closing
steps go into the system write's own plan.

POST /offers and POST /contracts accept an ``Idempotency-Key``
(:mod:`registry.api.idempotency`). A prosumer reading a contract shared with
other prosumers sees only its own share of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bson import ObjectId
from eve import Eve
from eve.methods.common import abort, payload
from flask import current_app

from registry.api import idempotency
from registry.hooks import access
from registry.market import reservations, shares, system_writes
from registry.market.reservations import Conflict
from registry.market.rules import (
    SYSTEM,
    MarketError,
    check_acceptance,
    check_contract_update,
    check_new_contract,
    check_new_offer,
    check_offer_update,
)
from registry.ops.metrics import ORPHANS_REPAIRED
from registry.store import atomic, idempotency_keys, mongo_setup
from registry.store.clock import utcnow
from schemas.vocabulary import CALLED_OFF_CONTRACT_STATES, DATE_FORMAT, LIVE_CONTRACT_STATES


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


def visible_devices(device_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The devices among ``device_ids`` that the caller may see."""
    spec: dict[str, Any] = {"device_id": {"$in": list(device_ids)}, **(access.scope_filter("devices") or {})}
    return {d["device_id"]: d for d in _db()["devices"].find(spec)}


# --- offers ----------------------------------------------------------------------


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
    if system_writes.active():
        return  # the system's move was checked against the transition table by the write path
    device = _db()["devices"].find_one({"device_id": original["device_id"]})
    check_offer_update(original, updates, actor(), device, utcnow())


def refuse_deleting_contracted_offer(item: dict[str, Any]) -> None:
    if item.get("status") == "contracted":
        abort(
            409,
            description=f"offer {item['_id']} belongs to contract {item.get('contract_id')}; cancel the contract first",
        )


# --- contracts -------------------------------------------------------------------


@refusals
def check_contracts_on_insert(items: list[dict[str, Any]]) -> None:
    for item in items:
        create_contract(item, utcnow())


def create_contract(item: dict[str, Any], now: datetime) -> None:
    """Validate; an accepted contract holds its slots and claims its offers with its insert."""
    db = _db()
    offers = list(db["offers"].find({"_id": {"$in": item.get("offers") or []}}))
    device_ids = [o["device_id"] for o in offers] or item.get("device_ids") or []
    item.update(check_new_contract(item, offers, visible_devices(device_ids), now))
    item["_id"] = ObjectId()
    if item["status"] == "proposed":
        taken = reservations.first_taken(db, item)
        if taken:
            raise Conflict(f"device {taken['device_id']} is already contracted at {taken['slot_start']:{DATE_FORMAT}}")
        return
    atomic.plan("contracts").before.extend(
        [reservations.reserve_step(item, now), reservations.claim_step(offers, item["_id"], now)]
    )


@refusals
def check_contract_on_update(updates: dict[str, Any], original: dict[str, Any]) -> None:
    """A caller's change is checked here; the system's (moves checked by the write
    path, settlement fields) is not. Either way, a contract that stops holding
    slots frees them."""
    now = utcnow()
    if not system_writes.active():
        check_contract_update(original, updates, actor(), now)
    target = updates.get("status", original["status"])
    if original["status"] == "proposed" and target == "accepted":
        found = _db()["devices"].find({"device_id": {"$in": original["device_ids"]}})
        check_acceptance(original, {d["device_id"]: d for d in found}, now)
        atomic.plan("contracts").before.append(reservations.reserve_step(original, now))
    elif target != original["status"] and target not in LIVE_CONTRACT_STATES:
        atomic.plan("contracts").after.extend(closing_steps(original["_id"], target, now))


def closing_steps(contract_id: ObjectId, target: str, now: datetime) -> list[atomic.Step]:
    """A contract that stops holding slots frees them; a cancelled or rejected one
    also reopens its offers."""
    steps = [atomic.Step("release", lambda db: reservations.release(db, contract_id))]
    if target in CALLED_OFF_CONTRACT_STATES:
        steps.append(atomic.Step("reopen_offers", lambda db: reservations.reopen_offers(db, contract_id, now)))
    return steps


# --- a prosumer's share of a shared contract -------------------------------------


def share_item_for_prosumer(item: dict[str, Any]) -> None:
    share_for_prosumer([item])


def share_list_for_prosumer(response: dict[str, Any]) -> None:
    share_for_prosumer(response.get("_items") or [])


def share_for_prosumer(contracts: list[dict[str, Any]]) -> None:
    """Another prosumer's account, devices, offers and settlement are not this one's to see."""
    who = access.principal()
    if who is not None and who.role == "prosumer":
        shares.keep_own_shares(_db(), contracts, who.account_id)


# --- Idempotency-Key ---------------------------------------------------------------


def idempotent(resource: str) -> Callable[[Any], None]:
    def begin(request: Any) -> None:
        who = access.principal()
        if who is not None:
            idempotency.begin(resource, f"{who.issuer} {who.subject}", payload())

    return begin


def key_offers(items: list[dict[str, Any]]) -> None:
    idempotency.plan_writes("offers", items)


def key_contracts(items: list[dict[str, Any]]) -> None:
    idempotency.plan_writes("contracts", items)


def repair_unstored_contracts(db: Any, contract_ids: list[Any]) -> None:
    """A dead request's contract was never stored: free what it held (the tick would, later)."""
    stored = {c["_id"] for c in db["contracts"].find({"_id": {"$in": contract_ids}}, {"_id": 1})}
    for contract_id in set(contract_ids) - stored:
        ORPHANS_REPAIRED.labels("reservations").inc(reservations.release(db, contract_id))
        ORPHANS_REPAIRED.labels("offers").inc(reservations.reopen_offers(db, contract_id, utcnow()))


HOOKS = [
    ("on_pre_POST_offers", idempotent("offers")),
    ("on_pre_POST_contracts", idempotent("contracts")),
    ("on_insert_offers", check_offers_on_insert),
    ("on_insert_offers", key_offers),
    ("on_update_offers", check_offer_on_update),
    ("on_delete_item_offers", refuse_deleting_contracted_offer),
    ("on_insert_contracts", check_contracts_on_insert),
    ("on_insert_contracts", key_contracts),
    ("on_update_contracts", check_contract_on_update),
    ("on_fetched_item_contracts", share_item_for_prosumer),
    ("on_fetched_resource_contracts", share_list_for_prosumer),
]


def init_app(app: Eve) -> None:
    """The reservations and idempotency indexes; keys are closed after each request."""
    with app.app_context():
        if mongo_setup.created_here(app.data.driver.db):  # on MongoDB: `run.py migrate`
            reservations.ensure_indexes(app.data.driver.db)
            idempotency_keys.ensure_indexes(app.data.driver.db)
    idempotency.REPAIRS["contracts"] = repair_unstored_contracts
    app.after_request(idempotency.finish)
