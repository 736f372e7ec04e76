"""Jobs on the embedded backend (tests/support/jobs_setup.py).

This part: results written through the API (consumption and flexibility
forecasts, then prosumer advice from the prices) and loud failures (not enough
data fails the job, or only the devices of a batch without it)."""

from __future__ import annotations

import re
from datetime import timedelta

from registry import jobs
from tests.conftest import as_json
from tests.history import day_ahead_prices, readings, this_hour
from tests.support.jobs_setup import FORECASTS, all_jobs, owned  # noqa: F401  (fixtures)


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
    assert consumption["model"] == "lagblend-v2" and consumption["backtest_mae"] > 0
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


def test_a_stale_device_fails_with_its_reason_and_a_spiky_one_is_forecast_from_clean_data(app, db, insert, owned):
    stale, spiky, fine = owned(), owned(), owned()
    spikes = readings(spiky, 10, seed=3)
    spikes[-300]["power_kw"] = 10_000 * spikes[-300]["power_kw"]
    insert("measurements", *readings(stale, 14, end=this_hour() - timedelta(days=20)), *spikes)
    insert("measurements", *readings(fine, 10, seed=4))
    jobs.enqueue_forecasts([stale, spiky, fine], "test", kinds=["consumption_forecast"], app=app)
    jobs.run_pending(app)
    status = {j["subject"]: (j["status"], j["error"]) for j in all_jobs(db, kind="consumption_forecast")}
    assert status[spiky["device_id"]] == ("done", None) and status[fine["device_id"]] == ("done", None)
    assert status[stale["device_id"]][0] == "failed"
    assert status[stale["device_id"]][1].startswith("InsufficientData: history too stale to forecast")
    assert fine["device_id"] not in status[stale["device_id"]][1]
    forecasts = {f["device_id"]: f for f in db["forecasts"].find({"kind": "consumption"})}
    assert set(forecasts) == {spiky["device_id"], fine["device_id"]}
    assert max(forecasts[spiky["device_id"]]["quantiles"]["p90"]) < 10  # the spike left out
    fitted_on = forecasts[spiky["device_id"]]["fitted_on"]
    assert fitted_on["excluded_values"] == 1 and fitted_on["history_days"] == 28
    assert 9 <= fitted_on["days_used"] <= 10 and 0.6 < fitted_on["share_missing"] < 0.7
    assert fitted_on["last_reading"] <= this_hour()


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
