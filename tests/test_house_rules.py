"""The house rules, run with the suite so CI keeps them: ruff (lint and
format), import-linter (the layers: docs/architecture.md) and vulture (no
dead code). All three are configured in pyproject.toml."""

from __future__ import annotations

import shutil
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


# --- the rules can fail: each catches a planted breach in a copy of the tree ------------------


def planted_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    for name in ("registry", "schemas"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "static"))
    for name in ("pyproject.toml", "settings.py", "run.py", "vulture_allowlist.py"):
        shutil.copy(ROOT / name, copy / name)
    (copy / "bench").mkdir()
    (copy / "tests" / "support").mkdir(parents=True)
    return copy


@pytest.mark.parametrize(
    "module,planted,contract",
    [
        ("registry/store/clock.py", "from registry.market import rules", "inside the registry: UI, hooks"),
        ("registry/admin_ui/series.py", "from registry.hooks import access", "the admin UI talks to the registry"),
        ("registry/api/guards.py", "from registry import create_app", "no layer imports the composition root"),
        ("schemas/common.py", "from registry.store import clock", "top level: the registry above the schemas"),
        ("registry/store/geo.py", "from registry.store import geo_filters", "no import cycle between sibling"),
    ],
)
def test_import_linter_refuses_an_import_against_the_layers(tmp_path, module, planted, contract):
    tree = planted_copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{planted}  # noqa\n")
    ran = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(BIN), "PYTHONPATH": str(tree)},
    )
    assert ran.returncode != 0, ran.stdout[-2000:]
    report = " ".join(ran.stdout.split())  # contract names wrap across lines
    named = report[report.index(contract) :]
    assert named.index("BROKEN") < named.index("KEPT") if "KEPT" in named else "BROKEN" in named, ran.stdout[-3000:]


def test_vulture_reports_a_function_nothing_calls(tmp_path):
    tree = planted_copy(tmp_path)
    (tree / "registry" / "store" / "clock.py").open("a").write("\n\ndef forgotten_helper() -> int:\n    return 1\n")
    ran = subprocess.run([str(BIN / "vulture")], cwd=tree, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode != 0 and "forgotten_helper" in ran.stdout
