"""A VEN's resources as registry devices, in as few REST calls as the registry allows.

For all the resources of one report registration: one GET of the VEN's
devices (``where={"ven_id": …}``, paged), one bulk POST of those not stored
yet, and a PATCH only where the enrolment's hints changed (a VEN with 200
resources registers in a few calls, not 400). The bridge writes only to the
VEN's own devices: a device id that exists with other owners is left as it is
and its resource is not bridged (logged), and so is a resource whose device
the registry refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from . import mapping
from .api_client import ApiClient, ApiError
from .telemetry import per_item_issues

logger = logging.getLogger("registry.openadr")

OWNER_FIELDS = ("account_id", "aggregator_id", "ven_id")
BULK = 500  # devices per POST


async def ensure_devices(
    api: ApiClient, enrolment: dict, ven_id: str, resource_ids: Iterable[str]
) -> dict[str, str | None]:
    """resource_id -> its device_id, or None when it is not bridged."""
    planned = {resource: mapping.device_document(enrolment, ven_id, resource) for resource in resource_ids}
    if not planned:
        return {}
    stored = {d["device_id"]: d for d in await api.find_all("devices", {"ven_id": ven_id})}
    new = [document for document, _ in planned.values() if document["device_id"] not in stored]
    refused = set()
    for start in range(0, len(new), BULK):
        refused |= await _create(api, new[start : start + BULK])
    outcome: dict[str, str | None] = {}
    for resource, (document, owned) in planned.items():
        device_id = document["device_id"]
        current = stored.get(device_id)
        if device_id in refused:
            current = await api.get_item("devices", device_id)  # raced, foreign, or invalid
            if current is None:
                outcome[resource] = None
                continue
        if current is not None and not await _update(api, current, document, owned, resource):
            outcome[resource] = None
            continue
        outcome[resource] = device_id
    created = len(new) - len(refused)
    logger.info(
        "VEN %s: %d device(s) created, %d known, %d not bridged",
        ven_id,
        created,
        len(planned) - created - sum(v is None for v in outcome.values()),
        sum(v is None for v in outcome.values()),
    )
    return outcome


async def _create(api: ApiClient, documents: list[dict]) -> set[str]:
    """POST the documents in bulk; the ids of those the registry refused."""
    if not documents:
        return set()
    status, body = await api.request("POST", "/devices", json_body=documents)
    if status in (200, 201):
        return set()
    issues = per_item_issues(body, len(documents))
    if status != 422 or issues is None:
        raise ApiError(status, body, "POST", "/devices")
    refused = {doc["device_id"] for doc, issue in zip(documents, issues) if issue}
    if not refused:
        raise ApiError(status, body, "POST", "/devices")
    for doc, issue in zip(documents, issues):
        if issue:
            logger.warning("device %s not created: %s", doc["device_id"], issue)
    return refused | await _create(api, [doc for doc in documents if doc["device_id"] not in refused])


async def _update(api: ApiClient, current: dict, document: dict, owned: set[str], resource: str) -> bool:
    """PATCH the hinted fields that changed; False for a device with other owners."""
    moved = sorted(k for k in OWNER_FIELDS if current.get(k) != document[k])
    if moved:
        logger.warning(
            "resource %r not bridged: device %s belongs to another %s; it is left as it is",
            resource,
            document["device_id"],
            ", ".join(moved),
        )
        return False
    changes = {k: v for k, v in document.items() if k in owned and k != "device_id" and current.get(k) != v}
    if changes:
        await api.patch_item("devices", document["device_id"], changes, current.get("_etag"))
    return True
