"""The session's merges of YES+NO pairs: decided at decision points, never of shares a sell offers."""

from __future__ import annotations

import msgspec
import pytest

from actors.session import MERGE_RETRY_NS
from core.inventory import Inventory, apply_merge, worst_case_losses
from core.messages import Adopted, Canceled, Merge, Merged, MergeFailed, Place
from core.units import QTY_ONE, Outcome, Side
from tests.actors.test_session import INFO, PARAMS, T0, SteppedSession, snapshot
from tests.fakes import FakeClock, FakeExchangePort, ListSink

SHARE = QTY_ONE
MERGING = msgspec.structs.replace(PARAMS, merge_enabled=True, merge_min_pairs_qty=20 * SHARE)
HELD = Inventory(
    yes_qty=50 * SHARE,
    no_qty=30 * SHARE,
    cash_usdc6=-36_500_000,
    yes_cost_usdc6=20_000_000,
    no_cost_usdc6=16_500_000,
)


def session(inv=HELD, params=MERGING):
    port, sink, clock = FakeExchangePort(), ListSink(), FakeClock()
    return SteppedSession(INFO, params, port, clock, sink, inventory=inv), port, sink, clock


def merges(port):
    return [c for c in port.commands if isinstance(c, Merge)]


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_every_free_pair_is_merged_at_the_first_decision_and_no_new_sell_offers_them():
    s, port, sink, _ = session()

    s.on_event(snapshot())

    [m] = merges(port)
    assert m.qty == 30 * SHARE and m.market == INFO.market
    assert [p["qty"] for p in sink.kinds("merge")] == [30 * SHARE]
    # The ladder is decided on the inventory less the pairs in flight: 20 YES left to sell, no NO.
    sells = [p for p in port.places if p.side is Side.SELL]
    assert sum(p.qty for p in sells if p.outcome is Outcome.YES) <= 20 * SHARE
    assert not [p for p in sells if p.outcome is Outcome.NO]
    assert s.inv == HELD  # nothing moves before the venue confirms
    # A merge is exposure-neutral: the worst case is the same with or without the pairs.
    orders = [r.as_order() for r in s.orders.values()]
    assert worst_case_losses(s.quote_inv(), orders) == worst_case_losses(s.inv, orders)


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_the_confirmation_books_the_merge_and_the_next_decision_sends_none():
    s, port, sink, clock = session()
    s.on_event(snapshot())
    [m] = merges(port)

    clock.t += 4_000_000_000
    s.on_exec(Merged(market=INFO.market, merge_id=m.merge_id, ts_ns=clock.t, qty=m.qty, tx="0xabc"))
    s.on_event(snapshot(ts=clock.t, bid=4_600, ask=4_900))

    assert s.inv == apply_merge(HELD, 30 * SHARE)
    assert s.merging is None and (s.stats.merges, s.stats.merged_qty) == (1, 30 * SHARE)
    assert len(merges(port)) == 1  # 20 YES, 0 NO: no pairs left
    assert [r.merge_id for r in sink.kinds("merged")] == [m.merge_id]


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_shares_a_resting_sell_offers_are_not_merged_until_it_is_gone():
    inv = msgspec.structs.replace(HELD, no_qty=50 * SHARE, no_cost_usdc6=27_500_000)
    s, port, _, clock = session(inv)
    sell = Adopted(
        market=INFO.market,
        client_id="m1-adopted-1",
        order_id="0x1",
        ts_ns=T0,
        outcome=Outcome.YES,
        side=Side.SELL,
        px=5_500,
        qty=40 * SHARE,
    )
    s.on_exec(sell)
    s.on_event(snapshot())
    assert merges(port) == []  # 10 free pairs: below the 20 that trigger a merge

    ids = {c.client_id for c in port.commands if isinstance(c, Place)} | {sell.client_id}
    for cid in ids:
        clock.t += 1
        s.on_exec(Canceled(market=INFO.market, client_id=cid, ts_ns=clock.t))
    s.on_event(snapshot(ts=clock.t, bid=4_600, ask=4_900))

    [m] = merges(port)
    # Merged once the sell that reserved the YES was gone: every pair no other sell of ours offers.
    assert 20 * SHARE <= m.qty <= 50 * SHARE


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_failed_merge_waits_before_the_next_one():
    big = Inventory(
        yes_qty=500 * SHARE, no_qty=500 * SHARE, yes_cost_usdc6=200_000_000, no_cost_usdc6=250_000_000
    )
    s, port, sink, clock = session(big)
    s.on_event(snapshot())
    [m] = merges(port)

    s.on_exec(
        MergeFailed(market=INFO.market, merge_id=m.merge_id, ts_ns=clock.t, qty=m.qty, reason="reverted")
    )
    clock.t += MERGE_RETRY_NS - 1
    s.on_event(snapshot(ts=clock.t, bid=4_600, ask=4_900))
    assert len(merges(port)) == 1 and s.inv == big
    clock.t += 1
    s.on_event(snapshot(ts=clock.t, bid=4_700, ask=4_800))

    # The pairs our sells now offer stay; every other pair is merged.
    assert len(merges(port)) == 2 and merges(port)[1].qty >= 20 * SHARE
    assert [r.reason for r in sink.kinds("merge_failed")] == ["reverted"]


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_merge_off_never_merges():
    s, port, _, _ = session(params=PARAMS)

    s.on_event(snapshot())

    assert merges(port) == [] and s.merging is None
