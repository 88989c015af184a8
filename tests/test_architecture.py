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
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "perf_counter"),
    ("time", "perf_counter_ns"),
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


def core_violations(tree: ast.AST) -> list[str]:
    """What makes a module impure: third-party imports, I/O or clock modules, I/O builtins."""
    roots = imported_roots(tree) - {"__future__"}
    third_party = {r for r in roots if r not in sys.stdlib_module_names}
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return (
        [f"imports {r}" for r in sorted(third_party - CORE_ALLOWED_THIRD_PARTY)]
        + [f"imports {r}" for r in sorted(roots & CORE_BANNED_STDLIB)]
        + [f"calls {c}" for c in sorted(calls & CORE_BANNED_CALLS)]
    )


def ambient_reads(tree: ast.AST) -> list[str]:
    """Reads of the wall clock, sleeps and unseeded randomness, with their line numbers."""
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
    return bad


@pytest.mark.parametrize("path", sources("core"), ids=lambda p: p.name)
def test_core_is_pure(path):
    tree = ast.parse(path.read_text(), str(path))

    assert not core_violations(tree), f"{path.name}: {core_violations(tree)}"


@pytest.mark.parametrize(
    "path", sources("core") + sources("actors") + sources("sim"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_ambient_clock_or_randomness(path):
    tree = ast.parse(path.read_text(), str(path))

    assert not ambient_reads(tree), f"{path.relative_to(ROOT)}: {ambient_reads(tree)}"


# The checks above must be able to fail: each bad module below is caught, each clean one passes.
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import time\nx = time.time()\n", "time.time at line 2"),
        ("import time\nx = time.monotonic_ns()\n", "time.monotonic_ns at line 2"),
        ("from time import perf_counter\n", "from time import perf_counter at line 1"),
        ("from datetime import datetime\nx = datetime.now()\n", "datetime.now at line 2"),
        ("import random\nx = random.random()\n", "random.random at line 2"),
        ("import uuid\nx = uuid.uuid4()\n", "uuid.uuid4 at line 2"),
    ],
)
def test_ambient_check_catches_clock_and_randomness(source, expected):
    assert expected in ambient_reads(ast.parse(source))


def test_ambient_check_allows_a_seeded_random_and_time_passed_in():
    ok = "import random\nrng = random.Random(7)\ndef f(now_ns: int) -> int:\n    return now_ns + 1\n"

    assert ambient_reads(ast.parse(ok)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import numpy\n", "imports numpy"),
        ("import logging\n", "imports logging"),
        ("from pathlib import Path\n", "imports pathlib"),
        ("x = open('f')\n", "calls open"),
        ("print(1)\n", "calls print"),
    ],
)
def test_core_check_catches_io_and_foreign_imports(source, expected):
    assert expected in core_violations(ast.parse(source))


def test_core_check_allows_msgspec_and_pure_stdlib():
    assert (
        core_violations(ast.parse("import msgspec\nfrom math import gcd\nfrom typing import Final\n")) == []
    )
