"""The layering rules, enforced on the source: a pure core and no ambient time or randomness."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_ALLOWED_THIRD_PARTY = {"msgspec", "sortedcontainers", "core"}
# Standard-library modules that would let the core do I/O, read the clock or draw randomness.
CORE_BANNED_STDLIB = {
    "asyncio",
    "datetime",
    "glob",
    "http",
    "io",
    "logging",
    "os",
    "pathlib",
    "random",
    "secrets",
    "select",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "ssl",
    "subprocess",
    "sys",
    "tempfile",
    "threading",
    "time",
    "urllib",
    "uuid",
}
CORE_BANNED_CALLS = {"open", "print", "input", "breakpoint", "exec", "eval", "__import__"}
# Ambient reads banned in the deterministic layers (core, actors, sim): time and randomness come in.
AMBIENT = {
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "sleep"),
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
}
RANDOM_OK = {"Random"}


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", sources("core"), ids=lambda p: p.name)
def test_core_imports_only_stdlib_msgspec_sortedcontainers(path):
    tree = ast.parse(path.read_text(), str(path))

    roots = imported_roots(tree) - {"__future__"}

    third_party = {r for r in roots if r not in sys.stdlib_module_names}
    assert third_party <= CORE_ALLOWED_THIRD_PARTY, (
        f"{path.name} imports {third_party - CORE_ALLOWED_THIRD_PARTY}"
    )
    assert not roots & CORE_BANNED_STDLIB, f"{path.name} imports {roots & CORE_BANNED_STDLIB}"


@pytest.mark.parametrize("path", sources("core"), ids=lambda p: p.name)
def test_core_calls_no_io_builtins(path):
    tree = ast.parse(path.read_text(), str(path))

    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}

    assert not calls & CORE_BANNED_CALLS, f"{path.name} calls {calls & CORE_BANNED_CALLS}"


@pytest.mark.parametrize(
    "path", sources("core") + sources("actors") + sources("sim"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_ambient_clock_or_randomness(path):
    tree = ast.parse(path.read_text(), str(path))

    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pair = (node.value.id, node.attr)
            if pair in AMBIENT or (node.value.id == "random" and node.attr not in RANDOM_OK):
                bad.append(f"{pair[0]}.{pair[1]} at line {node.lineno}")
        if isinstance(node, ast.ImportFrom) and node.module in {"time", "random", "uuid"}:
            names = {a.name for a in node.names}
            if node.module != "random" or names - RANDOM_OK:
                bad.append(f"from {node.module} import {', '.join(sorted(names))} at line {node.lineno}")

    assert not bad, f"{path.relative_to(ROOT)}: {bad}"


def test_architecture_check_catches_a_clock_read(tmp_path):
    # The checks above must be able to fail: feed them a module that reads the clock.
    bad = ast.parse("import time\nx = time.time()\n")

    assert "time" in imported_roots(bad) & CORE_BANNED_STDLIB
