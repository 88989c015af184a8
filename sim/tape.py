"""A market's recorded or generated event stream in compact columns: what every sim source produces.

One ``MarketTape`` per market, events in time order, on the YES book. Events of either token enter
through ``add``, which passes them through the market's ``core.yes_view.YesView``: a NO-token event is
mapped onto the YES book (a NO snapshot becomes the YES snapshot it mirrors) and the mirror of a
change or trade the venue published on both tokens is counted once. Columns are ``array``s of machine ints,
so a million events take ~25 MB; the replay loop reads them a window at a time, as lists
(``sim.runner.Lane._columns``) (prices in Px, 1e-4 USDC; sizes in Qty, 1e-6 share, any 6-decimal size):

* ``OP_BID`` / ``OP_ASK``: the level at ``px`` now holds ``qty`` in total (0 deletes it);
* ``OP_BUY`` / ``OP_SELL``: a trade of ``qty`` at ``px``, the taker buying (asks lifted) or selling;
* ``OP_SPECIAL``: ``specials[i]`` is a ``BookSnapshot``, ``TickSizeChanged`` or ``MarketResolved``.

Deterministic and free of I/O; ``events()`` materialises ``core.messages`` for the live-style path.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Final, Literal, get_args

from core.markets import MarketInfo
from core.messages import BookDelta, BookSnapshot, MarketEvent, MarketResolved, TickSizeChanged, TradePrint
from core.units import TICKS_PX, Outcome, Side
from core.yes_view import YesView, to_yes

OP_BID: Final = 0
OP_ASK: Final = 1
OP_BUY: Final = 2
OP_SELL: Final = 3
OP_SPECIAL: Final = 4

Special = BookSnapshot | TickSizeChanged | MarketResolved

#: A tick in Px for config fields: exactly the ticks the venue uses (``core.units.TICKS_PX``:
#: 0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001).
TickPx = Literal[1000, 100, 50, 25, 10, 1]
assert get_args(TickPx) == TICKS_PX


class MarketTape:
    """Columns of one market's events (see the module docstring)."""

    __slots__ = ("_view", "info", "meta", "op", "px", "qty", "source", "specials", "ts")

    def __init__(self, info: MarketInfo) -> None:
        """Create an empty tape for ``info``."""
        self.info = info
        self.ts = array("q")
        self.op = array("b")
        self.px = array("i")
        self.qty = array("q")
        self.specials: dict[int, Special] = {}
        self._view = YesView()
        #: What this market's data is and how the source made it (tick inferred, synthetic flow and
        #: its rate...), for the run summary; JSON-ready.
        self.meta: dict[str, object] = {}
        #: Notes about the whole source (shared by the tapes of one load: markets refused and why...).
        self.source: dict[str, object] = {}

    def __len__(self) -> int:
        """Number of events."""
        return len(self.ts)

    def _check_ts(self, ts_ns: int) -> None:
        if self.ts and ts_ns < self.ts[-1]:
            raise ValueError(f"{self.info.market}: time can't go backwards ({ts_ns} < {self.ts[-1]})")

    def level(self, ts_ns: int, side: Side, px: int, qty: int) -> None:
        """Append a level update of the YES book."""
        self._check_ts(ts_ns)
        self.ts.append(ts_ns)
        self.op.append(OP_BID if side is Side.BUY else OP_ASK)
        self.px.append(px)
        self.qty.append(qty)

    def trade(self, ts_ns: int, aggressor: Side, px: int, qty: int) -> None:
        """Append a trade print on the YES book."""
        self._check_ts(ts_ns)
        self.ts.append(ts_ns)
        self.op.append(OP_BUY if aggressor is Side.BUY else OP_SELL)
        self.px.append(px)
        self.qty.append(qty)

    def special(self, event: Special) -> None:
        """Append a snapshot, tick change or resolution (a NO-token one is mapped onto the YES book)."""
        self._check_ts(event.ts_ns)
        yes = to_yes(event)
        assert isinstance(yes, BookSnapshot | TickSizeChanged | MarketResolved)
        self.specials[len(self.ts)] = yes
        self.ts.append(event.ts_ns)
        self.op.append(OP_SPECIAL)
        self.px.append(0)
        self.qty.append(0)

    def add(self, event: MarketEvent) -> None:
        """Append any market event of this market, of either token, through the market's YES view.

        A mirror of what was already added from the other token (the venue publishes level changes,
        trades and tick changes on both tokens) is dropped; everything else lands on the YES book.
        """
        ev = self._view.apply(event)
        match ev:
            case BookDelta(side=side, px=px, qty=qty, ts_ns=ts):
                self.level(ts, side, px, qty)
            case TradePrint(aggressor=side, px=px, qty=qty, ts_ns=ts):
                self.trade(ts, side, px, qty)
            case BookSnapshot() | TickSizeChanged() | MarketResolved():
                self.special(ev)
            case _:
                pass

    def events(self) -> Iterator[MarketEvent]:
        """The tape as ``core.messages`` events (YES book)."""
        m = self.info.market
        for i in range(len(self.ts)):
            op = self.op[i]
            if op == OP_SPECIAL:
                yield self.specials[i]
            elif op <= OP_ASK:
                yield BookDelta(
                    market=m,
                    outcome=Outcome.YES,
                    ts_ns=self.ts[i],
                    side=Side.BUY if op == OP_BID else Side.SELL,
                    px=self.px[i],
                    qty=self.qty[i],
                )
            else:
                yield TradePrint(
                    market=m,
                    outcome=Outcome.YES,
                    ts_ns=self.ts[i],
                    px=self.px[i],
                    qty=self.qty[i],
                    aggressor=Side.BUY if op == OP_BUY else Side.SELL,
                )


def tape_from_events(info: MarketInfo, events: Iterable[MarketEvent]) -> MarketTape:
    """Build a tape from time-ordered market events of one market."""
    tape = MarketTape(info)
    for ev in events:
        tape.add(ev)
    return tape
