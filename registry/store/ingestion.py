"""What a duplicate key looks like on both backends.

(Measurements, the one resource stored once per key, keep that rule in their day
buckets: :mod:`registry.store.timeseries`.)
"""

from __future__ import annotations

from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


def is_duplicate_key(error: Exception) -> bool:
    """A duplicate key, alone or as the first error of a bulk write."""
    if isinstance(error, BulkWriteError):
        codes = {e.get("code") for e in (error.details or {}).get("writeErrors", [])}
        return codes == {DUPLICATE_KEY}
    return getattr(error, "code", None) == DUPLICATE_KEY
