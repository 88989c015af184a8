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

NumPy is imported lazily: it is needed only when a file is actually read or written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

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
    """Read the file into one tape (see the module docstring)."""
    path = Path(spec.path)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    events = read_events(path, spec.key)
    tape = tape_from_events(events, spec.info(), _TS_UNIT_NS[spec.exch_ts_unit], source=path.name)
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


def check_dtype(arr: npt.NDArray[Any], where: str = "events") -> None:
    """Raise ``ValueError`` unless ``arr`` is a 1-D array of hftbacktest's ``event_dtype`` fields."""
    names = arr.dtype.names
    if names is None:
        hint = ""
        if arr.ndim == 2 and arr.shape[1] == 6:
            hint = " (it looks like the pre-2.0 6-column format; convert it with hftbacktest's migration2)"
        raise ValueError(
            f"{where}: expected a structured array of hftbacktest's event_dtype, got {arr.dtype}{hint}"
        )
    fields: dict[str, Any] = dict(arr.dtype.fields or {})
    got = tuple((n, fields[n][0].str[1:]) for n in names)
    if got != EVENT_FIELDS:
        raise ValueError(f"{where}: wrong dtype, expected fields {list(EVENT_FIELDS)}, got {list(got)}")
    if arr.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D event array, got shape {arr.shape}")


def tape_from_events(
    events: npt.NDArray[Any], info: MarketInfo, ts_unit_ns: int = 1, source: str = "events"
) -> MarketTape:
    """Convert a checked ``event_dtype`` array into a tape of ``info``'s market (module docstring)."""
    import numpy as np  # noqa: PLC0415

    exch = (events["ev"] & np.uint64(EXCH_EVENT)) != 0
    rows = events[exch]
    index = np.flatnonzero(exch)  # row numbers in the file, for error messages
    n = len(rows)
    ev = rows["ev"]
    kind = (ev & np.uint64(_KIND_MASK)).astype(np.int64)
    buy = (ev & np.uint64(BUY_EVENT)) != 0
    sell = (ev & np.uint64(SELL_EVENT)) != 0
    ts = rows["exch_ts"].astype(np.int64) * ts_unit_ns

    def fail(i: int, msg: str) -> ValueError:
        return ValueError(f"{source}: row {int(index[i])}: {msg}")

    # Kinds: reject what we cannot represent, before converting anything.
    user = kind >= _USER_MIN
    bad_kind = ~np.isin(kind, (DEPTH_EVENT, TRADE_EVENT, DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT)) & ~user
    if bad_kind.any():
        i = int(np.argmax(bad_kind))
        k = int(kind[i])
        what = _UNSUPPORTED.get(k, "an unknown event kind")
        raise fail(
            i, f"event kind {k} is {what}; only L2 depth, trade, clear and snapshot rows are supported"
        )
    sided = np.isin(kind, (DEPTH_EVENT, TRADE_EVENT, DEPTH_SNAPSHOT_EVENT))
    bad_side = sided & (buy == sell)
    if bad_side.any():
        raise fail(int(np.argmax(bad_side)), "needs exactly one of BUY_EVENT and SELL_EVENT")
    if n and (np.diff(ts) < 0).any():
        i = int(np.argmax(np.diff(ts) < 0)) + 1
        raise fail(
            i,
            f"exch_ts goes backwards ({int(ts[i])} after {int(ts[i - 1])}); EXCH_EVENT rows must be in "
            "exch_ts order (hftbacktest.data.correct_event_order fixes that)",
        )

    # Prices and sizes of level and trade rows: exact on the grid in force at each row, vectorised.
    tick_px = info.tick_px
    tick_events = np.flatnonzero(kind == TICK_SIZE_EVENT)
    row_tick = np.full(n, tick_px, dtype=np.int64)
    for r in tick_events.tolist():
        try:
            row_tick[r:] = _tick_from_float(float(rows["px"][r]))
        except ValueError as exc:
            raise fail(r, str(exc)) from None
    px_f = rows["px"]
    qty_f = rows["qty"]
    with np.errstate(invalid="ignore"):
        ticks = px_f * PX_ONE / row_tick
        px_i = np.rint(ticks)
        bad_px = sided & ~(np.abs(ticks - px_i) <= _PX_TOL_TICKS)
        bad_px |= sided & ((px_i < 0) | (px_i * row_tick > PX_ONE))
        # Exact, as qty_from_float: the size must come back from its own 6-decimal number.
        qty_i = np.rint(qty_f * float(QTY_ONE))
        bad_qty = sided & ~((qty_i >= 0) & (qty_i < _QTY_MAX) & (qty_i / float(QTY_ONE) == qty_f))
    if bad_px.any():
        i = int(np.argmax(bad_px))
        raise fail(
            i, f"price {float(px_f[i])!r} is not on the {int(row_tick[i]) / PX_ONE:g} tick grid in [0, 1]"
        )
    if bad_qty.any():
        i = int(np.argmax(bad_qty))
        raise UnitError(
            f"{source}: row {int(index[i])}: size {float(qty_f[i])!r} is not an exact size in 1e-6 shares "
            "(finer, negative, too large or not finite)"
        )
    px_l: list[int] = (np.where(sided, px_i, 0).astype(np.int64) * row_tick).tolist()
    qty_l: list[int] = np.where(sided, qty_i, 0).astype(np.int64).tolist()
    ts_l: list[int] = ts.tolist()
    kind_l: list[int] = kind.tolist()
    buy_l: list[bool] = buy.tolist()
    sell_l: list[bool] = sell.tolist()

    tape = MarketTape(info)
    market = info.market
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    t_ts, t_op, t_px, t_qty = tape.ts.append, tape.op.append, tape.px.append, tape.qty.append

    def special(ev: BookSnapshot | TickSizeChanged | MarketResolved) -> None:
        tape.specials[len(tape.ts)] = ev
        t_ts(ev.ts_ns)
        t_op(OP_SPECIAL)
        t_px(0)
        t_qty(0)

    cur_tick = tick_px

    def snapshot(at: int) -> BookSnapshot:
        return BookSnapshot(
            market=market,
            outcome=Outcome.YES,
            ts_ns=at,
            bids=_best_first(bids, reverse=True),
            asks=_best_first(asks, reverse=False),
            tick_px=cur_tick,
            min_qty=info.min_qty,
        )

    i = 0
    opened = False
    while i < n:
        k = kind_l[i]
        t = ts_l[i]
        if not opened and k not in (DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT):
            special(snapshot(t))  # the file does not open with a snapshot: start from an empty book
            opened = True
        if k == DEPTH_EVENT:
            q = qty_l[i]
            p = px_l[i]
            if buy_l[i]:
                if q:
                    bids[p] = q
                else:
                    bids.pop(p, None)
                op = OP_BID
            else:
                if q:
                    asks[p] = q
                else:
                    asks.pop(p, None)
                op = OP_ASK
        elif k == TRADE_EVENT:
            op = OP_BUY if buy_l[i] else OP_SELL
            q = qty_l[i]
            p = px_l[i]
        elif k in (DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT):
            j = i
            while j < n and ts_l[j] == t and kind_l[j] in (DEPTH_CLEAR_EVENT, DEPTH_SNAPSHOT_EVENT):
                j += 1
            full = _is_snapshot_block(kind_l, buy_l, sell_l, rows["px"], i, j)
            cleared: list[tuple[Side, int]] = []
            for r in range(i, j):
                if kind_l[r] == DEPTH_SNAPSHOT_EVENT:
                    book = bids if buy_l[r] else asks
                    if qty_l[r]:
                        book[px_l[r]] = qty_l[r]
                    else:
                        book.pop(px_l[r], None)
                else:
                    cleared += _clear(bids, asks, buy_l[r], sell_l[r], float(rows["px"][r]))
            if full or not opened:
                special(snapshot(t))
            else:
                for side, p in cleared:
                    t_ts(t)
                    t_op(OP_BID if side is Side.BUY else OP_ASK)
                    t_px(p)
                    t_qty(0)
            opened = True
            i = j
            continue
        elif k == RESOLVED_EVENT:
            special(MarketResolved(market=market, ts_ns=t, yes_won=bool(rows["ival"][i])))
            i += 1
            continue
        elif k == TICK_SIZE_EVENT:
            cur_tick = _tick_from_float(float(rows["px"][i]))
            bids.clear()
            asks.clear()
            special(TickSizeChanged(market=market, outcome=Outcome.YES, ts_ns=t, tick_px=cur_tick))
            i += 1
            continue
        else:  # other user-defined events carry nothing for us
            i += 1
            continue
        t_ts(t)
        t_op(op)
        t_px(p)
        t_qty(q)
        i += 1
    if not opened:
        raise ValueError(f"{source}: no EXCH_EVENT rows to replay")
    return tape


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
