"""The run directory of a live, paper or dry-run session, and its event log: segmented, rotated, gzipped.

Every ``run-market-maker`` session gets a directory of its own, never reused or appended to::

    <state_dir>/runs/20250101T120000Z-live-3fa9c2/
        events.000001.jsonl.gz   rotated segments, oldest first (gzip)
        events.000002.jsonl.gz
        events.jsonl             the segment being written
        config.json              the effective config, canonically encoded (its sha256 is the header's)
    <state_dir>/runs/latest  ->  the newest run directory (a symlink, where the filesystem allows one)

The name is the start time (UTC, to the second), the mode and a random id; a name that exists is
never reused (``create_run_dir`` takes another id).

The event log is the simulator's format (``core.eventlog``: one JSON object per line, ``kind``,
``ts_ns`` and ``market`` first). Its first record is the run's header (``kind`` ``run``:
``run_header``), then the ``units`` record. Writing never blocks the caller on the disk: a record
is encoded on the caller's thread and queued; a writer thread of its own appends it to a buffered
file, flushes whenever the queue runs dry, and past ``rotate_bytes`` closes the segment, renames it
``events.NNNNNN.jsonl`` and starts a new ``events.jsonl``; a third thread gzips the renamed segment
(``.gz.tmp``, then renamed, then the plain file removed: a crash at any point leaves a readable
log). ``read_events`` reads every segment in order.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.metadata
import logging
import os
import platform
import queue
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, cast
from urllib.parse import urlsplit, urlunsplit

import msgspec

from core.config import Config
from core.eventlog import BufferSink
from core.markets import MarketInfo

log = logging.getLogger(__name__)

RUNS_DIR: Final = "runs"
LATEST_LINK: Final = "latest"
EVENTS_BASE: Final = "events"
CONFIG_FILE: Final = "config.json"
MODES: Final = ("live", "paper", "dry-run")
BYTES_PER_MB: Final = 1024 * 1024
DEFAULT_ROTATE_BYTES: Final = 100 * BYTES_PER_MB
#: The writer's file buffer: one ``write`` system call per this many bytes under load.
BUFFER_BYTES: Final = 256 * 1024
#: gzip level of rotated segments (6: zlib's default; about 10:1 on event logs, ~50 MB/s a core).
COMPRESS_LEVEL: Final = 6
#: How long ``close`` waits for the writer and a pending compression (a longer one is left to finish
#: as a plain segment, still read by ``read_events``).
CLOSE_TIMEOUT_S: Final = 60.0

_NAME = re.compile(r"^(?P<ts>\d{8}T\d{6}Z)-(?P<mode>live|paper|dry-run)-(?P<id>[0-9a-f]{6,32})$")
_SEGMENT = re.compile(r"^(?P<base>.+)\.(?P<index>\d{6,})\.jsonl(?P<gz>\.gz)?$")


class RunDirError(OSError):
    """A run directory could not be created (its message is one line for the user)."""


# --- names -----------------------------------------------------------------------------------------


def run_dir_name(start_ns: int, mode: str, run_id: str) -> str:
    """``20250101T120000Z-live-3fa9c2``: the start (UTC, to the second), the mode and the run's id."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if not re.fullmatch(r"[0-9a-f]{6,32}", run_id):
        raise ValueError(f"run id {run_id!r} is not 6 to 32 lowercase hex digits")
    if start_ns < 0:
        raise ValueError(f"start {start_ns} ns is before 1970")
    stamp = datetime.fromtimestamp(start_ns // 1_000_000_000, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{mode}-{run_id}"


def parse_run_dir_name(name: str) -> tuple[int, str, str] | None:
    """``(start_s, mode, run_id)`` of a run directory's name, or None for any other name."""
    m = _NAME.match(name)
    if m is None:
        return None
    start = datetime.strptime(m["ts"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return int(start.timestamp()), m["mode"], m["id"]


def new_run_id() -> str:
    """Six random hex digits (16.7 million a second: a collision is retried anyway)."""
    return secrets.token_hex(3)


def create_run_dir(
    state_dir: Path, mode: str, start_ns: int, *, new_id: Callable[[], str] = new_run_id, attempts: int = 16
) -> Path:
    """Make a new, empty run directory under ``state_dir/runs``; an existing one is never reused.

    Raises:
        RunDirError: The directory cannot be made (the filesystem's reason), or every name tried exists.
    """
    runs = state_dir / RUNS_DIR
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {runs}: {exc.strerror or exc}") from None
    for _ in range(attempts):
        path = runs / run_dir_name(start_ns, mode, new_id())
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirError(f"cannot create {path}: {exc.strerror or exc}") from None
        _point_latest(runs, path)
        return path
    raise RunDirError(f"{runs}: every run directory name tried exists ({attempts} tries)")


def _point_latest(runs: Path, path: Path) -> None:
    # Best effort: a filesystem without symlinks still has the run directory itself.
    tmp = runs / f".{LATEST_LINK}.{os.getpid()}.{threading.get_ident()}"
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(path.name, target_is_directory=True)
        os.replace(tmp, runs / LATEST_LINK)
    except OSError as exc:
        log.debug("%s: no %s link (%s)", runs, LATEST_LINK, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()


def latest_run_dir(state_dir: Path) -> Path | None:
    """The newest run directory under ``state_dir/runs`` (the ``latest`` link, else the newest name)."""
    runs = state_dir / RUNS_DIR
    link = runs / LATEST_LINK
    if link.is_dir():
        return runs / os.readlink(link) if link.is_symlink() else link
    named = [p for p in runs.glob("*") if p.is_dir() and parse_run_dir_name(p.name) is not None]
    return max(named, key=lambda p: (p.name[:16], p.stat().st_mtime_ns), default=None)


# --- the header ------------------------------------------------------------------------------------


def canonical_config(cfg: Config) -> bytes:
    """The effective config (every default filled in) as JSON with sorted keys: one text per config."""
    return msgspec.json.encode(cfg, order="sorted")


def config_sha256(cfg: Config) -> str:
    """sha256 (hex) of ``canonical_config``: equal configs hash equal, whatever their YAML looked like."""
    return hashlib.sha256(canonical_config(cfg)).hexdigest()


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials could hide)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "(unparsable URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def polymm_version() -> str:
    """The installed package's version ("unknown" when not installed)."""
    try:
        return importlib.metadata.version("polymm")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def source_commit(repo: Path | None = None) -> str | None:
    """The git commit of the source tree the process runs from, when it is a git checkout."""
    where = repo or Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 (a fixed command; nothing from input)
            [git, "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def market_record(m: MarketInfo) -> dict[str, Any]:
    """A market as the header lists it: every ``MarketInfo`` field (``market`` is the condition id)."""
    rec: dict[str, Any] = msgspec.to_builtins(m)
    return rec


def run_header(
    *,
    mode: str,
    run_dir: Path,
    config_path: str | Path,
    cfg: Config,
    markets: Sequence[MarketInfo],
    wallet: str | None,
    urls: Mapping[str, str | None] | None = None,
    human_log: Path | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """The first record of a run's event log (``kind`` ``run``): what ran, how, for whom, on what.

    Only public facts: the wallet's address (never a key or API credential), URLs without user info
    or query, the config's path and hash (the config itself never holds a secret: keys come from
    the environment or a key file).
    """
    return {
        "polymm_version": polymm_version(),
        "source_commit": commit,
        "python": platform.python_version(),
        "pid": os.getpid(),
        "mode": mode,
        "run_dir": str(run_dir),
        "config_path": str(Path(config_path).resolve()),
        "config_sha256": config_sha256(cfg),
        "wallet": wallet,
        "urls": {k: public_url(v) for k, v in (urls or {}).items() if v},
        "human_log": str(human_log) if human_log is not None else None,
        "markets": [market_record(m) for m in markets],
    }


# --- the segmented writer --------------------------------------------------------------------------


def segment_name(base: str, index: int, *, gz: bool = True) -> str:
    """``events.000001.jsonl.gz``: rotated segment ``index`` (from 1) of ``base``."""
    if index < 1:
        raise ValueError(f"segment index {index} is below 1")
    return f"{base}.{index:06d}.jsonl" + (".gz" if gz else "")


def _rotated(directory: Path, base: str) -> dict[int, Path]:
    # index -> its file: the gzipped one when it exists (it is complete: renamed into place), else plain.
    found: dict[int, Path] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for name in names:
        m = _SEGMENT.match(name)
        if m is None or m["base"] != base:
            continue
        index = int(m["index"])
        if m["gz"] or index not in found:
            found[index] = directory / name
    return found


def segment_paths(directory: Path, base: str = EVENTS_BASE) -> list[Path]:
    """Every segment of the log ``base`` in ``directory``, oldest first, the current one last."""
    rotated = _rotated(directory, base)
    out = [rotated[i] for i in sorted(rotated)]
    current = directory / f"{base}.jsonl"
    if current.exists():
        out.append(current)
    return out


def read_event_lines(directory: Path, base: str = EVENTS_BASE) -> Iterator[bytes]:
    """Every complete line of every segment, in order (without its newline).

    A line without its newline at the very end of a segment (a process killed in mid-write) is not
    a record and is skipped. Meant for a closed log; a live one may rotate between two reads.
    """
    for path in segment_paths(directory, base):
        opener: Callable[[Path], IO[bytes]] = _open_gz if path.suffix == ".gz" else _open_plain
        with opener(path) as f:
            for line in f:
                if line.endswith(b"\n"):
                    yield line[:-1]


def _open_gz(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb"))


def _open_plain(path: Path) -> IO[bytes]:
    return path.open("rb")


def read_events(directory: Path, base: str = EVENTS_BASE) -> Iterator[dict[str, Any]]:
    """Every record of the event log in ``directory`` (a run directory), decoded, in order."""
    dec = msgspec.json.Decoder(dict[str, Any])
    for line in read_event_lines(directory, base):
        yield dec.decode(line)


class SegmentedWriter:
    """Lines appended to ``directory/<base>.jsonl`` on a thread of its own, rotated and gzipped.

    ``write`` only queues (it never touches the disk); ``close`` writes what is queued, flushes,
    syncs and waits for a pending compression. A rotated segment holds at most ``rotate_bytes``
    (unless one line is larger). Failures to write are logged once and counted in ``lines_dropped``;
    they never reach the caller.
    """

    def __init__(
        self,
        directory: Path,
        *,
        base: str = EVENTS_BASE,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        compress_level: int = COMPRESS_LEVEL,
    ) -> None:
        """Open (append to) ``directory/<base>.jsonl`` and start the writer and compressor threads."""
        if rotate_bytes < 1:
            raise ValueError(f"rotate_bytes {rotate_bytes} is below 1")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.base = base
        self.path = directory / f"{base}.jsonl"
        self.rotate_bytes = rotate_bytes
        self.compress_level = compress_level
        rotated = _rotated(directory, base)
        self._next_index = max(rotated, default=0) + 1
        self._f: IO[bytes] | None = self.path.open("ab", buffering=BUFFER_BYTES)
        self._size = os.fstat(self._f.fileno()).st_size
        self._q: queue.SimpleQueue[bytes | threading.Event | None] = queue.SimpleQueue()
        self._zq: queue.SimpleQueue[Path | None] = queue.SimpleQueue()
        #: Lines and bytes written, lines lost to write errors, segments rotated and compressed.
        self.lines_written = 0
        self.bytes_written = 0
        self.lines_dropped = 0
        self.segments_rotated = 0
        self.segments_compressed = 0
        self.last_error = ""
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name=f"polymm-{base}-writer", daemon=True)
        self._zipper = threading.Thread(target=self._compress_loop, name=f"polymm-{base}-gzip", daemon=True)
        self._writer.start()
        self._zipper.start()
        # A plain rotated segment left by a crash before its compression: compress it now.
        for index in sorted(rotated):
            if rotated[index].suffix != ".gz":
                self._zq.put(rotated[index])

    def write(self, line: bytes) -> None:
        """Queue one line (ending with a newline); never blocks on the disk."""
        self._q.put(line)

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every line queued so far is written and flushed to the file (not synced).

        What is flushed survives the process being killed (``kill -9``): an audit record is
        flushed before the command it records is answered. False if that took over ``timeout_s``
        or the log is closed.
        """
        if self._closed:
            return False
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout_s)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write everything queued, flush and sync; wait for pending compressions (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._q.put(None)
        self._writer.join(timeout_s)
        self._zq.put(None)
        self._zipper.join(timeout_s)
        if self._writer.is_alive() or self._zipper.is_alive():
            log.warning("event log %s: still writing or compressing after %.0f s", self.path, timeout_s)

    # --- the writer thread ---------------------------------------------------------------------------

    def _write_loop(self) -> None:
        q = self._q
        done = False
        while not done:
            item = q.get()
            while True:
                if item is None:
                    done = True
                    break
                if isinstance(item, threading.Event):  # flush(): what came before it reaches the file
                    self._flush()
                    item.set()
                else:
                    self._write(item)
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
            # The queue ran dry (or the log closes): what was written so far reaches the file.
            self._flush(sync=done)
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None

    def _write(self, line: bytes) -> None:
        if self._size > 0 and self._size + len(line) > self.rotate_bytes:
            self._rotate()
        f = self._f
        try:
            if f is None:
                f = self._f = self.path.open("ab", buffering=BUFFER_BYTES)
            f.write(line)
        except OSError as exc:
            self._failed("write", exc)
            return
        self._size += len(line)
        self.lines_written += 1
        self.bytes_written += len(line)

    def _flush(self, *, sync: bool = False) -> None:
        f = self._f
        if f is None:
            return
        try:
            f.flush()
            if sync:
                os.fsync(f.fileno())
        except OSError as exc:
            self._failed("flush", exc)

    def _rotate(self) -> None:
        self._flush(sync=True)
        target = self.directory / segment_name(self.base, self._next_index, gz=False)
        try:
            if self._f is not None:
                self._f.close()
            self._f = None
            os.replace(self.path, target)
            self._f = self.path.open("ab", buffering=BUFFER_BYTES)
        except OSError as exc:
            self._failed("rotate", exc)
            return
        self._next_index += 1
        self._size = 0
        self.segments_rotated += 1
        self._zq.put(target)

    def _failed(self, what: str, exc: OSError) -> None:
        self.lines_dropped += what == "write"
        first = not self.last_error
        self.last_error = f"{what}: {exc.strerror or exc}"
        if first:
            why = exc.strerror or exc
            log.error("event log %s: cannot %s (%s); records may be lost", self.path, what, why)

    # --- the compressor thread -----------------------------------------------------------------------

    def _compress_loop(self) -> None:
        while (src := self._zq.get()) is not None:
            try:
                compress_segment(src, self.compress_level)
                self.segments_compressed += 1
            except OSError as exc:
                # The plain segment stays: read_events reads it as it is.
                log.error("event log: cannot compress %s (%s); left uncompressed", src, exc.strerror or exc)


def compress_segment(src: Path, level: int = COMPRESS_LEVEL) -> Path:
    """Gzip ``src`` (``x.jsonl``) into ``x.jsonl.gz`` through a temporary file, then remove ``src``."""
    dst = src.with_name(src.name + ".gz")
    tmp = src.with_name(src.name + ".gz.tmp")
    with src.open("rb") as fi, tmp.open("wb") as raw:
        with gzip.GzipFile(filename=src.name, mode="wb", fileobj=raw, compresslevel=level, mtime=0) as fo:
            shutil.copyfileobj(fi, fo, 1024 * 1024)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, dst)
    src.unlink()
    return dst


# --- the sink --------------------------------------------------------------------------------------


class JsonlFileSink:
    """A thread-safe ``EventSink`` writing the simulator's JSON lines to a rotated, segmented log.

    ``path`` is the current segment (``<dir>/events.jsonl``; an existing file is appended to).
    Records are encoded on the caller's thread and queued for ``SegmentedWriter``. A record after
    ``close`` is dropped (and counted): a late report must never fail the thread that makes it.
    """

    def __init__(self, path: Path, *, rotate_bytes: int = DEFAULT_ROTATE_BYTES) -> None:
        """Open the log whose current segment is ``path``."""
        if not path.name.endswith(".jsonl"):
            raise ValueError(f"{path}: an event log's current segment ends with .jsonl")
        self.path = path
        base = path.name[: -len(".jsonl")]
        self.writer = SegmentedWriter(path.parent, base=base, rotate_bytes=rotate_bytes)
        self._lock = threading.Lock()
        self._buf = BufferSink()
        self._closed = False
        #: Records that came after ``close``.
        self.late_records = 0

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        """Encode one record and queue its line."""
        with self._lock:
            if self._closed:
                self.late_records += 1
                return
            self._buf.record(kind, ts_ns, market, payload)
            self.writer.write(self._buf.lines.pop())

    def flush(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Wait until every record so far is in the file (``SegmentedWriter.flush``); False: not in time."""
        with self._lock:
            if self._closed:
                return False
        return self.writer.flush(timeout_s)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Write everything queued and close the log, waiting at most ``timeout_s`` (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.writer.close(timeout_s)


class RunLog:
    """One session's run directory and its event log (see the module docstring)."""

    def __init__(self, directory: Path, sink: JsonlFileSink) -> None:
        """Use ``create``."""
        self.directory = directory
        self.sink = sink
        parsed = parse_run_dir_name(directory.name)
        self.run_id = parsed[2] if parsed else directory.name

    @classmethod
    def create(
        cls,
        state_dir: Path,
        mode: str,
        cfg: Config,
        *,
        start_ns: int,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        new_id: Callable[[], str] = new_run_id,
    ) -> RunLog:
        """A new run directory with the effective config in it and an open, empty event log.

        Raises:
            RunDirError: The directory or its files cannot be written.
        """
        directory = create_run_dir(state_dir, mode, start_ns, new_id=new_id)
        try:
            (directory / CONFIG_FILE).write_bytes(canonical_config(cfg) + b"\n")
            sink = JsonlFileSink(directory / f"{EVENTS_BASE}.jsonl", rotate_bytes=rotate_bytes)
        except OSError as exc:
            raise RunDirError(f"cannot write in {directory}: {exc.strerror or exc}") from None
        return cls(directory, sink)

    def close(self) -> None:
        """Close the event log."""
        self.sink.close()
