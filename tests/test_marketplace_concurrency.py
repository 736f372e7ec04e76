"""Contracts racing for one device and time over real HTTP: exactly one wins."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests

from registry.marketplace import slot_starts
from tests.factories import AGGREGATOR, device

RACERS = 20
BASE = (datetime.now(timezone.utc).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        + timedelta(days=1))


def iso(hours: float) -> str:
    return (BASE + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")




def test_twenty_aggregator_requests_race_for_one_offer(server, insert, token, db):
    dev = device()
    insert("devices", dev)
    prosumer = {"Authorization": f"Bearer {token('prosumer', account_id=dev['account_id'])}"}
    offer = requests.post(f"{server}/offers", headers=prosumer, timeout=10, json={
        "device_id": dev["device_id"], "start": iso(0), "end": iso(6), "direction": "down",
        "power_kw": 2.0, "price": 0.2}).json()
    aggregator = {"Authorization": f"Bearer {token('aggregator', aggregator_id=AGGREGATOR)}"}
    # every window shares the slot at +1:45, so each pair overlaps
    windows = [(1 + 0.25 * (i % 4), 2 + 0.25 * (i % 4)) for i in range(RACERS)]
    gate = threading.Barrier(RACERS)

    def contract(window: tuple[float, float]) -> requests.Response:
        gate.wait()
        return requests.post(f"{server}/contracts", headers=aggregator, timeout=30, json={
            "aggregator_id": AGGREGATOR, "offers": [offer["_id"]], "start": iso(window[0]),
            "end": iso(window[1])})

    with ThreadPoolExecutor(RACERS) as pool:
        responses = list(pool.map(contract, windows))

    codes = sorted(r.status_code for r in responses)
    unexpected = [r.text for r in responses if r.status_code not in (201, 409)]
    assert codes == [201] + [409] * (RACERS - 1), unexpected
    assert all(r.json()["_error"]["message"] for r in responses if r.status_code == 409)
    winner = next(r.json() for r in responses if r.status_code == 201)
    stored = list(db["contracts"].find())
    assert [(str(c["_id"]), c["status"]) for c in stored] == [(winner["_id"], "accepted")]
    held = sorted((r["slot_start"], r["contract_id"]) for r in db["reservations"].find())
    assert held == [(s, stored[0]["_id"]) for s in slot_starts(stored[0]["start"], stored[0]["end"])]
    stored_offer = db["offers"].find_one()
    assert (stored_offer["status"], stored_offer["contract_id"]) == ("contracted", stored[0]["_id"])
