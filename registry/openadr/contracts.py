"""Contracts -> OpenADR events (the VENs' answers to them: :mod:`.opts`).

:class:`ContractEvents` keeps what this VTN has queued on openleadr's server
(contract id -> {ven_id: event_id}, and each event's contract), queues and
cancels events. :class:`ContractWatcher` finds the work over REST, so
contracts reach VENs whichever process created or changed them::

    every OPENADR_WATCH_SECONDS:
      GET /contracts?where={status in accepted|active|cancelled|rejected,
                            start <= now + lead, end > now}
      accepted / active   -> one event per VEN behind its devices that is
                             registered here and has none from this contract yet
      cancelled/rejected  -> cancel the events queued here; after a restart, a
                             VEN that had answered (ven_response) gets the
                             cancelled event
      known, not listed   -> ended: forgotten; else re-read: cancelled or gone
      GET /orders?where={status in accepted|active, the same window}
      (the grid operators' orders, docs/market.md)
                          -> one event per VEN, as for a live contract, with
                             one interval per 15-minute slot of the order
      a contract that fails (a non-finite power, a bad date, a missing device)
                          -> logged and skipped; the others go on

Event ids are ``uuid5(contract, ven)`` (:func:`mapping.event_id_for`): a
restarted bridge re-sends the same event, which openleadr's VEN recognises and
answers with its earlier opt, and that answer does not change the contract.
openleadr's per-event callbacks are not used: every oadrCreatedEvent goes to
:class:`opts.OptResponses`. The VENs' answers to an order's events are not recorded
(an order has no ``ven_response`` yet).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from openleadr import OpenADRServer, utils

from schemas.vocabulary import CALLED_OFF_CONTRACT_STATES, LIVE_CONTRACT_STATES, LIVE_ORDER_STATES

from . import mapping
from .api_client import ApiClient, ApiError, ApiUnavailable, format_eve_date

logger = logging.getLogger("registry.openadr")

CONTRACT_FIELDS = ("device_ids", "offers", "status", "start", "end", "power_kw", "direction", "ven_response")
ORDER_FIELDS = ("device_ids", "status", "start", "end", "power_kw", "direction")


@dataclass
class SentContract:
    end: datetime
    events: dict[str, str] = field(default_factory=dict)  # ven_id -> event_id


class ContractEvents:
    """The events this VTN queued for contracts; ``resources`` maps the devices
    of VENs registered here to ``(ven_id, resource_id)``."""

    def __init__(
        self, api: ApiClient, server: OpenADRServer, resources: Mapping[str, tuple[str, str]], market_context: str
    ) -> None:
        self.api, self.server, self.resources = api, server, resources
        self.market_context = market_context
        self.sent: dict[str, SentContract] = {}
        self.closed: set[str] = set()  # contracts whose cancellation was handled here
        self.contracts: dict[str, str] = {}  # event_id -> contract id

    async def activate(self, contract: dict, device_ids: list[str] | None = None, answered: bool = True) -> list[str]:
        """Queue the contract's (or, not ``answered``, an order's) event for each VEN
        that has none yet; the new event ids."""
        contract_id = str(contract["_id"])
        record = self.sent.get(contract_id) or SentContract(mapping.parse_moment(contract["end"]))
        queued = []
        shares = None if answered else await self._order_shares(contract, device_ids)
        for ven_id, resource_ids in (await self._targets(contract, device_ids)).items():
            if ven_id in record.events:
                continue
            asked = contract if shares is None else {**contract, "power_kw": shares[ven_id]}
            event = mapping.contract_event(asked, ven_id, resource_ids, self.market_context)
            record.events[ven_id] = self.server.add_raw_event(ven_id=ven_id, event=event, callback=_answered_elsewhere)
            if answered:  # the VEN's opt lands on the contract
                self.contracts[record.events[ven_id]] = contract_id
            queued.append(record.events[ven_id])
        if queued:
            self.sent[contract_id] = record
            logger.info("contract %s: events %s queued", contract_id, queued)
        return queued

    async def cancel(self, contract_id: str) -> int:
        """Cancel the contract's events (delivered with the VENs' next poll)."""
        record = self.sent.pop(str(contract_id), None)
        self.closed.add(str(contract_id))
        for ven_id, event_id in (record.events if record else {}).items():
            self.server.cancel_event(ven_id, event_id)
        if record is None or not record.events:
            logger.warning("contract %s has no events in this VTN to cancel", contract_id)
            return 0
        logger.info("contract %s: events %s cancelled", contract_id, list(record.events.values()))
        return len(record.events)

    async def announce_cancellation(self, contract: dict, device_ids: list[str]) -> int:
        """After a restart: VENs may hold an event this process never queued."""
        self.closed.add(str(contract["_id"]))
        targets = await self._targets(contract, device_ids)
        for ven_id, resource_ids in targets.items():
            event = mapping.contract_event(contract, ven_id, resource_ids, self.market_context, cancelled=True)
            self.server.add_raw_event(ven_id=ven_id, event=event, callback=_answered_elsewhere)
        return len(targets)

    def contract_of(self, event_id: str) -> str | None:
        """The contract an event queued here stands for (None: not one of ours)."""
        return self.contracts.get(event_id)

    def forget(self, contract_id: str) -> None:
        """Drop an ended contract's events from openleadr's queues (they completed)."""
        record = self.sent.pop(contract_id, None)
        for ven_id, event_id in (record.events if record else {}).items():
            utils.pop_by(self.server.events.get(ven_id, []), "event_descriptor.event_id", event_id)
            self.server.event_callbacks.pop(event_id, None)
            self.contracts.pop(event_id, None)

    async def _order_shares(self, order: dict, device_ids: list[str] | None) -> dict[str, list[float]]:
        """ven_id -> its part of an order's power per slot: an order's ``power_kw`` is the
        whole bid's, so each VEN is asked for the share of the order's devices behind
        it (a contract's ``power_kw`` is per device and goes to every VEN as it is)."""
        devices = device_ids or order.get("device_ids") or []
        behind = Counter([(await self._locate(device_id))[0] for device_id in devices])
        return {ven: [kw * n / len(devices) for kw in order["power_kw"]] for ven, n in behind.items()}

    async def _targets(self, contract: dict, device_ids: list[str] | None) -> dict[str, list[str]]:
        """ven_id -> the resource ids of the contract's devices behind it."""
        if device_ids is None:
            device_ids = contract.get("device_ids") or await self._offer_devices(contract)
        by_ven: dict[str, list[str]] = {}
        for device_id in device_ids:
            ven_id, resource_id = await self._locate(device_id)
            by_ven.setdefault(ven_id, [])
            if resource_id:
                by_ven[ven_id].append(resource_id)
        return by_ven

    async def _locate(self, device_id: str) -> tuple[str, str | None]:
        if device_id in self.resources:
            return self.resources[device_id]
        device = await self.api.get_item("devices", device_id)
        if device is None:
            raise LookupError(f"device {device_id} of the contract does not exist")
        ven_id = device["ven_id"]
        enrolment = await self.api.find_one("vens", {"ven_id": ven_id}) or {}
        for hint in enrolment.get("resources") or []:
            if mapping.device_id_for(ven_id, hint.get("resource_id", "")) == device_id:
                return ven_id, hint["resource_id"]
        logger.warning("resource of device %s unknown; the event targets its whole VEN", device_id)
        return ven_id, None

    async def _offer_devices(self, contract: dict) -> list[str]:
        offers = [await self.api.get_item("offers", str(offer_id)) for offer_id in contract.get("offers") or []]
        return sorted({offer["device_id"] for offer in offers if offer})


async def _answered_elsewhere(ven_id: str, event_id: str, opt_type: str) -> None:
    """openleadr wants a callback per event; answers are handled by :mod:`.opts`."""


class ContractWatcher:
    """Polls ``GET /contracts`` and keeps the VENs' events in step with it."""

    def __init__(
        self, api: ApiClient, events: ContractEvents, interval: float, lead: timedelta = timedelta(hours=24)
    ) -> None:
        self.api, self.events = api, events
        self.interval, self.lead = interval, lead
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except ApiError as err:
                logger.warning("contract watcher: registry unavailable: %s", err)
            except Exception:  # the watcher must outlive one bad contract
                logger.exception("contract watcher")
            await asyncio.sleep(self.interval)

    async def poll_once(self, now: datetime | None = None) -> Counter:
        """One pass; returns counts of events queued, cancelled and forgotten."""
        now = now or datetime.now(UTC)
        counts: Counter = Counter()
        if not self.events.resources and not self.events.sent:
            return counts  # no VEN registered here: nothing to deliver
        contracts = await self.api.find_all(
            "contracts",
            {
                "status": {"$in": [*LIVE_CONTRACT_STATES, *CALLED_OFF_CONTRACT_STATES]},
                "start": {"$lte": format_eve_date(now + self.lead)},
                "end": {"$gt": format_eve_date(now)},
            },
            projection={name: 1 for name in CONTRACT_FIELDS},
        )
        window = {"start": {"$lte": format_eve_date(now + self.lead)}, "end": {"$gt": format_eve_date(now)}}
        orders = await self.api.find_all(
            "orders",
            {"status": {"$in": list(LIVE_ORDER_STATES)}, **window},
            projection={name: 1 for name in ORDER_FIELDS},
        )
        listed = {str(doc.get("_id")) for doc in [*contracts, *orders]}
        for contract in contracts:
            await self._isolated(self._follow(contract, counts), contract.get("_id"), counts)
        for order in orders:
            here = [d for d in order.get("device_ids") or [] if d in self.events.resources]
            if here:
                await self._isolated(self._queue(order, here, counts), order.get("_id"), counts)
        for contract_id in set(self.events.sent) - listed:
            await self._isolated(self._recheck(contract_id, now, counts), contract_id, counts)
        self.events.closed &= listed
        return counts

    @staticmethod
    async def _isolated(step: Awaitable[None], contract_id: object, counts: Counter) -> None:
        """One contract's trouble (a value no event can carry, a vanished device) is
        logged and skipped: the other contracts' VENs still get their events."""
        try:
            await step
        except ApiUnavailable:
            raise  # the registry is down for every contract: the next poll retries
        except Exception as err:
            counts["skipped"] += 1
            logger.warning("contract watcher: contract %s skipped: %s: %s", contract_id, err.__class__.__name__, err)

    async def _follow(self, contract: dict, counts: Counter) -> None:
        contract_id = str(contract["_id"])
        here = [d for d in contract.get("device_ids") or [] if d in self.events.resources]
        if contract["status"] in LIVE_CONTRACT_STATES:
            if here:
                counts["queued"] += len(await self.events.activate(contract, here))
        elif contract_id in self.events.sent:
            counts["cancelled"] += await self.events.cancel(contract_id)
        elif here and contract.get("ven_response") and contract_id not in self.events.closed:
            counts["cancelled"] += await self.events.announce_cancellation(contract, here)

    async def _queue(self, order: dict, here: list[str], counts: Counter) -> None:
        counts["queued"] += len(await self.events.activate(order, here, answered=False))

    async def _recheck(self, contract_id: str, now: datetime, counts: Counter) -> None:
        """A contract with events here that the query no longer lists."""
        if self.events.sent[contract_id].end <= now:
            self.events.forget(contract_id)
            counts["forgotten"] += 1
            return
        contract = await self.api.get_item("contracts", contract_id) or await self.api.get_item("orders", contract_id)
        if contract is None or contract.get("status") in CALLED_OFF_CONTRACT_STATES:
            counts["cancelled"] += await self.events.cancel(contract_id)
