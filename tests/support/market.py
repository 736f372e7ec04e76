"""Marketplace steps over real HTTP, shared by the race tests and bench/bench_races.py."""

from __future__ import annotations

from typing import Any

import requests


def publish_offer(
    url: str,
    headers: dict[str, str],
    device_id: str,
    start: str,
    end: str,
    *,
    power_kw: float = 2.0,
    price: float = 0.2,
    timeout: float = 30,
) -> dict[str, Any]:
    """A prosumer's open `down` offer for one device (the stored document)."""
    body = {"device_id": device_id, "start": start, "end": end, "direction": "down", "power_kw": power_kw,
            "price": price}  # fmt: skip
    return requests.post(f"{url}/offers", headers=headers, timeout=timeout, json=body).json()
