"""Faults: a worker lost mid-job, Redis going away and coming back.

The jobs collection is the record of every job; Redis only wakes RQ workers.
So a worker killed mid-job leaves its job `running` until the tick takes it
back (JOBS_STALE_SECONDS), and while Redis is down the API keeps serving and
its jobs stay queued until a tick after Redis is back resubmits them.

A cross-process kill (SIGKILL of `python run.py worker`) needs a store the
worker and the API share, i.e. MongoDB; the embedded store lives in one
process. Here the worker's death is the state it leaves behind: a job claimed
(running, one attempt spent) whose RQ message is gone. Redis is real: a
private redis-server on a free port, stopped and started again.

A request that dies between two of a contract's writes (the worker hangs and
is killed) is shown over real HTTP: its thread stops at a fault point and never
continues; the tick repairs what it left, and the client's retry with its
Idempotency-Key makes exactly one contract.

The bridge losing the registry for a while without losing telemetry is
tests/test_openadr_telemetry.py::test_registry_outage_loses_no_telemetry.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from registry import create_app, jobs
from registry.jobs import backends, records
from tests.conftest import as_json
from tests.factories import device
from tests.history import as_api, readings, this_hour
from tests.support.market import publish_offer
from tests.support.redis_server import RedisServer, free_port


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("the fault tests need redis-server (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def rq_app(instance_path: str, redis_url: str, **extra: Any) -> Any:
    return create_app(
        {
            "INSTANCE_PATH": instance_path,
            "TESTING": True,
            "REDIS_URL": redis_url,
            "JOBS_BACKEND": "rq",
            "JOBS_QUEUE": f"test-faults-{uuid.uuid4().hex[:12]}",
            "RATE_LIMIT": "100000 per minute",
            **extra,
        }
    )


def with_history(app: Any) -> dict[str, Any]:
    dev = device()
    with app.app_context():
        db = app.data.driver.db
        db["devices"].insert_one(dict(dev))
        db["measurements"].insert_many(readings(dev, 14, end=this_hour() - timedelta(hours=1)))
    return dev


def job_states(app: Any) -> dict[str, tuple[str, int]]:
    with app.app_context():
        return {j["kind"]: (j["status"], j["attempts"]) for j in app.data.driver.db["jobs"].find()}


def test_a_job_left_running_by_a_killed_worker_is_retried_and_completes(instance_path, redis_server):
    app = rq_app(instance_path, redis_server.url)
    dev = with_history(app)
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k", owner=jobs.owner_of(dev), app=app)
    queue = app.extensions["jobs"].queue
    stale = int(app.config["JOBS_STALE_SECONDS"])
    started = records.utcnow() - timedelta(seconds=stale + 1)
    with app.app_context():  # a worker dequeued and claimed the job, then was SIGKILLed
        db = app.data.driver.db
        queue.empty()
        assert records.claim(db, job["_id"], records.utcnow())["status"] == "running"
        db["jobs"].update_one({"_id": job["_id"]}, {"$set": {"started_at": started}})  # ... that long ago

    assert jobs.tick(app, now=started + timedelta(seconds=stale - 1))["jobs_requeued"] == 0
    counts = jobs.tick(app)  # the lease has run out
    assert counts["jobs_requeued"] == 1 and counts["jobs_resubmitted"] == 1
    assert queue.count == 1  # woken at once, not a tick later
    assert backends.work(app, burst=True)

    with app.app_context():
        done = records.get(app.data.driver.db, job["_id"])
        assert app.data.driver.db["forecasts"].count_documents({"device_id": dev["device_id"]}) == 3
    assert (done["status"], done["attempts"], done["error"]) == ("done", 2, None)


def test_a_job_lost_with_its_worker_on_its_last_attempt_fails_loudly(instance_path, redis_server):
    app = rq_app(instance_path, redis_server.url, JOBS_MAX_ATTEMPTS=1)
    dev = with_history(app)
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k", owner=jobs.owner_of(dev), app=app)
    started = records.utcnow()
    with app.app_context():
        records.claim(app.data.driver.db, job["_id"], started)
    jobs.tick(app, now=started + timedelta(seconds=int(app.config["JOBS_STALE_SECONDS"]) + 1))
    with app.app_context():
        failed = records.get(app.data.driver.db, job["_id"])
    assert failed["status"] == "failed" and failed["error"].startswith("worker lost while running")


def test_with_redis_down_the_api_serves_and_jobs_resume_when_it_is_back(instance_path, redis_server, token):
    app = rq_app(instance_path, redis_server.url)
    dev = with_history(app)
    with app.app_context():
        app.data.driver.db["prosumers"].insert_one(
            {"account_id": dev["account_id"], "display_name": "home", "aggregator_id": dev["aggregator_id"]}
        )
    service, admin = app.test_client(), app.test_client()
    service.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token('service')}"
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token('admin')}"
    redis_server.stop()

    assert service.get("/health").status_code == 200
    assert admin.get("/devices").status_code == 200
    new = as_api(readings(dev, 0.25, end=this_hour() + timedelta(hours=1)))
    assert service.post("/measurements", **as_json(new)).status_code == 201  # would enqueue a forecast
    assert admin.post("/devices", **as_json(device(aggregator_id=dev["aggregator_id"]))).status_code == 201
    assert {status for status, _ in job_states(app).values()} == {"queued"}

    redis_server.start()
    later = records.utcnow() + timedelta(seconds=int(app.config["JOBS_TICK_SECONDS"]) + 1)
    assert jobs.tick(app, now=later)["jobs_resubmitted"] >= 2
    assert backends.work(app, burst=True)
    assert {status for status, _ in job_states(app).values()} == {"done", "failed"}  # the new device: no history
    assert job_states(app)["consumption_forecast"] in (("done", 1), ("failed", 1))
    with app.app_context():
        assert app.data.driver.db["forecasts"].count_documents({"device_id": dev["device_id"]}) == 3


def test_with_redis_unreachable_and_the_embedded_store_jobs_run_in_process(instance_path, token):
    app = create_app(
        {
            "INSTANCE_PATH": instance_path,
            "TESTING": True,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "RATE_LIMIT": "100000 per minute",
        }
    )
    assert app.extensions["jobs"].name == "embedded"  # the embedded store is this process only
    dev = with_history(app)
    service = app.test_client()
    service.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token('service')}"
    assert service.get("/measurements").status_code == 200
    assert service.post("/measurements", **as_json(as_api(readings(dev, 0.25)))).status_code == 201
    assert jobs.run_pending(app) >= 1
    assert job_states(app)["consumption_forecast"] == ("done", 1)


class WorkerKilled(BaseException):
    """Raised in the hung request's thread at the end: nothing after the fault runs."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the killed thread
def test_a_worker_dead_mid_contract_leaves_nothing_the_tick_does_not_repair(app, server, insert, token, db):
    """Over real HTTP: the request hangs between claiming the offer and storing the
    contract (a gunicorn timeout kills such a worker), the client times out and
    retries with its Idempotency-Key. Until the request is surely dead the retry
    is told to wait; then the tick repairs the orphans and the retry makes the
    one contract."""
    import threading

    import requests

    from registry.market.lifecycle import advance_lifecycle
    from tests.test_marketplace_concurrency import iso

    dev = device()
    insert("devices", dev)
    prosumer = {"Authorization": f"Bearer {token('prosumer', account_id=dev['account_id'])}"}
    offer = publish_offer(server, prosumer, dev["device_id"], iso(0), iso(6), power_kw=2.0, price=0.2, timeout=30)
    aggregator = {
        "Authorization": f"Bearer {token('aggregator', aggregator_id=dev['aggregator_id'])}",
        "Idempotency-Key": "order-42",
    }
    body = {"aggregator_id": dev["aggregator_id"], "offers": [offer["_id"]], "start": iso(1), "end": iso(2)}
    dead = threading.Event()

    def hang() -> None:
        dead.wait(60)
        raise WorkerKilled()

    app.extensions["faults"] = {"after:claim_offers": hang}
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(f"{server}/contracts", headers=aggregator, json=body, timeout=1)
        assert db["contracts"].count_documents({}) == 0 and db["reservations"].count_documents({}) == 4
        assert db["offers"].find_one()["status"] == "contracted"
        busy = requests.post(f"{server}/contracts", headers=aggregator, json=body, timeout=30)
        assert busy.status_code == 409 and "still being processed" in busy.json()["_error"]["message"]
    finally:
        app.extensions["faults"] = {}
    app.config["REQUEST_GRACE_SECONDS"] = 1  # instead of waiting out the default 120 s
    time.sleep(1.1)
    with app.app_context():
        repaired = advance_lifecycle()
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (4, 1)
    retry = requests.post(f"{server}/contracts", headers=aggregator, json=body, timeout=30)
    dead.set()
    assert retry.status_code == 201, retry.text
    contract = db["contracts"].find_one()
    assert db["contracts"].count_documents({}) == 1 and str(contract["_id"]) == retry.json()["_id"]
    assert {r["contract_id"] for r in db["reservations"].find()} == {contract["_id"]}
    assert db["offers"].find_one()["contract_id"] == contract["_id"]
    again = requests.post(f"{server}/contracts", headers=aggregator, json=body, timeout=30)
    assert again.status_code == 201 and again.json()["_id"] == retry.json()["_id"]
