"""What the VTN answers to a 2.0b message it has admitted: every reply is built here.

openleadr's own ``VTNService.handler`` answers a refused registration with
responseCode 200 and an empty venID, overwrites the codes its handlers set,
and writes the text ``None`` where a requestID or venID is missing. So the
VTN dispatches itself (``respond``) and uses openleadr only to render::

    oadrResponse from a VEN          -> empty 200 (an acknowledgement)
    a vtnID that is not ours         -> 452
    not a registration, venID given,
      no session here                -> oadrRequestReregistration
    over TLS with message signing    -> openleadr checks the signature (463)
    the handler of this service      -> its reply; Declined(code, why) -> the
                                        reply type of the request, that code

Every reply carries an eiResponse whose requestID is the request's own (empty
for oadrPoll, which has none), the request's venID or the VEN's, and text
escaped for XML (openleadr's templates do not escape).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from openleadr import errors, utils
from openleadr.messaging import authenticate_message
from openleadr.service import VTNService

logger = logging.getLogger("registry.openadr")

Handler = Callable[[dict], Awaitable[tuple[str, dict] | None]]

# the profile's eiResponse codes (openleadr.enums.STATUS_CODES)
OUT_OF_SEQUENCE, NOT_ALLOWED, INVALID_ID, INVALID_DATA = 450, 451, 452, 454
COMPLIANCE_ERROR, REPORT_NOT_SUPPORTED, NOT_REGISTERED, OTHER_ERROR = 459, 461, 463, 469

REPLY_TYPES = {
    "oadrQueryRegistration": "oadrCreatedPartyRegistration",
    "oadrCreatePartyRegistration": "oadrCreatedPartyRegistration",
    "oadrCancelPartyRegistration": "oadrCanceledPartyRegistration",
    "oadrRegisterReport": "oadrRegisteredReport",
    "oadrUpdateReport": "oadrUpdatedReport",
    "oadrRequestEvent": "oadrDistributeEvent",
}  # anything else is answered with oadrResponse
REGISTRATION_MESSAGES = frozenset(
    {"oadrQueryRegistration", "oadrCreatePartyRegistration", "oadrCancelPartyRegistration"}
)
PROFILES = [{"profile_name": "2.0b", "transports": [{"transport_name": "simpleHttp"}]}]
XML_CONTENT = "application/xml"


class Declined(Exception):
    """A message the VTN answers in OpenADR terms: ``code`` (4xx of the profile) and why."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def text(value: Any) -> str:
    """A value as XML character data ('' for None): openleadr's templates do not escape."""
    return "" if value is None else escape(str(value))


def xml_response(message: str) -> web.Response:
    return web.Response(text=message, status=200, content_type=XML_CONTENT)


class Responder:
    """Answers admitted messages for one ``OpenADRServer``.

    ``handlers`` are the bridge's, by message type; other types go to the
    openleadr service the message was posted to (queries, polls, events).
    ``lookup_ven(ven_id)`` is None for a VEN that has no session here.
    """

    def __init__(
        self,
        server: Any,
        handlers: Mapping[str, Handler],
        lookup_ven: Callable[[str], dict | None],
        poll_freq: timedelta,
    ) -> None:
        self.server, self.handlers, self.lookup_ven = server, handlers, lookup_ven
        self.poll_freq = poll_freq
        self.vtn_id = server.services["registration_service"].vtn_id

    async def respond(
        self, request: web.Request, service: Any, message_type: str, payload: dict, root: Any
    ) -> web.Response:
        if message_type == "oadrResponse":
            return xml_response("")
        if payload.get("vtn_id") not in (None, self.vtn_id):
            raise Declined(INVALID_ID, f"vtnID {payload['vtn_id']} is not this VTN's ({self.vtn_id})")
        if message_type not in service.handlers:
            raise Declined(COMPLIANCE_ERROR, f"{message_type} is not served at {service.__service_name__}")
        ven_id = payload.get("ven_id")
        if message_type not in REGISTRATION_MESSAGES and ven_id and self.lookup_ven(ven_id) is None:
            return xml_response(self.render("oadrRequestReregistration", {"ven_id": text(ven_id)}))
        if request.secure and ven_id:
            await self._authenticate(request, root, payload)
        handler = self.handlers.get(message_type) or service.handlers[message_type]
        reply_type, reply = await handler(payload) or ("oadrResponse", {})
        return xml_response(self.render(reply_type, self.completed(reply_type, reply, payload)))

    def declined(self, message_type: str, payload: dict, declined: Declined) -> web.Response:
        """The reply type the request expects, with the code and description."""
        reply_type = REPLY_TYPES.get(message_type, "oadrResponse")
        reply = {"response": {"response_code": declined.code, "response_description": declined.description}}
        if reply_type == "oadrCreatedPartyRegistration":
            reply["ven_id"] = None  # not registered: no venID, no registrationID
        return xml_response(self.render(reply_type, self.completed(reply_type, reply, payload)))

    def completed(self, reply_type: str, reply: dict, payload: dict) -> dict:
        """The reply with everything its template writes: no ``None`` left in an id."""
        response = reply.get("response") or {}
        reply = {
            **reply,
            "vtn_id": text(self.vtn_id),
            "response": {
                "response_code": response.get("response_code", 200),
                "response_description": text(response.get("response_description", "OK")),
                "request_id": text(payload.get("request_id")),
            },
        }
        reply.setdefault("request_id", utils.generate_id())  # a distributed event's own id
        if "ven_id" not in reply:
            reply["ven_id"] = payload.get("ven_id")
        if reply_type in ("oadrResponse", "oadrCanceledPartyRegistration"):
            reply["ven_id"] = text(reply["ven_id"])  # their templates write it whatever it is
            reply.setdefault("registration_id", text(payload.get("registration_id")))
        elif reply["ven_id"] is not None:
            reply["ven_id"] = text(reply["ven_id"])
        if reply_type == "oadrCreatedPartyRegistration":
            reply.setdefault("profiles", PROFILES)
            reply.setdefault("requested_oadr_poll_freq", self.poll_freq)
        elif reply_type == "oadrRegisteredReport":
            reply.setdefault("report_requests", [])
        elif reply_type == "oadrDistributeEvent":
            reply.setdefault("events", [])
        return reply

    @staticmethod
    def render(reply_type: str, reply: dict) -> str:
        """openleadr's template, signed when the VTN signs (VTNService._create_message)."""
        return VTNService._create_message(reply_type, **reply)

    async def _authenticate(self, request: web.Request, root: Any, payload: dict) -> None:
        """openleadr's check of a signed message over TLS (fingerprint and XML signature)."""
        try:
            await authenticate_message(
                request,
                root,
                payload,
                ven_lookup=self.lookup_ven,
                verify_message_signature=VTNService.verify_message_signatures,
            )
        except errors.ProtocolError as err:
            raise Declined(err.response_code, err.response_description) from None
