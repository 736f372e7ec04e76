"""The VENs' answers to events (oadrCreatedEvent): checked, then recorded on the contract.

openleadr records only the first answer to an event (it drops the callback),
and a response from a VEN that holds no event makes it fail. Here every
response is checked first — the event must have been sent to this VEN (else
452) at the modification number answered (else 450) — and then each answer
that changes the VEN's opt is recorded on the contract through the REST API
(``PATCH /contracts/<_id> ven_response`` with If-Match), with its time in
``ven_response.history``; the latest answer of each VEN wins
(:func:`mapping.answer_with`). A VEN repeating its answer changes nothing. A
VEN confirming a cancelled event takes it off the VTN's queue.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from openleadr import OpenADRServer, enums, utils

from . import mapping
from .answers import INVALID_ID, OUT_OF_SEQUENCE, Declined
from .api_client import ApiClient, ApiError
from .contracts import ContractEvents

logger = logging.getLogger("registry.openadr")

CONTRACT_MOVED_ON = frozenset({403, 404, 409, 422})  # cancelled, settled, gone: nothing to record
ANSWERS_KEPT = 10_000  # event ids whose latest answer this process remembers


class OptResponses:
    """``created_event(payload)``: the handler of oadrCreatedEvent."""

    def __init__(self, api: ApiClient, server: OpenADRServer, contract_events: ContractEvents) -> None:
        self.api, self.server, self.contract_events = api, server, contract_events
        self.answered: dict[str, str] = {}  # event_id -> the latest opt received here

    async def created_event(self, payload: dict) -> tuple[str, dict]:
        ven_id = payload["ven_id"]
        answers = [self._checked(ven_id, response) for response in payload.get("event_responses") or []]
        notes = []
        for event, event_id, opt in answers:
            if event is None:
                continue  # a completed event: nothing left to do
            if utils.getmember(event, "event_descriptor.event_status") == enums.EVENT_STATUS.CANCELLED:
                utils.pop_by(self.server.events.get(ven_id, []), "event_descriptor.event_id", event_id)
                continue
            self.answered.pop(event_id, None)
            self.answered[event_id] = opt  # newest last
            while len(self.answered) > ANSWERS_KEPT:
                self.answered.pop(next(iter(self.answered)))
            contract_id = self.contract_events.contract_of(event_id)
            if contract_id is not None:
                note = await self.record(contract_id, ven_id, event_id, opt)
                notes += [note] if note else []
        description = "OK" + (f"; {'; '.join(notes)}" if notes else "")
        return "oadrResponse", {"response": {"response_code": 200, "response_description": description}}

    def _checked(self, ven_id: str, response: dict) -> tuple[Any, str, str]:
        event_id, opt = response.get("event_id"), response.get("opt_type")
        event = utils.find_by(self.server.events.get(ven_id, []), "event_descriptor.event_id", event_id)
        if event is None:
            if event_id in self.server.services["event_service"].completed_event_ids.get(ven_id, []):
                return None, event_id, opt
            raise Declined(INVALID_ID, f"event {event_id} was not sent to this VEN")
        current = utils.getmember(event, "event_descriptor.modification_number")
        if response.get("modification_number") != current:
            raise Declined(
                OUT_OF_SEQUENCE,
                f"event {event_id} is at modificationNumber {current}, "
                f"not {response.get('modification_number')}: answer "
                "the event as last distributed",
            )
        return event, event_id, opt

    async def record(self, contract_id: str, ven_id: str, event_id: str, opt: str) -> str | None:
        """Record the answer on the contract (re-read on a stale ETag); a note when it was not."""
        for _ in range(3):
            contract = await self.api.get_item("contracts", contract_id)
            if contract is None:
                return f"contract {contract_id} is gone: answer not recorded"
            answer = mapping.answer_with(contract.get("ven_response"), ven_id, event_id, opt, datetime.now(UTC))
            if answer is None:
                return None  # the VEN repeated its answer
            status, body = await self.api.request(
                "PATCH",
                f"/contracts/{contract_id}",
                headers={"If-Match": contract["_etag"]},
                json_body={"ven_response": answer},
            )
            if status == 200:
                logger.info("VEN %s answered %s to contract %s", ven_id, opt, contract_id)
                return None
            if status in CONTRACT_MOVED_ON:
                logger.warning(
                    "%s of VEN %s not recorded on contract %s: %s %s", opt, ven_id, contract_id, status, body
                )
                return f"not recorded on contract {contract_id} (it is {contract.get('status')})"
            if status != 412:
                raise ApiError(status, body, "PATCH", f"/contracts/{contract_id}")
        raise ApiError(412, "the contract kept changing", "PATCH", f"/contracts/{contract_id}")
