"""Requests racing on a real threaded server on loopback.

* PATCHes racing on one ETag: exactly one wins (200), every other is 412, and
  the stored document is the winner's;
* bulk measurement inserts while other clients read lists: no errors, every
  reading stored once, and the totals readers see only ever grow.

Contracts racing for one device and time are in test_marketplace_concurrency.py.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import requests

from tests.factories import device

RACERS = 16
WRITERS, BULKS, READINGS = 4, 8, 96
READERS = 4


def bearer(token: Any, role: str, **ids: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, **ids)}"}


def test_patches_racing_on_one_etag_have_exactly_one_winner(server, insert, token, db):
    dev = device()
    insert("devices", dev)
    prosumer = bearer(token, "prosumer", account_id=dev["account_id"], aggregator_id=dev["aggregator_id"])
    url = f"{server}/devices/{dev['device_id']}"
    etag = requests.get(url, headers=prosumer, timeout=10).json()["_etag"]
    gate = threading.Barrier(RACERS)

    def patch(value: float) -> requests.Response:
        gate.wait()
        return requests.patch(
            url, json={"available_capacity": value}, timeout=30, headers={**prosumer, "If-Match": etag}
        )

    with ThreadPoolExecutor(RACERS) as pool:
        responses = list(pool.map(patch, [float(i) for i in range(RACERS)]))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * (RACERS - 1), [r.text for r in responses if r.status_code not in (200, 412)]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    stored = db["devices"].find_one({"device_id": dev["device_id"]})
    assert stored["available_capacity"] == float(winner)
    assert stored["_etag"] == responses[winner].json()["_etag"] != etag
    # the winner's ETag is the one that now works; the old one still fails
    again = requests.patch(
        url, json={"available_capacity": 0.5}, timeout=10, headers={**prosumer, "If-Match": stored["_etag"]}
    )
    assert again.status_code == 200
    stale = requests.patch(url, json={"available_capacity": 0.7}, timeout=10, headers={**prosumer, "If-Match": etag})
    assert stale.status_code == 412


def test_bulk_measurement_inserts_while_others_read_lists(server, insert, token, db):
    devices = [device() for _ in range(WRITERS)]
    insert("devices", *devices)
    service, admin = bearer(token, "service"), bearer(token, "admin")
    start = datetime(2026, 11, 1)
    writing = threading.Event()
    writing.set()

    def write(dev: dict[str, Any]) -> list[int]:
        codes = []
        for b in range(BULKS):
            bulk = [
                {
                    "device_id": dev["device_id"],
                    "power_kw": 1.0 + i / 100,
                    "timestamp": (start + timedelta(minutes=15 * (b * READINGS + i))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                for i in range(READINGS)
            ]
            codes.append(requests.post(f"{server}/measurements", json=bulk, headers=service, timeout=60).status_code)
        return codes

    def read(n: int) -> tuple[list[int], list[int]]:
        codes, totals = [], []
        where = json.dumps({"device_id": devices[n % WRITERS]["device_id"]})
        while writing.is_set() or not totals:
            listed = requests.get(
                f"{server}/measurements",
                params={"where": where, "max_results": 50, "sort": "-timestamp"},
                headers=admin,
                timeout=60,
            )
            codes.append(listed.status_code)
            if listed.ok:
                totals.append(listed.json()["_meta"]["total"])
            codes.append(requests.get(f"{server}/devices", headers=admin, timeout=60).status_code)
        return codes, totals

    with ThreadPoolExecutor(WRITERS + READERS) as pool:
        readers = [pool.submit(read, n) for n in range(READERS)]
        writers = [pool.submit(write, dev) for dev in devices]
        written = [code for w in writers for code in w.result()]
        writing.clear()
        read_results = [r.result() for r in readers]

    assert written == [201] * WRITERS * BULKS
    for codes, totals in read_results:
        assert set(codes) == {200}
        assert totals == sorted(totals), "a reader saw a total go down"
    expected = WRITERS * BULKS * READINGS
    listed = requests.get(f"{server}/measurements", params={"max_results": 1}, headers=admin, timeout=30).json()
    assert listed["_meta"]["total"] == expected == db["measurements"].count_documents({})
    per_device = {
        d["device_id"]: len(db["measurements"].distinct("timestamp", {"device_id": d["device_id"]})) for d in devices
    }
    assert per_device == {d["device_id"]: BULKS * READINGS for d in devices}
