import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from actors.risk import MarketSample
from actors.session import CANCEL_PENDING, NEVER, MarketSession, OrderRecord
from app.configfile import load_config
from core.estimators import update_flow
from core.inventory import Inventory, apply_fill
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Adopted,
    BookDelta,
    BookSnapshot,
    CancelAll,
    Canceled,
    Filled,
    MarketResolved,
    PositionResync,
    Rejected,
    TickSizeChanged,
    TradePrint,
)
from core.quoting import quote_params
from core.risk import ACTIVE_GATE, RiskGate, TradingState
from core.units import PX_ONE, QTY_ONE, Outcome, Side, parse_qty
from tests.fakes import FakeClock, FakeExchangePort, ListSink
from tests.reference import flow_size_pcts_ref

T0 = 10**18
SHARE = QTY_ONE
INFO = MarketInfo(market="m1", yes_token="y", no_token="n", tick_px=100, min_qty=5 * SHARE)
PARAMS = quote_params(load_config("configs/market_maker.yaml"))


def snapshot(ts=T0, bid=4_700, ask=4_800):
    return BookSnapshot(
        market="m1",
        outcome=Outcome.YES,
        ts_ns=ts,
        bids=((bid, 100 * SHARE),),
        asks=((ask, 100 * SHARE),),
        tick_px=100,
        min_qty=5 * SHARE,
    )


class SteppedSession(MarketSession):
    """Acts on every input at once, as a driver calling ``flush`` after each would."""

    def on_event(self, ev):
        super().on_event(ev)
        self.flush(self.clock.now_ns())

    def on_exec(self, ev):
        super().on_exec(ev)
        self.flush(self.clock.now_ns())


def new_session():
    port, sink = FakeExchangePort(), ListSink()
    return SteppedSession(INFO, PARAMS, port, FakeClock(), sink), port, sink


def fill_of(order, ts, qty=None, trade_id="t1"):
    """Our maker fill of ``order`` (all of it unless ``qty``)."""
    return Filled(
        market="m1",
        client_id=order.client_id,
        ts_ns=ts,
        outcome=order.outcome,
        side=order.side,
        px=order.px,
        qty=order.qty if qty is None else qty,
        fee_usdc6=0,
        liquidity="maker",
        trade_id=trade_id,
        leaves_qty=0,
    )


def accept_all(s, port, ts=T0):
    for p in port.places:
        if p.client_id in s.orders:
            s.on_exec(Accepted(market="m1", client_id=p.client_id, order_id="v" + p.client_id, ts_ns=ts))


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_snapshot_places_a_post_only_two_sided_ladder():
    s, port, sink = new_session()

    s.on_event(snapshot())

    assert len(port.places) == 6 and all(p.post_only for p in port.places)
    assert {(p.outcome, p.side) for p in port.places} == {(Outcome.YES, Side.BUY), (Outcome.NO, Side.BUY)}
    assert len(sink.kinds("decision")) == 1
    assert [p.client_id for p in port.places] == [f"m1-{i}" for i in range(1, 7)]


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_unchanged_top_does_not_requote():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    n = len(port.commands)

    s.on_event(
        BookDelta(market="m1", outcome=Outcome.YES, ts_ns=T0 + 1, side=Side.BUY, px=4_500, qty=30 * SHARE)
    )

    assert len(port.commands) == n


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_fill_updates_inventory_and_next_quotes_skew_down():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    before = s.last_decision
    bid = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)

    s.on_exec(fill_of(bid, ts=T0 + 5, trade_id="t1"))

    assert s.inv.yes_qty == bid.qty
    assert bid.client_id not in s.orders
    assert s.last_decision is before  # a fill waits for the requote throttle (250 ms)...
    assert s.wakeup_ns == s.last_requote_ns + 250_000_000
    s.flush(s.wakeup_ns)
    assert s.last_decision.skewed_mid_px < before.skewed_mid_px  # ...then the quotes skew down


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_odd_fill_size_is_kept_exactly_and_paid_as_the_venue_pays():
    # A taker's $5 market BUY at 0.66 fills our resting sell of 7.575758 shares (a real on-chain
    # fill): we keep every 1e-6 share and the cash is floor(7.575758 * 0.66) = 5 USDC exactly.
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    bid = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)
    odd = parse_qty("7.575758")
    fill = msgspec.structs.replace(fill_of(bid, ts=T0 + 5, qty=odd), px=6_600, leaves_qty=bid.qty - odd)

    s.on_exec(fill)

    assert s.inv.yes_qty == 7_575_758 and s.inv.cash_usdc6 == -5_000_000
    assert s.orders[bid.client_id].qty == bid.qty - odd  # the rest of the order still rests


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_cancel_in_flight_still_counts_until_confirmed():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)

    s.on_event(snapshot(ts=T0 + 1, bid=5_200, ask=5_300))  # the market moved: requote

    assert port.cancels, "stale orders are cancelled"
    pending = [r for r in s.orders.values() if r.status == CANCEL_PENDING]
    assert {(r.outcome, r.side) for r in pending} == {(Outcome.YES, Side.BUY), (Outcome.NO, Side.BUY)}
    assert any(r.status != CANCEL_PENDING for r in s.orders.values())  # the new ladder is out too

    # Flat, every order a BUY: a YES bid loses its price if NO wins, a NO bid its price if YES wins
    # (px * qty is in 1e-10 USDC). Cancel-pending orders can still fill, so all of them count, beside
    # the new ladder: the worst case is the larger sum, rounded up to a micro-USDC.
    def bids_usdc10(outcome):
        return sum(r.px * r.qty for r in s.orders.values() if r.outcome is outcome and r.side is Side.BUY)

    loss_if_no, loss_if_yes = (-(-bids_usdc10(o) // PX_ONE) for o in (Outcome.YES, Outcome.NO))
    assert s.exposure_usdc6() == max(loss_if_no, loss_if_yes)
    # Deciding again before the venue confirms: decide's caps count the cancel-pending orders beside
    # the same ladder (already out, so nothing new is sent).
    n = len(port.commands)
    s.requote(T0 + 1)
    reasons = s.last_decision.reasons
    assert (reasons.loss_if_no_usdc6, reasons.loss_if_yes_usdc6) == (loss_if_no, loss_if_yes)
    assert len(port.commands) == n
    for c in port.cancels:
        s.on_exec(Canceled(market="m1", client_id=c.client_id, ts_ns=T0 + 2))
    assert all(r.status != CANCEL_PENDING for r in s.orders.values())


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_tick_size_change_pulls_and_waits_for_snapshot():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    n_places = len(port.places)

    s.on_event(TickSizeChanged(market="m1", outcome=Outcome.YES, ts_ns=T0 + 1, tick_px=10))
    s.on_event(
        BookDelta(market="m1", outcome=Outcome.YES, ts_ns=T0 + 2, side=Side.BUY, px=4_710, qty=50 * SHARE)
    )

    assert port.commands[-1].__class__.__name__ == "CancelAll"
    assert len(port.places) == n_places and not s.book_valid
    s.on_event(snapshot(ts=T0 + 3, bid=4_710, ask=4_730))
    assert s.book_valid and len(port.places) > n_places


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_resolution_settles_and_stops_quoting():
    s, port, sink = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    bid = port.places[0]
    s.on_exec(fill_of(bid, ts=T0 + 5, trade_id="t1"))

    s.on_event(MarketResolved(market="m1", ts_ns=T0 + 6, yes_won=True))

    # Bought at p, paid 1 each: (1 - p) per share, in micro-USDC (0.01-share sizes are exact).
    assert s.inv.yes_qty == 0 and s.inv.cash_usdc6 == (PX_ONE - bid.px) * bid.qty // PX_ONE
    n = len(port.places)
    s.on_event(snapshot(ts=T0 + 7))
    assert len(port.places) == n
    assert sink.kinds("settlement")


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_fill_reported_after_resolution_settles_at_once():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    bid = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)
    s.on_event(MarketResolved(market="m1", ts_ns=T0 + 6, yes_won=False))

    s.on_exec(fill_of(bid, ts=T0 + 7, trade_id="t9"))

    assert s.inv.yes_qty == 0 and s.inv.no_qty == 0  # no phantom shares after settlement
    assert s.inv.cash_usdc6 == -bid.px * bid.qty // PX_ONE  # the YES bought lost everything: NO won


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_position_resync_moves_the_inventory_as_the_ledger_books_it_and_requotes():
    s, port, sink = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    bid = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)
    s.on_exec(fill_of(bid, ts=T0 + 1, qty=10 * SHARE, trade_id="t1"))
    s.flush(s.wakeup_ns)
    before = s.last_decision
    # The venue holds 40 YES where we hold 10 (30 more at its average 0.50), and 3 NO we never had.
    ev = PositionResync(
        market="m1",
        ts_ns=T0 + 2,
        yes_old_qty=10 * SHARE,
        yes_new_qty=40 * SHARE,
        no_old_qty=0,
        no_new_qty=3 * SHARE,
        yes_px=5_000,
        no_px=0,
    )

    s.on_exec(ev)

    expected = apply_fill(
        apply_fill(Inventory(), Outcome.YES, Side.BUY, bid.px, 10 * SHARE, 0),
        Outcome.YES,
        Side.BUY,
        5_000,
        30 * SHARE,
        0,
    )
    expected = apply_fill(expected, Outcome.NO, Side.BUY, 0, 3 * SHARE, 0)
    assert s.inv == expected
    assert (s.inv.yes_qty, s.inv.no_qty) == (40 * SHARE, 3 * SHARE)
    assert sink.kinds("position_resync") == [ev]
    s.flush(s.wakeup_ns)
    assert s.last_decision.skewed_mid_px < before.skewed_mid_px  # longer YES: the quotes skew down


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_never_offers_the_same_shares_twice_while_a_sell_cancel_is_in_flight():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    bid = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)
    s.on_exec(fill_of(bid, ts=T0 + 1, qty=30 * SHARE, trade_id="t1"))
    s.flush(s.wakeup_ns)
    accept_all(s, port)
    assert sum(r.qty for r in s.orders.values() if r.side is Side.SELL and r.outcome is Outcome.YES) > 0

    s.on_event(snapshot(ts=T0 + 2, bid=5_200, ask=5_300))  # the market moves: every ask is replaced

    offered = sum(r.qty for r in s.orders.values() if r.side is Side.SELL and r.outcome is Outcome.YES)
    assert offered <= s.inv.yes_qty  # resting + cancel-pending + new sells never exceed what we hold


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_quiet_book_stays_fresh_while_the_feed_vouches_for_it():
    s, _port, _ = new_session()
    s.on_event(snapshot())
    later = T0 + 61 * 10**9  # past max_book_age_ms (60 s) with no change to the book

    s.clock.t = later
    s.on_timer(later)
    s.flush(later)
    assert s.last_decision.no_quote == "stale_book"  # nobody said the feed was alive

    s.on_feed_alive(later)
    s.flush(s.wakeup_ns if s.wakeup_ns > later else later)
    assert s.last_decision.quote  # the connected feed vouches for the quiet book


deltas = st.lists(
    st.builds(
        BookDelta,
        market=st.just("m1"),
        outcome=st.sampled_from(Outcome),
        ts_ns=st.just(T0),
        side=st.sampled_from(Side),
        px=st.integers(40, 56).map(lambda i: i * 100),
        # Book sizes are any 1e-6 share (the venue's levels hold odd sizes, e.g. 18.252855).
        qty=st.one_of(st.sampled_from([0, 0, 5 * SHARE, 30 * SHARE]), st.integers(1, 50 * SHARE)),
    ),
    max_size=12,
)


@given(deltas, st.integers(0, 400_000_000))
def test_property_on_batch_is_on_event_per_event_judged_on_the_final_book(evs, dt_ns):
    # Two sessions one quote in; one frame arrives dt later, event by event or as one batch.
    a = MarketSession(INFO, PARAMS, FakeExchangePort(), FakeClock(), ListSink())
    b = MarketSession(INFO, PARAMS, FakeExchangePort(), FakeClock(), ListSink())
    for s in (a, b):
        s.on_event(snapshot())
        s.flush(s.clock.now_ns())
        s.clock.t += dt_ns

    for ev in evs:
        a.on_event(ev)
    b.on_batch(evs)

    assert (b.book.bids, b.book.asks, b.book.bid_px, b.book.ask_px) == (
        a.book.bids,
        a.book.asks,
        a.book.bid_px,
        a.book.ask_px,
    )
    assert b.dirty == a.dirty
    # The batch asks for a decision no later than the throttle allows, and at once when the book
    # it leaves is crossed, one-sided or through our quotes.
    assert b.wakeup_ns >= a.wakeup_ns
    throttle_end = b.last_requote_ns + PARAMS.min_requote_ns
    assert b.wakeup_ns in (b.clock.t, throttle_end, NEVER)
    book, last = b.book, b.last_decision
    urgent = not (0 <= book.bid_px < book.ask_px <= 10_000) or (
        last.bids[0].px >= book.ask_px or last.asks[0].px <= book.bid_px
    )
    if b.dirty and urgent:
        assert b.wakeup_ns == b.clock.t


def test_on_batch_runs_other_events_in_order_after_the_deltas_before_them():
    s = MarketSession(INFO, PARAMS, FakeExchangePort(), FakeClock(), ListSink())
    s.on_event(snapshot())
    move = BookDelta(market="m1", outcome=Outcome.YES, ts_ns=T0, side=Side.BUY, px=4_750, qty=10 * SHARE)
    tick = TickSizeChanged(market="m1", outcome=Outcome.YES, ts_ns=T0, tick_px=10)

    s.on_batch([move, tick])

    assert not s.book_valid and s.book.tick_px == 10  # the tick change came last and started an epoch


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_feed_lost_pulls_everything_and_waits_for_a_snapshot():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)

    s.on_feed_lost(T0 + 5)
    s.on_event(
        BookDelta(market="m1", outcome=Outcome.YES, ts_ns=T0 + 6, side=Side.BUY, px=4_750, qty=30 * SHARE)
    )

    assert isinstance(port.commands[-1], CancelAll) and not s.book_valid and s.last_decision is None
    assert {r.status for r in s.orders.values()} == {CANCEL_PENDING}
    n = len(port.commands)
    s.on_event(snapshot(ts=T0 + 7))
    assert len(port.places) == 12 and len(port.commands) > n  # the fresh book is quoted again


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_session_feed_lost_after_a_pull_sends_no_second_cancel():
    s, port, _ = new_session()
    s.on_event(snapshot())
    s.pull_quotes(T0 + 1, "shutdown")
    n = len(port.commands)

    s.on_feed_lost(T0 + 2)  # the feed closing at shutdown

    assert len(port.commands) == n and not s.book_valid


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_raw_no_token_event_is_taken_as_the_yes_event_it_mirrors():
    # The feed hands the session YES events (core.yes_view); one still on the NO token is mapped.
    yes, no = new_session()[0], new_session()[0]
    yes_book = snapshot()
    no_book = BookSnapshot(
        market="m1",
        outcome=Outcome.NO,
        ts_ns=T0,
        bids=((PX_ONE - 4_800, 100 * SHARE),),
        asks=((PX_ONE - 4_700, 100 * SHARE),),
        tick_px=100,
        min_qty=5 * SHARE,
    )
    yes.on_event(yes_book)
    no.on_event(no_book)
    assert (no.book.bid_px, no.book.ask_px, no.book.bids, no.book.asks) == (
        yes.book.bid_px,
        yes.book.ask_px,
        yes.book.bids,
        yes.book.asks,
    )

    # A NO seller at 0.53 is a YES buyer at 0.47: the same flow as the YES print.
    yes.on_event(
        TradePrint(market="m1", outcome=Outcome.YES, ts_ns=T0, px=4_700, qty=60 * SHARE, aggressor=Side.BUY)
    )
    no.on_event(
        TradePrint(market="m1", outcome=Outcome.NO, ts_ns=T0, px=5_300, qty=60 * SHARE, aggressor=Side.SELL)
    )
    assert no.flow == yes.flow and yes.flow.buy_qty > 0 and yes.flow.sell_qty == 0

    yes.on_batch([BookDelta(market="m1", outcome=Outcome.YES, ts_ns=T0, side=Side.SELL, px=4_750, qty=SHARE)])
    no.on_batch([BookDelta(market="m1", outcome=Outcome.NO, ts_ns=T0, side=Side.BUY, px=5_250, qty=SHARE)])
    assert no.book.ask_px == yes.book.ask_px == 4_750


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_our_maker_fills_count_as_the_takers_flow_on_the_yes_book():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    yes_bid = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)
    no_bid = next(p for p in port.places if p.outcome is Outcome.NO and p.side is Side.BUY)

    s.on_exec(fill_of(yes_bid, ts=T0 + 1))  # a taker sold YES into our bid
    assert s.flow.sell_qty == yes_bid.qty and s.flow.buy_qty == 0
    s.on_exec(fill_of(no_bid, ts=T0 + 1, trade_id="t2"))  # a taker sold NO: a YES buyer
    assert s.flow.buy_qty == no_bid.qty and s.flow.sell_qty == yes_bid.qty


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_adopted_order_is_kept_when_wanted_and_cancelled_when_not():
    # An earlier run's orders, found resting at start: one is exactly what we would quote (its queue
    # place is kept), the other is not (cancelled like any order of ours we no longer want).
    s, port, _ = new_session()
    s.on_event(snapshot())
    wanted = next(p for p in port.places if p.outcome is Outcome.YES and p.side is Side.BUY)
    s2, port2, sink2 = new_session()
    for cid, px, qty in (("m1-adopted-1", wanted.px, wanted.qty), ("m1-adopted-2", 1_000, 50 * SHARE)):
        s2.on_exec(
            Adopted(
                market="m1",
                client_id=cid,
                order_id="0x" + cid,
                ts_ns=T0,
                outcome=Outcome.YES,
                side=Side.BUY,
                px=px,
                qty=qty,
            )
        )

    s2.on_event(snapshot())

    assert "m1-adopted-1" in s2.orders and "m1-adopted-2" not in {p.client_id for p in port2.places}
    assert [c.client_id for c in port2.cancels] == ["m1-adopted-2"]
    assert not any(
        p.px == wanted.px and p.side is Side.BUY and p.outcome is Outcome.YES for p in port2.places
    )
    assert len(sink2.kinds("adopted")) == 2


# --- live: holds, post-only backoff, the first decision's inventory ------------------------------------


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_hold_pulls_every_quote_and_quoting_resumes_when_the_last_hold_is_released():
    s, port, sink = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    placed = len(port.places)

    s.hold("position_drift", "drift", T0)
    s.hold("rate_limit", "429", T0)
    s.on_event(snapshot(bid=4_600, ask=4_700))  # a new book: still nothing is placed
    assert isinstance(port.commands[placed], CancelAll) and len(port.places) == placed
    for r in list(s.orders.values()):
        s.on_exec(Canceled(market="m1", client_id=r.client_id, ts_ns=T0))

    s.release("position_drift", T0)
    s.clock.t += 1_000_000_000  # past the requote throttle
    s.flush(s.clock.now_ns())
    assert len(port.places) == placed  # one hold is left
    s.release("rate_limit", T0)
    s.clock.t += 1_000_000_000
    s.flush(s.clock.now_ns())

    assert len(port.places) > placed
    assert [p["key"] for p in sink.kinds("hold")] == ["position_drift", "rate_limit"]


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_post_only_crosses_back_off_exponentially_and_ask_for_a_fresh_book():
    resyncs: list[str] = []
    port, sink = FakeExchangePort(), ListSink()
    clock = FakeClock(T0)
    s = SteppedSession(INFO, PARAMS, port, clock, sink, book_resync=resyncs.append)
    s.on_event(snapshot())
    first = port.places[0]

    s.on_exec(
        Rejected(
            market="m1",
            client_id=first.client_id,
            ts_ns=T0,
            reason="invalid post-only order: order crosses book",
        )
    )
    sent = len(port.places)
    clock.t += 100_000_000  # 0.1 s: inside the 0.5 s backoff
    s.on_event(snapshot(ts=clock.t, bid=4_650, ask=4_800))
    assert len(port.places) == sent  # no new order while backing off
    assert resyncs == ["m1"]

    clock.t = s.places_blocked_until_ns
    s.flush(clock.t)
    assert len(port.places) > sent  # the backoff is over: the decision is placed
    again = port.places[-1]
    s.on_exec(Rejected(market="m1", client_id=again.client_id, ts_ns=clock.t, reason="post_only_would_cross"))

    backoffs = [b["backoff_ns"] for b in sink.kinds("post_only_backoff")]
    assert backoffs == [500_000_000, 1_000_000_000]
    assert resyncs == ["m1", "m1"]


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_session_starts_from_the_inventory_it_is_given():
    port, sink = FakeExchangePort(), ListSink()
    inv = Inventory(yes_qty=154_575_758, cash_usdc6=-70_000_000, yes_cost_usdc6=70_000_000)
    s = SteppedSession(INFO, PARAMS, port, FakeClock(), sink, inventory=inv)

    s.on_event(snapshot())

    (decision,) = sink.kinds("decision")
    assert decision.reasons.inventory_qty == 154_575_758


# --- the risk gate ----------------------------------------------------------------------------------


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_risk_pause_pulls_every_quote_at_once_and_a_release_quotes_again():
    s, port, _ = new_session()
    s.on_event(snapshot())
    accept_all(s, port)
    placed = {p.client_id for p in port.places}
    assert placed

    s.set_risk_gate(RiskGate(state=TradingState.PAUSED, rule="operator", detail="paused by operator"), T0)
    s.flush(T0)  # urgent: no throttle

    assert {c.client_id for c in port.cancels} == placed
    d = s.last_decision
    assert d is not None and d.no_quote == "risk_paused" and d.reasons.risk_rule == "operator"
    for cid in placed:
        s.on_exec(Canceled(market="m1", client_id=cid, ts_ns=T0))
    n = len(port.places)
    s.set_risk_gate(ACTIVE_GATE, T0 + 1)
    s.flush(T0 + 1)
    assert len(port.places) > n
    s.set_risk_gate(RiskGate(state=TradingState.PAUSED, rule="operator", detail="again"), T0 + 2)
    s.set_risk_gate(RiskGate(state=TradingState.PAUSED, rule="operator", detail="newer words"), T0 + 3)
    assert s.risk_gate.detail == "newer words"


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_session_reports_fills_at_once_and_other_news_on_its_timer():
    samples: list[tuple[MarketSample, bool]] = []
    halt = RiskGate(state=TradingState.HALTED, rule="market_daily_loss_stop", detail="stop")

    def report(sample: MarketSample, urgent: bool) -> RiskGate | None:
        samples.append((sample, urgent))
        return halt if urgent else None  # the simulator's monitor answers inline

    port, sink = FakeExchangePort(), ListSink()
    s = SteppedSession(INFO, PARAMS, port, FakeClock(T0), sink, risk_report=report)
    s.on_event(snapshot())
    s.on_timer(T0 + 1)
    assert [(x.mid_px, urgent) for x, urgent in samples] == [(4_750, False)]
    s.on_timer(T0 + 2)  # nothing changed, within the second: nothing sent
    assert len(samples) == 1
    s.on_timer(T0 + 1 + 1_000_000_000)  # a second on: sent all the same
    assert len(samples) == 2

    bid = next(p for p in port.places if p.side is Side.BUY)
    s.on_exec(Accepted(market="m1", client_id=bid.client_id, order_id="v1", ts_ns=T0))
    s.on_exec(Rejected(market="m1", client_id="x", ts_ns=T0, reason="order crosses book"))
    s.on_exec(Rejected(market="m1", client_id="y", ts_ns=T0, reason="not enough balance"))
    s.on_exec(fill_of(bid, T0 + 5))

    last, urgent = samples[-1]
    assert urgent and last.inv == s.inv and last.rejects == 1 and last.fills == 1
    assert s.risk_gate is halt  # the answer is applied at once
    assert s.last_decision is not None and s.last_decision.no_quote == "risk_halted"


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_the_risk_mark_leaves_our_own_orders_out_of_a_live_book():
    s, port, _ = new_session()
    s.on_event(snapshot(bid=4_700, ask=4_800))
    accept_all(s, port)
    assert s.market_mid_px() == 4_750  # our quotes are not in this book (the simulator's, paper's)

    # Live, the feed shows our orders: a bid of ours alone at 0.49 and one joining 0.47's queue.
    s.own_orders_in_book = True
    s.orders.clear()
    s.orders["b1"] = OrderRecord(
        client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_900, qty=10 * SHARE, status=1
    )
    s.orders["b2"] = OrderRecord(
        client_id="b2", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=10 * SHARE, status=1
    )
    # A YES ask of ours as a BUY NO at 0.48 (YES 0.52), still pending: not on the book yet.
    s.orders["a1"] = OrderRecord(client_id="a1", outcome=Outcome.NO, side=Side.BUY, px=4_800, qty=10 * SHARE)
    s.on_level(Side.BUY, 4_900, 10 * SHARE, T0 + 1)
    s.on_level(Side.SELL, 5_200, 10 * SHARE, T0 + 1)

    assert s.market_mid_px() == (4_700 + 4_800) // 2  # 0.49 was ours alone; 0.47 holds others too
    s.orders["a1"].status = 1  # now it rests: the 0.52 ask was ours, 0.48 is the market's
    assert s.market_mid_px() == (4_700 + 4_800) // 2
    s.on_level(Side.SELL, 4_800, 0, T0 + 2)  # the market's ask leaves: no ask but ours
    assert s.market_mid_px() == -1


class OldFlowSession(MarketSession):
    """``on_trade`` as it was: fold the print, then the size multipliers from the flow, every print."""

    def on_trade(self, aggressor, px, qty, ts_ns):
        self.flow = update_flow(self.flow, aggressor, qty, ts_ns, self.params.flow_halflife_s)
        _, bid_pct, ask_pct = flow_size_pcts_ref(self.flow, ts_ns, self.params)
        if (bid_pct, ask_pct) != self._flow_pct:
            self._flow_pct = (bid_pct, ask_pct)
            if self.book_valid:
                self.dirty = True
                self._maybe_requote(ts_ns, urgent=False)


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(list(Side)),
                st.one_of(
                    st.sampled_from([10 * SHARE, 60 * SHARE, 100 * SHARE]), st.integers(1, 300 * SHARE)
                ),
                st.one_of(st.sampled_from([0, 10**9]), st.integers(-1_000_000, 20 * 10**9)),
            ),
            st.tuples(st.just(None), st.just(0), st.integers(0, 20 * 10**9)),  # the timer
        ),
        max_size=40,
    ),
    st.one_of(st.just(600), st.integers(0, 999)),
    st.one_of(st.just(1.0), st.floats(0.0, 1.0)),
    st.sampled_from([0, 10 * SHARE, 50 * SHARE]),
    st.booleans(),
)
@example(  # one-sided (the ask shrinks), then back inside the threshold (the multipliers back at 100)
    [(Side.BUY, 100 * SHARE, 0), (Side.SELL, 100 * SHARE, 0), (Side.SELL, 300 * SHARE, 10**9)],
    600,
    1.0,
    0,
    True,
)
def test_property_prints_move_the_flow_and_requote_as_the_old_rule(evs, thr, shrink, min_qty, book):
    # The calm band (no multipliers computed while the imbalance stays inside the threshold) and
    # the fused fold change nothing: the same flow, multipliers, requotes and orders as before.
    params = msgspec.structs.replace(
        PARAMS, flow_threshold_permille=thr, flow_shrink=shrink, flow_min_qty=min_qty
    )
    a = MarketSession(INFO, params, FakeExchangePort(), FakeClock(), ListSink())
    b = OldFlowSession(INFO, params, FakeExchangePort(), FakeClock(), ListSink())
    for s in (a, b):
        if book:
            s.on_event(snapshot())
            s.flush(s.clock.now_ns())
    t = T0
    for side, qty, dt in evs:
        t += dt
        for s in (a, b):
            s.clock.t = t
            if side is None:
                s.on_timer(t)
            else:
                s.on_trade(side, 4_700, qty, t)
            if s.wakeup_ns <= t:
                s.flush(t)
        assert a.flow == b.flow and a._flow_pct == b._flow_pct
        assert (a.dirty, a.wakeup_ns, a.last_decision) == (b.dirty, b.wakeup_ns, b.last_decision)
        assert a.port.commands == b.port.commands
