"""Load test: the mixed workload of aggregators, prosumers and the bridge on loopback.

The real app (``create_app``, embedded store, demo data) is served by
werkzeug's threaded server, as ``python run.py`` serves it, and concurrent
clients (one thread each, keep-alive sessions) run for a fixed time:

* aggregators: the FLEXCoop query ($near, sorted, projected), open offers near
  a point, and a contract on an offer one of their prosumers just published;
* prosumers: list their devices, PATCH a device's availability (GET for the
  ETag, then If-Match), publish an offer;
* the bridge (service token): bulk POSTs of 96 readings of one device.

Every answer must be the expected one (200 / 201; nothing else counts as
success); throughput, p50 / p99 latency per operation and the error count are
reported. The per-subject rate limit is lifted: this measures capacity. The
job worker is off unless --with-worker (forecasts would compete for the CPU).

    python -m bench.bench_load [--duration 20] [--aggregators 3] [--prosumers 6] [--bridges 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import random
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from bench.recorder import Recorder, percentile
from schemas.vocabulary import DATE_FORMAT, SLOT, SLOTS_PER_DAY
from tests.support.loopback import serve_quietly

CENTERS = {"coop-iberia": [-3.70, 40.42], "flex-nordwest": [6.96, 50.94], "energie-delta": [4.90, 52.37]}


class Workload:
    """The demo's parties, their tokens, and a queue of fresh offers per aggregator."""

    def __init__(self, url: str, app: Any, data: dict[str, list[dict[str, Any]]]) -> None:
        from registry.auth import mint_token

        self.url, self.record = url, Recorder()
        self.offers: dict[str, queue.Queue] = defaultdict(queue.Queue)
        config = app.config

        def token(role: str, **ids: str) -> dict[str, str]:
            return {
                "Authorization": "Bearer "
                + mint_token(config["INSTANCE_PATH"], config["OAUTH_ISSUER"], config["OAUTH_AUDIENCE"], role, **ids)
            }

        self.token = token
        self.devices = defaultdict(list)
        for dev in data["devices"]:
            self.devices[dev["account_id"]].append(dev)
        self.prosumers = [
            p
            for p in data["prosumers"]
            if any(d["marketplace_availability"] == "yes" for d in self.devices[p["account_id"]])
        ]
        self.slot = 0
        self.slot_lock = threading.Lock()

    def next_window(self) -> tuple[str, str]:
        """A one-hour window no other offer of this run uses (offers never overlap)."""
        with self.slot_lock:
            self.slot += 1
            slot = self.slot
        base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        start = base + timedelta(hours=slot)
        return (f"{start:{DATE_FORMAT}}", f"{start + timedelta(hours=1):{DATE_FORMAT}}")

    # --- the three kinds of client -------------------------------------------

    def aggregator(self, aggregator_id: str, stop: threading.Event) -> None:
        session, headers = requests.Session(), self.token("aggregator", aggregator_id=aggregator_id)
        center = CENTERS.get(aggregator_id, [0.0, 45.0])
        near = {"$near": {"$geometry": {"type": "Point", "coordinates": center}, "$maxDistance": 50000}}
        flexcoop = {
            "where": json.dumps({"device_class": "dhwDevice", "marketplace_availability": "yes", "location": near}),
            "sort": '[("max_capacity", -1)]',
            "projection": json.dumps({"device_id": 1, "max_capacity": 1}),
        }
        offers = {"where": json.dumps({"status": "open", "location": near}), "max_results": 20}
        while not stop.is_set():
            self.record.call(
                "aggregator: FLEXCoop query",
                (200,),
                lambda: session.get(f"{self.url}/devices", params=flexcoop, headers=headers, timeout=30),
            )
            self.record.call(
                "aggregator: offers near a point",
                (200,),
                lambda: session.get(f"{self.url}/offers", params=offers, headers=headers, timeout=30),
            )
            try:
                offer = self.offers[aggregator_id].get(timeout=0.05)
            except queue.Empty:
                continue
            self.record.call(
                "aggregator: contract",
                (201,),
                lambda: session.post(
                    f"{self.url}/contracts",
                    headers=headers,
                    timeout=30,
                    json={
                        "aggregator_id": aggregator_id,
                        "offers": [offer["_id"]],
                        "start": offer["start"],
                        "end": offer["end"],
                    },
                ),
            )

    def prosumer(self, prosumer: dict[str, Any], stop: threading.Event) -> None:
        session = requests.Session()
        headers = self.token("prosumer", account_id=prosumer["account_id"], aggregator_id=prosumer["aggregator_id"])
        devices = [d for d in self.devices[prosumer["account_id"]] if d["marketplace_availability"] == "yes"]
        flip = "no"
        while not stop.is_set():
            self.record.call(
                "prosumer: list own devices",
                (200,),
                lambda: session.get(f"{self.url}/devices", headers=headers, timeout=30),
            )
            dev = random.choice(devices)
            item = self.record.call(
                "prosumer: GET device",
                (200,),
                lambda: session.get(f"{self.url}/devices/{dev['device_id']}", headers=headers, timeout=30),
            )
            if item is not None:
                flip = "yes" if flip == "no" else "no"
                self.record.call(
                    "prosumer: PATCH availability",
                    (200,),
                    lambda: session.patch(
                        f"{self.url}/devices/{dev['device_id']}",
                        json={"dr_availability": flip},
                        timeout=30,
                        headers={**headers, "If-Match": item.json()["_etag"]},
                    ),
                )
            start, end = self.next_window()
            body = {
                "device_id": dev["device_id"],
                "start": start,
                "end": end,
                "power_kw": 0.5,
                "price": 0.2,
                "direction": "up" if dev["device_type"] == "Generation" else "down",
            }
            posted = self.record.call(
                "prosumer: publish offer",
                (201,),
                lambda: session.post(f"{self.url}/offers", json=body, headers=headers, timeout=30),
            )
            if posted is not None and self.offers[prosumer["aggregator_id"]].qsize() < 50:
                self.offers[prosumer["aggregator_id"]].put({**body, "_id": posted.json()["_id"]})

    def bridge(self, index: int, stop: threading.Event) -> None:
        session, headers = requests.Session(), self.token("service")
        devices = [d for ds in self.devices.values() for d in ds]
        day = 0
        while not stop.is_set():
            dev = devices[(index * 7919 + day) % len(devices)]
            begin = datetime(2030, 1, 1) + timedelta(days=day * 3 + index)  # never the same reading twice
            readings = [
                {
                    "device_id": dev["device_id"],
                    "power_kw": round(random.uniform(0, 3), 3),
                    "timestamp": f"{begin + i * SLOT:{DATE_FORMAT}}",
                }
                for i in range(SLOTS_PER_DAY)
            ]
            self.record.call(
                "bridge: bulk 96 measurements",
                (201,),
                lambda: session.post(f"{self.url}/measurements", json=readings, headers=headers, timeout=60),
            )
            day += 1


def run(
    duration: float = 20.0,
    aggregators: int = 3,
    prosumers: int = 6,
    bridges: int = 2,
    n_prosumers: int = 90,
    with_worker: bool = False,
) -> dict[str, Any]:
    """Run the workload; returns the figures (totals, and per operation)."""
    from registry import create_app, jobs
    from registry.demo import seeding as demo

    instance = tempfile.mkdtemp(prefix="bench-load-")
    app = create_app({"INSTANCE_PATH": instance, "RATE_LIMIT": "1000000 per minute", "JOBS_EMBEDDED_WORKER": False})
    data = demo.build_demo(n_prosumers)
    demo.seed(app, data, measurement_days_count=1, progress=False)
    if with_worker:
        jobs.start_worker(app)
    url, stop_server = serve_quietly(app)
    load = Workload(url, app, data)
    stop = threading.Event()
    by_aggregator = defaultdict(list)
    for p in load.prosumers:
        by_aggregator[p["aggregator_id"]].append(p)
    clients = [
        threading.Thread(target=load.aggregator, args=(agg, stop)) for agg in sorted(by_aggregator)[:aggregators]
    ]
    chosen = [
        by_aggregator[agg][i // len(by_aggregator)]
        for i, agg in zip(range(prosumers), sorted(by_aggregator) * prosumers)
    ]
    clients += [threading.Thread(target=load.prosumer, args=(p, stop)) for p in chosen]
    clients += [threading.Thread(target=load.bridge, args=(i, stop)) for i in range(bridges)]
    started = time.perf_counter()
    for client in clients:
        client.start()
    time.sleep(duration)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    elapsed = time.perf_counter() - started
    stop_server()
    if with_worker:
        jobs.stop_worker(app)
    shutil.rmtree(instance, ignore_errors=True)
    everything = [s for samples in load.record.samples.values() for s in samples]
    return {
        "clients": len(clients),
        "aggregators": aggregators,
        "prosumers": len(chosen),
        "bridges": bridges,
        "seconds": elapsed,
        "requests": len(everything),
        "throughput": len(everything) / elapsed,
        "p50_ms": percentile(everything, 50),
        "p99_ms": percentile(everything, 99),
        "errors": len(load.record.errors),
        "error_samples": load.record.errors[:5],
        "operations": {
            op: {"count": len(s), "p50_ms": percentile(s, 50), "p99_ms": percentile(s, 99)}
            for op, s in sorted(load.record.samples.items())
        },
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['clients']} concurrent clients ({figures['aggregators']} aggregators, "
        f"{figures['prosumers']} prosumers, {figures['bridges']} bridges) for {figures['seconds']:.1f} s",
        f"{'operation':<34}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}",
    ]
    for op, f in figures["operations"].items():
        lines.append(f"{op:<34}{f['count']:>9}{f['p50_ms']:>9.1f}{f['p99_ms']:>9.1f}")
    lines.append(f"{'all':<34}{figures['requests']:>9}{figures['p50_ms']:>9.1f}{figures['p99_ms']:>9.1f}")
    lines.append(f"throughput {figures['throughput']:.1f} requests/s, errors {figures['errors']}")
    lines += [f"  {e}" for e in figures["error_samples"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load (bounded: at most 50)")
    parser.add_argument("--aggregators", type=int, default=3)
    parser.add_argument("--prosumers", type=int, default=6)
    parser.add_argument("--bridges", type=int, default=2)
    parser.add_argument("--with-worker", action="store_true", help="run the embedded job worker meanwhile")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}, "
        f"Python {platform.python_version()}; embedded store, werkzeug threaded server on loopback"
    )
    figures = run(
        min(args.duration, 50.0), args.aggregators, args.prosumers, args.bridges, with_worker=args.with_worker
    )
    print(report(figures))
    raise SystemExit(1 if figures["errors"] else 0)


if __name__ == "__main__":
    main()
