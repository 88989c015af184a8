"""The optional compiled build (``bench/fast.py``, ``just build-fast``): buildable, and out of the repository.

Building it takes about a minute and a C compiler, so the suite does not; it checks on the source what
would make the build differ from pure Python, and that no build output is committed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
try:
    from fast import MODULES, SHARED, source
finally:
    sys.path.pop(0)


@pytest.mark.parametrize("module", MODULES)
def test_a_compiled_module_defines_no_struct_and_no_class_with_keywords(module):
    # mypyc builds such a class without its class keywords (msgspec's frozen, kw_only...) and with its
    # annotations flattened to runtime classes: in the compiled build it would be another class.
    # Such classes go to the package's uncompiled `structs` module (core/structs.py says why).
    tree = ast.parse(source(module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            assert not node.keywords, f"{module}.{node.name}: class keywords"
            assert not any("Struct" in b for b in bases), f"{module}.{node.name}: a msgspec Struct"


def test_the_shared_library_goes_into_a_package_the_installed_command_finds():
    # The installed `polymm` finds polymm's packages (the editable install), not the tree's top-level
    # files: a shared library at the top (mypyc's command-line default) made every command fail to
    # import on a compiled tree.
    package, _, name = SHARED.rpartition(".")
    assert package and name and not source(SHARED).exists()
    assert (ROOT / package.replace(".", "/") / "__init__.py").is_file()
    assert importlib.util.find_spec(package) is not None


def test_the_structs_they_used_to_define_are_still_importable_from_them():
    for module, names in {
        "core.quoting": ["QuoteParams", "Quote", "DesiredOrder", "Reasons", "Decision"],
        "core.book": ["BookView"],
        "core.inventory": ["Inventory"],
        "core.estimators": ["VolState", "VolParams", "FlowState"],
        "core.reconcile": ["Tolerance", "Plan"],
        "venue.exchange": ["QueueModel", "Fill"],
        "sim.runner": ["RunSettings"],
        "actors.session": ["OrderRecord", "SessionStats"],
        "adapters.polymarket.parse": ["VenueOrderUpdate", "VenueMakerFill", "VenueTrade"],
    }.items():
        m = importlib.import_module(module)
        for name in names:
            cls = getattr(m, name)
            assert issubclass(cls, msgspec.Struct)
            assert cls.__module__.endswith(".structs"), (module, name)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_build_output_is_committed():
    tracked = subprocess.run(
        ["git", "ls-files", "*.so", "*.pyd", "build/"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
