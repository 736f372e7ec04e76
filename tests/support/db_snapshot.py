"""What the store holds, to assert that a refused request changed nothing
(tests/test_security_api_*.py, tests/test_api_hostile_fuzz.py)."""

from __future__ import annotations

from typing import Any


def snapshot(db, *resources: str) -> dict[str, list[dict[str, Any]]]:
    return {r: sorted((repr(sorted(d.items())) for d in db[r].find({})), key=str) for r in resources}
