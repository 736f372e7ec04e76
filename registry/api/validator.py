"""The registry's Cerberus validator: Eve's, plus the ``uuid`` type, numbers that
are numbers (not booleans), GeoJSON points on Earth and grid areas."""

from __future__ import annotations

import math
import re
from typing import Any

from cerberus import TypeDefinition
from eve.io.mongo import Validator

from registry.store import geo_areas

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


INT64 = 2**63


class _FiniteNumberMeta(type):
    def __instancecheck__(cls, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return -INT64 <= value < INT64 if isinstance(value, int) else math.isfinite(value)


class FiniteNumber(metaclass=_FiniteNumberMeta):
    """A number MongoDB can store and every comparison understands: not NaN,
    not ±Infinity (both pass Cerberus' min / max), integers within 64 bits,
    and not a boolean. The API's JSON decoder refuses the others already;
    this keeps internal writers (the bridge, jobs) to the same rule."""


class _Int64Meta(type):
    def __instancecheck__(cls, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and -INT64 <= value < INT64


class Int64(metaclass=_Int64Meta):
    """An integer BSON can hold."""


class RegistryValidator(Validator):
    # Cerberus's float and integer accept True / False (bool is an int): a
    # `"power_kw": true` would be stored as 1 kW, so booleans are refused
    types_mapping = {
        **Validator.types_mapping,
        "float": TypeDefinition("float", (FiniteNumber,), ()),
        "integer": TypeDefinition("integer", (Int64,), ()),
        "number": TypeDefinition("number", (FiniteNumber,), ()),
        "uuid": TypeDefinition("uuid", (CanonicalUUID,), ()),
    }

    def _validate_type_point(self, value: Any) -> bool:
        """A GeoJSON Point at [longitude, latitude] on Earth: MongoDB's 2dsphere
        index refuses any other position with a write error, not a 422."""
        return super()._validate_type_point(value) is True and is_lng_lat(value["coordinates"])

    def _check_with_grid_area(self, field: str, value: Any) -> None:
        """A grid area's GeoJSON Polygon / MultiPolygon (registry/store/geo_areas.py)."""
        problem = geo_areas.area_problem(value)
        if problem:
            self._error(field, f"a grid area {problem}")


def is_lng_lat(position: Any) -> bool:
    if len(position) != 2 or any(isinstance(x, bool) or not math.isfinite(x) for x in position):
        return False
    return -180 <= position[0] <= 180 and -90 <= position[1] <= 90
