"""Fixtures: a fresh app and store per test, a client, and request helpers."""
from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from registry import create_app


@pytest.fixture
def app(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True})
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """The raw store, to check what was (not) written."""
    with app.app_context():
        return app.data.driver.db


@pytest.fixture
def insert(app, db) -> Callable[..., list[dict]]:
    """Put documents straight into the store, as Eve would have stored them."""
    from datetime import datetime

    from eve.utils import document_etag

    def insert(resource: str, *docs: dict[str, Any]) -> list[dict]:
        now = datetime.utcnow().replace(microsecond=0)
        stored = [{**d, "_created": now, "_updated": now} for d in docs]
        with app.app_context():
            for d in stored:
                d["_etag"] = document_etag(d)
        db[resource].insert_many([dict(d) for d in stored])
        return stored
    return insert


def as_json(data: Any) -> dict[str, Any]:
    return {"data": json.dumps(data), "content_type": "application/json"}
