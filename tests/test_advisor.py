"""Advisor: prosumer slot tags and aggregator device sets, from hand-made inputs."""

from datetime import UTC, datetime, timedelta

import pytest

from registry.forecast import advisor

START = datetime(2024, 1, 15, tzinfo=UTC)
ISSUED = "2024-01-14T12:00:00Z"


def slot(i):
    return START + timedelta(minutes=15 * i)


def advise(prices, p50=None, p90=None, max_power=None, dr_events=()):
    n = len(prices)
    return advisor.prosumer_advice(
        "acc-1", START, prices, p50 or [1.0] * n, p90 or [1.0] * n, max_power, dr_events, issued_at=ISSUED
    )


def tags_and_codes(document):
    return [s["tag"] for s in document["slots"]], [s["code"] for s in document["slots"]]


# --- prosumer ------------------------------------------------------------------


def test_price_quartiles_give_tags_one_to_four():
    tags, codes = tags_and_codes(advise([1, 2, 3, 4, 5, 6, 7, 8]))
    assert tags == [1, 1, 2, 2, 3, 3, 4, 4]
    assert codes == ["LOW_PRICE"] * 2 + ["BELOW_MEDIAN_PRICE"] * 2 + ["ABOVE_MEDIAN_PRICE"] * 2 + ["HIGH_PRICE"] * 2


@pytest.mark.parametrize(
    "prices, tags, codes",
    [
        ([0.2, 0.2, 0.2], [2, 2, 2], ["FLAT_PRICE"] * 3),
        ([None, None], [3, 3], ["NO_PRICE"] * 2),
        (
            [0.1, None, 0.3, 0.2, 0.4],
            [1, 3, 3, 2, 4],
            ["LOW_PRICE", "NO_PRICE", "ABOVE_MEDIAN_PRICE", "BELOW_MEDIAN_PRICE", "HIGH_PRICE"],
        ),
    ],
)
def test_flat_and_missing_prices(prices, tags, codes):
    assert tags_and_codes(advise(prices)) == (tags, codes)


def test_power_limit_turns_slots_into_warnings_and_bans():
    p90 = [5.0, 8.9, 9.0, 10.0, 10.5, 2.0]
    tags, codes = tags_and_codes(advise([1, 1, 1, 1, 1, 2], p90=p90, max_power=10.0))
    assert tags == [1, 1, 4, 4, 5, 4]
    assert codes == ["LOW_PRICE", "LOW_PRICE", "NEAR_POWER_LIMIT", "NEAR_POWER_LIMIT", "OVER_POWER_LIMIT", "HIGH_PRICE"]


def test_p50_over_the_limit_is_forbidden_even_with_a_low_p90():
    tags, codes = tags_and_codes(advise([1, 2], p50=[12.0, 1.0], p90=[3.0, 3.0], max_power=10.0))
    assert (tags[0], codes[0]) == (5, "OVER_POWER_LIMIT")


@pytest.mark.parametrize("status, tag", [("accepted", 4), ("active", 5)])
def test_down_dr_events_discourage_consumption(status, tag):
    event = {"start": slot(1).isoformat(), "end": slot(3).isoformat(), "direction": "down", "status": status}
    tags, codes = tags_and_codes(advise([1, 2, 3, 4, 5], dr_events=[event]))
    assert tags == [1, tag, tag, 3, 4]
    assert codes[1:3] == ["DR_EVENT", "DR_EVENT"]


def test_up_dr_events_do_not_restrict_consumption():
    event = {"start": slot(0), "end": slot(2), "direction": "up", "status": "active"}
    assert tags_and_codes(advise([1, 2], dr_events=[event]))[0] == [1, 4]


def test_the_worst_reason_wins_and_ties_follow_the_priority_order():
    event = {"start": slot(0), "end": slot(4), "direction": "down", "status": "accepted"}
    tags, codes = tags_and_codes(advise([1, 2, 3, 4], p90=[9.5, 11.0, 1.0, 1.0], max_power=10.0, dr_events=[event]))
    assert tags == [4, 5, 4, 4]
    # slot 0: near the limit (4) and a DR event (4): DR_EVENT ranks first
    assert codes == ["DR_EVENT", "OVER_POWER_LIMIT", "DR_EVENT", "DR_EVENT"]


def test_prosumer_document_shape():
    doc = advisor.prosumer_advice(
        "acc-1", START, [0.1, 0.2], [1.0, 1.0], [1.5, 1.5], 5.0, device_id="dev-1", issued_at=ISSUED
    )
    assert {k: doc[k] for k in ("kind", "account_id", "device_id", "issued_at", "start", "resolution")} == {
        "kind": "prosumer",
        "account_id": "acc-1",
        "device_id": "dev-1",
        "issued_at": ISSUED,
        "start": "2024-01-15T00:00:00Z",
        "resolution": 900,
    }
    assert doc["slots"][1] == {
        "start": "2024-01-15T00:15:00Z",
        "tag": 4,
        "code": "HIGH_PRICE",
        "message": advisor.MESSAGES["HIGH_PRICE"],
    }


def test_prosumer_advice_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        advisor.prosumer_advice("acc-1", START, [0.1], [1.0, 1.0], [1.0, 1.0], 5.0)


# --- aggregator ----------------------------------------------------------------


def flex(values, p10=None, start=START):
    return {
        "start": start.isoformat(),
        "resolution": 900,
        "values": values,
        "quantiles": {"p10": p10 or values, "p90": values},
    }


def device(device_id, down, p10=None, available="yes", contracted=(), lon=6.0, lat=51.0):
    return {
        "device_id": device_id,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "marketplace_availability": available,
        "contracted": list(contracted),
        "flexibility": {"down": flex(down, p10)},
    }


WINDOW = (slot(1), slot(3))  # two slots: 1 and 2


def aggregate(candidates, target, **kw):
    return advisor.aggregator_advice("agg-1", target, WINDOW[0], WINDOW[1], "down", candidates, **kw)


def chosen(document):
    return [d["device_id"] for d in document["devices"]]


def test_expected_kw_is_the_minimum_over_the_window_and_confidence_from_p10():
    doc = aggregate([device("a", [9, 2.0, 3.0, 9], p10=[0, 1.0, 1.5, 0])], 1.0)
    assert doc["devices"] == [{"device_id": "a", "expected_kw": 2.0, "confidence": 0.5}]


def test_selection_covers_the_target_preferring_firm_capacity():
    candidates = [
        device("shaky", [5, 5, 5, 5], p10=[1, 1, 1, 1]),  # firm 1.0
        device("solid", [3, 3, 3, 3], p10=[3, 3, 3, 3]),  # firm 3.0
        device("small", [2, 2, 2, 2], p10=[2, 2, 2, 2]),  # firm 2.0
        device("spare", [1, 1, 1, 1]),
    ]
    doc = aggregate(candidates, 4.5)
    assert chosen(doc) == ["solid", "small"]
    assert doc["expected_total_kw"] == 5.0 and doc["shortfall_kw"] == 0.0


@pytest.mark.parametrize(
    "excluded",
    [
        device("x", [9, 9, 9, 9], available="no"),
        device("x", [9, 9, 9, 9], contracted=[{"start": slot(2), "end": slot(6)}]),
        device("x", [9, 9, 9, 9], lon=13.4, lat=52.5),  # Berlin, far away
        device("x", [9, 0, 9, 9]),  # no flexibility in slot 1
        device("x", [9, 9]),  # forecast ends too early
    ],
)
def test_unavailable_contracted_distant_or_empty_devices_are_excluded(excluded):
    doc = aggregate([excluded, device("ok", [1, 1, 1, 1])], 2.0, point=[6.1, 51.05], radius_km=20)
    assert chosen(doc) == ["ok"]


def test_a_contract_ending_when_the_window_starts_does_not_exclude():
    near = device("a", [2, 2, 2, 2], contracted=[{"start": slot(0), "end": slot(1)}])
    assert chosen(aggregate([near], 1.0)) == ["a"]


def test_shortfall_is_reported_when_the_target_cannot_be_covered():
    doc = aggregate([device("a", [1, 1, 1, 1]), device("b", [0.5, 0.5, 0.5, 0.5])], 4.0)
    assert chosen(doc) == ["a", "b"]
    assert doc["expected_total_kw"] == 1.5 and doc["shortfall_kw"] == 2.5


def test_aggregator_document_shape():
    doc = advisor.aggregator_advice(
        "agg-1",
        1.0,
        "2024-01-15T00:15:00Z",
        "2024-01-15T00:45:00Z",
        "down",
        [device("a", [1, 1, 1, 1])],
        issued_at=ISSUED,
    )
    assert doc == {
        "kind": "aggregator",
        "aggregator_id": "agg-1",
        "target_kw": 1.0,
        "start": "2024-01-15T00:15:00Z",
        "end": "2024-01-15T00:45:00Z",
        "direction": "down",
        "devices": [{"device_id": "a", "expected_kw": 1.0, "confidence": 1.0}],
        "expected_total_kw": 1.0,
        "shortfall_kw": 0.0,
        "issued_at": ISSUED,
    }


def test_up_requests_use_the_up_forecast():
    both = device("a", [1, 1, 1, 1])
    both["flexibility"]["up"] = flex([4, 4, 4, 4])
    doc = advisor.aggregator_advice("agg-1", 3.0, WINDOW[0], WINDOW[1], "up", [both])
    assert doc["devices"][0]["expected_kw"] == 4.0


@pytest.mark.parametrize("direction, end", [("sideways", WINDOW[1]), ("down", WINDOW[0])])
def test_bad_direction_or_window_is_rejected(direction, end):
    with pytest.raises(ValueError):
        advisor.aggregator_advice("agg-1", 1.0, WINDOW[0], end, direction, [])


def test_haversine_distance():
    assert advisor.haversine_km([6.97, 51.40], [8.55, 49.52]) == pytest.approx(237, abs=3)
