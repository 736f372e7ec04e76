"""The telemetry spool: readings the VTN accepted and the registry has not yet.

sqlite3 (stdlib): each ``add`` is one transaction, committed before the VTN
answers the VEN, so a reading it acknowledged survives a crash or a restart;
a torn write of an append-only text file cannot, and sqlite needs no server.
Rows are deleted once the registry answered for them (stored or rejected);
ingestion is idempotent per (device_id, timestamp), so re-sending a batch whose
answer was lost in a crash stores nothing twice.
"""

from __future__ import annotations

import json
import os
import sqlite3


class Spool:
    """An append-only queue of measurement documents in one sqlite file."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        # one event loop uses it; check_same_thread off for a bridge stopped from another thread
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # committed means on disk
        self._db.execute("CREATE TABLE IF NOT EXISTS readings (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT)")

    def load(self) -> list[tuple[int, dict]]:
        rows = self._db.execute("SELECT seq, doc FROM readings ORDER BY seq").fetchall()
        return [(seq, json.loads(doc)) for seq, doc in rows]

    def add(self, docs: list[dict]) -> list[int]:
        seqs = []
        with self._db:  # one transaction: all of them or none
            for doc in docs:
                cursor = self._db.execute("INSERT INTO readings (doc) VALUES (?)", (json.dumps(doc),))
                seqs.append(cursor.lastrowid)
        return seqs

    def remove(self, seqs: list[int]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM readings WHERE seq = ?", [(seq,) for seq in seqs])

    def close(self) -> None:
        self._db.close()
