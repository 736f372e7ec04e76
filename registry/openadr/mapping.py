"""Pure translations between OpenADR terms and registry documents.

No I/O here: the stable device id of a VEN resource, the device document built
from an enrolment and its hints, telemetry readings to measurement documents
(only finite values the registry accepts),
a contract to the signals of an OpenADR event (with an event id that is stable
for the contract and VEN, so a restarted bridge re-sends the same event), and
which opt response a contract records.
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from openleadr import objects, utils

from schemas.measurements import SCHEMA as MEASUREMENT_SCHEMA

from .api_client import format_eve_date

# Fixed namespaces: the same VEN resource always maps to the same device_id,
# the same contract and VEN to the same OpenADR event id.
DEVICE_NAMESPACE = uuid.UUID("6f1d6c1e-3b8a-5d4e-9a57-0c3f5e2b7a10")
EVENT_NAMESPACE = uuid.UUID("0b7e9d4c-52a1-5f3e-8c6d-1a2b3c4d5e6f")
POWER_DESCRIPTIONS = frozenset({"RealPower", "powerReal"})
MAX_POWER_KW = float(MEASUREMENT_SCHEMA["power_kw"]["max"])  # what the registry accepts
DEVICE_DEFAULTS = {"device_class": "otherLoad", "device_type": "Demand", "availability": "yes"}
HINT_FIELDS = ("device_class", "device_type", "device_name", "max_capacity")
SI_EXPONENTS = {"p": -12, "n": -9, "micro": -6, "m": -3, "c": -2, "d": -1, "none": 0,
                None: 0, "k": 3, "M": 6, "G": 9, "T": 12}
KILOWATT_SIGNAL = objects.Measurement(name="powerReal", description="RealPower", unit="W",
                                      scale="k", power_attributes=objects.PowerAttributes())


def device_id_for(ven_id: str, resource_id: str) -> str:
    """The registry device_id of one VEN resource: uuid5, so re-registration updates it."""
    return str(uuid.uuid5(DEVICE_NAMESPACE, f"{ven_id}/{resource_id}"))


def event_id_for(contract_id: str, ven_id: str) -> str:
    """The OpenADR event id of a contract at one VEN: stable across bridge restarts."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{contract_id}/{ven_id}"))


def resource_hint(enrolment: dict, resource_id: str) -> dict:
    for hint in enrolment.get("resources") or []:
        if hint.get("resource_id") == resource_id:
            return hint
    return {}


def device_document(enrolment: dict, ven_id: str, resource_id: str) -> tuple[dict, set[str]]:
    """The device to create for a reported resource, and the fields the bridge owns.

    Owned fields (the enrolment's explicit hints) are refreshed on
    re-registration; defaults are only used at creation, so a prosumer's later
    change of e.g. ``availability`` survives a VEN restart. The owners
    (``ven_id``, ``account_id``, ``aggregator_id``) are set once: devices do not move.
    """
    hint = {k: v for k, v in resource_hint(enrolment, resource_id).items()
            if k in HINT_FIELDS and v not in (None, "")}
    if "max_capacity" in hint:
        hint["max_capacity"] = float(hint["max_capacity"])
    document = {"device_id": device_id_for(ven_id, resource_id), "device_name": resource_id,
                **DEVICE_DEFAULTS, "ven_id": ven_id,
                "account_id": enrolment["account_id"], "aggregator_id": enrolment["aggregator_id"],
                **hint}
    return document, set(hint)


def kilowatt_factor(unit: str | None, scale: str | None) -> float | None:
    """Multiplier from a reported power value to kW; None when the unit is not power."""
    base = {"W": 1.0, "kW": 1000.0, "MW": 1e6}.get(unit or "W")
    if base is None or scale not in SI_EXPONENTS:
        return None
    return base * 10.0 ** SI_EXPONENTS[scale] / 1000.0


def power_kw(value: Any, factor: float) -> float | None:
    """A reported value in kW; None unless it is a finite number within the registry's range."""
    try:
        kilowatts = float(value) * factor
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(kilowatts) or abs(kilowatts) > MAX_POWER_KW:
        return None
    return round(kilowatts, 6)


def power_measurements(device_id: str, readings: Iterable[tuple[datetime, Any]],
                       factor: float) -> tuple[list[dict], list[Any]]:
    """openleadr's ``[(dtstart, value), ...]`` as registry measurement documents, and
    the readings refused (NaN, ±Infinity, out of range, no timestamp): never forwarded."""
    documents, refused = [], []
    for moment, value in readings:
        kilowatts = power_kw(value, factor)
        if kilowatts is None or not isinstance(moment, datetime):
            refused.append(value)
        else:
            documents.append({"device_id": device_id, "timestamp": format_eve_date(moment),
                              "power_kw": kilowatts})
    return documents, refused


def parse_moment(value: Any) -> datetime:
    """A timestamp from the registry: a datetime or an ISO 8601 string (DATE_FORMAT)."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def contract_signals(contract: dict) -> list[objects.EventSignal]:
    """The event signals for a contract window.

    ``direction`` is the registry's (schemas/common.py): of the device's net
    power, + consumption, so "down" = the device draws less (or exports more),
    "up" = it draws more. LOAD_DISPATCH/delta carries that change of consumption
    in kW; a "down" contract also sends SIMPLE level 1 so that simple VENs shed load.
    """
    start, end = parse_moment(contract["start"]), parse_moment(contract["end"])
    if end <= start:
        raise ValueError(f"contract {contract.get('_id')} has an empty window")
    power = contract.get("power_kw")
    if isinstance(power, bool) or not isinstance(power, (int, float)) \
            or not math.isfinite(power) or power <= 0:
        raise ValueError(f"contract {contract.get('_id')} has no usable power_kw ({power!r})")
    delta = -float(power) if contract.get("direction", "down") == "down" else float(power)

    def interval(payload: float) -> objects.Interval:
        return objects.Interval(dtstart=start, duration=end - start, signal_payload=payload)

    signals = [objects.EventSignal(intervals=[interval(delta)], signal_name="LOAD_DISPATCH",
                                   signal_type="delta", signal_id=utils.generate_id(),
                                   measurement=KILOWATT_SIGNAL)]
    if delta < 0:
        signals.insert(0, objects.EventSignal(intervals=[interval(1.0)], signal_name="SIMPLE",
                                              signal_type="level", signal_id=utils.generate_id()))
    return signals


def contract_event(contract: dict, ven_id: str, resource_ids: list[str],
                   market_context: str, *, cancelled: bool = False) -> objects.Event:
    """One OpenADR event for the devices of a contract that sit behind one VEN.

    ``cancelled`` builds the event as a VEN that already holds it must see it
    after a cancellation (status cancelled, modification 1).
    """
    targets = [objects.Target(ven_id=ven_id)]
    targets += [objects.Target(resource_id=resource_id) for resource_id in resource_ids]
    descriptor = objects.EventDescriptor(
        event_id=event_id_for(str(contract["_id"]), ven_id), modification_number=int(cancelled),
        market_context=market_context, event_status="cancelled" if cancelled else "far",
        vtn_comment=f"contract {contract['_id']}")
    return objects.Event(event_descriptor=descriptor, event_signals=contract_signals(contract),
                         targets=targets, response_required="always")


def opt_changes_answer(current: dict | None, event_id: str, opt_type: str) -> bool:
    """Whether a VEN's opt response should replace the contract's ``ven_response``.

    Several VENs may serve one contract: any optOut makes the contract's answer
    optOut; a VEN repeating its answer (as openleadr's client does for every
    event it holds) changes nothing.
    """
    if not current:
        return True
    if current.get("event_id") == event_id:
        return current.get("opt") != opt_type
    return opt_type == "optOut" and current.get("opt") != "optOut"


def opt_record(opt_type: str, event_id: str, now: datetime | None = None) -> dict:
    """What the contract's ``ven_response`` field receives."""
    return {"opt": opt_type, "event_id": event_id,
            "at": format_eve_date(now or datetime.now(timezone.utc))}


def clamp_interval(wanted: timedelta, low: timedelta | None, high: timedelta | None) -> timedelta:
    if low is not None and wanted < low:
        return low
    if high is not None and wanted > high:
        return high
    return wanted
