"""The order ledger against a naive venue: whatever reaches it and in whatever order, a reconcile
brings its orders and positions back to the venue's, and every fill is applied exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from hypothesis import assume, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from core.ledger import (
    Audit,
    CancelVenueOrders,
    OrderLedger,
    PullMarket,
    QueryOrders,
    Report,
    ResendOrder,
    ResumeMarket,
    TradeLeg,
    VenueOrderView,
    VenuePosition,
    VenueTrade,
)
from core.markets import MarketInfo
from core.messages import Accepted, Adopted, Canceled, Filled, Place, Rejected
from core.units import ORDER_QTY_STEP, QTY_ONE, Outcome, Side

M = "0xm"
INFO = MarketInfo(market=M, yes_token="1", no_token="2")
SHARE = QTY_ONE
T0 = 10**18


def place(cid: str, side=Side.BUY, outcome=Outcome.YES, px=4_700, qty=10 * SHARE) -> Place:
    return Place(market=M, client_id=cid, outcome=outcome, side=side, px=px, qty=qty)


def leg(order_id: str, p: Place, qty: int, liquidity="maker") -> TradeLeg:
    return TradeLeg(order_id=order_id, outcome=p.outcome, side=p.side, px=p.px, qty=qty, liquidity=liquidity)


def reports(effects, kind=None):
    out = [e.event for e in effects if isinstance(e, Report)]
    return [e for e in out if kind is None or isinstance(e, kind)]


# --- examples -----------------------------------------------------------------------------------------


def test_a_fill_heard_twice_counts_once_and_failed_restores_the_position():
    ledger = OrderLedger([INFO])
    p = place("a")
    ledger.submitted(p, "0x1")
    ledger.post_accepted("a", "0x1", "live", T0)
    t = VenueTrade(trade_id="t1", market=M, status="MATCHED", ts_ns=T0 + 1, legs=(leg("0x1", p, 7_575_758),))

    first = ledger.trade(t, T0 + 1)
    again = ledger.trade(msgspec_replace(t, status="MINED"), T0 + 2)

    assert [f.qty for f in reports(first, Filled)] == [7_575_758]
    assert reports(again, Filled) == []
    assert ledger.position(M).yes_qty == 7_575_758  # 6-decimal fill kept exactly

    failed = ledger.trade(msgspec_replace(t, status="FAILED", legs=()), T0 + 3)

    reversal = reports(failed, Filled)
    assert len(reversal) == 1 and reversal[0].side is Side.SELL and reversal[0].qty == 7_575_758
    assert ledger.position(M).yes_qty == 0 and ledger.position(M).cash_usdc6 == 0
    assert ledger.trade(t, T0 + 4) == []  # a late MATCHED of a failed trade never applies


def msgspec_replace(s, **kw):
    return msgspec.structs.replace(s, **kw)


def test_an_order_gone_while_the_user_channel_was_silent_is_resolved_from_its_trades():
    ledger = OrderLedger([INFO])
    p, q = place("a"), place("b", px=4_600)
    for cid, oid, pl in (("a", "0x1", p), ("b", "0x2", q)):
        ledger.submitted(pl, oid)
        ledger.post_accepted(cid, oid, "live", T0)
    # Nothing reached us: 0x1 filled in full, 0x2 filled 3 shares and was then cancelled.
    trades = [
        VenueTrade(
            trade_id="t1", market=M, status="CONFIRMED", ts_ns=T0 + 5, legs=(leg("0x1", p, 10 * SHARE),)
        ),
        VenueTrade(trade_id="t2", market=M, status="MATCHED", ts_ns=T0 + 6, legs=(leg("0x2", q, 3 * SHARE),)),
    ]

    effects = ledger.reconcile([], trades, T0 + 10 * 10**9)

    by_client: dict[str, list] = {}
    for ev in reports(effects):
        by_client.setdefault(ev.client_id, []).append(ev)
    assert [type(e) for e in by_client["a"]] == [Filled]  # filled, never taken for cancelled
    assert by_client["a"][0].leaves_qty == 0
    assert [type(e) for e in by_client["b"]] == [Filled, Canceled]
    assert ledger.position(M).yes_qty == 13 * SHARE
    assert not ledger.open_orders()


def test_leftovers_are_adopted_at_start_in_traded_markets_and_cancelled_elsewhere():
    ledger = OrderLedger([INFO], on_start="adopt")
    ours = VenueOrderView(
        order_id="0xa",
        market=M,
        outcome=Outcome.NO,
        side=Side.BUY,
        px=5_100,
        original_qty=20 * SHARE,
        matched_qty=SHARE,
    )
    elsewhere = msgspec_replace(ours, order_id="0xb", market="0xother")

    effects = ledger.reconcile([ours, elsewhere], [], T0)

    adopted = reports(effects, Adopted)
    assert len(adopted) == 1 and adopted[0].order_id == "0xa" and adopted[0].qty == 19 * SHARE
    assert [e.order_ids for e in effects if isinstance(e, CancelVenueOrders)] == [("0xb",)]
    # Later, an order nobody accounts for is cancelled, not adopted.
    stray = msgspec_replace(ours, order_id="0xc")
    later = ledger.reconcile([ours, stray], [], T0 + 1)
    assert [e.order_ids for e in later if isinstance(e, CancelVenueOrders)] == [("0xc",)]


def test_on_start_cancel_cancels_every_leftover():
    ledger = OrderLedger([INFO], on_start="cancel")
    ours = VenueOrderView(
        order_id="0xa",
        market=M,
        outcome=Outcome.YES,
        side=Side.BUY,
        px=4_000,
        original_qty=SHARE,
        matched_qty=0,
    )

    effects = ledger.reconcile([ours], [], T0)

    assert reports(effects, Adopted) == []
    assert [e.order_ids for e in effects if isinstance(e, CancelVenueOrders)] == [("0xa",)]


def test_a_post_in_doubt_is_live_if_listed_resent_if_never_received_finished_if_cancelled():
    ledger = OrderLedger([INFO])
    for cid, oid in (("a", "0x1"), ("b", "0x2"), ("c", "0x3")):
        ledger.submitted(place(cid), oid)
        ledger.post_unknown(cid)
    listed = VenueOrderView(
        order_id="0x2",
        market=M,
        outcome=Outcome.YES,
        side=Side.BUY,
        px=4_700,
        original_qty=10 * SHARE,
        matched_qty=0,
    )

    effects = ledger.reconcile([listed], [], T0)

    assert [e.client_id for e in reports(effects, Accepted)] == ["b"]
    assert [e.order_ids for e in effects if isinstance(e, QueryOrders)] == [("0x1", "0x3")]
    never = ledger.order_status("0x1", False, "", T0 + 1)
    gone = ledger.order_status("0x3", True, "CANCELED", T0 + 1)
    assert [e.client_id for e in never if isinstance(e, ResendOrder)] == ["a"]
    assert [type(e) for e in reports(gone)] == [Canceled]  # it arrived, then was cancelled: never resent


def test_seeded_positions_carry_their_cost_and_a_lasting_drift_pulls_the_market():
    ledger = OrderLedger([INFO])
    ledger.seed_positions([VenuePosition(market=M, outcome=Outcome.YES, qty=100 * SHARE, avg_px=4_000)])

    assert ledger.position(M).yes_qty == 100 * SHARE and ledger.position(M).cash_usdc6 == -40_000_000
    agree = [VenuePosition(market=M, outcome=Outcome.YES, qty=100 * SHARE)]
    assert not [e for e in ledger.positions(agree, T0) if not isinstance(e, Audit)]
    off = [VenuePosition(market=M, outcome=Outcome.YES, qty=90 * SHARE)]
    first = ledger.positions(off, T0 + 1)  # once may be a listing racing a fill
    second = ledger.positions(off, T0 + 2)
    assert not [e for e in first if isinstance(e, PullMarket)]
    assert [e.market for e in second if isinstance(e, PullMarket)] == [M]
    assert [e.market for e in ledger.positions(agree, T0 + 3) if isinstance(e, ResumeMarket)] == [M]


def test_heartbeat_loss_marks_every_sent_order_gone():
    ledger = OrderLedger([INFO])
    ledger.submitted(place("a"), "0x1")
    ledger.post_accepted("a", "0x1", "live", T0)
    ledger.submitted(place("b"), "0x2")  # not sent yet: not affected

    effects = ledger.heartbeat_lost(T0 + 1)

    assert [e.client_id for e in reports(effects, Canceled)] == ["a"]
    assert [o.client_id for o in ledger.open_orders()] == ["b"]


# --- the venue model and the state machine ------------------------------------------------------------


@dataclass
class VOrder:
    order_id: str
    place: Place
    matched: int = 0
    open: bool = True


@dataclass
class Venue:
    """A naive venue: lists of orders and trades; positions are the sum of the legs that did not fail."""

    orders: dict[str, VOrder] = field(default_factory=dict)
    trades: list[VenueTrade] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)

    def position(self, outcome: Outcome) -> int:
        total = 0
        for t in self.trades:
            if t.trade_id in self.failed:
                continue
            for lg in t.legs:
                if lg.outcome is outcome:
                    total += lg.side * lg.qty
        return total

    def open_orders(self) -> list[VenueOrderView]:
        return [
            VenueOrderView(
                order_id=o.order_id,
                market=M,
                outcome=o.place.outcome,
                side=o.place.side,
                px=o.place.px,
                original_qty=o.place.qty,
                matched_qty=o.matched,
            )
            for o in self.orders.values()
            if o.open
        ]

    def trades_since(self, cursor: int) -> list[VenueTrade]:
        # The venue's current view of each trade (its latest status).
        return [t for t in self.trades if t.ts_ns >= cursor]


class LedgerMachine(RuleBasedStateMachine):
    """Random venue behaviour, with user-channel messages lost, repeated or late; reconciles heal it."""

    placed = Bundle("placed")
    trade_ids = Bundle("trade_ids")

    @initialize()
    def start(self):
        self.ledger = OrderLedger([INFO], reconcile_grace_ns=0)
        self.venue = Venue()
        self.now = T0
        self.seq = 0
        self.reports: dict[str, list] = {}
        self.signed_fills = {Outcome.YES: 0, Outcome.NO: 0}
        self.in_doubt_never_arrived: set[str] = set()
        self.delivered_trades: list[VenueTrade] = []

    def _tick(self) -> int:
        self.now += 1_000
        return self.now

    def _take(self, effects):
        for e in effects:
            if isinstance(e, Report):
                ev = e.event
                self.reports.setdefault(ev.client_id, []).append(ev)
                if isinstance(ev, Filled):
                    self.signed_fills[ev.outcome] += ev.side * ev.qty
            elif isinstance(e, CancelVenueOrders):
                for oid in e.order_ids:
                    if oid in self.venue.orders:
                        self.venue.orders[oid].open = False
            elif isinstance(e, QueryOrders):
                for oid in e.order_ids:
                    vo = self.venue.orders.get(oid)
                    status = "" if vo is None else ("LIVE" if vo.open else "CANCELED")
                    self._take(self.ledger.order_status(oid, vo is not None, status, self._tick()))
            elif isinstance(e, ResendOrder):
                o = self.ledger.order(e.client_id)
                assert o.order_id not in self.venue.orders  # never sent twice
                self.venue.orders[o.order_id] = VOrder(o.order_id, o.place)
                self._take(self.ledger.post_accepted(e.client_id, o.order_id, "live", self._tick()))

    @rule(
        target=placed,
        side=st.sampled_from(list(Side)),
        outcome=st.sampled_from(list(Outcome)),
        shares=st.integers(1, 50),
        reply=st.sampled_from(["live", "rejected", "lost_arrived", "lost_never_arrived", "delayed"]),
    )
    def post(self, side, outcome, shares, reply):
        self.seq += 1
        cid, oid = f"c{self.seq}", f"0x{self.seq}"
        p = place(cid, side=side, outcome=outcome, qty=shares * 100 * ORDER_QTY_STEP)
        self.ledger.submitted(p, oid)
        now = self._tick()
        if reply == "rejected":
            self._take(self.ledger.post_rejected(cid, "invalid", now))
            return oid
        if reply != "lost_never_arrived":
            self.venue.orders[oid] = VOrder(oid, p)
        if reply in ("live", "delayed"):
            self._take(self.ledger.post_accepted(cid, oid, reply, now))
        else:
            self.ledger.post_unknown(cid)
        return oid

    @rule(
        oid=placed,
        fraction=st.integers(1, 100),
        deliver=st.booleans(),
        liquidity=st.sampled_from(["maker", "taker"]),
    )
    def venue_fills(self, oid, fraction, deliver, liquidity):
        o = self.venue.orders.get(oid)
        assume(o is not None and o.open)
        left = o.place.qty - o.matched
        qty = max(1, left * fraction // 100)  # any 1e-6 size, as taker market orders make
        o.matched += qty
        if o.matched >= o.place.qty:
            o.open = False
        self.seq += 1
        t = VenueTrade(
            trade_id=f"t{self.seq}",
            market=M,
            status="MATCHED",
            ts_ns=self._tick(),
            legs=(leg(oid, o.place, qty, liquidity),),
        )
        self.venue.trades.append(t)
        if deliver:
            self.delivered_trades.append(t)
            self._take(self.ledger.trade(t, self.now))

    @rule(oid=placed, deliver=st.booleans())
    def venue_cancels(self, oid, deliver):
        o = self.venue.orders.get(oid)
        assume(o is not None and o.open)
        o.open = False
        if deliver:
            self._take(self.ledger.canceled(oid, "canceled", self._tick()))

    @rule(oid=placed)
    def we_cancel(self, oid):
        o = self.ledger.venue_order(oid)
        assume(o is not None)
        self.ledger.cancel_requested(o.client_id)

    @precondition(lambda self: self.venue.trades)
    @rule(
        i=st.integers(0, 10**6),
        status=st.sampled_from(["MINED", "CONFIRMED", "FAILED"]),
        deliver=st.booleans(),
    )
    def trade_moves_on(self, i, status, deliver):
        t = self.venue.trades[i % len(self.venue.trades)]
        if t.trade_id in self.venue.failed or t.status == "CONFIRMED":
            return
        if status == "FAILED":
            self.venue.failed.add(t.trade_id)
            for lg in t.legs:
                vo = self.venue.orders[lg.order_id]
                vo.matched -= lg.qty
        new = VenueTrade(trade_id=t.trade_id, market=M, status=status, ts_ns=t.ts_ns, legs=t.legs)
        self.venue.trades[self.venue.trades.index(t)] = new
        if deliver:
            self._take(self.ledger.trade(new, self._tick()))

    @precondition(lambda self: self.delivered_trades)
    @rule(i=st.integers(0, 10**6))
    def old_message_again(self, i):
        t = self.delivered_trades[i % len(self.delivered_trades)]
        self._take(self.ledger.trade(t, self._tick()))

    @rule()
    def reconcile(self):
        listed = self.venue.open_orders()
        backfill = self.venue.trades_since(0)  # the venue's view: every trade, latest status
        self._take(self.ledger.reconcile(listed, backfill, self._tick()))
        self.check_matches_venue()

    def check_matches_venue(self):
        led = self.ledger.position(M)
        assert led.yes_qty == self.venue.position(Outcome.YES)
        assert led.no_qty == self.venue.position(Outcome.NO)
        venue_open = {o.order_id for o in self.venue.orders.values() if o.open}
        ledger_open = {o.order_id for o in self.ledger.open_orders() if o.state != "pending"}
        assert ledger_open == venue_open
        for o in self.venue.orders.values():
            lo = self.ledger.venue_order(o.order_id)
            assert lo.filled_qty == o.matched

    @invariant()
    def position_moves_only_by_reported_fills(self):
        led = self.ledger.position(M)
        assert (led.yes_qty, led.no_qty) == (self.signed_fills[Outcome.YES], self.signed_fills[Outcome.NO])

    @invariant()
    def at_most_one_terminal_report_and_fills_add_up(self):
        for cid, evs in self.reports.items():
            terminal = [e for e in evs if isinstance(e, (Canceled, Rejected))]
            assert len(terminal) <= 1, (cid, evs)
            o = self.ledger.order(cid)
            net = sum(e.qty if e.side is o.place.side else -e.qty for e in evs if isinstance(e, Filled))
            assert net == o.filled_qty


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
