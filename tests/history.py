"""Measurement histories for job tests: a daily load shape with noise, per device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np


def this_hour() -> datetime:
    """Aware UTC, on the hour (as the store gives datetimes back)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def readings(
    device: dict[str, Any], days: float, end: datetime | None = None, seed: int = 1, level: float = 1.0
) -> list[dict[str, Any]]:
    """15-minute measurements of ``device`` for the ``days`` before ``end``, as stored
    (owners copied, datetimes aware UTC)."""
    end = end or this_hour()
    rng = np.random.default_rng(seed)
    n = int(days * 96)
    stamps = [end - timedelta(minutes=15 * (n - i)) for i in range(n)]
    hours = np.array([t.hour + t.minute / 60 for t in stamps])
    shape = 0.3 + 0.8 * np.exp(-((hours - 19) ** 2) / 4) + 0.4 * np.exp(-((hours - 8) ** 2) / 3)
    power = level * shape * rng.gamma(6.0, 1 / 6.0, n)
    return [
        {
            "device_id": device["device_id"],
            "timestamp": t,
            "power_kw": round(float(p), 3),
            "account_id": device["account_id"],
            "aggregator_id": device["aggregator_id"],
        }
        for t, p in zip(stamps, power)
    ]


def as_api(measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same measurements as a client would POST them."""
    return [
        {
            "device_id": m["device_id"],
            "timestamp": m["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "power_kw": m["power_kw"],
        }
        for m in measurements
    ]


def day_ahead_prices(start: datetime, area: str | None = None, aggregator_id: str | None = None) -> dict[str, Any]:
    """Two days of 15-minute prices: dear in the evening, cheap at night."""
    hours = np.arange(192) % 96 / 4
    values = 0.10 + 0.15 * np.exp(-((hours - 19) ** 2) / 4) - 0.05 * np.exp(-((hours - 3) ** 2) / 4)
    doc: dict[str, Any] = {
        "start": start.replace(hour=0),
        "resolution": 900,
        "currency": "EUR",
        "values": [round(float(v), 4) for v in values],
    }
    if area:
        doc["area"] = area
    if aggregator_id:
        doc["aggregator_id"] = aggregator_id
    return doc
