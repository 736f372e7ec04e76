"""Everything the registry holds about one prosumer account, as one zip (docs/privacy.md).

``account.json`` holds the account's documents, each as the prosumer reads it through
the API (the fields hidden from prosumers left out, a shared contract cut down to the
account's own share), and the audit entries about them; ``measurements.csv`` holds its
readings, one line each. Dates are the API's (``YYYY-MM-DDTHH:MM:SSZ``, UTC).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime
from typing import Any

from bson import ObjectId

from registry.market.shares import keep_own_shares
from schemas.policy import HIDDEN
from schemas.vocabulary import DATE_FORMAT

OPLOG = "oplog"
# the account's documents: resource -> the field that names the account
OWNED = {
    "devices": "account_id",
    "vens": "account_id",
    "offers": "account_id",
    "contracts": "account_ids",
    "orders": "account_ids",  # a grid operator's orders holding one of its devices
    "forecasts": "account_id",
    "advice": "account_id",
    "jobs": "account_id",
}
CSV_COLUMNS = ("device_id", "timestamp", "power_kw", "energy_kwh", "status")
ABOUT = """What the DER Registry holds about account {account_id}, exported {at}.

account.json  the prosumer record, devices, VEN enrolments, offers, contracts (this
              account's share only), grid operators' orders holding its devices,
              forecasts, advice, jobs, and the audit entries about these documents
              (who changed what, when, from where)
measurements.csv  every reading of the account's devices (kW, + consumption / - export)

Dates are UTC, written YYYY-MM-DDTHH:MM:SSZ. docs/privacy.md explains each field.
"""


def collect(db: Any, account_id: str) -> dict[str, Any]:
    """The account's documents by resource, as a prosumer sees them; empty if none."""
    held: dict[str, Any] = {"prosumer": _visible("prosumers", db["prosumers"].find_one({"account_id": account_id}))}
    for resource, field in OWNED.items():
        held[resource] = [_visible(resource, doc) for doc in db[resource].find({field: account_id})]
    keep_own_shares(db, held["contracts"], account_id)
    return held


def audited_ids(held: dict[str, Any], id_fields: dict[str, str]) -> list[Any]:
    """The ids the oplog names the account's documents by: each resource's ``id_field``
    (``device_id`` for devices), and ``_id`` too."""
    docs = [("prosumers", held["prosumer"])] if held["prosumer"] else []
    docs += [(resource, doc) for resource in OWNED for doc in held[resource]]
    ids = {doc["_id"] for _, doc in docs}
    ids |= {doc[id_fields[resource]] for resource, doc in docs if id_fields.get(resource, "_id") in doc}
    return list(ids)


def audit_entries(db: Any, held: dict[str, Any], id_fields: dict[str, str]) -> list[dict[str, Any]]:
    """The oplog's entries about the account's documents; a shared contract's or an
    order's entries without their changes (they name other parties), hidden fields
    left out."""
    ids = audited_ids(held, id_fields)
    shared = {doc["_id"] for doc in held["contracts"] + held["orders"]}
    entries = []
    for entry in db[OPLOG].find({"i": {"$in": ids}}).sort("_created", 1):
        if entry["i"] in shared:
            entry.pop("c", None)
        elif isinstance(entry.get("c"), dict):
            hidden = HIDDEN.get((entry.get("r", ""), "prosumer"), frozenset())
            entry["c"] = {k: v for k, v in entry["c"].items() if k not in hidden}
        entries.append(entry)
    return entries


def is_empty(held: dict[str, Any]) -> bool:
    return not held["prosumer"] and not any(held[resource] for resource in OWNED)


def archive(db: Any, account_id: str, held: dict[str, Any], now: datetime, id_fields: dict[str, str]) -> bytes:
    """The zip: about.txt, account.json, measurements.csv."""
    document = {"account_id": account_id, "exported_at": now, **held, "audit": audit_entries(db, held, id_fields)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("about.txt", ABOUT.format(account_id=account_id, at=now.strftime(DATE_FORMAT)))
        bundle.writestr("account.json", json.dumps(document, default=_json_value, indent=1, sort_keys=True))
        bundle.writestr("measurements.csv", readings_csv(db, account_id))
    return buffer.getvalue()


def readings_csv(db: Any, account_id: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for reading in db["measurements"].find({"account_id": account_id}, sort=[("device_id", 1), ("timestamp", 1)]):
        status = reading.get("status")
        writer.writerow(
            [
                reading["device_id"],
                reading["timestamp"].strftime(DATE_FORMAT),
                reading.get("power_kw", ""),
                "" if reading.get("energy_kwh") is None else reading["energy_kwh"],
                "" if status is None else json.dumps(status, sort_keys=True),
            ]
        )
    return out.getvalue()


def _visible(resource: str, doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    hidden = HIDDEN.get((resource, "prosumer"), frozenset())
    return {k: v for k, v in doc.items() if k not in hidden}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, ObjectId):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not exported")
