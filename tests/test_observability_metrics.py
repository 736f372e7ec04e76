"""/ready, /metrics, request ids and JSON logs (registry/api/observability.py and friends).

This part, in process: log lines are one JSON object each, with the request id
(an unknown log format is refused); /metrics answers loopback or the metrics
token, counts requests, reads jobs and the tick from the store, and a store
outage costs the store figures, not the scrape."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from registry import jobs
from registry.ops import logs, request_ids
from registry.store.collections import GeoCollection
from tests.conftest import as_json
from tests.support.observed_app import make_app, samples, value  # noqa: F401  (fixtures)

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
