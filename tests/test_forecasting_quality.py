"""Forecasts are never silently wrong and their band is calibrated (issue 16, items 2
and 3): a bad value stays in its own device, stale histories fail with a reason,
every forecast says what it was fitted on, p10-p90 covers about 80 %."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from registry.forecast import documents, quality
from registry.forecast import model as fc
from tests.test_forecasting import DAY, MONDAY, synthetic_load

# --- never silently wrong ----------------------------------------------------------


def _moved(before: np.ndarray, after: np.ndarray) -> float:
    """Largest change of a forecast, relative to the device's mean level."""
    return float(np.max(np.abs(after - before) / np.abs(before).mean(axis=1, keepdims=True)))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_non_finite_value_stays_in_its_own_device(bad):
    history = synthetic_load(6, 28, seed=21)
    clean = fc.forecast_day_ahead(history, MONDAY)
    history[0, 27 * DAY + 40] = bad
    result = fc.forecast_day_ahead(history, MONDAY)
    for band in (result.p10, result.p50, result.p90):
        assert np.isfinite(band).all()
    assert _moved(clean.p50[1:], result.p50[1:]) < 0.01
    assert _moved(clean.p50[:1], result.p50[:1]) < 0.05


def test_a_spike_in_one_device_does_not_move_the_others():
    history = synthetic_load(6, 28, seed=22)
    clean = fc.forecast_day_ahead(history, MONDAY)
    history[0, 26 * DAY + 70] *= 10_000
    result = fc.forecast_day_ahead(history, MONDAY)
    assert _moved(clean.p50[1:], result.p50[1:]) < 0.01
    assert _moved(clean.p50[:1], result.p50[:1]) < 0.05  # the spiked device's own forecast too
    assert result.p90[0].max() < 2 * np.nanmax(history[0][history[0] < 1000])


@pytest.mark.parametrize("missing_days", [21, 27])
def test_a_history_whose_last_weeks_are_missing_fails_instead_of_a_flat_line(missing_days):
    history = synthetic_load(3, 28, seed=23)
    history[1, -missing_days * DAY :] = np.nan
    with pytest.raises(fc.InsufficientData) as raised:
        fc.forecast_day_ahead(history, MONDAY, device_ids=["dev-a", "dev-b", "dev-c"])
    assert raised.value.devices == ["dev-b"]


def test_a_stale_device_gets_its_own_reason_and_the_others_are_assessed_fine():
    history = synthetic_load(3, 28, seed=24)
    history[1, -21 * DAY :] = np.nan
    history[2, : 25 * DAY] = np.nan  # three days: thin
    _, report = quality.assess(history, MONDAY)
    assert report.reasons[0] is None
    assert report.reasons[1].startswith("history too stale to forecast")
    assert "last reading 2023-12-24T23:45:00Z" in report.reasons[1]
    assert (
        report.reasons[2].startswith("not enough history to forecast") and "found 3 in the 28 days" in report.reasons[2]
    )


def test_every_forecast_document_says_what_it_was_fitted_on():
    history = synthetic_load(2, 28, seed=25)
    history[0, : 2 * DAY] = np.nan
    history[0, -DAY] = np.inf
    result = fc.forecast_day_ahead(history, MONDAY - timedelta(hours=6))
    docs = documents.documents_for(["d1", "d2"], result, "consumption")
    assert docs[0]["fitted_on"] == {
        "history_days": 28,
        "days_used": 25,  # two days empty, the last day hidden from 18:00 (25 % missing)
        "share_missing": round((2 * DAY + 1 + 24) / (28 * DAY), 4),
        "excluded_values": 1,
        "last_reading": "2024-01-14T17:45:00Z",
    }
    assert docs[1]["fitted_on"]["excluded_values"] == 0 and docs[1]["fitted_on"]["days_used"] == 27


# --- calibrated bands -------------------------------------------------------------


def known_quantiles(n_devices, n_days, seed, day_sigma=0.2, slot_sigma=0.1):
    """A fixed daily profile, a Gaussian level per device-day and Gaussian noise per slot:
    tomorrow's p10 / p90 are the profile -/+ 1.2816 * hypot(day_sigma, slot_sigma)."""
    rng = np.random.default_rng(seed)
    hour = np.arange(DAY) / 4
    profile = 1.0 + 0.8 * np.exp(-((hour - 19) ** 2) / 4) + 0.4 * np.exp(-((hour - 8) ** 2) / 3)
    days = (
        profile
        + rng.normal(0.0, day_sigma, (n_devices, n_days, 1))
        + rng.normal(0.0, slot_sigma, (n_devices, n_days, DAY))
    )
    return days.reshape(n_devices, -1), profile, 1.2816 * np.hypot(day_sigma, slot_sigma)


@pytest.mark.parametrize("seed", [31, 32])
def test_the_band_covers_80_percent_on_a_case_with_known_quantiles(seed):
    data, profile, half_width = known_quantiles(200, 32, seed)
    inside, widths = [], []
    for k in range(4):  # four target days, issued at their midnight
        end = (28 + k) * DAY
        result = fc.forecast_day_ahead(data[:, end - 28 * DAY : end], MONDAY + timedelta(days=k))
        actual = data[:, end : end + DAY]
        inside.append((actual >= result.p10) & (actual <= result.p90))
        widths.append(np.median(result.p90 - result.p10))
        assert np.median(result.p50 - profile) == pytest.approx(0.0, abs=0.05)
    assert 0.75 <= np.mean(inside) <= 0.85
    assert np.mean(widths) == pytest.approx(2 * half_width, rel=0.1)


def test_the_band_can_rise_above_the_history_maximum():
    rng = np.random.default_rng(32)
    hour = np.arange(DAY) / 4
    growth = np.repeat(1.0 + 0.03 * np.arange(28), DAY)  # a device using 3 % more every day
    shape = np.tile(1.0 + np.exp(-((hour - 19) ** 2) / 4), 28)
    history = (growth * shape)[None, :] + rng.normal(0.0, 0.02, (4, 28 * DAY))
    result = fc.forecast_day_ahead(history, MONDAY)
    assert (result.p90.max(axis=1) > history.max(axis=1)).all()


def test_a_device_that_never_exported_gets_no_negative_band():
    history = np.abs(synthetic_load(5, 28, seed=33)) * (np.random.default_rng(0).random((5, 28 * DAY)) < 0.3)
    result = fc.forecast_day_ahead(history, MONDAY)
    assert (result.p10 >= 0).all() and (result.p50 >= 0).all()


@pytest.mark.parametrize("hours_off, first_hours, whole_day", [(6, 0.05, 0.5), (24, 0.05, 0.1)])
def test_a_device_switched_off_is_not_forecast_at_its_old_level(hours_off, first_hours, whole_day):
    history = synthetic_load(20, 28, seed=5)
    level = history[0].mean()
    history[0, -hours_off * 4 :] = 0.0
    result = fc.forecast_day_ahead(history, MONDAY)
    assert result.p50[0, :16].mean() < first_hours * level  # the first four hours
    assert result.p50[0].mean() < whole_day * level
    assert result.p50[1:].mean() > 0.8 * history[1:].mean()  # the others keep theirs
