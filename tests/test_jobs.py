"""Jobs on the embedded backend: triggers, idempotency, debouncing, retries,
loud failures, results written through the API, the worker thread."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from registry import jobs
from registry.demo import seeding as demo
from registry.jobs import records, tasks
from tests.conftest import as_json
from tests.factories import device, new_uuid
from tests.history import as_api, day_ahead_prices, readings, this_hour

FORECASTS = {"consumption_forecast", "flexibility_forecast"}


@pytest.fixture
def owned(insert):
    """A prosumer and one device of it, stored without triggering any job."""

    def owned(**overrides):
        dev = device(**overrides)
        insert(
            "prosumers",
            {
                "account_id": dev["account_id"],
                "aggregator_id": dev["aggregator_id"],
                "display_name": "home",
                "contracted_max_power_kw": 6.0,
            },
        )
        insert("devices", dev)
        return dev

    return owned


def all_jobs(db, **spec):
    return list(db["jobs"].find(spec))


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


# --- results --------------------------------------------------------------------


def test_forecast_jobs_write_consumption_and_flexibility_forecasts(app, client, db, insert, owned):
    dev = owned(max_capacity=3.0, available_capacity=2.0)
    noon = this_hour().replace(hour=12) - timedelta(days=1)  # a back-test needs part of a day observed
    insert("measurements", *readings(dev, 14, end=noon))
    jobs.enqueue(
        "consumption_forecast",
        dev["device_id"],
        "k",
        params={"issued_at": f"{noon:%Y-%m-%dT%H:%M:%SZ}"},
        owner=jobs.owner_of(dev),
        app=app,
    )
    assert jobs.run_pending(app) == 3  # consumption, then flexibility and advice
    consumption = db["forecasts"].find_one({"device_id": dev["device_id"], "kind": "consumption"})
    assert len(consumption["values"]) == 96 and len(consumption["quantiles"]["p90"]) == 96
    assert max(consumption["values"]) > 0.2  # a real forecast, not zeros
    assert consumption["model"] == "lagblend-v1" and consumption["backtest_mae"] > 0
    assert (consumption["account_id"], consumption["aggregator_id"]) == (dev["account_id"], dev["aggregator_id"])
    flex = {f["direction"]: f for f in db["forecasts"].find({"device_id": dev["device_id"], "kind": "flexibility"})}
    assert set(flex) == {"up", "down"}
    assert all(0 <= v <= 2.0 for f in flex.values() for v in f["values"])
    for job in all_jobs(db, kind={"$in": sorted(FORECASTS)}):
        assert (job["status"], job["attempts"], job["error"]) == ("done", 1, None)
        listed = client.get(job["result_url"]).json["_items"]
        assert listed and all(f["job_id"] == str(job["_id"]) for f in listed)


def test_insufficient_data_fails_the_job_loudly_and_writes_no_forecast(app, db, insert, owned):
    dev = owned()
    insert("measurements", *readings(dev, 3))
    jobs.enqueue_forecasts([dev], "test", app=app)
    jobs.run_pending(app)
    consumption = all_jobs(db, kind="consumption_forecast")[0]
    assert consumption["status"] == "failed" and consumption["attempts"] == 1  # no point retrying
    assert consumption["error"].startswith("InsufficientData: not enough history to forecast")
    assert re.search(r"found [23] in the 28 days", consumption["error"])  # 2 or 3, by the hour
    assert dev["device_id"] in consumption["error"]
    flexibility = all_jobs(db, kind="flexibility_forecast")[0]
    assert flexibility["status"] == "failed" and "no consumption forecast" in flexibility["error"]
    assert db["forecasts"].count_documents({}) == 0


def test_a_batch_fails_only_the_devices_without_enough_data(app, db, insert, owned):
    short, full = owned(), owned()
    insert("measurements", *readings(short, 2), *readings(full, 10, seed=2))
    jobs.enqueue_forecasts([short, full], "test", kinds=["consumption_forecast"], app=app)
    jobs.run_pending(app)
    status = {j["subject"]: j["status"] for j in all_jobs(db, kind="consumption_forecast")}
    assert status == {short["device_id"]: "failed", full["device_id"]: "done"}
    failed = all_jobs(db, subject=short["device_id"], kind="consumption_forecast")[0]
    assert full["device_id"] not in failed["error"]  # a prosumer's job names only its own device


def test_a_new_forecast_leads_to_prosumer_advice_from_the_prices(app, client_as, db, insert, owned):
    dev = owned()
    insert("measurements", *readings(dev, 10))
    insert("prices", day_ahead_prices(this_hour()))
    jobs.enqueue_forecasts([dev], "test", kinds=["consumption_forecast"], app=app)
    jobs.run_pending(app)
    assert {j["kind"]: j["status"] for j in all_jobs(db)} == {
        "consumption_forecast": "done",
        "flexibility_forecast": "done",
        "prosumer_advice": "done",
    }
    [advice] = db["advice"].find({"account_id": dev["account_id"]})
    assert advice["kind"] == "prosumer" and len(advice["slots"]) == 96
    assert {s["tag"] for s in advice["slots"]} <= {1, 2, 3, 4, 5}
    assert "NO_PRICE" not in {s["code"] for s in advice["slots"]}
    evening = [s for s in advice["slots"] if s["start"].hour == 19]
    assert min(s["tag"] for s in evening) >= 4  # the dearest hours


def test_prices_and_offers_advise_only_accounts_that_have_a_forecast(app, client_as, db, insert, owned):
    forecasted, fresh = owned(), owned()
    insert("measurements", *readings(forecasted, 10))
    jobs.enqueue_forecasts([forecasted], "test", kinds=["consumption_forecast"], app=app)
    jobs.run_pending(app)
    assert (
        client_as("service")
        .post(
            "/prices", **as_json({**day_ahead_prices(this_hour()), "start": this_hour().strftime("%Y-%m-%dT00:00:00Z")})
        )
        .status_code
        == 201
    )
    queued = all_jobs(db, kind="prosumer_advice", status="queued")
    assert [j["subject"] for j in queued] == [forecasted["account_id"]]
    assert fresh["account_id"] not in {j["subject"] for j in all_jobs(db)}


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
        time.sleep(3.2)
        backend.stop()
    reports = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert 3 <= len(calls) <= 5, len(calls)  # once per second, not thousands
    assert len(reports) == len(calls) and reports[0].exc_info is not None


def test_a_failing_drain_does_not_spin(app, caplog):
    from registry.jobs.backends import EmbeddedBackend

    calls = []

    def broken_drain():
        calls.append(1)
        raise ConnectionError("store unreachable")

    app.config["JOBS_TICK_SECONDS"] = 1
    backend = EmbeddedBackend(app, broken_drain, lambda: None)
    with caplog.at_level("ERROR", logger="registry.jobs"):
        backend.start()
        time.sleep(2.2)
        backend.stop()
    assert 2 <= len(calls) <= 4, len(calls)
    assert len([r for r in caplog.records if "drain failed" in r.getMessage()]) == len(calls)
