"""One module per resource: SCHEMA (Cerberus) and RESOURCE (Eve keys)."""
from __future__ import annotations

from schemas import aggregators, devices, measurements, prosumers, vens

MODULES = {
    "devices": devices,
    "aggregators": aggregators,
    "prosumers": prosumers,
    "measurements": measurements,
    "vens": vens,
}
