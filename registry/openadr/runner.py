"""Configuration and process entry points for the OpenADR bridge.

``run_bridge(config)`` serves the VTN until SIGINT/SIGTERM (``python run.py
bridge``); ``start_bridge_in_thread(config)`` runs it inside another process
(the embedded ``python run.py serve``). Settings come from ``OPENADR_*``
environment variables (docs/openadr.md); the registry's URL falls back to
``PUBLIC_URL``, the credentials to the built-in service client of the
instance folder.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Mapping

from .api_client import ApiClient
from .vtn import DEFAULT_PATH, OpenADRBridge, build_vtn

logger = logging.getLogger("registry.openadr")


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
    market_context: str = "oadr://der-registry/flexibility"
    cert: str | None = None
    key: str | None = None
    passphrase: str | None = None
    http_cert: str | None = None
    http_key: str | None = None
    http_ca_file: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: object) -> "BridgeConfig":
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

    def with_instance_credentials(self, instance_path: str) -> "BridgeConfig":
        """Without a token or secret: the built-in service client's secret from
        the instance folder (the embedded default; deployments set OPENADR_CLIENT_*)."""
        if self.token or self.client_secret:
            return self
        from registry import credentials

        client_id = self.client_id or credentials.BRIDGE_CLIENT_ID
        return replace(self, client_id=client_id,
                       client_secret=credentials.secret_of(instance_path, "clients", client_id))


def _coerce(annotation: object, raw: str) -> object:
    kind = str(annotation)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw


def bridge_from_config(config: BridgeConfig) -> OpenADRBridge:
    api = ApiClient(config.api_url, client_id=config.client_id,
                    client_secret=config.client_secret, token=config.token)
    bridge = build_vtn(api, config.host, config.port, config.vtn_id, config.http_path_prefix,
                       poll_interval=timedelta(seconds=config.poll_seconds),
                       sampling_interval=timedelta(seconds=config.sampling_seconds),
                       cert=config.cert, key=config.key, passphrase=config.passphrase,
                       http_cert=config.http_cert, http_key=config.http_key,
                       http_ca_file=config.http_ca_file,
                       watch_interval=config.watch_seconds or None,
                       contract_lead=timedelta(hours=config.lead_hours),
                       market_context=config.market_context)
    return bridge


def start_bridge_in_thread(config: BridgeConfig) -> OpenADRBridge:
    """Start the VTN in a background thread; call ``.stop()`` on the result at exit."""
    return bridge_from_config(config).start_in_thread()


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
        await bridge.aclose()
