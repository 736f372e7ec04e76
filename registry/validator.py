"""The registry's Cerberus validator: Eve's, plus the ``uuid`` type."""
from __future__ import annotations

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
    types_mapping = {**Validator.types_mapping,
                     "uuid": TypeDefinition("uuid", (CanonicalUUID,), ())}
