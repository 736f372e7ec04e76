"""The OpenADR 2.0b VTN that bridges field gateways (VENs) to the registry's REST API.

Every write goes through :class:`ApiClient` with a service token, so the
registry's validation, access rules and job hooks apply to bridged data too::

    VEN (openleadr client)            VTN bridge (this module)            registry REST API
    ──────────────────────            ────────────────────────            ─────────────────
    oadrCreatePartyRegistration ────▶ on_create_party_registration ────▶ GET  /vens?where={ven_name}
                                      unknown / cancelled: refuse (False)
                               ◀──── venID, registrationID ◀──────────── PATCH /vens/<_id> ven_id, registered
    oadrRegisterReport ─────────────▶ on_register_report (per resource) ─▶ GET /devices/<uuid5(ven_id/resource)>
                                                                          POST /devices | PATCH owned fields
                               ◀──── oadrRegisteredReport (RealPower requested every sampling interval)
    oadrUpdateReport ───────────────▶ telemetry callback ─▶ MeasurementBuffer ─▶ POST /measurements [bulk]
                                                            (kept and re-sent while the API is down)
    registry: contract active ──────▶ activate_contract ─▶ event queued per VEN (targets: its resources)
    oadrPoll ───────────────────────▶ ◀──── oadrDistributeEvent (SIMPLE level / LOAD_DISPATCH kW delta)
    oadrCreatedEvent optIn|optOut ──▶ opt callback ─────────────────────▶ PATCH /contracts/<_id> ven_response
    registry: contract cancelled ───▶ cancel_contract ─▶ event status "cancelled", next poll delivers it

The VTN keeps registrations in memory only: after a bridge restart, a VEN's
next message is answered with oadrRequestReregistration (openleadr's
``ven_lookup`` mechanism), which re-runs the sequence above.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable

from openleadr import OpenADRServer

from . import mapping
from .api_client import ApiClient, MeasurementBuffer, format_eve_date

logger = logging.getLogger("registry.openadr")

DEFAULT_PATH = "/OpenADR2/Simple/2.0b"


@dataclass
class VenSession:
    """A VEN registered with this VTN process (lost on restart, by design)."""

    ven_id: str
    ven_name: str
    registration_id: str
    enrolment: dict
    fingerprint: str | None = None
    devices: dict[str, asyncio.Task] = field(default_factory=dict)


class OpenADRBridge:
    """An ``OpenADRServer`` whose handlers read and write the registry over REST."""

    def __init__(self, api: ApiClient, server: OpenADRServer, *, sampling_interval: timedelta,
                 market_context: str = "oadr://der-registry/flexibility",
                 buffer: MeasurementBuffer | None = None) -> None:
        self.api, self.server = api, server
        self.sampling_interval = sampling_interval
        self.market_context = market_context
        self.buffer = buffer or MeasurementBuffer(api)
        self.sessions: dict[str, VenSession] = {}
        self.resources: dict[str, tuple[str, str]] = {}  # device_id -> (ven_id, resource_id)
        self.contract_events: dict[str, list[tuple[str, str]]] = {}  # contract -> (ven, event)
        self.contract_opts: dict[str, dict[str, str]] = {}  # contract -> {event_id: opt}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        for name in ("on_create_party_registration", "on_cancel_party_registration",
                     "on_register_report"):
            server.add_handler(name, getattr(self, name))

    @property
    def url(self) -> str:
        scheme = "https" if self.server.ssl_context else "http"
        return f"{scheme}://{self.server.http_host}:{self.server.http_port}{self.server.http_path_prefix}"

    # -- registration ---------------------------------------------------------

    async def on_create_party_registration(self, payload: dict) -> tuple[str, str] | bool:
        ven_name = payload.get("ven_name")
        enrolment = await self.api.find_ven(ven_name) if ven_name else None
        if enrolment is None or enrolment.get("registration_status") == "cancelled":
            logger.warning("refused OpenADR registration of VEN %r: not enrolled", ven_name)
            return False
        expected = enrolment.get("fingerprint")
        if expected and payload.get("fingerprint") != expected:
            logger.warning("refused VEN %r: TLS fingerprint does not match its enrolment", ven_name)
            return False
        # A re-registering VEN keeps its ven_id, so its device ids stay the same.
        ven_id = enrolment.get("ven_id") or str(uuid.uuid4())
        await self.api.patch_item("vens", enrolment["_id"], {
            "ven_id": ven_id, "registration_status": "registered",
            "registered_at": format_eve_date(datetime.now(timezone.utc))}, enrolment.get("_etag"))
        session = VenSession(ven_id, ven_name, str(uuid.uuid4()), enrolment,
                             payload.get("fingerprint"))
        self.sessions[ven_id] = session
        logger.info("VEN %r registered as %s", ven_name, ven_id)
        return ven_id, session.registration_id

    async def on_cancel_party_registration(self, payload: dict) -> tuple[str, dict]:
        session = self.sessions.pop(payload.get("ven_id"), None)
        if session is not None:
            await self.api.patch_item("vens", session.enrolment["_id"],
                                      {"registration_status": "enrolled"})
        return "oadrCanceledPartyRegistration", {"registration_id": payload.get("registration_id")}

    def lookup_ven(self, ven_id: str) -> dict | None:
        """openleadr's ``ven_lookup``: None makes the VTN request re-registration."""
        session = self.sessions.get(ven_id)
        if session is None:
            return None
        return {"ven_id": session.ven_id, "ven_name": session.ven_name,
                "registration_id": session.registration_id, "fingerprint": session.fingerprint}

    # -- reports -> devices and measurements ----------------------------------

    async def on_register_report(self, ven_id: str, resource_id: str, measurement: str,
                                 unit: str | None, scale: str | None,
                                 min_sampling_interval: timedelta | None,
                                 max_sampling_interval: timedelta | None) -> tuple | None:
        session = self.sessions.get(ven_id)
        if session is None or not resource_id:
            return None
        try:
            device_id = await self._ensure_device(session, resource_id)
        except Exception:
            # Forget the session: the VEN's next poll is answered with a request
            # to re-register, which retries the device registration.
            self.sessions.pop(ven_id, None)
            raise
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

    async def _upsert_device(self, session: VenSession, resource_id: str) -> str:
        document, owned = mapping.device_document(session.enrolment, session.ven_id, resource_id)
        outcome = await self.api.upsert_device(document, owned)
        self.resources[document["device_id"]] = (session.ven_id, resource_id)
        logger.info("device %s %s for VEN %s resource %r", document["device_id"], outcome,
                    session.ven_name, resource_id)
        return document["device_id"]

    def on_power_readings(self, device_id: str, factor: float,
                          readings: list[tuple[datetime, float]]) -> None:
        self.buffer.add(mapping.power_measurements(device_id, readings, factor))

    # -- contracts -> events ----------------------------------------------------

    async def activate_contract_async(self, contract: dict) -> list[str]:
        """Queue one OpenADR event per VEN behind the contract's devices."""
        contract_id = str(contract["_id"])
        device_ids = contract.get("device_ids") or await self._offer_devices(contract)
        by_ven: dict[str, list[str]] = {}
        for device_id in device_ids:
            ven_id, resource_id = await self._locate(device_id)
            by_ven.setdefault(ven_id, [])
            if resource_id:
                by_ven[ven_id].append(resource_id)
        event_ids = []
        for ven_id, resource_ids in by_ven.items():
            event = mapping.contract_event(contract, ven_id, resource_ids, self.market_context)
            callback = self._opt_callback(contract_id)
            event_id = self.server.add_raw_event(ven_id=ven_id, event=event, callback=callback)
            self.contract_events.setdefault(contract_id, []).append((ven_id, event_id))
            event_ids.append(event_id)
        logger.info("contract %s activated: events %s", contract_id, event_ids)
        return event_ids

    async def cancel_contract_async(self, contract_id: str) -> int:
        events = self.contract_events.pop(str(contract_id), [])
        for ven_id, event_id in events:
            self.server.cancel_event(ven_id, event_id)
        if not events:
            logger.warning("contract %s has no events in this VTN to cancel", contract_id)
        return len(events)

    def activate_contract(self, contract: dict) -> concurrent.futures.Future:
        """Thread-safe, non-blocking: call from the registry's hooks."""
        return self._submit(self.activate_contract_async(contract))

    def cancel_contract(self, contract_id: str) -> concurrent.futures.Future:
        return self._submit(self.cancel_contract_async(contract_id))

    def _submit(self, coroutine: Any) -> concurrent.futures.Future:
        if self.loop is None:
            coroutine.close()
            raise RuntimeError("the OpenADR bridge is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def _opt_callback(self, contract_id: str) -> Callable:
        async def record_opt(ven_id: str, event_id: str, opt_type: str) -> None:
            opts = self.contract_opts.setdefault(contract_id, {})
            opts[event_id] = opt_type
            # Several VENs may serve one contract: any optOut makes the contract's answer optOut.
            if opt_type == "optIn" and "optOut" in opts.values():
                return
            await self.api.patch_item("contracts", contract_id,
                                      {"ven_response": mapping.opt_record(opt_type, event_id)})
            logger.info("VEN %s answered %s to contract %s", ven_id, opt_type, contract_id)
        return record_opt

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
        offers = [await self.api.get_item("offers", str(offer_id))
                  for offer_id in contract.get("offers") or []]
        return sorted({offer["device_id"] for offer in offers if offer})

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.api.open()
        self.buffer.start()
        await self.server.run()

    async def aclose(self) -> None:
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


def build_vtn(api: ApiClient, host: str = "127.0.0.1", port: int = 8080,
              vtn_id: str = "DER-Registry-VTN", http_path_prefix: str = DEFAULT_PATH, *,
              poll_interval: timedelta = timedelta(seconds=10),
              sampling_interval: timedelta = timedelta(seconds=60),
              cert: str | None = None, key: str | None = None, passphrase: str | None = None,
              http_cert: str | None = None, http_key: str | None = None,
              http_ca_file: str | None = None, buffer: MeasurementBuffer | None = None
              ) -> OpenADRBridge:
    """An :class:`OpenADRBridge` around a configured ``OpenADRServer`` (not started).

    Plain HTTP without message signing by default; ``http_cert``/``http_key``/
    ``http_ca_file`` enable mutual TLS and ``cert``/``key`` XML message signing.
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
    bridge = OpenADRBridge(api, server, sampling_interval=sampling_interval, buffer=buffer)
    return bridge
