"""The work of each job kind: read inputs, call the pure functions, write results.

A task takes the claimed jobs of one kind (a batch, so forecasts are computed
vectorised across devices) and returns, per job id, either the URL of its
result or the exception that stopped it. Results are written with Eve's
``post_internal``, so validation and hooks run as for an API client (a new
consumption forecast triggers the flexibility forecast and the advice).
A ValueError is a permanent failure (bad or missing inputs: retrying cannot
help); anything else is retried with back-off.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import numpy as np
from eve.methods.post import post_internal
from flask import Flask

from registry.forecast import advisor
from registry.forecast.documents import documents_for
from registry.forecast.flexibility import flexibility_forecast
from registry.forecast.model import InsufficientData, forecast_day_ahead
from registry.forecast.quality import assess
from registry.forecast.timeseries import iso, target_start
from registry.jobs import inputs
from registry.store.clock import as_utc

Outcome = str | Exception
Task = Callable[[Flask, list[dict[str, Any]], datetime], dict[Any, Outcome]]


def write(resource: str, docs: list[dict[str, Any]]) -> list[Any]:
    """post_internal in one bulk call; the ids of the stored documents."""
    response, _, _, status, _ = post_internal(resource, docs)
    if status != 201:
        raise ValueError(f"{resource} refused the job's documents: {json.dumps(response, default=str)[:500]}")
    items = response.get("_items", [response]) if isinstance(response, dict) else response
    return [item["_id"] for item in items]


def results_url(resource: str, job_id: Any) -> str:
    return f"/{resource}?where=" + quote(json.dumps({"job_id": str(job_id)}, separators=(",", ":")))


def issued_at(job: dict[str, Any], now: datetime) -> datetime:
    """The issue time a job was asked for (tests, re-runs), else when it runs."""
    given = (job.get("params") or {}).get("issued_at")
    return as_utc(given) if given else now


def _stored(doc: dict[str, Any], job_id: Any) -> dict[str, Any]:
    """A pure function's document as the store keeps it: datetimes, the job's id."""
    out = {k: v for k, v in doc.items() if v is not None}
    for key in ("issued_at", "start", "end"):
        if isinstance(out.get(key), str):
            out[key] = as_utc(out[key])
    if (out.get("fitted_on") or {}).get("last_reading"):
        out["fitted_on"] = {**out["fitted_on"], "last_reading": as_utc(out["fitted_on"]["last_reading"])}
    if "slots" in out:
        out["slots"] = [{**s, "start": as_utc(s["start"])} for s in out["slots"]]
    return {**out, "job_id": job_id}


# --- forecasts -------------------------------------------------------------------


def consumption_forecasts(app: Flask, jobs: list[dict[str, Any]], now: datetime) -> dict[Any, Outcome]:
    """One vectorised forecast per issue time for all the batch's devices."""
    outcomes: dict[Any, Outcome] = {}
    groups: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for job in jobs:
        groups[issued_at(job, now)].append(job)
    for moment, group in groups.items():
        outcomes.update(_forecast_group(app, group, moment))
    return outcomes


def _forecast_group(app: Flask, jobs: list[dict[str, Any]], moment: datetime) -> dict[Any, Outcome]:
    db, days = app.data.driver.db, int(app.config["FORECAST_HISTORY_DAYS"])
    known = inputs.devices_by_id(db, [j["subject"] for j in jobs])
    outcomes: dict[Any, Outcome] = {
        j["_id"]: ValueError(f"device {j['subject']} does not exist") for j in jobs if j["subject"] not in known
    }
    jobs = [j for j in jobs if j["subject"] in known]
    device_ids = [j["subject"] for j in jobs]
    history = inputs.load_history(db, device_ids, target_start(moment), days) if jobs else None
    reasons = assess(history, moment)[1].reasons if jobs else []
    for i, reason in enumerate(reasons):
        if reason:  # the device's own reason, never naming other devices: a prosumer reads its jobs
            outcomes[jobs[i]["_id"]] = InsufficientData(reason, [device_ids[i]])
    keep = [i for i in range(len(jobs)) if jobs[i]["_id"] not in outcomes]
    if keep:
        result = forecast_day_ahead(history[keep], moment, [device_ids[i] for i in keep], backtest=True)
        docs = documents_for([device_ids[i] for i in keep], result, "consumption")
        write("forecasts", [_stored(doc, jobs[i]["_id"]) for doc, i in zip(docs, keep)])
        outcomes.update({jobs[i]["_id"]: results_url("forecasts", jobs[i]["_id"]) for i in keep})
    return outcomes


def flexibility_forecasts(app: Flask, jobs: list[dict[str, Any]], now: datetime) -> dict[Any, Outcome]:
    """Up / down flexibility from each device's latest consumption forecast."""
    db = app.data.driver.db
    devices = inputs.devices_by_id(db, [j["subject"] for j in jobs])
    latest = inputs.latest_forecasts(db, {"device_id": {"$in": list(devices)}, "kind": "consumption"})
    outcomes: dict[Any, Outcome] = {}
    ready: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for job in jobs:
        device, forecast = devices.get(job["subject"]), latest.get((job["subject"], None))
        if device is None:
            outcomes[job["_id"]] = ValueError(f"device {job['subject']} does not exist")
        elif forecast is None:
            outcomes[job["_id"]] = ValueError(_no_forecast_reason(db, job["subject"]))
        else:
            ready.append((job, forecast))
    by_start: dict[Any, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    for job, forecast in ready:
        by_start[(forecast["start"], forecast["issued_at"])].append((job, forecast))
    for group in by_start.values():
        outcomes.update(_flexibility_group(group, devices))
    return outcomes


def _no_forecast_reason(db: Any, device_id: str) -> str:
    reason = f"no consumption forecast for device {device_id} yet"
    failed = db["jobs"].find_one(
        {"kind": "consumption_forecast", "subject": device_id, "status": "failed"}, sort=[("finished_at", -1)]
    )
    return f"{reason}; its consumption forecast failed: {failed['error']}" if failed else reason


def _flexibility_group(
    group: list[tuple[dict[str, Any], dict[str, Any]]], devices: dict[str, dict[str, Any]]
) -> dict[Any, Outcome]:
    ids = [job["subject"] for job, _ in group]
    consumption = inputs.as_result([forecast for _, forecast in group])
    columns = inputs.capacity_columns([devices[i] for i in ids])
    flex = flexibility_forecast(consumption, **columns)
    docs = []
    for result in (flex.up, flex.down):
        docs += [_stored(doc, job["_id"]) for doc, (job, _) in zip(documents_for(ids, result, "flexibility"), group)]
    write("forecasts", docs)
    return {job["_id"]: results_url("forecasts", job["_id"]) for job, _ in group}


# --- advice ----------------------------------------------------------------------


def prosumer_advice(app: Flask, jobs: list[dict[str, Any]], now: datetime) -> dict[Any, Outcome]:
    outcomes: dict[Any, Outcome] = {}
    for job in jobs:
        try:
            write("advice", [_stored(_prosumer_document(app.data.driver.db, job, now), job["_id"])])
            outcomes[job["_id"]] = results_url("advice", job["_id"])
        except Exception as error:
            outcomes[job["_id"]] = error
    return outcomes


def _prosumer_document(db: Any, job: dict[str, Any], now: datetime) -> dict[str, Any]:
    account_id = job["subject"]
    prosumer = db["prosumers"].find_one({"account_id": account_id}) or {}
    device_ids = [d["device_id"] for d in db["devices"].find({"account_id": account_id}, {"device_id": 1})]
    latest = inputs.latest_forecasts(db, {"device_id": {"$in": device_ids}, "kind": "consumption"})
    if not latest:
        raise ValueError(f"no consumption forecast for any device of account {account_id} yet")
    day = max(doc["start"] for doc in latest.values())
    todays = [doc for doc in latest.values() if doc["start"] == day]
    p50 = np.sum([doc["values"] for doc in todays], axis=0)
    p90 = np.sum([(doc.get("quantiles") or {}).get("p90") or doc["values"] for doc in todays], axis=0)
    aggregator_id = prosumer.get("aggregator_id") or job.get("aggregator_id")
    aggregator = db["aggregators"].find_one({"aggregator_id": aggregator_id})
    prices = inputs.price_series(db, aggregator, aggregator_id, day)
    events = [c for windows in inputs.contract_windows(db, {"account_ids": account_id}).values() for c in windows]
    document = advisor.prosumer_advice(
        account_id,
        day,
        prices,
        p50.tolist(),
        p90.tolist(),
        prosumer.get("contracted_max_power_kw"),
        dr_events=[
            {**e, "start": iso(e["start"]), "end": iso(e["end"])} for e in {str(e["_id"]): e for e in events}.values()
        ],
        issued_at=issued_at(job, now),
    )
    return {**document, "aggregator_id": aggregator_id}


def aggregator_advice(app: Flask, jobs: list[dict[str, Any]], now: datetime) -> dict[Any, Outcome]:
    outcomes: dict[Any, Outcome] = {}
    for job in jobs:
        try:
            write("advice", [_stored(_aggregator_document(app.data.driver.db, job, now), job["_id"])])
            outcomes[job["_id"]] = f"/advice-requests/{job['_id']}/result"
        except Exception as error:
            outcomes[job["_id"]] = error
    return outcomes


def _aggregator_document(db: Any, job: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Only the aggregator's own portfolio is considered."""
    aggregator_id, p = job["subject"], job["params"]
    devices = list(
        db["devices"].find(
            {"aggregator_id": aggregator_id, "marketplace_availability": "yes"},
            {"device_id": 1, "location": 1, "marketplace_availability": 1},
        )
    )
    ids = [d["device_id"] for d in devices]
    flex = inputs.latest_forecasts(
        db,
        {
            "device_id": {"$in": ids},
            "kind": "flexibility",
            "direction": p["direction"],
            "start": {"$lte": as_utc(p["start"])},
        },
    )
    windows = inputs.contract_windows(db, {"device_ids": {"$in": ids}})
    candidates = [
        {
            **d,
            "contracted": [{"start": iso(w["start"]), "end": iso(w["end"])} for w in windows.get(d["device_id"], [])],
            "flexibility": {p["direction"]: _as_plain(flex.get((d["device_id"], p["direction"])))},
        }
        for d in devices
    ]
    document = advisor.aggregator_advice(
        aggregator_id,
        p["target_kw"],
        p["start"],
        p["end"],
        p["direction"],
        candidates,
        point=p.get("point"),
        radius_km=p.get("radius_km"),
        issued_at=issued_at(job, now),
    )
    if p.get("point") is not None:
        document.update(point={"type": "Point", "coordinates": p["point"]}, radius_km=p.get("radius_km"))
    return document


def _as_plain(forecast: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if forecast is None else {**forecast, "start": iso(forecast["start"])}


TASKS: dict[str, Task] = {
    "consumption_forecast": consumption_forecasts,
    "flexibility_forecast": flexibility_forecasts,
    "prosumer_advice": prosumer_advice,
    "aggregator_advice": aggregator_advice,
}
