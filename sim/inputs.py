"""A simulation's input identity: what makes its market data reproducible, kept beside its log.

The simulator does not copy its input into the run directory. It writes ``input.json``: the
scenario as it ran (source, seed, venue model: ``Scenario`` as builtins), the directory its relative
data paths start from, and the path and sha256 of every file the source reads (none for a generated
source: its parameters and seed are the identity). ``load_input_tapes`` re-reads the input through
the same loader the simulator used (``sim.scenario.scenario_tapes``) after checking every file's
sha256, so a reader (``research.runlog.read_run``) rebuilds the market data the run saw.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

import msgspec

from sim.scenario import Scenario, input_files, scenario_tapes
from sim.tape import MarketTape

INPUT_NAME: Final = "input.json"


class InputError(ValueError):
    """An input that cannot be re-read as the run read it; ``str(err)`` is one line."""


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def input_identity(sc: Scenario, base_dir: Path) -> dict[str, Any]:
    """``input.json``'s content for a run of ``sc`` whose relative data paths start at ``base_dir``."""
    return {
        "about": "the simulation's input: the scenario as run (seed included), where its relative data "
        "paths start, and the path and sha256 of each file its source reads (none: a generated source, "
        "reproduced from its parameters and seed)",
        "scenario": msgspec.to_builtins(sc),
        "base_dir": str(base_dir.resolve()),
        "files": [{"path": str(p), "sha256": file_sha256(p)} for p in input_files(sc, base_dir)],
    }


def write_input_identity(run_dir: Path, sc: Scenario, base_dir: Path) -> None:
    """Write ``run_dir/input.json`` (see the module docstring)."""
    body = msgspec.json.format(msgspec.json.encode(input_identity(sc, base_dir)))
    (run_dir / INPUT_NAME).write_bytes(body + b"\n")


class _File(msgspec.Struct, forbid_unknown_fields=True):
    path: str
    sha256: str


class _Identity(msgspec.Struct):
    scenario: Scenario
    base_dir: str
    files: list[_File]


def load_input_tapes(run_dir: Path) -> list[MarketTape] | None:
    """The tapes the run in ``run_dir`` read, from its ``input.json``; None when it has none.

    Raises:
        InputError: An unreadable ``input.json``, an input file missing or changed since the run, or a
            source that no longer loads.
    """
    path = run_dir / INPUT_NAME
    if not path.is_file():
        return None
    try:
        ident = msgspec.json.decode(path.read_bytes(), type=_Identity)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InputError(f"{path}: {' '.join(str(exc).split())}") from None
    for f in ident.files:
        p = Path(f.path)
        if not p.is_file():
            raise InputError(f"{path}: the run's input {p} is missing (sha256 {f.sha256[:16]}...)")
        have = file_sha256(p)
        if have != f.sha256:
            raise InputError(
                f"{path}: the run's input {p} changed since the run "
                f"(sha256 {have[:16]}..., the run read {f.sha256[:16]}...)"
            )
    try:
        return scenario_tapes(ident.scenario, Path(ident.base_dir))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: the input no longer loads: {' '.join(str(exc).split())}") from None
