"""Configuration and process entry points for the OpenADR bridge.

``run_bridge(config)`` serves the VTN until SIGINT/SIGTERM (``python run.py
bridge``), then sends buffered telemetry for up to ``drain_seconds`` and leaves
the rest in the spool for the next start. ``VtnSupervisor`` runs that command as a child process of ``python
run.py serve`` and starts it again whenever it dies, so nothing a VEN sends
can take the API down with it. Settings come from ``OPENADR_*`` environment
variables (docs/openadr.md); the registry's URL falls back to ``PUBLIC_URL``,
the credentials to the built-in service client of the instance folder.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import timedelta

from .api_client import ApiClient
from .spool import Spool
from .telemetry import MeasurementBuffer
from .vtn import DEFAULT_PATH, OpenADRBridge, build_vtn

logger = logging.getLogger("registry.openadr")

SPOOL_FILE = "openadr-telemetry.sqlite3"


@dataclass
class BridgeConfig:
    """Bridge settings; ``from_env`` reads each field from ``OPENADR_<FIELD>``."""

    api_url: str = "http://127.0.0.1:5000"
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    vtn_id: str = "DER-Registry-VTN"
    http_path_prefix: str = DEFAULT_PATH
    poll_seconds: float = 10.0
    sampling_seconds: float = 60.0
    watch_seconds: float = 5.0  # contract polling; 0 turns the watcher off
    lead_hours: float = 24.0  # events go out this long before a contract starts
    recheck_seconds: float = 0.0  # a VEN's enrolment is re-read when older (0: every message)
    market_context: str = "oadr://der-registry/flexibility"
    cert: str | None = None
    key: str | None = None
    passphrase: str | None = None
    http_cert: str | None = None
    http_key: str | None = None
    http_ca_file: str | None = None
    buffer_max: int = 100_000  # readings waiting for the registry; beyond, the VTN refuses more
    spool: str | None = None  # sqlite file of accepted readings (default: in the instance folder)
    drain_seconds: float = 10.0  # on SIGTERM, how long to keep sending before leaving the rest spooled

    @property
    def vtn_url(self) -> str:
        scheme = "https" if self.http_cert else "http"
        return f"{scheme}://{self.host}:{self.port}{self.http_path_prefix.rstrip('/')}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> BridgeConfig:
        values: dict[str, object] = {}
        # the registry's own settings, unless OPENADR_API_URL / OPENADR_PORT say otherwise
        if environ.get("PUBLIC_URL"):
            values["api_url"] = environ["PUBLIC_URL"]
        if environ.get("VTN_PORT"):
            values["port"] = int(environ["VTN_PORT"])
        for spec in fields(cls):
            raw = environ.get(f"OPENADR_{spec.name.upper()}")
            if raw is not None:
                values[spec.name] = _coerce(spec.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_instance_credentials(self, instance_path: str) -> BridgeConfig:
        """The instance folder's defaults: the telemetry spool there unless
        OPENADR_SPOOL says otherwise; without a token or secret, the built-in
        service client's secret (the embedded default; deployments set OPENADR_CLIENT_*)."""
        config = self if self.spool else replace(self, spool=os.path.join(instance_path, SPOOL_FILE))
        if config.token or config.client_secret:
            return config
        from registry.auth import credentials

        client_id = config.client_id or credentials.BRIDGE_CLIENT_ID
        return replace(
            config, client_id=client_id, client_secret=credentials.secret_of(instance_path, "clients", client_id)
        )


def _coerce(annotation: object, raw: str) -> object:
    kind = str(annotation)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def bridge_from_config(config: BridgeConfig) -> OpenADRBridge:
    api = ApiClient(config.api_url, client_id=config.client_id, client_secret=config.client_secret, token=config.token)
    bridge = build_vtn(
        api,
        config.host,
        config.port,
        config.vtn_id,
        config.http_path_prefix,
        poll_interval=timedelta(seconds=config.poll_seconds),
        sampling_interval=timedelta(seconds=config.sampling_seconds),
        cert=config.cert,
        key=config.key,
        passphrase=config.passphrase,
        http_cert=config.http_cert,
        http_key=config.http_key,
        http_ca_file=config.http_ca_file,
        watch_interval=config.watch_seconds or None,
        contract_lead=timedelta(hours=config.lead_hours),
        market_context=config.market_context,
        recheck_after=config.recheck_seconds,
        buffer=MeasurementBuffer(
            api, max_pending=config.buffer_max, spool=Spool(config.spool) if config.spool else None
        ),
    )
    return bridge


def run_bridge(config: BridgeConfig | None = None) -> None:
    """Serve the VTN in this process until interrupted."""
    asyncio.run(_serve(config or BridgeConfig.from_env()))


async def _serve(config: BridgeConfig) -> None:
    bridge = bridge_from_config(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await bridge.start()
    logger.info("OpenADR VTN at %s bridging to %s", bridge.url, config.api_url)
    try:
        await stopping.wait()
    finally:
        await bridge.aclose(drain_for=config.drain_seconds)


class VtnSupervisor:
    """Runs the VTN command as a child process; a child that dies is started again.

    Restarts back off from ``backoff_initial`` to ``backoff_max`` seconds while
    the child keeps dying young, and start over once one has lived ``stable_after``
    seconds. The child is in its own session (a terminal's Ctrl-C reaches only
    the parent, which stops it) and, on Linux, gets SIGTERM if the parent dies.
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        *,
        host: str,
        port: int,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 30.0,
    ) -> None:
        self.command, self.env = list(command), dict(env)
        self.address = ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host, port)
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.stable_after = stable_after
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout: float = 30.0) -> VtnSupervisor:
        """Start the child and wait until the VTN accepts connections."""
        self._thread = threading.Thread(target=self._supervise, name="vtn-supervisor", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("the VTN process did not start")
        deadline = time.monotonic() + timeout
        while not self._accepts_connections():
            first = self.process if self.starts == 1 else None
            if first is not None and first.poll() is not None and first.returncode > 0:
                # it gave up by itself (cannot listen, bad configuration); one killed by a
                # signal or crashing is started again like at any other time
                raise RuntimeError(f"the VTN process exited at start (code {first.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the VTN is not listening on port {self.address[1]}")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the bridge drains its telemetry), then SIGKILL after ``timeout``."""
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._thread is not None:
            self._thread.join(timeout)

    def _supervise(self) -> None:
        delay = self.backoff_initial
        while not self._stopping.is_set():
            started = time.monotonic()
            # spawned from this thread, which lives as long as supervision: the
            # parent-death signal follows the thread that forked
            self.process = subprocess.Popen(
                self.command, env=self.env, start_new_session=True, preexec_fn=_die_with_parent
            )
            self.starts += 1
            self._started.set()
            logger.info("OpenADR VTN process %d started", self.process.pid)
            code = self.process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > self.stable_after:
                delay = self.backoff_initial
            logger.error("OpenADR VTN process %d exited (code %d); restarting in %.1f s", self.process.pid, code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max)

    def _accepts_connections(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex(self.address) == 0


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux prctl; elsewhere nothing)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
