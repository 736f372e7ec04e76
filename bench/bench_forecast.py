"""Day-ahead forecast accuracy, calibration and cost on measured data the model never saw.

The data (bench/forecast_data.py) ships inside pip packages: England & Wales
demand (pmdarima), two measured PV systems (pvanalytics). The same protocol
for every method: 28 days of history, issued at 00:00 of the target day, the
96 values of the day scored (15 minutes; half-hourly data repeated per
quarter-hour). Methods:

* ours — registry.forecast.model.forecast_day_ahead, one vectorised call per
  weekday over all of a series' target days (the "fleet call": each target
  day is one row, as each device is in a job);
* statsforecast MSTL (seasons 1 d and 7 d) with an AutoETS trend, per series-day;
* LightGBM on lags 1 d and 7 d, slot of day and weekday, fitted per series-day;
* the demand-response baselines of registry/forecast/baselines.py.

Then intraday and hour-ahead forecasts (bench/forecast_horizons.py) on the same days.

nMAE = sum of absolute errors / sum of absolute actuals over all target days;
cost = wall time per series-day (one CPU, after a warm-up call); coverage =
share of actuals inside ours' p10-p90 band (nominal 80 %), over all slots and
over the slots with more than 1 % of the series' peak (for PV: daylight; at
night a band of 0 to 0 around a 0 reading counts as covered).

    python -m bench.bench_forecast [--days 112]     (bench-only packages: requirements-dev.txt)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from bench import forecast_horizons as horizons
from bench.forecast_data import SLOTS, Series, datasets, target_days
from registry.forecast import baselines
from registry.forecast import model as fc

OURS = "ours (fleet call)"
MSTL = "statsforecast MSTL + AutoETS"
LGBM = "LightGBM on lags 1 d, 7 d, slot, weekday"
BASELINES = ("10 of 10", "high 5 of 10", "seasonal naive (7 d)", "yesterday naive")
METHODS = (OURS, MSTL, LGBM) + BASELINES
THROUGHPUT_DEVICES = 1000


def _midnight(series: Series, target: int) -> datetime:
    day = series.day(target)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def ours(series: Series, targets: list[int]) -> dict[str, np.ndarray]:
    """p50 / p10 / p90 (n_targets, 96): one call per weekday, every target day a row."""
    out = {band: np.zeros((len(targets), SLOTS)) for band in ("p50", "p10", "p90")}
    by_weekday: dict[int, list[int]] = defaultdict(list)
    for i, target in enumerate(targets):
        by_weekday[series.day(target).weekday()].append(i)
    for rows in by_weekday.values():
        history = np.stack([series.window(targets[i])[0] for i in rows])
        result = fc.forecast_day_ahead(history, _midnight(series, targets[rows[0]]))
        for band in out:
            out[band][rows] = getattr(result, band)
    return out


def _filled(history: np.ndarray) -> np.ndarray:
    """Gaps filled from a week, then a day, earlier (MSTL needs a complete series)."""
    y = history.copy()
    for lag in (7 * SLOTS, SLOTS, 7 * SLOTS, SLOTS):
        gap = np.flatnonzero(np.isnan(y))
        gap = gap[gap >= lag]
        y[gap] = y[gap - lag]
    return np.where(np.isnan(y), np.nanmean(y), y)


def mstl(history: np.ndarray, _: datetime) -> np.ndarray:
    from statsforecast.models import MSTL, AutoETS

    model = MSTL(season_length=[SLOTS, 7 * SLOTS], trend_forecaster=AutoETS(model="ZZN"))
    return np.asarray(model.forecast(y=_filled(history), h=SLOTS)["mean"])


def lightgbm(history: np.ndarray, target: datetime) -> np.ndarray:
    import lightgbm as lgb

    n = history.size
    weekday = (target.weekday() - (n - np.arange(n + SLOTS) - 1) // SLOTS - 1) % 7

    def features(at: np.ndarray) -> np.ndarray:
        y = np.concatenate([history, np.full(SLOTS, np.nan)])
        return np.column_stack([y[at - SLOTS], y[at - 7 * SLOTS], at % SLOTS, weekday[at]])

    train = np.arange(7 * SLOTS, n)
    train = train[~np.isnan(history[train])]
    model = lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=31, n_jobs=1, verbose=-1)
    model.fit(features(train), history[train])
    return model.predict(features(np.arange(n, n + SLOTS)))


def baseline(name: str) -> Callable[[np.ndarray, datetime], np.ndarray]:
    def forecast(history: np.ndarray, target: datetime) -> np.ndarray:
        row = _filled(history)[None, :]  # as MSTL and LightGBM get it
        return {
            "10 of 10": lambda: baselines.x_of_y_baseline(row, 10, 10, target_day=target),
            "high 5 of 10": lambda: baselines.high_x_of_y(row, 5, 10, target_day=target),
            "seasonal naive (7 d)": lambda: baselines.seasonal_naive(row),
            "yesterday naive": lambda: baselines.yesterday_naive(row),
        }[name]()[0]

    return forecast


def per_day(method: Callable, series: Series, targets: list[int]) -> tuple[np.ndarray, float]:
    """Forecasts (n_targets, 96) one series-day at a time, and seconds per series-day."""
    method(series.window(targets[0])[0], _midnight(series, targets[0]))  # warm-up (numba, imports)
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.stack([method(series.window(t)[0], _midnight(series, t)) for t in targets])
    return out, (time.perf_counter() - began) / len(targets)


def evaluate(series: Series, targets: list[int], skip: set[str]) -> dict[str, dict]:
    """Per method: nMAE %, seconds per series-day; ours also its coverage."""
    actual = np.stack([series.window(t)[1] for t in targets])
    scale = np.abs(actual).sum()
    ours(series, targets[:7])  # warm-up
    began = time.perf_counter()
    bands = ours(series, targets)
    figures = {OURS: {"forecast": bands["p50"], "seconds": (time.perf_counter() - began) / len(targets)}}
    inside = (actual >= bands["p10"]) & (actual <= bands["p90"])
    powered = np.abs(actual) > 0.01 * np.abs(actual).max()  # PV: daylight
    figures[OURS]["coverage"] = float(inside.mean())
    figures[OURS]["coverage_powered"] = float(inside[powered].mean())
    others = {MSTL: mstl, LGBM: lightgbm, **{name: baseline(name) for name in BASELINES}}
    for name, method in others.items():
        if name not in skip:
            forecast, seconds = per_day(method, series, targets)
            figures[name] = {"forecast": forecast, "seconds": seconds}
    for f in figures.values():
        f["nmae"] = 100 * float(np.abs(f.pop("forecast") - actual).sum() / scale)
    return figures


def throughput(series: Series) -> float:
    """Device-forecasts per second for THROUGHPUT_DEVICES rows of 28 days (min of 5 runs)."""
    targets = target_days(series, 7)
    rows = np.stack([series.window(targets[i % len(targets)])[0] for i in range(THROUGHPUT_DEVICES)])
    issued = _midnight(series, targets[0])
    runs = []
    for _ in range(5):
        began = time.perf_counter()
        fc.forecast_day_ahead(rows, issued)
        runs.append(time.perf_counter() - began)
    return THROUGHPUT_DEVICES / min(runs)


def run(days: int = 112, skip: frozenset[str] = frozenset()) -> dict:
    """The bench's figures: day-ahead per dataset, intraday and hour-ahead, throughput (bench/run_all.py)."""
    results: dict = {"day-ahead": {}, "horizons": {}}
    for series in datasets():
        targets = target_days(series, days)
        figures = evaluate(series, targets, skip)
        results["day-ahead"][series.name] = {"series": series, "days": len(targets), "figures": figures}
        results["horizons"][series.name] = horizons.evaluate(series, days, _midnight)
    results["throughput"] = throughput(datasets()[0])
    return results


def table(results: dict) -> str:
    """The day-ahead comparison: nMAE and cost per method and dataset, ours' coverage."""
    names = list(results)
    head = f"{'nMAE % (cost ms per series-day)':<44}" + "".join(f"{n:>20}" for n in names)
    lines = [head, "-" * len(head)]
    for method in METHODS:
        cells = []
        for n in names:
            f = results[n]["figures"].get(method)
            cells.append(f"{f['nmae']:>11.2f} ({1000 * f['seconds']:>5.1f})" if f else f"{'-':>20}")
        lines.append(f"{method:<44}" + "".join(f"{c:>20}" for c in cells))
    for key, label in (("coverage", "all slots"), ("coverage_powered", "slots > 1 % of peak")):
        coverage = "".join(f"{100 * results[n]['figures'][OURS][key]:>19.1f}%" for n in names)
        lines.append(f"{'ours: p10-p90 coverage, ' + label:<44}" + coverage)
    lines.append(f"{'target days':<44}" + "".join(f"{results[n]['days']:>20}" for n in names))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=112, help="at most this many target days per series")
    parser.add_argument("--skip", default="", help="comma-separated method names to leave out")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cpu, {platform.platform()}, python {platform.python_version()}")
    began = time.perf_counter()
    results = run(args.days, frozenset(s for s in args.skip.split(",") if s))
    for name, r in results["day-ahead"].items():
        print(f"{name}: {r['series'].source}, {r['series'].first_day} + {r['series'].n_days} days")
    print("\nday-ahead, issued at 00:00 for the 96 slots of the day")
    print(table(results["day-ahead"]))
    print("\nintraday (next 8 h) and hour-ahead (next 1 h), from the day's readings up to the issue")
    print(horizons.table(results["horizons"]))
    print(
        f"\nthroughput: {results['throughput']:,.0f} device-forecasts/s ({THROUGHPUT_DEVICES} rows of 28 days, load A)"
    )
    print(f"bench time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
