"""API documents as chart series and timelines. Pure functions.

Charts take ``{"x": [epoch seconds], "series": [{"label", "values", …}],
"band": [lower, upper] | None}``, which ``charts.js`` hands to uPlot.
Forecast and advice documents are read tolerantly: the forecasting and
advisor workers own their exact shapes, and a missing part renders as an
empty state rather than an error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from registry.admin_ui.queries import epoch, parse_api_time
from schemas.vocabulary import SLOT_SECONDS, TAG_WORDS


def measurement_chart(measurements: list[dict[str, Any]]) -> dict[str, Any] | None:
    points = sorted(
        (t, m["power_kw"])
        for m in measurements
        if (t := epoch(m.get("timestamp"))) is not None and _finite(m.get("power_kw"))
    )
    if not points:
        return None
    return {
        "x": [t for t, _ in points],
        "unit": "kW",
        "band": None,
        "series": [{"label": "measured power (kW)", "values": [v for _, v in points]}],
    }


def forecast_chart(forecast: dict[str, Any]) -> dict[str, Any] | None:
    """The forecast's values, with its outermost quantiles as a band."""
    values = forecast.get("values")
    start = epoch(forecast.get("start"))
    if not isinstance(values, list) or not values or start is None:
        return None
    step = _step(forecast.get("resolution"))
    x = [start + i * step for i in range(len(values))]
    series = [{"label": f"{forecast.get('kind', 'forecast')} (kW)", "values": _gaps(values)}]
    band = None
    low, high = outer_quantiles(forecast.get("quantiles"), len(values))
    if low and high:
        series = [
            {"label": low[0], "values": _gaps(low[1]), "dash": True},
            {"label": high[0], "values": _gaps(high[1]), "dash": True},
        ] + series
        band = [0, 1]
    return {"x": x, "unit": "kW", "series": series, "band": band}


def outer_quantiles(quantiles: Any, length: int) -> tuple[tuple[str, list] | None, tuple[str, list] | None]:
    """The lowest and highest quantile series, from ``{"p10": [...]}`` or
    ``[{"q": 0.1, "values": [...]}]``; (None, None) when there are fewer than two."""
    found: list[tuple[float, str, list]] = []
    if isinstance(quantiles, dict):
        for key, values in quantiles.items():
            level = _level(key)
            if level is not None and isinstance(values, list) and len(values) == length:
                found.append((level, str(key), values))
    elif isinstance(quantiles, list):
        for entry in quantiles:
            if isinstance(entry, dict) and isinstance(entry.get("values"), list):
                level = _level(entry.get("q", entry.get("quantile")))
                if level is not None and len(entry["values"]) == length:
                    found.append((level, f"p{round(level * 100)}", entry["values"]))
    if len(found) < 2:
        return None, None
    found.sort(key=lambda item: item[0])
    return (found[0][1], found[0][2]), (found[-1][1], found[-1][2])


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _gaps(values: list[Any]) -> list[Any]:
    """Anything but a finite number becomes a gap (null): NaN would make the
    page's JSON unreadable and the chart blank."""
    return [v if _finite(v) else None for v in values]


def _step(resolution: Any) -> int:
    """Seconds per value: a positive whole number of at most a day, else 15 minutes."""
    if _finite(resolution) and 0 < resolution <= 86400:
        return int(resolution)
    return SLOT_SECONDS


def _level(key: Any) -> float | None:
    if _finite(key):
        return float(key) if key < 1 else float(key) / 100
    match = re.fullmatch(r"[pPqQ]?(\d+(?:\.\d+)?)", str(key))
    if not match:
        return None
    number = float(match.group(1))
    return number if number < 1 else number / 100


@dataclass(frozen=True)
class Slot:
    """One cell of the prosumer's advice timeline."""

    time: str
    tag: int
    code: str
    message: str

    @property
    def words(self) -> str:
        return self.message or TAG_WORDS.get(self.tag, "")


def advice_timeline(advice: dict[str, Any]) -> list[Slot]:
    """Per-slot tags 1–5 from ``slots: [{tag, code, message}]`` or ``tags: [..]``."""
    start = parse_api_time(advice.get("start"))
    step = _step(advice.get("resolution"))
    raw = advice.get("slots")
    if not isinstance(raw, list):
        tags, codes = advice.get("tags"), advice.get("codes")
        codes = codes if isinstance(codes, list) else []
        raw = (
            [{"tag": t, "code": codes[i] if i < len(codes) else ""} for i, t in enumerate(tags)]
            if isinstance(tags, list)
            else []
        )
    slots = []
    for i, entry in enumerate(raw):
        entry = entry if isinstance(entry, dict) else {"tag": entry}
        tag = entry.get("tag")
        if not isinstance(tag, int) or not 1 <= tag <= 5:
            continue
        moment = parse_api_time(entry.get("start")) or (start + timedelta(seconds=i * step) if start else None)
        slots.append(
            Slot(
                moment.strftime("%H:%M") if moment else str(i),
                tag,
                str(entry.get("code") or ""),
                str(entry.get("message") or ""),
            )
        )
    return slots


def recommended_devices(advice: dict[str, Any]) -> list[dict[str, Any]]:
    """The aggregator advice's device set, whatever the list is called."""
    for key in ("devices", "recommendations", "recommended", "items"):
        value = advice.get(key)
        if isinstance(value, list):
            return [v if isinstance(v, dict) else {"device_id": v} for v in value]
    return []
