"""/ready, /metrics, request ids and JSON logs (registry/api/observability.py and friends).

This part, in process: /ready checks the store (and Redis, the VTN when
configured) without a token, is 503 naming the failed check and nothing secret,
and is not rate-limited; every answer has a request id (a well-formed one is
kept), which jobs and the access line carry."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from registry.ops import request_ids
from registry.store.collections import GeoDatabase
from tests.conftest import as_json
from tests.factories import device
from tests.processes import REDIS_URL, free_port
from tests.support.observed_app import make_app  # noqa: F401  (fixtures)


def test_ready_checks_the_store_without_a_token(make_app: Any) -> None:
    response = make_app().test_client().get("/ready")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "checks": {"store": "ok"}, "failed": []}


def test_ready_is_503_naming_the_failed_check_and_nothing_secret(make_app: Any, monkeypatch: Any) -> None:
    def unreachable(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ServerSelectionTimeoutError("db-1.internal:27017: timed out (user admin:hunter2)")

    monkeypatch.setattr(GeoDatabase, "command", unreachable, raising=False)
    response = make_app().test_client().get("/ready")
    assert response.status_code == 503
    assert response.json == {
        "status": "unavailable",
        "checks": {"store": "failed: ServerSelectionTimeoutError"},
        "failed": ["store"],
    }
    assert b"internal" not in response.data and b"hunter2" not in response.data


def test_ready_checks_redis_when_configured(make_app: Any) -> None:
    closed = free_port()
    response = make_app(REDIS_URL=f"redis://:s3cret@127.0.0.1:{closed}/0").test_client().get("/ready")
    assert response.status_code == 503 and response.json["failed"] == ["redis"]
    assert str(closed).encode() not in response.data and b"s3cret" not in response.data
    assert make_app(REDIS_URL=REDIS_URL).test_client().get("/ready").json["checks"] == {"store": "ok", "redis": "ok"}


def test_ready_checks_the_vtn_when_configured(make_app: Any) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        url = f"http://127.0.0.1:{listening.getsockname()[1]}/OpenADR2/Simple/2.0b"
        assert make_app(READY_VTN_URL=url).test_client().get("/ready").json["checks"]["vtn"] == "ok"
    down = make_app(READY_VTN_URL=url).test_client().get("/ready")
    assert down.status_code == 503 and down.json["failed"] == ["vtn"]


def test_probes_are_not_rate_limited(make_app: Any) -> None:
    client = make_app(RATE_LIMIT="2 per minute").test_client()
    assert {client.get(path).status_code for path in ["/ready", "/metrics", "/health"] * 4} == {200}


# --- request ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offered, kept",
    [
        ("3f2a6c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", True),
        ("caddy-42:7", True),
        ("", False),
        ("x" * 129, False),
        ("a b", False),
        ('a"}{"level":"ERROR', False),
        ("ünïcode", False),
    ],
)
def test_a_well_formed_request_id_is_kept_else_replaced(make_app: Any, offered: str, kept: bool) -> None:
    answer = make_app().test_client().get("/devices", headers={"X-Request-ID": offered})
    assert answer.status_code == 401  # any answer carries it, errors too
    returned = answer.headers["X-Request-ID"]
    assert (returned == offered) is kept
    assert request_ids.WELL_FORMED.fullmatch(returned)


def test_every_answer_has_a_request_id_even_from_the_limiter(make_app: Any) -> None:
    client = make_app(RATE_LIMIT="1 per minute").test_client()
    answers = [client.get("/devices"), client.get("/devices"), client.get("/no-such-thing")]
    assert [a.status_code for a in answers] == [401, 429, 404]
    ids = [a.headers["X-Request-ID"] for a in answers]
    assert len(set(ids)) == 3


def test_jobs_remember_the_request_that_queued_them(make_app: Any, token: Any) -> None:
    app = make_app()
    from registry.auth import mint_token

    admin = mint_token(app.config["INSTANCE_PATH"], app.config["OAUTH_ISSUER"], app.config["OAUTH_AUDIENCE"], "admin")
    dev = device()
    answer = app.test_client().post(
        "/devices", headers={"Authorization": f"Bearer {admin}", "X-Request-ID": "req-7"}, **as_json(dev)
    )
    assert answer.status_code == 201
    with app.app_context():
        queued = list(app.data.driver.db["jobs"].find({"subject": dev["device_id"]}))
    assert len(queued) == 2 and {job["request_id"] for job in queued} == {"req-7"}


def test_the_access_line_carries_the_request_id(make_app: Any, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="registry.access"):
        make_app().test_client().get("/devices", headers={"X-Request-ID": "trace-1"})
    line = next(r for r in caplog.records if r.name == "registry.access")
    assert (line.request_id, line.status, line.method, line.resource) == ("trace-1", 401, "GET", "devices")
