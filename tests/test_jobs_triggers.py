"""Jobs on the embedded backend (tests/support/jobs_setup.py).

This part: what enqueues a job, idempotency and debouncing (a new device, a
capacity change, a bulk of measurements, the same inputs again), and
de-duplication under races (one queued job per dedup key, enforced by the store)."""

from __future__ import annotations

import pytest

from registry import jobs
from registry.jobs import records
from tests.conftest import as_json
from tests.factories import device
from tests.history import as_api, readings, this_hour
from tests.support.jobs_setup import FORECASTS, all_jobs, owned  # noqa: F401  (fixtures)

# --- triggers -------------------------------------------------------------------


def test_a_new_device_enqueues_one_consumption_and_one_flexibility_job(client_as, db, insert):
    dev = device()
    insert(
        "prosumers", {"account_id": dev["account_id"], "aggregator_id": dev["aggregator_id"], "display_name": "home"}
    )
    assert client_as("service").post("/devices", **as_json(dev)).status_code == 201
    found = all_jobs(db)
    assert sorted(j["kind"] for j in found) == sorted(FORECASTS)
    assert {(j["subject"], j["status"], j["account_id"], j["aggregator_id"]) for j in found} == {
        (dev["device_id"], "queued", dev["account_id"], dev["aggregator_id"])
    }
    assert db["forecasts"].count_documents({}) == 0  # enqueued, not computed in the request


def test_a_capacity_change_enqueues_a_flexibility_forecast(client_as, db, insert):
    dev = insert("devices", device())[0]
    prosumer = client_as("prosumer", account_id=dev["account_id"], aggregator_id=dev["aggregator_id"])
    patched = prosumer.patch(
        f"/devices/{dev['device_id']}", headers={"If-Match": dev["_etag"]}, **as_json({"available_capacity": 1.0})
    )
    assert patched.status_code == 200
    assert [(j["kind"], j["subject"]) for j in all_jobs(db)] == [("flexibility_forecast", dev["device_id"])]
    prosumer.patch(
        f"/devices/{dev['device_id']}",
        headers={"If-Match": patched.json["_etag"]},
        **as_json({"dr_availability": "no"}),
    )
    assert len(all_jobs(db)) == 1  # nothing that changes flexibility


def test_a_bulk_of_96_measurements_gives_one_job_and_a_burst_is_debounced(client_as, db, owned):
    dev = owned()
    history = readings(dev, 2)
    service = client_as("service")
    assert service.post("/measurements", **as_json(as_api(history[:96]))).status_code == 201
    [job] = all_jobs(db)
    assert (job["kind"], job["subject"], job["triggers"]) == ("consumption_forecast", dev["device_id"], 1)
    assert service.post("/measurements", **as_json(as_api(history[96:]))).status_code == 201
    [job] = all_jobs(db)  # the queued job absorbed the second burst
    assert job["triggers"] == 2 and len(job["input_keys"]) == 2


def test_the_same_inputs_return_the_existing_job_even_when_it_is_done(app, client_as, db, owned):
    dev = owned()
    bulk = as_api(readings(dev, 1))
    service = client_as("service")
    service.post("/measurements", **as_json(bulk))
    jobs.run_pending(app)
    before = {j["_id"]: (j["status"], j["attempts"]) for j in all_jobs(db)}
    service.post("/measurements", **as_json(bulk))  # a client retrying the same bulk
    assert {j["_id"]: (j["status"], j["attempts"]) for j in all_jobs(db)} == before
    job = all_jobs(db, kind="consumption_forecast")[0]
    again = jobs.enqueue("consumption_forecast", dev["device_id"], job["input_key"], app=app)
    assert again["_id"] == job["_id"]


# --- de-duplication under races ---------------------------------------------------------


def test_one_queued_job_per_dedup_key_is_enforced_by_the_store(app, db, owned):
    from pymongo.errors import DuplicateKeyError

    dev, t0 = owned(), this_hour()
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "k1", app=app, now=t0)
    twin = {k: v for k, v in job.items() if k != "_id"}
    with pytest.raises(DuplicateKeyError):
        db["jobs"].insert_one(dict(twin))
    db["jobs"].insert_one({**twin, "status": "running"})  # only queued jobs are unique
    assert db["jobs"].count_documents({"dedup_key": job["dedup_key"]}) == 2


def test_an_upsert_that_loses_a_race_absorbs_into_the_winners_job(app, db, owned, monkeypatch):
    """On MongoDB two upserts can both miss the queued job and both insert; the partial
    unique index refuses the second, which then finds and joins the first."""
    from pymongo.errors import DuplicateKeyError

    dev, t0 = owned(), this_hour()
    collection = type(db["jobs"])
    real = collection.__getattr__
    raced = []

    def racing_getattr(self, name):
        attr = real(self, name)
        if name != "find_one_and_update" or raced:
            return attr

        def upsert_loses(spec, update, **kwargs):
            raced.append(True)  # the other process's upsert lands first
            attr(spec, {**update, "$addToSet": {"input_keys": "other"}}, **kwargs)
            raise DuplicateKeyError("E11000 duplicate key error (queued_dedup_unique)", 11000)

        return upsert_loses

    monkeypatch.setattr(collection, "__getattr__", racing_getattr)
    job = jobs.enqueue("consumption_forecast", dev["device_id"], "mine", app=app, now=t0)
    found = all_jobs(db)
    assert len(found) == 1 and job["_id"] == found[0]["_id"]
    assert set(found[0]["input_keys"]) == {"other", "mine"} and found[0]["triggers"] == 2


def test_a_retry_that_meets_a_queued_twin_is_folded_into_it(app, db, owned):
    dev, t0 = owned(), this_hour()
    first = jobs.enqueue("consumption_forecast", dev["device_id"], "k1", app=app, now=t0)
    records.claim(db, first["_id"], t0)
    twin = jobs.enqueue("consumption_forecast", dev["device_id"], "k2", app=app, now=t0)
    running = records.get(db, first["_id"])
    failed = records.fail(db, running, "RuntimeError: store down", permanent=False, base_seconds=30, now=t0)
    assert failed["status"] == "failed" and f"retried as job {twin['_id']}" in failed["error"]
    assert set(records.get(db, twin["_id"])["input_keys"]) == {"k1", "k2"}
    assert db["jobs"].count_documents({"status": "queued"}) == 1
