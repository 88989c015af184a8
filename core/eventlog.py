"""The event log's records: one JSON object per line with ``kind``, ``ts_ns`` and ``market`` first.

``BufferSink`` is the ``core.ports.EventSink`` that encodes each record into its line and keeps the
lines in memory: a live session's run directory (``adapters.runlog``) hands them to its writer thread,
and a dry-run replay writes them. ``RowSink`` encodes nothing: it keeps each record as the tuple it
was given, and the simulator turns the rows into columns (``sim.eventcols``) whose JSON lines are the
ones ``BufferSink`` writes. Pure: no I/O.

The log is self-describing: its first line is a ``units`` record (``units_record``) that says, for
every integer unit the log uses, which fields carry it and what one unit is worth (``scale``, an exact
decimal string), so a reader computes ``value * scale`` in the named unit and never hard-codes an
internal unit.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from core.units import units_header

_ENC = msgspec.json.Encoder()
_HEAD_KEYS = ("kind", "ts_ns", "market")


class BufferSink:
    """An ``EventSink`` that keeps encoded lines in memory until the runner writes them."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        """Append one line: the payload's fields follow ``kind``, ``ts_ns`` and ``market``.

        A tagged message (``core.messages``) already starts with its ``kind`` and carries its
        ``market``: it is written as encoded, with ``ts_ns`` spliced in when it has none. Other
        structs and dicts get the three head keys in front of their own fields.
        """
        cls = type(payload)
        plan = _PLANS.get(cls)
        if plan is None:
            plan = _PLANS[cls] = _plan(cls)
        tag, has_ts, headless = plan
        if tag == kind:
            body = _ENC.encode(payload)
            if not has_ts:
                cut = body.index(b",") + 1
                body = b'%s"ts_ns":%d,%s' % (body[:cut], ts_ns, body[cut:])
            self.lines.append(body + b"\n")
            return
        if headless:
            body = _ENC.encode(payload)
            head = b'{"kind":"%s","ts_ns":%d,"market":"%s"' % (kind.encode(), ts_ns, market.encode())
            self.lines.append(head + (b"," + body[1:] if len(body) > 2 else b"}") + b"\n")
            return
        data: Any = msgspec.to_builtins(payload)
        line: dict[str, Any] = {"kind": kind, "ts_ns": ts_ns, "market": market}
        if isinstance(data, dict):
            for k, v in data.items():
                if k not in _HEAD_KEYS:
                    line[k] = v
        else:
            line["data"] = data
        self.lines.append(_ENC.encode(line) + b"\n")


class Rows:
    """The records of one shape (kind and payload type) a ``RowSink`` kept, as parallel lists.

    ``values`` holds each payload's fields as a tuple (``msgspec.structs.astuple``) when the
    payload is a struct with a column plan (``record_plan``; ``tuples``), else the payload itself.
    ``idx``: its place in the sink's ``shapes``.
    """

    __slots__ = ("cls", "idx", "kind", "market", "mode", "table", "ts", "tuples", "values")

    def __init__(self, kind: str, cls: type, mode: str, idx: int = -1) -> None:
        self.kind, self.cls, self.mode, self.idx = kind, cls, mode, idx
        self.tuples = mode != "line"
        #: Where the consumer of the rows puts this shape (``sim.eventcols``: its table), -1 until then.
        self.table = -1
        self.ts: list[int] = []
        self.market: list[str] = []
        self.values: list[Any] = []


class RowSink:
    """An ``EventSink`` that keeps records as rows of plain values: nothing is encoded per record.

    Each record goes to the ``Rows`` of its shape, and ``order`` keeps the shapes in record order.
    A struct payload is kept as the tuple of its fields: plain values the garbage collector stops
    tracking, so a long buffer costs the run nothing later. Payloads are frozen structs or dicts
    built for the record, so keeping a dict is safe.
    """

    __slots__ = ("_by_kind", "_index", "order", "shapes")

    def __init__(self) -> None:
        self.order: list[int] = []
        self.shapes: list[Rows] = []
        self._index: dict[tuple[str, type], Rows] = {}
        #: Per kind, the shape of its last record: a kind nearly always comes with one payload type,
        #: so a record looks its shape up by the kind alone (no key tuple made and hashed).
        self._by_kind: dict[str, Rows] = {}

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        """Keep one record."""
        rows = self._by_kind.get(kind)
        if rows is None or rows.cls is not type(payload):
            rows = self._shape(kind, type(payload))
        self.order.append(rows.idx)
        rows.ts.append(ts_ns)
        rows.market.append(market)
        rows.values.append(_astuple(payload) if rows.tuples else payload)  # type: ignore[arg-type]

    def _shape(self, kind: str, cls: type) -> Rows:
        # The shape of (kind, cls), made at its first record; the kind's shape from now on.
        rows = self._index.get((kind, cls))
        if rows is None:
            rows = self._index[(kind, cls)] = Rows(kind, cls, record_plan(kind, cls)[0], len(self.shapes))
            self.shapes.append(rows)
        self._by_kind[kind] = rows
        return rows

    def clear(self) -> None:
        """Forget the rows kept (their shapes stay)."""
        self.order.clear()
        for rows in self.shapes:
            rows.ts.clear()
            rows.market.clear()
            rows.values.clear()


_astuple = msgspec.structs.astuple


def _column_enc(t: msgspec.inspect.Type) -> str:
    if isinstance(t, msgspec.inspect.BoolType):
        return "bool"
    if isinstance(t, msgspec.inspect.IntType):
        return "i64"
    if isinstance(t, msgspec.inspect.EnumType) and issubclass(t.cls, enum.IntEnum):
        return "i64"
    return "mp"


_RECORD_PLANS: dict[tuple[str, type], tuple[str, tuple[str, ...], tuple[str, ...]]] = {}


def record_plan(kind: str, cls: type) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """How a payload of type ``cls`` logged as ``kind`` is laid out in ``BufferSink``'s JSON line.

    ``(mode, keys, encodings)``: the line's keys after ``kind`` and, for each, ``i64`` (an integer),
    ``bool`` or ``mp`` (anything else). ``tagged``: a message tagged ``kind``, as encoded, with
    ``ts_ns`` right after ``kind`` when it has none; ``headless``: a struct with no head key, after
    ``kind``, ``ts_ns`` and ``market``; ``line``: anything else (a dict, a struct with renamed or
    omitted fields, a message logged under another kind), kept as its whole line
    (keys ``ts_ns``, ``market``, ``line``).
    """
    plan = _RECORD_PLANS.get((kind, cls))
    if plan is None:
        plan = _RECORD_PLANS[(kind, cls)] = _record_plan(kind, cls)
    return plan


def _record_plan(kind: str, cls: type) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    if issubclass(cls, msgspec.Struct):
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        names = tuple(f.encode_name for f in info.fields)
        encs = tuple(_column_enc(f.type) for f in info.fields)
        plain = not (
            cls.__struct_config__.omit_defaults
            or info.array_like
            or any(f.name != f.encode_name for f in info.fields)
        )
        if plain and message_tag(cls) == kind:
            if "ts_ns" in names:
                return "tagged", names, encs
            return "tagged", ("ts_ns", *names), ("i64", *encs)
        if plain and message_tag(cls) is None and not _HEAD_FIELDS.intersection(names):
            return "headless", ("ts_ns", "market", *names), ("i64", "mp", *encs)
    return "line", ("ts_ns", "market", "line"), ("i64", "mp", "mp")


def message_tag(cls: type) -> str | None:
    """The ``kind`` tag of a core message type (``Filled`` -> ``fill``), None for any other type."""
    return _TAGGED.get(cls)


_HEAD_FIELDS = frozenset(_HEAD_KEYS)
_TAGGED: dict[type, str] = {}
#: Per payload type, how ``record`` writes it: (its message tag or None, whether it carries ``ts_ns``,
#: whether it is a struct without any of the head keys). Worked out once per type.
_PLANS: dict[type, tuple[str | None, bool, bool]] = {}


def _plan(cls: type) -> tuple[str | None, bool, bool]:
    if not issubclass(cls, msgspec.Struct):
        return (None, False, False)
    fields = cls.__struct_fields__
    return (_TAGGED.get(cls), "ts_ns" in fields, not _HEAD_FIELDS.intersection(fields))


def _register_tags() -> None:
    # The tag of each core message, e.g. Filled -> "fill": such a message is logged as encoded.
    from core import messages  # noqa: PLC0415

    for name in dir(messages):
        cls = getattr(messages, name)
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
            tag = msgspec.inspect.type_info(cls)
            if isinstance(tag, msgspec.inspect.StructType) and isinstance(tag.tag, str):
                _TAGGED[cls] = tag.tag


_register_tags()


def units_record(ts_ns: int = 0) -> bytes:
    """The first line of a simulation's event log: ``kind`` ``units`` (then ``ts_ns``, ``market``)."""
    head = {"kind": "units", "ts_ns": ts_ns, "market": ""}
    return _ENC.encode(head | units_header("sim")) + b"\n"
