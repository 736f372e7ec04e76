"""Every benchmark in one run, printed as one table with the machine it ran on.

    python -m bench.run_all [--sizes 1000,10000,50000] [--repeat 7] [--forecast-days 112]
                            [--load-seconds 20] [--out bench-results.txt]

* registry: FLEXCoop query and item PATCH latency vs a plain Eve app
  (bench/bench_registry.py), per fleet size, and the PATCH with rate limiting,
  the audit oplog, the revocation look-up and the access log each switched off;
* forecasting: nMAE and cost per series-day of ours, statsforecast MSTL,
  LightGBM and the baselines on measured load and PV that ship in pip
  packages, ours' p10-p90 coverage, device-forecasts per second
  (bench/bench_forecast.py); ``--forecast-days`` caps the target days per series;
* OpenADR bridge: registrations, report registrations and readings per second
  (bench/bench_openadr.py, its own defaults);
* load test: throughput, p50 / p99 and errors of the mixed workload (bench/bench_load.py);
* time series: loading 10,000 devices x 28 days, a week's read, ingestion, forecast
  input, demo seed (bench/bench_timeseries.py), and GET /series over the portfolio
  (bench/bench_series.py), each in its own process;
* clearing: 10,000 bids over 96 slots, pay-as-bid and uniform (bench/bench_clearing.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable

Row = tuple[str, str, str]  # (section, figure, value)


def machine() -> str:
    import numpy as np

    return (
        f"{platform.machine()}, {os.cpu_count()} cpus, {platform.platform()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def registry_rows(sizes: tuple[int, ...], repeat: int) -> list[Row]:
    from bench import bench_registry

    rows = []
    for size, m in bench_registry.run(sizes, repeat).items():
        section = f"registry, {size:,} devices (median ms of {repeat})"
        rows += [
            (section, f"FLEXCoop query with $near ({m['geo_total']} hits)", f"{m['ours_geo']:.1f} ms"),
            (
                section,
                "query without geo: registry / plain Eve",
                f"{m['ours_flat']:.1f} / {m['plain_flat']:.1f} ms = {m['ours_flat'] / m['plain_flat']:.2f}x",
            ),
            (
                section,
                "item PATCH (GET + If-Match): registry / plain Eve",
                f"{m['ours_patch']:.1f} / {m['plain_patch']:.1f} ms = {m['ours_patch'] / m['plain_patch']:.2f}x",
            ),
        ]
    with tempfile.TemporaryDirectory() as instance:
        breakdown = bench_registry.patch_breakdown(sizes[0], repeat, instance)
    section = f"registry, item PATCH at {sizes[0]:,} devices with features switched off (median ms of {repeat})"
    rows += [
        (section, f"off: {off}", f"{ours:.2f} / {plain:.2f} ms = {ours / plain:.2f}x") for off, ours, plain in breakdown
    ]
    return rows


def forecast_rows(days: int) -> list[Row]:
    from bench import bench_forecast as bf

    results = bf.run(days)
    rows = []
    for name, r in results["day-ahead"].items():
        section = f"forecasting, {name}: {r['series'].source}, {r['days']} target days (nMAE %, ms per series-day)"
        for method, f in r["figures"].items():
            rows.append((section, method, f"{f['nmae']:.2f} % ({1000 * f['seconds']:.1f} ms)"))
        ours = r["figures"][bf.OURS]
        coverage = f"{100 * ours['coverage']:.1f} % ({100 * ours['coverage_powered']:.1f} % of slots > 1 % of peak)"
        rows.append((section, "ours: p10-p90 coverage (nominal 80 %)", coverage))
        for method, f in results["horizons"][name].items():
            rows.append((section, f"next 8 h / next 1 h: {method}", f"{f['8 h']:.2f} / {f['1 h']:.2f} %"))
    rows.append(
        ("forecasting", "throughput (1,000 rows of 28 days)", f"{results['throughput']:,.0f} device-forecasts/s")
    )
    return rows


def openadr_rows() -> list[Row]:
    """bench_openadr prints its table (its entry point is main()); the rows are read from it."""
    from bench import bench_openadr

    if hasattr(bench_openadr, "run"):  # a figures-returning entry point, if it gains one
        with contextlib.redirect_stdout(io.StringIO()):
            figures = bench_openadr.run()
        if isinstance(figures, dict):
            return [("OpenADR bridge", str(k), str(v)) for k, v in figures.items()]
    printed = io.StringIO()
    argv, sys.argv = sys.argv, ["bench_openadr"]
    try:
        with contextlib.redirect_stdout(printed):
            bench_openadr.main()
    finally:
        sys.argv = argv
    return parse_openadr(printed.getvalue())


def parse_openadr(text: str) -> list[Row]:
    heading = next((line for line in text.splitlines() if line.startswith("OpenADR bridge bench")), "")
    section = "OpenADR bridge" + (f" ({heading.split('—', 1)[1].strip()})" if "—" in heading else "")
    rows = []
    for line in text.splitlines():
        match = re.match(r"^(.+?)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$", line)
        if match:
            label, count, seconds, rate = match.groups()
            rows.append((section, label.strip(), f"{float(rate):,.1f}/s ({count} in {seconds} s)"))
    rows += [(section, "warning", line) for line in text.splitlines() if line.startswith("WARNING")]
    return rows or [(section, "no figures", text.strip()[-200:] or "(no output)")]


def load_rows(seconds: float) -> list[Row]:
    from bench import bench_load

    f = bench_load.run(seconds)
    section = (
        f"load test ({f['clients']} clients: {f['aggregators']} aggregators, {f['prosumers']} prosumers, "
        f"{f['bridges']} bridges; {f['seconds']:.0f} s)"
    )
    rows = [
        (section, "throughput", f"{f['throughput']:.1f} requests/s ({f['requests']} requests)"),
        (section, "latency p50 / p99, all requests", f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms"),
        (section, "errors", str(f["errors"])),
    ]
    rows += [
        (section, f"p50 / p99 {op}", f"{o['p50_ms']:.1f} / {o['p99_ms']:.1f} ms") for op, o in f["operations"].items()
    ]
    return rows


def render(rows: list[Row], header: str) -> str:
    width = max(len(figure) for _, figure, _ in rows) + 2
    lines, section = [header, ""], None
    for sec, figure, value in rows:
        if sec != section:
            lines += ["", sec] if section is not None else [sec]
            section = sec
        lines.append(f"  {figure:<{width}}{value}")
    return "\n".join(lines)


def printed_rows(module: str, section: str, *args: str) -> list[Row]:
    """A bench that prints "label   figure" lines (bench_timeseries, bench_series), run in
    its own process so its fleet and memory figures start from nothing."""
    import re
    import subprocess

    ran = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=3600, check=True
    )
    found = (re.match(r"^(\S.*?)\s{2,}(\S.*)$", line.rstrip()) for line in ran.stdout.splitlines())
    return [(section, m.group(1).strip(), m.group(2).strip()) for m in found if m]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="fleet sizes of the registry bench")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--forecast-days", type=int, default=112, help="target days per series of the forecast bench")
    parser.add_argument("--load-seconds", type=float, default=20.0)
    parser.add_argument(
        "--skip", default="", help="comma-separated: registry,forecast,openadr,load,timeseries,series,clearing"
    )
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    parts: list[tuple[str, Callable[[], list[Row]]]] = [
        ("registry", lambda: registry_rows(tuple(int(s) for s in args.sizes.split(",")), args.repeat)),
        ("forecast", lambda: forecast_rows(args.forecast_days)),
        ("openadr", openadr_rows),
        ("load", lambda: load_rows(min(args.load_seconds, 50.0))),
        ("timeseries", lambda: printed_rows("bench.bench_timeseries", "time series (10,000 devices x 28 days)")),
        ("series", lambda: printed_rows("bench.bench_series", "aggregated series (10,000 devices, 7 days)")),
        ("clearing", lambda: printed_rows("bench.bench_clearing", "clearing a flexibility request")),
    ]
    began, rows = time.perf_counter(), []
    for name, part in parts:
        if name in skip:
            continue
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows += part()
        except Exception as exc:
            rows.append((name, "FAILED", f"{type(exc).__name__}: {exc}"))
        print(f"  {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    header = (
        f"DER Registry benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"machine: {machine()}\nembedded store (mongomock); total {time.perf_counter() - began:.0f} s"
    )
    table = render(rows, header)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(table + "\n")
    return 1 if any(figure in ("FAILED", "warning") for _, figure, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
