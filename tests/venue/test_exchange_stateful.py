"""Stateful model-based test: ``SimExchange`` against a naive replaying reference, side by side.

The market data is a random L2 feed of one YES book: level updates, snapshots (as the YES book or
as the mirrored NO book), liquidity arriving across our orders, and trades sent both ways round
(print then decrease, decrease then print) and with their two halves apart, other events between.

The reference keeps, per order, the list of everything that happened at its price since it joined
(or last filled) and replays it from scratch for every question, reading each decrease with what
later prints explained of it as a trade then a cancel (the module docstring of ``venue/exchange.py``).
It shares no code with the exchange's running bounds. After every step both must agree on every
fill and report, on each order's queue position, on the book we can trade and on our shares.
Invariants besides: no print, crossing level or snapshot fills us more than it traded or showed, at
our prices; no order fills beyond its size; a position is never negative nor above the displayed
size plus our earlier orders there; and a snapshot repeating the data never fills us.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot, Canceled, ExecEvent, Filled, Place, Rejected, TimeInForce
from core.units import PX_ONE, QTY_ONE, USDC6_ONE, Outcome, Side, format_qty, format_usdc6, notional_usdc6
from venue.exchange import QueueModel, SimExchange

YES, NO = Outcome.YES, Outcome.NO
BUY, SELL = Side.BUY, Side.SELL
TICK = 100
MIN_QTY = 5 * QTY_ONE
INFO = MarketInfo(market="m", yes_token="y", no_token="n", tick_px=TICK, min_qty=MIN_QTY, fee_rate_ppm=40_000)
PRICES = st.integers(44, 56).map(lambda k: k * TICK)
BID_PRICES = st.integers(44, 50).map(lambda k: k * TICK)  # the data book stays mostly uncrossed
ASK_PRICES = st.integers(50, 56).map(lambda k: k * TICK)
SIZES = st.one_of(st.integers(1, 60).map(lambda k: k * QTY_ONE), st.integers(QTY_ONE, 60 * QTY_ONE))
ORDER_SIZES = st.one_of(
    st.integers(5, 40).map(lambda k: k * QTY_ONE), st.integers(500, 4_000).map(lambda k: k * 10_000)
)
Key = tuple[Side, int]  # (YES book side, px)


@dataclass(eq=False)
class Rec:
    """An unexplained decrease: its size, and what of it no print has explained yet."""

    size: int
    left: int


@dataclass(eq=False)
class RefOrder:
    cid: str
    outcome: Outcome
    side: Side
    yes_side: Side
    px: int  # YES price
    qty: int
    start: int = 0  # position when it joined or last filled
    log: list[tuple[Any, ...]] = field(default_factory=list)
    # Decreases pending when it last filled: a print explaining them still trades through it.
    front: list[Rec] = field(default_factory=list)


class Reference:
    """A naive venue: per-order event logs replayed from scratch, plain dicts for everything."""

    def __init__(self, probabilistic: bool, power: int) -> None:
        self.prob = probabilistic
        self.power = power
        self.data: dict[Key, int] = {}
        self.used: dict[Key, int] = {}
        self.waiting: dict[Key, int] = {}  # prints whose decrease has not come
        self.stack: dict[Key, list[Rec]] = {}  # unexplained decreases, oldest first
        self.orders: list[RefOrder] = []
        self.held = {YES: 0, NO: 0}
        self.seq = 0
        self.out: list[tuple[Any, ...]] = []

    # --- reading ---------------------------------------------------------------------------------

    def eff(self, key: Key) -> int:
        return self.data.get(key, 0) - self.used.get(key, 0)

    def queue(self, side: Side, px: int) -> list[RefOrder]:
        return [o for o in self.orders if o.yes_side is side and o.px == px]

    def own_before(self, o: RefOrder) -> int:
        q = self.queue(o.yes_side, o.px)
        return sum(x.qty for x in q[: q.index(o)])

    def reset(self, o: RefOrder, start: int) -> None:
        o.start, o.log, o.front = start, [], list(self.stack.get((o.yes_side, o.px), []))

    def ahead(self, o: RefOrder) -> int:
        a = o.start
        for ev in o.log:
            if ev[0] in ("own", "trade"):
                a -= ev[1]
            elif ev[0] == "dec":
                _, rec, eff_after, own, move = ev
                a -= rec.size - rec.left  # what later prints showed to be a trade, then the cancel
                a = min(a - move * rec.left // rec.size, eff_after + own)
            else:  # "clip": we took liquidity at our own price
                a = min(a, ev[1] + ev[2])
        return a

    def best(self, side: Side) -> int | None:
        pxs = [px for (s, px) in self.data if s is side and self.eff((s, px)) > 0]
        if not pxs:
            return None
        return max(pxs) if side is BUY else min(pxs)

    def our_best(self, side: Side) -> int | None:
        pxs = [o.px for o in self.orders if o.yes_side is side]
        if not pxs:
            return None
        return max(pxs) if side is BUY else min(pxs)

    # --- market data -----------------------------------------------------------------------------

    def level(self, side: Side, px: int, data: int) -> tuple[int, int]:
        key = (side, px)
        d_old = self.data.get(key, 0)
        e_old = self.eff(key)
        # A decrease takes what we used first; an increase adds to what we can trade.
        e_new = e_old + data - d_old if data >= d_old else min(e_old, data)
        self.data[key] = data
        self.used[key] = data - e_new
        if data < d_old:
            d = d_old - data
            w = self.waiting.get(key, 0)
            n = min(d, w)
            self.waiting[key] = w - n
            u = d - n
            if not u:
                self.bound_by(side, px, floor=False)
            else:
                rec = Rec(u, u)
                self.stack.setdefault(key, []).append(rec)
                own = 0
                for o in self.queue(side, px):
                    move = 0
                    front = self.ahead(o) - own
                    if self.prob and front > 0:
                        behind = max(0, e_new + u - front)
                        fa = front**self.power
                        move = min(front, u * fa // (fa + behind**self.power))
                    o.log.append(("dec", rec, e_new, own, move))
                    own += o.qty
        elif data > d_old:
            self.stack.pop(key, None)  # the level grew: its unexplained decreases were cancels
        return e_old, e_new

    def on_level(self, side: Side, px: int, data: int) -> None:
        e_old, e_new = self.level(side, px, data)
        if e_new > e_old:
            opp = SELL if side is BUY else BUY
            ours = self.our_best(opp)
            if ours is not None and (px >= ours if side is BUY else px <= ours):
                self.cross(opp, px, e_new - e_old)

    def on_snapshot(self, bids: dict[int, int], asks: dict[int, int]) -> None:
        keys = {k for k, v in self.data.items() if v} | {(BUY, p) for p in bids} | {(SELL, p) for p in asks}
        for side, px in sorted(keys, key=lambda k: (k[0] is SELL, k[1])):
            self.level(side, px, (bids if side is BUY else asks).get(px, 0))
        for our, opp in ((BUY, SELL), (SELL, BUY)):
            while True:
                ours, best = self.our_best(our), self.best(opp)
                if ours is None or best is None or (best > ours if our is BUY else best < ours):
                    break
                q = self.eff((opp, best))
                if self.cross(our, best, q) < q:
                    break

    def on_trade(self, aggressor: Side, px: int, qty: int) -> None:
        side = BUY if aggressor is SELL else SELL
        key = (side, px)
        stack = self.stack.get(key, [])
        m = qty
        explained = []
        while m and stack:  # it explains the newest unexplained decreases first
            take = min(m, stack[-1].left)
            stack[-1].left -= take
            explained.append((stack[-1], take))
            m -= take
            if not stack[-1].left:
                stack.pop()
        self.waiting[key] = self.waiting.get(key, 0) + m
        at_px = self.queue(side, px)
        for o in at_px:
            # It advances an order by what waits for its decrease, and by what it explains of the
            # decreases before the order last filled (it was at the front then).
            t = m + sum(take for rec, take in explained if any(rec is r for r in o.front))
            if t:
                o.log.append(("trade", t))
        left = qty
        better = sorted(
            {o.px for o in self.orders if o.yes_side is side and (o.px > px if side is BUY else o.px < px)},
            reverse=side is BUY,
        )
        for p in better:  # through our price: we were first
            for o in self.queue(side, p):
                if left <= 0:
                    break
                take = min(o.qty, left)
                left -= take
                self.fill(o, take, p, "maker", shift=True)
        for o in at_px:
            if o not in self.orders:
                continue
            reach = -self.ahead(o)
            if reach <= 0:
                continue
            self.reset(o, 0)
            if left > 0:
                take = min(o.qty, reach, left)
                left -= take
                self.fill(o, take, px, "maker", shift=False)
        self.bound_by(side, px, floor=True)

    def bound_by(self, side: Side, px: int, floor: bool) -> None:
        # No more ahead than is shown plus our earlier orders; after a print, no less than those.
        own = 0
        for o in self.queue(side, px):
            a = self.ahead(o)
            if a > self.eff((side, px)) + own:
                o.log.append(("clip", self.eff((side, px)), own))
            elif floor and a < own:
                self.reset(o, own)
            own += o.qty

    # --- our orders ------------------------------------------------------------------------------

    def cross(self, our: Side, px: int, qty: int) -> int:
        left = qty
        prices = sorted(
            {o.px for o in self.orders if o.yes_side is our and (o.px >= px if our is BUY else o.px <= px)},
            reverse=our is BUY,
        )
        for p in prices:
            for o in self.queue(our, p):
                if left <= 0:
                    break
                take = min(o.qty, left)
                left -= take
                self.fill(o, take, p, "maker", shift=True)
        if left < qty:
            self.use(SELL if our is BUY else BUY, px, qty - left)
        return qty - left

    def use(self, side: Side, px: int, qty: int) -> None:
        self.used[(side, px)] = self.used.get((side, px), 0) + qty
        self.bound_by(side, px, floor=False)

    def fill(self, o: RefOrder, qty: int, yes_px: int, liquidity: str, shift: bool) -> None:
        o.qty -= qty
        self.held[o.outcome] += o.side * qty
        px = yes_px if o.outcome is YES else PX_ONE - yes_px
        self.out.append(("fill", o.cid, px, qty, liquidity, o.qty))
        if o not in self.orders:  # a taker
            return
        if shift:  # not through a print at its price: it keeps its place, our later orders move up
            q = self.queue(o.yes_side, o.px)
            for later in q[q.index(o) + 1 :]:
                later.log.append(("own", qty))
        if not o.qty:
            self.orders.remove(o)

    def remove(self, o: RefOrder) -> None:
        q = self.queue(o.yes_side, o.px)
        for later in q[q.index(o) + 1 :]:
            later.log.append(("own", o.qty))
        self.orders.remove(o)

    def place(self, p: Place) -> None:
        out = self.out
        yes_side = p.side if p.outcome is YES else Side(-p.side)
        yes_px = p.px if p.outcome is YES else PX_ONE - p.px
        reserved = sum(o.qty for o in self.orders if o.outcome is p.outcome and o.side is SELL)
        marketable = p.tif in ("FOK", "FAK")
        reason = ""
        if any(o.cid == p.client_id for o in self.orders):
            reason = f"duplicate client id {p.client_id}"
        elif p.px % TICK or not TICK <= p.px <= PX_ONE - TICK:
            reason = (
                f"invalid price {p.px}: must be a multiple of the tick {TICK} in [{TICK}, {PX_ONE - TICK}]"
            )
        elif p.qty < (1 if marketable else MIN_QTY):
            reason = f"size {format_qty(p.qty)} below the minimum {format_qty(MIN_QTY)}"
        elif p.post_only and marketable:
            reason = "post-only is only allowed with GTC/GTD"
        elif p.side is SELL and p.qty > self.held[p.outcome] - reserved:
            reason = "not enough balance / allowance"
        opp = SELL if yes_side is BUY else BUY
        best = self.best(opp)
        crosses = best is not None and (best <= yes_px if yes_side is BUY else best >= yes_px)
        if not reason and crosses and p.post_only:
            reason = "invalid post-only order: order crosses book"
        elif not reason and (crosses or marketable) and p.px * p.qty < USDC6_ONE * PX_ONE:
            amount = format_usdc6(notional_usdc6(p.px, p.qty))
            reason = f"invalid amount for a marketable {p.side.name} order (${amount}), min size: $1"
        if reason:
            out.append(("rejected", p.client_id, reason))
            return
        o = RefOrder(p.client_id, p.outcome, p.side, yes_side, yes_px, p.qty)
        if crosses:
            reach = [
                px
                for (s, px) in self.data
                if s is opp and (px <= yes_px if yes_side is BUY else px >= yes_px)
            ]
            if p.tif == "FOK" and sum(self.eff((opp, px)) for px in reach) < p.qty:
                out.append(
                    (
                        "canceled",
                        p.client_id,
                        "order couldn't be fully filled. FOK orders are fully filled or killed.",
                    )
                )
                return
            for px in sorted(reach, reverse=yes_side is SELL):
                take = min(o.qty, self.eff((opp, px)))
                if take:
                    self.use(opp, px, take)
                    self.fill(o, take, px, "taker", shift=False)
            if not o.qty:
                return
        if marketable:
            out.append(("canceled", p.client_id, "unfilled remainder"))
            return
        key = (yes_side, yes_px)
        o.start = max(0, self.eff(key) - self.waiting.get(key, 0)) + sum(
            x.qty for x in self.queue(yes_side, yes_px)
        )
        self.orders.append(o)
        out.insert(0, ("accepted", p.client_id))


def rows(events: list[ExecEvent] | None) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for e in events or []:
        if isinstance(e, Filled):
            out.append(("fill", e.client_id, e.px, e.qty, e.liquidity, e.leaves_qty))
        elif isinstance(e, Accepted):
            out.append(("accepted", e.client_id))
        elif isinstance(e, Rejected | Canceled):
            out.append((type(e).__name__.lower(), e.client_id, e.reason))
    return out


class ExchangeComparison(RuleBasedStateMachine):
    """Drive ``SimExchange`` and ``Reference`` with the same feed and orders and compare everything."""

    MODEL = "risk_averse"

    def __init__(self) -> None:
        super().__init__()
        self.ex = SimExchange(INFO, QueueModel(model=self.MODEL, power=2.0))  # type: ignore[arg-type]
        self.ref = Reference(self.MODEL == "probabilistic", 2)
        self.ts = 10**18
        self.cid = 0
        self.later: list[tuple[str, Side, int, int]] = []  # the second halves of trades sent apart
        self.placed: dict[str, int] = {}
        self.maker_fills = 0
        self.most_resting = 0
        self.filled: dict[str, int] = {}

    def _tick(self) -> int:
        self.ts += 1_000
        return self.ts

    def _compare(self, got: list[ExecEvent] | None) -> list[tuple[Any, ...]]:
        got_rows = rows(got)
        expected, self.ref.out = self.ref.out, []
        assert got_rows == expected
        for r in got_rows:
            if r[0] == "fill":
                self.filled[r[1]] = self.filled.get(r[1], 0) + r[3]
                assert r[5] >= 0 and self.filled[r[1]] <= self.placed[r[1]]
                event(f"fill: {r[4]}")
                self.maker_fills += r[4] == "maker"
        return got_rows

    def _ours(self, side: Side) -> list[int]:
        return [o.px for o in self.ref.orders if o.yes_side is side]

    @initialize(
        bids=st.lists(st.tuples(st.integers(44, 49), SIZES), min_size=1, max_size=5),
        asks=st.lists(st.tuples(st.integers(51, 56), SIZES), min_size=1, max_size=5),
        ours=st.lists(st.tuples(st.sampled_from([BUY, SELL]), st.integers(0, 2), ORDER_SIZES), max_size=4),
    )
    def seed(
        self, bids: list[tuple[int, int]], asks: list[tuple[int, int]], ours: list[tuple[Side, int, int]]
    ) -> None:
        # A book, and a few post-only orders of ours resting at or behind its touch.
        self._snapshot({k * TICK: q for k, q in bids}, {k * TICK: q for k, q in asks}, YES)
        for yes_side, behind, qty in ours:
            touch = self.ref.best(yes_side)
            assert touch is not None
            self._place(yes_side, BUY, touch - behind * TICK * yes_side, qty, "GTC", True)

    # --- market data -----------------------------------------------------------------------------

    def _snapshot(
        self, bids: dict[int, int], asks: dict[int, int], outcome: Outcome
    ) -> list[tuple[Any, ...]]:
        if outcome is YES:
            b, a = sorted(bids.items(), reverse=True), sorted(asks.items())
        else:  # the same book as the NO token shows it
            b = sorted(((PX_ONE - px, q) for px, q in asks.items()), reverse=True)
            a = sorted((PX_ONE - px, q) for px, q in bids.items())
        snap = BookSnapshot(market="m", outcome=outcome, ts_ns=self._tick(), bids=tuple(b), asks=tuple(a))
        crossing = self._crossing_shown(bids, asks)
        self.ref.on_snapshot(bids, asks)
        got = self._compare(self.ex.on_snapshot(snap))
        assert sum(r[3] for r in got if r[0] == "fill") <= crossing
        return got

    def _crossing_shown(self, bids: dict[int, int], asks: dict[int, int]) -> int:
        # What the new data shows across our orders, less what we already used of it.
        our_bid, our_ask = max(self._ours(BUY), default=-1), min(self._ours(SELL), default=PX_ONE + 1)
        total = 0
        for side, levels in ((SELL, asks), (BUY, bids)):
            for px, q in levels.items():
                if (side is SELL and px <= our_bid) or (side is BUY and px >= our_ask):
                    total += q
        return total

    def _price(self, data: st.DataObject, side: Side) -> int:
        # Half the time where one of our orders on that side rests.
        ours = self._ours(side)
        mine: bool = data.draw(st.booleans())
        if ours and mine:
            return data.draw(st.sampled_from(ours))
        return data.draw(BID_PRICES if side is BUY else ASK_PRICES)

    @rule(data=st.data(), side=st.sampled_from([BUY, SELL]), qty=st.one_of(st.just(0), SIZES))
    def update(self, data: st.DataObject, side: Side, qty: int) -> None:
        self.level(side, self._price(data, side), qty)

    @rule(data=st.data(), side=st.sampled_from([BUY, SELL]), frac=st.integers(0, 9))
    def shrink(self, data: st.DataObject, side: Side, frac: int) -> None:
        px = self._price(data, side)
        self.level(side, px, self.ref.data.get((side, px), 0) * frac // 10)

    def level(self, side: Side, px: int, qty: int) -> None:
        before = self.ref.data.get((side, px), 0)
        self.ref.on_level(side, px, qty)
        got = self._compare(self.ex.on_level(side, px, qty, self._tick()))
        assert sum(r[3] for r in got if r[0] == "fill") <= max(0, qty - before)  # only what arrived
        event("level: " + ("up" if qty > before else "down"))

    @precondition(lambda self: bool(self.ref.orders))
    @rule(data=st.data(), qty=SIZES)
    def cross(self, data: st.DataObject, qty: int) -> None:
        # Liquidity arriving at or across one of our orders.
        o = data.draw(st.sampled_from(self.ref.orders))
        opp = SELL if o.yes_side is BUY else BUY
        px = o.px - data.draw(st.integers(0, 2)) * TICK * (1 if o.yes_side is BUY else -1)
        self.level(opp, px, self.ref.data.get((opp, px), 0) + qty)

    @rule(
        data=st.data(),
        side=st.sampled_from([BUY, SELL]),
        qty=SIZES,
        order=st.sampled_from(
            ["print, decrease", "decrease, print", "print ... decrease", "decrease ... print"]
        ),
    )
    def trade(self, data: st.DataObject, side: Side, qty: int, order: str) -> None:
        px = self._price(data, side)
        shown = self.ref.data.get((side, px), 0)
        if not shown:
            return
        qty = min(qty, shown)
        halves = [("print", side, px, qty), ("decrease", side, px, qty)]
        if order.startswith("decrease"):
            halves.reverse()
        self._half(*halves[0])
        if "..." in order:
            self.later.append(halves[1])
        else:
            self._half(*halves[1])
        event(f"trade: {order}")

    @precondition(lambda self: bool(self.later))
    @rule(i=st.integers(0, 3))
    def release(self, i: int) -> None:
        self._half(*self.later.pop(min(i, len(self.later) - 1)))

    def _half(self, kind: str, side: Side, px: int, qty: int) -> None:
        if kind == "decrease":
            self.level(side, px, max(0, self.ref.data.get((side, px), 0) - qty))
            return
        aggressor = SELL if side is BUY else BUY
        self.ref.on_trade(aggressor, px, qty)
        got = self._compare(self.ex.on_trade(aggressor, px, qty, self._tick()))
        fills = [r for r in got if r[0] == "fill"]
        assert sum(r[3] for r in fills) <= qty
        for r in fills:  # only our orders at or better than the print's price
            yes_px = r[2] if r[1].startswith("y") else PX_ONE - r[2]
            assert yes_px >= px if side is BUY else yes_px <= px

    @rule(
        changes=st.lists(st.tuples(st.sampled_from([BUY, SELL]), PRICES, SIZES), max_size=3), no=st.booleans()
    )
    def snapshot(self, changes: list[tuple[Side, int, int]], no: bool) -> None:
        bids = {px: q for (s, px), q in self.ref.data.items() if s is BUY and q}
        asks = {px: q for (s, px), q in self.ref.data.items() if s is SELL and q}
        for side, px, q in changes:
            (bids if side is BUY else asks)[px] = q
        self._snapshot(bids, asks, NO if no else YES)
        event("snapshot: " + ("NO" if no else "YES"))

    @rule()
    def same_snapshot_again(self) -> None:
        bids = {px: q for (s, px), q in self.ref.data.items() if s is BUY and q}
        asks = {px: q for (s, px), q in self.ref.data.items() if s is SELL and q}
        assert [r for r in self._snapshot(bids, asks, YES) if r[0] == "fill"] == []

    # --- our orders ------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        yes_side=st.sampled_from([BUY, SELL]),
        buy=st.sampled_from([True, True, True, False]),
        qty=ORDER_SIZES,
        kind=st.sampled_from([("GTC", True)] * 6 + [("GTC", False), ("FAK", False), ("FOK", False)]),
    )
    def place(
        self, data: st.DataObject, yes_side: Side, buy: bool, qty: int, kind: tuple[TimeInForce, bool]
    ) -> None:
        # Mostly at or behind the touch (to rest and queue), sometimes anywhere (to cross).
        touch = self.ref.best(yes_side) or (4_900 if yes_side is BUY else 5_100)
        behind = data.draw(st.integers(-1, 3)) * TICK * (1 if yes_side is BUY else -1)
        yes_px = data.draw(st.one_of(*[st.just(touch - behind)] * 4, PRICES))
        tif, post_only = kind
        self._place(yes_side, BUY if buy else SELL, yes_px, qty, tif, post_only)

    def _place(
        self, yes_side: Side, side: Side, yes_px: int, qty: int, tif: TimeInForce, post_only: bool
    ) -> None:
        # A YES bid is a BUY YES or a SELL NO, a YES ask a SELL YES or a BUY NO.
        outcome = YES if (side is BUY) == (yes_side is BUY) else NO
        px = yes_px if outcome is YES else PX_ONE - yes_px
        self.cid += 1
        cid = f"{'y' if outcome is YES else 'n'}{self.cid}"
        p = Place(
            market="m",
            client_id=cid,
            outcome=outcome,
            side=side,
            px=px,
            qty=qty,
            tif=tif,
            post_only=post_only,
        )
        self.placed[cid] = qty
        self.ref.place(p)
        got = self._compare(self.ex.place(p, self._tick()))
        event("place: " + (got[0][0] if got else "nothing"))
        if got and got[0][0] == "rejected":
            event("rejected: " + got[0][2][:30])

    @precondition(lambda self: bool(self.ref.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        o = data.draw(st.sampled_from(self.ref.orders))
        self.ref.remove(o)
        assert rows(self.ex.cancel(o.cid, self._tick())) == [("canceled", o.cid, "canceled")]

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def same_orders_positions_book_and_shares(self) -> None:
        ex, ref = self.ex, self.ref
        assert sorted(ex.orders) == sorted(o.cid for o in ref.orders)
        for o in ref.orders:
            ahead = ex.orders[o.cid].ahead
            assert ahead == ref.ahead(o), o.cid
            # Never negative, never behind more than is displayed plus our earlier orders there.
            assert 0 <= ahead <= ref.eff((o.yes_side, o.px)) + ref.own_before(o)
            assert ex.orders[o.cid].qty == o.qty
        for (side, px), _ in ref.data.items():
            assert ex.book.qty_at(side, px) == ref.eff((side, px))
        assert ex.held == ref.held
        self.most_resting = max(self.most_resting, len(ref.orders))

    @invariant()
    def queues_by_price_mirror_the_levels(self) -> None:
        # The flat per-price lists the per-event paths read hold exactly the queues of our levels.
        ex = self.ex
        for levels, flat in ((ex.bids, ex._bid_q), (ex.asks, ex._ask_q)):
            assert {px: q for px, q in enumerate(flat) if q is not None} == levels

    def teardown(self) -> None:
        event(f"steps: {self.ts // 1_000 % 10**6 // 10 * 10}+")
        event(f"maker fills: {min(self.maker_fills, 10) // 5 * 5}+")
        event(f"most orders resting at once: {min(self.most_resting, 4)}")


class ProbabilisticExchangeComparison(ExchangeComparison):
    """The same comparison under the probabilistic queue model."""

    MODEL = "probabilistic"


_SETTINGS = settings(stateful_step_count=50, deadline=None)
ExchangeComparison.TestCase.settings = _SETTINGS
ProbabilisticExchangeComparison.TestCase.settings = _SETTINGS

TestExchangeComparison = ExchangeComparison.TestCase
TestProbabilisticExchangeComparison = ProbabilisticExchangeComparison.TestCase
