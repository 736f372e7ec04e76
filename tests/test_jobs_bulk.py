"""Queuing many jobs at once (a VEN registering 200 resources, a bulk POST of
devices) gives the same jobs as queuing them one by one."""

from __future__ import annotations

import json
from collections import Counter

from registry import jobs
from tests.factories import device


def _kinds_per_device(db) -> Counter:
    return Counter((j["subject"], j["kind"]) for j in db["jobs"].find({}))


def test_a_bulk_of_devices_queues_one_job_per_kind_and_device(client_as, db):
    docs = [device() for _ in range(50)]
    response = client_as("service").post("/devices", data=json.dumps(docs), content_type="application/json")
    assert response.status_code == 201
    counts = _kinds_per_device(db)
    assert len(counts) == 50 * len(jobs.FORECAST_KINDS)
    assert set(counts.values()) == {1}
    assert {j["status"] for j in db["jobs"].find({})} == {"queued"}


def test_the_same_bulk_again_returns_the_same_jobs(app, db):
    devices = [device() for _ in range(30)]
    with app.test_request_context():
        first = jobs.enqueue_forecasts(devices, "device")
        again = jobs.enqueue_forecasts(devices, "device")
    assert [j["_id"] for j in first] == [j["_id"] for j in again]
    assert db["jobs"].count_documents({}) == 60


def test_a_queued_job_absorbs_a_new_trigger_in_a_bulk(app, db):
    """A queued job with the same inputs takes the new trigger (debouncing), as one by one."""
    d = device()
    with app.test_request_context():
        queued = jobs.enqueue("consumption_forecast", d["device_id"], "earlier-trigger", owner=jobs.owner_of(d))
        [absorbed, new] = jobs.enqueue_many(
            [
                ("consumption_forecast", d["device_id"], "bulk-trigger", {}, jobs.owner_of(d)),
                ("flexibility_forecast", d["device_id"], "bulk-trigger", {}, jobs.owner_of(d)),
            ]
        )
    assert absorbed["_id"] == queued["_id"]
    stored = db["jobs"].find_one({"_id": queued["_id"]})
    assert set(stored["input_keys"]) == {"earlier-trigger", "bulk-trigger"}
    assert stored["triggers"] == 2
    assert new["kind"] == "flexibility_forecast" and new["_id"] != queued["_id"]
    assert db["jobs"].count_documents({}) == 2


def test_the_same_job_twice_in_one_bulk_is_one_job(app, db):
    d = device()
    request = ("consumption_forecast", d["device_id"], "k", {}, jobs.owner_of(d))
    with app.test_request_context():
        one, two = jobs.enqueue_many([request, request])
    assert one["_id"] == two["_id"]
    assert db["jobs"].count_documents({}) == 1


def test_bulk_jobs_are_run_by_the_worker(app, db):
    """Created by the bulk path, they are real jobs: the worker claims and closes them."""
    devices = [device() for _ in range(3)]
    with app.test_request_context():
        jobs.enqueue_forecasts(devices, "device")
    jobs.run_pending(app)
    assert {j["status"] for j in db["jobs"].find({})} <= {"done", "failed"}
    assert db["jobs"].count_documents({"status": "queued"}) == 0


def test_queued_jobs_of_many_devices_absorb_a_bulk_each_with_its_own_trigger(app, db):
    devices = [device() for _ in range(20)]
    with app.test_request_context():
        queued = [
            jobs.enqueue("consumption_forecast", d["device_id"], "first", owner=jobs.owner_of(d)) for d in devices
        ]
        requests = [
            ("consumption_forecast", d["device_id"], f"second-{i}", {}, jobs.owner_of(d)) for i, d in enumerate(devices)
        ]
        absorbed = jobs.enqueue_many(requests)
    assert [j["_id"] for j in absorbed] == [j["_id"] for j in queued]
    for i, job in enumerate(absorbed):
        stored = db["jobs"].find_one({"_id": job["_id"]})
        assert set(stored["input_keys"]) == {"first", f"second-{i}"} and stored["triggers"] == 2
        assert stored["input_key"] == f"second-{i}" and stored["_etag"] != queued[i]["_etag"]
        assert job["input_keys"] == stored["input_keys"]  # what is returned is what is stored
    assert db["jobs"].count_documents({}) == 20


def test_a_job_that_starts_while_a_bulk_absorbs_into_it_leaves_the_trigger_to_a_new_job(app, db, monkeypatch):
    """Another worker takes the queued job between the bulk's read and its write:
    the trigger is not added to a running job (its inputs are read already) but queues one."""
    from registry.jobs import bulk

    d = device()
    read = bulk._known

    def read_then_started(jobs_collection, requests):
        found = read(jobs_collection, requests)
        jobs_collection.update_many({"status": "queued"}, {"$set": {"status": "running"}})
        return found

    with app.test_request_context():
        running = jobs.enqueue("consumption_forecast", d["device_id"], "first", owner=jobs.owner_of(d))
        monkeypatch.setattr(bulk, "_known", read_then_started)
        [job] = jobs.enqueue_many([("consumption_forecast", d["device_id"], "second", {}, jobs.owner_of(d))])
    assert job["_id"] != running["_id"] and job["status"] == "queued" and job["input_keys"] == ["second"]
    assert db["jobs"].find_one({"_id": running["_id"]})["input_keys"] == ["first"]
