"""/ready, /metrics, request ids and JSON logs (registry/api/observability.py and friends).

In process for the rules, over real HTTP with gunicorn for what only several
processes show: metrics added up across workers, log lines on stderr.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import ServerSelectionTimeoutError

from registry import create_app, jobs
from registry.ops import logs, request_ids
from registry.store.collections import GeoCollection, GeoDatabase
from tests.conftest import as_json
from tests.factories import device
from tests.processes import REDIS_URL, free_port, gunicorn, seed_instance, unique_prefix
from tests.support.redis_server import redis_url


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


# --- /ready --------------------------------------------------------------------------------


@pytest.fixture
def make_app(instance_path: str) -> Any:
    def make_app(**config: Any) -> Any:
        return create_app({"INSTANCE_PATH": instance_path, "TESTING": True, **config})

    return make_app


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


# --- JSON logs -----------------------------------------------------------------------------


def test_log_lines_are_one_json_object_each_with_the_request_id() -> None:
    stream = io.StringIO()
    handler = logs.configure("json", "INFO", stream)
    try:
        bound = request_ids.bind("req-9")
        logging.getLogger("registry.test").info("two\nlines", extra={"status": 201})
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("registry.test").exception("failed")
        request_ids.unbind(bound)
        logging.getLogger("registry.test").warning("outside a request")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["level"], x["message"], x["request_id"]) for x in lines] == [
        ("INFO", "two\nlines", "req-9"),
        ("ERROR", "failed", "req-9"),
        ("WARNING", "outside a request", None),
    ]
    assert lines[0]["status"] == 201 and "ValueError: bad" in lines[1]["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", lines[0]["time"])


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.configure("xml")


# --- /metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ, headers, status",
    [
        ({"REMOTE_ADDR": "127.0.0.1"}, {}, 200),
        ({"REMOTE_ADDR": "::1"}, {}, 200),
        ({"REMOTE_ADDR": "10.1.2.3"}, {}, 403),
        # a proxy on this host forwarding someone else's request is not this host
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "198.51.100.1"}, 403),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"Forwarded": "for=198.51.100.1"}, 403),
        ({"REMOTE_ADDR": "10.1.2.3"}, {"Authorization": "Bearer scrape-secret"}, 200),
        ({"REMOTE_ADDR": "10.1.2.3"}, {"Authorization": "Bearer scrape-secret", "X-Forwarded-For": "1.2.3.4"}, 200),
        ({"REMOTE_ADDR": "10.1.2.3"}, {"Authorization": "Bearer wrong"}, 403),
        ({"REMOTE_ADDR": "10.1.2.3"}, {"Authorization": "Basic scrape-secret"}, 403),
    ],
)
def test_metrics_answer_loopback_or_the_metrics_token(make_app: Any, environ: dict, headers: dict, status: int) -> None:
    answer = (
        make_app(METRICS_TOKEN="scrape-secret").test_client().get("/metrics", headers=headers, environ_base=environ)
    )
    assert answer.status_code == status
    if status == 403:
        assert b"der_registry" not in answer.data and b"METRICS_TOKEN" in answer.data


def test_without_a_metrics_token_only_loopback_may_scrape(make_app: Any) -> None:
    client = make_app().test_client()
    assert (
        client.get(
            "/metrics", headers={"Authorization": "Bearer "}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
        ).status_code
        == 403
    )


def test_metrics_count_requests_by_resource_method_and_status(make_app: Any) -> None:
    client = make_app().test_client()
    before = samples(client.get("/metrics").get_data(as_text=True))
    for _ in range(3):
        client.get("/devices")
    client.post("/offers", **as_json({}))
    after = client.get("/metrics").get_data(as_text=True)
    name = "der_registry_request_duration_seconds_count"
    for labels, count in [
        ({"resource": "devices", "method": "GET", "status": "401"}, 3),
        ({"resource": "offers", "method": "POST", "status": "401"}, 1),
    ]:
        key = (name, tuple(sorted(labels.items())))
        assert after and samples(after)[key] - before.get(key, 0.0) == count


def test_metrics_read_jobs_and_the_tick_from_the_store(make_app: Any) -> None:
    app = make_app()
    client = app.test_client()
    page = client.get("/metrics").get_data(as_text=True)
    assert value(page, "der_registry_jobs", status="queued") == 0
    assert value(page, "der_registry_tick_lag_seconds") == float("inf")  # no tick yet
    with app.app_context():
        app.data.driver.db["jobs"].insert_many(
            [{"status": "queued", "not_before": jobs.records.utcnow()}, {"status": "failed"}, {"status": "failed"}]
        )
    jobs.tick(app)
    page = client.get("/metrics").get_data(as_text=True)
    assert [value(page, "der_registry_jobs", status=s) for s in ("queued", "running", "failed")] == [1, 0, 2]
    assert value(page, "der_registry_jobs_oldest_due_seconds") >= 0
    assert value(page, "der_registry_tick_lag_seconds") == 0
    assert value(page, "der_registry_store_up") == 1


def test_a_store_outage_costs_the_store_figures_not_the_scrape(make_app: Any, monkeypatch: Any) -> None:
    app = make_app()

    def unreachable(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ServerSelectionTimeoutError("down")

    monkeypatch.setattr(GeoCollection, "count_documents", unreachable)
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert value(page, "der_registry_store_up") == 0 and "der_registry_jobs{" not in page


# --- several processes over real HTTP --------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: Any) -> Any:
    """gunicorn, two workers, one instance folder, the real Redis; logs at DEBUG."""
    tmp_path = tmp_path_factory.mktemp("observability")
    instance = seed_instance(str(tmp_path / "instance"))
    extra = {
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_KEY_PREFIX": unique_prefix(),
        "LOG_LEVEL": "DEBUG",
        "GUNICORN_THREADS": "1",
    }
    with gunicorn(tmp_path, extra, workers=2, instance_path=instance) as server:
        yield server


def test_metrics_add_up_every_worker(served: Any) -> None:
    def health_count() -> float:
        page = requests.get(served.url + "/metrics", timeout=10).text
        return samples(page).get(
            (
                "der_registry_request_duration_seconds_count",
                (("method", "GET"), ("resource", "health"), ("status", "200")),
            ),
            0.0,
        )

    def health(_: int) -> str:
        answer = requests.get(served.url + "/health", headers={"Connection": "close"}, timeout=10)
        assert answer.status_code == 200
        return answer.headers["X-Request-ID"]

    before = health_count()
    with ThreadPoolExecutor(6) as pool:  # one thread per worker: a busy worker leaves the next to the other
        ids = list(pool.map(health, range(60)))
    lines = [json.loads(line) for line in served.stderr_lines()]
    workers = {line["process"] for line in lines if line.get("request_id") in ids}
    assert len(workers) == 2  # else this test shows nothing
    assert health_count() - before == 60


def test_stderr_is_json_lines_and_a_request_id_runs_through_them(served: Any) -> None:
    answer = requests.get(served.url + "/devices", headers={"X-Request-ID": "e2e-req-1"}, timeout=10)
    assert answer.status_code == 401 and answer.headers["X-Request-ID"] == "e2e-req-1"
    generated = requests.get(served.url + "/devices", timeout=10).headers["X-Request-ID"]
    lines = [json.loads(line) for line in served.stderr_lines()]  # every line is one JSON object
    ours = [line for line in lines if line.get("request_id") == "e2e-req-1"]  # at DEBUG, Redis's too
    assert [(x["status"], x["path"]) for x in ours if x["logger"] == "registry.access"] == [(401, "/devices")]
    assert any(line.get("request_id") == generated for line in lines)


def test_the_bridge_api_client_sends_the_request_id(served: Any) -> None:
    from registry.auth import mint_token
    from registry.openadr.api_client import ApiClient

    service = mint_token(served.instance_path, served.url, "der-registry", "service")

    async def calls() -> None:
        async with ApiClient(served.url, token=service) as api:
            bound = request_ids.bind("bridge-call-1")
            try:
                assert (await api.request("GET", "/devices"))[0] == 200
            finally:
                request_ids.unbind(bound)
            assert (await api.request("GET", "/vens"))[0] == 200  # outside a request: a fresh id

    asyncio.run(calls())
    access = [json.loads(line) for line in served.stderr_lines() if '"registry.access"' in line]
    devices = [x for x in access if x["path"] == "/devices" and x["status"] == 200]
    vens = [x for x in access if x["path"] == "/vens" and x["status"] == 200]
    assert [x["request_id"] for x in devices] == ["bridge-call-1"]
    assert len(vens) == 1 and request_ids.WELL_FORMED.fullmatch(vens[0]["request_id"])


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("mongodb://app:s3cret@m1,m2/db?replicaSet=rs0", "mongodb://app:***@m1,m2/db?replicaSet=rs0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_urls_are_logged_without_their_password(url: str, shown: str) -> None:
    assert logs.redacted(url) == shown


def test_the_worker_banner_shows_no_redis_password(tmp_path: Any) -> None:
    import subprocess
    import sys

    from tests.processes import ROOT, app_env

    env = app_env(
        str(tmp_path / "instance"),
        free_port(),
        {
            "JOBS_BACKEND": "rq",
            "JOBS_QUEUE": unique_prefix(),
            "REDIS_URL": redis_url(0).replace("redis://", "redis://:s3cret-pw@"),
        },
    )
    ran = subprocess.run(
        [sys.executable, "run.py", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "RQ worker: queue" in ran.stdout  # the banner came out (the worker then fails: Redis has no password)
    assert "s3cret-pw" not in ran.stdout + ran.stderr
