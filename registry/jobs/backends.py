"""Where jobs run: an in-process worker thread (embedded default) or RQ on Redis.

The `jobs` collection is the queue of record; a backend only wakes a worker.
Embedded: submitting sets an event the worker thread waits on; the thread
runs every due job, then sleeps until the next back-off expires or the next
tick. RQ: submitting enqueues ``perform(job_id)`` on the queue; ``python run.py
worker`` serves it with the app bound by :func:`work`. Claims are
compare-and-set, so a job submitted twice still runs once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask

from registry.jobs import records, runner

log = logging.getLogger("registry.jobs")


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, app: Flask, drain: Callable[[], int], tick: Callable[[], Any]) -> None:
        self.app, self.drain, self.tick = app, drain, tick
        self.wake, self.stopping = threading.Event(), threading.Event()
        self.thread: threading.Thread | None = None

    def submit(self, job: dict[str, Any], delay: timedelta | None = None) -> None:
        self.wake.set()

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.stopping.clear()
            self.thread = threading.Thread(target=self._loop, name="registry-jobs", daemon=True)
            self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _loop(self) -> None:
        """Tick once per period whether or not the last tick failed (a failing tick
        never makes the next one due at once), drain what is due, sleep."""
        period = float(self.app.config["JOBS_TICK_SECONDS"])
        next_tick, quiet = 0.0, QuietLog(period)
        while not self.stopping.is_set():
            self.wake.clear()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + period
                quiet.guard("tick", self.tick)
            drained, _ = quiet.guard("drain", self.drain)
            pause = max(0.0, next_tick - time.monotonic())
            if drained:  # after a failed drain, wait for the next tick (or a new job) instead of spinning
                known, until_due = quiet.guard("next due", self._until_next_due)
                pause = min(pause, until_due) if known else pause
            self.wake.wait(pause)

    def _until_next_due(self) -> float:
        with self.app.app_context():
            due = records.next_due(self.app.data.driver.db)
        return 3600.0 if due is None else max(0.05, (due - records.utcnow()).total_seconds())


class QuietLog:
    """Run a part of the worker's loop; log a failure with its traceback at most
    once per ``period`` (later ones are counted and reported with the next)."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def guard(self, name: str, function: Callable[[], Any]) -> tuple[bool, Any]:
        """(True, its result), or (False, None) once its failure is logged or counted."""
        try:
            return True, function()
        except Exception:  # the thread must outlive a bad batch or a store outage
            self._report(name)
            return False, None

    def _report(self, name: str) -> None:
        now = time.monotonic()
        if name in self.last and now - self.last[name] < self.period:
            self.suppressed[name] = self.suppressed.get(name, 0) + 1
            return
        repeated = self.suppressed.pop(name, 0)
        self.last[name] = now
        log.exception(
            "embedded job worker: %s failed%s", name, f" ({repeated} more since the last report)" if repeated else ""
        )


# --- RQ --------------------------------------------------------------------------

_BOUND: dict[str, Flask] = {}


class RQBackend:
    name = "rq"

    def __init__(self, app: Flask) -> None:
        from redis import Redis
        from rq import Queue

        self.redis = Redis.from_url(app.config["REDIS_URL"])
        self.queue = Queue(app.config["JOBS_QUEUE"], connection=self.redis)

    def submit(self, job: dict[str, Any], delay: timedelta | None = None) -> None:
        """Wake a worker; with Redis down the job stays queued in `jobs` (the
        record), and the next tick after Redis is back resubmits it."""
        from redis.exceptions import RedisError

        rq_id = f"{self.queue.name}-{job['_id']}-{job.get('attempts', 0)}"
        options = {"job_id": rq_id, "result_ttl": 3600, "failure_ttl": 86400, "description": job["kind"]}
        try:
            if delay and delay.total_seconds() > 0:
                self.queue.enqueue_in(delay, perform, str(job["_id"]), **options)
            else:
                self.queue.enqueue(perform, str(job["_id"]), **options)
        except RedisError as error:
            log.warning("job %s stays queued until Redis is back (%s)", job["_id"], error)

    def start(self) -> None:
        """RQ jobs are served by `python run.py worker` processes."""

    def stop(self, timeout: float = 10.0) -> None:
        """Nothing runs in this process."""


def bind(app: Flask) -> None:
    """The app whose store and hooks RQ jobs in this process use."""
    _BOUND["app"] = app


def perform(job_id: str) -> str:
    """The RQ job function: run one job of the bound app."""
    app = _BOUND.get("app")
    if app is None:
        raise RuntimeError("no registry app bound in this worker: start it with `python run.py worker`")
    ran = runner.execute(app, [job_id])
    with app.app_context():
        job = records.get(app.data.driver.db, job_id)
    if not ran and job and job["status"] == "queued":  # dequeued before its back-off ended
        app.extensions["jobs"].submit(job, delay=job["not_before"] - records.utcnow())
    return job["status"] if job else "missing"


def work(app: Flask, burst: bool = False, tick: Callable[[], Any] | None = None) -> bool:
    """Serve the app's RQ queue in this process (no fork per job: the app is reused).

    ``tick`` (the marketplace lifecycle, lost jobs) runs once in burst mode,
    else every JOBS_TICK_SECONDS in a daemon thread."""
    from rq import SimpleWorker

    backend = app.extensions["jobs"]
    bind(app)
    if tick is not None and burst:
        tick()
    elif tick is not None:
        threading.Thread(
            target=_every, args=(float(app.config["JOBS_TICK_SECONDS"]), tick), name="registry-jobs-tick", daemon=True
        ).start()
    worker = SimpleWorker([backend.queue], connection=backend.redis)
    return worker.work(burst=burst, with_scheduler=not burst, logging_level="WARNING")


def _every(period: float, function: Callable[[], Any]) -> None:
    while True:
        try:
            function()
        except Exception:
            log.exception("job worker tick")
        time.sleep(period)
