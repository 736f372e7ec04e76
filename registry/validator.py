"""The registry's Cerberus validator: Eve's, plus the ``uuid`` type."""
from __future__ import annotations

import re
from typing import Any

from eve.io.mongo import Validator

CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_canonical_uuid(value: Any) -> bool:
    """A lower-case, hyphenated, 36-character UUID string."""
    return isinstance(value, str) and CANONICAL_UUID.match(value) is not None


class RegistryValidator(Validator):
    """UUIDs are stored as canonical strings: mongomock cannot store native
    UUIDs and clients filter on the textual form. A ``TypeDefinition`` only
    checks ``isinstance``, so the format check is a type method."""

    def _validate_type_uuid(self, value: Any) -> bool:
        return is_canonical_uuid(value)
