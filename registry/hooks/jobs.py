"""Job triggers (docs/contract.md, "Jobs"): what starts a forecast or an advice job.

Hooks only enqueue (registry.jobs); the work happens in a worker. Input keys
name the target day and what triggered the job, so a repeated trigger is the
same job, and a queued job absorbs further triggers for its subject.

    device inserted          -> consumption + flexibility forecast
    device capacity changed  -> flexibility forecast
    measurements inserted    -> consumption forecast (one per device per burst)
    consumption forecast     -> flexibility forecast + prosumer advice
    offer, price, contract   -> prosumer advice (accounts that have a forecast)
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from eve.methods.common import abort
from flask import current_app

from registry import jobs
from registry.forecast.timeseries import iso, target_start
from registry.hooks import registry_rules
from registry.jobs.records import utcnow

FLEXIBILITY_FIELDS = frozenset({"availability", "max_capacity", "available_capacity", "device_type"})


def day() -> str:
    return iso(target_start(utcnow()))


def digest(values: Iterable[Any]) -> str:
    return hashlib.sha1("|".join(sorted(map(str, values))).encode()).hexdigest()[:16]


def _db() -> Any:
    return current_app.data.driver.db


def forecast_new_devices(items: list[dict[str, Any]]) -> None:
    jobs.enqueue_forecasts(items, "device")


def forecast_flexibility_on_change(updates: dict[str, Any], original: dict[str, Any]) -> None:
    if FLEXIBILITY_FIELDS & set(updates):
        version = updates.get("_etag") or iso(updates.get("_updated") or utcnow())
        jobs.enqueue(
            "flexibility_forecast", original["device_id"], f"{day()}/device@{version}", owner=jobs.owner_of(original)
        )


def forecast_after_measurements(items: list[dict[str, Any]]) -> None:
    """One consumption forecast job per device, whatever the size of the bulk (queued
    together: one read of the jobs collection, not one per device)."""
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        by_device[item["device_id"]].append(item)
    requests = []
    for device_id, readings in by_device.items():
        latest = max(r["timestamp"] for r in readings)
        key = f"{day()}/measurements@{iso(latest)}#{len(readings)}"  # a client's retry is the same job
        requests.append(("consumption_forecast", device_id, key, {}, jobs.owner_of(readings[0])))
    jobs.enqueue_many(requests)


def check_forecast_kind(items: list[dict[str, Any]]) -> None:
    for item in items:
        if (item["kind"] == "flexibility") != ("direction" in item):
            abort(
                422,
                description="a flexibility forecast needs a direction (up or down); a consumption forecast has none",
            )


def follow_new_forecasts(items: list[dict[str, Any]]) -> None:
    consumption = [i for i in items if i["kind"] == "consumption"]
    for item in consumption:
        jobs.enqueue(
            "flexibility_forecast",
            item["device_id"],
            f"{iso(item['start'])}/forecast:{item['_id']}",
            owner=jobs.owner_of(item),
        )
    by_account = _group(consumption, "account_id")
    for account_id, group in by_account.items():
        advise(account_id, group[0]["aggregator_id"], f"forecasts:{digest(i['_id'] for i in group)}")


def advise(account_id: str, aggregator_id: str, trigger: str) -> None:
    jobs.enqueue(
        "prosumer_advice",
        account_id,
        f"{day()}/{trigger}",
        owner={"account_id": account_id, "aggregator_id": aggregator_id},
    )


def advise_forecasted(accounts: dict[str, str], trigger: str) -> None:
    """Prosumer advice for the accounts (-> aggregator) that have a consumption forecast:
    the others get theirs when their first forecast arrives."""
    if not accounts:
        return
    ready = _db()["forecasts"].distinct("account_id", {"kind": "consumption", "account_id": {"$in": list(accounts)}})
    for account_id in sorted(ready):
        advise(account_id, accounts[account_id], trigger)


def advise_on_offers(items: list[dict[str, Any]]) -> None:
    for account_id, group in _group(items, "account_id").items():
        advise_forecasted({account_id: group[0]["aggregator_id"]}, f"offers:{digest(i['_id'] for i in group)}")


def advise_on_prices(items: list[dict[str, Any]]) -> None:
    for item in items:
        advise_forecasted(_accounts_in_scope(item), f"price:{item['_id']}")


def _accounts_in_scope(price: dict[str, Any]) -> dict[str, str]:
    spec: dict[str, Any] = {}
    if price.get("aggregator_id"):
        spec["aggregator_id"] = price["aggregator_id"]
    elif price.get("area"):
        aggregators = _db()["aggregators"].find({"country": price["area"]}, {"aggregator_id": 1})
        spec["aggregator_id"] = {"$in": [a["aggregator_id"] for a in aggregators]}
    return {
        p["account_id"]: p["aggregator_id"]
        for p in _db()["prosumers"].find(spec, {"account_id": 1, "aggregator_id": 1})
    }


def advise_on_contracts(items: list[dict[str, Any]]) -> None:
    for item in items:
        _advise_contract(item, item.get("status", ""))


def advise_on_contract_change(updates: dict[str, Any], original: dict[str, Any]) -> None:
    if "status" in updates:
        _advise_contract(original, updates["status"])


def _advise_contract(contract: dict[str, Any], status: str) -> None:
    accounts = {a: contract["aggregator_id"] for a in contract.get("account_ids") or []}
    advise_forecasted(accounts, f"contract:{contract['_id']}@{status}")


def _group(items: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if item.get(field):
            groups[item[field]].append(item)
    return groups


HOOKS = [
    ("on_inserted_devices", forecast_new_devices),
    ("on_updated_devices", forecast_flexibility_on_change),
    ("on_inserted_measurements", forecast_after_measurements),
    ("on_insert_forecasts", registry_rules.copy_owner_from_device),
    ("on_insert_forecasts", check_forecast_kind),
    ("on_inserted_forecasts", follow_new_forecasts),
    ("on_inserted_offers", advise_on_offers),
    ("on_inserted_prices", advise_on_prices),
    ("on_inserted_contracts", advise_on_contracts),
    ("on_updated_contracts", advise_on_contract_change),
]
