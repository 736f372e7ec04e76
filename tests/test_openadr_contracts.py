"""The OpenADR bridge against the real registry, end to end over loopback HTTP
(the world in tests/support/openadr_world.py): contracts → events → opt responses.

A marketplace contract reaches the VEN as an event and its answer lands on the
contract; a cancelled contract cancels the event; a restarted bridge resends
nothing twice and still cancels."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from registry.openadr import mapping
from tests.support.loopback import free_port
from tests.support.openadr_world import (  # noqa: F401  (fixtures)
    HINTS,
    SmartBox,
    bridge,
    call,
    eventually,
    gateway,
    registry,
    run,
    start_bridge,
    world,
)


@pytest.mark.parametrize("opt", ["optIn", "optOut"])
def test_a_marketplace_contract_reaches_the_ven_and_its_answer_lands_on_the_contract(world, bridge, opt):
    enrolment = world.enrol("box-6", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, enrolment, opt=opt) as box:
            heat_pump = box.device_id("heat-pump")
            contract = await call(world.contract_on, heat_pump)  # the watcher finds it
            await eventually(lambda: box.events)
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            return box, contract, answered

    box, contract, answered = run(scenario)
    [event] = box.events
    event_id = event["event_descriptor"]["event_id"]
    assert event_id == mapping.event_id_for(contract["_id"], box.client.ven_id)
    assert {s["signal_name"] for s in event["event_signals"]} == {"SIMPLE", "LOAD_DISPATCH"}
    dispatch = next(s for s in event["event_signals"] if s["signal_name"] == "LOAD_DISPATCH")
    assert dispatch["intervals"][0]["signal_payload"] == -2.0  # "down": draw 2 kW less
    assert event["active_period"]["dtstart"] == mapping.parse_moment(contract["start"])
    assert event["active_period"]["duration"] == timedelta(minutes=30)
    assert {"ven_id": box.client.ven_id} in event["targets"]
    assert {"resource_id": "heat-pump"} in event["targets"]
    assert (answered["opt"], answered["event_id"]) == (opt, event_id)
    assert world.prosumer.item("contracts", contract["_id"])["ven_response"] == answered


def test_a_cancelled_contract_cancels_the_event(world, bridge):
    enrolment = world.enrol("box-7")

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            contract = await call(world.contract_on, box.device_id("boiler"))
            await eventually(lambda: box.events)
            await call(world.aggregator.patch, "contracts", contract["_id"], {"status": "cancelled"})
            await eventually(lambda: box.updates)
            return box

    box = run(scenario)
    [update] = box.updates
    assert update["event_descriptor"]["event_id"] == box.events[0]["event_descriptor"]["event_id"]
    assert update["event_descriptor"]["event_status"] == "cancelled"
    assert update["event_descriptor"]["modification_number"] == 1
    assert not bridge.contract_events.sent


def test_a_restarted_bridge_resends_nothing_twice_and_still_cancels(world, registry, gateway):
    enrolment = world.enrol("box-8")
    port = free_port()
    first = start_bridge(registry, gateway, port)
    second = None

    async def scenario():
        nonlocal second
        async with SmartBox(first.url, enrolment, resources=("meter",)) as box:
            contract = await call(world.contract_on, box.device_id("meter"))
            answered = await eventually(lambda: world.aggregator.item("contracts", contract["_id"]).get("ven_response"))
            before = await call(world.aggregator.item, "contracts", contract["_id"])
            await asyncio.to_thread(first.stop)
            second = await asyncio.to_thread(start_bridge, registry, gateway, port)
            # The box is asked to re-register; the watcher queues the same event again,
            # the box answers it as before, and the contract is left as it was.
            event_id = answered["event_id"]
            await eventually(lambda: event_id in second.opts.answered)
            unchanged = world.aggregator.item("contracts", contract["_id"])
            await call(world.aggregator.patch, "contracts", contract["_id"], {"status": "cancelled"})
            await eventually(lambda: box.updates)
            return box, before, unchanged

    try:
        box, before, unchanged = run(scenario)
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert len(box.events) == 1  # on_event ran once for the contract
    assert unchanged["_etag"] == before["_etag"]  # the repeated optIn was not written again
    assert box.updates[0]["event_descriptor"]["event_status"] == "cancelled"
