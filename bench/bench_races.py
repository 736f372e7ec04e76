"""Racing accepts of one proposal over real HTTP, with store latency.

Each trial: an aggregator proposes a contract on a fresh device; two (or more)
requests of its prosumer accept it at the same moment with the same ETag;
then an aggregator tries to contract the same device and hour through an
offer. Correct: one accept wins, the device's slots stay held, the second
contract is refused (409). A "double accept" is a trial where the second
contract is accepted too (the losing accept freed the winner's slots).

Latency is added to every store call (half before, half after it, as a
network round trip to MongoDB), by patching the store's collection wrapper,
so the script measures any version of the registry the same way:

    python -m bench.bench_races [--trials 5] [--racers 2] [--latency 0.2 0.2]
    PYTHONPATH=<an older checkout> python -m bench.bench_races   # before / after
"""

from __future__ import annotations

import argparse
import functools
import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from werkzeug.serving import make_server

from schemas.vocabulary import DATE_FORMAT
from tests.support.market import publish_offer

AGGREGATOR = "agg-north"


def slowed(latency: tuple[float, float]) -> None:
    """Every call through the store's GeoCollection takes ``latency`` seconds more."""
    from registry.store import collections as store

    def pause() -> None:
        time.sleep(random.uniform(*latency) / 2)

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            pause()
            try:
                return method(*args, **kwargs)
            finally:
                pause()

        return call

    plain_getattr = store.GeoCollection.__getattr__

    def getattr_(self: Any, name: str) -> Any:
        attr = plain_getattr(self, name)
        return wrap(attr) if callable(attr) and not name.startswith("_") else attr

    store.GeoCollection.__getattr__ = getattr_
    for name in ("find", "count_documents"):
        setattr(store.GeoCollection, name, wrap(getattr(store.GeoCollection, name)))


def serve() -> tuple[Any, str, Callable[..., dict[str, str]]]:
    from registry import create_app
    from registry.auth import mint_token

    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(), "TESTING": True})
    app.config["RATE_LIMIT"] = "1000000 per minute"
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def bearer(role: str, **ids: str) -> dict[str, str]:
        token = mint_token(
            app.config["INSTANCE_PATH"],
            app.config["OAUTH_ISSUER"],
            app.config["OAUTH_AUDIENCE"],
            role,
            ttl=3600,
            subject=f"bench-{role}-{ids}",
            **ids,
        )
        return {"Authorization": f"Bearer {token}"}

    return app, f"http://127.0.0.1:{httpd.server_port}", bearer


def trial(app: Any, url: str, bearer: Callable[..., dict[str, str]], racers: int, base: datetime) -> dict[str, Any]:
    from tests.factories import device

    def iso(hours: float) -> str:
        return (base + timedelta(hours=hours)).strftime(DATE_FORMAT)

    dev = device()
    with app.app_context():
        app.data.driver.db["devices"].insert_one(dict(dev))
    aggregator, prosumer = (
        bearer("aggregator", aggregator_id=AGGREGATOR),
        bearer("prosumer", account_id=dev["account_id"]),
    )
    proposal = requests.post(
        f"{url}/contracts",
        headers=aggregator,
        timeout=60,
        json={
            "aggregator_id": AGGREGATOR,
            "device_ids": [dev["device_id"]],
            "direction": "down",
            "power_kw": 1.0,
            "price": 0.3,
            "start": iso(1),
            "end": iso(2),
        },
    ).json()
    etag = requests.get(f"{url}/contracts/{proposal['_id']}", headers=prosumer, timeout=60).json()["_etag"]
    gate = threading.Barrier(racers)

    def accept(_: int) -> int:
        gate.wait()
        return requests.patch(
            f"{url}/contracts/{proposal['_id']}",
            headers={**prosumer, "If-Match": etag},
            json={"status": "accepted"},
            timeout=120,
        ).status_code

    with ThreadPoolExecutor(racers) as pool:
        codes = sorted(pool.map(accept, range(racers)))
    with app.app_context():
        held = app.data.driver.db["reservations"].count_documents({"device_id": dev["device_id"]})
    offer = publish_offer(url, prosumer, dev["device_id"], iso(0), iso(4), power_kw=1.0, price=0.1, timeout=60)
    second = requests.post(
        f"{url}/contracts",
        headers=aggregator,
        timeout=60,
        json={"aggregator_id": AGGREGATOR, "offers": [offer["_id"]], "start": iso(1.5), "end": iso(2.5)},
    )
    return {"codes": codes, "slots_held": held, "second_contract": second.status_code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--racers", type=int, default=2)
    parser.add_argument("--latency", type=float, nargs=2, default=(0.2, 0.2), metavar=("MIN", "MAX"))
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.latency[1] > 0:
        slowed(tuple(args.latency))
    app, url, bearer = serve()
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    doubles = 0
    for i in range(args.trials):
        outcome = trial(app, url, bearer, args.racers, base + timedelta(days=i))
        doubles += outcome["second_contract"] == 201
        print(
            f"trial {i + 1}: accepts {outcome['codes']}, slots held {outcome['slots_held']}/4, "
            f"second contract {outcome['second_contract']}"
        )
    print(
        f"double accepts: {doubles} of {args.trials} trials "
        f"({args.racers} racers, {args.latency[0]:g}-{args.latency[1]:g} s per store call)"
    )


if __name__ == "__main__":
    main()
