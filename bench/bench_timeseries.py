"""Measurements in day buckets on the embedded store (docs/timeseries.md): load, read, ingest.

    python -m bench.bench_timeseries [--devices 10000] [--days 28] [--batch 5000] [--batches 8]

Prints one table:

* load: N devices × D days of 15-minute readings stored as day buckets
  (``registry.store.timeseries_load.load_series``), its time and the process's memory growth;
* week read: one device's last 7 days through ``GET /measurements`` (where on
  device_id and a timestamp range, 672 per page), median of 9, and the same
  read straight from the buckets;
* ingestion: bulk POSTs of ``--batch`` readings of new days through the API with a
  service token (the fast path, registry/api/ingest.py), readings stored per second;
* device page: ``GET /ui/devices/<id>`` (its chart of the recent readings) for an
  admin signed in through the built-in provider's form, median of 9;
* forecast input: ``registry.jobs.inputs.load_history`` for 1,000 devices × 28 days;
* demo: ``registry.demo.seeding.seed`` of the demo fleet (8 days), in a fresh app.

Targets (issue 15): the load fits, week read ≤ 50 ms, device page ≤ 300 ms, ingestion ≥ 20,000 readings/s,
forecast input ≤ 1 s, demo seeds ≤ 5 s.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import socket
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import requests
from werkzeug.serving import make_server

from registry import create_app
from registry.auth import credentials, mint_token
from registry.demo import seeding
from registry.jobs import inputs
from registry.store import timeseries, timeseries_load
from registry.store.embedded import bulk_insert
from schemas.vocabulary import DATE_FORMAT, SLOT, SLOTS_PER_DAY

END = datetime(2030, 2, 1, tzinfo=UTC)  # the history ends at this midnight


def rss_mb() -> float:
    """The process's peak resident memory (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def app_in(folder: str) -> Any:
    with socket.socket() as probe:  # a free port, for the device page's server
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = {"PUBLIC_URL": url, "OAUTH_ISSUER": url, "RATE_LIMIT": "1000000 per minute"}
    return create_app({"INSTANCE_PATH": folder, "TESTING": True, "RATE_LIMIT_SERVICE": "1000000 per minute", **config})


def fleet(n: int) -> list[dict[str, Any]]:
    accounts = [str(uuid.UUID(int=i + 1)) for i in range(max(1, n // 2))]
    return [
        {
            "device_id": str(uuid.UUID(int=10**9 + i)),
            "account_id": accounts[i % len(accounts)],
            "aggregator_id": f"agg-{i % 10}",
            "device_name": f"bench {i}",
        }
        for i in range(n)
    ]


def load(app: Any, devices: list[dict[str, Any]], days: int) -> tuple[float, float]:
    rng = np.random.default_rng(1)
    begin = END - timedelta(days=days)
    before = rss_mb()
    started = time.perf_counter()
    with app.app_context():
        store_fleet(app.data.driver.db, devices, begin, days, rng)
    return time.perf_counter() - started, rss_mb() - before


def store_fleet(db: Any, devices: list[dict[str, Any]], begin: Any, days: int, rng: Any, missing: float = 0.0) -> None:
    """The devices and `days` of 15-minute readings each (kW, gamma-distributed), in bulk;
    a `missing` share of the readings left out (also used by bench/bench_series.py)."""
    bulk_insert(db["devices"], [dict(d) for d in devices])
    buckets = db[timeseries.COLLECTION]
    for dev in devices:
        power = np.round(rng.gamma(4.0, 0.25, days * SLOTS_PER_DAY), 3)
        if missing:
            power[rng.random(power.size) < missing] = np.nan
        timeseries_load.load_series(buckets, dev, begin, power)


def week_read(app: Any, client: Any, headers: dict[str, str], device_id: str) -> tuple[float, float, int]:
    where = {
        "device_id": device_id,
        "timestamp": {
            "$gte": (END - timedelta(days=7)).strftime(DATE_FORMAT),
            "$lt": END.strftime(DATE_FORMAT),
        },
    }
    query = {"where": json.dumps(where), "max_results": 7 * SLOTS_PER_DAY}
    api, direct, count = [], [], 0
    for _ in range(9):
        started = time.perf_counter()
        response = client.get("/measurements", query_string=query, headers=headers)
        api.append(time.perf_counter() - started)
        count = len(response.get_json()["_items"])
        with app.app_context():
            started = time.perf_counter()
            inputs.load_history(app.data.driver.db, [device_id], END, 7)
            direct.append(time.perf_counter() - started)
    return statistics.median(api), statistics.median(direct), count


def device_page(app: Any, device_id: str) -> float:
    """The page through a real server on loopback: signing in asks the issuer's
    discovery document over HTTP, as a browser's sign-in would."""
    server = make_server("127.0.0.1", int(app.config["PUBLIC_URL"].rsplit(":", 1)[1]), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url, browser = app.config["PUBLIC_URL"], requests.Session()
        login = browser.get(f"{url}/ui/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)  # type: ignore[union-attr]
        form = browser.post(f"{url}/ui/login/builtin", data={"csrf_token": csrf}, timeout=10)
        password = credentials.secret_of(app.config["INSTANCE_PATH"], "users", "admin")
        done = browser.post(form.url, data={"username": "admin", "password": password}, timeout=20)
        assert done.url.endswith("/ui/devices"), (done.status_code, done.url)
        samples = []
        for _ in range(9):
            started = time.perf_counter()
            response = browser.get(f"{url}/ui/devices/{device_id}", timeout=30)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:300]
        return statistics.median(samples)
    finally:
        server.shutdown()


def ingest(client: Any, headers: dict[str, str], devices: list[dict[str, Any]], batch: int, batches: int) -> float:
    """Readings of days after the loaded history, ``batch`` per POST."""
    per_device = SLOTS_PER_DAY
    bodies = []
    for b in range(batches):
        body = []
        for i in range(batch):
            k = b * batch + i
            dev = devices[(k // per_device) % len(devices)]
            day = END + timedelta(days=1 + k // (per_device * len(devices)))
            at = day + SLOT * (k % per_device)
            body.append({"device_id": dev["device_id"], "timestamp": at.strftime(DATE_FORMAT), "power_kw": 0.5})
        bodies.append(json.dumps(body))
    started = time.perf_counter()
    for body in bodies:
        response = client.post("/measurements", data=body, content_type="application/json", headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)[:300]
    return batch * batches / (time.perf_counter() - started)


def forecast_input(app: Any, devices: list[dict[str, Any]]) -> tuple[float, float]:
    ids = [d["device_id"] for d in devices[:1000]]
    with app.app_context():
        started = time.perf_counter()
        history = inputs.load_history(app.data.driver.db, ids, END, 28)
        took = time.perf_counter() - started
    return took, float(np.mean(~np.isnan(history)))


def demo_seed(folder: str) -> tuple[float, dict[str, int]]:
    app = app_in(folder)
    data = seeding.build_demo()
    started = time.perf_counter()
    counts = seeding.seed(app, data, progress=False)
    return time.perf_counter() - started, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        app = app_in(folder)
        devices = fleet(args.devices)
        took, grown = load(app, devices, args.days)
        readings = args.devices * args.days * SLOTS_PER_DAY
        rows.append((f"load {args.devices:,} devices x {args.days} days ({readings:,} readings)", f"{took:.1f} s"))
        rows.append(("  memory growth (peak RSS)", f"{grown:,.0f} MB ({grown * 2**20 / readings:.0f} B/reading)"))
        client = app.test_client()
        with app.app_context():
            token = mint_token(
                app.config["INSTANCE_PATH"], app.config["OAUTH_ISSUER"], app.config["OAUTH_AUDIENCE"], "service"
            )
        headers = {"Authorization": f"Bearer {token}"}
        api, direct, count = week_read(app, client, headers, devices[len(devices) // 2]["device_id"])
        rows.append((f"one device's week via GET /measurements ({count} readings)", f"{api * 1000:.1f} ms"))
        rows.append(("  the same week from the buckets (load_history)", f"{direct * 1000:.2f} ms"))
        rows.append(
            (
                "  the device page (/ui/devices/<id>, signed in)",
                f"{device_page(app, devices[7]['device_id']) * 1000:.0f} ms",
            )
        )
        rate = ingest(client, headers, devices, args.batch, args.batches)
        rows.append((f"ingestion through the API ({args.batches} x {args.batch} readings)", f"{rate:,.0f} readings/s"))
        took, filled = forecast_input(app, devices)
        rows.append(
            (
                f"forecast input {min(1000, args.devices):,} devices x 28 days",
                f"{took * 1000:.0f} ms ({filled:.0%} filled)",
            )
        )
    with tempfile.TemporaryDirectory() as folder:
        took, counts = demo_seed(folder)
        rows.append(
            (
                f"demo seed ({counts.get('devices', 0)} devices, {counts.get('measurements', 0):,} readings)",
                f"{took:.1f} s",
            )
        )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
