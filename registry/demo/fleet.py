"""The demo fleet's fixed facts: its aggregators, cities and device kinds, the
stable ids every demo document gets, and the demo users (their claims match the
seeded documents). Pure data: the app's secrets (registry.auth.credentials)
read the users from here without importing the seeding code."""

from __future__ import annotations

import uuid
from typing import Any

NAMESPACE = uuid.UUID("6f1c1a52-3c4e-4d0e-9a57-0d7a0c1e5b11")
AGGREGATORS = [
    ("coop-iberia", "Iberian Energy Cooperative", "ES"),
    ("flex-nordwest", "Flex Nordwest Aggregation", "DE"),
    ("lowlands-flex", "Lowlands Flexibility BV", "NL"),
]
# (city, lng, lat, aggregator)
CITIES = [
    ("Barcelona", 2.1734, 41.3851, "coop-iberia"),
    ("Madrid", -3.7038, 40.4168, "coop-iberia"),
    ("Valencia", -0.3763, 39.4699, "coop-iberia"),
    ("Lisbon", -9.1393, 38.7223, "coop-iberia"),
    ("Hamburg", 9.9937, 53.5511, "flex-nordwest"),
    ("Bremen", 8.8017, 53.0793, "flex-nordwest"),
    ("Hannover", 9.7320, 52.3759, "flex-nordwest"),
    ("Copenhagen", 12.5683, 55.6761, "flex-nordwest"),
    ("Amsterdam", 4.9041, 52.3676, "lowlands-flex"),
    ("Rotterdam", 4.4777, 51.9244, "lowlands-flex"),
    ("Utrecht", 5.1214, 52.0907, "lowlands-flex"),
    ("Antwerp", 4.4025, 51.2194, "lowlands-flex"),
]
# grid operators and their areas: (dso_id, area name, [lng, lat] south-west corner, size in degrees)
GRID_AREAS = [
    ("dso-catalonia", "Barcelona", (2.0, 41.25), 0.35),
    ("dso-catalonia", "Valencia", (-0.55, 39.3), 0.35),
    ("dso-randstad", "Amsterdam", (4.7, 52.2), 0.4),
    ("dso-randstad", "Rotterdam", (4.25, 51.75), 0.4),
    ("dso-randstad", "Utrecht", (4.95, 51.95), 0.35),
]
# mean day-ahead price per country, EUR/kWh
PRICE_LEVELS = {"ES": 0.11, "DE": 0.14, "NL": 0.13}
# a full week plus today's part: enough usable days for a day-ahead forecast
MEASUREMENT_DAYS = 8
DEVICE_KINDS = [  # (class, type, name, max kW, share)
    ("hvacDevice", "Demand", "Heat pump", 6.0, 0.30),
    ("dhwDevice", "Demand", "Hot water tank", 3.0, 0.30),
    ("otherLoad", "Generation", "Rooftop PV", 5.0, 0.20),
    ("otherLoad", "Storage", "Home battery", 5.0, 0.10),
    ("lightingLoad", "Demand", "Lighting", 0.8, 0.10),
]


def stable_id(*parts: Any) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


def identities() -> dict[str, dict[str, Any]]:
    """username -> claims for the demo users (match the seeded demo data)."""
    people: dict[str, dict[str, Any]] = {"admin": {"role": "admin"}}
    for aggregator_id, _, _ in AGGREGATORS:
        people[aggregator_id] = {"role": "aggregator", "aggregator_id": aggregator_id}
    for p in range(3):
        city, _, _, aggregator_id = CITIES[p]
        people[f"prosumer-{city.lower()}"] = {
            "role": "prosumer",
            "aggregator_id": aggregator_id,
            "account_id": stable_id("prosumer", p),
        }
    return people
