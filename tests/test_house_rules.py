"""The house rules, run with the suite so CI keeps them: ruff (lint and
format), import-linter (the layers in the README's Layout section) and vulture (no
dead code). All three are configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

RULES = {
    "ruff lint": [str(BIN / "ruff"), "check", "--no-cache", "."],
    "ruff format": [str(BIN / "ruff"), "format", "--no-cache", "--check", "."],
    "import layers": [str(BIN / "lint-imports"), "--no-cache"],
    "dead code": [str(BIN / "vulture")],
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_house_rule(rule: str) -> None:
    ran = subprocess.run(RULES[rule], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, f"{rule} failed:\n{ran.stdout[-4000:]}\n{ran.stderr[-2000:]}"
