"""Jobs on the embedded backend (tests/support/jobs_setup.py).

This part: retries with backoff, the worker thread (it runs what hooks enqueue,
the tick advances the marketplace and requeues lost jobs, demo seeding only
enqueues), jobs read-only through the API, and the embedded worker loop (a
failing tick or drain backs off, logs once per interval, does not spin)."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

from registry import jobs
from registry.demo import seeding as demo
from registry.jobs import records, tasks
from tests.conftest import as_json
from tests.factories import new_uuid
from tests.history import as_api, readings, this_hour
from tests.support.jobs_setup import FORECASTS, all_jobs, owned  # noqa: F401  (fixtures)

# --- retries --------------------------------------------------------------------


def test_a_failing_job_is_retried_with_backoff_then_marked_failed(app, db, owned, monkeypatch):
    def store_down(app, batch, now):
        raise RuntimeError("measurement store unavailable")

    monkeypatch.setitem(tasks.TASKS, "consumption_forecast", store_down)
    dev, t0 = owned(), this_hour()
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k", app=app, now=t0)
    seen = []
    for now in (
        t0,
        t0 + timedelta(seconds=29),
        t0 + timedelta(seconds=30),
        t0 + timedelta(seconds=89),
        t0 + timedelta(seconds=90),
    ):
        ran = jobs.run_pending(app, now=now)
        current = records.get(db, job["_id"])
        seen.append((ran, current["status"], current["attempts"], current["not_before"] - t0))
    assert seen == [
        (1, "queued", 1, timedelta(seconds=30)),
        (0, "queued", 1, timedelta(seconds=30)),
        (1, "queued", 2, timedelta(seconds=90)),
        (0, "queued", 2, timedelta(seconds=90)),
        (1, "failed", 3, timedelta(seconds=90)),
    ]
    assert current["error"] == "RuntimeError: measurement store unavailable"
    assert current["finished_at"] == t0 + timedelta(seconds=90)


def test_a_retry_that_succeeds_clears_the_error(app, db, insert, owned, monkeypatch):
    dev, t0 = owned(), this_hour()
    insert("measurements", *readings(dev, 10, end=t0))
    real, calls = tasks.TASKS["consumption_forecast"], []

    def flaky(app, batch, now):
        calls.append(now)
        if len(calls) == 1:
            raise ConnectionError("timeout")
        return real(app, batch, now)

    monkeypatch.setitem(tasks.TASKS, "consumption_forecast", flaky)
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k", app=app, now=t0)
    jobs.run_pending(app, now=t0)
    jobs.run_pending(app, now=t0 + timedelta(minutes=1))
    done = records.get(db, job["_id"])
    assert (done["status"], done["attempts"], done["error"]) == ("done", 2, None)


# --- the worker -----------------------------------------------------------------


def test_the_worker_thread_runs_what_hooks_enqueue(app, client_as, db, owned):
    dev = owned()
    jobs.start_worker(app)
    try:
        client_as("service").post("/measurements", **as_json(as_api(readings(dev, 9))))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and db["advice"].count_documents({}) == 0:
            time.sleep(0.05)
    finally:
        jobs.stop_worker(app)
    assert {j["kind"]: j["status"] for j in all_jobs(db)} == {
        "consumption_forecast": "done",
        "flexibility_forecast": "done",
        "prosumer_advice": "done",
    }


def test_the_tick_advances_the_marketplace_and_requeues_lost_jobs(app, db, owned, insert):
    dev, t0 = owned(), this_hour()
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k", app=app, now=t0)
    db["jobs"].update_one({"_id": job["_id"]}, {"$set": {"status": "running", "attempts": 1, "started_at": t0}})
    owner = {k: dev[k] for k in ("device_id", "account_id", "aggregator_id")}
    window = {"direction": "down", "power_kw": 1.0, "price": 0.2, "currency": "EUR"}
    ended, running = insert(
        "offers",
        {**owner, **window, "status": "open", "start": t0, "end": t0 + timedelta(minutes=30)},
        {**owner, **window, "status": "open", "start": t0, "end": t0 + timedelta(hours=3)},
    )
    counts = jobs.tick(app, now=t0 + timedelta(hours=1))
    assert counts["jobs_requeued"] == 1 and counts["offers_expired"] == 1
    assert db["offers"].find_one({"_id": ended["_id"]})["status"] == "expired"
    assert db["offers"].find_one({"_id": running["_id"]})["status"] == "open"  # its window has not ended
    lost = records.get(db, job["_id"])
    assert lost["status"] == "queued" and "worker lost" in lost["error"]


def test_demo_seeding_enqueues_forecasts_and_computes_nothing(app, db):
    data = demo.build_demo(4)
    demo.seed(app, data, progress=False)
    assert db["prices"].count_documents({}) == len(demo.PRICE_LEVELS)
    kinds = sorted(j["kind"] for j in all_jobs(db, status="queued"))
    assert kinds == sorted(list(FORECASTS) * len(data["devices"]))
    assert db["forecasts"].count_documents({}) == 0
    jobs.run_pending(app)
    assert db["forecasts"].count_documents({"kind": "consumption"}) == len(data["devices"])


def test_jobs_are_read_only_through_the_api(client_as, client):
    body = as_json({"kind": "prosumer_advice", "subject": new_uuid()})
    assert client_as("service").post("/jobs", **body).status_code == 405
    assert client.post("/jobs", **body).status_code == 405


# --- the embedded worker loop ---------------------------------------------------------


def test_a_failing_tick_backs_off_and_is_logged_once_per_interval(app, caplog):
    from registry.jobs.backends import EmbeddedBackend

    calls = []

    def broken_tick():
        calls.append(time.monotonic())
        raise TypeError("can't compare offset-naive and offset-aware datetimes")

    app.config["JOBS_TICK_SECONDS"] = 1
    backend = EmbeddedBackend(app, lambda: jobs.run_pending(app), broken_tick)
    with caplog.at_level("ERROR", logger="registry.jobs"):
        backend.start()
        calls_by(calls, 3)
        backend.stop()
    reports = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert min_gap(calls) >= 0.9, calls  # once per second, not thousands (a loaded machine only lengthens gaps)
    assert len(reports) == len(calls) and reports[0].exc_info is not None


def calls_by(calls: list[float], count: int, within: float = 30.0) -> None:
    """Wait until ``count`` calls were made (a loaded machine may take longer than ``count`` periods)."""
    deadline = time.monotonic() + within
    while len(calls) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(calls) >= count, calls


def min_gap(calls: list[float]) -> float:
    return min(later - earlier for earlier, later in itertools.pairwise(calls))


def test_a_failing_drain_does_not_spin(app, caplog):
    from registry.jobs.backends import EmbeddedBackend

    calls = []

    def broken_drain():
        calls.append(time.monotonic())
        raise ConnectionError("store unreachable")

    app.config["JOBS_TICK_SECONDS"] = 1
    backend = EmbeddedBackend(app, broken_drain, lambda: None)
    with caplog.at_level("ERROR", logger="registry.jobs"):
        backend.start()
        calls_by(calls, 3)
        backend.stop()
    assert min_gap(calls) >= 0.9, calls  # a failed drain waits for the next tick
    assert len([r for r in caplog.records if "drain failed" in r.getMessage()]) == len(calls)
