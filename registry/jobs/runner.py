"""Running jobs: claim, call the kind's task, record each outcome.

The same function serves both backends: the embedded worker thread calls
:func:`execute` with the due jobs it found, an RQ worker with the one job id
it dequeued. Jobs run inside a request context without a caller, so
``post_internal`` works, hooks run, and nothing is scoped to a token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bson import ObjectId
from flask import Flask
from werkzeug.exceptions import HTTPException

from registry.jobs import records
from registry.jobs.tasks import TASKS
from registry.store.clock import as_utc

log = logging.getLogger("registry.jobs")
# producers before consumers: forecasts feed flexibility, both feed advice
KIND_ORDER = ("consumption_forecast", "flexibility_forecast", "prosumer_advice", "aggregator_advice")


def execute(app: Flask, job_ids: Iterable[ObjectId | str], now: datetime | None = None) -> int:
    """Run the given jobs (those another worker took are skipped) in batches per
    kind, and record done / retry / failed. Returns how many ran.

    Kinds run in KIND_ORDER and each batch is claimed just before it runs, so
    the follow-ups a consumption forecast triggers are absorbed by flexibility
    and advice jobs still queued here."""
    now = as_utc(now) if now else records.utcnow()
    wanted = [ObjectId(i) for i in job_ids]
    ran = 0
    with app.test_request_context("/jobs/worker"):
        db = app.data.driver.db
        kinds = {job["_id"]: job["kind"] for job in db["jobs"].find({"_id": {"$in": wanted}}, {"kind": 1})}
        for kind in sorted(set(kinds.values()), key=_order):
            claimed = [job for job in (records.claim(db, i, now) for i in wanted if kinds.get(i) == kind) if job]
            if claimed:
                _run_kind(app, kind, claimed, now)
                ran += len(claimed)
    return ran


def _order(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def _run_kind(app: Flask, kind: str, jobs: list[dict[str, Any]], now: datetime) -> None:
    task = TASKS.get(kind)
    try:
        if task is None:
            raise ValueError(f"no task for job kind {kind!r}")
        outcomes: dict[Any, str | Exception] = task(app, jobs, now)
        missing: Exception = RuntimeError("the task returned no outcome for this job")
    except Exception as error:
        log.exception("%s batch of %d jobs failed", kind, len(jobs))
        outcomes, missing = {}, error
    for job in jobs:
        record(app, job, outcomes.get(job["_id"], missing), now)


def record(app: Flask, job: dict[str, Any], outcome: str | Exception, now: datetime) -> None:
    db = app.data.driver.db
    if not isinstance(outcome, Exception):
        records.finish(db, job, outcome, now)
        return
    updated = records.fail(
        db,
        job,
        describe(outcome),
        permanent=is_permanent(outcome),
        base_seconds=int(app.config["JOBS_BACKOFF_SECONDS"]),
        now=now,
    )
    if updated.get("status") == "queued":
        log.warning(
            "%s %s attempt %d failed, retry at %s: %s",
            job["kind"],
            job["subject"],
            job["attempts"],
            updated["not_before"],
            updated["error"],
        )
        app.extensions["jobs"].submit(updated, delay=updated["not_before"] - now)
    else:
        log.warning("%s %s failed: %s", job["kind"], job["subject"], updated.get("error"))


def is_permanent(error: Exception) -> bool:
    """Bad or missing inputs (ValueError, a refused write) fail at once; the rest is retried."""
    return isinstance(error, (ValueError, HTTPException))


def describe(error: Exception) -> str:
    if isinstance(error, HTTPException):
        return f"{error.code} {error.name}: {error.description}"
    return f"{type(error).__name__}: {error}"
