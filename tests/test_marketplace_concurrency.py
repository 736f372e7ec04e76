"""Contracts racing for one device and time over real HTTP: exactly one wins.

With ``slow_store`` every store call takes 0.05-0.2 s, as a round trip to
MongoDB does, so requests interleave between their writes; correctness must
not depend on the embedded store's per-write lock.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from registry.market.rules import slot_starts
from tests.factories import AGGREGATOR, device
from tests.support.market import publish_offer

RACERS = 20
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
TRIALS = 3


def iso(hours: float) -> str:
    return (BASE + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def bearer(token, role: str, **ids: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, **ids)}"}


def race(count: int, call) -> list[requests.Response]:
    gate = threading.Barrier(count)

    def at_once(i: int) -> requests.Response:
        gate.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(at_once, range(count)))


@pytest.mark.parametrize("latency", [False, True], ids=["loopback", "slow-store"])
def test_twenty_aggregator_requests_race_for_one_offer(request, server, insert, token, db, latency):
    if latency:
        request.getfixturevalue("slow_store")
    dev = device()
    insert("devices", dev)
    prosumer = {"Authorization": f"Bearer {token('prosumer', account_id=dev['account_id'])}"}
    offer = publish_offer(server, prosumer, dev["device_id"], iso(0), iso(6), power_kw=2.0, price=0.2, timeout=10)
    aggregator = {"Authorization": f"Bearer {token('aggregator', aggregator_id=AGGREGATOR)}"}
    # every window shares the slot at +1:45, so each pair overlaps
    windows = [(1 + 0.25 * (i % 4), 2 + 0.25 * (i % 4)) for i in range(RACERS)]
    gate = threading.Barrier(RACERS)

    def contract(window: tuple[float, float]) -> requests.Response:
        gate.wait()
        return requests.post(
            f"{server}/contracts",
            headers=aggregator,
            timeout=30,
            json={
                "aggregator_id": AGGREGATOR,
                "offers": [offer["_id"]],
                "start": iso(window[0]),
                "end": iso(window[1]),
            },
        )

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


def test_racing_accepts_of_one_proposal_hold_one_set_of_slots(server, slow_store, insert, token, db):
    """The loser of an accept race (412 or 409) must not free the winner's slots:
    a second contract for the same device and hour is then refused."""
    aggregator = bearer(token, "aggregator", aggregator_id=AGGREGATOR)
    for trial in range(TRIALS):
        dev = device()
        insert("devices", dev)
        prosumer = bearer(token, "prosumer", account_id=dev["account_id"])
        proposal = requests.post(
            f"{server}/contracts",
            headers=aggregator,
            timeout=30,
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
        etag = requests.get(f"{server}/contracts/{proposal['_id']}", headers=prosumer, timeout=30).json()["_etag"]

        responses = race(
            3,
            lambda i: requests.patch(
                f"{server}/contracts/{proposal['_id']}",
                headers={**prosumer, "If-Match": etag},
                json={"status": "accepted"},
                timeout=60,
            ),
        )

        codes = sorted(r.status_code for r in responses)
        assert codes[0] == 200 and codes.count(200) == 1 and set(codes[1:]) <= {409, 412}, codes
        held = db["reservations"].find({"device_id": dev["device_id"]})
        assert sorted(r["slot_start"] for r in held) == slot_starts(
            BASE + timedelta(hours=1), BASE + timedelta(hours=2)
        ), trial
        offer = publish_offer(server, prosumer, dev["device_id"], iso(0), iso(4), power_kw=1.0, price=0.1, timeout=30)
        second = requests.post(
            f"{server}/contracts",
            headers=aggregator,
            timeout=30,
            json={"aggregator_id": AGGREGATOR, "offers": [offer["_id"]], "start": iso(1.5), "end": iso(2.5)},
        )
        assert second.status_code == 409 and "already held" in second.json()["_error"]["message"]
        accepted = db["contracts"].count_documents({"device_ids": dev["device_id"], "status": "accepted"})
        assert accepted == 1


def test_racing_retries_with_one_idempotency_key_make_one_contract(server, slow_store, insert, token, db):
    dev = device()
    insert("devices", dev)
    prosumer = bearer(token, "prosumer", account_id=dev["account_id"])
    offer = publish_offer(server, prosumer, dev["device_id"], iso(0), iso(6), power_kw=2.0, price=0.2, timeout=30)
    aggregator = {**bearer(token, "aggregator", aggregator_id=AGGREGATOR), "Idempotency-Key": "order-17"}
    body = {"aggregator_id": AGGREGATOR, "offers": [offer["_id"]], "start": iso(1), "end": iso(2)}

    responses = race(4, lambda i: requests.post(f"{server}/contracts", headers=aggregator, json=body, timeout=60))

    created = {r.json()["_id"] for r in responses if r.status_code == 201}
    assert len(created) == 1 and all(r.status_code in (201, 409) for r in responses), [r.status_code for r in responses]
    busy = [r.json()["_error"]["message"] for r in responses if r.status_code == 409]
    assert all("Idempotency-Key" in m for m in busy)
    assert db["contracts"].count_documents({}) == 1 and db["reservations"].count_documents({}) == 4
