"""Market-data recordings: every market-channel frame exactly as received, with its receive time.

A recording is a directory:

* ``manifest.json``: what was recorded (each market's condition id, token ids, tick, minimum size,
  fee schedule and neg-risk event at the start), from where, the files and the counters. Written at
  the start, at each rotation, every minute and at the end (``closed: true`` once closed cleanly);
* ``market-00001-20260710T140000Z.jsonl.gz``, ...: gzip JSONL, one record per line, in order. A new
  file starts every ``rotate_s`` (hourly by default, on the hour of the receive clock) or when a file
  reaches ``rotate_bytes`` compressed.

Records (``kind`` first; ``recv_ns`` is the receive clock, ``adapters.clock.LiveClock``, ns since
the epoch, never decreasing through a recording: records of one instant keep their order, the file's):

* ``file``: opens every file (format, version, sequence number);
* ``frame``: ``frame`` is the frame's text exactly as received (``frame_b64`` for a binary frame);
* ``connect`` (``url``) and ``gap`` (``reason``): a gap record marks where the connection was lost:
  frames between it and the next ``connect`` were never received (the venue sends fresh books after
  the reconnect);
* ``dropped``: ``frames`` frames received since ``since_ns`` were not written because the disk fell
  behind (the queue was full); like a gap, the books are unknown until their next snapshot;
* ``rest_book`` and ``resync``: a REST ``/book`` the client used as a snapshot (``token``, ``body``),
  and an audit that dropped a market's books (``market``, ``reason``);
* ``input``: in a trading session's recording, the engine's own inputs to the market sessions
  (``timer``, ``budget`` with ``room_usdc6``, ``alive``, ``status``, ``pull``), so that a replay
  applies them where they happened (``sim.session_replay``);
* ``exec``: in a paper session's recording, the execution reports its paper venue sent one market's
  session (``market``, ``reports``: the ``core.messages`` reports, each tagged with its ``kind``),
  stamped when the session is about to handle them, so that a replay hands them over where the
  session heard them.

Versions: 2 (this one): in a trading session's recording (``app.session_recording``) a record's
``recv_ns`` is the time the sessions read while they handled it, one reading per input of the
actors' loop (``actors.loop.InputClock``), so a replay reads what the sessions read; two records may
share a time. 1: ``recv_ns`` strictly increased, and a session read the running clock again a little
after its input's stamp (a replay of such a session's recording can part from it where a throttled
requote fell due in between; ``sim.session_replay`` notes it). The records are the same in both, and
this module reads both.

Why gzip: it is in the standard library (no new dependency on the trading path), every machine reads
it (``zcat``), a file cut short by a crash is readable up to its last flush (the writer flushes a
sync point every second), and a feed of a few hundred KB/s compresses on one core with room to spare.
zstd would compress faster and smaller, but needs a third-party package that nothing here has yet.

Never blocking the feed: ``Recorder`` is a ``FeedTap``; the feed's thread only stamps the frame and
appends it to a bounded queue. A writer thread encodes, compresses and writes. When the queue is
full (the disk fell behind) frames are dropped and counted, never waited for; the next record that
fits is preceded by a ``dropped`` record, and the recorder logs it.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import gzip
import logging
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from adapters.clock import LiveClock
from adapters.market_cache import atomic_write_bytes
from core.markets import MarketInfo
from core.messages import ExecEvent
from core.ports import Clock
from core.risk import RiskGate

__all__ = [
    "FORMAT",
    "MANIFEST",
    "Connect",
    "Dropped",
    "FileHeader",
    "Frame",
    "Gap",
    "Input",
    "Manifest",
    "Record",
    "RecordedFile",
    "RecordedMarket",
    "Recorder",
    "Recording",
    "RecordingError",
    "Reports",
    "RestBook",
    "Resync",
    "open_recording",
]

log = logging.getLogger(__name__)

FORMAT: Final = "polymm-market-recording"
VERSION: Final = 2
MANIFEST: Final = "manifest.json"
SUFFIX: Final = ".jsonl.gz"
NS_PER_S: Final = 1_000_000_000

UNITS: Final = {
    "recv_ns": "ns since the Unix epoch, the recorder's receive clock",
    "tick_px": "1e-4 USDC per share (100 = 0.01)",
    "min_qty": "1e-6 shares (5000000 = 5 shares)",
    "fee_rate_ppm": "millionths of the taker fee rate (40000 = 0.04)",
    "rebate_ppm": "millionths: the share of taker fees paid back to makers",
    "room_usdc6": "1e-6 USDC",
}


class RecordingError(ValueError):
    """A recording that cannot be used; ``str(err)`` is one line naming the file."""


# --- the manifest ---------------------------------------------------------------------------------


class RecordedMarket(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """One recorded market and its trading rules at the start of the recording."""

    market: str
    yes_token: str
    no_token: str
    tick_px: int
    min_qty: int
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    fee_rate_ppm: int = 0
    rebate_ppm: int = 0
    question: str = ""
    slug: str = ""
    gamma_id: str = ""
    #: Gamma's fee schedule, when the markets came from Gamma (``feesEnabled``, ``feeType``, exponent).
    fees_enabled: bool | None = None
    fee_type: str = ""
    fee_exponent: int | None = None

    @classmethod
    def from_info(cls, info: MarketInfo, **extra: Any) -> RecordedMarket:
        """From what the quoting path knows of a market (plus Gamma's extra fields, if known)."""
        return cls(
            market=info.market,
            yes_token=info.yes_token,
            no_token=info.no_token,
            tick_px=info.tick_px,
            min_qty=info.min_qty,
            neg_risk=info.neg_risk,
            neg_risk_market_id=info.neg_risk_market_id,
            fee_rate_ppm=info.fee_rate_ppm,
            rebate_ppm=info.rebate_ppm,
            question=info.question,
            **extra,
        )

    def info(self) -> MarketInfo:
        """What the quoting path needs."""
        return MarketInfo(
            market=self.market,
            yes_token=self.yes_token,
            no_token=self.no_token,
            tick_px=self.tick_px,
            min_qty=self.min_qty,
            neg_risk=self.neg_risk,
            neg_risk_market_id=self.neg_risk_market_id,
            fee_rate_ppm=self.fee_rate_ppm,
            rebate_ppm=self.rebate_ppm,
            question=self.question,
        )


class RecordedFile(msgspec.Struct, kw_only=True):
    """One file of the recording and what it holds."""

    name: str
    records: int = 0
    frames: int = 0
    first_ns: int = 0
    last_ns: int = 0
    bytes: int = 0


class Manifest(msgspec.Struct, kw_only=True):
    """``manifest.json`` (see the module docstring)."""

    format: str = FORMAT
    version: int = VERSION
    #: ``record``: ``polymm record``; ``session``: a trading session's own feed.
    kind: Literal["record", "session"] = "record"
    ws_url: str = ""
    clob_url: str = ""
    #: Where the markets' rules came from.
    source: str = ""
    started_ns: int = 0
    started_utc: str = ""
    ended_ns: int = 0
    #: True once the recorder closed cleanly (False: still recording, or it was killed).
    closed: bool = False
    markets: tuple[RecordedMarket, ...] = ()
    files: list[RecordedFile] = msgspec.field(default_factory=list)
    frames: int = 0
    #: Bytes of frame text received (before compression).
    frame_bytes: int = 0
    connects: int = 0
    gaps: int = 0
    #: Frames received but not written: the disk fell behind (see the module docstring).
    dropped_frames: int = 0
    write_error: str = ""
    rotate_s: float = 3600.0
    rotate_bytes: int = 0
    #: A session recording: its mode, config file and ticker period.
    session: dict[str, Any] = msgspec.field(default_factory=dict)
    units: dict[str, str] = msgspec.field(default_factory=lambda: dict(UNITS))


# --- records --------------------------------------------------------------------------------------


class FileHeader(msgspec.Struct, frozen=True, kw_only=True, tag="file", tag_field="kind"):
    """The first record of every file."""

    recv_ns: int
    format: str
    version: int
    seq: int


class Frame(msgspec.Struct, frozen=True, kw_only=True, tag="frame", tag_field="kind"):
    """A data frame exactly as received."""

    recv_ns: int
    frame: str = ""
    frame_b64: str = ""

    def data(self) -> str | bytes:
        """The frame as the client got it: text, or bytes for a binary frame."""
        return base64.b64decode(self.frame_b64) if self.frame_b64 else self.frame


class Connect(msgspec.Struct, frozen=True, kw_only=True, tag="connect", tag_field="kind"):
    """Connected (the subscribe frame went next)."""

    recv_ns: int
    url: str = ""


class Gap(msgspec.Struct, frozen=True, kw_only=True, tag="gap", tag_field="kind"):
    """The connection was lost: nothing was received from here until the next ``connect``."""

    recv_ns: int
    reason: str = ""


class Dropped(msgspec.Struct, frozen=True, kw_only=True, tag="dropped", tag_field="kind"):
    """``frames`` records since ``since_ns`` were not written (the disk fell behind)."""

    recv_ns: int
    frames: int
    since_ns: int


class RestBook(msgspec.Struct, frozen=True, kw_only=True, tag="rest_book", tag_field="kind"):
    """A REST ``/book`` answer the client used as its snapshot of ``token``."""

    recv_ns: int
    token: str
    body: str


class Resync(msgspec.Struct, frozen=True, kw_only=True, tag="resync", tag_field="kind"):
    """The book audit dropped ``market``'s books until a fresh snapshot."""

    recv_ns: int
    market: str
    reason: str = ""


class Input(msgspec.Struct, frozen=True, kw_only=True, tag="input", tag_field="kind"):
    """A trading engine's own input to a market session (session recordings only).

    ``input``: ``timer`` (the ticker's ``Timer``), ``budget`` (``SetBudget`` with ``room_usdc6``),
    ``alive`` (``FeedAlive``), ``status`` (every market asked for its status; ``market`` empty),
    ``pull`` (the shutdown's ``PullQuotes``; ``market`` empty), ``risk`` (the risk manager's
    ``SetRiskGate``, with ``risk_gate``).
    """

    recv_ns: int
    input: Literal["timer", "budget", "alive", "status", "pull", "risk"]
    market: str = ""
    room_usdc6: int | None = None
    risk_gate: RiskGate | None = None


class Reports(msgspec.Struct, frozen=True, kw_only=True, tag="exec", tag_field="kind"):
    """Execution reports the venue sent ``market``'s session (paper session recordings only).

    Stamped on the actors' loop just before the session handles them: a replay hands them over at
    the same point of the session's inputs (``sim.session_replay``).
    """

    recv_ns: int
    market: str
    reports: tuple[ExecEvent, ...]


Record = FileHeader | Frame | Connect | Gap | Dropped | RestBook | Resync | Input | Reports

_DECODER: Final = msgspec.json.Decoder(Record)
_ENC: Final = msgspec.json.Encoder()

# Queue items: (tag, recv_ns, a, b) encoded by the writer thread.
_FRAME, _CONNECT, _GAP, _REST, _RESYNC, _INPUT, _EXEC = range(7)


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_S, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- writing --------------------------------------------------------------------------------------


class Recorder:
    """Writes a recording (see the module docstring); a ``MarketFeedTap`` for ``MarketWsClient``.

    The tap methods (``on_frame`` and the rest) may be called from any thread and never block on the
    disk: they stamp the record with the receive clock and append it to a bounded queue. ``start()``
    starts the writer thread, ``close()`` writes what is queued and the final manifest.
    """

    def __init__(
        self,
        out_dir: str | Path,
        manifest: Manifest,
        *,
        clock: Clock | None = None,
        rotate_s: float = 3600.0,
        rotate_bytes: int = 256 * 1024 * 1024,
        max_queue: int = 200_000,
        flush_s: float = 1.0,
        manifest_every_s: float = 60.0,
        compresslevel: int = 6,
    ) -> None:
        """Prepare ``out_dir`` (created; it must not hold a recording already)."""
        self.dir = Path(out_dir)
        if (self.dir / MANIFEST).exists():
            raise RecordingError(f"{self.dir}: already holds a recording (choose another directory)")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clock: Clock = clock or LiveClock()
        self.manifest = manifest
        manifest.rotate_s = rotate_s
        manifest.rotate_bytes = rotate_bytes
        self._rotate_ns = max(round(rotate_s * NS_PER_S), 1)
        self._rotate_bytes = rotate_bytes
        self._max_queue = max_queue
        self._flush_ns = round(flush_s * NS_PER_S)
        self._manifest_ns = round(manifest_every_s * NS_PER_S)
        self._level = compresslevel
        self._q: collections.deque[tuple[int, int, Any, Any]] = collections.deque()
        self._lock = threading.Lock()
        self._last_ns = 0
        self._closing = False
        self._closed = False
        self._failed = ""
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # Producer-side counters (under the lock).
        self.frames = 0
        self.frame_bytes = 0
        self.connects = 0
        self.gaps = 0
        self.dropped = 0
        self._dropping_since = 0
        self._dropping_count = 0
        self._drop_logged_ns = 0
        # Writer-side state.
        self._gz: Any = None
        self._raw: Any = None
        self._file: RecordedFile | None = None
        self._period = -1
        self._last_flush_ns = 0
        self._last_manifest_ns = 0
        #: For tests: called by the writer thread before each record (e.g. to simulate a slow disk).
        self.before_write: Any = None

    # --- the tap (any thread) ------------------------------------------------------------------

    def on_frame(self, frame: str | bytes) -> None:
        """A data frame as received."""
        self._put(_FRAME, frame, None)

    def on_connect(self, url: str) -> None:
        """Connected to ``url``."""
        self._put(_CONNECT, url, None)

    def on_disconnect(self, reason: str) -> None:
        """The connection is gone: a gap until the next connect."""
        self._put(_GAP, reason, None)

    def on_rest_book(self, token: str, body: bytes) -> None:
        """A REST book the client uses as its snapshot."""
        self._put(_REST, token, body)

    def on_resync(self, market: str, reason: str) -> None:
        """The audit dropped a market's books."""
        self._put(_RESYNC, market, reason)

    def on_input(
        self, kind: str, market: str = "", room_usdc6: int | None = None, gate: RiskGate | None = None
    ) -> None:
        """A trading engine's own input to a market session (``Input``)."""
        self._put(_INPUT, (kind, market, gate), room_usdc6)

    def on_reports(self, market: str, reports: tuple[ExecEvent, ...]) -> None:
        """Execution reports the venue sent ``market``'s session (``Reports``)."""
        self._put(_EXEC, market, reports)

    def _put(self, tag: int, a: Any, b: Any) -> None:
        with self._lock:
            if self._closing:
                return
            # The clock's reading as it is (a session's: the time its sessions read for this input,
            # ``actors.loop.InputClock``), never before the last stamp; records of one instant keep
            # their order (the file's).
            now = self._last_ns = max(self.clock.now_ns(), self._last_ns)
            if tag == _FRAME:
                self.frames += 1
                self.frame_bytes += len(a)
            elif tag == _CONNECT:
                self.connects += 1
            elif tag == _GAP:
                self.gaps += 1
            q = self._q
            if len(q) >= self._max_queue or self._failed:
                self._drop(now)
                return
            if self._dropping_count:
                q.append((-1, now, self._dropping_since, self._dropping_count))
                self._dropping_count = 0
            q.append((tag, now, a, b))

    def _drop(self, now: int) -> None:
        # Under the lock: count it; the next record that fits is preceded by a ``dropped`` record.
        self.dropped += 1
        if not self._dropping_count:
            self._dropping_since = now
        self._dropping_count += 1
        if now - self._drop_logged_ns >= 10 * NS_PER_S:
            self._drop_logged_ns = now
            why = f"cannot write ({self._failed})" if self._failed else "the disk is behind (queue full)"
            log.warning("recorder %s: %s: %d records dropped so far", self.dir, why, self.dropped)

    # --- control -------------------------------------------------------------------------------

    def start(self) -> Recorder:
        """Write the manifest and start the writer thread."""
        m = self.manifest
        m.started_ns = self.clock.now_ns()
        m.started_utc = _utc(m.started_ns)
        self._write_manifest()
        self._thread = threading.Thread(target=self._run, name="polymm-recorder", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 30.0) -> Manifest:
        """Stop taking records, write what is queued, close the file and write the final manifest."""
        with self._lock:
            if self._closed:
                return self.manifest
            self._closing = True
            if self._dropping_count:
                self._q.append((-1, self._last_ns, self._dropping_since, self._dropping_count))
                self._dropping_count = 0
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._closed = True
        m = self.manifest
        m.ended_ns = self._last_ns or self.clock.now_ns()
        m.closed = not (self._thread is not None and self._thread.is_alive())
        self._counters_to_manifest()
        self._write_manifest()
        return m

    def status(self) -> dict[str, Any]:
        """Counters: frames, bytes, connects, gaps, dropped, queued, write error."""
        return {
            "frames": self.frames,
            "frame_bytes": self.frame_bytes,
            "connects": self.connects,
            "gaps": self.gaps,
            "dropped_frames": self.dropped,
            "queued": len(self._q),
            "files": len(self.manifest.files),
            "write_error": self._failed,
        }

    # --- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        q = self._q
        try:
            while True:
                while q:
                    self._write(q.popleft())
                if self._closing and not q:
                    break
                now = self.clock.now_ns()
                if self._gz is not None and now - self._last_flush_ns >= self._flush_ns:
                    self._flush(now)
                if now - self._last_manifest_ns >= self._manifest_ns:
                    self._last_manifest_ns = now
                    self._counters_to_manifest()
                    self._write_manifest()
                self._wake.wait(0.05)
                self._wake.clear()
        except Exception as exc:  # a full disk (OSError), or a bug: say so, drop from now on
            self._failed = f"{type(exc).__name__}: {exc}"
            self.manifest.write_error = self._failed
            log.error("recorder %s: cannot write: %s; every further record is dropped", self.dir, exc)
            q.clear()
        finally:
            self._close_file()

    def _write(self, item: tuple[int, int, Any, Any]) -> None:
        tag, ns, a, b = item
        if self.before_write is not None:
            self.before_write()
        if tag == _FRAME:
            if isinstance(a, str):
                line = b'{"kind":"frame","recv_ns":%d,"frame":%s}\n' % (ns, _ENC.encode(a))
            else:
                line = b'{"kind":"frame","recv_ns":%d,"frame_b64":"%s"}\n' % (ns, base64.b64encode(a))
        elif tag == _INPUT:
            kind, market, gate = a
            line = (
                _ENC.encode(Input(recv_ns=ns, input=kind, market=market, room_usdc6=b, risk_gate=gate))
                + b"\n"
            )
        elif tag == _EXEC:
            line = _ENC.encode(Reports(recv_ns=ns, market=a, reports=b)) + b"\n"
        elif tag == _CONNECT:
            line = _ENC.encode(Connect(recv_ns=ns, url=a)) + b"\n"
        elif tag == _GAP:
            line = _ENC.encode(Gap(recv_ns=ns, reason=a)) + b"\n"
        elif tag == _REST:
            line = _ENC.encode(RestBook(recv_ns=ns, token=a, body=b.decode("utf-8", "replace"))) + b"\n"
        elif tag == _RESYNC:
            line = _ENC.encode(Resync(recv_ns=ns, market=a, reason=b)) + b"\n"
        else:
            line = _ENC.encode(Dropped(recv_ns=ns, frames=b, since_ns=a)) + b"\n"
        self._file_for(ns)
        f = self._file
        assert f is not None
        self._gz.write(line)
        f.records += 1
        if tag == _FRAME:
            f.frames += 1
        if not f.first_ns:
            f.first_ns = ns
        f.last_ns = ns

    def _file_for(self, ns: int) -> None:
        period = ns // self._rotate_ns
        if self._gz is not None and (
            period == self._period and (not self._rotate_bytes or self._raw.tell() < self._rotate_bytes)
        ):
            return
        self._close_file()
        seq = len(self.manifest.files) + 1
        stamp = datetime.fromtimestamp(ns / NS_PER_S, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"market-{seq:05d}-{stamp}{SUFFIX}"
        self._raw = (self.dir / name).open("xb")
        self._gz = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=self._level, mtime=0
        )
        self._period = period
        self._file = RecordedFile(name=name)
        self.manifest.files.append(self._file)
        header = FileHeader(recv_ns=ns, format=FORMAT, version=VERSION, seq=seq)
        self._gz.write(_ENC.encode(header) + b"\n")
        self._file.records += 1
        self._counters_to_manifest()
        self._write_manifest()

    def _flush(self, now: int) -> None:
        # A sync point: everything written so far can be read back even if the process dies now.
        self._last_flush_ns = now
        self._gz.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()
        if self._file is not None:
            self._file.bytes = self._raw.tell()

    def _close_file(self) -> None:
        if self._gz is None:
            return
        gz, raw, self._gz, self._raw = self._gz, self._raw, None, None
        try:
            gz.close()
            if self._file is not None:
                self._file.bytes = raw.tell()
        finally:
            raw.close()

    def _counters_to_manifest(self) -> None:
        m = self.manifest
        with self._lock:
            m.frames, m.frame_bytes, m.connects = self.frames, self.frame_bytes, self.connects
            m.gaps, m.dropped_frames = self.gaps, self.dropped
        m.write_error = self._failed

    def _write_manifest(self) -> None:
        with contextlib.suppress(OSError):  # a full disk: the data files say what they hold anyway
            atomic_write_bytes(self.dir / MANIFEST, msgspec.json.format(_ENC.encode(self.manifest)) + b"\n")


# --- reading --------------------------------------------------------------------------------------


class Recording:
    """A recording opened for reading: its manifest (None for a lone file without one) and files."""

    def __init__(self, path: Path, manifest: Manifest | None, files: list[Path]) -> None:
        self.path = path
        self.manifest = manifest
        self.files = files
        #: Files that ended without their gzip trailer (the recorder was killed): read up to there.
        self.truncated: list[str] = []

    @property
    def name(self) -> str:
        """The recording's directory name (or the file's, for a lone file)."""
        return self.path.name.removesuffix(SUFFIX)

    def markets(self) -> list[MarketInfo]:
        """The recorded markets' rules at the start (empty without a manifest)."""
        return [m.info() for m in self.manifest.markets] if self.manifest is not None else []

    def records(self) -> Iterator[Record]:
        """Every record of every file, in order.

        Raises:
            RecordingError: A file is corrupt (not gzip, bad data, a line that is no record).
        """
        for path in self.files:
            yield from _read_file(path, self.truncated)

    def frames(self) -> Iterator[Frame]:
        """The frames only."""
        for r in self.records():
            if type(r) is Frame:
                yield r


def _read_file(path: Path, truncated: list[str]) -> Iterator[Record]:
    # Streamed, member by member; a file cut short (no gzip trailer) is read up to its last complete
    # line, and said so in ``truncated``.
    n = 0
    pending = b""
    lineno = 0
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with fh:
        d = zlib.decompressobj(wbits=31)
        ended = True
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            while chunk:
                try:
                    out = d.decompress(chunk)
                except zlib.error as exc:
                    raise RecordingError(
                        f"{path}: corrupt gzip data after {n} records ({exc}); not a recording file?"
                    ) from None
                ended = d.eof
                chunk = d.unused_data if d.eof else b""
                if d.eof:
                    d = zlib.decompressobj(wbits=31)
                pending += out
                if b"\n" not in pending:
                    continue
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    lineno += 1
                    if not line.strip():
                        continue
                    try:
                        rec = _DECODER.decode(line)
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        raise RecordingError(
                            f"{path}:{lineno}: not a recording record: {' '.join(str(exc).split())[:160]}"
                        ) from None
                    if n == 0 and type(rec) is not FileHeader:
                        raise RecordingError(f"{path}: does not start with a `file` record: not a recording")
                    if type(rec) is FileHeader and rec.format != FORMAT:
                        raise RecordingError(f"{path}: format {rec.format!r} is not {FORMAT!r}")
                    n += 1
                    yield rec
        if n == 0 and not pending:
            raise RecordingError(f"{path}: empty: not a recording file")
        if not ended or pending.strip():
            truncated.append(path.name)
            log.warning(
                "%s: ends without its gzip trailer (recorder stopped abruptly): read %d records", path, n
            )


def open_recording(path: str | Path) -> Recording:
    """Open a recording directory, or one of its files.

    Raises:
        RecordingError: No such file or directory, no manifest, an unreadable manifest.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError(f"{p}: no such file or directory")
    if p.is_dir():
        manifest = _read_manifest(p / MANIFEST)
        if manifest is None:
            raise RecordingError(f"{p}: no {MANIFEST}: not a polymm recording directory")
        files = sorted(p.glob(f"market-*{SUFFIX}"))
        listed = [p / f.name for f in manifest.files]
        missing = [f.name for f in listed if not f.exists()]
        if missing:
            raise RecordingError(f"{p}: the manifest lists {missing[0]}, which is missing")
        if not files:
            raise RecordingError(f"{p}: no recorded files (market-*{SUFFIX})")
        return Recording(p, manifest, files)
    if not p.name.endswith(SUFFIX):
        raise RecordingError(f"{p}: not a recording (a directory, or a market-*{SUFFIX} file of one)")
    return Recording(p, _read_manifest(p.parent / MANIFEST), [p])


def _read_manifest(path: Path) -> Manifest | None:
    if not path.exists():
        return None
    try:
        m = msgspec.json.decode(path.read_bytes(), type=Manifest)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RecordingError(
            f"{path}: not a recording manifest: {' '.join(str(exc).split())[:160]}"
        ) from None
    if m.format != FORMAT:
        raise RecordingError(f"{path}: format {m.format!r} is not {FORMAT!r}")
    if m.version > VERSION:
        raise RecordingError(f"{path}: version {m.version} is newer than this polymm reads ({VERSION})")
    return m
