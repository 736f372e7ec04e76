"""A contract's writes in one MongoDB transaction where MongoDB has them (shown with a
fake session: no MongoDB server runs here): only on replica sets and mongos, reserve,
claim and insert commit together, a conflict aborts with no compensating writes, and
the API runs a contract that way."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import mongomock
import pytest
from bson import ObjectId

from registry.market import reservations
from registry.store import atomic
from registry.store.clock import utcnow
from registry.store.collections import GeoDatabase
from tests.conftest import as_json
from tests.support.market_setup import contract_body, market, publish  # noqa: F401  (fixtures)

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
