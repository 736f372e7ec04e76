"""vens: OpenADR enrolments of field gateways (VENs).

``ven_id`` and ``secret_hash`` are issued by the registry when the enrolment is
created (registry/hooks/vens.py) and never written by a client; the secret itself is
in the POST answer only (docs/openadr.md).
"""

from __future__ import annotations

from typing import Any

from schemas.common import AGGREGATOR_ID, UUID_FIELD
from schemas.vocabulary import DEVICE_CLASSES, DEVICE_TYPES

RESOURCE_HINT: dict[str, Any] = {
    "type": "dict",
    "schema": {
        "resource_id": {"type": "string", "required": True, "minlength": 1, "maxlength": 128},
        "device_class": {"type": "string", "allowed": list(DEVICE_CLASSES)},
        "device_type": {"type": "string", "allowed": list(DEVICE_TYPES)},
        "device_name": {"type": "string", "maxlength": 256},
        "max_capacity": {"type": "float", "min": 0},
    },
}

SCHEMA: dict[str, Any] = {
    "ven_name": {
        "type": "string",
        "required": True,
        "unique": True,
        "minlength": 1,
        "maxlength": 128,
        "regex": r"^[\w.:-]+$",
    },
    "ven_id": {**UUID_FIELD, "readonly": True},
    # SHA-256 of the per-enrolment secret a VEN proves itself with over plain HTTP;
    # seen by the service (the VTN checks it) and admins only
    "secret_hash": {"type": "string", "readonly": True},
    "account_id": {**UUID_FIELD, "required": True},
    "aggregator_id": {**AGGREGATOR_ID, "required": True},
    "registration_status": {
        "type": "string",
        "allowed": ["enrolled", "registered", "cancelled"],
        "default": "enrolled",
    },
    "registered_at": {"type": "datetime"},
    "resources": {"type": "list", "maxlength": 256, "schema": RESOURCE_HINT},
    # OpenADR fingerprint of the VEN's TLS client certificate; when set, only
    # that certificate may register this ven_name (docs/openadr.md)
    "fingerprint": {"type": "string", "regex": r"^([0-9A-F]{2}:){9}[0-9A-F]{2}$"},
}

RESOURCE: dict[str, Any] = {
    "item_title": "ven",
    "resource_methods": ["GET", "POST"],
    "item_methods": ["GET", "PATCH", "DELETE"],
    # the POST answer names the enrolment's ven_id (and carries its secret, once)
    "extra_response_fields": ["ven_name", "ven_id"],
    "mongo_indexes": {
        "ven_name_unique": ([("ven_name", 1)], {"unique": True}),
        "owner": [("aggregator_id", 1), ("account_id", 1)],
        "ven_id": [("ven_id", 1)],
    },
}
