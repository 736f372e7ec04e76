"""The OpenADR 2.0b VTN (:class:`OpenADRBridge`, built by :func:`build_vtn`): what
each VEN message does, as pictured in the package's docstring (registry/openadr).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web
from openleadr import OpenADRServer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from registry.ops.metrics import PROCESS

from . import inbound, ven_auth
from .answers import INVALID_ID, NOT_ALLOWED, NOT_REGISTERED, Declined, Responder
from .api_client import ApiClient, format_eve_date
from .contracts import ContractEvents, ContractWatcher
from .opts import OptResponses
from .reports import Reports
from .telemetry import MeasurementBuffer
from .ven_auth import VenSession

logger = logging.getLogger("registry.openadr")

DEFAULT_PATH = "/OpenADR2/Simple/2.0b"
PULL_ONLY = (
    "this VTN supports the HTTP pull model only: register with oadrHttpPullModel "
    "true over simpleHttp, then poll OadrPoll"
)


class OpenADRBridge:
    """An ``OpenADRServer`` whose handlers read and write the registry over REST."""

    def __init__(
        self,
        api: ApiClient,
        server: OpenADRServer,
        *,
        sampling_interval: timedelta,
        poll_interval: timedelta = timedelta(seconds=10),
        market_context: str = "oadr://der-registry/flexibility",
        buffer: MeasurementBuffer | None = None,
        watch_interval: float | None = 5.0,
        contract_lead: timedelta = timedelta(hours=24),
        recheck_after: float = 0.0,
    ) -> None:
        self.api, self.server = api, server
        self.buffer = buffer or MeasurementBuffer(api)
        self.sessions: dict[str, VenSession] = {}
        self.resources: dict[str, tuple[str, str]] = {}  # device_id -> (ven_id, resource_id)
        self.reports = Reports(api, self.sessions, self.buffer, sampling_interval)
        self.contract_events = ContractEvents(api, server, self.resources, market_context)
        self.opts = OptResponses(api, server, self.contract_events)
        # None: contracts are not polled, so none reaches a VEN (benches and tests of reports only)
        self.watcher = (
            ContractWatcher(api, self.contract_events, watch_interval, contract_lead) if watch_interval else None
        )
        self.gate = ven_auth.VenGate(api, self.sessions, recheck_after=recheck_after)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        handlers = {
            "oadrCreatePartyRegistration": self.create_party_registration,
            "oadrCancelPartyRegistration": self.cancel_party_registration,
            "oadrRegisterReport": self.register_report,
            "oadrUpdateReport": self.reports.update,
            "oadrCreatedReport": acknowledge,
            "oadrRequestEvent": self.request_event,
            "oadrCreatedEvent": self.opts.created_event,
        }
        inbound.install(server, self.gate.admit, Responder(server, handlers, self.lookup_ven, poll_interval))
        server.app.router.add_get("/metrics", serve_metrics)

    @property
    def url(self) -> str:
        scheme = "https" if self.server.ssl_context else "http"
        return f"{scheme}://{self.server.http_host}:{self.server.http_port}{self.server.http_path_prefix}"

    # -- registration ---------------------------------------------------------

    async def create_party_registration(self, payload: dict) -> tuple[str, dict]:
        """Register the enrolment the gate authenticated (the VEN's proof is in ven_auth)."""
        enrolment = ven_auth.current_caller().enrolment
        ven_name, ven_id = enrolment["ven_name"], enrolment.get("ven_id")
        if enrolment.get("registration_status") == "cancelled":
            raise Declined(
                NOT_REGISTERED,
                f"VEN {ven_name!r}: its enrolment is cancelled; the party that enrolled it can enrol it again",
            )
        if not ven_id:  # enrolled before the registry issued ven_ids
            raise Declined(NOT_REGISTERED, f"VEN {ven_name!r}: its enrolment has no venID; enrol the box again")
        if wants_push(payload):
            raise Declined(NOT_ALLOWED, PULL_ONLY)
        await self.api.patch_item(
            "vens",
            enrolment["_id"],
            {"registration_status": "registered", "registered_at": format_eve_date(datetime.now(UTC))},
            enrolment.get("_etag"),
        )
        self.end_session(ven_id)  # a registration starts afresh: earlier report requests end
        session = VenSession(ven_id, ven_name, str(uuid.uuid4()), enrolment)
        self.sessions[ven_id] = session
        logger.info("VEN %r registered as %s", ven_name, ven_id)
        return "oadrCreatedPartyRegistration", {"ven_id": ven_id, "registration_id": session.registration_id}

    async def cancel_party_registration(self, payload: dict) -> tuple[str, dict]:
        """Only the VEN's own open registration is cancelled; the enrolment stays."""
        ven_id, registration_id = payload["ven_id"], payload.get("registration_id")
        session = self.sessions.get(ven_id)
        if session is None:
            return "oadrCanceledPartyRegistration", {
                "response": {"response_code": 200, "response_description": "OK: no registration was open"}
            }
        if registration_id != session.registration_id:
            raise Declined(INVALID_ID, f"registrationID {registration_id} is not this VEN's registration")
        self.end_session(ven_id)
        await self.api.patch_item("vens", session.enrolment["_id"], {"registration_status": "enrolled"})
        logger.info("VEN %s cancelled its registration", ven_id)
        return "oadrCanceledPartyRegistration", {}

    def end_session(self, ven_id: str) -> None:
        self.sessions.pop(ven_id, None)
        self.reports.forget(ven_id)

    def lookup_ven(self, ven_id: str) -> dict | None:
        """None makes the VTN request re-registration."""
        session = self.sessions.get(ven_id)
        if session is None:
            return None
        return {
            "ven_id": session.ven_id,
            "ven_name": session.ven_name,
            "registration_id": session.registration_id,
            "fingerprint": session.enrolment.get("fingerprint"),
        }

    # -- reports and events -------------------------------------------------------

    async def register_report(self, payload: dict) -> tuple[str, dict]:
        reply = await self.reports.register(payload)
        session = self.sessions[payload["ven_id"]]
        for resource_id, device_id in session.devices.items():
            if device_id is not None:
                self.resources[device_id] = (session.ven_id, resource_id)
        return reply

    async def request_event(self, payload: dict) -> tuple[str, dict]:
        """oadrRequestEvent is answered with oadrDistributeEvent, empty when there is none."""
        reply_type, reply = await self.server.services["event_service"].request_event(payload)
        return "oadrDistributeEvent", reply if reply_type == "oadrDistributeEvent" else {}

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.api.open()
        self.buffer.start()
        await inbound.listen(self.server)
        logger.info("OpenADR 2.0b VTN serving at %s", self.url)
        if self.watcher is not None:
            self.watcher.start()

    async def aclose(self, drain_for: float = 5.0) -> None:
        """Stop serving, then try for ``drain_for`` s to hand the buffered telemetry
        to the registry (what is left stays in the spool, if there is one)."""
        if self.watcher is not None:
            await self.watcher.stop()
        await self.server.stop()
        await self.buffer.stop(drain_for)
        await self.api.close()

    def start_in_thread(self, timeout: float = 10.0) -> OpenADRBridge:
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

    def stop(self, timeout: float = 10.0, drain_for: float = 5.0) -> None:
        """Stop a bridge started with :meth:`start_in_thread`, draining telemetry."""
        if self.loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.aclose(drain_for), self.loop).result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self.loop, self._thread = None, None


async def acknowledge(payload: dict) -> tuple[str, dict]:
    """oadrCreatedReport: the VEN confirms the reports it will send; nothing to do."""
    return "oadrResponse", {}


def wants_push(payload: dict) -> bool:
    """oadrHttpPullModel false, or left out with a transportAddress; or a transport
    other than simpleHttp."""
    pull = payload.get("http_pull_model")
    return (
        payload.get("transport_name") not in (None, "simpleHttp")
        or pull is False
        or (pull is None and bool(payload.get("transport_address")))
    )


async def serve_metrics(request: web.Request) -> web.Response:
    """This process's figures (Prometheus text), for a scrape from this machine only."""
    if not ven_auth.is_loopback(request.remote) or "X-Forwarded-For" in request.headers:
        return web.Response(status=403, text="/metrics answers this machine only\n")
    return web.Response(body=generate_latest(PROCESS), headers={"Content-Type": CONTENT_TYPE_LATEST})


def build_vtn(
    api: ApiClient,
    host: str = "127.0.0.1",
    port: int = 8080,
    vtn_id: str = "DER-Registry-VTN",
    http_path_prefix: str = DEFAULT_PATH,
    *,
    poll_interval: timedelta = timedelta(seconds=10),
    sampling_interval: timedelta = timedelta(seconds=60),
    cert: str | None = None,
    key: str | None = None,
    passphrase: str | None = None,
    http_cert: str | None = None,
    http_key: str | None = None,
    http_ca_file: str | None = None,
    buffer: MeasurementBuffer | None = None,
    watch_interval: float | None = 5.0,
    contract_lead: timedelta = timedelta(hours=24),
    market_context: str = "oadr://der-registry/flexibility",
    recheck_after: float = 0.0,
) -> OpenADRBridge:
    """An :class:`OpenADRBridge` around a configured ``OpenADRServer`` (not started).

    Plain HTTP without message signing by default; ``http_cert``/``http_key``/
    ``http_ca_file`` enable mutual TLS and ``cert``/``key`` XML message signing.
    ``watch_interval`` (seconds) is how often contracts are polled; events are
    sent for contracts starting within ``contract_lead``; ``recheck_after``
    (seconds) is how long a session trusts its copy of the VEN's enrolment.
    """
    if vtn_id.islower():
        # openleadr's VEN flags an all-lowercase vtnID as invalid in its event responses.
        raise ValueError("vtn_id must not be all lowercase")
    server = OpenADRServer(
        vtn_id=vtn_id,
        http_host=host,
        http_port=port,
        http_path_prefix=http_path_prefix,
        requested_poll_freq=poll_interval,
        cert=cert,
        key=key,
        passphrase=passphrase,
        show_fingerprint=False,
        http_cert=http_cert,
        http_key=http_key,
        http_ca_file=http_ca_file,
        verify_message_signatures=bool(cert and key),
        ven_lookup=lambda ven_id: bridge.lookup_ven(ven_id),
    )
    bridge = OpenADRBridge(
        api,
        server,
        sampling_interval=sampling_interval,
        buffer=buffer,
        poll_interval=poll_interval,
        watch_interval=watch_interval,
        contract_lead=contract_lead,
        market_context=market_context,
        recheck_after=recheck_after,
    )
    return bridge
