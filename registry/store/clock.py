"""The registry's one date convention: timezone-aware UTC.

The store is set up as Eve's MongoDB client is (``tz_aware=True``), so every
date read back is aware UTC; request bodies are parsed to aware UTC
(:mod:`registry.store`), and everything the registry computes starts from
:func:`utcnow`. Comparisons therefore never mix naive and aware datetimes.
A naive datetime that still arrives (an old caller, a test) is taken as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

UTC = UTC


def utcnow() -> datetime:
    """Now, aware UTC, to the second (what Eve's date format can express)."""
    return datetime.now(UTC).replace(microsecond=0)


def as_utc(moment: datetime | str) -> datetime:
    """Aware UTC from a datetime (naive = UTC) or an ISO 8601 string."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
