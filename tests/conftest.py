"""Shared test setup: hypothesis profiles, fixture paths, and no leftover actors."""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pykka
import pytest
from hypothesis import HealthCheck, settings

from app.process import restore_default_recursion_limit

# The suite's default ("ci", what `.ci/run` and the README's test command run) is derandomized: the
# gate gives the same verdict on every run of the same tree. Exploration is random: "dev" for the
# same number of fresh examples each run, "nightly" (`just nightly`) for many more.
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("nightly", max_examples=2_000, deadline=None, stateful_step_count=200)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci"))

FIXTURES = Path(__file__).parent / "fixtures"

# polymm sim's tape cache (sim.tape_cache) in a directory of this test session's own, inherited by
# the CLI subprocesses: the suite never reads or fills the user's ~/.cache, and its runs of one
# scenario share their tapes (a hit is exact: tests/sim/test_tape_cache.py).
if "POLYMM_TAPE_CACHE" not in os.environ:
    os.environ["POLYMM_TAPE_CACHE"] = _tapes = tempfile.mkdtemp(prefix="polymm-tapes-")
    atexit.register(shutil.rmtree, _tapes, ignore_errors=True)


#: The modules of the optional compiled build (``just build-fast``) that import compiled here.
COMPILED: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    try:
        from fast import MODULES, stale  # noqa: PLC0415 (bench/ is not a package: on the path for this import only)
    finally:
        sys.path.pop(0)
    if old := stale():
        # Python imports a module's .so before its .py: the suite would test the code of the last build.
        pytest.exit(f"stale compiled build of {', '.join(old)}: just build-fast again, or just clean-fast", 2)
    COMPILED[:] = [m for m in MODULES if not (importlib.import_module(m).__file__ or "").endswith(".py")]


def pytest_report_header() -> str:
    # The reference is pure Python (what CI tests); a tree built with `just build-fast` says so.
    if not COMPILED:
        return "polymm: pure Python"
    return f"polymm: COMPILED modules in use (just clean-fast to test pure Python): {', '.join(COMPILED)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if COMPILED:
        skip = pytest.mark.skip(reason="patches a compiled class (just clean-fast to run it)")
        for item in items:
            if item.get_closest_marker("pure_python"):
                item.add_marker(skip)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _stop_all_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


@pytest.fixture(autouse=True)
def _default_recursion_limit() -> Iterator[None]:
    # Importing the emulator or the venue SDK pulls in py_ecc, which raises the recursion limit to
    # 100,000; the trading process puts it back (app.process), so every test runs as it would.
    restore_default_recursion_limit()
    yield
