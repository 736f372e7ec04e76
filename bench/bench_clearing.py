"""Clearing a flexibility request at gate closure (docs/market.md, "Clearing").

    python -m bench.bench_clearing [--bids 10000] [--slots 96] [--repeat 5]

Random bids (prices 0..0.5 per kWh, 0..20 kW per slot, granularity 0.1..2 kW, one to
three devices each out of 20,000) against a request for about a third of what they
offer together; prints the median time of :func:`registry.market.clearing.clear`,
pay-as-bid and uniform, and how many bids won.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from registry.market.clearing import Bid, clear


def random_bids(count: int, slots: int, seed: int = 17) -> tuple[list[float], list[Bid]]:
    rng = np.random.default_rng(seed)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    bids = [
        Bid(
            f"bid-{i}",
            float(rng.uniform(0, 0.5)),
            tuple(np.round(rng.uniform(0, 20, slots), 3).tolist()),
            float(rng.uniform(0.1, 2)),
            start + timedelta(seconds=int(rng.integers(0, 86_400))),
            tuple(f"dev-{d}" for d in rng.choice(20_000, size=int(rng.integers(1, 4)), replace=False)),
        )
        for i in range(count)
    ]
    offered = np.sum([b.power_kw for b in bids], axis=0)
    return (offered / 3).tolist(), bids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bids", type=int, default=10_000)
    parser.add_argument("--slots", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    requested, bids = random_bids(args.bids, args.slots)
    for pricing in ("pay_as_bid", "uniform"):
        times, won = [], 0
        for _ in range(args.repeat):
            began = time.perf_counter()
            awards = clear(requested, 0.4, bids, pricing)
            times.append(time.perf_counter() - began)
            won = sum(a.accepted for a in awards)
        label = f"clear {args.bids} bids x {args.slots} slots, {pricing}"
        print(f"{label}  {statistics.median(times) * 1000:.0f} ms ({won} bids won)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
