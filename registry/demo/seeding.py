"""Demo and bulk data: aggregators, prosumers, devices across Europe (the fleet:
:mod:`registry.demo.fleet`), a week of 15-minute measurements. Documents are built by pure functions and stored in
bulk (not one request each), with the fields Eve would have added."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from bson import ObjectId
from eve import Eve
from eve.utils import document_etag
from tqdm import tqdm

from registry import jobs
from registry.demo.fleet import (
    AGGREGATORS,
    CITIES,
    DEVICE_KINDS,
    GRID_AREAS,
    MEASUREMENT_DAYS,
    PRICE_LEVELS,
    stable_id,
)
from registry.store import timeseries, timeseries_load
from registry.store.clock import utcnow
from registry.store.embedded import bulk_insert
from schemas.vocabulary import SLOT, SLOT_HOURS, SLOT_SECONDS, SLOTS_PER_DAY


def build_demo(n_prosumers: int = 90, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Aggregators, prosumers, VEN enrolments and ~3.5 devices per prosumer."""
    rng = np.random.default_rng(seed)
    aggregators = [{"aggregator_id": a, "name": n, "country": c} for a, n, c in AGGREGATORS]
    prosumers, vens, devices = [], [], []
    for p in range(n_prosumers):
        city, lng, lat, agg = CITIES[p % len(CITIES)]
        account_id = stable_id("prosumer", p)
        prosumers.append(
            {
                "account_id": account_id,
                "aggregator_id": agg,
                "display_name": f"{city} home {p // len(CITIES) + 1}",
                "name": f"Demo Prosumer {p}",
                "email": f"prosumer{p}@example.org",
                "address": f"{p + 1} Demo Street, {city}",
                "contracted_max_power_kw": float(rng.choice([4.6, 5.75, 6.9, 9.2])),
            }
        )
        ven_id = stable_id("ven", p)
        vens.append(
            {
                "ven_name": f"osb-{p:04d}",
                "ven_id": ven_id,
                "account_id": account_id,
                "aggregator_id": agg,
                "registration_status": "registered",
            }
        )
        home = (lng + rng.normal(0, 0.05), lat + rng.normal(0, 0.03))
        for d in range(int(rng.integers(2, 6))):
            devices.append(_device(rng, p, d, account_id, ven_id, agg, home))
    now = utcnow()
    market = build_market(rng, devices, now)
    return {
        "aggregators": aggregators,
        "prosumers": prosumers,
        "vens": vens,
        "devices": devices,
        **market,
        "prices": build_prices(now),
        "grid_areas": build_grid_areas(),
    }


def build_grid_areas() -> list[dict[str, Any]]:
    """The demo grid operators' areas: a square around each of a few cities."""
    areas = []
    for dso_id, name, (lng, lat), size in GRID_AREAS:
        ring = [[lng, lat], [lng + size, lat], [lng + size, lat + size], [lng, lat + size], [lng, lat]]
        areas.append({"dso_id": dso_id, "name": name, "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return areas


def build_prices(now: datetime) -> list[dict[str, Any]]:
    """A day-ahead price curve per country (EUR/kWh, 15 min) for today and tomorrow:
    cheap at night and around solar noon, dear at the morning and evening peaks."""
    hours = np.arange(2 * SLOTS_PER_DAY) % SLOTS_PER_DAY * SLOT_HOURS
    shape = (
        1
        + 0.25 * np.exp(-((hours - 8) ** 2) / 3)
        + 0.45 * np.exp(-((hours - 19.5) ** 2) / 4)
        - 0.3 * np.exp(-((hours - 13.5) ** 2) / 6)
        - 0.2 * np.exp(-((hours - 3.5) ** 2) / 6)
    )
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        {
            "area": area,
            "kind": "day-ahead",
            "start": start,
            "resolution": SLOT_SECONDS,
            "currency": "EUR",
            "values": [round(float(mean * s), 4) for s in shape],
            "source": "demo curve",
        }
        for area, mean in PRICE_LEVELS.items()
    ]


def build_market(
    rng: np.random.Generator, devices: list[dict[str, Any]], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Open offers for tomorrow evening (one per prosumer of the first dozen), and one
    accepted contract on a Madrid device with its slot reservations."""
    start = now.replace(hour=16, minute=0, second=0, microsecond=0) + timedelta(days=1)
    offers, seen = [], set()
    for dev in devices:
        if dev["marketplace_availability"] != "yes" or dev["account_id"] in seen or len(seen) == len(CITIES):
            continue
        seen.add(dev["account_id"])
        offers.append(
            {
                "_id": ObjectId(),
                "device_id": dev["device_id"],
                "start": start,
                "end": start + timedelta(hours=6),
                "direction": "up" if dev["device_type"] == "Generation" else "down",
                "power_kw": round(dev["max_capacity"] * 0.5, 1) or 0.1,
                "price": round(float(rng.uniform(0.08, 0.35)), 3),
                "currency": "EUR",
                "status": "open",
                "account_id": dev["account_id"],
                "aggregator_id": dev["aggregator_id"],
                "location": dev["location"],
            }
        )
    madrid = stable_id("prosumer", 1)
    chosen = next((o for o in offers if o["account_id"] == madrid), offers[0])
    contract = {
        "_id": ObjectId(),
        "offers": [chosen["_id"]],
        "device_ids": [chosen["device_id"]],
        "aggregator_id": chosen["aggregator_id"],
        "account_ids": [chosen["account_id"]],
        "start": start + timedelta(hours=2),
        "end": start + timedelta(hours=3),
        "power_kw": chosen["power_kw"],
        "price": chosen["price"],
        "currency": "EUR",
        "direction": chosen["direction"],
        "status": "accepted",
    }
    chosen.update(status="contracted", contract_id=contract["_id"])
    reservations = [
        {
            "device_id": chosen["device_id"],
            "contract_id": contract["_id"],
            "slot_start": contract["start"] + i * SLOT,
        }
        for i in range(4)
    ]
    return {"offers": offers, "contracts": [contract], "reservations": reservations}


def _device(
    rng: np.random.Generator, p: int, d: int, account_id: str, ven_id: str, agg: str, home: tuple[float, float]
) -> dict[str, Any]:
    shares = np.array([k[4] for k in DEVICE_KINDS])
    cls, dtype, name, cap, _ = DEVICE_KINDS[int(rng.choice(len(DEVICE_KINDS), p=shares / shares.sum()))]
    max_capacity = round(float(cap * rng.uniform(0.6, 1.4)), 2)
    return {
        "device_id": stable_id("device", p, d),
        "device_name": f"{name} {d + 1}",
        "account_id": account_id,
        "ven_id": ven_id,
        "aggregator_id": agg,
        "device_class": cls,
        "device_type": dtype,
        "availability": str(rng.choice(["yes", "yes", "yes", "no"])),
        "marketplace_availability": str(rng.choice(["yes", "yes", "no"])),
        "dr_availability": str(rng.choice(["yes", "no"])),
        "max_capacity": max_capacity,
        "available_capacity": round(max_capacity * float(rng.uniform(0.3, 1.0)), 2),
        "location": {"type": "Point", "coordinates": [round(home[0], 5), round(home[1], 5)]},
        "status": {"setPoint": 21.0 if cls == "hvacDevice" else 55.0, "mode": "1", "operationState": "1"},
    }


def measurement_series(devices: list[dict[str, Any]], days: int, seed: int = 11) -> Iterator[tuple[dict, np.ndarray]]:
    """Per device, ``days`` of 15-minute power readings (kW, rounded as a meter reports them)."""
    rng = np.random.default_rng(seed)
    hours = (np.arange(days * SLOTS_PER_DAY) % SLOTS_PER_DAY) * SLOT_HOURS
    for dev in devices:
        yield dev, np.round(_profile(rng, dev, hours), 3)


def _profile(rng: np.random.Generator, dev: dict[str, Any], hours: np.ndarray) -> np.ndarray:
    cap = dev.get("max_capacity", 1.0)
    if dev.get("device_type") == "Generation":  # PV exports around noon: negative power
        sun = np.clip(np.sin((hours - 6.5) / 13 * np.pi), 0, None)
        cloud = rng.uniform(0.3, 1.0, size=len(hours) // SLOTS_PER_DAY).repeat(SLOTS_PER_DAY)
        return -cap * 0.8 * sun * cloud
    morning = np.exp(-((hours - 7.5) ** 2) / 2)
    evening = np.exp(-((hours - 19.0) ** 2) / 3)
    base = 0.15 + 0.5 * morning + 0.7 * evening
    noise = rng.gamma(4.0, 0.25, size=len(hours))
    return np.clip(cap * base * noise / 2.0, 0, cap)


def stored(app: Eve, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents with the meta fields Eve adds on insert."""
    now = utcnow()
    with app.app_context():
        out = [{**d, "_created": now, "_updated": now} for d in docs]
        for d in out:
            d["_etag"] = document_etag(d)
    return out


def seed(
    app: Eve,
    data: dict[str, list[dict[str, Any]]],
    measurement_days_count: int = MEASUREMENT_DAYS,
    progress: bool = True,
) -> dict[str, int]:
    """Store demo documents; returns counts per resource."""
    with app.app_context():
        db = app.data.driver.db
        counts = {}
        for resource, docs in data.items():
            bulk_insert(db[resource], stored(app, docs))
            counts[resource] = len(docs)
        end = utcnow().replace(minute=0, second=0)
        start = end - measurement_days_count * SLOTS_PER_DAY * SLOT
        total = 0
        buckets = db[timeseries.COLLECTION]  # whole day buckets at once (registry/store/timeseries.py)
        devices = data.get("devices", [])
        series = measurement_series(devices, measurement_days_count)
        for dev, power in tqdm(series, total=len(devices), unit="device", desc="measurements", disable=not progress):
            total += timeseries_load.load_series(buckets, dev, start, power, np.round(power * SLOT_HOURS, 4))
        counts["measurements"] = total
    # the forecasts follow in a worker, not here: two jobs per device
    jobs.enqueue_forecasts(data.get("devices", []), "seed", app=app)
    return counts
