"""OpenADR 2.0b bridge: a VTN that turns VEN registrations, reports and opt
responses into registry REST calls, and contracts into OpenADR events
(docs/openadr.md).

The names below are imported on first use, so the registry app can use
:mod:`.enrolment` (issuing VEN identities) without loading openleadr.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ApiClient": "api_client",
    "ApiError": "api_client",
    "ApiUnavailable": "api_client",
    "ContractEvents": "contracts",
    "ContractWatcher": "contracts",
    "BridgeConfig": "runner",
    "bridge_from_config": "runner",
    "run_bridge": "runner",
    "VtnSupervisor": "runner",
    "MeasurementBuffer": "telemetry",
    "Spool": "spool",
    "OpenADRBridge": "vtn",
    "build_vtn": "vtn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
