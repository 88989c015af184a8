"""The simulator's event log in columns: ``events.npz``, one table of numpy columns per record shape.

A session records ``(kind, ts_ns, market, payload)`` through ``core.eventlog.RowSink`` (a tuple
appended, nothing encoded while the simulation runs); ``ColumnLog`` takes the rows in log order and
turns them into columns: one table per record kind and payload type, whose columns are the fields of
the record's JSON line in their order (``core.eventlog.BufferSink`` is the reference encoding).
Integer and boolean fields are numpy columns (``int64``, ``bool``); any other field (strings, client
ids, a decision's orders and reasons) is one msgpack array per column and chunk, and a record whose
payload is not a struct (a dict, a risk change) keeps its JSON line. ``order`` (one small integer per
record: its table) keeps the log order across tables.

File layout (``numpy.savez_compressed``, no pickled objects): ``header`` is a JSON document (format,
version, the ``units`` record, the tables: name, kind, mode, keys and column encodings, row counts;
the digest) stored as bytes; ``order``; then per table ``tN.KEY`` for every column (an ``mp`` column
is ``tN.KEY`` bytes plus ``tN.KEY.ends``, the end offset of each chunk's msgpack array).

``lines()`` gives the records back as the JSON lines ``BufferSink`` would have written, units header
first (``polymm events`` prints them, ``research.runlog.read_run`` reads them). ``digest()`` is the
sha256 of the header's tables and units, the order and every column's bytes: a deterministic hash of
everything the run decided and did, identical with either engine (the rows arrive in the same order).
"""

from __future__ import annotations

import enum
import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from core.eventlog import BufferSink, message_tag

COLUMNS_NAME: Final = "events.npz"
FORMAT: Final = "polymm-event-columns"
VERSION: Final = 1
#: Rows kept as Python objects before they become a chunk of columns (bounds the memory of a long run).
CHUNK_ROWS: Final = 65_536

Row = tuple[str, int, str, Any]
_HEAD = frozenset(("kind", "ts_ns", "market"))
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()
_json = msgspec.json.Encoder()


class ColumnFormatError(ValueError):
    """An ``events.npz`` that cannot be read; ``str(err)`` is one line."""


class _Table:
    """One record shape: how its rows become columns (see the module docstring)."""

    __slots__ = ("chunks", "encs", "keys", "kind", "mode", "n", "name", "pending")

    def __init__(self, name: str, kind: str, mode: str, keys: tuple[str, ...], encs: tuple[str, ...]) -> None:
        self.name, self.kind, self.mode, self.keys, self.encs = name, kind, mode, keys, encs
        self.pending: list[Row] = []
        self.chunks: list[list[Any]] = [[] for _ in keys]  # per column: its chunks
        self.n = 0

    def flush(self) -> None:
        """Turn the pending rows into a chunk of each column."""
        if self.pending:
            for k, chunk in enumerate(self._chunk(self.pending)):
                self.chunks[k].append(chunk)
            self.n += len(self.pending)
            self.pending.clear()

    def _chunk(self, rows: list[Row]) -> list[Any]:
        if self.mode == "line":
            cols: list[Any] = [
                [r[1] for r in rows],
                [r[2] for r in rows],
                [_line(r) for r in rows],
            ]
        else:
            astuple = msgspec.structs.astuple
            fields = list(zip(*(astuple(r[3]) for r in rows), strict=True))
            head = len(self.keys) - len(fields)
            cols = ([[r[1] for r in rows]] if head >= 1 else []) + (
                [[r[2] for r in rows]] if head == 2 else []
            )
            cols += fields
        out: list[Any] = []
        for enc, col in zip(self.encs, cols, strict=True):
            if enc == "i64":
                out.append(np.array(col, dtype=np.int64))
            elif enc == "bool":
                out.append(np.array(col, dtype=np.bool_))
            else:
                out.append(_enc.encode(list(col)))
        return out

    def arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        """The columns: the chunks so far and the pending rows as the last one (nothing changes)."""
        last = self._chunk(self.pending) if self.pending else [None] * len(self.keys)
        out: dict[str, npt.NDArray[Any]] = {}
        for key, enc, done, extra in zip(self.keys, self.encs, self.chunks, last, strict=True):
            chunks = done if extra is None else [*done, extra]
            name = f"{prefix}.{key}"
            if enc == "mp":
                out[name] = np.frombuffer(b"".join(chunks), dtype=np.uint8)
                out[name + ".ends"] = np.cumsum([len(c) for c in chunks], dtype=np.int64)
            else:
                dtype = np.int64 if enc == "i64" else np.bool_
                out[name] = np.concatenate(chunks) if chunks else np.zeros(0, dtype)
        return out


def _line(row: Row) -> bytes:
    sink = BufferSink()
    sink.record(*row)
    return sink.lines[0]


def _column_enc(t: msgspec.inspect.Type) -> str:
    if isinstance(t, msgspec.inspect.BoolType):
        return "bool"
    if isinstance(t, msgspec.inspect.IntType):
        return "i64"
    if isinstance(t, msgspec.inspect.EnumType) and issubclass(t.cls, enum.IntEnum):
        return "i64"
    return "mp"


def _plan(kind: str, cls: type) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(mode, keys after ``kind``, their encodings) for a payload of type ``cls`` logged as ``kind``.

    As ``BufferSink.record`` writes it: a message tagged ``kind`` as encoded, ``ts_ns`` right after
    ``kind`` when it has none (``tagged``); a struct without any head key after ``kind``, ``ts_ns``
    and ``market`` (``headless``); anything else as its JSON line (``line``).
    """
    if issubclass(cls, msgspec.Struct):
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        names = tuple(f.encode_name for f in info.fields)
        encs = tuple(_column_enc(f.type) for f in info.fields)
        omits = (
            cls.__struct_config__.omit_defaults
            or info.array_like
            or any(f.name != f.encode_name for f in info.fields)
        )
        if not omits:
            if message_tag(cls) == kind:
                if "ts_ns" in names:
                    return "tagged", names, encs
                return "tagged", ("ts_ns", *names), ("i64", *encs)
            if not _HEAD.intersection(names) and message_tag(cls) is None:
                return "headless", ("ts_ns", "market", *names), ("i64", "mp", *encs)
    return "line", ("ts_ns", "market", "line"), ("i64", "mp", "mp")


class ColumnLog:
    """A simulation's records as columns (see the module docstring): ``add`` rows, then ``save``."""

    def __init__(self) -> None:
        self.units: bytes = b""
        self.tables: list[_Table] = []
        self._by_type: dict[tuple[str, type], int] = {}
        self._order: list[int] = []
        self._order_chunks: list[npt.NDArray[np.uint16]] = []

    def add(self, rows: Iterable[Row]) -> None:
        """Take rows in log order."""
        by_type = self._by_type
        tables = self.tables
        order = self._order
        for row in rows:
            key = (row[0], type(row[3]))
            ti = by_type.get(key)
            if ti is None:
                mode, keys, encs = _plan(*key)
                ti = by_type[key] = len(tables)
                suffix = sum(t.kind == row[0] for t in tables)
                tables.append(_Table(f"{row[0]}.{suffix}" if suffix else row[0], row[0], mode, keys, encs))
            order.append(ti)
            tables[ti].pending.append(row)
        if len(order) >= CHUNK_ROWS:
            self._flush()

    def _flush(self) -> None:
        for t in self.tables:
            t.flush()
        if self._order:
            self._order_chunks.append(np.array(self._order, dtype=np.uint16))
            self._order.clear()

    def __len__(self) -> int:
        return sum(t.n + len(t.pending) for t in self.tables)

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
                    "rows": t.n + len(t.pending),
                }
                for t in self.tables
            ],
        }

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Every column by its name in the file, the rows not yet in a chunk as the last chunk.

        Reading changes nothing: chunks end every ``CHUNK_ROWS`` rows of ``add`` alone, so the
        bytes (and the digest) depend only on the rows and the order they came in.
        """
        order = [*self._order_chunks, np.array(self._order, dtype=np.uint16)]
        out: dict[str, npt.NDArray[Any]] = {"order": np.concatenate(order)}
        for i, t in enumerate(self.tables):
            out |= t.arrays(f"t{i}")
        return out

    def digest(self) -> str:
        """The sha256 of the log's content (see the module docstring)."""
        return _digest(self.header(), self.arrays())

    def save(self, path: Path) -> str:
        """Write ``events.npz`` to ``path``; returns its digest."""
        arrays = self.arrays()
        header = self.header()
        digest = _digest(header, arrays)
        header["digest"] = digest
        with path.open("wb") as f:
            head = np.frombuffer(_json.encode(header), np.uint8)
            np.savez_compressed(f, header=head, **arrays)  # type: ignore[arg-type]
        return digest


def _digest(header: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> str:
    h = hashlib.sha256()
    h.update(_json.encode({k: header[k] for k in ("format", "version", "units", "tables")}))
    for name in sorted(arrays):
        a = arrays[name]
        h.update(b"\n%s:%s:%d\n" % (name.encode(), a.dtype.str.encode(), a.size))
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


class ColumnReader:
    """An event-columns log opened for reading: its units record and its records as JSON lines.

    Lazy: a column is decompressed when a table that needs it is read (``--kind`` reads only its own).
    """

    def __init__(self, header: dict[str, Any], arrays: Mapping[str, npt.NDArray[Any]], name: str) -> None:
        """``arrays``: the columns by name (an open ``.npz`` or ``ColumnLog.arrays()``)."""
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
        arrays = log.arrays()
        header = log.header()
        header["digest"] = _digest(header, arrays)
        return cls(header, arrays, "the run's log")

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
        return _digest(self.header, {n: self.arrays[n] for n in list(self.arrays) if n != "header"})

    def all_lines(self) -> list[bytes]:
        """The units line and every record's line: the log as ``BufferSink`` would have written it."""
        return [self.units_line(), *self.lines()]
