"""Advice documents built from forecasts: pure functions, no store access.

Prosumer advice tags every 15-minute slot of a day from 1 (consumption
strongly recommended) to 5 (consumption forbidden), ReDREAM Prosumer Advisor
style, with a machine-readable code and a short message. Aggregator advice
picks the devices that should be contracted to reach a flexibility target.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from registry.forecast.timeseries import iso
from registry.store.clock import as_utc
from registry.store.geo import haversine_m
from schemas.vocabulary import SLOT_SECONDS

MESSAGES = {
    "LOW_PRICE": "Among the cheapest slots of the day: a good time to consume.",
    "BELOW_MEDIAN_PRICE": "Price below the day's median.",
    "ABOVE_MEDIAN_PRICE": "Price above the day's median: consume only if needed.",
    "HIGH_PRICE": "Among the most expensive slots of the day: shift consumption if you can.",
    "FLAT_PRICE": "The price is the same all day.",
    "NO_PRICE": "No price is known for this slot.",
    "NEAR_POWER_LIMIT": "Expected peak is close to your contracted power.",
    "OVER_POWER_LIMIT": "Expected peak would exceed your contracted power.",
    "DR_EVENT": "Demand-response event: keep consumption low.",
}
# When two rules give the same tag, the first code in this order is reported.
PRIORITY = (
    "OVER_POWER_LIMIT",
    "DR_EVENT",
    "NEAR_POWER_LIMIT",
    "NO_PRICE",
    "HIGH_PRICE",
    "ABOVE_MEDIAN_PRICE",
    "FLAT_PRICE",
    "BELOW_MEDIAN_PRICE",
    "LOW_PRICE",
)
NEAR_LIMIT_FRACTION = 0.9


# --- prosumer advice -----------------------------------------------------------


def price_tags(prices: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Tags and codes from the day's own price quartiles.

    <= 1st quartile: 1 LOW_PRICE; <= median: 2 BELOW_MEDIAN_PRICE; <= 3rd
    quartile: 3 ABOVE_MEDIAN_PRICE; above: 4 HIGH_PRICE. A flat curve is
    2 FLAT_PRICE everywhere; a missing price is 3 NO_PRICE.
    """
    p = np.array([np.nan if v is None else v for v in prices], dtype=float)
    known = ~np.isnan(p)
    tags, codes = np.full(p.size, 3), np.full(p.size, "NO_PRICE", dtype=object)
    if not known.any():
        return tags, codes
    if np.ptp(p[known]) <= 1e-9 * max(1.0, float(np.abs(p[known]).max())):
        tags[known], codes[known] = 2, "FLAT_PRICE"
        return tags, codes
    q25, q50, q75 = np.percentile(p[known], [25, 50, 75])
    bands = [p <= q25, p <= q50, p <= q75]
    tags[known] = np.select(bands, [1, 2, 3], 4)[known]
    codes[known] = np.select(bands, ["LOW_PRICE", "BELOW_MEDIAN_PRICE", "ABOVE_MEDIAN_PRICE"], "HIGH_PRICE")[known]
    return tags, codes


def power_limit_tags(
    p50: Sequence[float], p90: Sequence[float], max_power_kw: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """5 OVER_POWER_LIMIT where p50 or p90 exceeds the contracted power, 4
    NEAR_POWER_LIMIT where p90 reaches 90 % of it; 0 (no opinion) elsewhere."""
    peak = np.fmax(np.asarray(p50, dtype=float), np.asarray(p90, dtype=float))
    tags, codes = np.zeros(peak.size, int), np.full(peak.size, "", dtype=object)
    if max_power_kw is None or max_power_kw <= 0:
        return tags, codes
    near, over = peak >= NEAR_LIMIT_FRACTION * max_power_kw, peak > max_power_kw
    tags[near], codes[near] = 4, "NEAR_POWER_LIMIT"
    tags[over], codes[over] = 5, "OVER_POWER_LIMIT"
    return tags, codes


def dr_event_tags(
    slot_starts: Sequence[datetime], dr_events: Iterable[dict], resolution: int = SLOT_SECONDS
) -> tuple[np.ndarray, np.ndarray]:
    """Slots overlapping a "down" demand-response contract: 5 DR_EVENT while
    it is active, 4 DR_EVENT when it is only accepted (upcoming)."""
    tags = np.zeros(len(slot_starts), int)
    step = timedelta(seconds=resolution)
    for event in dr_events:
        if event.get("direction", "down") != "down":
            continue
        begin, end = as_utc(event["start"]), as_utc(event["end"])
        level = 5 if event.get("status") == "active" else 4
        hit = np.array([s < end and s + step > begin for s in slot_starts], dtype=bool)
        tags[hit] = np.maximum(tags[hit], level)
    return tags, np.where(tags > 0, "DR_EVENT", "").astype(object)


def combine_tags(*rules: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per slot, the highest tag of all rules; ties go to the PRIORITY order."""
    tags = np.stack([t for t, _ in rules])
    rank = np.stack([[len(PRIORITY) - PRIORITY.index(c) if c else 0 for c in codes] for _, codes in rules])
    best = np.argmax(tags * (len(PRIORITY) + 1) + rank, axis=0)
    columns = np.arange(tags.shape[1])
    codes = np.stack([c for _, c in rules])
    return tags[best, columns], codes[best, columns]


def prosumer_advice(
    account_id: str,
    start: datetime | str,
    prices: Sequence[float | None],
    p50: Sequence[float],
    p90: Sequence[float],
    max_power_kw: float | None,
    dr_events: Iterable[dict] = (),
    device_id: str | None = None,
    issued_at: datetime | str | None = None,
    resolution: int = SLOT_SECONDS,
) -> dict[str, Any]:
    """An `advice` document of kind "prosumer": one tagged entry per slot."""
    first = as_utc(start)
    slot_starts = [first + timedelta(seconds=resolution * i) for i in range(len(p50))]
    if len(prices) != len(slot_starts) or len(p90) != len(slot_starts):
        raise ValueError("prices, p50 and p90 must have one value per slot")
    tags, codes = combine_tags(
        price_tags(prices), power_limit_tags(p50, p90, max_power_kw), dr_event_tags(slot_starts, dr_events, resolution)
    )
    slots = [
        {"start": iso(s), "tag": int(t), "code": str(c), "message": MESSAGES[c]}
        for s, t, c in zip(slot_starts, tags, codes)
    ]
    document = {
        "kind": "prosumer",
        "account_id": account_id,
        "issued_at": iso(as_utc(issued_at) if issued_at else datetime.now(first.tzinfo)),
        "start": iso(first),
        "resolution": resolution,
        "slots": slots,
    }
    if device_id is not None:
        document["device_id"] = device_id
    return document


# --- aggregator advice ---------------------------------------------------------


def haversine_km(a: Sequence[float], b: Sequence[float]) -> float:
    """Great-circle distance between two [lon, lat] points in km (on the mean Earth radius)."""
    return haversine_m((a[0], a[1]), (b[0], b[1])) / 1000


def window_delivery(forecast: dict, start: datetime, end: datetime) -> tuple[float, float]:
    """(expected, firm) kW a flexibility forecast can hold over [start, end).

    expected = min over the window of the p50 values; firm = min of p10
    (p50 when there are no quantiles). (0, 0) when the forecast does not
    cover the whole window.
    """
    first, step = as_utc(forecast["start"]), forecast.get("resolution", SLOT_SECONDS)
    lo = math.floor((start - first).total_seconds() / step)
    hi = math.ceil((end - first).total_seconds() / step)
    values = forecast.get("values") or []
    if lo < 0 or hi > len(values) or hi <= lo:
        return 0.0, 0.0
    low = (forecast.get("quantiles") or {}).get("p10") or values
    expected = max(0.0, min(values[lo:hi]))
    return expected, min(expected, max(0.0, min(low[lo:hi])))


def _overlaps(windows: Iterable[dict], start: datetime, end: datetime) -> bool:
    return any(as_utc(w["start"]) < end and as_utc(w["end"]) > start for w in windows)


def _in_radius(device: dict, point: Sequence[float] | None, radius_km: float | None) -> bool:
    if point is None or radius_km is None:
        return True
    coordinates = (device.get("location") or {}).get("coordinates")
    return coordinates is not None and haversine_km(coordinates, point) <= radius_km


def rank_candidates(
    candidates: Iterable[dict],
    start: datetime,
    end: datetime,
    direction: str,
    point: Sequence[float] | None = None,
    radius_km: float | None = None,
) -> list[dict]:
    """Eligible devices with expected_kw and confidence, best first.

    Eligible: marketplace_availability "yes", no contracted window overlapping
    [start, end), inside the radius (when given) and a positive expected
    delivery. Best first = highest firm kW (expected x confidence), then
    highest confidence, then device_id for a stable order.
    """
    ranked = []
    for device in candidates:
        if (
            device.get("marketplace_availability") != "yes"
            or _overlaps(device.get("contracted") or (), start, end)
            or not _in_radius(device, point, radius_km)
        ):
            continue
        forecast = (device.get("flexibility") or {}).get(direction)
        expected, firm = window_delivery(forecast, start, end) if forecast else (0.0, 0.0)
        if expected > 0:
            ranked.append({"device_id": device["device_id"], "expected_kw": expected, "confidence": firm / expected})
    return sorted(ranked, key=lambda d: (-d["expected_kw"] * d["confidence"], -d["confidence"], d["device_id"]))


def aggregator_advice(
    aggregator_id: str,
    target_kw: float,
    start: datetime | str,
    end: datetime | str,
    direction: str,
    candidates: Iterable[dict],
    point: Sequence[float] | None = None,
    radius_km: float | None = None,
    issued_at: datetime | str | None = None,
) -> dict[str, Any]:
    """An `advice` document of kind "aggregator": the devices to contract.

    Greedy: walk the ranked eligible devices (see rank_candidates) and take
    each until the expected total covers target_kw. Greedy is not the
    smallest set, but it favours firm capacity, which is what a campaign
    needs; any remainder is reported as shortfall_kw.

    Each candidate: {device_id, location (GeoJSON point), marketplace_availability,
    contracted: [{start, end}, ...], flexibility: {"up"|"down": forecast document
    with start, resolution, values and quantiles.p10}}.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    begin, finish = as_utc(start), as_utc(end)
    if finish <= begin:
        raise ValueError("end must be after start")
    chosen, total = [], 0.0
    for device in rank_candidates(candidates, begin, finish, direction, point, radius_km):
        if total >= target_kw:
            break
        chosen.append(
            {
                "device_id": device["device_id"],
                "expected_kw": round(device["expected_kw"], 3),
                "confidence": round(device["confidence"], 3),
            }
        )
        total += device["expected_kw"]
    document = {
        "kind": "aggregator",
        "aggregator_id": aggregator_id,
        "target_kw": target_kw,
        "start": iso(begin),
        "end": iso(finish),
        "direction": direction,
        "devices": chosen,
        "expected_total_kw": round(total, 3),
        "shortfall_kw": round(max(0.0, target_kw - total), 3),
    }
    if issued_at is not None:
        document["issued_at"] = iso(as_utc(issued_at))
    return document
