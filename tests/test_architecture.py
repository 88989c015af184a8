"""The layering rules, enforced on the source: a pure core and venue model, no ambient time or randomness,
imports only in the allowed directions between the top-level packages, and no import cycle."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_ALLOWED_THIRD_PARTY = {"msgspec", "sortedcontainers", "core", "venue"}
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


@pytest.mark.parametrize("path", sources("core") + sources("venue"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_and_venue_model_are_pure(path):
    tree = ast.parse(path.read_text(), str(path))

    assert not core_violations(tree), f"{path.relative_to(ROOT)}: {core_violations(tree)}"


@pytest.mark.parametrize(
    "path",
    sources("core") + sources("venue") + sources("actors") + sources("sim"),
    ids=lambda p: str(p.relative_to(ROOT)),
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


# --- the import graph ------------------------------------------------------------------------------
#
# Which top-level package may import which (docs/architecture.md, "Layers"). Every import counts: at
# module level, inside a function, or under ``TYPE_CHECKING`` (a type is a dependency too).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "venue": frozenset({"core"}),
    "actors": frozenset({"core"}),
    "adapters": frozenset({"core", "venue"}),
    "sim": frozenset({"core", "venue", "actors", "adapters"}),
    "emulator": frozenset({"core", "venue", "adapters", "sim"}),
    "research": frozenset({"core", "venue", "sim"}),
    "app": frozenset({"core", "venue", "actors", "adapters", "sim", "emulator", "research"}),
    "bench": frozenset({"core", "venue", "actors", "adapters", "sim", "emulator", "research", "app"}),
    "tests": frozenset(
        {"core", "venue", "actors", "adapters", "sim", "emulator", "research", "app", "bench"}
    ),
}
PACKAGES = tuple(ALLOWED)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str, tuple[str, ...]]]:
    """``(line, module, names)`` of every import in ``source`` (``names`` of a ``from`` import, which
    may be submodules), relative imports resolved against ``module``."""
    pkg = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[int, str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, ()) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*up, *([node.module] if node.module else [])])
            out.append((node.lineno, base, tuple(a.name for a in node.names)))
    return out


def import_graph(files: dict[str, tuple[str, bool, str]]) -> dict[str, dict[str, tuple[str, int]]]:
    """module -> {imported module of ours: (where, line)}, from ``{module: (source, is_package, where)}``.

    ``from m import n`` is an import of the submodule ``m.n`` when there is one, else of ``m``.
    """

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, tuple[str, int]]] = {}
    for mod, (source, is_package, where) in files.items():
        edges = graph.setdefault(mod, {})
        for line, base, names in imports_of(source, mod, is_package):
            subs = [f"{base}.{n}" for n in names if f"{base}.{n}" in files]
            targets = subs if subs and len(subs) == len(names) else [*subs, resolve(base)]
            for target in targets:
                if target is not None and target != mod and target not in edges:
                    edges[target] = (where, line)
    return graph


def backward_arrows(graph: dict[str, dict[str, tuple[str, int]]]) -> list[str]:
    """Every import between top-level packages that ``ALLOWED`` does not allow, named."""
    bad = []
    for mod, edges in sorted(graph.items()):
        src = mod.split(".")[0]
        for target, (where, line) in sorted(edges.items()):
            dst = target.split(".")[0]
            if src in ALLOWED and dst != src and dst not in ALLOWED[src]:
                may = ", ".join(sorted(ALLOWED[src])) or "nothing of ours"
                bad.append(f"{where}:{line} imports {target} ({src} may import: {may})")
    return bad


def cycles(graph: dict[str, dict[str, tuple[str, int]]]) -> list[str]:
    """Each import cycle between modules, as the chain of imports that closes it (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for comp in found:
        members = set(comp)
        # One closed walk through the component from its first module, each step an import.
        path, seen = [comp[0]], {comp[0]}
        while True:
            nxt = sorted(w for w in graph[path[-1]] if w in members)
            step = next((w for w in nxt if w not in seen), None) or next(w for w in nxt if w in path)
            path.append(step)
            if step in seen:
                break
            seen.add(step)
        walk = path[path.index(path[-1]) :]
        out.append(
            "cycle: "
            + " -> ".join(f"{graph[a][b][0]}:{graph[a][b][1]} imports {b}" for a, b in pairwise(walk))
        )
    return out


def project_files(root: Path = ROOT) -> dict[str, tuple[str, bool, str]]:
    files = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            where = str(path.relative_to(root))
            files[module_name(path, root)] = (path.read_text(), path.name == "__init__.py", where)
    return files


def test_imports_go_only_in_the_allowed_directions():
    bad = backward_arrows(import_graph(project_files()))

    assert not bad, "backward imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(import_graph(project_files()))

    assert not found, "import cycles:\n" + "\n".join(found)


def test_every_top_level_package_has_its_directions():
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}

    assert ours <= set(ALLOWED), f"add {sorted(ours - set(ALLOWED))} to ALLOWED (and to docs/architecture.md)"


# The graph checks must be able to fail: the arrows and the cycle that issue #13 removed are caught,
# each named by the import that makes it.
def _graph(modules: dict[str, str]) -> dict[str, dict[str, tuple[str, int]]]:
    files = {}
    for mod, source in modules.items():
        is_package = mod.endswith(".__init__")
        name = mod.removesuffix(".__init__")
        files[name] = (source, is_package, name.replace(".", "/") + ("/__init__.py" if is_package else ".py"))
    return import_graph(files)


def test_a_backward_arrow_is_named():
    graph = _graph(
        {
            "adapters.paper": "from actors.market import ExecBatch\nfrom venue.exchange import SimExchange\n",
            "actors.market": "if TYPE_CHECKING:\n    from sim.runner import Lane\n",
            "sim.runner": "from actors.session import MarketSession\n",
            "actors.session": "",
            "venue.exchange": "",
        }
    )

    assert backward_arrows(graph) == [
        "actors/market.py:2 imports sim.runner (actors may import: core)",
        "adapters/paper.py:1 imports actors.market (adapters may import: core, venue)",
    ]


def test_a_cycle_is_named_with_its_imports():
    graph = _graph(
        {
            "actors.market": "import logging\nfrom sim.runner import Lane\n",
            "sim.runner": "def run():\n    from actors.market import ActorWindowRunner\n",
            "sim.tape": "from . import runner\n",
        }
    )

    assert cycles(graph) == [
        "cycle: actors/market.py:2 imports sim.runner -> sim/runner.py:2 imports actors.market"
    ]


def test_relative_and_package_imports_resolve():
    graph = _graph(
        {
            "sim.__init__": "from .tape import MarketTape\n",
            "sim.tape": "from . import runner\n",
            "sim.runner": "from sim import tape, X\nimport core.units\n",
            "core.__init__": "",
            "core.units": "",
        }
    )

    assert graph == {
        "sim": {"sim.tape": ("sim/__init__.py", 1)},
        "sim.tape": {"sim.runner": ("sim/tape.py", 1)},
        "sim.runner": {
            "sim.tape": ("sim/runner.py", 1),
            "sim": ("sim/runner.py", 1),
            "core.units": ("sim/runner.py", 2),
        },
        "core": {},
        "core.units": {},
    }


# --- the venue client (issue #11) --------------------------------------------------------------------
#
# polymm trades through the venue's official SDK (polymarket-client). The deprecated py-clob-client-v2
# (and the order-signing packages it brings) is a test-time client only: no shipped package imports it
# and the runtime dependencies do not name it, so a fresh `pip install .` trades without it.
DEPRECATED_CLIENT = {"py_clob_client_v2", "py_order_utils", "poly_eip712_structs"}
SHIPPED = ("core", "venue", "actors", "adapters", "sim", "app", "emulator", "research")


def deprecated_client_imports(source: str) -> set[str]:
    return imported_roots(ast.parse(source)) & DEPRECATED_CLIENT


def test_no_shipped_package_imports_the_deprecated_venue_client():
    found = {
        str(path.relative_to(ROOT)): sorted(deprecated_client_imports(path.read_text()))
        for package in SHIPPED
        for path in sources(package)
        if deprecated_client_imports(path.read_text())
    }

    assert not found, f"the deprecated client is for tests only: {found}"
    assert deprecated_client_imports("def f():\n    from py_clob_client_v2.client import ClobClient\n")


def test_the_runtime_dependencies_are_the_official_client_not_the_deprecated_one():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    shipped = set(project.get("optional-dependencies", {})) - {"dev"}

    assert "polymarket-client" in runtime
    assert "py-clob-client-v2" not in runtime
    for extra in shipped:  # an extra users install (classify, research...) must not bring it back
        deps = project["optional-dependencies"][extra]
        assert not any(d.lower().startswith("py-clob-client") for d in deps), extra
