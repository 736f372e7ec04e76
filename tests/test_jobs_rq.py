"""Jobs on RQ, against the real Redis at 127.0.0.1:6379, served in-process by a
burst worker: hooks enqueue on the queue, and the results equal the embedded path's.

Each test has its own queue name, and every Redis key naming it is deleted afterwards.
"""

from __future__ import annotations

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
from tests.support.redis_server import redis_url

REDIS_URL = redis_url(0)
META = ("_id", "_created", "_updated", "_etag", "job_id")


@pytest.fixture
def rq_app(instance_path, redis_client) -> Iterator[Any]:
    queue = f"test-jobs-{uuid.uuid4().hex[:12]}"
    app = create_app(
        {
            "INSTANCE_PATH": instance_path,
            "TESTING": True,
            "REDIS_URL": REDIS_URL,
            "JOBS_BACKEND": "rq",
            "JOBS_QUEUE": queue,
            "RATE_LIMIT": "100000 per minute",
        }
    )
    yield app
    forget(redis_client, queue)


def forget(redis: Any, queue: str) -> None:
    """Delete every key of the queue, and the queue from RQ's set of queues."""
    for key in redis.scan_iter(f"*{queue}*"):
        redis.delete(key)
    redis.srem("rq:queues", f"rq:queue:{queue}")


def store(app: Any, *docs_by_resource: tuple[str, list[dict[str, Any]]]) -> None:
    with app.app_context():
        for resource, docs in docs_by_resource:
            app.data.driver.db[resource].insert_many([dict(d) for d in docs])


def forecasts_of(app: Any) -> list[dict[str, Any]]:
    with app.app_context():
        docs = app.data.driver.db["forecasts"].find({}, sort=[("kind", 1), ("direction", 1)])
        return [{k: v for k, v in d.items() if k not in META} for d in docs]


def test_the_rq_path_writes_the_same_forecasts_as_the_embedded_path(app, rq_app):
    dev = device()
    noon = this_hour().replace(hour=12) - timedelta(days=1)
    history = readings(dev, 14, end=noon)
    params = {"issued_at": f"{noon:%Y-%m-%dT%H:%M:%SZ}"}
    for each in (app, rq_app):
        store(each, ("devices", [dev]), ("measurements", history))
        jobs.enqueue("consumption_forecast", dev["device_id"], "k", params=params, owner=jobs.owner_of(dev), app=each)
    jobs.run_pending(app)
    queue = rq_app.extensions["jobs"].queue
    assert queue.count == 1
    assert backends.work(rq_app, burst=True)
    embedded, on_rq = forecasts_of(app), forecasts_of(rq_app)
    assert len(embedded) == 3 and on_rq == embedded  # consumption, flexibility up and down
    with rq_app.app_context():
        done = list(rq_app.data.driver.db["jobs"].find())
    assert {(j["kind"], j["status"], j["backend"]) for j in done} == {
        ("consumption_forecast", "done", "rq"),
        ("flexibility_forecast", "done", "rq"),
        ("prosumer_advice", "done", "rq"),
    }


def test_hooks_enqueue_on_the_queue_and_a_burst_worker_serves_the_chain(rq_app, token):
    dev = device()
    store(
        rq_app,
        ("devices", [dev]),
        (
            "prosumers",
            [{"account_id": dev["account_id"], "aggregator_id": dev["aggregator_id"], "display_name": "home"}],
        ),
    )
    service = rq_app.test_client()
    service.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token('service')}"  # same instance key
    assert service.post("/measurements", **as_json(as_api(readings(dev, 9)))).status_code == 201
    assert rq_app.extensions["jobs"].queue.count == 1  # one job for the whole bulk
    backends.work(rq_app, burst=True)
    with rq_app.app_context():
        status = {j["kind"]: j["status"] for j in rq_app.data.driver.db["jobs"].find()}
    assert status == {"consumption_forecast": "done", "flexibility_forecast": "done", "prosumer_advice": "done"}


def test_a_failure_on_rq_is_recorded_on_the_job(rq_app):
    dev = device()
    store(rq_app, ("devices", [dev]), ("measurements", readings(dev, 2)))
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k", owner=jobs.owner_of(dev), app=rq_app)
    backends.work(rq_app, burst=True)
    with rq_app.app_context():
        failed = records.get(rq_app.data.driver.db, job["_id"])
    assert failed["status"] == "failed" and failed["error"].startswith("InsufficientData")


def test_run_py_worker_serves_the_queue_and_refuses_without_redis(monkeypatch, instance_path, redis_client, capsys):
    import run
    import settings

    queue = f"test-jobs-{uuid.uuid4().hex[:12]}"
    monkeypatch.setattr(settings, "INSTANCE_PATH", instance_path)
    monkeypatch.setattr(settings, "JOBS_QUEUE", queue)
    try:
        assert run.main(["worker", "--burst"]) == 2  # no REDIS_URL
        assert "needs REDIS_URL" in capsys.readouterr().err
        monkeypatch.setattr(settings, "REDIS_URL", REDIS_URL)
        monkeypatch.setattr(settings, "JOBS_BACKEND", "rq")
        assert run.main(["worker", "--burst"]) == 0
        assert f"queue {queue}" in capsys.readouterr().out
    finally:
        forget(redis_client, queue)
