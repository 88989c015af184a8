"""One YES view of a binary market: every feed event of either token, mapped onto the YES book once.

Pure and deterministic: no I/O, clock or randomness. A NO share at ``q`` is a YES share at ``1 - q``
the other way round: a NO bid is a YES ask, a NO buyer lifting asks is a YES seller hitting bids.
The venue publishes most things on both tokens of a market (a ``price_change`` carries the level and
its mirror; the emulator prints each trade on both tokens; a ``book`` and a ``tick_size_change``
come for each token), so the view also makes sure each happening is counted once:

* ``to_yes(event)`` is the stateless mapping (a NO snapshot becomes the YES snapshot it mirrors);
* ``YesView`` filters one market's mapped stream: the mirror of a level change, a trade or a tick
  change already seen from the other token (same timestamp) is dropped. Trades pair by the venue's
  ``trade_id`` (its transaction hash) when both copies carry one, else by time, YES price, size and
  YES-side aggressor; pairing is one to one, so two real trades with the same key both count.

Every consumer (the live feed, the simulator's tapes, the paper venue and the market session) sees
only YES events, through this one module.
"""

from __future__ import annotations

from typing import Final

import msgspec

from core.messages import BookDelta, BookSnapshot, Level, MarketEvent, TickSizeChanged, TradePrint
from core.units import PX_ONE, Outcome, Side, opposite

__all__ = ["YesView", "mirror_levels", "to_yes", "yes_side"]

_YES: Final = Outcome.YES
_NO: Final = Outcome.NO
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL


def mirror_levels(levels: tuple[Level, ...]) -> tuple[Level, ...]:
    """One token's levels (best first) as the other token's opposite side (best first)."""
    return tuple((PX_ONE - px, qty) for px, qty in levels)


def yes_side(outcome: Outcome, side: Side) -> Side:
    """A side on ``outcome``'s book as the same interest on the YES book: a NO token's is the other.

    (What ``to_yes`` does to a NO event's side or aggressor, for a caller that has only the two.)
    """
    return side if outcome is _YES else opposite(side)


def to_yes(event: MarketEvent) -> MarketEvent:
    """``event`` on the YES book: NO-token events are mirrored, everything else passes unchanged."""
    if getattr(event, "outcome", _YES) is _YES:
        return event
    if type(event) is BookDelta:
        return BookDelta(
            market=event.market,
            outcome=_YES,
            ts_ns=event.ts_ns,
            side=opposite(event.side),
            px=PX_ONE - event.px,
            qty=event.qty,
        )
    if type(event) is TradePrint:
        return msgspec.structs.replace(
            event, outcome=_YES, px=PX_ONE - event.px, aggressor=opposite(event.aggressor)
        )
    if type(event) is BookSnapshot:
        return msgspec.structs.replace(
            event, outcome=_YES, bids=mirror_levels(event.asks), asks=mirror_levels(event.bids)
        )
    if type(event) is TickSizeChanged:
        return msgspec.structs.replace(event, outcome=_YES)
    return event


_LevelKey = tuple[int, int, int, int]  # ts, side, px, qty on the YES book
_TradeKey = tuple[int, str, int, int, int]  # ts, trade id or "", px, qty, aggressor on the YES book


class YesView:
    """One market's feed as YES events, each happening once (see the module docstring).

    ``apply(event)`` returns the YES event to pass on, or None for a mirror already passed on.
    """

    __slots__ = ("_last_level", "_last_tick", "_trades_ts", "_unpaired")

    def __init__(self) -> None:
        """Start with nothing seen."""
        # The last level change passed on, with the token it came from: its mirror follows at once.
        self._last_level: tuple[Outcome, _LevelKey] | None = None
        self._last_tick: tuple[Outcome, int, int] | None = None
        # Trades passed on at the current timestamp whose mirror has not come yet, per source token.
        self._trades_ts = -1
        self._unpaired: dict[Outcome, list[_TradeKey]] = {_YES: [], _NO: []}

    def apply(self, event: MarketEvent) -> MarketEvent | None:
        """Map ``event`` onto the YES book; None if it only mirrors what was already passed on."""
        if type(event) is BookDelta:  # nearly every event (the feed's hot path): no mapped copy
            source = event.outcome  # of a mirror that is then dropped
            if source is _YES:
                key = (event.ts_ns, event.side, event.px, event.qty)
            else:
                side = _SELL if event.side is _BUY else _BUY  # opposite(), inlined: every mirror
                key = (event.ts_ns, side, PX_ONE - event.px, event.qty)
            last = self._last_level
            if last is not None and last[0] is not source and last[1] == key:
                self._last_level = None  # one mirror per change
                return None
            self._last_level = (source, key)
            return event if source is _YES else to_yes(event)
        source = getattr(event, "outcome", _YES)
        ev = to_yes(event) if source is _NO else event
        t = type(ev)
        if t is TradePrint:
            assert isinstance(ev, TradePrint)
            return ev if self._new_trade(source, ev) else None
        if t is TickSizeChanged:
            assert isinstance(ev, TickSizeChanged)
            tick = self._last_tick
            if tick is not None and tick[0] is not source and tick[1:] == (ev.ts_ns, ev.tick_px):
                self._last_tick = None
                return None
            self._last_tick = (source, ev.ts_ns, ev.tick_px)
            return ev
        return ev

    def _new_trade(self, source: Outcome, ev: TradePrint) -> bool:
        if ev.ts_ns != self._trades_ts:
            self._trades_ts = ev.ts_ns
            self._unpaired[_YES].clear()
            self._unpaired[_NO].clear()
        other = self._unpaired[_NO if source is _YES else _YES]
        for i, (_, tid, px, qty, aggressor) in enumerate(other):
            if px == ev.px and qty == ev.qty and aggressor == ev.aggressor and tid == ev.trade_id:
                del other[i]  # the mirror of a trade already passed on
                return False
        self._unpaired[source].append((ev.ts_ns, ev.trade_id, ev.px, ev.qty, ev.aggressor))
        return True
