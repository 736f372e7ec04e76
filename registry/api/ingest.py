"""POST /measurements, the ingestion fast path (docs/timeseries.md).

Eve would validate a bulk POST one Cerberus document at a time; here a batch is
checked column by column: one pass over the items for shapes and types, numpy
for finite values and ranges, and for every timestamp at once, one look-up of
all the devices named (unknown, or not the caller's: "unknown device_id"). The
answer is Eve's: 201 with one ``{_id, _status: OK, …}`` per reading, or 422 with
one ``{_status: ERR, _issues: {field: message}}`` per bad reading, the others
``{_status: OK}``, and nothing stored (the bridge relies on these per-item
verdicts to drop only the bad readings). A reading's ``_id`` is its device and
time; a re-sent one is answered with the same id and changes nothing.

Who may: the roles that may POST measurements (schemas/policy.py); a prosumer only
for its own devices and an aggregator for its portfolio (the devices the data
layer's scope filter lets it see), the bridge's service role and an admin for any.
The request passes the same guards and limits as every request (JSON, finite
numbers, body size, rate); ``on_pre_POST`` and ``on_inserted`` events are raised
as Eve raises them (the forecast job triggers, registry/hooks/jobs.py); the
oplog gets one entry per accepted request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
from eve import Eve
from eve.methods.common import abort, oplog_push, resource_link
from eve.render import send_response
from flask import current_app, request

from registry.api.validator import RegistryValidator, is_canonical_uuid
from registry.auth.bearer import authenticated
from registry.store import embedded
from registry.store.clock import utcnow
from schemas.common import STATUS
from schemas.measurements import SCHEMA
from schemas.vocabulary import DATE_FORMAT

RESOURCE = "measurements"
WRITABLE = frozenset({"device_id", "timestamp", "power_kw", "energy_kwh", "status"})
REQUIRED = ("device_id", "timestamp", "power_kw")
READ_ONLY = frozenset({"_id", "account_id", "aggregator_id"})
POWER_MIN, POWER_MAX = SCHEMA["power_kw"]["min"], SCHEMA["power_kw"]["max"]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def caller() -> Any:
    """The validated caller, 401 / 403 exactly as on Eve's endpoints."""
    who = authenticated()
    current_app.auth.set_user_or_token(f"{who.role}:{who.subject}")
    if "POST" not in current_app.extensions["access_policy"](RESOURCE, who.role):
        abort(403, description=f"a {who.role} may not POST {RESOURCE}")
    return who


def post() -> Any:
    caller()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.on_pre_POST(RESOURCE, request)
    getattr(app, f"on_pre_POST_{RESOURCE}")(request)
    body = request.get_json()
    single = isinstance(body, dict)
    items = [body] if single else body
    if not isinstance(items, list) or not items:
        abort(400, description="Empty bulk insert")
    readings, issues = checked(items)
    failures = sum(1 for issue in issues if issue)
    if failures:
        return send_response(RESOURCE, refusal(issues, failures, single))
    now = utcnow()
    ids = app.data.driver.db[RESOURCE].ingest(readings)
    oplog_push(RESOURCE, {"_id": ids[0], "_updated": now}, "POST")
    app.on_inserted(RESOURCE, readings)
    getattr(app, f"on_inserted_{RESOURCE}")(readings)
    title, stamp = app.config["DOMAIN"][RESOURCE]["item_title"], now.strftime(DATE_FORMAT)  # once, not per reading
    results = [
        {
            "_id": id_,
            "_created": stamp,
            "_updated": stamp,
            "_links": {"self": {"title": title, "href": f"{RESOURCE}/{id_}"}},
            "_status": "OK",
        }
        for id_ in ids
    ]
    response = results[0] if single else {"_status": "OK", "_items": results}
    return send_response(RESOURCE, (response, None, None, 201, [("Location", f"{resource_link()}/{ids[0]}")]))


def refusal(issues: list[dict[str, str]], failures: int, single: bool) -> tuple:
    items = [{"_status": "ERR", "_issues": issue} if issue else {"_status": "OK"} for issue in issues]
    first = next(issue for issue in issues if issue)
    message = f"Insertion failure: {failures} document(s) contain(s) error(s); e.g. " + "; ".join(
        f"{field}: {text}" for field, text in first.items()
    )
    response = items[0] if single else {"_status": "ERR", "_items": items}
    response["_error"] = {"code": 422, "message": message}
    return response, None, None, 422, []


def checked(items: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The readings as stored (aware UTC times, floats, the device's owners) and each
    item's issues ({} when none), checked column by column."""
    n = len(items)
    issues: list[dict[str, str]] = [{} for _ in range(n)]
    power, energy, stamps = np.zeros(n), np.full(n, np.nan), [""] * n
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            issues[i]["document"] = "must be an object"
            continue
        _shape(item, issues[i])
        stamp, kw, kwh = item.get("timestamp"), item.get("power_kw"), item.get("energy_kwh")
        if isinstance(stamp, str) and TIMESTAMP.match(stamp):
            stamps[i] = stamp[:-1]
        elif stamp is not None:
            issues[i]["timestamp"] = "must be of datetime type"
        if _is_number(kw):
            power[i] = kw
        elif kw is not None:
            issues[i]["power_kw"] = "must be of float type"
        if _is_number(kwh):
            energy[i] = kwh
        elif kwh is not None:
            issues[i]["energy_kwh"] = "must be of float type"
    seconds = _epoch_seconds(stamps, issues)
    with np.errstate(invalid="ignore"):
        for i in np.flatnonzero(~np.isfinite(power)):
            issues[i].setdefault("power_kw", "must be of float type")
        for i in np.flatnonzero(power < POWER_MIN):
            issues[i].setdefault("power_kw", f"min value is {POWER_MIN}")
        for i in np.flatnonzero(power > POWER_MAX):
            issues[i].setdefault("power_kw", f"max value is {POWER_MAX}")
        for i in np.flatnonzero(np.isinf(energy)):
            issues[i].setdefault("energy_kwh", "must be of float type")
    owners = _owners(items, issues)
    readings = []
    for i, item in enumerate(items):
        if issues[i]:
            continue
        reading = {
            "device_id": item["device_id"],
            "timestamp": datetime.fromtimestamp(int(seconds[i]), UTC),
            "power_kw": float(power[i]),
            **owners[item["device_id"]],
        }
        if "energy_kwh" in item:
            reading["energy_kwh"] = float(energy[i])
        if "status" in item:
            reading["status"] = dict(item["status"])
        readings.append(reading)
    return readings, issues


def _shape(item: dict[str, Any], issue: dict[str, Any]) -> None:
    for name, value in item.items():
        if name in READ_ONLY:
            issue[name] = "field is read-only"
        elif name not in WRITABLE:
            issue[name] = "unknown field"
        elif value is None:
            issue[name] = "null value not allowed"
    for name in REQUIRED:
        if name not in item:
            issue[name] = "required field"
    if item.get("device_id") is not None and not is_canonical_uuid(item["device_id"]):
        issue["device_id"] = "must be of uuid type"
    status = item.get("status")
    if status is not None and not isinstance(status, dict):
        issue["status"] = "must be of dict type"
    elif status is not None:
        validator = RegistryValidator(STATUS["schema"])  # the registry's types: no booleans as numbers
        if not validator.validate(status):
            issue["status"] = validator.errors  # nested, as Eve reports a sub-document


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _epoch_seconds(stamps: list[str], issues: list[dict[str, str]]) -> np.ndarray:
    """Every timestamp parsed at once (a calendar error found item by item)."""
    texts = [s or "1970-01-01T00:00:00" for s in stamps]
    try:
        parsed = np.array(texts, dtype="datetime64[s]")
    except ValueError:
        parsed = np.array([_one(t, issue) for t, issue in zip(texts, issues)], dtype="datetime64[s]")
    return parsed.astype(np.int64)


def _one(text: str, issue: dict[str, str]) -> str:
    try:
        datetime.strptime(text + "Z", DATE_FORMAT)
        return text
    except ValueError:
        issue["timestamp"] = "must be of datetime type"
        return "1970-01-01T00:00:00"


def _owners(items: list[Any], issues: list[dict[str, str]]) -> dict[str, dict[str, Any]]:
    """device_id -> its owners, for the devices the caller may write readings of; the
    others (unknown or another party's) are an issue of each reading naming them."""
    wanted = {
        item["device_id"] for item, issue in zip(items, issues) if "device_id" in item and "device_id" not in issue
    }
    scope = current_app.data.scope_filter("devices") or {}
    db = current_app.data.driver.db
    if getattr(db, "embedded", False):
        found = embedded.scan(db["devices"], lambda d: d.get("device_id") in wanted)
    else:
        found = db["devices"].find(
            {"device_id": {"$in": sorted(wanted)}}, {"device_id": 1, "account_id": 1, "aggregator_id": 1}
        )
    owners = {
        d["device_id"]: {"account_id": d.get("account_id"), "aggregator_id": d.get("aggregator_id")}
        for d in found
        if all(d.get(k) == v for k, v in scope.items())
    }
    for item, issue in zip(items, issues):
        if isinstance(item, dict) and "device_id" not in issue and item.get("device_id") not in owners:
            issue["device_id"] = f"unknown device_id {item.get('device_id')}"
    return owners


def init_app(app: Eve) -> None:
    """POST /measurements takes the fast path; GET and DELETE stay Eve's."""
    endpoint = f"{RESOURCE}|resource"
    eve_view = app.view_functions[endpoint]

    def measurements(*args: Any, **kwargs: Any) -> Any:
        if request.method == "POST":
            return post()
        return eve_view(*args, **kwargs)

    app.view_functions[endpoint] = measurements
