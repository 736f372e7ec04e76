"""A prosumer's share of a contract that several prosumers' offers make up: its own
account, devices, offers, settlement and its own VENs' answers, none of the others'
(docs/marketplace.md).

Used by the API's reads (registry/hooks/marketplace.py) and by a prosumer's export
(registry/api/privacy_export.py), so both show a prosumer the same share."""

from __future__ import annotations

from typing import Any

from bson import ObjectId


def keep_own_shares(db: Any, contracts: list[dict[str, Any]], account_id: str) -> None:
    """Cut each shared contract of ``contracts`` down to ``account_id``'s share, in place."""
    shared = [c for c in contracts if len(c.get("account_ids") or []) > 1]
    if not shared:
        return
    own = list(
        db["devices"].find(
            {"device_id": {"$in": [d for c in shared for d in c.get("device_ids") or []]}, "account_id": account_id},
            {"device_id": 1, "ven_id": 1},
        )
    )
    devices = {d["device_id"] for d in own}
    vens = {d["ven_id"] for d in own if d.get("ven_id")} | {
        v["ven_id"] for v in db["vens"].find({"account_id": account_id}, {"ven_id": 1}) if v.get("ven_id")
    }
    offers = {
        o["_id"]
        for o in db["offers"].find(
            {"_id": {"$in": [offer_id(o) for c in shared for o in c.get("offers") or []]}, "account_id": account_id},
            {"_id": 1},
        )
    }
    for contract in shared:
        _keep_own(contract, account_id, devices, offers)
        _keep_own_answers(contract, vens)


def _keep_own_answers(contract: dict[str, Any], vens: set[str]) -> None:
    """The VEN answers of the account's own gateways: the latest of them, and their history."""
    response = contract.get("ven_response")
    if not isinstance(response, dict):
        return
    history = [h for h in response.get("history") or [] if isinstance(h, dict) and h.get("ven_id") in vens]
    latest = response if response.get("ven_id") in vens else (history[-1] if history else None)
    if latest is None:
        contract.pop("ven_response")
        return
    contract["ven_response"] = {**{k: v for k, v in latest.items() if k != "history"}, "history": history}


def _keep_own(contract: dict[str, Any], account_id: str, devices: set[str], offers: set[Any]) -> None:
    contract["account_ids"] = [account_id]
    if "device_ids" in contract:
        contract["device_ids"] = [d for d in contract["device_ids"] if d in devices]
    if "offers" in contract:
        contract["offers"] = [o for o in contract["offers"] if offer_id(o) in offers]
    shares = contract.pop("settlement_shares", None) or []
    if "settlement" in contract:
        contract["settlement"] = next((s for s in shares if s.get("account_id") == account_id), None)


def offer_id(offer: Any) -> Any:
    """An offer reference, or an embedded offer (``?embedded={"offers": 1}``)."""
    found = offer.get("_id") if isinstance(offer, dict) else offer
    try:
        return ObjectId(found)
    except (TypeError, ValueError):
        return found
