"""The simulator's event log in columns: ``events.npz``, one table of numpy columns per record shape.

A session records ``(kind, ts_ns, market, payload)`` through ``core.eventlog.RowSink``: nothing is
encoded while the lane runs, a struct payload is kept as the tuple of its fields. After each interval
``ColumnLog.add`` takes every lane's rows, in lane order, into columns: one table per record kind and
payload type (``core.eventlog.record_plan``), whose columns are the keys of the record's JSON line in
their order (``core.eventlog.BufferSink`` is the reference encoding). Integer and boolean fields are
numpy columns (``int64``, ``bool``); any other field (strings, client ids, a decision's orders and
reasons) is one msgpack array per batch of ``BATCH_ROWS`` records; a record that is not a plain
struct (a dict: a risk
change, a settlement) keeps its JSON line. ``order`` (one small integer per record: its table)
keeps the log order across tables.

File layout (``numpy.savez_compressed``'s, deflated at level 1; no pickled objects): ``header`` is a
JSON document (format, version, the ``units`` record, the tables: name, kind, mode, keys and column
encodings, row counts;
the digest) stored as bytes; ``order``; then per table ``tN.KEY`` for every column (an ``mp`` column
is ``tN.KEY``, its msgpack arrays end to end, plus ``tN.KEY.ends``, where each one ends).

``ColumnReader`` gives the records back as the JSON lines ``BufferSink`` would have written, units
header first (``polymm events`` prints them, ``research.runlog.read_run`` reads them). ``digest()`` is
the sha256 of the header's tables and units, the order and every column's bytes: a deterministic hash
of everything the run decided and did (the input is not in the log), identical with either engine
(the rows arrive in the same order, so the batches are the same) and unchanged by reading the log
mid-run.

Memory does not grow with the log: each finished chunk and batch goes to the log's spool (an
anonymous temporary file), and ``save`` streams the columns from there into the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from core.eventlog import BufferSink, Rows, RowSink, record_plan

COLUMNS_NAME: Final = "events.npz"
FORMAT: Final = "polymm-event-columns"
VERSION: Final = 1
#: Records whose integer and boolean fields are kept as Python values before they become a numpy
#: chunk (bounds the memory of a long run).
CHUNK_ROWS: Final = 8_192
#: Records of one table that wait as tuples before going into its columns together.
BATCH_ROWS: Final = 512

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()
_json = msgspec.json.Encoder()


class ColumnFormatError(ValueError):
    """An ``events.npz`` that cannot be read; ``str(err)`` is one line."""


class _Spool:
    """Bytes written once and read back later, kept in an anonymous temporary file.

    The columns a run has finished (numpy chunks, msgpack segments) wait here rather than in memory,
    so a run's memory does not grow with its log (a decision is ~600 bytes of columns: a day of data
    over dozens of markets would otherwise hold gigabytes until the log is saved). The file has no
    name (``tempfile.TemporaryFile``): it is gone when the log is, or when the process dies.
    """

    __slots__ = ("_f", "size")

    def __init__(self) -> None:
        self._f: Any = None
        self.size = 0

    def put(self, data: bytes) -> tuple[int, int]:
        """Keep ``data``; returns where it is (offset, length)."""
        if self._f is None:
            self._f = tempfile.TemporaryFile(prefix="polymm-events-")  # noqa: SIM115 (lives with the log)
        self._f.write(data)
        at = self.size
        self.size += len(data)
        return at, len(data)

    def pieces(self, refs: list[tuple[int, int]]) -> Iterator[bytes]:
        """The bytes kept at ``refs``, one piece at a time."""
        if refs:
            self._f.flush()
            fd = self._f.fileno()
            for at, n in refs:
                yield os.pread(fd, n, at)


class _Table:
    """One record shape of the log: its columns so far.

    Rows arrive in batches (a lane's records of one interval) and wait as they are (a tuple of fields
    per record) until ``BATCH_ROWS`` of them go into the columns at once, so no record object lives
    long (the garbage collector never sees many): an integer or boolean column collects plain values
    and becomes a numpy chunk every ``CHUNK_ROWS`` records of the log; any other column makes one
    msgpack array per batch (``ends``: where each one ends). Chunks and arrays go to the log's spool
    as they are made (``numeric`` and ``segments`` say where).
    """

    __slots__ = (
        "encs",
        "keys",
        "kind",
        "market",
        "mode",
        "n",
        "name",
        "numeric",
        "pending",
        "segments",
        "spool",
        "ts",
        "values",
    )

    def __init__(
        self, name: str, kind: str, mode: str, keys: tuple[str, ...], encs: tuple[str, ...], spool: _Spool
    ) -> None:
        self.name, self.kind, self.mode, self.keys, self.encs = name, kind, mode, keys, encs
        self.spool = spool
        self.ts: list[int] = []  # rows waiting for their batch
        self.market: list[str] = []
        self.values: list[Any] = []
        self.pending: list[list[Any]] = [[] for _ in keys]  # integer/boolean columns: values not in a chunk
        self.numeric: list[list[tuple[int, int]]] = [[] for _ in keys]  # ...and their chunks in the spool
        # other columns: a msgpack array per batch in the spool
        self.segments: list[list[tuple[int, int]]] = [[] for _ in keys]
        self.n = 0

    def add(self, rows: Rows) -> None:
        """Take rows (``core.eventlog.Rows`` of this shape) in order."""
        self.ts.extend(rows.ts)
        self.market.extend(rows.market)
        self.values.extend(rows.values)
        self.n += len(rows.ts)
        if len(self.ts) >= BATCH_ROWS:
            for k, col in enumerate(self._batch()):
                if isinstance(col, bytes):
                    self.segments[k].append(self.spool.put(col))
                else:
                    self.pending[k].extend(col)
            self.ts.clear()
            self.market.clear()
            self.values.clear()

    def _batch(self) -> list[Any]:
        # The waiting rows' columns: a msgpack array for each ``mp`` column, values for the others.
        if self.mode == "line":
            lines = [_line(self.kind, *r) for r in zip(self.ts, self.market, self.values, strict=True)]
            cols: list[Any] = [self.ts, self.market, lines]
        else:
            fields = list(zip(*self.values, strict=True))
            cols = [self.ts, self.market][: len(self.keys) - len(fields)] + fields
        return [_enc.encode(col) if enc == "mp" else col for enc, col in zip(self.encs, cols, strict=True)]

    def flush(self) -> None:
        """Turn the integer and boolean values collected into a numpy chunk each."""
        for k, enc in enumerate(self.encs):
            if self.pending[k]:
                self.numeric[k].append(self.spool.put(_numeric(self.pending[k], enc).tobytes()))
                self.pending[k].clear()

    def columns(self, prefix: str) -> Iterator[_Column]:
        """The columns as stored, the waiting rows as the last batch (reading changes nothing)."""
        last: list[Any] = self._batch() if self.ts else [None] * len(self.keys)
        for k, (key, enc) in enumerate(zip(self.keys, self.encs, strict=True)):
            name = f"{prefix}.{key}"
            if enc == "mp":
                lens = [n for _, n in self.segments[k]]
                tail = b""
                if last[k] is not None:
                    tail = last[k]
                    lens.append(len(tail))
                yield _Column(name, _U8, self.segments[k], tail)
                yield _Column(name + ".ends", _I64, [], np.cumsum(lens, dtype=np.int64).tobytes())
            else:
                values = self.pending[k] if last[k] is None else [*self.pending[k], *last[k]]
                tail = _numeric(values, enc).tobytes()
                yield _Column(name, _I64 if enc == "i64" else _BOOL, self.numeric[k], tail)


class _Column(NamedTuple):
    """One column of the file: its bytes are the spool's at ``refs``, then ``tail``."""

    name: str
    dtype: np.dtype[Any]
    refs: list[tuple[int, int]]
    tail: bytes

    def size(self) -> int:
        """Its number of elements."""
        return (sum(n for _, n in self.refs) + len(self.tail)) // self.dtype.itemsize


_U8: Final = np.dtype(np.uint8)
_U16: Final = np.dtype(np.uint16)
_I64: Final = np.dtype(np.int64)
_BOOL: Final = np.dtype(np.bool_)


def _numeric(values: list[Any], enc: str) -> npt.NDArray[Any]:
    # ``fromiter`` with the count: the same array as ``np.array(values, dtype)``, without its type
    # discovery over the list (~30% less for integers, ~40% for the IntEnum columns: side, outcome).
    return np.fromiter(values, dtype=np.int64 if enc == "i64" else np.bool_, count=len(values))


def _line(kind: str, ts_ns: int, market: str, payload: object) -> bytes:
    sink = BufferSink()
    sink.record(kind, ts_ns, market, payload)
    return sink.lines[0]


class ColumnLog:
    """A simulation's records as columns (see the module docstring): ``add`` sinks, then ``save``."""

    def __init__(self) -> None:
        self.units: bytes = b""
        self.tables: list[_Table] = []
        self._spool = _Spool()
        self._by_shape: dict[tuple[str, type], int] = {}
        self._order: list[int] = []
        self._order_chunks: list[tuple[int, int]] = []  # in the spool

    def add(self, sink: RowSink) -> None:
        """Take a sink's rows, in its record order after the rows taken so far; the sink is emptied."""
        if not sink.order:
            return
        tables = self.tables
        for rows in sink.shapes:
            if rows.table < 0:
                rows.table = self._table(rows.kind, rows.cls)
            if rows.ts:
                tables[rows.table].add(rows)
                rows.ts.clear()
                rows.market.clear()
                rows.values.clear()
        self._order.extend(map([rows.table for rows in sink.shapes].__getitem__, sink.order))
        sink.order.clear()
        if len(self._order) >= CHUNK_ROWS:
            self._flush()

    def _table(self, kind: str, cls: type) -> int:
        ti = self._by_shape.get((kind, cls))
        if ti is None:
            mode, keys, encs = record_plan(kind, cls)
            ti = self._by_shape[(kind, cls)] = len(self.tables)
            suffix = sum(t.kind == kind for t in self.tables)
            name = f"{kind}.{suffix}" if suffix else kind
            self.tables.append(_Table(name, kind, mode, keys, encs, self._spool))
        return ti

    def _flush(self) -> None:
        for t in self.tables:
            t.flush()
        if self._order:
            self._order_chunks.append(self._spool.put(np.array(self._order, dtype=np.uint16).tobytes()))
            self._order.clear()

    def __len__(self) -> int:
        return sum(t.n for t in self.tables)

    def header(self) -> dict[str, Any]:
        """The file's header without its digest (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "units": msgspec.json.decode(self.units) if self.units else None,
            "tables": [
                {
                    "name": t.name,
                    "kind": t.kind,
                    "mode": t.mode,
                    "keys": list(t.keys),
                    "encs": list(t.encs),
                    "rows": t.n,
                }
                for t in self.tables
            ],
        }

    def _columns(self) -> Iterator[_Column]:
        # Every column in file order (``_names``). The rows not yet in a chunk come last. Reading
        # changes nothing: chunks end every ``CHUNK_ROWS`` records of ``add`` alone, so the bytes (and
        # the digest) depend only on the records and the order they came in.
        yield _Column("order", _U16, self._order_chunks, np.array(self._order, dtype=np.uint16).tobytes())
        for i, t in enumerate(self.tables):
            yield from t.columns(f"t{i}")

    def iter_arrays(self) -> Iterator[tuple[str, npt.NDArray[Any]]]:
        """Every column by its name in the file, in file order, one column in memory at a time."""
        for c in self._columns():
            data = b"".join([*self._spool.pieces(c.refs), c.tail])
            yield c.name, np.frombuffer(data, dtype=c.dtype)

    def digest(self) -> str:
        """The sha256 of the log's content (see the module docstring)."""
        h = _hasher(self.header())
        for name, a in self.iter_arrays():
            _hash_array(h, name, a)
        return h.hexdigest()

    def save(self, path: Path) -> str:
        """Write ``events.npz`` to ``path``; returns its digest.

        Each column goes from the spool to the file a piece at a time (a batch or a chunk), hashed on
        the way: saving holds no column whole, so its memory does not grow with the log either.
        """
        header = self.header()
        h = _hasher(header)
        # ``numpy.savez_compressed``'s layout (a zip of .npy files), deflated at level 1: a quarter of
        # the time of its default level for a file ~10% larger. The header (with the digest) goes last.
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for c in self._columns():
                n = c.size()
                _hash_head(h, c.name, c.dtype, n)
                with zf.open(f"{c.name}.npy", "w", force_zip64=True) as f:
                    # A plain dtype's descr is its str (numpy's dtype_to_descr, whose stub says a
                    # list: a compiled build checks the call's result against it and fails).
                    npy_header = {"descr": c.dtype.str, "fortran_order": False, "shape": (n,)}
                    np.lib.format.write_array_header_1_0(f, npy_header)
                    for piece in self._spool.pieces(c.refs):
                        h.update(piece)
                        f.write(piece)
                    h.update(c.tail)
                    f.write(c.tail)
            header["digest"] = digest = h.hexdigest()
            with zf.open("header.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(
                    f, np.frombuffer(_json.encode(header), np.uint8), allow_pickle=False
                )
        return digest


def _names(header: dict[str, Any]) -> list[str]:
    # The columns' names in file (and digest) order.
    out = ["order"]
    for i, t in enumerate(header["tables"]):
        for key, enc in zip(t["keys"], t["encs"], strict=True):
            out.append(f"t{i}.{key}")
            if enc == "mp":
                out.append(f"t{i}.{key}.ends")
    return out


def _hasher(header: dict[str, Any]) -> hashlib._Hash:
    h = hashlib.sha256()
    h.update(_json.encode({k: header[k] for k in ("format", "version", "units", "tables")}))
    return h


def _hash_head(h: hashlib._Hash, name: str, dtype: np.dtype[Any], size: int) -> None:
    # What precedes a column's bytes in the digest (``save`` streams the bytes after it).
    h.update(b"\n%s:%s:%d\n" % (name.encode(), dtype.str.encode(), size))


def _hash_array(h: hashlib._Hash, name: str, a: npt.NDArray[Any]) -> None:
    _hash_head(h, name, a.dtype, a.size)
    h.update(np.ascontiguousarray(a).data)


class ColumnReader:
    """An event-columns log opened for reading: its units record and its records as JSON lines.

    Lazy: a column is decompressed when a table that needs it is read (``--kind`` reads only its own).
    """

    def __init__(self, header: dict[str, Any], arrays: Mapping[str, npt.NDArray[Any]], name: str) -> None:
        """``arrays``: the columns by name (an open ``.npz``, or ``ColumnLog.iter_arrays``' items)."""
        if header.get("format") != FORMAT:
            raise ColumnFormatError(f"{name}: not a {FORMAT} file")
        if int(header.get("version", 0)) > VERSION:
            raise ColumnFormatError(
                f"{name}: version {header['version']} is newer than this polymm reads ({VERSION})"
            )
        self.header = header
        self.arrays = arrays
        self.name = name
        self.digest: str = str(header.get("digest", ""))

    @classmethod
    def open(cls, path: Path) -> ColumnReader:
        """Open ``events.npz`` (read into memory compressed; columns decompress on use)."""
        try:
            z = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
            head = msgspec.json.decode(z["header"].tobytes())
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, msgspec.DecodeError) as exc:
            raise ColumnFormatError(
                f"{path}: not a readable event-columns file: {' '.join(str(exc).split())}"
            ) from None
        if not isinstance(head, dict):
            raise ColumnFormatError(f"{path}: not a {FORMAT} file")
        return cls(head, z, str(path))

    @classmethod
    def of(cls, log: ColumnLog) -> ColumnReader:
        """Read a log still in memory (the rows taken so far)."""
        header = log.header()
        header["digest"] = log.digest()
        return cls(header, dict(log.iter_arrays()), "the run's log")

    def units_line(self) -> bytes:
        """The ``units`` record, as the first line of a JSON-lines log."""
        units = self.header.get("units")
        return _json.encode(units) + b"\n" if units else b""

    def _column(self, ti: int, key: str, enc: str) -> list[Any]:
        try:
            a = self.arrays[f"t{ti}.{key}"]
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
            raise ColumnFormatError(f"{self.name}: column t{ti}.{key}: {exc}") from None
        if enc != "mp":
            return a.tolist()  # type: ignore[no-any-return]
        data = a.tobytes()
        out: list[Any] = []
        start = 0
        for end in self.arrays[f"t{ti}.{key}.ends"].tolist():
            out.extend(_dec.decode(data[start:end]))
            start = end
        return out

    def table_lines(self, ti: int, market: str | None = None) -> list[bytes | None]:
        """Table ``ti``'s records as JSON lines, in its order (None: another market's, when filtered)."""
        t = self.header["tables"][ti]
        keys, encs = t["keys"], t["encs"]
        try:
            cols = [self._column(ti, k, e) for k, e in zip(keys, encs, strict=True)]
        except (KeyError, msgspec.DecodeError) as exc:
            raise ColumnFormatError(f"{self.name}: table {t['name']}: {exc}") from None
        markets = cols[keys.index("market")] if "market" in keys else None
        if t["mode"] == "line":
            lines: list[bytes | None] = list(cols[2])
        else:
            kind = t["kind"]
            lines = [
                _json.encode({"kind": kind} | dict(zip(keys, vals, strict=True))) + b"\n"
                for vals in zip(*cols, strict=True)
            ]
        if market is not None:
            if markets is None:
                return [None] * len(lines)
            lines = [ln if m == market else None for ln, m in zip(lines, markets, strict=True)]
        return lines

    def lines(self, kinds: Iterable[str] | None = None, market: str | None = None) -> Iterator[bytes]:
        """The records as JSON lines in log order (units header not included), optionally filtered."""
        want = set(kinds) if kinds is not None else None
        tables = self.header["tables"]
        per: list[list[bytes | None] | None] = [
            self.table_lines(i, market) if want is None or t["kind"] in want else None
            for i, t in enumerate(tables)
        ]
        pos = [0] * len(tables)
        for ti in self.arrays["order"].tolist():
            rows = per[ti]
            if rows is None:
                continue
            line = rows[pos[ti]]
            pos[ti] += 1
            if line is not None:
                yield line

    def recompute_digest(self) -> str:
        """The digest of the content (compare with ``digest``, the one written)."""
        h = _hasher(self.header)
        for name in _names(self.header):
            try:
                _hash_array(h, name, self.arrays[name])
            except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
                raise ColumnFormatError(f"{self.name}: column {name}: {exc}") from None
        return h.hexdigest()

    def all_lines(self) -> list[bytes]:
        """The units line and every record's line: the log as ``BufferSink`` would have written it."""
        return [self.units_line(), *self.lines()]
