"""The VTN under attack, through its real surface: raw XML over loopback HTTP
(tests/support/openadr_world.py, tests/support/vtn_checks.py). Messages are written
by hand from the OpenADR 2.0b profile (tests/support/oadr_messages.py, not by
openleadr's client) and POSTed with ``requests``. Every 200 answer is checked
against the 2.0b XSD that openleadr ships.

This part: numbers that are not power readings. Non-finite and huge readings are
dropped with a log line; a contract with a value no API write accepts is skipped
and does not stop the others."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from bson import ObjectId

from registry.openadr import mapping
from tests.support.loopback import wait_until
from tests.support.oadr_messages import now, update_report
from tests.support.openadr_world import ACCOUNT, AGGREGATOR, SmartBox, bridge, eventually, gateway, registry, run, world  # noqa: F401  (fixtures)
from tests.support.raw_ven import valid_answer
from tests.support.vtn_checks import enrolled_ven, vtn  # noqa: F401  (fixtures)


def test_non_finite_and_huge_readings_are_dropped_with_a_log_line(world, vtn, caplog):
    ven = enrolled_ven(world, vtn, "box-n").register()
    report_request = ven.register_report("meter", "r-1")
    start = now() - timedelta(minutes=10)
    values = ["NaN", "INF", "-INF", "1e39", "-2e8", "2500", "1E300"]
    readings = [(start + timedelta(minutes=i), value) for i, value in enumerate(values)]
    with caplog.at_level(logging.WARNING, logger="registry.openadr"):
        valid_answer(ven.post("EiReport", update_report(ven.ven_id, report_request, "r-1", readings)))
        device_id = mapping.device_id_for(ven.ven_id, "meter")
        stored = wait_until(lambda: world.admin.items("measurements", device_id=device_id), 10)
        time.sleep(0.5)
    assert [m["power_kw"] for m in world.admin.items("measurements")] == [2.5] == [m["power_kw"] for m in stored]
    [line] = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert "dropped 6 reading(s)" in line and device_id in line


def test_one_contract_with_a_weird_value_does_not_stop_the_others(world, registry, vtn, caplog):
    enrolment = world.enrol("box-w")
    # The box's devices and both contracts exist before it registers here, so the
    # watcher first meets the weird contract with the good one beside it.
    for resource in ("meter", "boiler"):
        world.admin.post(
            "devices",
            {
                "device_id": mapping.device_id_for(enrolment["ven_id"], resource),
                "device_name": resource,
                "ven_id": enrolment["ven_id"],
                "account_id": ACCOUNT,
                "aggregator_id": AGGREGATOR,
                "device_class": "otherLoad",
                "availability": "yes",
            },
        )
    weird = world.contract_on(mapping.device_id_for(enrolment["ven_id"], "boiler"))
    good = world.contract_on(mapping.device_id_for(enrolment["ven_id"], "meter"))
    # a value no API write accepts, put in place as a tool outside the API could
    with registry.app.app_context():
        registry.app.data.driver.db["contracts"].update_one(
            {"_id": ObjectId(weird["_id"])}, {"$set": {"power_kw": float("nan")}}
        )

    async def scenario():
        async with SmartBox(vtn, enrolment, resources=("meter", "boiler")) as box:
            await eventually(lambda: box.events)
            await asyncio.sleep(1.0)  # several more watcher polls
            return box

    with caplog.at_level(logging.WARNING, logger="registry.openadr"):
        box = run(scenario)
    assert [e["event_descriptor"]["event_id"] for e in box.events] == [
        mapping.event_id_for(good["_id"], enrolment["ven_id"])
    ]
    assert any("skipped" in r.getMessage() and weird["_id"] in r.getMessage() for r in caplog.records)
