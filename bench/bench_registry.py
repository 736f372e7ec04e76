"""Latency of the FLEXCoop query and of an item PATCH at 1k / 10k / 50k devices.

Compares the registry (auth, scope filtering, hooks, geo on the embedded
store) with a plain Eve app (same schema and validator, no hooks, no auth)
reading the same embedded store. Plain Eve on mongomock cannot evaluate
``$near`` at all, so the like-for-like ratio uses the query without its geo
clause; the geo query is reported for the registry alone.

Then, at the first size, where the PATCH's fixed cost goes: the same pair with
each per-request feature the plain app lacks switched off in turn (rate
limiting, the audit oplog, the token revocation look-up, the access log line),
and with all four off, each against plain Eve measured alongside.

    python -m bench.bench_registry [--sizes 1000,10000,50000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import numpy as np
from eve import Eve
from eve.io.mongo import Mongo

import settings
from registry import create_app
from registry.api.data_layer import Connection
from registry.api.validator import RegistryValidator
from registry.auth import mint_token
from registry.demo import seeding as demo
from registry.store.embedded import bulk_insert
from registry.store.mongo_setup import write_concern
from schemas.vocabulary import DEVICE_CLASSES

CENTER = [2.1734, 41.3851]
AGGREGATOR = "coop-iberia"
GEO = {"$near": {"$geometry": {"type": "Point", "coordinates": CENTER}, "$maxDistance": 25000}}
FILTER = {"device_class": "dhwDevice", "marketplace_availability": "yes"}
PARAMS = {
    "sort": '[("max_capacity", -1)]',
    "projection": json.dumps({"device_id": 1, "max_capacity": 1}),
    "max_results": 50,
}


class SharedStoreMongo(Mongo):
    """Plain Eve's Mongo layer pointed at an existing mongomock database."""

    shared: Any = None

    def pymongo(self, resource: str | None = None, prefix: str | None = None) -> Connection:
        return Connection(self.shared.client, self.shared)


def devices(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n):
        near = i % 10 == 0  # a tenth of the fleet around Barcelona, the rest across Europe
        lng = CENTER[0] + rng.normal(0, 0.2) if near else rng.uniform(-9, 20)
        lat = CENTER[1] + rng.normal(0, 0.15) if near else rng.uniform(37, 60)
        docs.append(
            {
                "device_id": demo.stable_id("bench", i),
                "device_name": f"bench {i}",
                "account_id": demo.stable_id("bench-account", i // 4),
                "ven_id": demo.stable_id("bench-ven", i // 4),
                "aggregator_id": AGGREGATOR if i % 3 else "flex-nordwest",
                "device_class": DEVICE_CLASSES[int(rng.integers(len(DEVICE_CLASSES)))],
                "availability": "yes",
                "marketplace_availability": "yes" if rng.random() < 0.8 else "no",
                "dr_availability": "yes",
                "device_type": "Demand",
                "max_capacity": round(float(rng.uniform(0.5, 9)), 2),
                "available_capacity": 1.0,
                "location": {"type": "Point", "coordinates": [lng, lat]},
            }
        )
    return docs


def plain_eve(db: Any) -> Eve:
    SharedStoreMongo.shared = db
    config = {k: v for k, v in settings.as_dict().items() if not k.startswith(("OPLOG", "OAUTH"))}
    config.update({"MONGO_QUERY_BLACKLIST": ["$where"], "DOMAIN": settings.build_domain()})
    config["MONGO_WRITE_CONCERN"] = write_concern(config)  # as the registry resolves it (else Eve's PATCH fails)
    return Eve(import_name=__name__, settings=config, validator=RegistryValidator, data=SharedStoreMongo)


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def get_ok(client: Any, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.json


def patcher(client: Any, device_id: str, headers: dict[str, str]) -> Callable[[], None]:
    state = {"value": "yes"}

    def patch() -> None:
        url = f"/devices/{device_id}"
        etag = get_ok(client, url, headers)["_etag"]
        state["value"] = "no" if state["value"] == "yes" else "yes"
        response = client.patch(url, json={"dr_availability": state["value"]}, headers={**headers, "If-Match": etag})
        assert response.status_code == 200, response.get_data(as_text=True)[:300]

    return patch


def measure(size: int, repeat: int, instance: str) -> dict[str, float]:
    app = create_app({"INSTANCE_PATH": instance, "RATE_LIMIT": "1000000 per minute"})
    ours, headers = (
        app.test_client(),
        {
            "Authorization": "Bearer "
            + mint_token(
                instance,
                app.config["OAUTH_ISSUER"],
                app.config["OAUTH_AUDIENCE"],
                "aggregator",
                aggregator_id=AGGREGATOR,
            )
        },
    )
    with app.app_context():
        db = app.data.driver.db
        bulk_insert(db["devices"], demo.stored(app, devices(size)))
        plain = plain_eve(db._db).test_client()
    geo_url = "/devices?" + urlencode({"where": json.dumps({**FILTER, "location": GEO}), **PARAMS})
    flat_url = "/devices?" + urlencode({"where": json.dumps({**FILTER, "aggregator_id": AGGREGATOR}), **PARAMS})
    target = demo.stable_id("bench", 1)  # aggregator coop-iberia
    return {
        "geo_total": get_ok(ours, geo_url, headers)["_meta"]["total"],
        "ours_geo": median_ms(lambda: get_ok(ours, geo_url, headers), repeat),
        "ours_flat": median_ms(lambda: get_ok(ours, flat_url, headers), repeat),
        "plain_flat": median_ms(lambda: get_ok(plain, flat_url, {}), repeat),
        "ours_patch": median_ms(patcher(ours, target, headers), repeat),
        "plain_patch": median_ms(patcher(plain, target, {}), repeat),
    }


FEATURES = ("rate limiting", "audit oplog", "revocation look-up", "access log")


@contextlib.contextmanager
def switched_off(app: Any, features: tuple[str, ...]) -> Any:
    """``app`` with ``features`` off for the duration (the bench's ablation only)."""
    limiter, cache, access = (
        app.extensions["rate_limiter"],
        app.extensions["principal_cache"],
        logging.getLogger("registry.access"),
    )
    saved = (limiter.enabled, app.config["OPLOG"], cache.revocations, access.disabled)
    limiter.enabled = "rate limiting" not in features
    app.config["OPLOG"] = saved[1] and "audit oplog" not in features
    cache.revocations = None if "revocation look-up" in features else saved[2]
    access.disabled = "access log" in features
    try:
        yield
    finally:
        limiter.enabled, app.config["OPLOG"], cache.revocations, access.disabled = saved


def patch_breakdown(size: int, repeat: int, instance: str) -> list[tuple[str, float, float]]:
    """(what is off, registry ms, plain Eve ms) for an item PATCH pair, measured in turns."""
    app = create_app({"INSTANCE_PATH": instance, "RATE_LIMIT": "1000000 per minute"})
    token = mint_token(
        instance, app.config["OAUTH_ISSUER"], app.config["OAUTH_AUDIENCE"], "aggregator", aggregator_id=AGGREGATOR
    )
    headers = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        db = app.data.driver.db
        bulk_insert(db["devices"], demo.stored(app, devices(size)))
        plain = patcher(plain_eve(db._db).test_client(), demo.stable_id("bench", 2), {})
    ours = patcher(app.test_client(), demo.stable_id("bench", 1), headers)
    rows = []
    for off in [(), *((feature,) for feature in FEATURES), FEATURES]:
        with switched_off(app, off):
            rows.append((", ".join(off) or "nothing", median_ms(ours, repeat), median_ms(plain, repeat)))
    return rows


def run(sizes: tuple[int, ...] = (1000, 10000, 50000), repeat: int = 7) -> dict[int, dict[str, float]]:
    """Figures per fleet size, milliseconds (bench/run_all.py)."""
    with tempfile.TemporaryDirectory() as instance:
        return {size: measure(size, repeat, instance) for size in sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"embedded store (mongomock); median of {args.repeat} runs, milliseconds"
    )
    print(
        f"{'devices':>8} | {'FLEXCoop $near (hits)':>22} | {'query w/o geo':>13} | {'plain Eve':>9} | "
        f"{'ratio':>5} | {'PATCH':>7} | {'plain Eve':>9} | {'ratio':>5}"
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as instance:
        for size in sizes:
            m = measure(size, args.repeat, instance)
            print(
                f"{size:>8} | {m['ours_geo']:>14.1f} ({m['geo_total']:>5}) | {m['ours_flat']:>13.1f} | "
                f"{m['plain_flat']:>9.1f} | {m['ours_flat'] / m['plain_flat']:>5.2f} | {m['ours_patch']:>7.1f} | "
                f"{m['plain_patch']:>9.1f} | {m['ours_patch'] / m['plain_patch']:>5.2f}",
                flush=True,
            )
    print(f"\nitem PATCH (GET + If-Match) at {sizes[0]} devices, median ms of {args.repeat}: what its fixed cost is")
    print(f"{'switched off':>62} | {'registry':>8} | {'plain Eve':>9} | {'ratio':>5}")
    with tempfile.TemporaryDirectory() as instance:
        for off, ours, plain in patch_breakdown(sizes[0], args.repeat, instance):
            print(f"{off:>62} | {ours:>8.2f} | {plain:>9.2f} | {ours / plain:>5.2f}", flush=True)


if __name__ == "__main__":
    main()
