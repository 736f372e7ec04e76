"""Schema fragments shared by several resources."""

from __future__ import annotations

from typing import Any

UUID_FIELD: dict[str, Any] = {"type": "uuid", "minlength": 36, "maxlength": 36}

AGGREGATOR_ID: dict[str, Any] = {"type": "string", "minlength": 3, "maxlength": 256}

# a grid operator's id (the `dso_id` claim of its tokens)
DSO_ID: dict[str, Any] = {"type": "string", "minlength": 3, "maxlength": 256}

YES_NO: dict[str, Any] = {"type": "string", "allowed": ["yes", "no"]}

POINT: dict[str, Any] = {"type": "point"}

# ISO 4217 alphabetic code
CURRENCY: dict[str, Any] = {"type": "string", "regex": "^[A-Z]{3}$"}

# of the device's net power (+ consumption): down = less power drawn, up = more
DIRECTION: dict[str, Any] = {"type": "string", "allowed": ["up", "down"]}

# the FLEXCoop device status snapshot, also stored with measurements
STATUS: dict[str, Any] = {
    "type": "dict",
    "schema": {
        "setPoint": {"type": "float"},
        "x-fanspeed": {"type": "float"},
        "mode": {"type": "string", "allowed": ["1", "2", "3", "4", "5"]},
        "operationState": {"type": "string", "allowed": ["0", "1"]},
    },
}
