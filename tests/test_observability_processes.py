"""/ready, /metrics, request ids and JSON logs (registry/api/observability.py and friends).

This part, over real HTTP with gunicorn for what only several processes show:
metrics added up across workers, JSON log lines on stderr with a request id
running through them (also from the bridge's API client), and no password in a
logged URL or the worker banner."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from registry.ops import logs, request_ids
from tests.processes import REDIS_URL, free_port, gunicorn, seed_instance, unique_prefix
from tests.support.observed_app import samples
from tests.support.redis_server import redis_url


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

    before, ids, workers = health_count(), [], set()
    # the kernel hands connections to whichever worker accepts first: on a loaded machine one
    # worker may take a whole batch, so send batches until both workers have answered
    for _ in range(20):
        with ThreadPoolExecutor(6) as pool:  # one thread per worker: a busy worker leaves the next to the other
            ids += pool.map(health, range(60))
        lines = [json.loads(line) for line in served.stderr_lines()]
        workers = {line["process"] for line in lines if line.get("request_id") in set(ids)}
        if len(workers) == 2:
            break
    assert len(workers) == 2  # else this test shows nothing
    assert health_count() - before == len(ids)


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
