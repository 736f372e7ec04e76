"""The grid operators' orders reach the devices' VENs as OpenADR events (issue 17, item
5, activation; docs/market.md, "Orders"), over loopback as contracts do
(tests/test_openadr_contracts.py): one event per VEN, one interval per 15-minute slot of
the order, nothing for a slot without accepted power; the VEN's answer changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from registry.openadr import mapping
from tests.support.openadr_world import (  # noqa: F401  (fixtures)
    HINTS,
    SmartBox,
    bridge,
    eventually,
    gateway,
    registry,
    run,
    world,
)


def order_on(registry, device_id: str) -> dict:
    """An order as the clearing stores it (tests/test_dso_orders.py clears real ones):
    2 kW less in the first slot, nothing in the second."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 15) + timedelta(minutes=30)
    order = {
        "_id": ObjectId(),
        "request": ObjectId(),
        "bid": ObjectId(),
        "aggregator_id": "agg-alpha",
        "dso_id": "dso-north",
        "direction": "down",
        "start": start,
        "end": start + timedelta(minutes=30),
        "power_kw": [2.0, 0.0],
        "price": 0.3,
        "device_ids": [device_id],
        "status": "accepted",
        "_created": now,
        "_updated": now,
        "_etag": "order",
    }
    with registry.app.app_context():
        registry.app.data.driver.db["orders"].insert_one(order)
    return order


def test_an_order_reaches_the_ven_with_one_interval_per_slot(world, bridge, registry):
    enrolment = world.enrol("box-8", resources=HINTS)

    async def scenario():
        async with SmartBox(bridge.url, enrolment) as box:
            order = order_on(registry, box.device_id("heat-pump"))
            await eventually(lambda: box.events)
            return box, order

    box, order = run(scenario)
    [event] = box.events
    assert event["event_descriptor"]["event_id"] == mapping.event_id_for(str(order["_id"]), box.client.ven_id)
    signals = {s["signal_name"]: s for s in event["event_signals"]}
    assert [i["signal_payload"] for i in signals["LOAD_DISPATCH"]["intervals"]] == [-2.0, 0.0]
    assert [i["signal_payload"] for i in signals["SIMPLE"]["intervals"]] == [1.0, 0.0]
    assert event["active_period"]["duration"] == timedelta(minutes=30)
    assert {"resource_id": "heat-pump"} in event["targets"]
    with registry.app.app_context():
        assert registry.app.data.driver.db["orders"].find_one({"_id": order["_id"]})["_etag"] == "order"
