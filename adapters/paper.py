"""Paper trading and dry-run: the live feed in, no order out.

* ``PaperVenue``: one pykka actor owning a ``venue.exchange.SimExchange`` per market, fed by the live
  market data. Our orders get queue positions behind the displayed size, advance on live trades and
  deltas, and fill as in the simulator; execution reports go back to the market actors. Market data
  of either token goes through the market's ``core.yes_view.YesView`` first: the exchange sees YES
  events only (a NO book snapshot as the YES snapshot it mirrors) and each venue trade once, whether
  the feed sends raw events of both tokens or events already put on the YES book (the view passes
  a YES-only stream unchanged).
* ``PaperPort``: the sessions' ``ExchangePort`` in paper mode (tells the venue, never blocks).
* ``DryRunPort``: acknowledges every command at once and sends nothing anywhere; the decisions and
  their reasons are logged by the sessions as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pykka

from core.inventory import OrderLike
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    BookDelta,
    BookSnapshot,
    Cancel,
    CancelAll,
    Canceled,
    Command,
    ExecBatch,
    ExecEvent,
    Filled,
    Level,
    MarketBatch,
    MarketResolved,
    Merge,
    Merged,
    Place,
    TickSizeChanged,
    TradePrint,
)
from core.ports import Clock
from core.units import PX_ONE, Outcome, Side
from core.yes_view import YesView
from venue.exchange import QueueModel, SimExchange
from venue.markouts import Markouts

log = logging.getLogger(__name__)

Deliver = Callable[[str, object], object]


class Submit(msgspec.Struct, frozen=True):
    """Commands from one market's session to the paper venue."""

    market: str
    commands: tuple[Command, ...]


class GetPaperMarkets(msgspec.Struct, frozen=True):
    """Ask for the per-market venue state (exchange, markouts, event count) for the summary."""


class GetRewardBooks(msgspec.Struct, frozen=True):
    """Ask (reward tracking, ``app.rewards``) for each market's resting paper orders and displayed book.

    The answer: ``{market: (orders, bids, asks)}``, ``orders`` as ``(client id, (outcome, side, own
    price, unfilled size))`` and ``bids``/``asks`` the displayed YES levels (which never hold them).
    """


class PaperMarket:
    """What the summary reads of one paper market (the same shape as a simulator lane)."""

    def __init__(self, info: MarketInfo, queue: QueueModel) -> None:
        self.market = info.market
        self.exchange = SimExchange(info, queue)
        #: This market's feed on the YES book, each happening once (``core.yes_view``).
        self.view = YesView()
        self.markouts = Markouts()
        self.events = 0
        self.resolution: tuple[int, bool, int] | None = None


class PaperVenue(pykka.ThreadingActor):
    """The simulated venue behind paper trading (see the module docstring)."""

    def __init__(
        self, markets: Sequence[MarketInfo], deliver: Deliver, clock: Clock, queue: QueueModel | None = None
    ) -> None:
        super().__init__()
        self.markets = {m.market: PaperMarket(m, queue or QueueModel()) for m in markets}
        self.deliver = deliver
        self.clock = clock

    def on_receive(self, message: Any) -> Any:
        """Market data updates the displayed book; commands act on our simulated orders."""
        if isinstance(message, Submit):
            pm = self.markets.get(message.market)
            if pm is None:
                return None
            now = self.clock.now_ns()
            for cmd in message.commands:
                self._send(pm, pm.exchange.apply(cmd, now), now)
            return None
        if isinstance(message, GetPaperMarkets):
            return dict(self.markets)
        if isinstance(message, GetRewardBooks):
            return {m: _reward_book(pm.exchange) for m, pm in self.markets.items()}
        if isinstance(message, MarketBatch):
            for ev in message.events:
                self._route(ev)
            return None
        self._route(message)
        return None

    def _route(self, message: object) -> None:
        market = getattr(message, "market", None)
        pm = self.markets.get(market) if isinstance(market, str) else None
        if pm is not None:
            self._market_event(pm, message)

    def _market_event(self, pm: PaperMarket, raw: object) -> None:
        if not isinstance(raw, BookDelta | TradePrint | BookSnapshot | TickSizeChanged | MarketResolved):
            return
        ev = pm.view.apply(raw)  # on the YES book; None: the mirror of something already applied
        if ev is None:
            return
        ex = pm.exchange
        out: list[ExecEvent] | None = None
        ts = ev.ts_ns
        if isinstance(ev, BookDelta):
            out = ex.on_level(ev.side, ev.px, ev.qty, ts)
        elif isinstance(ev, TradePrint):
            out = ex.on_trade(ev.aggressor, ev.px, ev.qty, ts)
        elif isinstance(ev, BookSnapshot):
            out = ex.on_snapshot(ev)
        elif isinstance(ev, TickSizeChanged):
            ex.set_tick(ev.tick_px)
        elif isinstance(ev, MarketResolved):
            b = ex.book
            mid2 = b.bid_px + b.ask_px if 0 <= b.bid_px < b.ask_px <= PX_ONE else pm.markouts.last_mid2
            pm.resolution = (ts, ev.yes_won, mid2)
            out = ex.resolve(ts)
        else:
            return
        pm.events += 1
        if out:
            self._send(pm, out, ts)
        if ts >= pm.markouts.due:
            pm.markouts.update(ts, ex)

    def _send(self, pm: PaperMarket, out: list[ExecEvent], ts: int) -> None:
        if not out:
            return
        n_fills = len(pm.exchange.fills) - sum(isinstance(ev, Filled) for ev in out)
        for ev in out:
            if isinstance(ev, Filled):
                pm.markouts.start(ts, n_fills)
                n_fills += 1
                log.info(
                    "%s: paper fill %s %s %s @ %s", pm.market, ev.side.name, ev.outcome.name, ev.qty, ev.px
                )
        self.deliver(pm.market, ExecBatch(tuple(out)))


def _reward_book(
    ex: SimExchange,
) -> tuple[tuple[tuple[str, OrderLike], ...], tuple[Level, ...], tuple[Level, ...]]:
    orders = tuple(
        (cid, (o.outcome, o.side, o.yes_px if o.outcome is Outcome.YES else PX_ONE - o.yes_px, o.qty))
        for cid, o in ex.orders.items()
        if o.qty > 0
    )
    return orders, ex.book.levels(Side.BUY), ex.book.levels(Side.SELL)


class PaperPort:
    """``ExchangePort`` of paper trading: commands go to the ``PaperVenue`` actor."""

    def __init__(self, venue: pykka.ActorRef[Any], market: str) -> None:
        self.venue = venue
        self.market = market

    def submit(self, commands: Sequence[Command]) -> None:
        """Tell the paper venue (never blocks)."""
        self.venue.tell(Submit(self.market, tuple(commands)))

    def cancel_all(self, market: str) -> None:
        """Cancel every paper order of ``market``."""
        self.venue.tell(Submit(market, (CancelAll(market=market),)))


class DryRunPort:
    """``ExchangePort`` that sends nothing: every command is acknowledged at once, none can fill.

    A merge is acknowledged as done (``Merged``): the session then quotes as it would after it.
    """

    def __init__(self, market: str, deliver: Deliver, clock: Clock) -> None:
        self.market = market
        self.deliver = deliver
        self.clock = clock
        self.live: set[str] = set()

    def submit(self, commands: Sequence[Command]) -> None:
        """Acknowledge the commands to the session (one message); nothing leaves the process."""
        now = self.clock.now_ns()
        m = self.market
        acks: list[ExecEvent] = []
        for cmd in commands:
            if isinstance(cmd, Place):
                self.live.add(cmd.client_id)
                acks.append(
                    Accepted(market=m, client_id=cmd.client_id, order_id=f"dry-{cmd.client_id}", ts_ns=now)
                )
            elif isinstance(cmd, Cancel):
                if cmd.client_id in self.live:
                    self.live.discard(cmd.client_id)
                    acks.append(Canceled(market=m, client_id=cmd.client_id, ts_ns=now))
            elif isinstance(cmd, Merge):
                # Decided, logged by the session, sent nowhere: acknowledged as done, like an order.
                acks.append(Merged(market=m, merge_id=cmd.merge_id, ts_ns=now, qty=cmd.qty))
            else:
                acks.extend(self._cancel_everything(now))
        if acks:
            self.deliver(m, ExecBatch(tuple(acks)))

    def cancel_all(self, market: str) -> None:
        """Acknowledge the cancel of every order."""
        acks = self._cancel_everything(self.clock.now_ns())
        if acks:
            self.deliver(market, ExecBatch(tuple(acks)))

    def _cancel_everything(self, now: int) -> list[ExecEvent]:
        acks: list[ExecEvent] = [
            Canceled(market=self.market, client_id=cid, ts_ns=now) for cid in sorted(self.live)
        ]
        self.live.clear()
        return acks
