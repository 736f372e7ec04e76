"""The role policy tables: which verbs, fields and owners each role has on each
resource (the roles of docs/marketplace.md, "Roles", for offers and contracts).

They sit below the registry so that both the enforcement (registry/hooks/access.py)
and the admin UI, which may not import the hooks, read the same tables.
"""

from __future__ import annotations

from schemas.vocabulary import AVAILABILITY_FIELDS

ROLES = ("aggregator", "prosumer", "dso", "service", "admin")

ALL = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
READ = frozenset({"GET"})

METHODS: dict[str, dict[str, frozenset[str]]] = {
    "devices": {
        "aggregator": frozenset({"GET", "PATCH"}),
        "prosumer": frozenset({"GET", "PATCH"}),
        "service": frozenset({"GET", "POST", "PATCH"}),
        "admin": ALL,
    },
    "aggregators": {"aggregator": READ, "prosumer": READ, "dso": READ, "service": READ, "admin": ALL},
    "prosumers": {
        "aggregator": READ,
        "prosumer": frozenset({"GET", "PATCH"}),
        "service": frozenset({"GET", "POST", "PATCH"}),
        "admin": ALL,
    },
    # POST: a prosumer for its own devices, an aggregator for its portfolio (registry/api/ingest.py)
    "measurements": {
        "aggregator": frozenset({"GET", "POST"}),
        "prosumer": frozenset({"GET", "POST"}),
        "service": frozenset({"GET", "POST"}),
        "admin": ALL,
    },
    "vens": {
        "aggregator": frozenset({"GET", "POST", "PATCH", "DELETE"}),
        "prosumer": frozenset({"GET", "POST", "DELETE"}),
        "service": frozenset({"GET", "PATCH"}),
        "admin": ALL,
    },
    "oplog": {"admin": READ},
    "offers": {"aggregator": READ, "prosumer": frozenset({"GET", "POST", "PATCH"}), "service": READ, "admin": ALL},
    "contracts": {
        "aggregator": frozenset({"GET", "POST", "PATCH"}),
        "prosumer": frozenset({"GET", "PATCH"}),
        "service": frozenset({"GET", "PATCH"}),
        "admin": ALL,
    },
    # written by the job layer (registry/jobs); a service may also post its own
    "forecasts": {"aggregator": READ, "prosumer": READ, "service": frozenset({"GET", "POST"}), "admin": ALL},
    "advice": {"aggregator": READ, "prosumer": READ, "service": frozenset({"GET", "POST"}), "admin": ALL},
    "jobs": {"aggregator": READ, "prosumer": READ, "service": READ, "admin": ALL},
    "prices": {
        "aggregator": READ,
        "prosumer": READ,
        "dso": READ,
        "service": frozenset({"GET", "POST"}),
        "admin": ALL,
    },
    # the grid operators' market (docs/market.md): a DSO never reads a device, a
    # prosumer or a reading; inside its areas it sees aggregated figures only
    # assigned by the operator (admins): a DSO drawing its own areas could draw one around a house
    "grid_areas": {"dso": frozenset({"GET", "PATCH"}), "service": READ, "admin": ALL},
    "flexibility_requests": {
        "dso": frozenset({"GET", "POST", "PATCH"}),
        "aggregator": READ,
        "service": READ,
        "admin": ALL,
    },
    "bids": {"aggregator": frozenset({"GET", "POST", "PATCH"}), "dso": READ, "service": READ, "admin": ALL},
    # written by the clearing only (the tick); a prosumer reads those holding one of its devices
    "orders": {"aggregator": READ, "dso": READ, "prosumer": READ, "service": READ, "admin": READ},
}

OWNER_FIELD = {"aggregator": "aggregator_id", "prosumer": "account_id", "dso": "dso_id"}
# where a resource keeps a role's owner under another name (a list matches its members)
RESOURCE_OWNER_FIELD: dict[tuple[str, str], str] = {
    ("contracts", "prosumer"): "account_ids",
    # a request is seen by the aggregators with devices in its area
    ("flexibility_requests", "aggregator"): "aggregator_ids",
    ("orders", "prosumer"): "account_ids",
}
# public directories: every role reads every aggregator and every price series
UNSCOPED = frozenset({"aggregators", "prices"})

PATCHABLE: dict[tuple[str, str], frozenset[str]] = {
    ("devices", "prosumer"): frozenset(
        {"availability", "marketplace_availability", "dr_availability", "available_capacity", "status"}
    ),
    ("devices", "aggregator"): frozenset({"dr_availability", "status"}),
    ("devices", "service"): frozenset(
        {
            "device_name",
            "status",
            "availability",
            "device_class",
            "device_type",
            "max_capacity",
            "available_capacity",
            "location",
        }
    ),
    ("prosumers", "prosumer"): frozenset({"display_name", "name", "email", "phone", "address"}),
    ("prosumers", "service"): frozenset({"display_name", "contracted_max_power_kw"}),
    ("vens", "aggregator"): frozenset({"resources", "registration_status", "fingerprint"}),
    # ven_id is issued at enrolment (registry/hooks/vens.py); the VTN records the registration only
    ("vens", "service"): frozenset({"registration_status", "registered_at"}),
    ("offers", "prosumer"): frozenset({"status", "price", "power_kw"}),
    ("contracts", "prosumer"): frozenset({"status"}),
    ("contracts", "aggregator"): frozenset({"status"}),
    ("contracts", "service"): frozenset({"status", "ven_response"}),
    ("grid_areas", "dso"): frozenset({"name"}),
    ("flexibility_requests", "dso"): frozenset({"status"}),  # cancelled before gate closure
    ("bids", "aggregator"): frozenset({"cannot_offer", "price", "power_kw", "device_ids", "granularity_kw", "status"}),
}

HIDDEN: dict[tuple[str, str], frozenset[str]] = {
    ("prosumers", "aggregator"): frozenset({"name", "email", "phone", "address"}),
    # the VTN (service) checks VEN secrets against it; the enrolling parties never see it
    ("vens", "aggregator"): frozenset({"secret_hash"}),
    ("vens", "prosumer"): frozenset({"secret_hash"}),
    # which other aggregators operate in an area is not an aggregator's to know
    ("flexibility_requests", "aggregator"): frozenset({"aggregator_ids"}),
    # a DSO sees what is offered, not which devices offer it
    ("bids", "dso"): frozenset({"device_ids"}),
    ("orders", "dso"): frozenset({"device_ids", "account_ids"}),
    # a prosumer sees that its device is ordered, not who else is in the order
    ("orders", "prosumer"): frozenset({"device_ids", "account_ids"}),
}


# fields of a shared document of which each party sees only its own share: a
# filter on them would tell a prosumer whether another party's id is in it
UNFILTERABLE: dict[tuple[str, str], frozenset[str]] = {
    ("contracts", "prosumer"): frozenset({"device_ids", "offers", "account_ids", "settlement_shares"}),
}


def may_patch(resource: str, role: str, field: str) -> bool:
    """Whether ``role`` may change ``field`` of ``resource``; an admin may change any."""
    return role == "admin" or field in PATCHABLE.get((resource, role), frozenset())


# The availability switches each role may flip from the UI's device list: those it may PATCH.
TOGGLES = {role: tuple(f for f in AVAILABILITY_FIELDS if may_patch("devices", role, f)) for role in ROLES}
