"""A request killed between its writes, as a gunicorn timeout kills a worker
(:class:`WorkerKilled`, raised by :func:`kill` at a fault point), the clock's tick
that repairs what it left once the grace period is over (:func:`tick`,
:func:`later`), and which contracts hold reservations (:func:`held_by`): for
tests/test_marketplace_atomicity_*.py and tests/test_system_writes.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from registry.market.lifecycle import advance_lifecycle
from registry.store.clock import utcnow

GRACE = 120


class WorkerKilled(BaseException):
    """What a gunicorn timeout does to a request: nothing after it runs, no cleanup."""


def kill() -> None:
    raise WorkerKilled()


def later(seconds: float = GRACE + 1) -> Any:
    return utcnow() + timedelta(seconds=seconds)


def tick(app, now) -> dict[str, int]:
    with app.app_context():
        return advance_lifecycle(now)


def held_by(db) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for r in db["reservations"].find():
        counts[r["contract_id"]] = counts.get(r["contract_id"], 0) + 1
    return counts
