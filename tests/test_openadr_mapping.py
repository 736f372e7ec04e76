"""The bridge's pure mapping between the registry and OpenADR, no server: stable
device and event ids, units to kilowatts, contract signals, the history of a
VEN's answers on a contract, which reading times are accepted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from registry.openadr import mapping
from registry.openadr.api_client import format_eve_date


def test_device_and_event_ids_are_stable_and_distinct():
    ven_id = str(uuid.uuid4())
    assert mapping.device_id_for(ven_id, "a") == mapping.device_id_for(ven_id, "a")
    assert mapping.device_id_for(ven_id, "a") != mapping.device_id_for(ven_id, "b")
    assert len(mapping.device_id_for(ven_id, "a")) == 36
    assert mapping.event_id_for("c1", ven_id) == mapping.event_id_for("c1", ven_id)
    assert mapping.event_id_for("c1", ven_id) != mapping.event_id_for("c2", ven_id)


@pytest.mark.parametrize(
    "unit, scale, factor",
    [
        ("W", "none", 0.001),
        ("W", "k", 1.0),
        ("W", "M", 1000.0),
        ("kW", None, 1.0),
        ("J/s", "none", 0.001),
        ("J/s", "k", 1.0),
        ("MW", "none", 1000.0),
        ("W", "m", 1e-6),
        ("V", "none", None),
        ("W", "bogus", None),
        ("hp", "none", None),
    ],
)
def test_kilowatt_factor(unit, scale, factor):
    expected = None if factor is None else pytest.approx(factor)
    assert mapping.kilowatt_factor(unit, scale) == expected


@pytest.mark.parametrize(
    "direction, names, delta", [("down", ["SIMPLE", "LOAD_DISPATCH"], -2.0), ("up", ["LOAD_DISPATCH"], 2.0)]
)
def test_contract_signals_follow_the_registrys_direction(direction, names, delta):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    contract = {
        "_id": "c1",
        "start": format_eve_date(start),
        "direction": direction,
        "end": format_eve_date(start + timedelta(hours=1)),
        "power_kw": 2,
    }
    signals = mapping.contract_signals(contract)
    assert [s.signal_name for s in signals] == names
    assert signals[-1].intervals[0].signal_payload == delta
    assert signals[-1].intervals[0].duration == timedelta(hours=1)


def test_empty_contract_window_is_refused():
    with pytest.raises(ValueError):
        mapping.contract_signals(
            {"_id": "c", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T10:00:00Z", "power_kw": 1}
        )


AT = datetime(2030, 1, 1, tzinfo=UTC)


def answers(*steps: tuple[str, str, str]) -> dict | None:
    """The contract's ven_response after (ven_id, event_id, opt) answers, a minute apart."""
    response = None
    for minute, (ven_id, event_id, opt) in enumerate(steps):
        response = mapping.answer_with(response, ven_id, event_id, opt, AT + timedelta(minutes=minute)) or response
    return response


@pytest.mark.parametrize(
    "steps, shown, kept",
    [
        ([("v1", "e1", "optIn")], "optIn", 1),
        ([("v1", "e1", "optIn"), ("v1", "e1", "optIn")], "optIn", 1),  # a repeat is not a change
        ([("v1", "e1", "optIn"), ("v1", "e1", "optOut")], "optOut", 2),  # the VEN changed its mind
        ([("v1", "e1", "optOut"), ("v1", "e1", "optIn")], "optIn", 2),  # and back: the latest wins
        ([("v1", "e1", "optOut"), ("v2", "e2", "optIn")], "optOut", 2),  # another VEN's optOut stands
        ([("v1", "e1", "optOut"), ("v2", "e2", "optIn"), ("v1", "e1", "optIn")], "optIn", 3),
        ([("v1", "e1", "optIn"), ("v1", "e1", "optOut"), ("v1", "e1", "optIn")], "optIn", 3),
    ],
)
def test_the_contract_shows_each_vens_latest_answer_and_keeps_the_history(steps, shown, kept):
    response = answers(*steps)
    assert response["opt"] == shown
    assert len(response["history"]) == kept
    assert [entry["at"] for entry in response["history"]] == sorted(entry["at"] for entry in response["history"])
    assert all(entry["at"].endswith("Z") for entry in response["history"])


def test_a_repeated_answer_changes_nothing_and_an_old_record_seeds_the_history():
    first = answers(("v1", "e1", "optIn"))
    assert mapping.answer_with(first, "v1", "e1", "optIn", AT + timedelta(hours=1)) is None
    legacy = {"opt": "optIn", "event_id": "e1", "at": "2030-01-01T00:00:00Z"}  # no history yet
    changed = mapping.answer_with(legacy, "v1", "e1", "optOut", AT + timedelta(hours=1))
    assert [entry["opt"] for entry in changed["history"]] == ["optIn", "optOut"]


def test_the_history_keeps_the_newest_answers():
    flips = [("v1", "e1", "optOut" if i % 2 else "optIn") for i in range(mapping.HISTORY_LIMIT + 7)]
    response = answers(*flips)
    assert len(response["history"]) == mapping.HISTORY_LIMIT
    assert response["history"][-1]["opt"] == flips[-1][2] == response["opt"]


@pytest.mark.parametrize(
    "text, why",
    [
        ("2030-01-01T00:00:00Z", None),
        ("2030-01-01T00:00:00.250Z", None),
        ("2030-01-01T00:00:00", "no time zone"),
        ("2029-12-31T23:00:00-01:00", None),
        ("1990-01-01T00:00:00Z", "too far"),
        ("2060-01-01T00:00:00Z", "too far"),
        ("2030-01-01T01:30:00Z", "too far"),
        ("-2030-01-01T00:00:00Z", "not a date-time"),
    ],
)
def test_which_reading_times_are_accepted(text, why):
    if why is None:
        moment = mapping.reading_time(text, AT)
        assert moment.tzinfo is not None and abs(moment - AT) < timedelta(seconds=1)
    else:
        with pytest.raises(ValueError, match=why):
            mapping.reading_time(text, AT)
