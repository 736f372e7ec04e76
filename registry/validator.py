"""The registry's Cerberus validator: Eve's, plus the ``uuid`` type, numbers that
are numbers (not booleans) and GeoJSON points on Earth."""
from __future__ import annotations

import math
import re
from typing import Any

from cerberus import TypeDefinition
from eve.io.mongo import Validator

CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_canonical_uuid(value: Any) -> bool:
    """A lower-case, hyphenated, 36-character UUID string."""
    return isinstance(value, str) and CANONICAL_UUID.match(value) is not None


class _CanonicalUUIDMeta(type):
    def __instancecheck__(cls, value: Any) -> bool:
        return is_canonical_uuid(value)


class CanonicalUUID(metaclass=_CanonicalUUIDMeta):
    """``isinstance(v, CanonicalUUID)`` is the format check, so the type fits a
    plain ``TypeDefinition``. UUIDs are stored as strings: mongomock cannot
    store native UUIDs and clients filter on the textual form."""


class RegistryValidator(Validator):
    # Cerberus's float and integer accept True / False (bool is an int): a
    # `"power_kw": true` would be stored as 1 kW, so booleans are refused
    types_mapping = {**Validator.types_mapping,
                     "float": TypeDefinition("float", (float, int), (bool,)),
                     "integer": TypeDefinition("integer", (int,), (bool,)),
                     "uuid": TypeDefinition("uuid", (CanonicalUUID,), ())}

    def _validate_type_point(self, value: Any) -> bool:
        """A GeoJSON Point at [longitude, latitude] on Earth: MongoDB's 2dsphere
        index refuses any other position with a write error, not a 422."""
        return super()._validate_type_point(value) is True and is_lng_lat(value["coordinates"])


def is_lng_lat(position: Any) -> bool:
    if len(position) != 2 or any(isinstance(x, bool) or not math.isfinite(x) for x in position):
        return False
    return -180 <= position[0] <= 180 and -90 <= position[1] <= 90
