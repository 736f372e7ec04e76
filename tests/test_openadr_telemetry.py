"""The OpenADR bridge against the real registry, end to end over loopback HTTP
(the world in tests/support/openadr_world.py): telemetry → measurements → forecast jobs.

Readings become measurements (in bulk, no duplicates, none leaked to another
aggregator) and forecast jobs follow; a registry outage loses no telemetry; a
rejected measurement is dropped and the rest kept; a stale token is replaced once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from registry.openadr import ApiClient, MeasurementBuffer
from registry.openadr.api_client import format_eve_date
from tests.support.openadr_world import ACCOUNT, AGGREGATOR, SmartBox, bridge, eventually, gateway, registry, run, world  # noqa: F401  (fixtures)


def test_telemetry_becomes_measurements_and_a_forecast_job_follows(world, bridge, gateway):
    enrolment = world.enrol("box-4")

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            boiler = box.device_id("boiler")
            await eventually(lambda: len(world.prosumer.items("measurements", device_id=boiler)) >= 3)
            return box

    box = run(scenario)
    stored = world.prosumer.items("measurements")
    kilowatts = [m["power_kw"] for m in stored]
    produced = {w / 1000 for values in box.produced.values() for w in values}
    assert set(kilowatts) <= produced and len(set(kilowatts)) == len(stored)  # no duplicates
    assert all(m["timestamp"].endswith("Z") and m["account_id"] == ACCOUNT for m in stored)
    assert {m["device_id"] for m in stored} == {box.device_id("heat-pump"), box.device_id("boiler")}
    # Both resources' readings travel together in bulk POSTs.
    assert gateway.forwarded["POST /measurements"] < len(stored)
    assert world.other_aggregator.items("measurements") == []
    # the registry's hooks ran for bridged data: forecasts are queued for the new devices
    jobs = world.prosumer.items("jobs", subject=box.device_id("boiler"))
    assert {"consumption_forecast", "flexibility_forecast"} <= {job["kind"] for job in jobs}
    assert world.other_aggregator.items("jobs") == []


@pytest.mark.parametrize("outage", ["503", "refuse"])
def test_registry_outage_loses_no_telemetry(world, bridge, gateway, outage):
    enrolment = world.enrol("box-5")

    async def scenario():
        async with SmartBox(bridge.url, enrolment, resources=("meter",)) as box:
            meter = box.device_id("meter")
            await eventually(lambda: world.prosumer.items("measurements", device_id=meter))
            gateway.set_mode(outage)
            await asyncio.sleep(2.5)  # readings keep arriving at the VTN meanwhile
            assert bridge.buffer.pending >= 2
            gateway.set_mode("up")
            after_outage = box.produced["meter"][-1] / 1000
            await eventually(
                lambda: any(m["power_kw"] > after_outage for m in world.prosumer.items("measurements", device_id=meter))
            )
            return box

    box = run(scenario)
    stored = [m["power_kw"] for m in world.prosumer.items("measurements")]
    produced = [w / 1000 for w in box.produced["meter"]]
    # Every reading up to the newest stored one arrived, once and in order of time.
    assert sorted(stored) == produced[: len(stored)]
    assert len(stored) >= 4


def test_rejected_measurement_is_dropped_and_the_rest_kept(world, registry, caplog):
    device_id = str(uuid.uuid4())
    world.admin.post(
        "devices",
        {
            "device_id": device_id,
            "device_name": "meter",
            "account_id": ACCOUNT,
            "ven_id": str(uuid.uuid4()),
            "aggregator_id": AGGREGATOR,
            "device_class": "otherLoad",
            "availability": "yes",
        },
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    now = format_eve_date(start)
    good = [
        {"device_id": device_id, "timestamp": format_eve_date(start + timedelta(minutes=i)), "power_kw": float(i)}
        for i in range(4)
    ]  # one reading per device and timestamp
    unknown = {"device_id": str(uuid.uuid4()), "timestamp": now, "power_kw": 1.0}  # 422 for the batch
    absurd = {"device_id": device_id, "timestamp": now, "power_kw": 1e9}  # 422 for this item

    async def scenario():
        async with ApiClient(registry.url, client_id=registry.service[0], client_secret=registry.service[1]) as api:
            buffer = MeasurementBuffer(api)
            buffer.add(good[:2] + [unknown] + good[2:3] + [absurd] + good[3:])
            assert await buffer.flush_once()
            return buffer

    with caplog.at_level(logging.ERROR, logger="registry.openadr"):
        buffer = run(scenario)
    assert (buffer.sent, buffer.dropped, buffer.pending) == (4, 2, 0)
    assert sorted(m["power_kw"] for m in world.admin.items("measurements")) == [0.0, 1.0, 2.0, 3.0]
    rejected = [r.message for r in caplog.records if "rejected measurement" in r.message]
    assert any(unknown["device_id"] in m for m in rejected) and any("1000000000" in m for m in rejected)


def test_a_stale_token_is_replaced_once(world, registry):
    async def scenario():
        async with ApiClient(
            registry.url, client_id=registry.service[0], client_secret=registry.service[1], token="revoked"
        ) as api:
            return await api.find_one("prosumers", {"account_id": ACCOUNT}), api.token

    prosumer, token = run(scenario)
    assert prosumer["display_name"] == "prosumer-1" and token != "revoked"
