"""research sits above sim and beside app: the engine never imports it, and it never imports the app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOWER = ("core", "actors", "adapters", "sim", "emulator")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("package", LOWER)
def test_the_engine_never_imports_research(package):
    bad = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in sorted((ROOT / package).rglob("*.py"))
        for m in imports(p)
        if m == "research" or m.startswith("research.")
    ]
    assert bad == []


def test_research_never_imports_the_app_or_live_adapters():
    bad = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in sorted((ROOT / "research").rglob("*.py"))
        for m in imports(p)
        if m.split(".")[0] in ("app", "adapters", "emulator")
    ]
    assert bad == []


def test_the_check_sees_an_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from research.report import write_report\nimport app.cli\n")
    assert imports(f) == {"research.report", "app.cli"}
