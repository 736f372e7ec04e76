"""Forecasting and advisor jobs (docs/contract.md, "Jobs", docs/jobs.md).

Hooks call :func:`enqueue` and return; nothing is computed in a request.
Every job is a document in `jobs` (records.py), run by a backend
(backends.py: a worker thread in this process, or RQ workers with
REDIS_URL) through one runner (runner.py) that calls the kind's task
(tasks.py). Tests drain the queue deterministically with :func:`run_pending`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from registry.forecast.timeseries import iso, target_start
from registry.jobs import bulk, records, runner
from registry.jobs.backends import EmbeddedBackend, RQBackend
from registry.market import lifecycle
from registry.ops.metrics import record_tick
from registry.store import mongo_setup
from registry.store.clock import as_utc
from schemas.vocabulary import PRICINGS

log = logging.getLogger("registry.jobs")
FORECAST_KINDS = ("consumption_forecast", "flexibility_forecast")


def init_app(app: Flask) -> None:
    """Pick the backend; start the embedded worker thread unless testing."""
    if app.config.get("CLEARING_PRICING", "pay_as_bid") not in PRICINGS:  # the tick's clearing
        raise ValueError(f"CLEARING_PRICING must be pay_as_bid or uniform, not {app.config['CLEARING_PRICING']!r}")
    if backend_name(app.config) == "rq":
        app.extensions["jobs"] = RQBackend(app)
    else:
        app.extensions["jobs"] = EmbeddedBackend(app, lambda: run_pending(app), lambda: tick(app))
    with app.app_context():
        if mongo_setup.created_here(app.data.driver.db):  # on MongoDB: `run.py migrate`
            records.ensure_indexes(app.data.driver.db)
    if embedded_worker_wanted(app.config, app.extensions["jobs"].name) and not app.config.get("TESTING"):
        start_worker(app)


def embedded_worker_wanted(config: dict[str, Any], backend: str) -> bool:
    """JOBS_EMBEDDED_WORKER "auto": the worker thread (jobs and the tick) runs with the
    embedded backend only; with RQ, web processes never run jobs (`run.py worker` does)."""
    wanted = config.get("JOBS_EMBEDDED_WORKER", "auto")
    if wanted not in (True, False, "auto"):
        raise ValueError(f"JOBS_EMBEDDED_WORKER must be auto, 1 or 0, not {wanted!r}")
    if wanted is True and backend == "rq":
        raise ValueError(
            "JOBS_EMBEDDED_WORKER=1 with the RQ backend: jobs and the tick run in "
            "`python run.py worker` processes; unset it or set it to 0"
        )
    return wanted is True or (wanted == "auto" and backend == "embedded")


def backend_name(config: dict[str, Any]) -> str:
    """RQ needs Redis and a store that worker processes share: the embedded store
    lives in this process only, so "auto" keeps its jobs in this process too."""
    chosen = config.get("JOBS_BACKEND", "auto")
    if chosen not in ("auto", "rq", "embedded"):
        raise ValueError(f"JOBS_BACKEND must be auto, rq or embedded, not {chosen!r}")
    if chosen == "rq" and not config.get("REDIS_URL"):
        raise ValueError("JOBS_BACKEND=rq needs REDIS_URL")
    if chosen != "auto":
        return chosen
    if config.get("REDIS_URL") and not config.get("MONGO_URI"):
        log.warning(
            "REDIS_URL is set but the store is embedded (in memory, this process only): "
            "jobs run in this process; set MONGO_URI for `python run.py worker` processes"
        )
    return "rq" if config.get("REDIS_URL") and config.get("MONGO_URI") else "embedded"


def start_worker(app: Flask) -> None:
    """The embedded worker thread (a no-op with RQ: run `python run.py worker`)."""
    app.extensions["jobs"].start()


def stop_worker(app: Flask, timeout: float = 10.0) -> None:
    app.extensions["jobs"].stop(timeout)


def enqueue(
    kind: str,
    subject: str,
    input_key: str,
    *,
    params: dict[str, Any] | None = None,
    owner: dict[str, str] | None = None,
    app: Flask | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The job for (kind, subject, input_key): the existing one, a queued one that
    absorbs this trigger, or a new one handed to the backend."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    now = as_utc(now) if now else records.utcnow()
    backend = app.extensions["jobs"]
    with app.app_context():
        job, created = records.find_or_create(
            app.data.driver.db,
            kind,
            subject,
            input_key,
            params=params or {},
            owner={k: v for k, v in (owner or {}).items() if v},
            backend=backend.name,
            max_attempts=int(app.config["JOBS_MAX_ATTEMPTS"]),
            now=now,
        )
    if created:
        backend.submit(job)
    return job


def enqueue_forecasts(
    devices: Iterable[dict[str, Any]],
    trigger: str,
    kinds: Iterable[str] = FORECAST_KINDS,
    app: Flask | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Forecast jobs for devices (documents with device_id, account_id, aggregator_id).

    The input key names the target day and the trigger, so the same trigger on
    the same day is the same job."""
    now = as_utc(now) if now else records.utcnow()
    key = f"{iso(target_start(now))}/{trigger}"
    requests = [(kind, d["device_id"], key, {}, owner_of(d)) for d in devices for kind in kinds]
    return enqueue_many(requests, app=app, now=now)


def enqueue_many(
    requests: list[bulk.JobRequest], app: Flask | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """:func:`enqueue` for many (kind, subject, input_key, params, owner) at once."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    now = as_utc(now) if now else records.utcnow()
    backend = app.extensions["jobs"]
    with app.app_context():
        found = bulk.find_or_create_many(
            app.data.driver.db,
            requests,
            max_attempts=int(app.config["JOBS_MAX_ATTEMPTS"]),
            backend=backend.name,
            now=now,
        )
    for job, created in found:
        if created:
            backend.submit(job)
    return [job for job, _ in found]


def owner_of(doc: dict[str, Any]) -> dict[str, str]:
    return {k: doc[k] for k in ("account_id", "aggregator_id") if doc.get(k)}


def run_pending(app: Flask, now: datetime | None = None, batch: int = 500) -> int:
    """Run due jobs until none is left (follow-up jobs included); returns how many ran.

    ``now`` fixes the clock, so tests can step through back-offs."""
    total, now = 0, as_utc(now) if now else None
    while True:
        with app.app_context():
            due = records.due(app.data.driver.db, now or records.utcnow(), batch)
        if not due:
            return total
        ran = runner.execute(app, [job["_id"] for job in due], now)
        if not ran:
            return total
        total += ran


def tick(app: Flask, now: datetime | None = None) -> dict[str, int]:
    """Periodic work of every worker: advance the marketplace lifecycle (and repair
    what dead requests left), requeue lost jobs."""
    now = as_utc(now) if now else records.utcnow()
    counts: dict[str, int] = {}
    counts.update(lifecycle.advance_lifecycle(now, app=app))
    with app.app_context():
        db = app.data.driver.db
        counts["jobs_requeued"] = records.requeue_stale(db, int(app.config["JOBS_STALE_SECONDS"]), now)
        # due for a whole tick and still queued: its wake-up was lost (Redis down); jobs
        # just taken back from a lost worker are woken now rather than a tick later
        tick_ago = now - timedelta(seconds=int(app.config["JOBS_TICK_SECONDS"]))
        lost_since = now if counts["jobs_requeued"] else tick_ago
        overdue = records.due(db, lost_since, 1000)
    for job in overdue:
        app.extensions["jobs"].submit(job)
    counts["jobs_resubmitted"] = len(overdue)
    with app.app_context():
        record_tick(app.data.driver.db, now, counts)  # the tick's lag and totals in /metrics
    return counts
