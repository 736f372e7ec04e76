"""Two RQ workers on one queue of the real (private) Redis run each job once,
even when every job was handed to RQ twice (as the tick does after a Redis
outage, or for a job it takes as lost): the claim in the `jobs` collection
(queued -> running, compare-and-set) lets one worker win.

The workers are two SimpleWorkers in two threads of this process, sharing the
embedded store; across hosts they would share MongoDB, which this machine
cannot run (the claim is one atomic update on both backends)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from registry import jobs
from registry.jobs import backends, tasks
from tests.factories import device
from tests.test_jobs_rq import rq_app  # noqa: F401  (fixture)


def test_two_workers_run_each_job_once(rq_app, monkeypatch):
    runs: Counter = Counter()
    lock = threading.Lock()

    def counting_task(app: Any, claimed: list[dict[str, Any]], now: Any) -> dict[Any, str]:
        time.sleep(0.05)  # long enough for the other worker to try the same job
        with lock:
            runs.update(str(job["_id"]) for job in claimed)
        return {job["_id"]: None for job in claimed}

    monkeypatch.setitem(tasks.TASKS, "consumption_forecast", counting_task)
    # RQ installs signal handlers, which only the main thread may do; these workers are threads
    monkeypatch.setattr(SimpleWorker, "_install_signal_handlers", lambda self: None)
    monkeypatch.setattr(SimpleWorker, "death_penalty_class", TimerDeathPenalty)  # SIGALRM is main-thread only
    devices = [device() for _ in range(12)]
    queued = [
        jobs.enqueue("consumption_forecast", d["device_id"], "k", owner=jobs.owner_of(d), app=rq_app) for d in devices
    ]
    backend = rq_app.extensions["jobs"]
    for job in queued:  # every job on the queue twice
        backend.submit(job)
    assert backend.queue.count == 24

    workers = [threading.Thread(target=backends.work, args=(rq_app,), kwargs={"burst": True}) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert backend.queue.count == 0
    assert runs == Counter({str(job["_id"]): 1 for job in queued})
    with rq_app.app_context():
        statuses = {j["status"] for j in rq_app.data.driver.db["jobs"].find({"kind": "consumption_forecast"})}
    assert statuses == {"done"}
