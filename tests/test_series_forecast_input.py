"""GET /series?kind=forecast (quantiles of the sum against a hand-computed case) and the
400s of bad parameters (registry/api/series_params.py)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from tests.factories import device

A = "agg-alpha"
START = datetime(2030, 1, 2, tzinfo=UTC)


def forecast(dev: dict, p10: float, p50: float, p90: float, issued: int = 12) -> dict:
    return {
        "device_id": dev["device_id"],
        "kind": "consumption",
        "issued_at": datetime(2030, 1, 1, issued, tzinfo=UTC),
        "start": START,
        "resolution": 900,
        "model": "test",
        "values": [p50] * 96,
        "quantiles": {"p10": [p10] * 96, "p90": [p90] * 96},
    }


@pytest.fixture
def forecasts(insert) -> dict[str, dict]:
    """d1: p10 0.7, p50 1, p90 1.3 (and an older forecast of 50 kW); d2: 1, 2, 3."""
    devices = {"d1": device(aggregator_id=A), "d2": device(aggregator_id=A)}
    insert("devices", *devices.values())
    insert(
        "forecasts",
        forecast(devices["d1"], 0.7, 1.0, 1.3),
        forecast(devices["d1"], 40.0, 50.0, 60.0, issued=6),
        forecast(devices["d2"], 1.0, 2.0, 3.0),
    )
    return devices


def ask(client, **params):
    query = {"aggregator_id": A, "kind": "forecast", "start": "2030-01-02T00:00:00Z", "end": "2030-01-02T01:00:00Z"}
    return client.get("/series", query_string={**query, **params})


def test_p10_and_p90_of_the_sum_are_not_the_summed_quantiles(client_as, forecasts):
    response = ask(client_as("aggregator", aggregator_id=A), resolution="1h")
    assert response.status_code == 200, response.json
    (point,) = response.json["points"]
    # normal quantiles: half-widths z·σ_i = 0.3 and 1.0 add in quadrature, sqrt(0.09 + 1) = 1.044031
    half = math.sqrt(0.3**2 + 1.0**2)
    assert point["value"] == 3.0 and point["devices"] == 2
    assert point["p10"] == pytest.approx(3.0 - half, abs=1e-5)  # 1.955969, not 1.7
    assert point["p90"] == pytest.approx(3.0 + half, abs=1e-5)  # 4.044031, not 4.3


def test_the_mean_of_forecasts_and_slots_without_forecast(client_as, forecasts):
    response = ask(client_as("admin"), agg="mean", start="2030-01-02T23:30:00Z", end="2030-01-03T00:30:00Z")
    points = response.json["points"]
    assert [p["devices"] for p in points] == [2, 2, 0, 0]
    assert points[0]["value"] == 1.5
    assert points[0]["p90"] == pytest.approx(1.5 + math.sqrt(1.09) / 2, abs=1e-5)
    assert points[2]["value"] is None and points[2]["p10"] is None


def test_forecasts_are_scoped(client_as, forecasts):
    prosumer = client_as("prosumer", account_id=forecasts["d1"]["account_id"], aggregator_id=A)
    (point,) = ask(prosumer, resolution="1h").json["points"]
    assert (point["value"], point["devices"]) == (1.0, 1)
    assert point["p10"] == pytest.approx(0.7, abs=1e-5) and point["p90"] == pytest.approx(1.3, abs=1e-5)


NOT_CLOSED = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}
GOOD = {"start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z", "aggregator_id": A}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": None}, "start is required"),
        ({"end": "2030-01-01T00:00:00Z"}, "end must be after start"),
        ({"end": "2029-12-31T00:00:00Z"}, "end must be after start"),
        ({"end": "2030-02-02T00:00:00Z"}, "at most 31 days"),
        ({"resolution": "1d", "end": "2031-01-03T00:00:00Z"}, "at most 366 days"),
        ({"start": "yesterday"}, "ISO 8601"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "ISO 8601"),
        ({"end": "9999-12-31T23:00:00-05:00"}, "ISO 8601"),
        ({"start": "2030-01-01T00:07:00Z"}, "period boundary"),
        ({"resolution": "1h", "start": "2030-01-01T00:15:00Z"}, "period boundary"),
        ({"resolution": "5min"}, "resolution must be one of"),
        ({"agg": "median"}, "agg must be one of"),
        ({"agg": "NaN"}, "agg must be one of"),
        ({"kind": "forecast", "agg": "min"}, "agg must be one of sum, mean"),
        ({"kind": "forecast", "end": "2030-01-09T00:00:00Z"}, "at most 7 days"),
        ({"kind": "guess"}, "kind must be one of"),
        ({"colour": "red"}, "unknown query parameter"),
        ({"aggregator_id": None}, "name what to aggregate"),
        ({"aggregator_id": ""}, "must not be empty"),
        ({"within": json.dumps(NOT_CLOSED)}, "closed"),
        ({"within": '{"type": "Polygon", "coordinates": [[[NaN, 0], [1, 0], [1, 1], [NaN, 0]]]}'}, "finite"),
        ({"within": '{"type": "Point", "coordinates": [0, 0]}'}, "GeoJSON Polygon"),
        ({"within": "not json"}, "GeoJSON Polygon"),
        ({"within": json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]})}, "within"),
        ({"near": "2,41"}, "needs both"),
        ({"near": "2,41", "radius_m": "nan"}, "finite"),
        ({"near": "2,41", "radius_m": "-5"}, "more than 0"),
        ({"near": "2", "radius_m": "5"}, "lng,lat"),
        ({"near": "200,41", "radius_m": "5"}, "longitude"),
        ({"near": "2,41", "radius_m": "5", "within": json.dumps(NOT_CLOSED)}, "not both"),
    ],
)
def test_bad_parameters_are_400_with_a_clear_message(client_as, forecasts, params, message):
    query = {k: v for k, v in {**GOOD, **params}.items() if v is not None}
    response = client_as("admin").get("/series", query_string=query)
    assert response.status_code == 400, response.json
    assert message in response.json["_error"]["message"]


def test_a_repeated_parameter_is_400(client_as, forecasts):
    response = client_as("admin").get("/series?agg=sum&agg=mean&start=2030-01-01T00:00:00Z&end=2030-01-02T00:00:00Z")
    assert response.status_code == 400 and "once" in response.json["_error"]["message"]
