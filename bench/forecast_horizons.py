"""Intraday (next 8 hours) and hour-ahead accuracy on the forecast bench's measured series.

Issued at ISSUE_HOURS of every target day with 28 days of history and the
day's readings up to the issue time; scored on the 32 slots after it
(intraday) and the first 4 (hour-ahead). Compared: ours intraday
(registry/forecast/intraday.py), ours day-ahead for the same slots (issued at
00:00, no morning readings) and persistence (the last reading held).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta

import numpy as np

from bench.forecast_data import SLOTS, Series, target_days
from registry.forecast import intraday
from registry.forecast import model as fc

ISSUE_HOURS = (4, 8, 12, 16)
METHODS = ("ours intraday", "ours day-ahead (00:00)", "persistence")


def evaluate(series: Series, days: int, midnight) -> dict[str, dict[str, float]]:
    """Per method: nMAE % over the 8 hours and over the first hour; ours' cost per forecast."""
    targets = target_days(series, days)
    by_weekday: dict[int, list[int]] = defaultdict(list)
    for target in targets:
        by_weekday[series.day(target).weekday()].append(target)
    errors = {m: {"8 h": [0.0, 0.0], "1 h": [0.0, 0.0]} for m in METHODS}
    seconds, count = 0.0, 0
    for group in by_weekday.values():
        windows = [series.window(t) for t in group]
        history = np.stack([np.concatenate([h, a]) for h, a in windows])
        actual = np.stack([a for _, a in windows])
        day = midnight(series, group[0])
        ahead = fc.forecast_day_ahead(history[:, :-SLOTS], day).p50
        for hour in ISSUE_HOURS:
            first = 4 * hour
            began = time.perf_counter()
            ours = intraday.forecast_intraday(history, day + timedelta(hours=hour)).p50
            seconds, count = seconds + time.perf_counter() - began, count + len(group)
            last = history[:, SLOTS * 28 + first - 1][:, None]
            truth = actual[:, first : first + intraday.INTRADAY_SLOTS]
            forecasts = {
                "ours intraday": ours,
                "ours day-ahead (00:00)": ahead[:, first : first + intraday.INTRADAY_SLOTS],
                "persistence": np.repeat(np.nan_to_num(last), intraday.INTRADAY_SLOTS, axis=1),
            }
            for method, values in forecasts.items():
                for label, width in (("8 h", intraday.INTRADAY_SLOTS), ("1 h", intraday.HOUR_AHEAD_SLOTS)):
                    errors[method][label][0] += np.abs(values[:, :width] - truth[:, :width]).sum()
                    errors[method][label][1] += np.abs(truth[:, :width]).sum()
    out = {m: {k: 100 * e / s for k, (e, s) in v.items()} for m, v in errors.items()}
    out["ours intraday"]["ms"] = 1000 * seconds / count
    return out


def table(figures: dict[str, dict]) -> str:
    names = list(figures)
    head = f"{'nMAE %: next 8 h / next 1 h':<44}" + "".join(f"{n:>20}" for n in names)
    lines = [head, "-" * len(head)]
    for method in METHODS:
        cells = "".join(f"{figures[n][method]['8 h']:>11.2f} / {figures[n][method]['1 h']:>5.2f}" for n in names)
        lines.append(f"{method:<44}{cells}")
    cost = "".join(f"{figures[n]['ours intraday']['ms']:>17.2f} ms" for n in names)
    lines.append(f"{'ours intraday: cost per series-forecast':<44}{cost}")
    lines.append(f"issued at {', '.join(f'{h:02d}:00' for h in ISSUE_HOURS)} of every target day")
    return "\n".join(lines)
