"""The OpenADR 2.0b VTN that bridges field gateways (VENs) to the registry's REST API.

Every write goes through :class:`ApiClient` with a service token, so the
registry's validation, access rules and job hooks apply to bridged data too::

    VEN (openleadr client)            VTN bridge (this module)            registry REST API
    ──────────────────────            ────────────────────────            ─────────────────
    any message ────────────────────▶ inbound.guard: Content-Type, size, hardened XML parse,
                                      no DOCTYPE, XSD; ven_auth.VenGate: who is it (TLS
                                      fingerprint, or loopback + Basic ven_name:secret) and
                                      may it say this (its venID, reports, events) ──▶ GET /vens
    oadrCreatePartyRegistration ────▶ on_create_party_registration
                                      cancelled or no ven_id: refuse (False)
                               ◀──── venID (issued at enrolment), ◀──── PATCH /vens/<_id> registered
                                     registrationID
    oadrRegisterReport ─────────────▶ on_register_report (per resource) ─▶ GET /devices/<uuid5(ven/resource)>
                                                                          POST /devices | PATCH owned fields
                               ◀──── oadrRegisteredReport (RealPower requested every sampling interval)
    oadrUpdateReport ───────────────▶ telemetry callback ─▶ MeasurementBuffer ─▶ POST /measurements [bulk]
                                                            (kept and re-sent while the API is down)
    contract watcher (every few s) ────────────────────────────────────▶ GET /contracts?where={accepted…}
                                      event queued per VEN (targets: its resources)
    oadrPoll ───────────────────────▶ ◀──── oadrDistributeEvent (SIMPLE level / LOAD_DISPATCH kW delta)
    oadrCreatedEvent optIn|optOut ──▶ opt callback ─────────────────────▶ PATCH /contracts/<_id> ven_response
    contract watcher ──────────────────────────────────────────────────▶ GET /contracts?where={cancelled…}
                                      event status "cancelled", the next poll delivers it

The VTN keeps registrations in memory only: after a bridge restart, a VEN's
next message is answered with oadrRequestReregistration (openleadr's
``ven_lookup`` mechanism), which re-runs the sequence above.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Iterator

from openleadr import OpenADRServer

from . import inbound, mapping, ven_auth
from .api_client import ApiClient, ApiError, ForeignDevice, format_eve_date
from .contracts import ContractEvents, ContractWatcher
from .telemetry import MeasurementBuffer

logger = logging.getLogger("registry.openadr")

DEFAULT_PATH = "/OpenADR2/Simple/2.0b"


@dataclass
class VenSession:
    """A VEN registered with this VTN process (lost on restart, by design)."""

    ven_id: str
    ven_name: str
    registration_id: str
    enrolment: dict  # as last read from the registry (ven_auth re-reads it now and then)
    devices: dict[str, asyncio.Task] = field(default_factory=dict)  # resource -> device id or None
    checked_at: float = field(default_factory=time.monotonic)  # when the enrolment was read


class OpenADRBridge:
    """An ``OpenADRServer`` whose handlers read and write the registry over REST."""

    def __init__(self, api: ApiClient, server: OpenADRServer, *, sampling_interval: timedelta,
                 market_context: str = "oadr://der-registry/flexibility",
                 buffer: MeasurementBuffer | None = None, watch_interval: float | None = 5.0,
                 contract_lead: timedelta = timedelta(hours=24)) -> None:
        self.api, self.server = api, server
        self.sampling_interval = sampling_interval
        self.buffer = buffer or MeasurementBuffer(api)
        self.sessions: dict[str, VenSession] = {}
        self.resources: dict[str, tuple[str, str]] = {}  # device_id -> (ven_id, resource_id)
        self.contract_events = ContractEvents(api, server, self.resources, market_context)
        # None: no polling; contracts reach VENs only through activate_contract
        self.watcher = (ContractWatcher(api, self.contract_events, watch_interval, contract_lead)
                        if watch_interval else None)
        self.gate = ven_auth.VenGate(api, server, self.sessions)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        for name in ("on_create_party_registration", "on_cancel_party_registration",
                     "on_register_report"):
            server.add_handler(name, getattr(self, name))
        inbound.install(server, self.gate.admit)

    @property
    def url(self) -> str:
        scheme = "https" if self.server.ssl_context else "http"
        return f"{scheme}://{self.server.http_host}:{self.server.http_port}{self.server.http_path_prefix}"

    # -- registration ---------------------------------------------------------

    async def on_create_party_registration(self, payload: dict) -> tuple[str, str] | bool:
        """Register the enrolment the guard authenticated (the VEN's proof is in ven_auth)."""
        caller = ven_auth.current_caller()
        enrolment = caller.enrolment if caller is not None else None
        if enrolment is None or enrolment.get("registration_status") == "cancelled":
            logger.warning("refused OpenADR registration of VEN %r: not enrolled",
                           payload.get("ven_name"))
            return False
        ven_name, ven_id = enrolment["ven_name"], enrolment.get("ven_id")
        if not ven_id:  # enrolled before the registry issued ven_ids
            logger.warning("refused VEN %r: its enrolment has no ven_id; enrol it again", ven_name)
            return False
        with _registry_errors_noted():
            await self.api.patch_item("vens", enrolment["_id"], {
                "registration_status": "registered",
                "registered_at": format_eve_date(datetime.now(timezone.utc))}, enrolment.get("_etag"))
        session = VenSession(ven_id, ven_name, str(uuid.uuid4()), enrolment)
        self.sessions[ven_id] = session
        logger.info("VEN %r registered as %s", ven_name, ven_id)
        return ven_id, session.registration_id

    async def on_cancel_party_registration(self, payload: dict) -> tuple[str, dict]:
        session = self.sessions.pop(payload.get("ven_id"), None)
        if session is not None:
            with _registry_errors_noted():
                await self.api.patch_item("vens", session.enrolment["_id"],
                                          {"registration_status": "enrolled"})
        return "oadrCanceledPartyRegistration", {"registration_id": payload.get("registration_id")}

    def lookup_ven(self, ven_id: str) -> dict | None:
        """openleadr's ``ven_lookup``: None makes the VTN request re-registration."""
        session = self.sessions.get(ven_id)
        if session is None:
            return None
        return {"ven_id": session.ven_id, "ven_name": session.ven_name,
                "registration_id": session.registration_id,
                "fingerprint": session.enrolment.get("fingerprint")}

    # -- reports -> devices and measurements ----------------------------------

    async def on_register_report(self, ven_id: str, resource_id: str, measurement: str,
                                 unit: str | None, scale: str | None,
                                 min_sampling_interval: timedelta | None,
                                 max_sampling_interval: timedelta | None) -> tuple | None:
        session = self.sessions.get(ven_id)
        if session is None or not resource_id:
            return None
        try:
            with _registry_errors_noted():
                device_id = await self._ensure_device(session, resource_id)
        except Exception:
            # Forget the session: the VEN's next poll is answered with a request
            # to re-register, which retries the device registration.
            self.sessions.pop(ven_id, None)
            raise
        if device_id is None:
            return None
        factor = mapping.kilowatt_factor(unit, scale)
        if measurement not in mapping.POWER_DESCRIPTIONS or factor is None:
            return None  # the registry stores power; other readings are not requested
        interval = mapping.clamp_interval(self.sampling_interval, min_sampling_interval,
                                          max_sampling_interval)
        return partial(self.on_power_readings, device_id, factor), interval

    def _ensure_device(self, session: VenSession, resource_id: str) -> asyncio.Task:
        """One create-or-update per resource, shared by its measurements."""
        if resource_id not in session.devices:
            session.devices[resource_id] = asyncio.ensure_future(
                self._upsert_device(session, resource_id))
        return session.devices[resource_id]

    async def _upsert_device(self, session: VenSession, resource_id: str) -> str | None:
        document, owned = mapping.device_document(session.enrolment, session.ven_id, resource_id)
        try:
            outcome = await self.api.upsert_device(document, owned)
        except ForeignDevice as err:  # a VEN only ever writes to its own devices
            logger.warning("VEN %s resource %r not bridged: %s", session.ven_name, resource_id, err)
            return None
        self.resources[document["device_id"]] = (session.ven_id, resource_id)
        logger.info("device %s %s for VEN %s resource %r", document["device_id"], outcome,
                    session.ven_name, resource_id)
        return document["device_id"]

    def on_power_readings(self, device_id: str, factor: float,
                          readings: list[tuple[datetime, float]]) -> None:
        documents, refused = mapping.power_measurements(device_id, readings, factor)
        if refused:
            logger.warning("dropped %d reading(s) for device %s: not a finite power within "
                           "±%g kW at a timestamp: %r", len(refused), device_id,
                           mapping.MAX_POWER_KW, refused[:5])
        self.buffer.add(documents)

    # -- contracts -> events (registry/openadr/contracts.py) -------------------

    def activate_contract(self, contract: dict) -> concurrent.futures.Future:
        """Thread-safe, non-blocking: queue the contract's events now (the
        watcher does the same on its next poll); the future gives the event ids."""
        return self._submit(self.contract_events.activate(contract))

    def cancel_contract(self, contract_id: str) -> concurrent.futures.Future:
        """Thread-safe, non-blocking: cancel the contract's events; the future
        gives how many were cancelled."""
        return self._submit(self.contract_events.cancel(contract_id))

    def _submit(self, coroutine: Any) -> concurrent.futures.Future:
        if self.loop is None:
            coroutine.close()
            raise RuntimeError("the OpenADR bridge is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.api.open()
        self.buffer.start()
        await self.server.run()
        if self.watcher is not None:
            self.watcher.start()

    async def aclose(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        await self.server.stop()
        await self.buffer.stop()
        await self.api.close()

    def start_in_thread(self, timeout: float = 10.0) -> "OpenADRBridge":
        """Run the VTN in a daemon thread with its own event loop (embedded serve)."""
        ready: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as err:  # report a bind error to the caller
                ready.set_exception(err)
                loop.close()
                return
            ready.set_result(True)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="openadr-vtn", daemon=True)
        self._thread.start()
        ready.result(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a bridge started with :meth:`start_in_thread`, draining telemetry."""
        if self.loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.aclose(), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self.loop, self._thread = None, None


@contextlib.contextmanager
def _registry_errors_noted() -> Iterator[None]:
    """A handler failing on the registry makes the VEN's answer a 503, not a 400."""
    try:
        yield
    except ApiError as err:
        inbound.note_registry_error(err)
        raise


def build_vtn(api: ApiClient, host: str = "127.0.0.1", port: int = 8080,
              vtn_id: str = "DER-Registry-VTN", http_path_prefix: str = DEFAULT_PATH, *,
              poll_interval: timedelta = timedelta(seconds=10),
              sampling_interval: timedelta = timedelta(seconds=60),
              cert: str | None = None, key: str | None = None, passphrase: str | None = None,
              http_cert: str | None = None, http_key: str | None = None,
              http_ca_file: str | None = None, buffer: MeasurementBuffer | None = None,
              watch_interval: float | None = 5.0, contract_lead: timedelta = timedelta(hours=24),
              market_context: str = "oadr://der-registry/flexibility") -> OpenADRBridge:
    """An :class:`OpenADRBridge` around a configured ``OpenADRServer`` (not started).

    Plain HTTP without message signing by default; ``http_cert``/``http_key``/
    ``http_ca_file`` enable mutual TLS and ``cert``/``key`` XML message signing.
    ``watch_interval`` (seconds) is how often contracts are polled; events are
    sent for contracts starting within ``contract_lead``.
    """
    if vtn_id.islower():
        # openleadr's VEN flags an all-lowercase vtnID as invalid in its event responses.
        raise ValueError("vtn_id must not be all lowercase")
    server = OpenADRServer(vtn_id=vtn_id, http_host=host, http_port=port,
                           http_path_prefix=http_path_prefix, requested_poll_freq=poll_interval,
                           cert=cert, key=key, passphrase=passphrase, show_fingerprint=False,
                           http_cert=http_cert, http_key=http_key, http_ca_file=http_ca_file,
                           verify_message_signatures=bool(cert and key),
                           ven_lookup=lambda ven_id: bridge.lookup_ven(ven_id))
    bridge = OpenADRBridge(api, server, sampling_interval=sampling_interval, buffer=buffer,
                           watch_interval=watch_interval, contract_lead=contract_lead,
                           market_context=market_context)
    return bridge
