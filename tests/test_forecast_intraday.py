"""Intraday and hour-ahead forecasts: the day-ahead forecast corrected by the morning's readings."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from registry.forecast import intraday
from registry.forecast import model as fc
from tests.test_forecasting import DAY, MONDAY, synthetic_load


def history_with_today(n_devices=4, seed=41):
    """28 days before Monday, then Monday itself (29 days, aligned to UTC days)."""
    return synthetic_load(n_devices, 29, seed)


def test_a_device_switched_off_this_morning_is_forecast_near_zero_for_the_next_hours():
    history = history_with_today()
    history[0, 28 * DAY + 6 * 4 :] = 0.0  # off from 06:00 on Monday
    issued = MONDAY + timedelta(hours=9)
    result = intraday.forecast_intraday(history, issued)
    level = np.nanmean(history[0, : 28 * DAY])
    first_hour = result.p50[0, : intraday.HOUR_AHEAD_SLOTS]
    assert first_hour.mean() < 0.1 * level and first_hour.max() < 0.2 * level
    assert result.p90[0, : intraday.HOUR_AHEAD_SLOTS].max() < 0.25 * level
    day_ahead = fc.forecast_day_ahead(history[:, :-DAY], MONDAY).p50
    assert day_ahead[0, 36:40].min() > 0.4 * level  # what the day-ahead forecast still expects
    others = result.p50[1:, :4] - day_ahead[1:, 36:40]
    assert np.abs(others).max() < np.abs(day_ahead[1:, 36:40]).max()  # the others keep their level


@pytest.mark.parametrize(
    "issued, horizon, start",
    [
        (datetime(2024, 1, 15, 9, 0, tzinfo=UTC), 32, "2024-01-15T09:00:00Z"),
        (datetime(2024, 1, 15, 9, 5, tzinfo=UTC), 4, "2024-01-15T09:15:00Z"),
        (datetime(2024, 1, 15, 20, 0, tzinfo=UTC), 32, "2024-01-15T20:00:00Z"),  # crosses midnight
    ],
)
def test_each_forecast_carries_its_issue_time_and_starts_at_the_next_quarter_hour(issued, horizon, start):
    result = intraday.forecast_intraday(history_with_today(), issued, horizon)
    assert result.issued_at == issued and f"{result.start:%Y-%m-%dT%H:%M:%SZ}" == start
    for band in (result.p10, result.p50, result.p90):
        assert band.shape == (4, horizon) and np.isfinite(band).all()
    assert (result.p10 <= result.p50 + 1e-9).all() and (result.p50 <= result.p90 + 1e-9).all()


def test_readings_after_the_issue_time_are_ignored():
    history = history_with_today()
    altered = history.copy()
    altered[:, 28 * DAY + 40 :] += 50.0  # after 10:00
    issued = MONDAY + timedelta(hours=10)
    assert np.array_equal(
        intraday.forecast_intraday(history, issued).p50, intraday.forecast_intraday(altered, issued).p50
    )


def test_a_horizon_past_tomorrow_is_refused():
    with pytest.raises(ValueError, match="horizon"):
        intraday.forecast_intraday(history_with_today(), MONDAY + timedelta(hours=20), horizon=200)


def test_a_device_without_enough_history_fails_by_name():
    history = history_with_today()
    history[2, : 26 * DAY] = np.nan
    with pytest.raises(fc.InsufficientData) as raised:
        intraday.forecast_intraday(history, MONDAY + timedelta(hours=9), device_ids=["a", "b", "c", "d"])
    assert raised.value.devices == ["c"]
