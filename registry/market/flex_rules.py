"""The grid operators' market as pure functions (docs/market.md): what makes a
flexibility request and a bid acceptable, and who may change them when.

Inputs are plain documents and a clock; the answer is the derived fields, or a
:class:`registry.market.rules.MarketError` (422: the document is wrong; 409: the
state or the clock does not allow it; 403: the role may not).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from registry.market.rules import SYSTEM, refuse
from registry.store import geo_areas
from schemas.vocabulary import DATE_FORMAT, MAX_REQUEST_SLOTS, SLOT, SLOT_MINUTES

# the fields of a bid that make its offer; changing one is a new offer (a new submitted_at)
BID_TERMS = ("cannot_offer", "price", "power_kw", "device_ids", "granularity_kw")


def check_new_request(
    request: dict[str, Any], area: dict[str, Any] | None, aggregator_ids: Iterable[str], now: datetime
) -> dict[str, Any]:
    """A request for the DSO's own area, for a future window, with bids closing
    before it starts; returns ``end``, ``status``, who may see it and the area's shape."""
    if area is None or area.get("dso_id") != request["dso_id"]:
        refuse(422, f"grid area {request['grid_area']} is not one of yours")
    if request.get("status", "open") != "open":
        refuse(422, "a new request is open")
    start, closure = request["start"], request["gate_closure"]
    if start.minute % SLOT_MINUTES or start.second or start.microsecond:
        refuse(422, f"start must be on a {SLOT_MINUTES}-minute boundary (hh:00, :15, :30 or :45)")
    if start <= now:
        refuse(422, "start must be in the future")
    if not now < closure < start:
        refuse(422, "gate_closure must be in the future and before start (bids are taken until then)")
    _check_powers(request["power_kw"], "power_kw", positive=True)
    try:
        end = start + len(request["power_kw"]) * SLOT
    except OverflowError:
        refuse(422, "the window would end after the last date the API can write (9999-12-31)")
    return {
        "end": end,
        "status": "open",
        "aggregator_ids": sorted(set(aggregator_ids)),
        "area_geometry": area["geometry"],
    }


FIXED_TERMS = frozenset(
    {"dso_id", "grid_area", "direction", "start", "gate_closure", "power_kw", "max_price", "currency", "end"}
)


def check_request_update(original: dict[str, Any], updates: dict[str, Any], actor: str, now: datetime) -> None:
    """A DSO (or an admin) may cancel an open request before its gate closes; the
    clearing (the system) marks it cleared after. Nothing else changes: its terms
    are fixed once posted, for an admin too (bids were made against them)."""
    changed = sorted(k for k in FIXED_TERMS & set(updates) if updates[k] != original.get(k))
    if changed and actor != SYSTEM:
        refuse(422, f"a request's terms are fixed once posted ({', '.join(changed)}): cancel it and post another")
    target = updates.get("status", original["status"])
    if target == original["status"]:
        return
    if (original["status"], target) == ("open", "cancelled") and actor in ("dso", "admin"):
        if now >= original["gate_closure"]:
            refuse(
                409,
                f"the gate closed at {original['gate_closure']:{DATE_FORMAT}}; the request can no longer be cancelled",
            )
        return
    if (original["status"], target) == ("open", "cleared") and actor == SYSTEM:
        return
    refuse(409, f"a request cannot go from {original['status']} to {target}")


def check_bid(
    bid: dict[str, Any],
    request: dict[str, Any] | None,
    devices: dict[str, dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """A bid (new or revised) to a request open to its aggregator, before gate
    closure: an explicit "cannot offer", or an offer within the request's slots,
    power and price from the aggregator's own devices inside the area that are on
    the marketplace. ``devices``: those of ``bid["device_ids"]`` that belong to the
    bid's aggregator. Returns the fields the registry sets."""
    if request is None:
        refuse(422, f"no flexibility request {bid['request']} is open to aggregator {bid['aggregator_id']}")
    check_gate_open(request, now)
    derived = {"dso_id": request["dso_id"], "submitted_at": now}
    if bid.get("cannot_offer"):
        given = [name for name in BID_TERMS[1:] if bid.get(name) not in (None, [])]
        if given:
            refuse(422, f"a bid that cannot offer carries no {', '.join(given)}")
        return derived
    missing = [name for name in BID_TERMS[1:] if bid.get(name) in (None, [])]
    if missing:
        refuse(422, f"a bid needs {', '.join(missing)} (or cannot_offer: true)")
    _check_terms(bid, request)
    _check_devices(bid, request, devices)
    return derived


def check_gate_open(request: dict[str, Any], now: datetime) -> None:
    if request.get("status") != "open":
        refuse(409, f"the request is {request.get('status')}: bids are no longer taken")
    if now >= request["gate_closure"]:
        refuse(409, f"the gate closed at {request['gate_closure']:{DATE_FORMAT}}: bids are no longer taken or changed")


def _check_terms(bid: dict[str, Any], request: dict[str, Any]) -> None:
    powers, wanted = bid["power_kw"], request["power_kw"]
    if len(powers) != len(wanted):
        refuse(422, f"power_kw needs one value per slot of the request ({len(wanted)})")
    _check_powers(powers, "power_kw", positive=False)
    if not any(p > 0 for p in powers):
        refuse(422, "a bid offers more than 0 kW in at least one slot (or cannot_offer: true)")
    over = [i for i, (p, w) in enumerate(zip(powers, wanted)) if p > w]
    if over:
        refuse(422, f"slot {over[0]} offers more than the {wanted[over[0]]:g} kW requested")
    if bid["granularity_kw"] > max(powers):
        refuse(422, "granularity_kw (the smallest accepted step) must not exceed the power offered")
    if not math.isfinite(bid["price"]) or bid["price"] > request["max_price"]:
        refuse(422, f"the price is above the request's maximum of {request['max_price']:g} per kWh")
    if bid.get("currency") not in (None, request["currency"]):
        refuse(422, f"the request is priced in {request['currency']}")


def _check_devices(bid: dict[str, Any], request: dict[str, Any], devices: dict[str, dict[str, Any]]) -> None:
    ids = bid["device_ids"]
    if len(set(ids)) != len(ids):
        refuse(422, "device_ids names a device twice")
    for device_id in ids:
        device = devices.get(device_id)
        if device is None:
            refuse(422, f"device {device_id} is not in aggregator {bid['aggregator_id']}'s portfolio")
        if device.get("marketplace_availability") != "yes":
            refuse(422, f"device {device_id} is not available to the marketplace")
        if not geo_areas.contains(request["area_geometry"], device.get("location")):
            refuse(422, f"device {device_id} is not inside the request's grid area")
    capacity = sum(_finite(devices[d].get("max_capacity")) for d in ids)
    if capacity and max(bid["power_kw"]) > capacity + 1e-9:
        refuse(422, f"the bid offers more than its devices' {capacity:g} kW of capacity")


def check_bid_update(
    original: dict[str, Any], updates: dict[str, Any], actor: str, request: dict[str, Any] | None, now: datetime
) -> None:
    """Revised or withdrawn by its aggregator (or an admin) while the gate is open;
    accepted or rejected by the clearing only."""
    if actor == SYSTEM:
        return
    target = updates.get("status", original["status"])
    if original["status"] != "submitted":
        refuse(409, f"the bid is {original['status']}: it can no longer be changed")
    if target not in ("submitted", "withdrawn"):
        refuse(409, f"a bid goes to {target} by the clearing only")
    if request is None:
        refuse(409, "the bid's request is gone")
    check_gate_open(request, now)


def _check_powers(values: list[Any], name: str, positive: bool) -> None:
    if not 1 <= len(values) <= MAX_REQUEST_SLOTS:
        refuse(422, f"{name} needs 1 to {MAX_REQUEST_SLOTS} values (one per 15-minute slot)")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            refuse(422, f"{name} values must be finite numbers")
        if value < 0 or (positive and value <= 0):
            refuse(422, f"{name} values must be {'more than' if positive else 'at least'} 0")


def _finite(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else 0.0
