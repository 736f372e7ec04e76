"""Aggregated series on the embedded store (docs/timeseries.md, "Aggregated series").

    python -m bench.bench_series [--devices 10000] [--days 7] [--repeat 7]

Loads one aggregator's portfolio of N devices with D days of 15-minute readings
(about 2 % of the readings missing) and N day-ahead consumption forecasts, then prints
one table of ``GET /series`` through the API with the aggregator's token (median of
``--repeat``):

* the portfolio over one day at 15 min, 1 h and 1 d (target, issue 15: 10,000 devices,
  one day at 15 min, ≤ 500 ms);
* the portfolio over the D days at 1 h;
* a circle of 50 km (about three quarters of the portfolio), one day at 15 min;
* the forecast of the portfolio (p50 sum, p10 / p90 of the sum), one day at 15 min.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bench.bench_timeseries import store_fleet
from registry import create_app
from registry.auth import mint_token
from registry.store.embedded import bulk_insert
from schemas.vocabulary import DATE_FORMAT, SLOTS_PER_DAY

END = datetime(2030, 2, 1, tzinfo=UTC)
AGGREGATOR = "agg-bench"


def portfolio(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(2)
    return [
        {
            "device_id": str(uuid.UUID(int=10**9 + i)),
            "account_id": str(uuid.UUID(int=i + 1)),
            "aggregator_id": AGGREGATOR,
            "device_name": f"bench {i}",
            "location": {"type": "Point", "coordinates": [float(rng.uniform(2, 3)), float(rng.uniform(41, 42))]},
        }
        for i in range(n)
    ]


def load(app: Any, devices: list[dict[str, Any]], days: int) -> float:
    rng = np.random.default_rng(1)
    started = time.perf_counter()
    with app.app_context():
        db = app.data.driver.db
        store_fleet(db, devices, END - timedelta(days=days), days, rng, missing=0.02)
        p50 = np.round(rng.gamma(4.0, 0.25, (len(devices), SLOTS_PER_DAY)), 3)
        forecasts = [
            {
                "device_id": dev["device_id"],
                "kind": "consumption",
                "issued_at": END - timedelta(hours=12),
                "start": END,
                "resolution": 900,
                "values": row.tolist(),
                "quantiles": {"p10": (row * 0.7).round(3).tolist(), "p90": (row * 1.3).round(3).tolist()},
            }
            for dev, row in zip(devices, p50)
        ]
        bulk_insert(db["forecasts"], forecasts)
    return time.perf_counter() - started


def timed(client: Any, headers: dict[str, str], params: dict[str, str], repeat: int) -> tuple[float, int]:
    times, points = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get("/series", query_string=params, headers=headers)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        points = len(response.get_json()["points"])
    return statistics.median(times), points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    day = {"start": (END - timedelta(days=1)).strftime(DATE_FORMAT), "end": END.strftime(DATE_FORMAT)}
    week = {"start": (END - timedelta(days=args.days)).strftime(DATE_FORMAT), "end": END.strftime(DATE_FORMAT)}
    ahead = {"start": END.strftime(DATE_FORMAT), "end": (END + timedelta(days=1)).strftime(DATE_FORMAT)}
    mine = {"aggregator_id": AGGREGATOR}
    cases = [
        ("portfolio, one day at 15 min (target <= 500 ms)", {**mine, **day}),
        ("portfolio, one day at 1 h, agg=mean", {**mine, **day, "resolution": "1h", "agg": "mean"}),
        ("portfolio, one day at 1 d, agg=max", {**mine, **day, "resolution": "1d", "agg": "max"}),
        (f"portfolio, {args.days} days at 1 h", {**mine, **week, "resolution": "1h"}),
        ("circle of 50 km, one day at 15 min", {**day, "near": "2.5,41.5", "radius_m": "50000"}),
        ("forecast of the portfolio, one day at 15 min", {**mine, **ahead, "kind": "forecast"}),
    ]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"INSTANCE_PATH": folder, "TESTING": True, "RATE_LIMIT": "1000000 per minute"})
        took = load(app, portfolio(args.devices), args.days)
        rows.append((f"load {args.devices:,} devices x {args.days} days + forecasts", f"{took:.1f} s"))
        with app.app_context():
            config = app.config
            token = mint_token(
                config["INSTANCE_PATH"], config["OAUTH_ISSUER"], config["OAUTH_AUDIENCE"], "aggregator", AGGREGATOR
            )
        client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
        for name, params in cases:
            median, points = timed(client, headers, params, args.repeat)
            rows.append((f"GET /series: {name} ({points} points)", f"{median * 1000:.0f} ms"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
