"""Who is talking to the VTN: the VEN's proof on every message, and its session.

A VEN proves who it is on every message:

* over TLS (mutual, ``OPENADR_HTTP_*``): its client certificate, whose
  fingerprint must be the one pinned on its enrolment;
* over plain HTTP: only from this machine (loopback), with HTTP Basic
  ``<ven_name>:<secret>``, the secret issued once at enrolment
  (:mod:`.enrolment`; openleadr's client sends it when the VTN URL carries it,
  ``http://box-1:SECRET@127.0.0.1:8080/OpenADR2/Simple/2.0b``).

A failed proof is a transport answer (401 / 403): nothing in such a message
can be trusted. A proven VEN whose message names the wrong VEN is answered in
OpenADR terms (:class:`answers.Declined`): 452 for an oadrVenName or venID
that is not its own (or is missing), 463 once its enrolment is cancelled or
deleted. The enrolment is read again when the session's copy is older than
``recheck_after`` seconds (0 by default: every message), so a cancellation
stops the VEN at its next message. What else a message refers to (report
requests, events, registrationID) is checked by the handler that owns it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from openleadr import utils

from . import enrolment as enrolment_secrets
from .answers import INVALID_ID, NOT_REGISTERED, Declined
from .api_client import ApiClient, ApiError
from .inbound import Refusal, registry_unavailable

logger = logging.getLogger("registry.openadr")

REGISTERING = frozenset({"oadrCreatePartyRegistration", "oadrQueryRegistration"})
REALM = {"WWW-Authenticate": 'Basic realm="OpenADR VTN", charset="UTF-8"'}


@dataclass
class VenSession:
    """A VEN registered with this VTN process (lost on restart, by design)."""

    ven_id: str
    ven_name: str
    registration_id: str
    enrolment: dict  # as last read from the registry
    devices: dict[str, str | None] = field(default_factory=dict)  # resource -> device id (None: not bridged)
    checked_at: float = field(default_factory=time.monotonic)  # when the enrolment was read


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
        raise Refusal(401, "over plain HTTP a VEN authenticates with HTTP Basic <ven_name>:<enrolment secret>", REALM)
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
    """``admit(request, message_type, payload)`` for :func:`inbound.serve`."""

    def __init__(
        self, api: ApiClient, sessions: MutableMapping[str, VenSession], *, recheck_after: float = 0.0
    ) -> None:
        self.api, self.sessions = api, sessions
        self.recheck_after = recheck_after  # seconds a session trusts its copy of the enrolment

    async def admit(self, request: web.Request, message_type: str, payload: dict) -> Caller:
        if not request.secure and not is_loopback(request.remote):
            raise Refusal(
                403, "plain HTTP is accepted from this machine only; remote VENs use mutual TLS (docs/openadr.md)"
            )
        try:
            if message_type in REGISTERING:
                caller = Caller(await self._registering(request, message_type, payload))
            else:
                caller = Caller(await self._registered(request, message_type, payload))
        except ApiError as err:
            logger.warning("VTN cannot check a VEN: %s", err)
            raise registry_unavailable() from None
        _CALLER.set(caller)
        return caller

    # -- proof --------------------------------------------------------------

    async def _registering(self, request: web.Request, message_type: str, payload: dict) -> dict | None:
        claimed = payload.get("ven_name")
        if request.secure:
            if message_type == "oadrQueryRegistration":
                return None  # the certificate chains to our CA; it learns the VTN's profile
            enrolment = await self._named(claimed, payload)
            self._check_certificate(request, enrolment, claimed)
        else:
            name, secret = basic_credentials(request)
            enrolment = await self.api.find_ven(name)
            self._check_secret(enrolment, name, secret)
            if message_type == "oadrCreatePartyRegistration" and claimed != name:
                raise Declined(
                    INVALID_ID,
                    f"authenticated as VEN {name!r}, but oadrVenName is {claimed!r}: send the enrolled name"
                    if claimed
                    else "oadrVenName is missing: send the name the VEN was enrolled with",
                )
        if payload.get("ven_id") and payload["ven_id"] != enrolment.get("ven_id"):
            raise Declined(INVALID_ID, f"venID {payload['ven_id']} is not this VEN's")
        return enrolment

    async def _named(self, claimed: str | None, payload: dict) -> dict:
        """Over TLS: the enrolment the registration names (its certificate is checked next)."""
        if not claimed:
            raise Declined(INVALID_ID, "oadrVenName is missing: send the name the VEN was enrolled with")
        enrolment = await self.api.find_ven(claimed)
        if enrolment is None:
            raise Declined(INVALID_ID, f"no VEN named {claimed!r} is enrolled")
        return enrolment

    async def _registered(self, request: web.Request, message_type: str, payload: dict) -> dict:
        ven_id = payload.get("ven_id") or self._implied_ven_id(message_type, payload)
        if not ven_id:
            raise Declined(INVALID_ID, f"{message_type} must carry the venID this VTN issued at registration")
        session = self.sessions.get(ven_id)
        name, secret = (None, None) if request.secure else basic_credentials(request)
        own = session is not None and (request.secure or session.ven_name == name)
        fresh = not own or time.monotonic() - session.checked_at >= self.recheck_after
        enrolment = await self._enrolment(ven_id, name, session if own else None) if fresh else session.enrolment
        if request.secure:
            self._check_certificate(request, enrolment, ven_id)
        else:
            self._check_secret(enrolment, name, secret)
        if enrolment.get("ven_id") != ven_id:
            raise Declined(INVALID_ID, f"venID {ven_id} is not this VEN's")
        if enrolment.get("registration_status") == "cancelled":
            self.sessions.pop(ven_id, None)
            raise Declined(NOT_REGISTERED, "this VEN's enrolment is cancelled: it may not register or send anything")
        if own and fresh:
            session.enrolment, session.checked_at = enrolment, time.monotonic()
        return enrolment

    async def _enrolment(self, ven_id: str, name: str | None, session: VenSession | None) -> dict | None:
        """The enrolment as the registry has it now (by venID over TLS, else by name).

        For a registered VEN it is asked once, without retries: while the registry
        cannot answer, the session's copy stands in, so telemetry keeps flowing into
        the buffer. A deleted enrolment ends the session (its proof then fails).
        """
        if session is None:
            return await (
                self.api.find_ven(name) if name is not None else self.api.find_one("vens", {"ven_id": ven_id})
            )
        try:
            enrolment = await (
                self.api.find_ven(name, retry_for=0)
                if name is not None
                else self.api.find_one("vens", {"ven_id": ven_id}, retry_for=0)
            )
        except ApiError as err:
            logger.warning("VEN %s: enrolment not re-read (%s); its last copy is used", ven_id, err)
            return session.enrolment
        if enrolment is None and self.sessions.pop(ven_id, None) is not None:
            logger.warning("VEN %s: its enrolment is gone; session ended", ven_id)
        return enrolment

    def _implied_ven_id(self, message_type: str, payload: dict) -> str | None:
        """oadrCancelPartyRegistration may leave venID out: the registration's VEN."""
        if message_type != "oadrCancelPartyRegistration":
            return None
        registration_id = payload.get("registration_id")
        for session in self.sessions.values():
            if session.registration_id == registration_id:
                payload["ven_id"] = session.ven_id
                return session.ven_id
        raise Declined(INVALID_ID, f"registrationID {registration_id} is not open at this VTN")

    @staticmethod
    def _check_secret(enrolment: dict | None, name: str, secret: str) -> None:
        if enrolment is None or not enrolment_secrets.secret_matches(secret, enrolment.get("secret_hash")):
            raise Refusal(401, f"unknown VEN {name!r} or wrong enrolment secret", REALM)

    @staticmethod
    def _check_certificate(request: web.Request, enrolment: dict | None, claimed: Any) -> None:
        presented = utils.get_cert_fingerprint_from_request(request)
        if presented is None:
            raise Refusal(401, "a client certificate is required")
        if enrolment is None or enrolment.get("fingerprint") != presented:
            raise Refusal(403, f"certificate {presented} is not the one enrolled for {claimed!r}")
