"""A contract's writes succeed or fail together: a transaction where MongoDB has
them (shown with a fake session: no MongoDB server runs here), exact undo and
the tick's orphan repair elsewhere, and Idempotency-Key retries."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import mongomock
import pytest
from bson import ObjectId

from registry.market import reservations
from registry.market.lifecycle import advance_lifecycle
from registry.store import atomic
from registry.store.clock import utcnow
from registry.store.collections import GeoDatabase
from tests.conftest import as_json
from tests.support.market_setup import contract_body, market, patch, publish, state  # noqa: F401 - fixture

GRACE = 120


class WorkerKilled(BaseException):
    """What a gunicorn timeout does to a request: nothing after it runs, no cleanup."""


def kill() -> None:
    raise WorkerKilled()


def later(seconds: float = GRACE + 1) -> Any:
    return utcnow() + timedelta(seconds=seconds)


def tick(app, now) -> dict[str, int]:
    with app.app_context():
        return advance_lifecycle(now)


def held_by(db) -> dict[Any, int]:
    counts: dict[Any, int] = {}
    for r in db["reservations"].find():
        counts[r["contract_id"]] = counts.get(r["contract_id"], 0) + 1
    return counts


# --- the transaction path, with a fake session ------------------------------------------------


class FakeSession:
    """Records what pymongo's ClientSession.with_transaction would commit or abort."""

    def __init__(self) -> None:
        self.committed = self.aborted = 0

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def with_transaction(self, callback):
        try:
            result = callback(self)
        except Exception:
            self.aborted += 1
            raise
        self.committed += 1
        return result


class FakeReplicaSet:
    def __init__(self, hello: dict[str, Any]) -> None:
        self.admin = SimpleNamespace(command=lambda name: hello)
        self.sessions: list[FakeSession] = []

    def start_session(self) -> FakeSession:
        self.sessions.append(FakeSession())
        return self.sessions[-1]


class RecordingDatabase:
    """mongomock collections that take ``session=`` (as pymongo's do) and record it."""

    def __init__(self) -> None:
        self.db = mongomock.MongoClient(tz_aware=True).db
        self.calls: list[tuple[str, Any]] = []
        reservations.ensure_indexes(self.db)

    def __getitem__(self, name: str) -> Any:
        return RecordingCollection(self.db[name], self.calls)


class RecordingCollection:
    def __init__(self, collection: Any, calls: list) -> None:
        self.collection, self.calls = collection, calls

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.collection, name)

        def call(*args: Any, session: Any = None, **kwargs: Any) -> Any:
            self.calls.append((name, session))
            return method(*args, **kwargs)

        return call


def contract_plan(db: GeoDatabase, contract: dict, offer: dict) -> atomic.Plan:
    now = utcnow()
    return atomic.Plan(
        before=[reservations.reserve_step(contract, now), reservations.claim_step([offer], contract["_id"], now)]
    )


def a_contract_and_its_offer(raw: RecordingDatabase) -> tuple[dict, dict]:
    start = utcnow().replace(minute=0, second=0) + timedelta(days=1)
    offer = {"_id": ObjectId(), "status": "open", "device_id": "d-1"}
    raw.db["offers"].insert_one(dict(offer))
    contract = {"_id": ObjectId(), "device_ids": ["d-1"], "start": start, "end": start + timedelta(hours=1)}
    return contract, offer


@pytest.mark.parametrize(
    "hello,expected",
    [
        ({"setName": "rs0", "isWritablePrimary": True}, True),
        ({"msg": "isdbgrid"}, True),
        ({"isWritablePrimary": True}, False),
    ],
)
def test_transactions_are_used_on_replica_sets_and_mongos_only(app, hello, expected):
    with app.app_context():
        assert atomic.uses_transactions(GeoDatabase(None, embedded=False), FakeReplicaSet(hello)) is expected
        assert atomic.uses_transactions(GeoDatabase(None, embedded=True), FakeReplicaSet(hello)) is False
        app.config["MONGO_TRANSACTIONS"] = "off"
        assert atomic.uses_transactions(GeoDatabase(None, embedded=False), FakeReplicaSet({"setName": "rs"})) is False


def test_reserve_claim_and_insert_run_in_one_transaction(app):
    raw, client = RecordingDatabase(), FakeReplicaSet({"setName": "rs0"})
    db = GeoDatabase(raw, embedded=False)
    contract, offer = a_contract_and_its_offer(raw)
    with app.app_context():
        atomic.run(
            db,
            client,
            contract_plan(db, contract, offer),
            lambda: db["contracts"].insert_one({**contract, "status": "accepted"}),
        )
    [session] = client.sessions
    assert (session.committed, session.aborted) == (1, 0)
    # reserve, claim the offer, its oplog entry, the contract
    assert [name for name, _ in raw.calls] == ["insert_many", "update_one", "insert_one", "insert_one"]
    assert all(s is session for _, s in raw.calls)  # every write joined the transaction
    assert raw.db["reservations"].count_documents({"contract_id": contract["_id"]}) == 4
    assert raw.db["offers"].find_one()["status"] == "contracted"
    [entry] = raw.db["oplog"].find()  # the claim's audit entry, in the same transaction
    assert (entry["i"], entry["u"], entry["c"]["status"]) == (offer["_id"], "system", "contracted")
    assert atomic.current_session() is None


def test_a_conflict_aborts_the_transaction_without_compensating_writes(app):
    raw, client = RecordingDatabase(), FakeReplicaSet({"setName": "rs0"})
    db = GeoDatabase(raw, embedded=False)
    contract, offer = a_contract_and_its_offer(raw)
    raw.db["offers"].update_one({"_id": offer["_id"]}, {"$set": {"status": "withdrawn"}})
    with app.app_context(), pytest.raises(reservations.Conflict, match="withdrawn meanwhile"):
        atomic.run(db, client, contract_plan(db, contract, offer), lambda: db["contracts"].insert_one(contract))
    [session] = client.sessions
    assert (session.committed, session.aborted) == (0, 1)
    # the server discards the transaction's writes; no undo is sent on top
    assert [name for name, _ in raw.calls] == ["insert_many", "update_one"]


def test_the_api_runs_a_contract_in_one_transaction_where_the_store_has_them(app, market, db, monkeypatch):
    client = FakeReplicaSet({"setName": "rs0"})
    monkeypatch.setattr(atomic, "uses_transactions", lambda db, cx: True)
    with app.app_context():
        embedded = app.data.pymongo().cx
    monkeypatch.setattr(embedded, "start_session", client.start_session, raising=False)
    offer_id = publish(market.prosumer_a, market.dev["a"])
    assert market.aggregator.post("/contracts", **as_json(contract_body([offer_id]))).status_code == 201
    overlapping = publish(market.prosumer_a, market.dev["a"], start=1, end=3, price=0.1)
    refused = market.aggregator.post("/contracts", **as_json(contract_body([overlapping], start=1.5, end=2.5)))
    assert refused.status_code == 409 and "already held" in refused.json["_error"]["message"]
    assert [(s.committed, s.aborted) for s in client.sessions] == [(1, 0), (0, 1)]


# --- the embedded path: exact undo ------------------------------------------------------------


def test_a_refused_claim_undoes_only_its_own_reservations(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    other = market.aggregator.post(
        "/contracts", **as_json(contract_body([publish(market.prosumer_b, market.dev["b"])]))
    ).json["_id"]

    def withdrawn_meanwhile() -> None:  # between our reserve and our claim
        db["offers"].update_one({"_id": ObjectId(offer_id)}, {"$set": {"status": "withdrawn"}})

    app.extensions["faults"] = {"after:reserve": withdrawn_meanwhile}
    response = market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    assert response.status_code == 409 and "withdrawn meanwhile" in response.json["_error"]["message"]
    assert held_by(db) == {ObjectId(other): 4}
    assert db["contracts"].count_documents({}) == 1


# --- a worker killed between writes, repaired by the tick --------------------------------------


@pytest.mark.parametrize("fault", ["after:reserve", "after:claim_offers"])
def test_a_killed_request_leaves_orphans_the_tick_repairs(app, market, db, fault):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    app.extensions["faults"] = {fault: kill}
    with pytest.raises(WorkerKilled):
        market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    app.extensions["faults"] = {}
    assert db["contracts"].count_documents({}) == 0 and sum(held_by(db).values()) == 4
    claimed = fault == "after:claim_offers"
    assert db["offers"].find_one()["status"] == ("contracted" if claimed else "open")

    soon = tick(app, later(GRACE - 10))  # the request might still be running: hands off
    assert (soon["orphan_reservations_deleted"], soon["orphan_offers_reopened"]) == (0, 0)
    repaired = tick(app, later())
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (4, int(claimed))
    assert db["reservations"].count_documents({}) == 0
    offer = market.prosumer_a.get(f"/offers/{offer_id}").json
    assert (offer["status"], offer.get("contract_id")) == ("open", None)
    assert market.aggregator.post("/contracts", **as_json(contract_body([offer_id]))).status_code == 201


def test_a_cancel_killed_before_freeing_the_slots_is_repaired(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    contract_id = market.aggregator.post("/contracts", **as_json(contract_body([offer_id]))).json["_id"]
    app.extensions["faults"] = {"after:write": kill}
    with pytest.raises(WorkerKilled):
        patch(market.aggregator, "contracts", contract_id, {"status": "cancelled"})
    app.extensions["faults"] = {}
    assert db["contracts"].find_one()["status"] == "cancelled" and sum(held_by(db).values()) == 4
    repaired = tick(app, later())
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (4, 1)
    assert market.prosumer_a.get(f"/offers/{offer_id}").json["status"] == "open"


def test_the_tick_leaves_live_contracts_alone(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    market.aggregator.post("/contracts", **as_json(contract_body([offer_id])))
    before = state(db)
    repaired = tick(app, later())
    assert (repaired["orphan_reservations_deleted"], repaired["orphan_offers_reopened"]) == (0, 0)
    assert state(db)[2] == before[2] and db["offers"].find_one()["status"] == "contracted"


# --- Idempotency-Key ---------------------------------------------------------------------------


def post(client, resource: str, body: Any, key: str | None = "key-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"/{resource}", headers=headers, **as_json(body))


def test_a_retried_contract_is_the_same_contract(market, db):
    body = contract_body([publish(market.prosumer_a, market.dev["a"])])
    first, again = post(market.aggregator, "contracts", body), post(market.aggregator, "contracts", body)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert db["contracts"].count_documents({}) == 1 and sum(held_by(db).values()) == 4


def test_a_retried_offer_is_the_same_offer(market, db):
    from tests.support.market_setup import offer_body

    body = offer_body(market.dev["a"])
    first, again = post(market.prosumer_a, "offers", body), post(market.prosumer_a, "offers", body)
    assert (first.status_code, again.status_code, again.json["_id"]) == (201, 201, first.json["_id"])
    assert db["offers"].count_documents({}) == 1
    # another caller's key is another key
    assert post(market.admin, "offers", body).json["_id"] != first.json["_id"]


def test_the_same_key_for_another_body_is_422_and_changes_nothing(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    post(market.aggregator, "contracts", contract_body([offer_id]))
    before = state(db)
    other = post(market.aggregator, "contracts", contract_body([offer_id], start=2, end=3))
    assert other.status_code == 422 and "different request body" in other.json["_error"]["message"]
    assert state(db) == before


@pytest.mark.parametrize("key", ["", "é", "x" * 256, "two words"])
def test_a_malformed_key_is_400(market, db, key):
    response = post(market.aggregator, "contracts", contract_body([]), key=key)
    assert response.status_code == 400 and "Idempotency-Key" in response.json["_error"]["message"]
    assert db["idempotency_keys"].count_documents({}) == 0


def test_a_refused_request_releases_its_key(market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    body = contract_body([offer_id], price=0.1)  # below the asking price: 422
    assert post(market.aggregator, "contracts", body).status_code == 422
    assert db["idempotency_keys"].count_documents({}) == 0
    db["offers"].update_one({}, {"$set": {"price": 0.05}})
    assert post(market.aggregator, "contracts", body).status_code == 201


def test_a_retry_after_a_kill_after_the_write_replays_the_stored_contract(app, market, db):
    body = contract_body([publish(market.prosumer_a, market.dev["a"])])
    app.extensions["faults"] = {"after:write": kill}
    with pytest.raises(WorkerKilled):
        post(market.aggregator, "contracts", body)
    app.extensions["faults"] = {}
    stored = db["contracts"].find_one()
    again = post(market.aggregator, "contracts", body)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json["_id"] == str(stored["_id"]) and again.json["_etag"] == stored["_etag"]
    assert db["contracts"].count_documents({}) == 1


def test_a_retry_after_a_kill_before_the_write_waits_then_takes_over(app, market, db):
    offer_id = publish(market.prosumer_a, market.dev["a"])
    body = contract_body([offer_id])
    app.extensions["faults"] = {"after:claim_offers": kill}
    with pytest.raises(WorkerKilled):
        post(market.aggregator, "contracts", body)
    app.extensions["faults"] = {}
    before = state(db)
    busy = post(market.aggregator, "contracts", body)
    assert busy.status_code == 409 and "still being processed" in busy.json["_error"]["message"]
    assert state(db) == before
    app.config["REQUEST_GRACE_SECONDS"] = 0  # the first attempt is surely dead now
    from registry.ops.metrics import ORPHANS_REPAIRED

    repaired_before = ORPHANS_REPAIRED.labels("reservations")._value.get()
    taken = post(market.aggregator, "contracts", body)
    assert taken.status_code == 201
    assert ORPHANS_REPAIRED.labels("reservations")._value.get() - repaired_before == 4  # at once, not by the tick
    contract = db["contracts"].find_one()
    assert db["contracts"].count_documents({}) == 1 and held_by(db) == {contract["_id"]: 4}
    assert db["offers"].find_one()["contract_id"] == contract["_id"]
