"""The OpenADR bridge against the real registry, end to end over loopback HTTP
(the world in tests/support/openadr_world.py): registration and devices.

An enrolled VEN registers and its resources become the prosumer's devices, seen
by its aggregator and by no other; an unknown or cancelled VEN is refused;
registering again updates the devices without duplicating them."""

from __future__ import annotations

import uuid

import pytest

from registry.openadr import mapping
from tests.support.openadr_world import ACCOUNT, AGGREGATOR, HINTS, SmartBox, bridge, gateway, registry, run, world  # noqa: F401  (fixtures)


def test_enrolled_ven_registers_and_its_resources_become_the_prosumers_devices(world, bridge):
    enrolment = world.enrol("box-1", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            return box.client.ven_id, box.client.registration_id

    ven_id, registration_id = run(scenario)
    assert registration_id and str(uuid.UUID(ven_id)) == ven_id
    recorded = world.prosumer.item("vens", enrolment["_id"])
    assert (recorded["ven_id"], recorded["registration_status"]) == (ven_id, "registered")
    assert recorded["registered_at"].endswith("Z")

    devices = {d["device_name"]: d for d in world.prosumer.items("devices")}
    assert sorted(devices) == ["Heat pump", "boiler"]
    for device in devices.values():
        assert (device["ven_id"], device["account_id"], device["aggregator_id"]) == (ven_id, ACCOUNT, AGGREGATOR)
    hinted, plain = devices["Heat pump"], devices["boiler"]
    assert hinted["device_id"] == mapping.device_id_for(ven_id, "heat-pump")
    assert (hinted["device_class"], hinted["device_type"], hinted["max_capacity"]) == ("hvacDevice", "Demand", 3.5)
    assert (plain["device_class"], plain["device_type"], plain["availability"]) == ("otherLoad", "Demand", "yes")
    assert sorted(d["device_id"] for d in world.aggregator.items("devices")) == sorted(
        d["device_id"] for d in devices.values()
    )
    # another aggregator neither lists them nor reaches them by id
    assert world.other_aggregator.items("devices") == []
    assert world.other_aggregator.item("devices", hinted["device_id"]) is None


@pytest.mark.parametrize("enrolled_as", [None, "cancelled"])
def test_unknown_or_cancelled_ven_is_refused(world, bridge, enrolled_as):
    enrolment = {"ven_name": "intruder", "secret": "a-guess"}
    if enrolled_as:
        enrolment = world.enrol("intruder", status=enrolled_as)

    async def scenario():
        box = SmartBox(bridge.url, enrolment)
        await box.client.run()  # openleadr stops the client when it gets no registration id
        return box.client.registration_id, box.client.ven_id

    assert run(scenario) == (None, None)
    assert all(v["registration_status"] == enrolled_as for v in world.admin.items("vens"))
    assert world.admin.items("devices") == []


def test_reregistration_updates_devices_without_duplicating_them(world, bridge):
    enrolment = world.enrol("box-3", resources=HINTS)

    async def register_once():
        async with SmartBox(bridge.url, enrolment) as box:
            return box.client.ven_id

    ven_id = run(register_once)
    first = {d["device_name"]: d for d in world.prosumer.items("devices")}
    # The prosumer takes the boiler off; the aggregator renames the heat pump's hint.
    world.prosumer.patch("devices", first["boiler"]["device_id"], {"availability": "no"})
    world.aggregator.patch("vens", enrolment["_id"], {"resources": [{**HINTS[0], "device_name": "Heat pump (attic)"}]})

    assert run(register_once) == ven_id  # a new client for the same box keeps its ven_id
    second = {d["device_name"]: d for d in world.prosumer.items("devices")}
    assert len(world.admin.items("devices")) == 2
    assert sorted(d["device_id"] for d in second.values()) == sorted(d["device_id"] for d in first.values())
    assert "Heat pump (attic)" in second
    assert second["boiler"]["availability"] == "no"  # not reset by the bridge's defaults
