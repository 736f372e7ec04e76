"""The embedded store's equality indexes (registry.store.embedded_index) return exactly
what mongomock's full scan returns: same documents, same order, same counts and pages,
after inserts, updates, replacements, deletes and drops, whatever the stored values."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from registry.api.data_layer import scoped
from registry.store import embedded_index
from registry.store.collections import embedded_client

WORDS = ["a", "b", "c", "ab", ""]


def a_value(rng: random.Random) -> object:
    return rng.choice(
        [
            rng.choice(WORDS),
            rng.choice(WORDS),
            [rng.choice(WORDS), rng.choice(WORDS)],
            [[rng.choice(WORDS)]],
            [],
            None,
            3,
            True,
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            ObjectId(),
            {"x": rng.choice(WORDS)},
            "missing",
        ]
    )


def a_doc(rng: random.Random, i: int) -> dict:
    doc = {"n": i, "rank": rng.randint(0, 5)}
    for field in ("kind", "owner", "tags"):
        value = a_value(rng)
        if value != "missing":
            doc[field] = value
    return doc


QUERIES = [
    {"kind": "a"},
    {"kind": ""},
    {"kind": {"$eq": "b"}},
    {"kind": {"$in": ["a", "c"]}},
    {"kind": {"$in": ["a"], "$ne": "b"}},
    {"kind": {"$in": []}},
    {"kind": "a", "owner": "b"},
    {"$and": [{"kind": "a"}, {"owner": {"$in": ["b", "c"]}}]},
    {"$and": [{"kind": "a"}, {"$or": [{"owner": "b"}, {"tags": "c"}]}]},
    {"tags": "ab"},
    {"tags": ["a", "b"]},
    {"kind": None},
    {"kind": {"$exists": False}},
    {"kind": 3},
    {"kind": {"$ne": "a"}},
    {"kind": {"x": "a"}},
    {"owner": "a", "rank": {"$gt": 2}},
    {"$or": [{"kind": "a"}, {"owner": "a"}]},
    {},
]


@pytest.fixture
def pair() -> tuple:
    """The same documents twice: with declared indexes (the index is used) and without (a scan)."""
    db = embedded_client({})["index_test"]
    indexed, scanned = db["indexed"], db["scanned"]
    indexed.create_index([("kind", 1), ("owner", 1)])
    indexed.create_index([("tags", 1)])
    return indexed, scanned


def same(indexed, scanned) -> None:
    for query in QUERIES:
        assert list(indexed.find(query)) == list(scanned.find(query)), query
        assert indexed.count_documents(query) == scanned.count_documents(query), query
        page = {"sort": [("rank", -1)], "skip": 2, "limit": 3}
        assert list(indexed.find(query, {"n": 1}, **page)) == list(scanned.find(query, {"n": 1}, **page)), query


def both(pair, method: str, *args, **kwargs) -> None:
    for coll in pair:
        getattr(coll, method)(*args, **kwargs)


def test_the_index_is_used_and_answers_as_the_scan(pair) -> None:
    rng = random.Random(7)
    docs = [a_doc(rng, i) for i in range(300)]
    both(pair, "insert_many", [dict(d) for d in docs])
    indexed, scanned = pair
    same(indexed, scanned)
    store = indexed._store
    assert isinstance(store._documents, embedded_index.IndexedDocuments)
    assert store._documents.fields == {"kind", "owner", "tags"}
    assert not isinstance(scanned._store._documents, embedded_index.IndexedDocuments)
    narrowed = store._documents.candidates({"kind": "a"})
    assert narrowed is not None and len(narrowed) < 300


def test_after_updates_replacements_and_deletes(pair) -> None:
    rng = random.Random(11)
    both(pair, "insert_many", [a_doc(rng, i) for i in range(200)])
    for step in range(120):
        n = rng.randrange(200)
        value = a_value(rng)
        change = {"$unset": {"kind": ""}} if value == "missing" else {"$set": {"kind": value}}
        op = step % 8
        if op == 0:
            both(pair, "update_one", {"n": n}, change)
        elif op == 1:
            both(pair, "update_many", {"owner": rng.choice(WORDS)}, {"$set": {"owner": rng.choice(WORDS)}})
        elif op == 2:
            both(pair, "replace_one", {"n": n}, {"n": n, "kind": rng.choice(WORDS), "rank": 1})
        elif op == 3:
            both(pair, "delete_one", {"kind": rng.choice(WORDS)})
        elif op == 4:
            both(pair, "insert_one", a_doc(rng, 1000 + step))  # a new key goes last
        elif op == 5:
            both(pair, "find_one_and_update", {"n": n}, {"$set": {"tags": [rng.choice(WORDS), 1]}})
        elif op == 6:
            both(
                pair,
                "update_one",
                {"_id": f"u{step}", "n": 5000 + step},
                {"$set": {"kind": "a", "owner": "c"}},
                upsert=True,
            )
        else:
            both(pair, "update_many", {"kind": {"$in": ["a", "b"]}}, change)
        if step % 10 == 0:
            same(*pair)
    same(*pair)


def test_a_changed_value_moves_the_document(pair) -> None:
    indexed, _ = pair
    indexed.insert_many([{"n": 1, "kind": "a"}, {"n": 2, "kind": "b"}])
    assert [d["n"] for d in indexed.find({"kind": "a"})] == [1]
    indexed.update_one({"n": 1}, {"$set": {"kind": "c"}})
    assert list(indexed.find({"kind": "a"})) == []
    assert [d["n"] for d in indexed.find({"kind": "c"})] == [1]
    indexed.delete_one({"n": 1})
    indexed.insert_one({"n": 1, "kind": "b"})
    assert [d["n"] for d in indexed.find({"kind": "b"})] == [2, 1]  # storage order, as the scan gives it


def test_a_failed_update_leaves_the_index_right() -> None:
    indexed = embedded_client({})["index_test"]["unique"]
    indexed.create_index([("owner", 1)], unique=True)
    indexed.insert_many([{"n": 1, "owner": "a"}, {"n": 2, "owner": "b"}])
    with pytest.raises(DuplicateKeyError):
        indexed.update_one({"n": 2}, {"$set": {"owner": "a"}})  # duplicate: mongomock rolls back
    assert [d["n"] for d in indexed.find({"owner": "b"})] == [2]
    assert [d["n"] for d in indexed.find({"owner": "a"})] == [1]


def test_a_dropped_collection_is_indexed_again(pair) -> None:
    indexed, _ = pair
    indexed.insert_one({"n": 1, "kind": "a"})
    assert indexed.count_documents({"kind": "a"}) == 1
    indexed.drop()
    indexed.create_index([("kind", 1)])
    indexed.insert_one({"n": 2, "kind": "a"})
    assert [d["n"] for d in indexed.find({"kind": "a"})] == [2]


def test_string_keys() -> None:
    assert embedded_index.string_keys("a") == {"a"}
    assert embedded_index.string_keys(["a", ["b"], 3]) == {"a", "b"}
    assert embedded_index.string_keys(None) == set()
    assert embedded_index.string_keys(dt.datetime(2026, 1, 1)) == {embedded_index.ANY}
    assert embedded_index.pinned_strings({"$in": ["a", 1]}) is None
    assert embedded_index.pinned_strings({"a": 1}) is None


def test_the_scope_joins_the_filter_or_an_and() -> None:
    def combine(a: dict, b: dict) -> dict:
        return {"$and": [a, b]}

    scope = {"aggregator_id": "x"}
    assert scoped(None, scope, combine) == scope
    assert scoped({"kind": "a"}, scope, combine) == {"kind": "a", "aggregator_id": "x"}
    assert scoped({"aggregator_id": "x"}, scope, combine) == {"aggregator_id": "x"}
    assert scoped({"aggregator_id": "y"}, scope, combine) == {"$and": [{"aggregator_id": "y"}, scope]}
    other = {"aggregator_id": {"$ne": "x"}}
    assert scoped(other, scope, combine) == {"$and": [other, scope]}
