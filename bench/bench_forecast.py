"""Forecast accuracy and throughput on load data this project did not make.

Households come from richardsonpy (the Richardson stochastic occupancy and
appliance model, 1-minute resolution, driven by the bundled German test
reference year irradiance); PV generators come from pvlib (solar position,
transposition, cell temperature and PVWatts) driven by the same bundled TRY
weather for Essen and Mannheim. Nothing is downloaded; data lives in memory.

Simulating 1,000 households with richardsonpy takes ~10 minutes, so
BASE_HOUSEHOLDS distinct households are simulated and the 1,000 devices are
made from them by a circular time shift of up to 45 minutes at 1-minute
resolution, a scale factor and a standby offset; the output says so.

Run from the repository root:  python -m bench.bench_forecast
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import random
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from registry.forecast import baselines
from registry.forecast import model as fc
from schemas.vocabulary import SLOT, SLOT_MINUTES, SLOTS_PER_DAY

START = datetime(2023, 4, 3, tzinfo=UTC)  # a Monday
HISTORY_DAYS = 28
EVAL_DAYS = 7
N_DAYS = HISTORY_DAYS + EVAL_DAYS
N_DEVICES = 1000
N_PV = 40
BASE_HOUSEHOLDS = int(os.environ.get("BENCH_BASE_HOUSEHOLDS", "120"))
TIMING_RUNS = 5
SITES = (("TRY2010_05_Jahr.dat", 51.40, 6.97), ("TRY2010_12_Jahr.dat", 49.52, 8.55))


# --- data: richardsonpy households -----------------------------------------


def _richardson_inputs() -> str:
    import richardsonpy

    return os.path.join(os.path.dirname(richardsonpy.__file__), "inputs")


def load_try(name: str) -> np.ndarray:
    """A bundled TRY weather file (8,760 hourly rows; CET hour-ending)."""
    path = os.path.join(_richardson_inputs(), "weather", name)
    return np.genfromtxt(path, skip_header=38)


def simulate_household(seed: int) -> np.ndarray:
    """One richardsonpy household over N_DAYS days: 1-minute power in kW."""
    import richardsonpy.classes.appliance as appliance
    import richardsonpy.classes.lighting as lighting
    import richardsonpy.classes.occupancy as occupancy
    import richardsonpy.classes.stochastic_el_load_wrapper as wrapper

    random.seed(seed)
    np.random.seed(seed)
    inputs = _richardson_inputs()
    occupants = random.randint(1, 5)
    annual_kwh = random.choice((1500, 2200, 3000, 3400, 4100, 2700, 3200, 4000, 4400, 5500))
    occ = occupancy.Occupancy(occupants, initial_day=START.isoweekday(), nb_days=N_DAYS)
    apps = appliance.Appliances(
        os.path.join(inputs, "Appliances.csv"), annual_consumption=0.91 * annual_kwh, randomize_appliances=True
    )
    bulbs = lighting.load_lighting_profile(os.path.join(inputs, "LightBulbs.csv"), index=random.randrange(100))
    model = wrapper.ElectricityProfile(apps, bulbs)
    weather = load_try(SITES[seed % 2][0])
    irradiance = weather[:, 13] + weather[:, 14]
    first = (START - datetime(2023, 1, 1, tzinfo=UTC)).days
    return (
        np.concatenate([_household_day(model, irradiance, occ.occupancy, first, day) for day in range(N_DAYS)]) / 1000.0
    )


def _household_day(model, irradiance: np.ndarray, occupancy: np.ndarray, first: int, day: int) -> np.ndarray:
    hours = irradiance[24 * (first + day) : 24 * (first + day + 1)]
    minute_irr = np.interp(np.arange(1440), np.arange(24) * 60 + 30, hours)
    weekend = (START + timedelta(days=day)).weekday() >= 5
    power, _, _ = model.power_sim(
        irradiation=minute_irr, weekend=weekend, day=first + day + 1, occupancy=occupancy[144 * day : 144 * (day + 1)]
    )
    return power


def households(n_devices: int, rng: np.random.Generator, simulated: int = BASE_HOUSEHOLDS) -> np.ndarray:
    """(n_devices, N_DAYS*SLOTS_PER_DAY) kW from ``simulated`` richardsonpy households."""
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        base = np.array(pool.map(simulate_household, range(simulated)))
    picks = np.arange(n_devices) % simulated
    shifts = np.where(np.arange(n_devices) < simulated, 0, rng.integers(-45, 46, n_devices))
    scales = np.where(shifts == 0, 1.0, rng.lognormal(0.0, 0.3, n_devices))
    standby = np.where(shifts == 0, 0.0, rng.uniform(0.0, 0.08, n_devices))
    minutes = np.array([np.roll(base[b], s) for b, s in zip(picks, shifts)])
    minutes = minutes * scales[:, None] + standby[:, None]
    return minutes.reshape(n_devices, -1, SLOT_MINUTES).mean(axis=2)


# --- data: pvlib generators ------------------------------------------------


def pv_generators(n_devices: int, rng: np.random.Generator) -> np.ndarray:
    """(n_devices, N_DAYS*SLOTS_PER_DAY) kW, negative (export), TRY weather + pvlib."""
    return np.array([_pv_device(SITES[i % 2], rng) for i in range(n_devices)])


def _weather_at(weather: np.ndarray, mid) -> dict[str, np.ndarray]:
    """TRY columns interpolated to 15-minute slot midpoints (UTC)."""
    import pandas as pd

    # TRY row i is the hour ending at i:00 CET after 1 Jan 00:00 CET.
    hour_utc = (mid - pd.Timestamp("2023-01-01", tz="UTC")).total_seconds() / 3600
    row_mid = np.arange(weather.shape[0]) - 1.5
    columns = {"direct": 13, "diffuse": 14, "temp": 8, "wind": 7}
    return {k: np.interp(hour_utc, row_mid, weather[:, c]) for k, c in columns.items()}


def _pv_device(site: tuple[str, float, float], rng: np.random.Generator) -> np.ndarray:
    import pandas as pd
    import pvlib

    name, lat, lon = site
    mid = pd.date_range(START, periods=N_DAYS * SLOTS_PER_DAY, freq=SLOT) + SLOT / 2
    w = _weather_at(load_try(name), mid)
    sun = pvlib.solarposition.get_solarposition(mid, lat, lon)
    cos_zenith = np.cos(np.radians(sun["apparent_zenith"].to_numpy()))
    dni = np.where(cos_zenith > 0.05, w["direct"] / np.maximum(cos_zenith, 0.05), 0.0)
    poa = pvlib.irradiance.get_total_irradiance(
        rng.uniform(15, 40),
        rng.uniform(120, 240),
        sun["apparent_zenith"],
        sun["azimuth"],
        np.minimum(dni, 1000.0),
        w["direct"] + w["diffuse"],
        w["diffuse"],
    )["poa_global"]
    cell = pvlib.temperature.sapm_cell(poa, w["temp"], w["wind"], -3.56, -0.075, 3)
    kwp = rng.uniform(3.0, 10.0)
    dc = pvlib.pvsystem.pvwatts_dc(poa, cell, kwp * 1000, -0.004) / 1000
    return -np.clip(0.96 * np.nan_to_num(np.asarray(dc)), 0, 0.9 * kwp)


# --- evaluation --------------------------------------------------------------

MODEL = "lagblend"
NOON = "lagblend, issued 12:00 D-1"
BASELINES = ("seasonal naive (7 d)", "yesterday naive", "10 of 10", "high 5 of 10")
METHODS = (MODEL, NOON) + BASELINES


def baseline_forecasts(history: np.ndarray, target: datetime) -> dict[str, np.ndarray]:
    return {
        "seasonal naive (7 d)": baselines.seasonal_naive(history),
        "yesterday naive": baselines.yesterday_naive(history),
        "10 of 10": baselines.x_of_y_baseline(history, 10, 10, target_day=target),
        "high 5 of 10": baselines.high_x_of_y(history, 5, 10, target_day=target),
    }


def evaluate(data: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """Rolling over the last EVAL_DAYS days: absolute errors (n, days, SLOTS_PER_DAY)
    per method, and the share of actuals inside the model's p10-p90 band."""
    errors: dict[str, list] = {m: [] for m in METHODS}
    inside = []
    for k in range(HISTORY_DAYS, N_DAYS):
        history = data[:, (k - HISTORY_DAYS) * SLOTS_PER_DAY : k * SLOTS_PER_DAY]
        actual = data[:, k * SLOTS_PER_DAY : (k + 1) * SLOTS_PER_DAY]
        target = START + timedelta(days=k)
        model = fc.forecast_day_ahead(history, target)
        inside.append((actual >= model.p10) & (actual <= model.p90))
        predicted = {
            MODEL: model.p50,
            **baseline_forecasts(history, target),
            NOON: fc.forecast_day_ahead(history, target - timedelta(hours=12)).p50,
        }
        for method, values in predicted.items():
            errors[method].append(np.abs(values - actual))
    return {m: np.stack(e, axis=1) for m, e in errors.items()}, float(np.mean(inside))


def table(errors: dict, data: np.ndarray, rows: np.ndarray, title: str) -> str:
    actual = np.abs(data[rows, HISTORY_DAYS * SLOTS_PER_DAY :]).mean()
    best = min(BASELINES, key=lambda m: errors[m][rows].mean())
    daily = {m: errors[m][rows].mean(axis=(0, 2)) for m in METHODS}
    wins = int((daily[MODEL] < daily[best]).sum())
    lines = [
        f"{title} ({rows.size} devices, {EVAL_DAYS} target days x {SLOTS_PER_DAY} slots)",
        f"  {'method':<28}{'MAE kW':>9}{'nMAE %':>9}",
    ]
    for m in METHODS:
        mae = errors[m][rows].mean()
        lines.append(f"  {m:<28}{mae:>9.4f}{100 * mae / actual:>9.1f}")
    lines.append(f"  {MODEL} beats the best baseline ({best}) on {wins}/{EVAL_DAYS} days")
    return "\n".join(lines)


def throughput(data: np.ndarray) -> tuple[float, float]:
    """Device-forecasts per second, min time of TIMING_RUNS, 1,000 devices."""
    history = data[:, : HISTORY_DAYS * SLOTS_PER_DAY]
    target = START + timedelta(days=HISTORY_DAYS)
    timings = {}
    for backtest in (False, True):
        runs = []
        for _ in range(TIMING_RUNS):
            began = time.perf_counter()
            fc.forecast_day_ahead(history, target, backtest=backtest)
            runs.append(time.perf_counter() - began)
        timings[backtest] = data.shape[0] / min(runs)
    return timings[False], timings[True]


def generate(simulated: int = BASE_HOUSEHOLDS) -> np.ndarray:
    """(N_DEVICES, N_DAYS*SLOTS_PER_DAY) kW: households first, then PV generators."""
    rng = np.random.default_rng(20230403)
    return np.concatenate([households(N_DEVICES - N_PV, rng, simulated), pv_generators(N_PV, rng)])


def run(simulated: int = BASE_HOUSEHOLDS) -> dict:
    """The bench's figures: MAE per method and group, coverage, throughput (bench/run_all.py)."""
    began = time.perf_counter()
    data = generate(simulated)
    generation_s = time.perf_counter() - began
    errors, coverage = evaluate(data)
    everyone = np.arange(N_DEVICES)
    groups = {"all devices": everyone, "households": everyone[:-N_PV], "PV generators": everyone[-N_PV:]}
    accuracy = {}
    for title, rows in groups.items():
        best = min(BASELINES, key=lambda m: errors[m][rows].mean())
        daily = {m: errors[m][rows].mean(axis=(0, 2)) for m in (MODEL, best)}
        accuracy[title] = {
            "mae": {m: float(errors[m][rows].mean()) for m in METHODS},
            "best_baseline": best,
            "wins": int((daily[MODEL] < daily[best]).sum()),
            "table": table(errors, data, rows, title),
        }
    plain, with_backtest = throughput(data)
    return {
        "simulated_households": simulated,
        "devices": N_DEVICES,
        "generation_s": generation_s,
        "accuracy": accuracy,
        "coverage": coverage,
        "throughput": plain,
        "throughput_backtest": with_backtest,
        "total_s": time.perf_counter() - began,
    }


def main() -> None:
    began = time.perf_counter()
    print(
        f"Forecast bench: {N_DEVICES} devices = {N_DEVICES - N_PV} households "
        f"(richardsonpy: {BASE_HOUSEHOLDS} simulated; the others are copies of them "
        f"time-shifted by up to 45 min, scaled and given a standby offset) + {N_PV} "
        f"PV generators (pvlib, bundled TRY weather). {HISTORY_DAYS} days of history, "
        f"rolling over {EVAL_DAYS} target days from "
        f"{(START + timedelta(days=HISTORY_DAYS)).date()}, issued at 00:00 of the "
        f"target day unless said otherwise.",
        flush=True,
    )
    print(
        f"machine: {os.cpu_count()} cpu, {platform.platform()}, "
        f"python {platform.python_version()}, numpy {np.__version__}",
        flush=True,
    )
    figures = run()
    print(f"data generation: {figures['generation_s']:.1f} s\n", flush=True)
    for group in figures["accuracy"].values():
        print(group["table"])
    print(f"\np10-p90 band coverage of actuals: {100 * figures['coverage']:.1f} % (nominal 80 %)")
    print(
        f"throughput ({N_DEVICES} devices, {HISTORY_DAYS} days history, min of "
        f"{TIMING_RUNS} runs): {figures['throughput']:,.0f} device-forecasts/s; with back-test MAE "
        f"{figures['throughput_backtest']:,.0f}/s"
    )
    print(f"total bench time: {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
