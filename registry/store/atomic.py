"""Writes to several documents that succeed or fail as one.

A hook that must change several documents together (hold a contract's
slots, claim its offers, store the contract) does not write: it adds
:class:`Step` s to the request's :class:`Plan` for the resource, and the data
layer (:class:`registry.api.data_layer.RegistryMongo`) runs the plan around Eve's own
write of the document:

    before steps ──▶ Eve's insert / update ──▶ after steps

* On a MongoDB replica set or sharded cluster all of it is one multi-document
  transaction: a refusal, a conflict or a killed worker leaves nothing.
* Elsewhere (the embedded store, a standalone MongoDB) the steps run one by
  one. When a before step or the write fails, the steps that started are
  undone in reverse order, each removing only what it wrote itself. After
  steps follow a stored write and are never undone. A worker killed in
  between leaves orphans, which the lifecycle tick repairs once they are
  older than ``REQUEST_GRACE_SECONDS`` (:mod:`registry.market.lifecycle`).

A write the registry makes itself from inside a step (an offer claimed by the
contract being stored) runs its own plan *joined* to the running one: its
writes go into the same transaction, and what it asks to do once committed
(:func:`after_commit`: the ``on_updated`` events) waits until the outermost
run has succeeded, and is dropped if it fails. Its hooks plan into a
:func:`separate_plans` of their own, never into the request's.

Fault points ``after:<step>`` and ``after:write`` let tests kill a request
between two writes (``app.extensions["faults"][name] = callable``); joined
runs have none.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, has_app_context, has_request_context

log = logging.getLogger("registry.store.atomic")
_SESSION: contextvars.ContextVar[Any] = contextvars.ContextVar("registry_session", default=None)
# what waits for the outermost run to succeed (None: no run is in progress)
_DEFERRED: contextvars.ContextVar[list[Callable[[], Any]] | None] = contextvars.ContextVar(
    "registry_after_commit", default=None
)
# the plans of a write the registry makes itself, kept apart from the request's
_OWN_PLANS: contextvars.ContextVar[dict[str, Plan] | None] = contextvars.ContextVar("registry_own_plans", default=None)


class Refusal(Exception):
    """A step's refusal, answered with ``status`` and ``message`` (e.g. 409: the slot is taken)."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Step:
    """One write of a plan; ``undo`` removes what ``do`` wrote (embedded path)."""

    name: str
    do: Callable[[Any], Any]
    undo: Callable[[Any], Any] | None = None


@dataclass
class Plan:
    before: list[Step] = field(default_factory=list)
    after: list[Step] = field(default_factory=list)


def plan(resource: str) -> Plan:
    """The current request's plan for ``resource`` (created on first use), or
    the plan of the :func:`separate_plans` block this runs in."""
    own = _OWN_PLANS.get()
    plans = own if own is not None else g.setdefault("atomic_plans", {})
    return plans.setdefault(resource, Plan())


@contextlib.contextmanager
def separate_plans() -> Iterator[dict[str, Plan]]:
    """Plans made inside the block (by the hooks of a system write) land in the
    dict this yields, not in the request's."""
    plans: dict[str, Plan] = {}
    token = _OWN_PLANS.set(plans)
    try:
        yield plans
    finally:
        _OWN_PLANS.reset(token)


def after_commit(callback: Callable[[], Any]) -> None:
    """Call ``callback`` once the outermost run has succeeded (at once outside a run)."""
    pending = _DEFERRED.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)


def take(resource: str) -> Plan | None:
    """The plan for ``resource``, removed from the request (the data layer runs it once)."""
    if not has_request_context():
        return None
    return g.get("atomic_plans", {}).pop(resource, None)


def current_session() -> Any:
    """The session of the transaction this thread is in, if any."""
    return _SESSION.get()


@contextlib.contextmanager
def bound(session: Any) -> Iterator[None]:
    token = _SESSION.set(session)
    try:
        yield
    finally:
        _SESSION.reset(token)


def run(db: Any, client: Any, plan: Plan, write: Callable[[], Any]) -> Any:
    """Run ``plan`` around ``write``; returns what ``write`` returned. Inside
    another run, joins it; the outermost run then calls what waits for it."""
    if _DEFERRED.get() is not None:
        return _joined(db, plan, write)
    pending: list[Callable[[], Any]] = []
    token = _DEFERRED.set(pending)
    try:
        if uses_transactions(db, client):
            with client.start_session() as session:
                result = session.with_transaction(lambda s: _in_transaction(db, plan, write, s, pending))
        else:
            result = _with_undo(db, plan, write)
    finally:
        _DEFERRED.reset(token)
    for callback in pending:
        callback()
    return result


def _joined(db: Any, plan: Plan, write: Callable[[], Any]) -> Any:
    """A run inside a running one: in its transaction, if any; a failure undoes
    this run's own before steps and fails the step that started it."""
    started: list[Step] = []
    try:
        for step in plan.before:
            started.append(step)
            step.do(db)
        result = write()
        for step in plan.after:
            step.do(db)
    except Exception:
        undo(db, started)
        raise
    return result


def _in_transaction(
    db: Any, plan: Plan, write: Callable[[], Any], session: Any, pending: list[Callable[[], Any]]
) -> Any:
    pending.clear()  # a retried transaction starts over
    with bound(session):
        for step in plan.before:
            step.do(db)
            fault(f"after:{step.name}")
        result = write()
        fault("after:write")
        for step in plan.after:
            step.do(db)
            fault(f"after:{step.name}")
        return result


def _with_undo(db: Any, plan: Plan, write: Callable[[], Any]) -> Any:
    started: list[Step] = []
    try:
        for step in plan.before:
            started.append(step)  # a step that fails half-way undoes its half
            step.do(db)
            fault(f"after:{step.name}")
        result = write()
    except Exception:
        undo(db, started)
        raise
    fault("after:write")
    for step in plan.after:
        try:
            step.do(db)
        except Exception:
            log.exception("after step %s failed; the lifecycle tick will repair it", step.name)
        fault(f"after:{step.name}")
    return result


def undo(db: Any, steps: list[Step]) -> None:
    for step in reversed(steps):
        if step.undo is None:
            continue
        try:
            step.undo(db)
        except Exception:
            log.exception("undo of %s failed; the lifecycle tick will repair it", step.name)


def uses_transactions(db: Any, client: Any) -> bool:
    """MONGO_TRANSACTIONS: "auto" (a replica set or mongos), "on" or "off"; never embedded."""
    if getattr(db, "embedded", False):
        return False
    setting = str(_config().get("MONGO_TRANSACTIONS", "auto")).lower()
    if setting in ("on", "off"):
        return setting == "on"
    cache = current_app.extensions.setdefault("store_transactions", {}) if has_app_context() else {}
    if id(client) not in cache:
        cache[id(client)] = supports_transactions(client)
    return cache[id(client)]


def supports_transactions(client: Any) -> bool:
    """A replica set member (``setName``) or a mongos router ("isdbgrid")."""
    try:
        hello = client.admin.command("hello")
    except Exception:  # servers before 4.4.2 only know isMaster
        hello = client.admin.command("isMaster")
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


def fault(name: str) -> None:
    """Tests inject failures here (a kill: raise a BaseException)."""
    if has_app_context():
        injected = current_app.extensions.get("faults", {}).get(name)
        if injected is not None:
            injected()


def _config() -> dict[str, Any]:
    return current_app.config if has_app_context() else {}
