"""Stateful model-based test: the matching engine against a naive list-scan reference, side by side.

The reference keeps resting orders in one list in arrival order and, for each incoming order, scans it
for compatible counterparties in each party's own token (same token and opposite side, or the other
token and the same side for mint/merge). It shares no code with the engine's YES-equivalent book,
heaps or queues; its fee and cash use exact fractions. After every step both must agree on every trade
(counterparties, prices, quantities, order), every rejection and cancel, the depth of both tokens,
and every account; the engine's published deltas must rebuild its own depth; cash and shares must be
conserved exactly.

Sizes are Qty (1e-6 share): mostly whole shares and 0.01-share sizes (the orders a market maker
places), and odd 6-decimal sizes (market orders, fills of others) whose cash rounds: the maker's leg is
``floor(px * shares)`` micro-USDC, a transfer's taker moves the same, and a mint's or merge's taker the
rest of the pair's 1 USDC.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from core.messages import Canceled, Filled, Place, Rejected, TimeInForce
from core.units import (
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_ONE,
    SETTLE_PER_QTY_USDC6,
    USDC6_ONE,
    Outcome,
    Side,
    format_px,
    format_qty,
    format_usdc6,
)
from venue.matching import (
    REASON_BALANCE,
    REASON_EXPIRATION,
    REASON_EXPIRED,
    REASON_FAK_NO_MATCH,
    REASON_FAK_REMAINDER,
    REASON_FOK_KILLED,
    REASON_POST_ONLY_CROSSES,
    REASON_POST_ONLY_TIF,
    REASON_RESOLVED,
    REASON_USER_CANCELED,
    MatchingEngine,
    Report,
)

YES, NO = Outcome.YES, Outcome.NO
BUY, SELL = Side.BUY, Side.SELL
OWNERS = ("a", "b", "c")
MIN_QTY = 5 * QTY_ONE
RATE_PPM = 40_000
MIN_MARKETABLE = 500_000
STEP_NS = 1_000

# Mostly valid orders near the middle, so that books build up and cross; a few off-grid (valid only
# at tick 10), out-of-range, undersized or post-only-with-FOK/FAK ones exercise the rejections.
ON_GRID = st.integers(35, 65).map(lambda k: k * 100)
PRICES = st.one_of(
    ON_GRID,
    ON_GRID,
    ON_GRID,
    st.integers(350, 650).map(lambda k: k * 10),
    st.sampled_from([0, 10, 100, 9_900, 9_990, PX_ONE]),
)
# Whole shares (so that orders fill each other exactly), the 0.01-share order grid, and any 1e-6 size.
VALID_SIZE = st.one_of(
    st.integers(5, 30).map(lambda k: k * QTY_ONE),
    st.integers(500, 3_000).map(lambda k: k * ORDER_QTY_STEP),
    st.integers(5 * QTY_ONE, 30 * QTY_ONE),
)
SIZES = st.one_of(VALID_SIZE, VALID_SIZE, VALID_SIZE, st.integers(1, 6 * QTY_ONE))
VALID_ORDERS = st.tuples(
    st.sampled_from(OWNERS), st.sampled_from([YES, NO]), st.sampled_from([BUY, SELL]), ON_GRID, VALID_SIZE
)
ORDER_TYPES = st.sampled_from(
    [("GTC", False)] * 4
    + [("GTC", True)] * 2
    + [("GTD", False), ("GTD", True), ("FOK", False), ("FAK", False)]
    + [("FAK", True)]
)

#: (taker owner, taker cid, maker owner, maker cid, taker px, maker px, qty, taker fee)
FillRow = tuple[str, str, str, str, int, int, int, int]
#: (owner, cid, reason)
CancelRow = tuple[str, str, str]


@dataclass
class RefOrder:
    owner: str
    cid: str
    outcome: Outcome
    side: Side
    px: int
    leaves: int
    seq: int
    tif: str
    expire_ns: int


def _exact_fee(px: int, qty: int) -> Fraction:
    # shares * rate * p * (1 - p), in USDC.
    p = Fraction(px, PX_ONE)
    return Fraction(qty, QTY_ONE) * Fraction(RATE_PPM, 10**6) * p * (1 - p)


def _exact_notional(px: int, qty: int) -> Fraction:
    # price * shares, in USDC.
    return Fraction(px, PX_ONE) * Fraction(qty, QTY_ONE)


def _floor_usdc6(amount: Fraction) -> int:
    return floor(amount * USDC6_ONE)


def _fee_usdc6(px: int, qty: int) -> int:
    return floor(_exact_fee(px, qty) * 10**5) * 10


def _compatible(taker: RefOrder, maker: RefOrder) -> bool:
    if taker.outcome == maker.outcome:
        if taker.side == maker.side:
            return False
        return taker.px >= maker.px if taker.side == BUY else taker.px <= maker.px
    if taker.side != maker.side:
        return False
    # BUY YES at p with BUY NO at q mints when p + q >= 1; SELL with SELL merges when p + q <= 1.
    return taker.px + maker.px >= PX_ONE if taker.side == BUY else taker.px + maker.px <= PX_ONE


def _taker_px(taker: RefOrder, maker: RefOrder) -> int:
    return maker.px if taker.outcome == maker.outcome else PX_ONE - maker.px


class Reference:
    """Naive matcher: one list of resting orders, scanned in full for every decision."""

    def __init__(self, *, enforce: bool) -> None:
        self.enforce = enforce
        self.tick = 100
        self.orders: list[RefOrder] = []
        self.cash: dict[str, int] = defaultdict(int)
        self.shares: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.pool = 0
        self.fees = 0
        self.deposits = 0
        self.seq = 0
        self.resolved = False
        self.bought = [0, 0]  # per token, over all fills
        self.sold = [0, 0]

    def locked(self, owner: str) -> tuple[int, int, int]:
        exact = sum(
            (_exact_notional(o.px, o.leaves) for o in self.orders if o.owner == owner and o.side == BUY),
            Fraction(0),
        )
        cash = ceil(exact * USDC6_ONE)  # reported rounded up
        yes = sum(o.leaves for o in self.orders if o.owner == owner and o.side == SELL and o.outcome == YES)
        no = sum(o.leaves for o in self.orders if o.owner == owner and o.side == SELL and o.outcome == NO)
        return cash, yes, no

    def expire(self, now: int) -> list[CancelRow]:
        due = sorted(
            (o for o in self.orders if o.tif == "GTD" and o.expire_ns <= now),
            key=lambda o: (o.expire_ns, o.seq),
        )
        for o in due:
            self.orders.remove(o)
        return [(o.owner, o.cid, REASON_EXPIRED) for o in due]

    def _reason(self, owner: str, p: Place, now: int, taker: RefOrder) -> str:
        resting = p.tif in ("GTC", "GTD")
        makers = [o for o in self.orders if _compatible(taker, o)]
        if self.resolved:
            return REASON_RESOLVED
        if resting and p.qty < MIN_QTY:
            return f"order {p.client_id} is invalid. Size ({format_qty(p.qty)}) lower than the minimum: 5"
        # Whatever executes on arrival must be worth the marketable minimum: FOK/FAK, and a crossing
        # order that is not post-only.
        executes = not resting or (bool(makers) and not p.post_only)
        if executes and _exact_notional(p.px, p.qty) * USDC6_ONE < MIN_MARKETABLE:
            side = "BUY" if p.side == BUY else "SELL"
            shown = format_usdc6(_floor_usdc6(_exact_notional(p.px, p.qty)))
            return (
                f"invalid amount for a marketable {side} order (${shown}), "
                f"min size: ${format_usdc6(MIN_MARKETABLE)}"
            )
        if p.px % self.tick or p.px < self.tick or p.px > PX_ONE - self.tick:
            return (
                f"order {p.client_id} is invalid. Price ({format_px(p.px)}) breaks minimum tick size rule: "
                f"{format_px(self.tick)}"
            )
        if p.post_only and not resting:
            return REASON_POST_ONLY_TIF
        if p.tif == "GTD" and p.expire_ns <= now:
            return REASON_EXPIRATION
        if any(o.owner == owner and o.cid == p.client_id for o in self.orders):
            return f"order {p.client_id} is invalid. Duplicated."
        if p.post_only and makers:
            return REASON_POST_ONLY_CROSSES
        if self.enforce:
            _, locked_yes, locked_no = self.locked(owner)
            if p.side == BUY:
                # The notional at the limit, the fee bound and one micro-USDC for each mint piece whose
                # taker leg rounds up: all of it must fit in the free cash, exactly.
                locked_cash = sum(
                    (
                        _exact_notional(o.px, o.leaves)
                        for o in self.orders
                        if o.owner == owner and o.side == BUY
                    ),
                    Fraction(0),
                )
                need = _exact_notional(p.px, p.qty)
                if makers:
                    fee = ceil(_exact_fee(p.px, p.qty) * USDC6_ONE)
                    round_ups = sum(
                        1
                        for maker, qty in self._plan(taker)
                        if maker.side == taker.side and _exact_notional(maker.px, qty) * USDC6_ONE % 1
                    )
                    need += Fraction(fee + round_ups, USDC6_ONE)
                if need > Fraction(self.cash[owner], USDC6_ONE) - locked_cash:
                    return REASON_BALANCE
            else:
                held = self.shares[owner][p.outcome] - (locked_yes if p.outcome == YES else locked_no)
                if p.qty > held:
                    return REASON_BALANCE
        if p.tif == "FOK" and sum(o.leaves for o in makers) < p.qty:
            return REASON_FOK_KILLED
        if p.tif == "FAK" and not makers:
            return REASON_FAK_NO_MATCH
        return ""

    def _plan(self, taker: RefOrder) -> list[tuple[RefOrder, int]]:
        # The makers ``taker`` would meet and the size of each fill, without changing anything.
        leaves = {id(o): o.leaves for o in self.orders}
        left = taker.leaves
        plan: list[tuple[RefOrder, int]] = []
        sign = 1 if taker.side == BUY else -1  # a buyer wants the lowest price, a seller the highest
        while left:
            makers = [o for o in self.orders if leaves[id(o)] and _compatible(taker, o)]
            if not makers:
                break
            maker = min(makers, key=lambda o: (sign * _taker_px(taker, o), o.seq))
            qty = min(left, leaves[id(maker)])
            plan.append((maker, qty))
            leaves[id(maker)] -= qty
            left -= qty
        return plan

    def place(self, owner: str, p: Place, now: int) -> tuple[str, list[CancelRow], list[FillRow], str]:
        cancels = self.expire(now)
        taker = RefOrder(owner, p.client_id, p.outcome, p.side, p.px, p.qty, self.seq + 1, p.tif, p.expire_ns)
        reason = self._reason(owner, p, now, taker)
        if reason:
            return reason, cancels, [], ""
        self.seq += 1
        fills: list[FillRow] = []
        for maker, qty in self._plan(taker):
            t_px = _taker_px(taker, maker)
            fee = _fee_usdc6(t_px, qty)
            maker_cash = _floor_usdc6(_exact_notional(maker.px, qty))
            if taker.side == maker.side:  # mint or merge: the pair's 1 USDC, the maker's floor first
                taker_cash = qty * USDC6_ONE // QTY_ONE - maker_cash
                self.pool += (qty if taker.side == BUY else -qty) * USDC6_ONE // QTY_ONE
            else:
                taker_cash = maker_cash
            self._settle(taker, taker_cash, qty, fee)
            self._settle(maker, maker_cash, qty, 0)
            self.fees += fee
            taker.leaves -= qty
            maker.leaves -= qty
            if not maker.leaves:
                self.orders.remove(maker)
            fills.append((owner, p.client_id, maker.owner, maker.cid, t_px, maker.px, qty, fee))
        if taker.leaves:
            if p.tif in ("GTC", "GTD"):
                self.orders.append(taker)
            else:
                cancels.append((owner, p.client_id, REASON_FAK_REMAINDER))
        return "", cancels, fills, f"o-{self.seq:06d}"

    def _settle(self, o: RefOrder, cash: int, qty: int, fee: int) -> None:
        if o.side == BUY:
            self.cash[o.owner] -= cash + fee
            self.shares[o.owner][o.outcome] += qty
            self.bought[o.outcome] += qty
        else:
            self.cash[o.owner] += cash - fee
            self.shares[o.owner][o.outcome] -= qty
            self.sold[o.outcome] += qty

    def cancel(self, owner: str, cid: str, now: int) -> tuple[list[CancelRow], bool]:
        cancels = self.expire(now)
        for o in self.orders:
            if o.owner == owner and o.cid == cid:
                self.orders.remove(o)
                return [*cancels, (owner, cid, REASON_USER_CANCELED)], True
        return cancels, False

    def cancel_all(self, owner: str, outcome: Outcome | None, now: int) -> list[CancelRow]:
        cancels = self.expire(now)
        mine = [o for o in self.orders if o.owner == owner and (outcome is None or o.outcome == outcome)]
        for o in mine:
            self.orders.remove(o)
        return cancels + [(o.owner, o.cid, REASON_USER_CANCELED) for o in mine]

    def depth(self, outcome: Outcome, side: Side) -> tuple[tuple[int, int], ...]:
        # A YES bid at p is a BUY YES at p or a SELL NO at 1 - p; the NO book mirrors it.
        levels: dict[int, int] = defaultdict(int)
        for o in self.orders:
            if o.outcome == outcome and o.side == side:
                levels[o.px] += o.leaves
            elif o.outcome != outcome and o.side != side:
                levels[PX_ONE - o.px] += o.leaves
        return tuple(sorted(levels.items(), reverse=side == BUY))


class MatchingComparison(RuleBasedStateMachine):
    """Drive ``MatchingEngine`` and ``Reference`` with the same commands and compare everything."""

    ENFORCE = False

    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.engine = MatchingEngine(
            "m",
            tick_px=100,
            min_qty=MIN_QTY,
            fee_rate_ppm=RATE_PPM,
            min_marketable_usdc6=MIN_MARKETABLE,
            enforce_balance=self.ENFORCE,
        )
        self.ref = Reference(enforce=self.ENFORCE)
        self.now = 0
        self.next_cid = 0
        self.steps = 0
        self.trades = 0
        # The book as rebuilt from the published deltas only.
        self.l2: dict[tuple[Outcome, Side], dict[int, int]] = defaultdict(dict)

    @initialize(target=orders, seed=st.lists(VALID_ORDERS, max_size=12))
    def fund_and_seed(
        self, seed: list[tuple[str, Outcome, Side, int, int]]
    ) -> MultipleResults[tuple[str, str]]:
        # Funding first (balances only matter when enforced), then a few valid orders so that books are
        # deep enough to trade from the first rules on.
        if self.ENFORCE:
            for owner in OWNERS:
                self.engine.deposit(owner, 60 * USDC6_ONE)
                self.engine.split(owner, 20 * QTY_ONE)
                self.ref.cash[owner] += 60 * USDC6_ONE - 20 * USDC6_ONE
                self.ref.shares[owner] = [20 * QTY_ONE, 20 * QTY_ONE]
                self.ref.deposits += 60 * USDC6_ONE
                self.ref.pool += 20 * USDC6_ONE
        refs = []
        for owner, outcome, side, px, qty in seed:
            self.next_cid += 1
            cid = f"c{self.next_cid}"
            self._place(owner, cid, outcome, side, px, qty, "GTC", False, 0)
            refs.append((owner, cid))
        return multiple(*refs)

    # --- rules ---------------------------------------------------------------------------------------

    @rule(
        target=orders,
        owner=st.sampled_from(OWNERS),
        outcome=st.sampled_from([YES, NO]),
        side=st.sampled_from([BUY, SELL]),
        px=PRICES,
        qty=SIZES,
        order_type=ORDER_TYPES,
        expire_steps=st.integers(0, 4),
    )
    def place(
        self,
        owner: str,
        outcome: Outcome,
        side: Side,
        px: int,
        qty: int,
        order_type: tuple[TimeInForce, bool],
        expire_steps: int,
    ) -> tuple[str, str]:
        tif, post_only = order_type
        self.next_cid += 1
        cid = f"c{self.next_cid}"
        self._place(owner, cid, outcome, side, px, qty, tif, post_only, self.now + expire_steps * STEP_NS)
        return owner, cid

    @rule(
        target=orders,
        owner=st.sampled_from(OWNERS),
        outcome=st.sampled_from([YES, NO]),
        side=st.sampled_from([BUY, SELL]),
        px=ON_GRID,
        qty=VALID_SIZE,
        tif=st.sampled_from(["GTC", "GTC", "GTD", "FAK"]),
        expire_steps=st.integers(1, 2),
    )
    def place_valid(
        self, owner: str, outcome: Outcome, side: Side, px: int, qty: int, tif: TimeInForce, expire_steps: int
    ) -> tuple[str, str]:
        self.next_cid += 1
        cid = f"c{self.next_cid}"
        self._place(owner, cid, outcome, side, px, qty, tif, False, self.now + expire_steps * STEP_NS)
        return owner, cid

    @precondition(lambda self: bool(self.ref.orders))
    @rule(data=st.data())
    def place_duplicate(self, data: st.DataObject) -> None:
        live = data.draw(st.sampled_from(self.ref.orders))
        self._place(live.owner, live.cid, live.outcome, live.side, live.px, MIN_QTY, "GTC", True, 0)

    @rule(ref=consumes(orders))
    def cancel(self, ref: tuple[str, str]) -> None:
        owner, cid = ref
        report = self.engine.cancel(owner, cid, self.now)
        exp_cancels, found = self.ref.cancel(owner, cid, self.now)
        assert self._cancels(report) == exp_cancels
        assert (report.error == "") == found
        self._apply_deltas(report)

    @rule(owner=st.sampled_from(OWNERS), outcome=st.sampled_from([None, YES, NO]))
    def cancel_all(self, owner: str, outcome: Outcome | None) -> None:
        report = self.engine.cancel_all(owner, self.now, outcome)
        assert self._cancels(report) == self.ref.cancel_all(owner, outcome, self.now)
        self._apply_deltas(report)

    @rule(steps=st.integers(1, 3), sweep=st.booleans())
    def advance_time(self, steps: int, sweep: bool) -> None:
        # Without a sweep, due GTD orders must expire at the start of the next call instead.
        self.now += steps * STEP_NS
        if not sweep:
            return
        report = self.engine.expire(self.now)
        assert self._cancels(report) == self.ref.expire(self.now)
        self._apply_deltas(report)

    @rule(tick=st.sampled_from([10, 100]))  # both venue ticks (core.units.TICKS_PX)
    def set_tick(self, tick: int) -> None:
        self.engine.set_tick(tick)
        self.ref.tick = tick

    @precondition(lambda self: self.steps >= 30 and not self.ref.resolved)
    @rule(yes_won=st.booleans())
    def resolve(self, yes_won: bool) -> None:
        report = self.engine.resolve(yes_won, self.now)
        expected = sorted(self.ref.orders, key=lambda o: o.seq)
        assert self._cancels(report) == [(o.owner, o.cid, REASON_RESOLVED) for o in expected]
        self.ref.orders.clear()
        self.ref.resolved = True
        win = YES if yes_won else NO
        paid = {}
        for owner in self.engine.owners():
            payout = self.ref.shares[owner][win] * USDC6_ONE // QTY_ONE  # 1 USDC a share
            self.ref.cash[owner] += payout
            self.ref.pool -= payout
            self.ref.shares[owner] = [0, 0]
            paid[owner] = (payout, self.ref.cash[owner])
        assert {s.owner: (s.payout_usdc6, s.cash_usdc6) for s in report.settlements} == paid
        assert self.engine.pool_usdc6 == self.ref.pool == 0
        self._apply_deltas(report)

    # --- helpers -------------------------------------------------------------------------------------

    def _place(
        self,
        owner: str,
        cid: str,
        outcome: Outcome,
        side: Side,
        px: int,
        qty: int,
        tif: TimeInForce,
        post_only: bool,
        expire_ns: int,
    ) -> None:
        self.steps += 1
        order = Place(
            market="m",
            client_id=cid,
            outcome=outcome,
            side=side,
            px=px,
            qty=qty,
            post_only=post_only,
            tif=tif,
            expire_ns=expire_ns if tif == "GTD" else 0,
        )
        report = self.engine.place(owner, order, self.now)
        reason, exp_cancels, exp_fills, exp_oid = self.ref.place(owner, order, self.now)
        rejected = [(o, e.reason) for o, e in report.execs if isinstance(e, Rejected)]
        assert rejected == ([(owner, reason)] if reason else [])
        assert report.order_id == exp_oid
        assert self._fill_rows(report) == exp_fills
        assert self._cancels(report) == exp_cancels
        self._check_filled_events(report)
        self._apply_deltas(report)
        event("place: " + ("rejected" if reason else "traded" if exp_fills else "no trade"))
        self.trades += len(report.trades)
        kinds = {t.kind for t in report.trades}
        for kind in sorted(kinds):
            event(f"trade kind: {kind}")
        if reason:
            event("reject: " + reason.replace(cid, "<id>").split("(")[0])
            if reason.startswith("invalid amount"):
                event(f"marketable minimum: {tif}")

    @staticmethod
    def _cancels(report: Report) -> list[CancelRow]:
        return [(o, e.client_id, e.reason) for o, e in report.execs if isinstance(e, Canceled)]

    @staticmethod
    def _fill_rows(report: Report) -> list[FillRow]:
        return [
            (
                t.taker_owner,
                t.taker_client_id,
                t.maker_owner,
                t.maker_client_id,
                t.taker_px,
                t.maker_px,
                t.qty,
                t.taker_fee_usdc6,
            )
            for t in report.trades
        ]

    @staticmethod
    def _check_filled_events(report: Report) -> None:
        filled = [(o, e) for o, e in report.execs if isinstance(e, Filled)]
        assert len(filled) == 2 * len(report.trades)
        for t, (maker, taker) in zip(report.trades, zip(filled[::2], filled[1::2], strict=True), strict=True):
            assert (maker[0], maker[1].client_id, maker[1].liquidity, maker[1].fee_usdc6) == (
                t.maker_owner,
                t.maker_client_id,
                "maker",
                0,
            )
            assert (taker[0], taker[1].client_id, taker[1].liquidity, taker[1].fee_usdc6) == (
                t.taker_owner,
                t.taker_client_id,
                "taker",
                t.taker_fee_usdc6,
            )
            assert maker[1].trade_id == taker[1].trade_id == t.trade_id
            assert (maker[1].px, taker[1].px, maker[1].qty) == (t.maker_px, t.taker_px, t.qty)
        assert len(report.prints) == 2 * len(report.trades)

    def _apply_deltas(self, report: Report) -> None:
        for d in report.deltas:
            levels = self.l2[(d.outcome, d.side)]
            if d.qty:
                levels[d.px] = d.qty
            else:
                levels.pop(d.px, None)

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def best_prices_are_top_of_depth(self) -> None:
        for outcome in (YES, NO):
            bids, asks = self.engine.depth(outcome, BUY, 1), self.engine.depth(outcome, SELL, 1)
            assert self.engine.best_bid(outcome) == (bids[0][0] if bids else None)
            assert self.engine.best_ask(outcome) == (asks[0][0] if asks else None)

    @invariant()
    def book_is_not_crossed(self) -> None:
        bid, ask = self.engine.best_bid(YES), self.engine.best_ask(YES)
        assert bid is None or ask is None or bid < ask
        no_bid, no_ask = self.engine.best_bid(NO), self.engine.best_ask(NO)
        assert no_bid is None or no_ask is None or no_bid < no_ask

    @invariant()
    def depth_matches_reference_and_published_deltas(self) -> None:
        for outcome in (YES, NO):
            for side in (BUY, SELL):
                depth = self.engine.depth(outcome, side)
                assert depth == self.ref.depth(outcome, side)
                assert depth == tuple(sorted(self.l2[(outcome, side)].items(), reverse=side == BUY))

    @invariant()
    def queues_are_in_time_priority(self) -> None:
        for outcome in (YES, NO):
            for side in (BUY, SELL):
                for px, qty in self.engine.depth(outcome, side):
                    queue = self.engine.queue(outcome, side, px)
                    ids = [o.order_id for o in queue]
                    assert ids == sorted(ids)
                    assert sum(o.leaves_qty for o in queue) == qty

    @invariant()
    def accounts_match_reference(self) -> None:
        for owner in self.engine.owners():
            bal = self.engine.balance(owner)
            assert (bal.cash_usdc6, bal.yes_qty, bal.no_qty) == (
                self.ref.cash[owner],
                *self.ref.shares[owner],
            )
            assert (bal.locked_cash_usdc6, bal.locked_yes_qty, bal.locked_no_qty) == self.ref.locked(owner)
        assert (self.engine.pool_usdc6, self.engine.fees_usdc6) == (self.ref.pool, self.ref.fees)

    @invariant()
    def cash_and_shares_are_conserved(self) -> None:
        balances = [self.engine.balance(owner) for owner in self.engine.owners()]
        total_cash = sum(b.cash_usdc6 for b in balances)
        assert total_cash + self.engine.pool_usdc6 + self.engine.fees_usdc6 == self.engine.deposits_usdc6
        assert self.engine.deposits_usdc6 == self.ref.deposits
        yes = sum(b.yes_qty for b in balances)
        no = sum(b.no_qty for b in balances)
        assert yes * SETTLE_PER_QTY_USDC6 == no * SETTLE_PER_QTY_USDC6 == self.engine.pool_usdc6

    @invariant()
    def net_buys_per_token_equal_minted_pairs(self) -> None:
        if self.ref.resolved:
            return
        funded = 20 * USDC6_ONE * len(OWNERS) if self.ENFORCE else 0
        minted = (self.engine.pool_usdc6 - funded) // SETTLE_PER_QTY_USDC6
        assert self.ref.bought[YES] - self.ref.sold[YES] == minted
        assert self.ref.bought[NO] - self.ref.sold[NO] == minted

    @invariant()
    def enforced_balances_never_go_negative(self) -> None:
        if not self.ENFORCE:
            return
        for owner in self.engine.owners():
            bal = self.engine.balance(owner)
            assert 0 <= bal.locked_cash_usdc6 <= bal.cash_usdc6
            assert 0 <= bal.locked_yes_qty <= bal.yes_qty
            assert 0 <= bal.locked_no_qty <= bal.no_qty

    def teardown(self) -> None:
        event(f"steps: {self.steps // 10 * 10}+")
        event(f"trades: {min(self.trades, 20) // 5 * 5}+")


class EnforcedMatchingComparison(MatchingComparison):
    """The same comparison with balance enforcement on and funded accounts (the emulator's mode)."""

    ENFORCE = True


# Books need a few dozen orders to build up and trade; keep the profile's count when it asks for more.
_SETTINGS = settings(stateful_step_count=max(100, settings.default.stateful_step_count))
MatchingComparison.TestCase.settings = _SETTINGS
EnforcedMatchingComparison.TestCase.settings = _SETTINGS

TestMatchingComparison = MatchingComparison.TestCase
TestEnforcedMatchingComparison = EnforcedMatchingComparison.TestCase
