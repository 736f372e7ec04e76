"""Prometheus metrics (prometheus_client): what is measured and how it is exposed.

Two kinds of figures:

* per process, kept by prometheus_client: request latency by resource, method
  and status; orphans repaired outside the tick. Under gunicorn
  (``PROMETHEUS_MULTIPROC_DIR`` set, deploy/gunicorn.conf.py sets one) every
  worker writes them to files in that folder and a scrape of any worker adds
  up all of them (prometheus_client's multiprocess mode);
* read from the store at scrape time, the same from any process on any host:
  jobs per status, how long the oldest due job has waited, the tick's lag and
  what the ticks did (``record_tick``, called by every tick, keeps a heartbeat
  document in ``heartbeats``).

A store that does not answer within READY_TIMEOUT_SECONDS costs the scrape its
store figures (``der_registry_store_up 0``), never the scrape itself.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pymongo
from flask import Flask
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from schemas.vocabulary import JOB_STATUSES

log = logging.getLogger("registry.ops.metrics")

HEARTBEATS = "heartbeats"
TICK = "tick"
# done jobs only pile up: the gauge counts the others
GAUGED_JOB_STATUSES = tuple(s for s in JOB_STATUSES if s != "done")

disable_created_metrics()  # no *_created series: they double what a scrape carries
# the app's own registry, not prometheus_client's global one (several apps per test process)
PROCESS = CollectorRegistry(auto_describe=True)
REQUEST_SECONDS = Histogram(
    "der_registry_request_duration_seconds",
    "Time to answer a request, by resource, method and status",
    ["resource", "method", "status"],
    registry=PROCESS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
ORPHANS_REPAIRED = Counter(
    "der_registry_orphans_repaired_total",
    "Orphans repaired outside the tick by this process (the tick's repairs: der_registry_tick_events_total)",
    ["kind"],
    registry=PROCESS,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def record_tick(db: Any, now: datetime, counts: dict[str, int]) -> None:
    """One tick done at ``now``: its time and running totals of what it did."""
    totals = {f"totals.{name}": int(value) for name, value in counts.items() if value}
    update: dict[str, Any] = {"$set": {"at": now}}
    if totals:
        update["$inc"] = totals
    db[HEARTBEATS].update_one({"_id": TICK}, update, upsert=True)


class StoreCollector:
    """Figures read from the store when Prometheus scrapes."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("der_registry_store_up", "1 if the store answered this scrape's queries")
        try:
            with self.app.app_context(), pymongo.timeout(float(self.app.config["READY_TIMEOUT_SECONDS"])):
                figures = list(self._read(self.app.data.driver.db, utcnow()))
        except Exception as error:
            log.warning("metrics: the store did not answer (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def _read(self, db: Any, now: datetime) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("der_registry_jobs", "Jobs in the jobs collection by status", labels=["status"])
        for status in GAUGED_JOB_STATUSES:
            jobs.add_metric([status], db["jobs"].count_documents({"status": status}))
        yield jobs
        oldest = db["jobs"].find_one(
            {"status": "queued", "not_before": {"$lte": now}}, {"not_before": 1}, sort=[("not_before", 1)]
        )
        waited = (now - _aware(oldest["not_before"])).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "der_registry_jobs_oldest_due_seconds",
            "How long the oldest due queued job has waited (0: none)",
            value=max(0.0, waited),
        )
        yield from self._tick(db[HEARTBEATS].find_one({"_id": TICK}), now)

    def _tick(self, heartbeat: dict[str, Any] | None, now: datetime) -> Iterator[Metric]:
        period = float(self.app.config["JOBS_TICK_SECONDS"])
        lag = math.inf
        if heartbeat is not None:
            at = _aware(heartbeat["at"])
            lag = max(0.0, (now - at).total_seconds() - period)
            yield GaugeMetricFamily(
                "der_registry_tick_last_timestamp_seconds",
                "When the last tick finished (Unix time)",
                value=at.timestamp(),
            )
        yield GaugeMetricFamily(
            "der_registry_tick_lag_seconds", "Seconds the tick is overdue (+Inf: never ran)", value=lag
        )
        events = CounterMetricFamily(
            "der_registry_tick_events", "What all ticks did, by event (orphan_* are orphans repaired)", labels=["event"]
        )
        for event, total in sorted(((heartbeat or {}).get("totals") or {}).items()):
            events.add_metric([event], total)
        yield events


class _ProcessMetrics:
    """This process's own metrics, or every process's with PROMETHEUS_MULTIPROC_DIR."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            yield from merged.collect()
        else:
            yield from PROCESS.collect()


def exposition(app: Flask) -> tuple[bytes, str]:
    """The text a scrape gets, and its content type."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ProcessMetrics())
    scrape.register(StoreCollector(app))
    return generate_latest(scrape), CONTENT_TYPE_LATEST
