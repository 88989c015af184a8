"""Read and write L2 event files in hftbacktest's normalized format (``.npz`` of ``event_dtype`` rows).

The format (nkaz001/hftbacktest, ``py-hftbacktest/hftbacktest/types.py`` and ``docs/data.rst``): a
NumPy structured array, stored under the key ``data`` of an ``.npz``, with the fields

``ev`` (u8 flags) | ``exch_ts`` (i8, ns) | ``local_ts`` (i8, ns) | ``px`` (f8) | ``qty`` (f8) |
``order_id`` (u8, L3 only) | ``ival`` (i8) | ``fval`` (f8).

The low byte of ``ev`` is the event kind (``DEPTH_EVENT`` 1: a level's new total, 0 deletes;
``TRADE_EVENT`` 2; ``DEPTH_CLEAR_EVENT`` 3: clear one side up to ``px``, or the whole book without a
side; ``DEPTH_SNAPSHOT_EVENT`` 4: one level of a snapshot); high bits are flags: ``BUY_EVENT`` /
``SELL_EVENT`` (bid/ask side for depth, the initiator for trades), ``EXCH_EVENT`` (valid for the
exchange at ``exch_ts``) and ``LOCAL_EVENT`` (valid for the local side at ``local_ts``).

Mapping to one ``MarketTape`` (one market per file, ``MarketInfo`` from the config):

* only ``EXCH_EVENT`` rows are read (the venue's view, in ``exch_ts`` order); ``local_ts`` is
  ignored, since the simulator applies its own feed latency;
* prices must lie on the tick grid in force (the configured ``tick_px``, then each ``TICK_SIZE_EVENT``'s;
  any venue tick, 0.1 to 0.0001, 0.005 and 0.0025 included), else ``ValueError``; sizes (float shares) convert
  exactly to ``Qty`` (1e-6 share): a size must be the float of a 6-decimal number (what writing
  ``qty / 1e6`` gives), else ``UnitError`` naming the row. Nothing is rounded;
* a run of clear/snapshot rows at one timestamp that contains snapshot rows (or clears both sides)
  becomes a ``BookSnapshot`` of the resulting full book; the tape always opens with one (empty if
  the file does not start with a snapshot); other clears become level deletions;
* user-defined kinds (>= 100) are skipped, except the two this module writes for what the format
  cannot express: ``RESOLVED_EVENT`` (``ival`` 1 if YES won) and ``TICK_SIZE_EVENT`` (``px`` is the
  new tick size). ``DEPTH_BBO_EVENT`` and L3 (market-by-order) events are rejected.

Reading is vectorised and streamed: ``load`` reads the array in chunks straight from the file
(``CHUNK_ROWS`` rows at a time), converts each with NumPy and appends runs of level and trade rows to
the tape's columns whole; only clear, snapshot and user-defined rows are handled one by one. Memory
holds the tape and one chunk (a 1M-row file: ~0.1 s and ~50 MB above the interpreter, against ~0.7 s
and ~380 MB for the row-by-row loop it replaces). NumPy is imported lazily: it is needed only when a
file is actually read or written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from core.markets import MarketInfo
from core.messages import BookSnapshot, Level, MarketResolved, TickSizeChanged
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, TICKS_PX, Outcome, Side, UnitError
from core.yes_view import to_yes
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SELL, OP_SPECIAL, MarketTape, TickPx

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "BUY_EVENT",
    "DEPTH_BBO_EVENT",
    "DEPTH_CLEAR_EVENT",
    "DEPTH_EVENT",
    "DEPTH_SNAPSHOT_EVENT",
    "EVENT_FIELDS",
    "EXCH_EVENT",
    "LOCAL_EVENT",
    "RESOLVED_EVENT",
    "SELL_EVENT",
    "TICK_SIZE_EVENT",
    "TRADE_EVENT",
    "HbtNpzSource",
    "check_dtype",
    "event_dtype",
    "load",
    "px_from_float",
    "qty_from_float",
    "read_events",
    "tape_from_events",
    "tape_to_events",
    "write_npz",
]

#: Event kinds (the low byte of ``ev``), as in hftbacktest's ``types.py``.
DEPTH_EVENT: Final = 1
TRADE_EVENT: Final = 2
DEPTH_CLEAR_EVENT: Final = 3
DEPTH_SNAPSHOT_EVENT: Final = 4
DEPTH_BBO_EVENT: Final = 5
#: Flags: exchange-side / local-side validity, bid side (or buyer-initiated) / ask side.
EXCH_EVENT: Final = 1 << 31
LOCAL_EVENT: Final = 1 << 30
BUY_EVENT: Final = 1 << 29
SELL_EVENT: Final = 1 << 28
#: Our user-defined kinds (hftbacktest leaves codes >= 100 to users): a market resolution, ``ival``
#: 1 if YES won; and a tick-size change, ``px`` the new tick size.
RESOLVED_EVENT: Final = 200
TICK_SIZE_EVENT: Final = 201
_USER_MIN = 100
_KIND_MASK = 0xFF
_UNSUPPORTED = {
    DEPTH_BBO_EVENT: "DEPTH_BBO_EVENT",
    10: "ADD_ORDER_EVENT (L3)",
    11: "CANCEL_ORDER_EVENT (L3)",
    12: "MODIFY_ORDER_EVENT (L3)",
    13: "FILL_EVENT (L3)",
}

#: The fields of hftbacktest's ``event_dtype``, in order, with their NumPy type codes.
EVENT_FIELDS: Final = (
    ("ev", "u8"),
    ("exch_ts", "i8"),
    ("local_ts", "i8"),
    ("px", "f8"),
    ("qty", "f8"),
    ("order_id", "u8"),
    ("ival", "i8"),
    ("fval", "f8"),
)
_TS_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000}
# A float price is accepted when it is this close (in ticks) to an exact multiple: far above float
# rounding noise, far below one unit.
_PX_TOL_TICKS = 1e-6
# Sizes convert exactly (``qty_from_float``); below this many Qty every 6-decimal number has its own
# float and ``rint(qty * 1e6)`` recovers it (2**51 Qty is over two billion shares).
_QTY_MAX = 2**51


class HbtNpzSource(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="hbt_npz", tag_field="type"
):
    """Configuration of an hftbacktest event-file replay (see the module docstring)."""

    #: The ``.npz`` (or ``.npy``); relative paths resolve against the scenario's directory.
    path: str
    #: Market id; empty: the file name without its suffix.
    market: str = ""
    yes_token: str = ""
    no_token: str = ""
    question: str = ""
    #: The file's tick size in Px (0.01 -> 100, 0.005 -> 50, 0.0025 -> 25); every price must lie on
    #: this grid (until a ``TICK_SIZE_EVENT`` changes it).
    tick_px: TickPx = 100
    #: The venue's minimum order size in Qty (1e-6 share; 5 shares = 5_000_000), on the 0.01-share grid.
    min_qty: Annotated[int, Meta(ge=ORDER_QTY_STEP, multiple_of=ORDER_QTY_STEP)] = 5 * QTY_ONE
    #: Taker fee rate (0.04 style); ``MarketInfo.fee_rate_ppm`` gets ``round(fee_rate * 1e6)``.
    fee_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0
    #: Maker rebate (``feeSchedule.rebateRate``, 0.25 style): share of the taker fees paid back to
    #: makers; ``MarketInfo.rebate_ppm`` gets ``round(rebate_rate * 1e6)``.
    rebate_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0
    #: The array's key inside the ``.npz`` (hftbacktest's converters write ``data``).
    key: str = "data"
    #: Unit of ``exch_ts`` (hftbacktest 2.x uses ns; older collectors wrote us).
    exch_ts_unit: Literal["ns", "us", "ms"] = "ns"

    def info(self) -> MarketInfo:
        """The market this file describes."""
        market = self.market or Path(self.path).name.split(".")[0]
        return MarketInfo(
            market=market,
            yes_token=self.yes_token or f"{market}-yes",
            no_token=self.no_token or f"{market}-no",
            tick_px=self.tick_px,
            min_qty=self.min_qty,
            fee_rate_ppm=round(self.fee_rate * 1_000_000),
            rebate_ppm=round(self.rebate_rate * 1_000_000),
            question=self.question,
        )


def event_dtype() -> np.dtype[Any]:
    """hftbacktest's ``event_dtype`` (aligned, 64 bytes per row)."""
    import numpy as np  # noqa: PLC0415

    return np.dtype(list(EVENT_FIELDS), align=True)


# --- pure conversions ----------------------------------------------------------------------------


def px_from_float(px: float, tick_px: int) -> int:
    """Convert a float price (0.47) to Px, exactly; it must lie on the ``tick_px`` grid in [0, 1].

    Raises:
        UnitError: The price is not finite, off the grid, or outside [0, 1].
    """
    if not math.isfinite(px):
        raise UnitError(f"price {px!r} is not finite")
    ticks = px * PX_ONE / tick_px
    n = round(ticks)
    if abs(ticks - n) > _PX_TOL_TICKS:
        raise UnitError(f"price {px!r} is not on the {tick_px / PX_ONE:g} tick grid")
    value = n * tick_px
    if not 0 <= value <= PX_ONE:
        raise UnitError(f"price {px!r} outside [0, 1]")
    return value


def qty_from_float(qty: float) -> int:
    """Convert a float size in shares (7.575758) to Qty (1e-6 share), exactly.

    The float must be the one nearest to a 6-decimal number (``n / 1e6`` gives it back): that number
    is the size. Anything else is finer than 1e-6 share and is refused, never rounded.

    Raises:
        UnitError: The size is not finite, negative, too large, or finer than 1e-6 share.
    """
    if not math.isfinite(qty) or qty < 0:
        raise UnitError(f"size {qty!r} is not a finite size >= 0")
    n = round(qty * QTY_ONE)
    if n >= _QTY_MAX:
        raise UnitError(f"size {qty!r} is too large")
    if n / QTY_ONE != qty:
        raise UnitError(f"size {qty!r} is finer than 1e-6 shares")
    return n


# --- reading -------------------------------------------------------------------------------------


def load(spec: HbtNpzSource, base_dir: Path | None = None) -> list[MarketTape]:
    """Read the file into one tape (see the module docstring).

    The file is read in chunks of ``CHUNK_ROWS`` rows, each converted with NumPy and appended to the
    tape's columns, so memory holds the tape and one chunk, never the whole event array.
    """
    path = Path(spec.path)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    builder = _TapeBuilder(spec.info(), _TS_UNIT_NS[spec.exch_ts_unit], path.name)
    for rows, index, last in _read_chunks(path, spec.key):
        builder.feed(rows, index, final=last)
    tape = builder.finish()
    tape.source = {"type": "hbt_npz", "path": path.name}
    return [tape]


def read_events(path: Path, key: str = "data") -> npt.NDArray[Any]:
    """Read and check an event array from an ``.npz`` (``key``) or ``.npy`` file."""
    import numpy as np  # noqa: PLC0415

    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path.name}: cannot read as .npz/.npy: {exc}") from None
    if isinstance(loaded, np.ndarray):
        arr = loaded
    else:
        with loaded:
            if key not in loaded.files:
                raise ValueError(f"{path.name}: no array {key!r} in the .npz (it has {loaded.files})")
            arr = loaded[key]
    check_dtype(arr, path.name)
    return arr


#: Rows converted at a time by ``load`` (64 bytes each: 8 MiB of file per chunk).
CHUNK_ROWS: Final = 1 << 17


def _read_chunks(path: Path, key: str) -> Iterator[tuple[npt.NDArray[Any], npt.NDArray[Any], bool]]:
    """The checked event array of an ``.npz`` (``key``) or ``.npy``, in chunks of whole rows, with each
    row's number in the file and whether it is the last; read straight from the file (decompressed
    on the way for a compressed ``.npz``), never whole in memory."""
    import zipfile  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    def header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
        raise ValueError(f"unsupported .npy format version {version}")

    def rows_of(f: IO[bytes]) -> Iterator[tuple[npt.NDArray[Any], npt.NDArray[Any], bool]]:
        try:
            shape, _fortran, dtype = header(f)  # a 1-D array reads the same in either order
        except ValueError as exc:
            raise ValueError(f"{path.name}: cannot read as .npz/.npy: {exc}") from None
        _check_dtype(dtype, shape, path.name)
        n = shape[0]
        done = 0
        while done < n:
            count = min(CHUNK_ROWS, n - done)
            buf = f.read(count * dtype.itemsize)
            if len(buf) != count * dtype.itemsize:
                raise ValueError(f"{path.name}: cannot read as .npz/.npy: the file ends inside the array")
            index = np.arange(done, done + count, dtype=np.int64)
            done += count
            yield np.frombuffer(buf, dtype=dtype), index, done == n

    try:
        is_zip = zipfile.is_zipfile(path)
        if not is_zip:
            with path.open("rb") as npy:
                if npy.read(6) != b"\x93NUMPY":
                    raise ValueError(f"{path.name}: cannot read as .npz/.npy: not a NumPy file")
                npy.seek(0)
                yield from rows_of(npy)
            return
        with zipfile.ZipFile(path) as z:
            names = [n.removesuffix(".npy") for n in z.namelist()]
            if key not in names:
                raise ValueError(f"{path.name}: no array {key!r} in the .npz (it has {names})")
            with z.open(key + ".npy") as f:
                yield from rows_of(f)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path.name}: cannot read as .npz/.npy: {exc}") from None


def check_dtype(arr: npt.NDArray[Any], where: str = "events") -> None:
    """Raise ``ValueError`` unless ``arr`` is a 1-D array of hftbacktest's ``event_dtype`` fields."""
    _check_dtype(arr.dtype, arr.shape, where)


def _check_dtype(dtype: np.dtype[Any], shape: tuple[int, ...], where: str) -> None:
    names = dtype.names
    if names is None:
        hint = ""
        if len(shape) == 2 and shape[1] == 6:
            hint = " (it looks like the pre-2.0 6-column format; convert it with hftbacktest's migration2)"
        raise ValueError(
            f"{where}: expected a structured array of hftbacktest's event_dtype, got {dtype}{hint}"
        )
    fields: dict[str, Any] = dict(dtype.fields or {})
    got = tuple((n, fields[n][0].str[1:]) for n in names)
    if got != EVENT_FIELDS:
        raise ValueError(f"{where}: wrong dtype, expected fields {list(EVENT_FIELDS)}, got {list(got)}")
    if len(shape) != 1:
        raise ValueError(f"{where}: expected a 1-D event array, got shape {shape}")


def tape_from_events(
    events: npt.NDArray[Any], info: MarketInfo, ts_unit_ns: int = 1, source: str = "events"
) -> MarketTape:
    """Convert a checked ``event_dtype`` array into a tape of ``info``'s market (module docstring)."""
    import numpy as np  # noqa: PLC0415

    builder = _TapeBuilder(info, ts_unit_ns, source)
    builder.feed(events, np.arange(len(events), dtype=np.int64), final=True)
    return builder.finish()


_BOOK_KINDS = (DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT)


class _TapeBuilder:
    """Appends event rows to one tape, chunk by chunk (see the module docstring for the mapping).

    Each chunk is checked and converted with NumPy; runs of level and trade rows are appended to the
    tape's columns whole. Only clear, snapshot and user-defined rows are handled one by one. The book
    that snapshots need is brought up to date from the tape's own columns when one is due.
    """

    def __init__(self, info: MarketInfo, ts_unit_ns: int, source: str) -> None:
        self.info = info
        self.market = info.market
        self.unit = ts_unit_ns
        self.where = source
        self.tape = MarketTape(info)
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.book_from = 0  # tape rows from here on are not in bids/asks yet
        self.cur_tick: int = info.tick_px  # the tick of snapshots
        self.row_tick: int = info.tick_px  # the grid prices are checked on
        self.opened = False
        self.last_ts: int | None = None
        self.carry: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None

    def fail(self, index: npt.NDArray[Any], i: int, msg: str) -> ValueError:
        return ValueError(f"{self.where}: row {int(index[i])}: {msg}")

    def feed(self, events: npt.NDArray[Any], index: npt.NDArray[Any], *, final: bool = False) -> None:
        """Check and append ``events`` (rows numbered ``index`` in the file).

        Unless ``final``, a run of clear/snapshot rows at the chunk's end waits for the next chunk (it
        may go on there).
        """
        import numpy as np  # noqa: PLC0415

        exch = (events["ev"] & np.uint64(EXCH_EVENT)) != 0
        if not exch.all():
            events, index = events[exch], index[exch]
        if self.carry is not None:
            events = np.concatenate([self.carry[0], events])
            index = np.concatenate([self.carry[1], index])
            self.carry = None
        n = len(events)
        if not n:
            return
        kind = (events["ev"] & np.uint64(_KIND_MASK)).astype(np.int64)
        if not final and int(kind[-1]) in _BOOK_KINDS:
            ts = events["exch_ts"]
            cut = n - 1
            while cut > 0 and int(kind[cut - 1]) in _BOOK_KINDS and ts[cut - 1] == ts[n - 1]:
                cut -= 1
            self.carry = (events[cut:].copy(), index[cut:].copy())
            events, index, kind = events[:cut], index[:cut], kind[:cut]
            if not cut:
                return
        self._convert(events, index, kind)

    def finish(self) -> MarketTape:
        """The tape, once every row was fed."""
        if self.carry is not None:
            events, index = self.carry
            self.carry = None
            import numpy as np  # noqa: PLC0415

            self._convert(events, index, (events["ev"] & np.uint64(_KIND_MASK)).astype(np.int64))
        if not self.opened:
            raise ValueError(f"{self.where}: no EXCH_EVENT rows to replay")
        return self.tape

    def _convert(self, rows: npt.NDArray[Any], index: npt.NDArray[Any], kind: npt.NDArray[Any]) -> None:
        import numpy as np  # noqa: PLC0415

        n = len(rows)
        ev = rows["ev"]
        buy = (ev & np.uint64(BUY_EVENT)) != 0
        sell = (ev & np.uint64(SELL_EVENT)) != 0
        ts = rows["exch_ts"].astype(np.int64)
        if self.unit != 1:
            ts *= self.unit

        # Kinds: reject what we cannot represent, before converting anything.
        user = kind >= _USER_MIN
        bad_kind = ~np.isin(kind, (DEPTH_EVENT, TRADE_EVENT, DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT)) & ~user
        if bad_kind.any():
            i = int(np.argmax(bad_kind))
            k = int(kind[i])
            what = _UNSUPPORTED.get(k, "an unknown event kind")
            raise self.fail(
                index,
                i,
                f"event kind {k} is {what}; only L2 depth, trade, clear and snapshot rows are supported",
            )
        sided = np.isin(kind, (DEPTH_EVENT, TRADE_EVENT, DEPTH_SNAPSHOT_EVENT))
        bad_side = sided & (buy == sell)
        if bad_side.any():
            raise self.fail(index, int(np.argmax(bad_side)), "needs exactly one of BUY_EVENT and SELL_EVENT")
        prev = ts[:-1] if self.last_ts is None else np.concatenate(([self.last_ts], ts[:-1]))
        back = ts[n - len(prev) :] < prev
        if back.any():
            j = int(np.argmax(back))
            i = j + (n - len(prev))
            raise self.fail(
                index,
                i,
                f"exch_ts goes backwards ({int(ts[i])} after {int(prev[j])}); EXCH_EVENT rows must be in "
                "exch_ts order (hftbacktest.data.correct_event_order fixes that)",
            )

        # Prices and sizes of level and trade rows: exact on the grid in force at each row, vectorised.
        px_f = rows["px"]
        qty_f = rows["qty"]
        tick_rows = np.flatnonzero(kind == TICK_SIZE_EVENT).tolist()
        if tick_rows:
            row_tick = np.full(n, self.row_tick, dtype=np.int64)
            for r in tick_rows:
                try:
                    row_tick[r:] = _tick_from_float(float(px_f[r]))
                except ValueError as exc:
                    raise self.fail(index, r, str(exc)) from None
            self.row_tick = int(row_tick[-1])
            grid: Any = row_tick
        else:
            grid = self.row_tick
        with np.errstate(invalid="ignore"):
            ticks = px_f * PX_ONE / grid
            px_i = np.rint(ticks)
            bad_px = ~(np.abs(ticks - px_i) <= _PX_TOL_TICKS)
            bad_px |= (px_i < 0) | (px_i * grid > PX_ONE)
            bad_px &= sided
            # Exact, as qty_from_float: the size must come back from its own 6-decimal number.
            qty_i = np.rint(qty_f * float(QTY_ONE))
            bad_qty = sided & ~((qty_i >= 0) & (qty_i < _QTY_MAX) & (qty_i / float(QTY_ONE) == qty_f))
        if bad_px.any():
            i = int(np.argmax(bad_px))
            tick_i = int(grid[i]) if tick_rows else self.row_tick
            raise self.fail(
                index, i, f"price {float(px_f[i])!r} is not on the {tick_i / PX_ONE:g} tick grid in [0, 1]"
            )
        if bad_qty.any():
            i = int(np.argmax(bad_qty))
            raise UnitError(
                f"{self.where}: row {int(index[i])}: size {float(qty_f[i])!r} is not an exact size in 1e-6 "
                "shares (finer, negative, too large or not finite)"
            )
        del ticks, bad_px, bad_qty
        px_c = np.where(sided, px_i, 0).astype(np.int64) * grid
        qty_c = np.where(sided, qty_i, 0).astype(np.int64)
        del px_i, qty_i
        op = np.where(
            kind == DEPTH_EVENT, np.where(buy, OP_BID, OP_ASK), np.where(buy, OP_BUY, OP_SELL)
        ).astype(np.int8)
        self.last_ts = int(ts[-1])

        tape = self.tape
        i = 0
        if not self.opened and int(kind[0]) not in _BOOK_KINDS:
            self._special(self._snapshot(int(ts[0])))  # no leading snapshot: start from an empty book
            self.opened = True
        # Rows handled one by one: clears, snapshots and user-defined kinds; the rest go in runs.
        for r in np.flatnonzero((kind != DEPTH_EVENT) & (kind != TRADE_EVENT)).tolist():
            if r < i:
                continue  # part of a block already handled
            if r > i:
                self._append(ts[i:r], op[i:r], px_c[i:r], qty_c[i:r])
            k = int(kind[r])
            t = int(ts[r])
            if k in _BOOK_KINDS:
                j = r
                while j < n and int(ts[j]) == t and int(kind[j]) in _BOOK_KINDS:
                    j += 1
                self._book_block(
                    t,
                    kind[r:j].tolist(),
                    buy[r:j].tolist(),
                    sell[r:j].tolist(),
                    px_f[r:j],
                    px_c[r:j].tolist(),
                    qty_c[r:j].tolist(),
                )
                i = j
                continue
            if k == RESOLVED_EVENT:
                self._special(MarketResolved(market=self.market, ts_ns=t, yes_won=bool(rows["ival"][r])))
            elif k == TICK_SIZE_EVENT:
                self.cur_tick = _tick_from_float(float(px_f[r]))
                self.bids.clear()
                self.asks.clear()
                self.book_from = len(tape)
                self._special(
                    TickSizeChanged(market=self.market, outcome=Outcome.YES, ts_ns=t, tick_px=self.cur_tick)
                )
            # other user-defined events carry nothing for us
            i = r + 1
        if i < n:
            self._append(ts[i:], op[i:], px_c[i:], qty_c[i:])

    def _append(
        self, ts: npt.NDArray[Any], op: npt.NDArray[Any], px: npt.NDArray[Any], qty: npt.NDArray[Any]
    ) -> None:
        import numpy as np  # noqa: PLC0415

        tape = self.tape
        tape.ts.frombytes(ts.tobytes())
        tape.op.frombytes(op.tobytes())
        tape.px.frombytes(px.astype(np.int32).tobytes())
        tape.qty.frombytes(qty.tobytes())

    def _special(self, ev: BookSnapshot | TickSizeChanged | MarketResolved) -> None:
        tape = self.tape
        tape.specials[len(tape.ts)] = ev
        tape.ts.append(ev.ts_ns)
        tape.op.append(OP_SPECIAL)
        tape.px.append(0)
        tape.qty.append(0)

    def _sync_book(self) -> None:
        # Bring bids/asks up to the tape's end: the last size each level got since book_from.
        import numpy as np  # noqa: PLC0415

        tape = self.tape
        start = self.book_from
        self.book_from = len(tape)
        if start >= len(tape):
            return
        op = np.frombuffer(tape.op, dtype=np.int8)[start:]
        levels = np.flatnonzero(op <= OP_ASK)
        if not len(levels):
            return
        side = op[levels].astype(np.int64)
        px = np.frombuffer(tape.px, dtype=np.int32)[start:][levels].astype(np.int64)
        qty = np.frombuffer(tape.qty, dtype=np.int64)[start:][levels]
        del op
        keys = (side * (PX_ONE + 1) + px)[::-1]
        uniq, first = np.unique(keys, return_index=True)
        last_qty = qty[::-1][first]
        for key, q in zip(uniq.tolist(), last_qty.tolist(), strict=True):
            book = self.asks if key > PX_ONE else self.bids
            p = key - PX_ONE - 1 if key > PX_ONE else key
            if q:
                book[p] = q
            else:
                book.pop(p, None)

    def _snapshot(self, at: int) -> BookSnapshot:
        self._sync_book()
        return BookSnapshot(
            market=self.market,
            outcome=Outcome.YES,
            ts_ns=at,
            bids=_best_first(self.bids, reverse=True),
            asks=_best_first(self.asks, reverse=False),
            tick_px=self.cur_tick,
            min_qty=self.info.min_qty,
        )

    def _book_block(
        self,
        t: int,
        kinds: list[int],
        buys: list[bool],
        sells: list[bool],
        px_f: npt.NDArray[Any],
        px_l: list[int],
        qty_l: list[int],
    ) -> None:
        # A run of clear/snapshot rows at one timestamp: a full snapshot, or level deletions.
        self._sync_book()
        bids, asks = self.bids, self.asks
        full = _is_snapshot_block(kinds, buys, sells, px_f, 0, len(kinds))
        cleared: list[tuple[Side, int]] = []
        for r, k in enumerate(kinds):
            if k == DEPTH_SNAPSHOT_EVENT:
                book = bids if buys[r] else asks
                if qty_l[r]:
                    book[px_l[r]] = qty_l[r]
                else:
                    book.pop(px_l[r], None)
            else:
                cleared += _clear(bids, asks, buys[r], sells[r], float(px_f[r]))
        if full or not self.opened:
            self._special(self._snapshot(t))
        else:
            tape = self.tape
            for side, p in cleared:
                tape.ts.append(t)
                tape.op.append(OP_BID if side is Side.BUY else OP_ASK)
                tape.px.append(p)
                tape.qty.append(0)
        self.book_from = len(self.tape)
        self.opened = True


def _tick_from_float(tick_size: float) -> int:
    if not math.isfinite(tick_size):
        raise ValueError(f"tick size {tick_size!r} is not a Polymarket tick")
    tick = round(tick_size * PX_ONE)
    if tick not in TICKS_PX or abs(tick_size * PX_ONE - tick) > _PX_TOL_TICKS:
        raise ValueError(
            f"tick size {tick_size!r} is not a Polymarket tick (0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001)"
        )
    return tick


def _best_first(levels: dict[int, int], *, reverse: bool) -> tuple[Level, ...]:
    return tuple((p, levels[p]) for p in sorted(levels, reverse=reverse))


def _is_snapshot_block(
    kind: list[int], buy: list[bool], sell: list[bool], px: npt.NDArray[Any], i: int, j: int
) -> bool:
    # A run of clears/snapshot rows is a full snapshot if it carries levels or clears both sides.
    bid_cleared = ask_cleared = False
    for r in range(i, j):
        if kind[r] == DEPTH_SNAPSHOT_EVENT:
            return True
        p = float(px[r])
        if not buy[r] and not sell[r]:
            return True
        if buy[r] and (not math.isfinite(p) or p <= 0):
            bid_cleared = True
        if sell[r] and (not math.isfinite(p) or p >= 1):
            ask_cleared = True
    return bid_cleared and ask_cleared


def _clear(
    bids: dict[int, int], asks: dict[int, int], buy: bool, sell: bool, px: float
) -> list[tuple[Side, int]]:
    # hftbacktest's clear_depth: a bid clear removes bids at or above px, an ask clear asks at or
    # below px; a non-finite px or no side clears everything on the side(s).
    out: list[tuple[Side, int]] = []
    finite = math.isfinite(px)
    if buy or not sell:
        lim = math.ceil(px * PX_ONE - _PX_TOL_TICKS) if finite and buy else -1
        gone = sorted((p for p in bids if p >= lim), reverse=True)
        for p in gone:
            del bids[p]
        out += [(Side.BUY, p) for p in gone]
    if sell or not buy:
        lim = math.floor(px * PX_ONE + _PX_TOL_TICKS) if finite and sell else PX_ONE + 1
        gone = sorted(p for p in asks if p <= lim)
        for p in gone:
            del asks[p]
        out += [(Side.SELL, p) for p in gone]
    return out


# --- writing -------------------------------------------------------------------------------------


def tape_to_events(tape: MarketTape, tick_size: float, local_latency_ns: int = 0) -> npt.NDArray[Any]:
    """Convert a tape to an ``event_dtype`` array (every row valid for both exchange and local).

    A ``BookSnapshot`` becomes a bid clear, an ask clear and one snapshot row per level; a
    resolution or tick change becomes our user-defined ``RESOLVED_EVENT`` / ``TICK_SIZE_EVENT``.

    Args:
        tape: The tape to convert.
        tick_size: The tick size (0.01) that prices are written for; checked against the tape.
        local_latency_ns: Added to ``exch_ts`` to make ``local_ts``.
    """
    import numpy as np  # noqa: PLC0415

    tick_px = _tick_from_float(tick_size)
    both = EXCH_EVENT | LOCAL_EVENT
    n_special_rows = 0
    for ev in tape.specials.values():
        n_special_rows += 2 + len(ev.bids) + len(ev.asks) if isinstance(ev, BookSnapshot) else 1
    n = len(tape) - len(tape.specials) + n_special_rows
    out = np.zeros(n, dtype=event_dtype())
    op = np.array(tape.op, dtype=np.int8)
    plain = op != OP_SPECIAL
    px = np.array(tape.px, dtype=np.int64)
    # Prices lie on the tick in force: ``tick_size``, then each tick change's.
    row_tick = np.full(len(tape), tick_px, dtype=np.int64)
    for idx, ev in sorted(tape.specials.items()):
        if isinstance(ev, TickSizeChanged):
            row_tick[idx:] = ev.tick_px
    off = plain & (px % row_tick != 0)
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"{tape.info.market}: the tape has prices off the {int(row_tick[i]) / PX_ONE:g} tick grid "
            f"(event {i}: {int(px[i])} Px)"
        )
    # Indexed by the tape's op codes (OP_BID, OP_ASK, OP_BUY, OP_SELL, OP_SPECIAL).
    flags = [
        DEPTH_EVENT | BUY_EVENT,
        DEPTH_EVENT | SELL_EVENT,
        TRADE_EVENT | BUY_EVENT,
        TRADE_EVENT | SELL_EVENT,
        0,
    ]
    flag = np.array(flags, dtype=np.uint64) | np.uint64(both)
    # Rows of plain events go where they belong once the special rows are spliced in.
    specials = sorted(tape.specials.items())
    pos = np.arange(len(tape), dtype=np.int64)
    shift = np.zeros(len(tape), dtype=np.int64)
    for idx, ev in specials:
        extra = (2 + len(ev.bids) + len(ev.asks) if isinstance(ev, BookSnapshot) else 1) - 1
        shift[idx + 1 :] += extra
    dest = (pos + shift)[plain]
    ts = np.array(tape.ts, dtype=np.int64)
    out["ev"][dest] = flag[op[plain]]
    out["exch_ts"][dest] = ts[plain]
    out["local_ts"][dest] = ts[plain] + local_latency_ns
    out["px"][dest] = px[plain] / PX_ONE
    out["qty"][dest] = np.array(tape.qty, dtype=np.int64)[plain] / QTY_ONE
    for idx, ev in specials:
        r = int(pos[idx] + shift[idx])
        t = ev.ts_ns
        rows: list[tuple[int, float, float, int]] = []  # (ev, px, qty, ival)
        if isinstance(ev, BookSnapshot):
            yes = to_yes(ev)  # tapes hold YES snapshots; a NO one would be written as its YES mirror
            assert isinstance(yes, BookSnapshot)
            bids, asks = yes.bids, yes.asks
            rows.append((DEPTH_CLEAR_EVENT | BUY_EVENT, 0.0, 0.0, 0))
            rows.append((DEPTH_CLEAR_EVENT | SELL_EVENT, 1.0, 0.0, 0))
            rows += [(DEPTH_SNAPSHOT_EVENT | BUY_EVENT, p / PX_ONE, q / QTY_ONE, 0) for p, q in bids]
            rows += [(DEPTH_SNAPSHOT_EVENT | SELL_EVENT, p / PX_ONE, q / QTY_ONE, 0) for p, q in asks]
        elif isinstance(ev, TickSizeChanged):
            rows.append((TICK_SIZE_EVENT, ev.tick_px / PX_ONE, 0.0, 0))
        else:
            rows.append((RESOLVED_EVENT, 0.0, 0.0, int(ev.yes_won)))
        for k, (e, p, q, ival) in enumerate(rows):
            out[r + k] = (e | both, t, t + local_latency_ns, p, q, 0, ival, 0.0)
    return out


def write_npz(
    path: str | Path, tape: MarketTape, tick_size: float, *, local_latency_ns: int = 0, compress: bool = True
) -> None:
    """Write a tape as an hftbacktest event file (``data`` key; see ``tape_to_events``).

    Reading it back with a config of the same market, tick and minimum size gives the same tape,
    provided every ``BookSnapshot`` of the tape is a full YES book (as sources produce).
    """
    import numpy as np  # noqa: PLC0415

    events = tape_to_events(tape, tick_size, local_latency_ns)
    if compress:
        np.savez_compressed(path, data=events)
    else:
        np.savez(path, data=events)
