"""One module per resource: SCHEMA (Cerberus) and RESOURCE (Eve keys)."""

from __future__ import annotations

from schemas import (
    advice,
    aggregators,
    bids,
    contracts,
    devices,
    flexibility_requests,
    forecasts,
    grid_areas,
    jobs,
    measurements,
    offers,
    orders,
    prices,
    prosumers,
    vens,
)

MODULES = {
    "devices": devices,
    "aggregators": aggregators,
    "prosumers": prosumers,
    "measurements": measurements,
    "vens": vens,
    "offers": offers,
    "contracts": contracts,
    "forecasts": forecasts,
    "advice": advice,
    "jobs": jobs,
    "prices": prices,
    "grid_areas": grid_areas,
    "flexibility_requests": flexibility_requests,
    "bids": bids,
    "orders": orders,
}
