"""Day-ahead forecasting: baselines, the lagblend model, flexibility, documents."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from registry.forecast import baselines, documents, flexibility, timeseries
from registry.forecast import model as fc
from schemas.vocabulary import SLOTS_PER_DAY

DAY = SLOTS_PER_DAY
MONDAY = datetime(2024, 1, 15, tzinfo=UTC)


def constant_days(day_values, n_devices=1):
    """History whose day i is the constant day_values[i] for every slot."""
    row = np.repeat(np.asarray(day_values, dtype=float), DAY)
    return np.tile(row, (n_devices, 1))


def synthetic_load(n_devices, n_days, seed, start=MONDAY - timedelta(days=28)):
    """Daily + weekly pattern, per-device level, gamma noise: no model's own shape."""
    rng = np.random.default_rng(seed)
    slot = np.arange(n_days * DAY)
    hour = (slot % DAY) / 4
    weekend = np.array([(start + timedelta(days=int(d))).weekday() >= 5 for d in slot // DAY])
    daily = 0.4 + 0.3 * np.exp(-((hour - 8) ** 2) / 3) + 0.6 * np.exp(-((hour - 19) ** 2) / 4)
    shape = daily * np.where(weekend, 1.4, 1.0)
    level = rng.uniform(0.5, 3.0, (n_devices, 1))
    return level * shape + rng.gamma(0.8, 0.25, (n_devices, slot.size)) * level


# --- baselines -------------------------------------------------------------------


@pytest.mark.parametrize("period, expected", [(7, 1.0), (1, 7.0), (3, 5.0)])
def test_seasonal_naive_takes_the_day_period_days_back(period, expected):
    history = constant_days(range(8))
    assert np.array_equal(baselines.seasonal_naive(history, period), np.full((1, DAY), expected))


def test_yesterday_naive_is_the_last_day():
    history = constant_days(range(8)) + np.arange(8 * DAY)
    assert np.array_equal(baselines.yesterday_naive(history)[0], history[0, -DAY:])


@pytest.mark.parametrize("x, y, expected", [(10, 10, 6.5), (3, 10, 10.0), (5, 5, 9.0)])
def test_x_of_y_averages_the_most_recent_days(x, y, expected):
    history = constant_days(range(12))
    assert np.allclose(baselines.x_of_y_baseline(history, x, y), expected)


def test_x_of_y_skips_days_with_too_much_missing_data():
    history = constant_days(range(12))
    history[0, -DAY : -DAY + 30] = np.nan  # 31 % of the last day missing
    assert np.allclose(baselines.x_of_y_baseline(history, 10, 10), 5.5)  # days 1..10


def test_x_of_y_uses_only_days_of_the_target_day_type():
    history = constant_days(range(14))
    # For Monday 15 Jan the history runs Mon 1 .. Sun 14 Jan.
    weekday = baselines.x_of_y_baseline(history, 10, 10, target_day=MONDAY)
    assert np.allclose(weekday, np.mean([0, 1, 2, 3, 4, 7, 8, 9, 10, 11]))
    # For Saturday 13 Jan it runs Sat 30 Dec .. Fri 12 Jan.
    weekend = baselines.x_of_y_baseline(history, 10, 10, target_day=MONDAY - timedelta(days=2))
    assert np.allclose(weekend, np.mean([0, 1, 7, 8]))


def test_high_x_of_y_averages_the_highest_days():
    history = constant_days([100, 3, 9, 1, 7, 5, 8, 2, 6, 4, 0])  # day 0 is outside y=10
    assert np.allclose(baselines.high_x_of_y(history, 5, 10), 7.0)


def test_high_x_of_y_ranks_each_device_on_its_own_days():
    history = np.vstack([constant_days([1, 2, 3, 4]), constant_days([4, 3, 2, 1])])
    assert np.allclose(baselines.high_x_of_y(history, 2, 4)[:, 0], [3.5, 3.5])
    assert np.allclose(baselines.high_x_of_y(history, 1, 2)[:, 0], [4.0, 2.0])


def test_history_must_be_whole_days():
    with pytest.raises(ValueError, match="shape"):
        baselines.seasonal_naive(np.zeros((2, DAY * 7 + 1)))


# --- the model -------------------------------------------------------------------


@pytest.mark.parametrize(
    "issued_at, start",
    [
        ("2024-01-14T12:00:00Z", "2024-01-15T00:00:00Z"),
        ("2024-01-15T00:00:00Z", "2024-01-15T00:00:00Z"),
        (datetime(2024, 1, 14, 23, 59), "2024-01-15T00:00:00Z"),
    ],
)
def test_the_forecast_day_is_the_first_midnight_at_or_after_issue(issued_at, start):
    assert timeseries.iso(timeseries.target_start(issued_at)) == start


def test_forecast_has_96_slots_per_device_and_ordered_quantiles():
    history = synthetic_load(20, 28, seed=1)
    result = fc.forecast_day_ahead(history, MONDAY)
    for band in (result.p10, result.p50, result.p90):
        assert band.shape == (20, DAY) and np.isfinite(band).all()
    assert (result.p10 <= result.p50).all() and (result.p50 <= result.p90).all()
    assert (result.p90 - result.p10).mean() > 0
    assert result.start == MONDAY and result.model == fc.MODEL_NAME


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_forecast_beats_naive_baselines_on_a_weekly_and_daily_pattern(seed):
    data = synthetic_load(40, 29, seed)
    history, actual = data[:, :-DAY], data[:, -DAY:]
    model = np.abs(fc.forecast_day_ahead(history, MONDAY).p50 - actual).mean()
    assert model < np.abs(baselines.seasonal_naive(history) - actual).mean()
    assert model < np.abs(baselines.yesterday_naive(history) - actual).mean()


def test_p10_p90_band_covers_most_actuals():
    data = synthetic_load(40, 29, seed=6)
    result = fc.forecast_day_ahead(data[:, :-DAY], MONDAY)
    inside = (data[:, -DAY:] >= result.p10) & (data[:, -DAY:] <= result.p90)
    assert 0.6 < inside.mean() < 0.95


def test_forecast_ignores_data_after_the_issue_time():
    history = synthetic_load(5, 28, seed=7)
    altered = history.copy()
    altered[:, -48:] += 50.0  # the afternoon before the target day
    issued = MONDAY - timedelta(hours=12)
    first = fc.forecast_day_ahead(history, issued)
    second = fc.forecast_day_ahead(altered, issued)
    assert np.array_equal(first.p50, second.p50)


def test_forecast_tolerates_scattered_missing_slots():
    history = synthetic_load(10, 28, seed=8)
    history[np.random.default_rng(0).random(history.shape) < 0.1] = np.nan
    result = fc.forecast_day_ahead(history, MONDAY)
    assert np.isfinite(result.p50).all()


@pytest.mark.parametrize("damage", ["short", "gappy", "empty"])
def test_insufficient_history_raises_naming_the_devices(damage):
    history = synthetic_load(4, 10, seed=9)
    if damage == "short":
        history[1:3, : 4 * DAY] = np.nan  # only 6 complete days left
    elif damage == "gappy":
        days = history[1:3].reshape(2, 10, DAY)
        days[:, :, :25] = np.nan  # 26 % of every day missing
    else:
        history[1:3] = np.nan
    ids = ["dev-a", "dev-b", "dev-c", "dev-d"]
    with pytest.raises(fc.InsufficientData) as raised:
        fc.forecast_day_ahead(history, MONDAY, device_ids=ids)
    assert raised.value.devices == ["dev-b", "dev-c"]
    assert "dev-b" in str(raised.value) and "dev-c" in str(raised.value)
    assert "dev-a" not in str(raised.value)


def test_seven_good_days_are_enough():
    result = fc.forecast_day_ahead(synthetic_load(3, 7, seed=10), MONDAY)
    assert np.isfinite(result.p50).all()


def test_backtest_mae_is_near_zero_for_a_repeating_day_and_nan_without_past():
    day = np.sin(np.linspace(0, 2 * np.pi, DAY)) + 2
    history = np.tile(day, (2, 10))
    history[1, : 3 * DAY] = np.nan  # 6 usable past days: no back-test
    mae = fc.backtest_mae(history, MONDAY)
    assert mae[0] == pytest.approx(0.0, abs=0.01) and np.isnan(mae[1])


def test_forecast_can_carry_its_backtest_mae():
    result = fc.forecast_day_ahead(synthetic_load(3, 15, seed=11), MONDAY, backtest=True)
    assert result.backtest_mae.shape == (3,) and (result.backtest_mae > 0).all()


# --- flexibility -----------------------------------------------------------------


def consumption(p50, spread=0.5):
    p50 = np.asarray(p50, dtype=float).reshape(len(p50), -1)
    return fc.ForecastResult(start=MONDAY, issued_at=MONDAY, p50=p50, p10=p50 - spread, p90=p50 + spread)


@pytest.mark.parametrize(
    "p50, max_cap, avail, flag, up, down",
    [
        (2.0, 5.0, 10.0, "yes", 3.0, 2.0),  # free device: up to max, down to zero
        (2.0, 5.0, 1.0, "yes", 1.0, 1.0),  # available capacity caps both directions
        (6.0, 5.0, 10.0, "yes", 0.0, 6.0),  # already above max: cannot go up
        (-1.0, 5.0, 10.0, "yes", 6.0, 0.0),  # exporting: nothing to shed, 6 kW to add
        (2.0, 5.0, 10.0, "no", 0.0, 0.0),  # not available
        (2.0, 5.0, 10.0, "", 0.0, 0.0),
        (2.0, 5.0, np.nan, "yes", 3.0, 2.0),  # unknown available capacity: no extra cap
        (2.0, np.nan, 10.0, "yes", 0.0, 2.0),  # unknown max capacity: cannot go up
    ],
)
def test_flexibility_bounds_and_availability(p50, max_cap, avail, flag, up, down):
    flex = flexibility.flexibility_forecast(consumption([p50]), [max_cap], [avail], [flag])
    assert flex.up.p50[0, 0] == pytest.approx(up)
    assert flex.down.p50[0, 0] == pytest.approx(down)


def test_flexibility_is_per_device_and_per_slot_with_bands():
    cons = consumption([[1.0, 3.0], [2.0, 2.0]])
    flex = flexibility.flexibility_forecast(cons, [4.0, 4.0], [10.0, 10.0], ["yes", "no"])
    assert flex.down.p50.tolist() == [[1.0, 3.0], [0.0, 0.0]]
    assert flex.up.p50.tolist() == [[3.0, 1.0], [0.0, 0.0]]
    assert flex.down.p10[0].tolist() == [0.5, 2.5] and flex.up.p10[0].tolist() == [2.5, 0.5]
    assert (flex.down.p10 <= flex.down.p90).all() and (flex.up.p10 <= flex.up.p90).all()
    assert (flex.up.direction, flex.down.direction) == ("up", "down")


def test_a_generator_can_curtail_its_export():
    cons = consumption([-3.0], spread=0.0)
    flex = flexibility.flexibility_forecast(cons, [0.0], [np.nan], ["yes"], min_power=[-3.0])
    assert (flex.up.p50[0, 0], flex.down.p50[0, 0]) == (3.0, 0.0)


# --- documents -------------------------------------------------------------------


def test_documents_carry_every_field_of_a_forecast():
    history = synthetic_load(2, 14, seed=12)
    result = fc.forecast_day_ahead(history, MONDAY - timedelta(hours=2), backtest=True)
    docs = documents.documents_for(["d1", "d2"], result, "consumption", "lagblend-test")
    assert [d["device_id"] for d in docs] == ["d1", "d2"]
    doc = docs[0]
    assert doc["kind"] == "consumption" and doc["model"] == "lagblend-test"
    assert doc["start"] == "2024-01-15T00:00:00Z" and doc["issued_at"] == "2024-01-14T22:00:00Z"
    assert doc["resolution"] == 900 and len(doc["values"]) == DAY
    assert len(doc["quantiles"]["p10"]) == DAY and len(doc["quantiles"]["p90"]) == DAY
    assert isinstance(doc["values"][0], float) and isinstance(doc["backtest_mae"], float)
    assert "direction" not in doc


def test_flexibility_documents_name_their_direction():
    flex = flexibility.flexibility_forecast(consumption([[1.0] * DAY]), [3.0], [5.0], ["yes"])
    doc = documents.documents_for(["d1"], flex.down, "flexibility")[0]
    assert doc["direction"] == "down" and doc["values"] == [1.0] * DAY
    assert doc["backtest_mae"] is None and doc["model"].endswith("+flex")


@pytest.mark.parametrize("ids, kind", [(["d1"], "weather"), (["d1", "d2"], "consumption")])
def test_documents_reject_bad_kind_or_id_count(ids, kind):
    with pytest.raises(ValueError):
        documents.documents_for(ids, consumption([[1.0] * DAY]), kind)
