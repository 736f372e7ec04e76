"""How a query on readings is answered from day buckets: which buckets, then which readings.

Top-level clauses (also inside ``$and``) on ``device_id`` (a value or ``$in``), on the
owners (a value) and on ``timestamp`` (a value or a range) choose the buckets: with
devices and both ends of the range known, by ``_id`` (computed, no scan on the
embedded store; the ``device_day`` index on MongoDB), else by one pass over the
buckets. A query with any other clause is ``exact=False``: the caller evaluates it
on each reading of those buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from registry.store import embedded, timeseries
from registry.store.clock import as_utc

MAX_PROBED_BUCKETS = 50_000  # beyond this many (device, day) ids a scan is cheaper


@dataclass
class Plan:
    devices: set[str] | None = None
    owners: dict[str, Any] = field(default_factory=dict)
    begin: datetime | None = None  # inclusive
    end: datetime | None = None  # inclusive
    begin_open: bool = False
    end_open: bool = False
    exact: bool = True  # the clauses above are the whole filter
    empty: bool = False


def plan(spec: dict[str, Any] | None) -> Plan:
    result = Plan()
    for name, condition in _clauses(spec or {}, result):
        if name == "_id":
            parsed = timeseries.parse_reading_id(condition)
            if parsed is None:
                result.empty = True
                continue
            _devices(result, {parsed[0]})
            _bound(result, "$gte", parsed[1])
            _bound(result, "$lte", parsed[1])
        elif name == "device_id" and isinstance(condition, str):
            _devices(result, {condition})
        elif name == "device_id" and _only(condition, "$in") and isinstance(condition["$in"], list):
            _devices(result, {d for d in condition["$in"] if isinstance(d, str)})
        elif name in timeseries.OWNERS and isinstance(condition, str):
            if result.owners.setdefault(name, condition) != condition:
                result.empty = True
        elif name == "timestamp" and isinstance(condition, datetime):
            _bound(result, "$gte", condition)
            _bound(result, "$lte", condition)
        elif name == "timestamp" and _time_range(condition):
            for op, value in condition.items():
                _bound(result, op, value)
        else:
            result.exact = False
    return result


def _clauses(spec: dict[str, Any], result: Plan) -> list[tuple[str, Any]]:
    out = []
    for name, condition in spec.items():
        if name == "$and" and isinstance(condition, list) and all(isinstance(c, dict) for c in condition):
            for part in condition:
                out += _clauses(part, result)
        elif name.startswith("$"):
            result.exact = False
        else:
            out.append((name, condition))
    return out


def _only(condition: Any, op: str) -> bool:
    return isinstance(condition, dict) and list(condition) == [op]


def _time_range(condition: Any) -> bool:
    ops = {"$gte", "$gt", "$lte", "$lt"}
    return (
        isinstance(condition, dict)
        and bool(condition)
        and set(condition) <= ops
        and all(isinstance(v, datetime) for v in condition.values())
    )


def _devices(result: Plan, devices: set[str]) -> None:
    result.devices = devices if result.devices is None else result.devices & devices


def _bound(result: Plan, op: str, value: datetime) -> None:
    value = as_utc(value)
    if op in ("$gte", "$gt"):
        if result.begin is None or value > result.begin or (value == result.begin and op == "$gt"):
            result.begin, result.begin_open = value, op == "$gt"
    elif result.end is None or value < result.end or (value == result.end and op == "$lt"):
        result.end, result.end_open = value, op == "$lt"


def within(p: Plan, moment: datetime) -> bool:
    if p.begin is not None and (moment < p.begin or (p.begin_open and moment == p.begin)):
        return False
    return p.end is None or not (moment > p.end or (p.end_open and moment == p.end))


def _just_after(moment: datetime) -> datetime:
    """The end of an inclusive range as an exclusive one; the last second a date can name
    stays itself (its day is still the last day touched)."""
    try:
        return moment + timedelta(seconds=1)
    except OverflowError:
        return moment


def candidate_buckets(buckets: Any, p: Plan) -> list[dict[str, Any]]:
    """The buckets that can hold a matching reading."""
    if p.empty or p.devices == set():
        return []
    if p.devices is not None and p.begin is not None and p.end is not None:
        after = _just_after(p.end)
        if len(p.devices) * timeseries.day_count(p.begin, after) <= MAX_PROBED_BUCKETS or not buckets.embedded:
            found = timeseries.fetch(buckets, sorted(p.devices), p.begin, after)
            return [b for b in found if all(b.get(k) == v for k, v in p.owners.items())]
    first = timeseries.day_of(p.begin) if p.begin is not None else None
    last = timeseries.day_of(p.end) if p.end is not None else None
    if buckets.embedded:
        return embedded.scan(buckets, lambda b: _may_hold(b, p, first, last))
    spec: dict[str, Any] = dict(p.owners)
    if p.devices is not None:
        spec["device_id"] = {"$in": sorted(p.devices)}
    days = {**({"$gte": first} if first else {}), **({"$lte": last} if last else {})}
    if days:
        spec["day"] = days
    return list(buckets.find(spec))


def _may_hold(bucket: dict[str, Any], p: Plan, first: datetime | None, last: datetime | None) -> bool:
    if p.devices is not None and bucket["device_id"] not in p.devices:
        return False
    if any(bucket.get(k) != v for k, v in p.owners.items()):
        return False
    day = as_utc(bucket["day"])
    return (first is None or day >= first) and (last is None or day <= last)
