"""OpenADR 2.0b bridge: a VTN that turns VEN registrations, reports and opt
responses into registry REST calls, and contracts into OpenADR events
(docs/openadr.md).

Every write goes through :class:`ApiClient` with a service token, so the
registry's validation, access rules and job hooks apply to bridged data too.
Every answer is a 2.0b message whose eiResponse says what happened: 200, or
the profile's error code and why (:mod:`.answers`); transport problems are
HTTP 4xx, an unavailable registry 503, never 500::

    VEN (any 2.0b client)             VTN bridge (this package)            registry REST API
    ─────────────────────             ─────────────────────────            ─────────────────
    any message ────────────────────▶ inbound: Content-Type, size, hardened XML parse, no
                                      DOCTYPE, XSD; ven_auth.VenGate: TLS fingerprint, or
                                      loopback + Basic ven_name:secret; venName / venID its
                                      own (452), enrolment not cancelled (463) ─────▶ GET /vens
    oadrCreatePartyRegistration ────▶ create_party_registration: push model refused (451)
                               ◀──── venID (issued at enrolment), ◀──── PATCH /vens/<_id> registered
                                     registrationID
    oadrCancelPartyRegistration ────▶ its own registrationID only (452) ──▶ PATCH /vens/<_id> enrolled
    oadrRegisterReport ─────────────▶ reports.register: units (461); devices in one batch ─▶
                                      GET /devices?where={ven_id}, POST /devices [bulk], PATCH hints
                               ◀──── oadrRegisteredReport (RealPower requested every sampling interval)
    oadrUpdateReport ───────────────▶ reports.update: its reportRequestIDs (452), UTC times near
                                      now (454) ─▶ MeasurementBuffer ─▶ POST /measurements [bulk]
                                      (kept and re-sent while the API is down; the registry keeps
                                      one reading per device and timestamp)
    contract watcher (every few s) ────────────────────────────────────▶ GET /contracts?where={accepted…}
                                      event queued per VEN (targets: its resources)
    oadrPoll ───────────────────────▶ ◀──── oadrDistributeEvent (SIMPLE level / LOAD_DISPATCH kW delta)
    oadrCreatedEvent optIn|optOut ──▶ opts: its events (452), their modification (450) ─▶
                                      PATCH /contracts/<_id> ven_response (+ history)
    contract watcher ──────────────────────────────────────────────────▶ GET /contracts?where={cancelled…}
                                      event status "cancelled", the next poll delivers it

The VTN keeps registrations in memory only: after a bridge restart, a VEN's
next message is answered with oadrRequestReregistration, which re-runs the
sequence above. It supports the HTTP pull model only (docs/openadr.md).

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
