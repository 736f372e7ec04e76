"""Pure translations between OpenADR terms and registry documents.

No I/O here: the stable device id of a VEN resource, the device document built
from an enrolment and its hints, a reported power unit to kW, a reading's
dtstart to an aware UTC time (refused without ``Z`` or far from now),
telemetry readings to measurement documents (only finite values the registry
accepts), a contract to the signals of an OpenADR event (with an event id that
is stable for the contract and VEN, so a restarted bridge re-sends the same
event), and the contract's ``ven_response`` with the history of the VENs' answers.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from openleadr import objects, utils

from schemas.measurements import SCHEMA as MEASUREMENT_SCHEMA

from .api_client import format_eve_date

# Fixed namespaces: the same VEN resource always maps to the same device_id,
# the same contract and VEN to the same OpenADR event id.
DEVICE_NAMESPACE = uuid.UUID("6f1d6c1e-3b8a-5d4e-9a57-0c3f5e2b7a10")
EVENT_NAMESPACE = uuid.UUID("0b7e9d4c-52a1-5f3e-8c6d-1a2b3c4d5e6f")
POWER_DESCRIPTIONS = frozenset({"RealPower", "powerReal"})
# itemUnits of a power reading -> watts per unit; powerReal allows W and J/s (the XSD),
# a customUnit "RealPower" any text: these are the ones that are power
POWER_UNITS = {"W": 1.0, "J/s": 1.0, "kW": 1e3, "MW": 1e6}
# readings dated further from now are refused: a VEN's clock or time zone is wrong
READING_MAX_AGE = timedelta(days=366)
READING_MAX_LEAD = timedelta(hours=1)
HISTORY_LIMIT = 100  # answers kept per contract (oldest dropped)
MAX_POWER_KW = float(MEASUREMENT_SCHEMA["power_kw"]["max"])  # what the registry accepts
DEVICE_DEFAULTS = {"device_class": "otherLoad", "device_type": "Demand", "availability": "yes"}
HINT_FIELDS = ("device_class", "device_type", "device_name", "max_capacity")
SI_EXPONENTS = {
    "p": -12,
    "n": -9,
    "micro": -6,
    "m": -3,
    "c": -2,
    "d": -1,
    "none": 0,
    None: 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
}
KILOWATT_SIGNAL = objects.Measurement(
    name="powerReal", description="RealPower", unit="W", scale="k", power_attributes=objects.PowerAttributes()
)


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
    hint = {k: v for k, v in resource_hint(enrolment, resource_id).items() if k in HINT_FIELDS and v not in (None, "")}
    if "max_capacity" in hint:
        hint["max_capacity"] = float(hint["max_capacity"])
    document = {
        "device_id": device_id_for(ven_id, resource_id),
        "device_name": resource_id,
        **DEVICE_DEFAULTS,
        "ven_id": ven_id,
        "account_id": enrolment["account_id"],
        "aggregator_id": enrolment["aggregator_id"],
        **hint,
    }
    return document, set(hint)


def kilowatt_factor(unit: str | None, scale: str | None) -> float | None:
    """Multiplier from a reported power value to kW; None when the unit is not power.

    ``unit`` is the itemUnits (W or J/s for powerReal; kW and MW too for a
    customUnit), ``scale`` the siScaleCode (k: the value is in kW when the unit is W).
    """
    base = POWER_UNITS.get(unit or "W")
    if base is None or scale not in SI_EXPONENTS:
        return None
    return base * 10.0 ** SI_EXPONENTS[scale] / 1000.0


def is_power(measurement: dict | None) -> bool:
    """A report description's measurement that is real power (powerReal, or a customUnit
    described as RealPower): the readings the registry stores."""
    return bool(measurement) and (
        measurement.get("name") == "powerReal" or measurement.get("description") in POWER_DESCRIPTIONS
    )


def reading_time(value: Any, now: datetime) -> datetime:
    """A reading's dtstart as an aware UTC datetime; ValueError says why it is refused.

    The 2.0b schema lets the ``Z`` be left out; such a time has no zone, and
    guessing one would shift every reading, so it is refused like a time more
    than READING_MAX_AGE before or READING_MAX_LEAD after ``now``.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"dtstart {text!r} is not a date-time") from None
        if moment.tzinfo is None:
            raise ValueError(f"dtstart {text!r} has no time zone: OpenADR date-times are UTC and end with Z")
    moment = moment.astimezone(UTC)
    if not now - READING_MAX_AGE <= moment <= now + READING_MAX_LEAD:
        raise ValueError(
            f"dtstart {format_eve_date(moment)} is too far from now ({format_eve_date(now)}): check the VEN's clock"
        )
    return moment


def power_kw(value: Any, factor: float) -> float | None:
    """A reported value in kW; None unless it is a finite number within the registry's range."""
    try:
        kilowatts = float(value) * factor
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(kilowatts) or abs(kilowatts) > MAX_POWER_KW:
        return None
    return round(kilowatts, 6)


def power_measurements(
    device_id: str, readings: Iterable[tuple[datetime, Any]], factor: float
) -> tuple[list[dict], list[Any]]:
    """openleadr's ``[(dtstart, value), ...]`` as registry measurement documents, and
    the readings refused (NaN, ±Infinity, out of range, no timestamp): never forwarded."""
    documents, refused = [], []
    for moment, value in readings:
        kilowatts = power_kw(value, factor)
        if kilowatts is None or not isinstance(moment, datetime):
            refused.append(value)
        else:
            documents.append({"device_id": device_id, "timestamp": format_eve_date(moment), "power_kw": kilowatts})
    return documents, refused


def parse_moment(value: Any) -> datetime:
    """A timestamp from the registry: a datetime or an ISO 8601 string (DATE_FORMAT)."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def contract_signals(contract: dict) -> list[objects.EventSignal]:
    """The event signals for a contract window (or an order's: ``power_kw`` per slot).

    ``direction`` is the registry's (schemas/common.py): of the device's net
    power, + consumption, so "down" = the device draws less (or exports more),
    "up" = it draws more. LOAD_DISPATCH/delta carries that change of consumption
    in kW; a "down" contract also sends SIMPLE level 1 so that simple VENs shed load
    (an order's slots without accepted power: delta 0, level 0).
    """
    start, end = parse_moment(contract["start"]), parse_moment(contract["end"])
    if end <= start:
        raise ValueError(f"contract {contract.get('_id')} has an empty window")
    sign = -1.0 if contract.get("direction", "down") == "down" else 1.0
    power = contract.get("power_kw")
    slots = power if isinstance(power, list) and power else [power]
    if not all(_usable(kw) for kw in slots) or not any(kw > 0 for kw in slots):
        raise ValueError(f"contract {contract.get('_id')} has no usable power_kw ({power!r})")
    step = (end - start) / len(slots)

    def intervals(payload: Callable[[float], float]) -> list[objects.Interval]:
        return [
            objects.Interval(dtstart=start + i * step, duration=step, signal_payload=payload(kw))
            for i, kw in enumerate(slots)
        ]

    signals = [
        objects.EventSignal(
            intervals=intervals(lambda kw: sign * float(kw) + 0.0),
            signal_name="LOAD_DISPATCH",
            signal_type="delta",
            signal_id=utils.generate_id(),
            measurement=KILOWATT_SIGNAL,
        )
    ]
    if sign < 0:
        simple = intervals(lambda kw: 1.0 if kw > 0 else 0.0)
        signals.insert(
            0,
            objects.EventSignal(
                intervals=simple, signal_name="SIMPLE", signal_type="level", signal_id=utils.generate_id()
            ),
        )
    return signals


def _usable(kw: Any) -> bool:
    return not isinstance(kw, bool) and isinstance(kw, (int, float)) and math.isfinite(kw) and kw >= 0


def contract_event(
    contract: dict, ven_id: str, resource_ids: list[str], market_context: str, *, cancelled: bool = False
) -> objects.Event:
    """One OpenADR event for the devices of a contract that sit behind one VEN.

    ``cancelled`` builds the event as a VEN that already holds it must see it
    after a cancellation (status cancelled, modification 1).
    """
    targets = [objects.Target(ven_id=ven_id)]
    targets += [objects.Target(resource_id=resource_id) for resource_id in resource_ids]
    descriptor = objects.EventDescriptor(
        event_id=event_id_for(str(contract["_id"]), ven_id),
        modification_number=int(cancelled),
        market_context=market_context,
        event_status="cancelled" if cancelled else "far",
        vtn_comment=f"contract {contract['_id']}",
    )
    return objects.Event(
        event_descriptor=descriptor,
        event_signals=contract_signals(contract),
        targets=targets,
        response_required="always",
    )


def answer_with(current: dict | None, ven_id: str, event_id: str, opt_type: str, at: datetime) -> dict | None:
    """The contract's ``ven_response`` once this VEN answered, or None when it repeats
    its current answer (openleadr's VEN repeats it for every event it holds).

    ``history`` keeps every change of answer with its time (the newest
    HISTORY_LIMIT); the top-level ``opt`` is the contract's answer from each
    event's latest one (one event per VEN): any optOut makes it optOut.
    """
    history = list((current or {}).get("history") or [])
    if current and not history:  # recorded before the history was kept
        history = [{k: current[k] for k in ("opt", "event_id", "at", "ven_id") if k in current}]
    latest = latest_answers(history)
    if event_id in latest and latest[event_id]["opt"] == opt_type:
        return None
    history = (history + [{"opt": opt_type, "event_id": event_id, "ven_id": ven_id, "at": format_eve_date(at)}])[
        -HISTORY_LIMIT:
    ]
    return {**contract_answer(history), "history": history}


def latest_answers(history: list[dict]) -> dict[str, dict]:
    """event_id -> its latest answer, in the order those came (the history is in time order)."""
    latest: dict[str, tuple[int, dict]] = {}
    for position, entry in enumerate(history):
        latest[entry["event_id"]] = (position, entry)
    return {event_id: entry for event_id, (_, entry) in sorted(latest.items(), key=lambda i: i[1][0])}


def contract_answer(history: list[dict]) -> dict:
    """The answer the contract shows: the latest optOut still standing, else the latest answer."""
    standing = list(latest_answers(history).values())
    outs = [entry for entry in standing if entry["opt"] == "optOut"]
    return dict((outs or standing)[-1])


def clamp_interval(wanted: timedelta, low: timedelta | None, high: timedelta | None) -> timedelta:
    if low is not None and wanted < low:
        return low
    if high is not None and wanted > high:
        return high
    return wanted
