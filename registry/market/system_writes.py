"""One write path for the state changes the registry makes itself (docs/marketplace.md).

The clock (:mod:`registry.market.lifecycle`: offers expire, proposals lapse,
contracts become active, complete and are settled, orphans are repaired) and
the marketplace's own steps (:mod:`registry.market.reservations`: offers
claimed by a contract, reopened when it ends) change offers and contracts
without a client's PATCH. Every such change goes through :func:`apply`, which
does what Eve's PATCH does (``eve/methods/patch.py``), minus the request:

1. the move is checked against the transition table, as the system actor;
2. ``on_update`` and ``on_update_<resource>`` fire with ``(updates, original)``
   while no caller is bound: hooks see no principal and :func:`active` is true,
   so the checks of what a *caller* may change step aside, and the hooks plan
   their side effects (a contract that stops holding slots frees them) as they
   do for a PATCH, into a plan of this write's own;
3. ``_updated`` is stamped and ``_etag`` computed as Eve computes it, so a
   client's old ``If-Match`` gets a 412 afterwards;
4. the write is a compare-and-set: only if the status (and ``match``) is still
   what was read. A document that moved meanwhile is left alone: nothing is
   written or logged for it, the side effects its ``on_update`` hooks planned
   are dropped, and ``on_updated`` does not fire (``on_update`` has already run,
   so it must only plan, never write);
5. the change goes into the oplog in Eve's format (``oplog_push``), by
   ``u = "system"`` (``"system:<id>"`` with the id of the request or job that
   caused it), ``ip`` of that request if there is one;
6. once committed, ``on_updated`` and ``on_updated_<resource>`` fire (so, e.g.,
   advice is recomputed when a contract goes active).

Steps 4-5 and the planned side effects are one :func:`registry.store.atomic.run`:
one transaction on a replica set, joined to the running one when the write
comes from a step of a request's plan (its events then wait for that plan's
commit).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from copy import deepcopy
from datetime import datetime
from typing import Any

from eve.methods.common import resolve_document_etag
from flask import current_app, g, has_app_context, has_request_context, request

from registry.market.rules import SYSTEM, check_transition
from registry.ops import request_ids
from registry.store import atomic

log = logging.getLogger("registry.market.system_writes")
KINDS = {
    "offers": "offer",
    "contracts": "contract",
    "flexibility_requests": "flexibility_request",
    "bids": "bid",
    "orders": "order",
}
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("registry_system_write", default=False)
_NOBODY = object()


class Moved(Exception):
    """The document is no longer in the state the write was meant for."""


def active() -> bool:
    """True while the hooks of a system write run: no caller is behind it."""
    return _ACTIVE.get()


def actor() -> str:
    """The oplog's ``u``: the system, with the id of the request or job that caused the change."""
    cause = request_ids.current()
    return f"{SYSTEM}:{cause}" if cause else SYSTEM


def apply(
    db: Any,
    resource: str,
    original: dict[str, Any],
    changes: dict[str, Any],
    now: datetime,
    match: dict[str, Any] | None = None,
) -> bool:
    """Change ``original`` by ``changes`` if its status (and ``match``) is still
    as read; False, with nothing written, if it moved meanwhile."""
    config = current_app.config
    target = changes.get("status", original["status"])
    if target != original["status"]:
        check_transition(KINDS[resource], original, target, SYSTEM, now)
    updates = {**changes, config["LAST_UPDATED"]: now.replace(microsecond=0)}
    with as_system(), atomic.separate_plans() as plans:
        fire("on_update", resource, updates, original)
    plan = plans.get(resource) or atomic.Plan()
    updated = {**deepcopy(original), **updates}
    resolve_document_etag(updated, resource)
    updates[config["ETAG"]] = updated[config["ETAG"]]
    spec = {"_id": original["_id"], "status": original["status"], **(match or {})}

    def write() -> None:
        if db[resource].update_one(spec, {"$set": updates}).modified_count != 1:
            raise Moved()
        push_oplog(db, resource, original["_id"], updates)

    try:
        atomic.run(db, current_app.data.pymongo(resource).cx, plan, write)
    except Moved:
        return False
    atomic.after_commit(lambda: followers(resource, updates, original))
    return True


def create(db: Any, resource: str, document: dict[str, Any], now: datetime, plan: atomic.Plan) -> None:
    """Store a new ``document`` (with ``_id``) the registry makes itself, as Eve's POST
    stores one: stamped, with its ETag, logged in the oplog by the system, then
    ``on_inserted`` fired; ``plan`` runs around the insert (e.g. its reservations)."""
    config = current_app.config
    stamp = now.replace(microsecond=0)
    stored = {**document, config["DATE_CREATED"]: stamp, config["LAST_UPDATED"]: stamp}
    resolve_document_etag(stored, resource)

    def write() -> None:
        db[resource].insert_one(stored)
        push_oplog(db, resource, stored["_id"], stored, "POST")

    atomic.run(db, current_app.data.pymongo(resource).cx, plan, write)
    atomic.after_commit(lambda: inserted(resource, stored))


def inserted(resource: str, document: dict[str, Any]) -> None:
    try:
        with as_system():
            current_app.on_inserted(resource, [document])
            getattr(current_app, f"on_inserted_{resource}")([document])
    except Exception:
        log.exception("an on_inserted hook failed after the system write of %s %s", resource, document["_id"])


@contextlib.contextmanager
def as_system() -> Iterator[None]:
    """No caller while the block runs: the request's principal (if any) is put aside."""
    token = _ACTIVE.set(True)
    caller = g.pop("principal", _NOBODY) if has_app_context() else _NOBODY
    try:
        yield
    finally:
        if caller is not _NOBODY:
            g.principal = caller
        _ACTIVE.reset(token)


def fire(event: str, resource: str, updates: dict[str, Any], original: dict[str, Any]) -> None:
    """An Eve event as a PATCH fires it: the global one, then the resource's."""
    getattr(current_app, event)(resource, updates, original)
    getattr(current_app, f"{event}_{resource}")(updates, original)


def followers(resource: str, updates: dict[str, Any], original: dict[str, Any]) -> None:
    """``on_updated``: the change is stored and logged, so a failing hook is logged, not raised."""
    try:
        with as_system():
            fire("on_updated", resource, updates, original)
    except Exception:
        log.exception("an on_updated hook failed after the system write of %s %s", resource, original["_id"])


def push_oplog(db: Any, resource: str, id_: Any, updates: dict[str, Any], method: str = "PATCH") -> None:
    """Eve's ``oplog_push`` for one PATCH (or POST), by the system actor, into ``db``
    (so inside the write's transaction)."""
    config = current_app.config
    if not config["OPLOG"] or method not in config["OPLOG_METHODS"] or resource not in config["URLS"]:
        return
    stamp = updates[config["LAST_UPDATED"]]
    entry: dict[str, Any] = {
        "r": config["URLS"][resource],
        "o": method,
        "i": id_,
        config["LAST_UPDATED"]: stamp,
        config["DATE_CREATED"]: stamp,
    }
    if config["OPLOG_AUDIT"]:
        entry["ip"] = request.remote_addr if has_request_context() else None
        entry["u"] = actor()
        if method in config["OPLOG_CHANGE_METHODS"]:
            entry["c"] = {k: v for k, v in updates.items() if k not in (config["ETAG"], config["LAST_UPDATED"])}
    current_app.on_oplog_push(resource, [entry])
    db[config["OPLOG_NAME"]].insert_one(entry)
