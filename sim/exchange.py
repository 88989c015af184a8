"""The simulated venue for one market: displayed (replayed or generated) liquidity plus our orders.

Our orders are not in the recorded data, so each one carries a queue position: it joins behind the
size displayed at its price, advances when trades print at that price (and, under the probabilistic
model, when the level shrinks from cancels ahead of it), and fills only once the size ahead of it is
consumed. A trade through our price, or displayed liquidity arriving across it, fills it at once at
our price. Orders are handled on the YES-equivalent book (a BUY NO at q rests as a YES ask at 1 - q)
and reported in their own token. Post-only orders that would cross are rejected; others take the
displayed liquidity and pay Polymarket's taker fee. Deterministic; time is passed in.

Paper trading uses this class unchanged, fed by the live market-data feed.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from core.book import L2Book
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    BookSnapshot,
    Cancel,
    Canceled,
    Command,
    ExecEvent,
    Filled,
    Place,
    Rejected,
)
from core.units import (
    PX_ONE,
    Outcome,
    Side,
    complement_notional_usdc6,
    format_qty,
    notional_usdc6,
    taker_fee_usdc6,
)

QueueModelName = Literal["risk_averse", "probabilistic"]

#: A trade print and the level decrease it causes arrive together (the venue sends both for one
#: match, in either order, stamped within a few ms); within this window one explains the other, so
#: the queue advances once per trade. A decrease and a print further apart are a cancel and a trade.
NET_WINDOW_NS = 5_000_000


class QueueModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How our place in the queue moves when the displayed level shrinks without a trade.

    ``risk_averse``: only trades advance us (cancels are assumed to come from behind).
    ``probabilistic``: a decrease of d is split ahead/behind in proportion to ``f(x) = x ** power``
    of the size ahead and behind (hftbacktest's power probability queue model), in expectation.
    """

    model: QueueModelName = "risk_averse"
    power: float = 2.0


class SimOrder:
    """One of our resting orders at the simulated venue."""

    __slots__ = ("ahead", "client_id", "order_id", "outcome", "qty", "side", "yes_px", "yes_side")

    def __init__(
        self, client_id: str, order_id: str, outcome: Outcome, side: Side, yes_px: int, qty: int, ahead: int
    ) -> None:
        self.client_id = client_id
        self.order_id = order_id
        self.outcome = outcome
        self.side = side
        self.yes_side = side if outcome is Outcome.YES else Side(-side)
        self.yes_px = yes_px
        self.qty = qty
        self.ahead = ahead


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """A fill of ours as the ledger sees it (YES-equivalent side and price; ``mid2`` is 2x the mid).

    ``qty`` is in Qty (1e-6 share): fills may come in any such size, whatever the size of the order.
    ``cash_usdc6`` is what the fill moves on the YES-equivalent account before fees, with the venue's
    rounding: ``notional_usdc6(px, qty)`` for a YES fill; for a NO fill at ``q`` (short a YES at
    ``1 - q`` plus 1 USDC a share) the rest of the pair's 1 USDC, ``qty - notional_usdc6(q, qty)``.
    Both equal ``yes_px * qty`` exactly for sizes on the 0.01-share grid.
    """

    ts_ns: int
    mid2: int
    yes_side: Side
    yes_px: int
    qty: int
    fee_usdc6: int
    liquidity: Literal["maker", "taker"]
    cash_usdc6: int


class SimExchange:
    """One market's simulated venue (see the module docstring)."""

    def __init__(self, info: MarketInfo, queue: QueueModel | None = None, owner: str = "us") -> None:
        """Create an empty venue for ``info``."""
        self.info = info
        self.market = info.market
        self.book = L2Book(tick_px=info.tick_px, min_qty=info.min_qty)
        self.queue = queue or QueueModel()
        self.prob = self.queue.model == "probabilistic"
        self.power = self.queue.power
        self.fee_rate_ppm = info.fee_rate_ppm
        self.owner = owner
        self.orders: dict[str, SimOrder] = {}
        self.held = {Outcome.YES: 0, Outcome.NO: 0}  # our shares, from our fills
        #: Twice the last two-sided mid (-1 before any): the mark when the book ends one-sided.
        self.last_mid2 = -1
        # Recent trades and unexplained level decreases at our prices, keyed (level side, px).
        self._traded: dict[tuple[Side, int], list[int]] = {}
        self._shrunk: dict[tuple[Side, int], list[int]] = {}
        self.bids: dict[int, list[SimOrder]] = {}  # our resting YES-equivalent bids by price
        self.asks: dict[int, list[SimOrder]] = {}
        self.our_bid = -1  # best price of our bids (-1: none)
        self.our_ask = PX_ONE + 1
        self.order_seq = 0
        self.trade_seq = 0
        self.fills: list[Fill] = []
        self.resolved = False
        # Quote statistics, integrated over time while we rest on both sides.
        self._stat_ts = -1
        self.two_sided_ns = 0
        self.spread_px_ns = 0
        self.first_ts = -1
        self.last_ts = 0

    # --- market data -------------------------------------------------------------------------------

    def on_snapshot(self, ev: BookSnapshot) -> list[ExecEvent]:
        """Replace the displayed book; our orders keep their place, bounded by what is displayed."""
        self._touch(ev.ts_ns)
        if ev.outcome is Outcome.NO:
            bids = tuple((PX_ONE - px, q) for px, q in ev.asks)
            asks = tuple((PX_ONE - px, q) for px, q in ev.bids)
        else:
            bids, asks = ev.bids, ev.asks
        self.book.apply_snapshot(bids, asks, ev.ts_ns, ev.tick_px, ev.min_qty)
        if 0 <= self.book.bid_px < self.book.ask_px <= PX_ONE:
            self.last_mid2 = self.book.bid_px + self.book.ask_px
        for levels, arr in ((self.bids, self.book.bids), (self.asks, self.book.asks)):
            for px, orders in levels.items():
                own = 0  # our earlier orders at this price stay ahead; the snapshot bounds the rest
                for o in orders:
                    o.ahead = min(max(0, o.ahead - own), arr[px]) + own
                    own += o.qty
        out: list[ExecEvent] = []
        if self.book.ask_px <= self.our_bid:
            self._cross_fill(Side.BUY, self.book.ask_px, self.book.asks[self.book.ask_px], ev.ts_ns, out)
        if self.book.bid_px >= self.our_ask:
            self._cross_fill(Side.SELL, self.book.bid_px, self.book.bids[self.book.bid_px], ev.ts_ns, out)
        return out

    def set_tick(self, tick_px: int) -> None:
        """The venue's tick changed; the book is reseeded by the next snapshot."""
        self.book.set_tick(tick_px)
        self.book.clear()

    def on_level(self, side: Side, px: int, qty: int, ts_ns: int) -> list[ExecEvent] | None:
        """A displayed level changed to ``qty`` in total. Returns fills of ours, or None."""
        book = self.book
        if side is Side.BUY:
            old = book.bids[px]
            if book.set_level(side, px, qty, ts_ns) and 0 <= book.bid_px < book.ask_px <= PX_ONE:
                self.last_mid2 = book.bid_px + book.ask_px
            if qty < old and px in self.bids:
                self._shrink(self.bids[px], old, qty, (Side.BUY, px), ts_ns)
            elif qty > old and px >= self.our_ask:
                # A buyer now rests at or above our ask: in the real book it would have hit us.
                out: list[ExecEvent] = []
                self._cross_fill(Side.SELL, px, qty - old, ts_ns, out)
                return out
            return None
        old = book.asks[px]
        if book.set_level(side, px, qty, ts_ns) and 0 <= book.bid_px < book.ask_px <= PX_ONE:
            self.last_mid2 = book.bid_px + book.ask_px
        if qty < old and px in self.asks:
            self._shrink(self.asks[px], old, qty, (Side.SELL, px), ts_ns)
        elif qty > old and px <= self.our_bid:
            out = []
            self._cross_fill(Side.BUY, px, qty - old, ts_ns, out)
            return out
        return None

    def _net(
        self, book: dict[tuple[Side, int], list[int]], key: tuple[Side, int], amount: int, ts_ns: int
    ) -> int:
        # How much of ``amount`` a recent opposite record (within NET_WINDOW_NS) already explains.
        rec = book.get(key)
        if rec is None or ts_ns - rec[1] > NET_WINDOW_NS:
            return 0
        m = min(amount, rec[0])
        rec[0] -= m
        if rec[0] <= 0:
            del book[key]
        return m

    def _record(
        self, book: dict[tuple[Side, int], list[int]], key: tuple[Side, int], amount: int, ts_ns: int
    ) -> None:
        rec = book.get(key)
        if rec is None or ts_ns - rec[1] > NET_WINDOW_NS:
            book[key] = [amount, ts_ns]
        else:
            rec[0] += amount
            rec[1] = ts_ns

    def _shrink(self, orders: list[SimOrder], old: int, new: int, key: tuple[Side, int], ts_ns: int) -> None:
        # A trade at our price shows up twice, as a print and as the level's decrease, in either
        # order: the part of the decrease a recent print explains has already moved the queue.
        explained = self._net(self._traded, key, old - new, ts_ns)
        unexplained = old - new - explained
        if unexplained > 0:
            self._record(self._shrunk, key, unexplained, ts_ns)
        own = 0  # our earlier orders at this price: ahead of this one, not in the displayed size
        n = self.power
        for o in orders:
            others = max(0, o.ahead - own)
            if self.prob and unexplained > 0:
                behind = max(0, old - others)
                fa, fb = others**n, behind**n
                if fa + fb > 0:
                    others = max(0, others - int(unexplained * fa / (fa + fb)))
            o.ahead = min(others, new) + own
            own += o.qty

    def on_trade(self, aggressor: Side, px: int, qty: int, ts_ns: int) -> list[ExecEvent] | None:
        """A trade printed at ``px``: it may reach our resting orders on the side it hit."""
        if aggressor is Side.SELL:
            if px > self.our_bid:
                return None
            levels, prices = self.bids, sorted((p for p in self.bids if p >= px), reverse=True)
        else:
            if px < self.our_ask:
                return None
            levels, prices = self.asks, sorted(p for p in self.asks if p <= px)
        out: list[ExecEvent] = []
        left = qty
        key = (Side.BUY if aggressor is Side.SELL else Side.SELL, px)
        if px in levels:
            # The level's decrease for this trade may have arrived first and moved the queue already.
            at_px = qty - self._net(self._shrunk, key, qty, ts_ns)
            if at_px > 0:  # only the part no decrease explained can explain a later decrease
                self._record(self._traded, key, at_px, ts_ns)
        else:
            at_px = qty
        for p in prices:
            if left <= 0:
                break
            for o in list(levels[p]):
                if left <= 0:
                    break
                if p != px:
                    take = min(o.qty, left)  # the trade went through our price: we were first
                    left -= take
                    at_px = min(at_px, left)
                else:
                    # At our price the size ahead of us trades first; ``ahead`` counts our own
                    # earlier orders at this price too, so one print never fills two of them twice.
                    reach = at_px - o.ahead
                    o.ahead = max(0, o.ahead - at_px)
                    if reach <= 0:
                        continue
                    take = min(o.qty, reach)
                self._fill(o, take, o.yes_px, "maker", ts_ns, out)
        return out

    # --- our orders --------------------------------------------------------------------------------

    def place(self, cmd: Place, ts_ns: int) -> list[ExecEvent]:
        """Accept, reject, or (if it crosses and may take) execute one of our orders."""
        self._touch(ts_ns)
        out: list[ExecEvent] = []
        tick = self.book.tick_px
        reason = ""
        if self.resolved:
            reason = "market is resolved"
        elif cmd.client_id in self.orders:
            reason = f"duplicate client id {cmd.client_id}"
        elif cmd.px % tick or not tick <= cmd.px <= PX_ONE - tick:
            reason = (
                f"invalid price {cmd.px}: must be a multiple of the tick {tick} in [{tick}, {PX_ONE - tick}]"
            )
        elif cmd.qty < max(1, self.book.min_qty):
            reason = f"size {format_qty(cmd.qty)} below the minimum {format_qty(self.book.min_qty)}"
        elif cmd.post_only and cmd.tif in ("FOK", "FAK"):
            reason = "post-only is only allowed with GTC/GTD"
        elif cmd.side is Side.SELL and cmd.qty > self.held[cmd.outcome] - self._reserved(cmd.outcome):
            # Polymarket cannot be shorted: a sell needs shares not already offered by a resting sell.
            reason = "not enough balance / allowance"
        if reason:
            out.append(Rejected(market=self.market, client_id=cmd.client_id, ts_ns=ts_ns, reason=reason))
            return out
        self.order_seq += 1
        order = SimOrder(
            cmd.client_id,
            f"sim-{self.market}-{self.order_seq}",
            cmd.outcome,
            cmd.side,
            cmd.px if cmd.outcome is Outcome.YES else PX_ONE - cmd.px,
            cmd.qty,
            0,
        )
        book = self.book
        is_bid = order.yes_side is Side.BUY
        crosses = (book.ask_px <= order.yes_px) if is_bid else (book.bid_px >= order.yes_px)
        if crosses and cmd.post_only:
            out.append(
                Rejected(
                    market=self.market,
                    client_id=cmd.client_id,
                    ts_ns=ts_ns,
                    reason="invalid post-only order: order crosses book",
                )
            )
            return out
        if crosses:
            if cmd.tif == "FOK" and self._available(order) < order.qty:
                out.append(
                    Canceled(
                        market=self.market,
                        client_id=cmd.client_id,
                        ts_ns=ts_ns,
                        reason="order couldn't be fully filled. FOK orders are fully filled or killed.",
                    )
                )
                return out
            self._take(order, ts_ns, out)
            if order.qty <= 0:
                return out
        if cmd.tif in ("FOK", "FAK"):
            out.append(
                Canceled(
                    market=self.market, client_id=cmd.client_id, ts_ns=ts_ns, reason="unfilled remainder"
                )
            )
            return out
        levels = self.bids if is_bid else self.asks
        queue = levels.setdefault(order.yes_px, [])
        # Behind the displayed size and behind our own earlier orders at this price.
        order.ahead = (book.bids if is_bid else book.asks)[order.yes_px] + sum(o.qty for o in queue)
        self.orders[order.client_id] = order
        queue.append(order)
        self._update_best()
        out.insert(
            0, Accepted(market=self.market, client_id=cmd.client_id, order_id=order.order_id, ts_ns=ts_ns)
        )
        return out

    def apply(self, cmd: Command, ts_ns: int) -> list[ExecEvent]:
        """Carry out one command of ours (place, cancel or cancel-all) at ``ts_ns``."""
        if isinstance(cmd, Place):
            return self.place(cmd, ts_ns)
        if isinstance(cmd, Cancel):
            return self.cancel(cmd.client_id, ts_ns)
        return self.cancel_all(ts_ns)

    def cancel(self, client_id: str, ts_ns: int) -> list[ExecEvent]:
        """Cancel one of our orders (nothing if it already filled or was cancelled)."""
        self._touch(ts_ns)
        o = self.orders.get(client_id)
        if o is None:
            return []
        self._remove(o)
        return [Canceled(market=self.market, client_id=client_id, ts_ns=ts_ns, reason="canceled")]

    def cancel_all(self, ts_ns: int, reason: str = "canceled") -> list[ExecEvent]:
        """Cancel every order of ours."""
        self._touch(ts_ns)
        out: list[ExecEvent] = []
        for cid in list(self.orders):
            self._remove(self.orders[cid])
            out.append(Canceled(market=self.market, client_id=cid, ts_ns=ts_ns, reason=reason))
        return out

    def resolve(self, ts_ns: int) -> list[ExecEvent]:
        """The market resolved: every resting order is cancelled; nothing trades any more."""
        out = self.cancel_all(ts_ns, "market resolved")
        self.resolved = True
        return out

    # --- internals ---------------------------------------------------------------------------------

    def _reserved(self, outcome: Outcome) -> int:
        return sum(o.qty for o in self.orders.values() if o.outcome is outcome and o.side is Side.SELL)

    def _available(self, order: SimOrder) -> int:
        book = self.book
        if order.yes_side is Side.BUY:
            return sum(q for p, q in book.levels(Side.SELL) if p <= order.yes_px)
        return sum(q for p, q in book.levels(Side.BUY) if p >= order.yes_px)

    def _take(self, order: SimOrder, ts_ns: int, out: list[ExecEvent]) -> None:
        # Walk the displayed book from the best price; our take hides that liquidity until the data
        # next sets the level again.
        book = self.book
        buy = order.yes_side is Side.BUY
        while order.qty > 0:
            p = book.ask_px if buy else book.bid_px
            if (buy and (p > PX_ONE or p > order.yes_px)) or (not buy and (p < 0 or p < order.yes_px)):
                break
            avail = book.asks[p] if buy else book.bids[p]
            take = min(avail, order.qty)
            book.set_level(Side.SELL if buy else Side.BUY, p, avail - take, ts_ns)
            self._fill(order, take, p, "taker", ts_ns, out, resting=False)

    def _cross_fill(self, our_side: Side, px: int, qty: int, ts_ns: int, out: list[ExecEvent]) -> None:
        # Displayed liquidity arrived across our resting orders: we trade first, at our price.
        left = qty
        if our_side is Side.BUY:
            prices = sorted((p for p in self.bids if p >= px), reverse=True)
            levels = self.bids
        else:
            prices = sorted(p for p in self.asks if p <= px)
            levels = self.asks
        for p in prices:
            for o in list(levels[p]):
                if left <= 0:
                    return
                take = min(o.qty, left)
                left -= take
                self._fill(o, take, p, "maker", ts_ns, out)

    def _fill(
        self,
        o: SimOrder,
        qty: int,
        yes_px: int,
        liquidity: Literal["maker", "taker"],
        ts_ns: int,
        out: list[ExecEvent],
        resting: bool = True,
    ) -> None:
        self._touch(ts_ns)
        own_px = yes_px if o.outcome is Outcome.YES else PX_ONE - yes_px
        fee = taker_fee_usdc6(own_px, qty, self.fee_rate_ppm) if liquidity == "taker" else 0
        o.qty -= qty
        self.held[o.outcome] += o.side * qty
        self.trade_seq += 1
        out.append(
            Filled(
                market=self.market,
                client_id=o.client_id,
                ts_ns=ts_ns,
                outcome=o.outcome,
                side=o.side,
                px=own_px,
                qty=qty,
                fee_usdc6=fee,
                liquidity=liquidity,
                trade_id=f"t-{self.market}-{self.trade_seq}",
                leaves_qty=o.qty,
            )
        )
        b = self.book
        mid2 = b.bid_px + b.ask_px if b.bid_px >= 0 and b.ask_px <= PX_ONE else 2 * yes_px
        yes = o.outcome is Outcome.YES
        self.fills.append(
            Fill(
                ts_ns=ts_ns,
                mid2=mid2,
                yes_side=o.yes_side,
                yes_px=yes_px,
                qty=qty,
                fee_usdc6=fee,
                liquidity=liquidity,
                cash_usdc6=notional_usdc6(own_px, qty) if yes else complement_notional_usdc6(own_px, qty),
            )
        )
        if resting and o.qty <= 0:
            self._remove(o)

    def _remove(self, o: SimOrder) -> None:
        self.orders.pop(o.client_id, None)
        levels = self.bids if o.yes_side is Side.BUY else self.asks
        lst = levels.get(o.yes_px)
        if lst is not None:
            if o in lst:
                # Our later orders at this price move up by what this one still had.
                for later in lst[lst.index(o) + 1 :]:
                    later.ahead = max(0, later.ahead - o.qty)
                lst.remove(o)
            if not lst:
                del levels[o.yes_px]
        self._update_best()

    def _update_best(self) -> None:
        self.our_bid = max(self.bids) if self.bids else -1
        self.our_ask = min(self.asks) if self.asks else PX_ONE + 1

    def close_stats(self, ts_ns: int) -> None:
        """Integrate the quote statistics up to the end of the run."""
        self._touch(ts_ns)

    def _touch(self, ts_ns: int) -> None:
        # Integrate the two-sided time and the quoted spread up to ts_ns with the current orders.
        if self.first_ts < 0:
            self.first_ts = ts_ns
        if self._stat_ts >= 0 and ts_ns > self._stat_ts and self.our_bid >= 0 and self.our_ask <= PX_ONE:
            dt = ts_ns - self._stat_ts
            self.two_sided_ns += dt
            self.spread_px_ns += (self.our_ask - self.our_bid) * dt
        self._stat_ts = max(self._stat_ts, ts_ns)
        self.last_ts = max(self.last_ts, ts_ns)
