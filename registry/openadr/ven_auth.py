"""Who is talking to the VTN, and what it may say.

A VEN proves who it is on every message:

* over TLS (mutual, ``OPENADR_HTTP_*``): its client certificate, whose
  fingerprint must be the one pinned on its enrolment;
* over plain HTTP: only from this machine (loopback), with HTTP Basic
  ``<ven_name>:<secret>``, the secret issued once at enrolment
  (:mod:`.enrolment`; openleadr's client sends it when the VTN URL carries it,
  ``http://box-1:SECRET@127.0.0.1:8080/OpenADR2/Simple/2.0b``).

And may then speak only for itself: every message after registration names
the venID of the enrolment that authenticated it, and an oadrUpdateReport,
oadrCreatedEvent or oadrCancelPartyRegistration may only refer to that VEN's
own report requests, events and registration. Anything else is refused before
openleadr runs a handler, so nothing is stored.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, MutableMapping

from aiohttp import web
from openleadr import utils

from . import enrolment as enrolment_secrets
from .api_client import ApiClient, ApiError
from .inbound import Refusal

logger = logging.getLogger("registry.openadr")

REGISTRATION_MESSAGES = frozenset({"oadrCreatePartyRegistration", "oadrQueryRegistration"})
REALM = {"WWW-Authenticate": 'Basic realm="OpenADR VTN", charset="UTF-8"'}


@dataclass(frozen=True)
class Caller:
    """The enrolment a message was authenticated as (None: a TLS query before registering)."""

    enrolment: dict | None


_CALLER: ContextVar[Caller | None] = ContextVar("vtn_caller", default=None)


def current_caller() -> Caller | None:
    """The caller the guard admitted for the message being handled."""
    return _CALLER.get()


def basic_credentials(request: web.Request) -> tuple[str, str]:
    """``(ven_name, secret)`` from HTTP Basic; the secret has no ``:``, the name may."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Refusal(401, "over plain HTTP a VEN authenticates with HTTP Basic "
                           "<ven_name>:<enrolment secret>", REALM)
    try:
        name, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().rpartition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refusal(401, "malformed HTTP Basic credentials", REALM) from None
    if not name or not secret:
        raise Refusal(401, "malformed HTTP Basic credentials", REALM)
    return name, secret


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1, and ::ffff:127.x.y.z (IPv4 clients of a dual-stack listener)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback


class VenGate:
    """``admit(request, message_type, payload)`` for :func:`inbound.guard`."""

    def __init__(self, api: ApiClient, server: Any, sessions: MutableMapping[str, Any], *,
                 recheck_after: float = 60.0) -> None:
        self.api, self.server, self.sessions = api, server, sessions
        self.recheck_after = recheck_after  # seconds a session trusts its copy of the enrolment

    async def admit(self, request: web.Request, message_type: str, payload: dict) -> Caller:
        if not request.secure and not is_loopback(request.remote):
            raise Refusal(403, "plain HTTP is accepted from this machine only; "
                               "remote VENs use mutual TLS (docs/openadr.md)")
        try:
            if message_type in REGISTRATION_MESSAGES:
                caller = Caller(await self._registering(request, message_type, payload))
            else:
                caller = Caller(await self._registered(request, message_type, payload))
        except ApiError as err:
            logger.warning("VTN cannot check a VEN: %s", err)
            raise Refusal(503, "the registry is unavailable; retry later",
                          {"Retry-After": "10"}) from None
        _CALLER.set(caller)
        return caller

    # -- proof --------------------------------------------------------------

    async def _registering(self, request: web.Request, message_type: str,
                           payload: dict) -> dict | None:
        claimed = payload.get("ven_name")
        if request.secure:
            if message_type == "oadrQueryRegistration":
                return None  # the certificate chains to our CA; it learns the VTN's profile
            enrolment = await self.api.find_ven(claimed) if claimed else None
            self._check_certificate(request, enrolment, claimed)
        else:
            name, secret = basic_credentials(request)
            enrolment = await self.api.find_ven(name)
            self._check_secret(enrolment, name, secret)
            if message_type == "oadrCreatePartyRegistration" and claimed != name:
                raise Refusal(403, f"authenticated as VEN {name!r}, not {claimed!r}")
        if payload.get("ven_id") and payload["ven_id"] != enrolment.get("ven_id"):
            raise Refusal(403, f"venID {payload['ven_id']} is not this VEN's")
        return enrolment

    async def _registered(self, request: web.Request, message_type: str, payload: dict) -> dict:
        ven_id = payload.get("ven_id")
        if not ven_id:
            raise Refusal(403, f"{message_type} must carry the sender's venID")
        session = await self._current_session(ven_id)
        if request.secure:
            enrolment = (session.enrolment if session is not None
                         else await self.api.find_one("vens", {"ven_id": ven_id}))
            self._check_certificate(request, enrolment, ven_id)
        else:
            name, secret = basic_credentials(request)
            enrolment = (session.enrolment if session is not None and session.ven_name == name
                         else await self.api.find_ven(name))
            self._check_secret(enrolment, name, secret)
        if enrolment.get("ven_id") != ven_id:
            raise Refusal(403, f"venID {ven_id} is not this VEN's")
        if session is not None:  # no session: openleadr asks the VEN to re-register
            self._check_references(session, message_type, payload)
        return enrolment

    async def _current_session(self, ven_id: str) -> Any:
        """The VEN's session, its enrolment re-read now and then: a cancelled or deleted
        enrolment (or a new fingerprint) takes effect within ``recheck_after`` seconds."""
        session = self.sessions.get(ven_id)
        if session is None or time.monotonic() - session.checked_at < self.recheck_after:
            return session
        enrolment = await self.api.find_one("vens", {"ven_id": ven_id})
        if enrolment is None or enrolment.get("registration_status") == "cancelled":
            self.sessions.pop(ven_id, None)
            raise Refusal(403, "this VEN's enrolment is cancelled or gone")
        session.enrolment, session.checked_at = enrolment, time.monotonic()
        return session

    @staticmethod
    def _check_secret(enrolment: dict | None, name: str, secret: str) -> None:
        if enrolment is None or not enrolment_secrets.secret_matches(
                secret, enrolment.get("secret_hash")):
            raise Refusal(401, f"unknown VEN {name!r} or wrong enrolment secret", REALM)

    @staticmethod
    def _check_certificate(request: web.Request, enrolment: dict | None, claimed: str | None) -> None:
        presented = utils.get_cert_fingerprint_from_request(request)
        if presented is None:
            raise Refusal(401, "a client certificate is required")
        if enrolment is None or enrolment.get("fingerprint") != presented:
            raise Refusal(403, f"certificate {presented} is not the one enrolled for {claimed!r}")

    # -- what it may refer to -------------------------------------------------

    def _check_references(self, session: Any, message_type: str, payload: dict) -> None:
        if message_type == "oadrUpdateReport":
            requested = {request.report_request_id for request in
                         self.server.services["report_service"].requested_reports.get(session.ven_id, [])}
            for report in payload.get("reports") or []:
                if report.get("report_request_id") not in requested:
                    raise Refusal(403, f"reportRequestID {report.get('report_request_id')} "
                                       "was not requested from this VEN")
        elif message_type == "oadrCreatedEvent":
            own = {utils.getmember(event, "event_descriptor.event_id")
                   for event in self.server.events.get(session.ven_id, [])}
            own |= set(self.server.services["event_service"].completed_event_ids.get(session.ven_id, []))
            for response in payload.get("event_responses") or []:
                if response.get("event_id") not in own:
                    raise Refusal(403, f"event {response.get('event_id')} was not sent to this VEN")
        elif message_type == "oadrCancelPartyRegistration":
            if payload.get("registration_id") != session.registration_id:
                raise Refusal(403, "registrationID is not this VEN's")
