"""Marketplace rules as pure functions: windows, offers, contract terms and the
lifecycle of offers and contracts. Inputs are plain documents and a clock;
the answer is derived fields or a :class:`MarketError` (status + message).
Settlement lives in :mod:`registry.market.settlement`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from schemas.vocabulary import DATE_FORMAT, SLOT, SLOT_MINUTES

MAX_WINDOW = timedelta(days=7)
SYSTEM = "system"  # the clock-driven actor: advance_lifecycle, the job worker


class MarketError(Exception):
    """A refusal: ``status`` is 409 (the state does not allow it), 422 (the
    request itself is wrong) or 403 (the role may not do it)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refuse(status: int, message: str) -> NoReturn:
    raise MarketError(status, message)


@dataclass(frozen=True)
class Rule:
    """Who may make a transition, and when: ``before_start``, ``after_start``,
    ``after_end`` or ``None`` (any time)."""

    actors: frozenset[str]
    when: str | None = None


OFFER_TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("open", "withdrawn"): Rule(frozenset({"prosumer", "admin"})),
    ("open", "contracted"): Rule(frozenset({SYSTEM})),
    ("open", "expired"): Rule(frozenset({SYSTEM}), "after_end"),
    ("contracted", "open"): Rule(frozenset({SYSTEM})),  # its contract was cancelled
}

CONTRACT_TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("proposed", "accepted"): Rule(frozenset({"prosumer", "admin"}), "before_start"),
    ("proposed", "rejected"): Rule(frozenset({"prosumer", "admin", SYSTEM})),
    ("proposed", "cancelled"): Rule(frozenset({"aggregator", "admin"}), "before_start"),
    ("accepted", "cancelled"): Rule(frozenset({"aggregator", "admin"}), "before_start"),
    ("accepted", "active"): Rule(frozenset({"service", "admin", SYSTEM}), "after_start"),
    ("active", "completed"): Rule(frozenset({"service", "admin", SYSTEM}), "after_end"),
    ("completed", "settled"): Rule(frozenset({SYSTEM})),
}
# the grid operators' market: the clearing's and the clock's moves (a caller's: flex_rules)
_SYSTEM_ONLY = Rule(frozenset({SYSTEM}))
FLEX_TRANSITIONS: dict[str, dict[tuple[str, str], Rule]] = {
    "flexibility_request": {("open", "clearing"): _SYSTEM_ONLY, ("clearing", "cleared"): _SYSTEM_ONLY},
    "bid": {("submitted", "accepted"): _SYSTEM_ONLY, ("submitted", "rejected"): _SYSTEM_ONLY},
    "order": {
        ("accepted", "active"): Rule(frozenset({SYSTEM}), "after_start"),
        ("active", "completed"): Rule(frozenset({SYSTEM}), "after_end"),
    },
}
TABLES = {"offer": OFFER_TRANSITIONS, "contract": CONTRACT_TRANSITIONS, **FLEX_TRANSITIONS}


def check_window(start: datetime, end: datetime, now: datetime, max_length: timedelta = MAX_WINDOW) -> None:
    """A market window: ordered, on slot boundaries, future, bounded."""
    if start >= end:
        refuse(422, f"start ({start:{DATE_FORMAT}}) must be before end ({end:{DATE_FORMAT}})")
    for name, value in (("start", start), ("end", end)):
        if value.minute % SLOT_MINUTES or value.second or value.microsecond:
            refuse(422, f"{name} must be on a {SLOT_MINUTES}-minute boundary (hh:00, :15, :30 or :45)")
    if start <= now:
        refuse(422, "start must be in the future")
    if end - start > max_length:
        refuse(422, f"the window may last at most {max_length / timedelta(hours=1):g} hours")


def slot_starts(start: datetime, end: datetime) -> list[datetime]:
    """The slots of a window."""
    count = int((end - start) / SLOT)
    return [start + i * SLOT for i in range(count)]


def check_on_market(device: dict[str, Any]) -> None:
    if device.get("marketplace_availability") != "yes":
        refuse(
            409,
            f"device {device['device_id']} is not available to the marketplace "
            '(marketplace_availability must be "yes")',
        )


def check_power(power_kw: float, device: dict[str, Any], offer: dict[str, Any] | None = None) -> None:
    """Power fits the device's capacity and, for a contract, the offer."""
    capacity = device.get("max_capacity")
    if capacity is not None and power_kw > capacity:
        refuse(422, f"power_kw {power_kw:g} exceeds device {device['device_id']}'s max_capacity {capacity:g}")
    if offer is not None and power_kw > offer["power_kw"]:
        refuse(422, f"power_kw {power_kw:g} exceeds offer {offer['_id']}'s power_kw {offer['power_kw']:g}")


def check_new_offer(offer: dict[str, Any], device: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A new offer is open, for a device on the market; returns the fields it copies."""
    if offer.get("status", "open") != "open":
        refuse(422, "a new offer is always open; status cannot be set on creation")
    check_on_market(device)
    check_window(offer["start"], offer["end"], now)
    check_power(offer["power_kw"], device)
    copied = {"status": "open", "account_id": device["account_id"], "aggregator_id": device["aggregator_id"]}
    if device.get("location"):
        copied["location"] = device["location"]
    return copied


OFFER_CHANGEABLE = frozenset({"status", "price", "power_kw"})


def check_offer_update(
    original: dict[str, Any], updates: dict[str, Any], actor: str, device: dict[str, Any] | None, now: datetime
) -> None:
    """An open offer may change its price and power, or be withdrawn."""
    fixed = sorted(k for k in updates if not k.startswith("_") and k not in OFFER_CHANGEABLE)
    if fixed:
        refuse(422, f"an offer's {', '.join(fixed)} cannot change; withdraw it and publish a new offer")
    if original["status"] != "open":
        refuse(409, f"offer {original['_id']} is {original['status']}; only open offers can change")
    if updates.get("status", "open") != "open":
        check_transition("offer", original, updates["status"], actor, now)
    if "power_kw" in updates and device is not None:
        check_power(updates["power_kw"], device)


def check_transition(kind: str, doc: dict[str, Any], target: str, actor: str, now: datetime) -> None:
    """Is ``actor`` allowed to move ``doc`` (an offer or contract) to ``target`` now?"""
    current = doc["status"]
    rule = TABLES[kind].get((current, target))
    if rule is None:
        onward = sorted(t for (f, t) in TABLES[kind] if f == current) or ["nothing (final)"]
        refuse(409, f"a {kind} cannot go from {current} to {target}; from {current} it can go to {', '.join(onward)}")
    if actor not in rule.actors:
        refuse(
            403,
            f"a {actor} may not move a {kind} from {current} to {target} (who may: {', '.join(sorted(rule.actors))})",
        )
    _check_timing(kind, doc, current, target, rule.when, now)


def _check_timing(kind: str, doc: dict[str, Any], current: str, target: str, when: str | None, now: datetime) -> None:
    if when == "before_start" and now >= doc["start"]:
        refuse(
            409,
            f"the {kind} started at {doc['start']:{DATE_FORMAT}}; it can no longer go from {current} to {target}",
        )
    if when == "after_start" and now < doc["start"]:
        refuse(409, f"the {kind} starts at {doc['start']:{DATE_FORMAT}}; it cannot be {target} before")
    if when == "after_end" and now < doc["end"]:
        refuse(409, f"the {kind} ends at {doc['end']:{DATE_FORMAT}}; it cannot be {target} before")


def unique_accounts(devices: Iterable[dict[str, Any]]) -> list[str]:
    return sorted({d["account_id"] for d in devices})


def check_new_contract(
    contract: dict[str, Any], offers: list[dict[str, Any]], devices: dict[str, dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """Terms of a new contract; returns the fields derived from its offers and devices.

    With offers it is ``accepted`` at once (the offers are the prosumers'
    consent); without, it is a ``proposed`` contract on ``device_ids``.
    ``devices`` maps device_id to the devices the caller may see.
    """
    if contract.get("status") is not None:
        refuse(422, "status is set by the marketplace: accepted when offers cover the contract, proposed otherwise")
    if contract.get("ven_response") is not None:
        refuse(
            422,
            "ven_response is recorded by the OpenADR bridge once the contract is accepted; "
            "it cannot be set on creation",
        )
    check_window(contract["start"], contract["end"], now)
    if contract.get("offers"):
        return _terms_from_offers(contract, offers, devices)
    return _terms_of_proposal(contract, devices)


def _terms_from_offers(
    contract: dict[str, Any], offers: list[dict[str, Any]], devices: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    wanted = contract["offers"]
    missing = sorted(str(i) for i in set(wanted) - {o["_id"] for o in offers})
    if missing or len(set(wanted)) != len(wanted):
        refuse(422, f"unknown offer(s): {', '.join(missing)}" if missing else "an offer is listed twice")
    by_device: dict[str, dict[str, Any]] = {}
    for offer in offers:
        if offer["device_id"] in by_device:
            refuse(422, f"two offers for device {offer['device_id']}; a contract takes one offer per device")
        by_device[offer["device_id"]] = offer
    derived = {
        "device_ids": list(by_device),
        "direction": contract.get("direction") or offers[0]["direction"],
        "power_kw": contract.get("power_kw") or min(o["power_kw"] for o in offers),
        "price": contract["price"] if contract.get("price") is not None else max(o["price"] for o in offers),
        "currency": contract.get("currency") or offers[0].get("currency", "EUR"),
    }
    if contract.get("device_ids") and sorted(contract["device_ids"]) != sorted(by_device):
        refuse(422, "device_ids must be the devices of the offers (or leave device_ids out)")
    for offer in offers:
        _check_offer_covers({**contract, **derived}, offer, _device(devices, offer["device_id"]))
    derived["account_ids"] = unique_accounts(devices[d] for d in by_device)
    derived["status"] = "accepted"
    return derived


def _check_offer_covers(contract: dict[str, Any], offer: dict[str, Any], device: dict[str, Any]) -> None:
    """One offer covers the contract: open, whole window, direction, power, price, currency."""
    name = f"offer {offer['_id']}"
    if offer["status"] != "open":
        refuse(409, f"{name} is {offer['status']}, not open")
    if contract["aggregator_id"] != offer["aggregator_id"]:
        refuse(422, f"{name} is not in aggregator {contract['aggregator_id']}'s portfolio")
    if not offer["start"] <= contract["start"] < contract["end"] <= offer["end"]:
        refuse(
            422,
            f"the contract window must lie inside {name}'s window "
            f"{offer['start']:{DATE_FORMAT}} – {offer['end']:{DATE_FORMAT}}",
        )
    if contract["direction"] != offer["direction"]:
        refuse(422, f"direction {contract['direction']} does not match {name} ({offer['direction']})")
    if contract["price"] < offer["price"]:
        refuse(422, f"price {contract['price']:g} is below {name}'s asking price {offer['price']:g}")
    if contract["currency"] != offer.get("currency", "EUR"):
        refuse(422, f"{name} is priced in {offer.get('currency')}; all offers must share one currency")
    check_on_market(device)
    check_power(contract["power_kw"], device, offer)


def _terms_of_proposal(contract: dict[str, Any], devices: dict[str, dict[str, Any]]) -> dict[str, Any]:
    device_ids = contract.get("device_ids") or []
    if not device_ids:
        refuse(422, "a contract needs offers, or device_ids for a proposal the prosumer accepts")
    if len(set(device_ids)) != len(device_ids):
        refuse(422, "device_ids lists a device twice")
    for field in ("direction", "power_kw", "price"):
        if contract.get(field) is None:
            refuse(422, f"a proposed contract (without offers) needs {field}")
    chosen = [_device(devices, d) for d in device_ids]
    accounts = unique_accounts(chosen)
    if len(accounts) > 1:
        refuse(422, "a proposed contract concerns the devices of one prosumer (one account_id)")
    for device in chosen:
        if device["aggregator_id"] != contract["aggregator_id"]:
            refuse(422, f"device {device['device_id']} is not in aggregator {contract['aggregator_id']}'s portfolio")
        check_on_market(device)
        check_power(contract["power_kw"], device)
    return {"account_ids": accounts, "status": "proposed", "currency": contract.get("currency") or "EUR"}


def check_acceptance(contract: dict[str, Any], devices: dict[str, dict[str, Any]], now: datetime) -> None:
    """A proposal is re-validated when the prosumer accepts it."""
    check_window(contract["start"], contract["end"], now)
    for device_id in contract["device_ids"]:
        device = _device(devices, device_id)
        check_on_market(device)
        check_power(contract["power_kw"], device)


def _device(devices: dict[str, dict[str, Any]], device_id: str) -> dict[str, Any]:
    if device_id not in devices:
        refuse(422, f"unknown device_id {device_id}")
    return devices[device_id]


CONTRACT_CHANGEABLE = frozenset({"status", "ven_response"})
VEN_RESPONSE_STATES = frozenset({"accepted", "active", "completed"})


def check_contract_update(original: dict[str, Any], updates: dict[str, Any], actor: str, now: datetime) -> None:
    """After creation only the status moves and the VEN's response is recorded."""
    fixed = sorted(k for k in updates if not k.startswith("_") and k not in CONTRACT_CHANGEABLE)
    if fixed:
        refuse(422, f"a contract's {', '.join(fixed)} cannot change; cancel it and create a new one")
    if "ven_response" in updates and original["status"] not in VEN_RESPONSE_STATES:
        refuse(
            409,
            f"the contract is {original['status']}; a VEN response is recorded only on "
            f"{', '.join(sorted(VEN_RESPONSE_STATES))} contracts",
        )
    if updates.get("status", original["status"]) != original["status"]:
        check_transition("contract", original, updates["status"], actor, now)
