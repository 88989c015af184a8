"""A disk cache of the tapes a scenario's source makes, so a second run reads columns, not the source.

Generating the default scenario's 288k events takes ~1.7 s and the BBO-polls source's synthetic flow
~5 us per event, on every run: a sweep pays it once per trial. ``TapeCache.tapes`` keys what a
source made by everything that decides it and stores the tapes' columns in one ``.npz`` (plus their
markets, specials and notes, msgpack-encoded); a later load with the same key is a few ``memcpy``s.

The key is the sha256 of: this module's format version; the sha256 of the source code that makes
tapes (``CODE_FILES``: the sources, the tape, the YES view, the parsers and the messages, read once
per process), so a change to a generator can never be served its old output; the source config and
the seed; each input file's absolute path and the sha256 of its bytes (every file of a recording
directory). A hit is exact by construction: the tapes come back column for column, so a run's
decisions and digest are the same cold or warm (``tests/sim/test_tape_cache.py``).

The cache is an optimisation and never fails a run: an unreadable or corrupt entry is rebuilt (one
warning), an unwritable directory only logs. Where it lives: ``$POLYMM_TAPE_CACHE`` (``off`` turns it
off), else ``$XDG_CACHE_HOME/polymm/tapes`` (``~/.cache/polymm/tapes``). Entries are never evicted
by polymm: delete the directory to reclaim the space (each entry is ~21 bytes per event).
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from array import array
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from core.markets import MarketInfo
from sim.tape import MarketTape, Special

log = logging.getLogger(__name__)

#: Bumped when the on-disk layout changes.
FORMAT: Final = 1
ENV: Final = "POLYMM_TAPE_CACHE"
_ROOT: Final = Path(__file__).resolve().parent.parent
#: The code that decides what a source's tapes hold (relative to the repository root).
CODE_FILES: Final = (
    "sim/tape.py",
    "sim/tape_cache.py",
    "sim/scenario.py",
    "sim/replay_ws.py",
    "sim/sources/__init__.py",
    "sim/sources/synthetic.py",
    "sim/sources/bbo_csv.py",
    "sim/sources/hbt_npz.py",
    "core/yes_view.py",
    "core/messages.py",
    "core/markets.py",
    "core/units.py",
    "core/book.py",
    "adapters/polymarket/parse.py",
    "adapters/recording.py",
)
#: Columns of a tape and their array type codes (``MarketTape``: ts q, op b, px i, qty q).
_COLUMNS: Final = (("ts", "q", np.int64), ("op", "b", np.int8), ("px", "i", np.int32), ("qty", "q", np.int64))
assert all(array(code).itemsize == np.dtype(dt).itemsize for _, code, dt in _COLUMNS)


class _Entry(msgspec.Struct, frozen=True):
    # One tape's non-column parts; its events are rows [start, start + length) of the columns.
    info: MarketInfo
    start: int
    length: int
    specials: list[tuple[int, Special]]
    meta: dict[str, Any]
    source: int  # index into _Header.sources (tapes of one load share their source notes)


class _Header(msgspec.Struct, frozen=True):
    format: int
    key: str
    tapes: list[_Entry]
    sources: list[dict[str, Any]]


_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(_Header)


@cache
def code_digest() -> str:
    """The sha256 of the code that makes tapes (``CODE_FILES``), read once per process."""
    h = hashlib.sha256()
    for rel in CODE_FILES:
        h.update(rel.encode() + b"\0")
        h.update((_ROOT / rel).read_bytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, or of every file under a directory (names and bytes, sorted)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with p.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


class TapeCache:
    """Tapes by key in ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: What the last ``tapes`` call did: "hit", "miss" (built and stored) or "rebuilt" (bad entry).
        self.last = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> TapeCache | None:
        """The cache ``$POLYMM_TAPE_CACHE`` names (``off``: none), else the user's cache directory."""
        e = os.environ if env is None else env
        named = e.get(ENV, "").strip()
        if named.lower() in {"off", "0", "no", "false"}:
            return None
        if named:
            return cls(Path(named).expanduser())
        base = Path(e.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cls(base / "polymm" / "tapes")

    def key(self, spec: object, seed: int, inputs: Iterable[Path]) -> str:
        """The entry key of a source config, a seed and the source's input files."""
        h = hashlib.sha256(b"polymm-tapes %d %s\0" % (FORMAT, code_digest().encode()))
        h.update(msgspec.json.encode(msgspec.to_builtins(spec), order="sorted"))
        h.update(b"\0%d\0" % seed)
        for p in inputs:
            h.update(str(p.resolve()).encode() + b"\0" + file_sha256(p).encode() + b"\0")
        return h.hexdigest()

    def tapes(
        self, spec: object, seed: int, inputs: Sequence[Path], build: Callable[[], list[MarketTape]]
    ) -> list[MarketTape]:
        """The tapes ``build`` makes for (``spec``, ``seed``, ``inputs``): from the cache when stored."""
        key = self.key(spec, seed, inputs)
        path = self.directory / f"{key}.npz"
        self.last = "miss"
        if path.exists():
            try:
                tapes = read(path, key)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, msgspec.DecodeError) as exc:
                log.warning("tape cache: %s unreadable (%s): rebuilding it", path, exc)
                self.last = "rebuilt"
            else:
                self.last = "hit"
                return tapes
        tapes = build()
        try:
            write(path, key, tapes)
        except OSError as exc:
            log.warning(
                "tape cache: cannot store in %s (%s): the run goes on without it", self.directory, exc
            )
        return tapes


def write(path: Path, key: str, tapes: Sequence[MarketTape]) -> None:
    """Store ``tapes`` under ``key`` at ``path`` (written aside, then renamed: readers never see half)."""
    sources: list[dict[str, Any]] = []
    source_ids: dict[int, int] = {}
    entries = []
    start = 0
    for t in tapes:
        sid = source_ids.setdefault(id(t.source), len(sources))
        if sid == len(sources):
            sources.append(t.source)
        entries.append(_Entry(t.info, start, len(t), sorted(t.specials.items()), t.meta, sid))
        start += len(t)
    header = _ENC.encode(_Header(FORMAT, key, entries, sources))
    columns = {
        name: np.concatenate([np.frombuffer(getattr(t, name), dtype=dt) for t in tapes] or [np.empty(0, dt)])
        for name, _, dt in _COLUMNS
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.savez(
                f,
                header=np.frombuffer(header, dtype=np.uint8),
                ts=columns["ts"],
                op=columns["op"],
                px=columns["px"],
                qty=columns["qty"],
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read(path: Path, key: str) -> list[MarketTape]:
    """The tapes stored at ``path``; ValueError when it is not the entry of ``key``."""
    with np.load(path, allow_pickle=False) as z:
        header = _DEC.decode(z["header"].tobytes())
        if header.format != FORMAT or header.key != key:
            raise ValueError(f"entry of another key or format ({header.format})")
        cols = {name: (code, z[name]) for name, code, _ in _COLUMNS}
    out = []
    for e in header.tapes:
        tape = MarketTape(e.info)
        for name, (code, col) in cols.items():
            a = array(code)
            a.frombytes(col[e.start : e.start + e.length].tobytes())
            setattr(tape, name, a)
        tape.specials = dict(e.specials)
        tape.meta = e.meta
        tape.source = header.sources[e.source]
        out.append(tape)
    return out
