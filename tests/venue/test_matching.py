"""Example and property tests of the matching engine (``venue/matching.py``)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.messages import (
    Accepted,
    BookDelta,
    Cancel,
    CancelAll,
    Canceled,
    Filled,
    Place,
    Rejected,
    TimeInForce,
    TradePrint,
)
from core.units import (
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_ONE,
    TICKS_PX,
    USDC6_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Side,
    taker_fee_usdc6,
)
from venue.matching import (
    REASON_BALANCE,
    REASON_EXPIRATION,
    REASON_EXPIRED,
    REASON_FAK_NO_MATCH,
    REASON_FAK_REMAINDER,
    REASON_FOK_KILLED,
    REASON_NOT_CANCELED,
    REASON_POST_ONLY_CROSSES,
    REASON_POST_ONLY_TIF,
    REASON_RESOLVED,
    MatchingEngine,
    Report,
    fee_bound_usdc6,
    yes_equivalent,
)

YES, NO = Outcome.YES, Outcome.NO
BUY, SELL = Side.BUY, Side.SELL
SHARE = QTY_ONE  # Qty of one share


def _engine(**kw: Any) -> MatchingEngine:
    defaults: dict[str, Any] = {"tick_px": 100, "min_qty": 5 * SHARE, "min_marketable_usdc6": 0}
    return MatchingEngine("m", **(defaults | kw))


def _place(
    eng: MatchingEngine,
    owner: str,
    cid: str,
    outcome: Outcome,
    side: Side,
    px: int,
    qty: int,
    *,
    tif: TimeInForce = "GTC",
    post_only: bool = False,
    expire_ns: int = 0,
    ts_ns: int = 0,
) -> Report:
    order = Place(
        market="m",
        client_id=cid,
        outcome=outcome,
        side=side,
        px=px,
        qty=qty,
        post_only=post_only,
        tif=tif,
        expire_ns=expire_ns,
    )
    return eng.place(owner, order, ts_ns)


def _events(report: Report, kind: type) -> list:
    return [(owner, e) for owner, e in report.execs if isinstance(e, kind)]


def _fills(report: Report) -> list[tuple[str, str, int, int]]:
    return [(t.maker_client_id, t.taker_client_id, t.yes_px, t.qty) for t in report.trades]


# --- matching --------------------------------------------------------------------------------------


def test_place_buy_yes_against_sell_yes_fills_at_maker_price():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5500, 10 * SHARE)

    report = _place(eng, "b", "b1", YES, BUY, 6000, 10 * SHARE)

    assert _fills(report) == [("a1", "b1", 5500, 10 * SHARE)]
    assert report.trades[0].kind == "transfer"
    assert eng.balance("a").cash_usdc6 == 5_500_000
    assert eng.balance("a").yes_qty == -10 * SHARE
    assert eng.balance("b").cash_usdc6 == -5_500_000
    assert eng.balance("b").yes_qty == 10 * SHARE
    assert eng.pool_usdc6 == 0


def test_place_buy_yes_against_buy_no_mints_pair():
    eng = _engine()
    _place(eng, "a", "a1", NO, BUY, 4000, 10 * SHARE)

    report = _place(eng, "b", "b1", YES, BUY, 6500, 10 * SHARE)

    trade = report.trades[0]
    assert trade.kind == "mint"
    assert (trade.maker_px, trade.taker_px, trade.yes_px) == (4000, 6000, 6000)
    assert eng.balance("a").cash_usdc6 == -4_000_000
    assert eng.balance("a").no_qty == 10 * SHARE
    assert eng.balance("b").cash_usdc6 == -6_000_000
    assert eng.balance("b").yes_qty == 10 * SHARE
    assert eng.pool_usdc6 == 10 * USDC6_ONE


def test_place_sell_yes_against_sell_no_merges_pair():
    eng = _engine()
    for owner in ("a", "b"):
        eng.deposit(owner, 10 * USDC6_ONE)
        eng.split(owner, 10 * SHARE)
    _place(eng, "a", "a1", NO, SELL, 4500, 10 * SHARE)

    report = _place(eng, "b", "b1", YES, SELL, 5000, 10 * SHARE)

    trade = report.trades[0]
    assert trade.kind == "merge"
    assert (trade.maker_px, trade.taker_px) == (4500, 5500)
    assert eng.balance("a").cash_usdc6 == 4_500_000
    assert eng.balance("a").no_qty == 0
    assert eng.balance("b").cash_usdc6 == 5_500_000
    assert eng.balance("b").yes_qty == 0
    assert eng.pool_usdc6 == 10 * USDC6_ONE  # 20 pairs split, 10 merged


def test_place_sell_no_against_buy_no_transfers_no_shares():
    eng = _engine()
    _place(eng, "a", "a1", NO, BUY, 3000, 5 * SHARE)

    report = _place(eng, "b", "b1", NO, SELL, 2900, 5 * SHARE)

    trade = report.trades[0]
    assert (trade.kind, trade.maker_px, trade.taker_px, trade.yes_px) == ("transfer", 3000, 3000, 7000)
    assert eng.balance("a").no_qty == 5 * SHARE
    assert eng.balance("b").no_qty == -5 * SHARE


def test_place_equal_price_orders_fill_in_time_priority():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE)
    _place(eng, "b", "b1", NO, BUY, 5000, 5 * SHARE)  # the same YES-equivalent ask at 0.50
    _place(eng, "c", "c1", YES, SELL, 5000, 5 * SHARE)

    report = _place(eng, "d", "d1", YES, BUY, 5000, 12 * SHARE)

    assert _fills(report) == [
        ("a1", "d1", 5000, 5 * SHARE),
        ("b1", "d1", 5000, 5 * SHARE),
        ("c1", "d1", 5000, 2 * SHARE),
    ]
    assert [o.client_id for o in eng.queue(YES, SELL, 5000)] == ["c1"]


def test_place_better_price_fills_before_earlier_order():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5200, 5 * SHARE)
    _place(eng, "b", "b1", NO, BUY, 4900, 5 * SHARE)  # YES-equivalent ask at 0.51

    report = _place(eng, "c", "c1", YES, BUY, 5300, 10 * SHARE)

    assert _fills(report) == [("b1", "c1", 5100, 5 * SHARE), ("a1", "c1", 5200, 5 * SHARE)]


def test_place_partial_fill_leaves_maker_remainder_in_queue():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 10 * SHARE)

    report = _place(eng, "b", "b1", YES, SELL, 4500, 6 * SHARE)

    maker_fill, taker_fill = (e for _, e in _events(report, Filled))
    assert (maker_fill.client_id, maker_fill.liquidity, maker_fill.leaves_qty) == ("a1", "maker", 4 * SHARE)
    assert (taker_fill.client_id, taker_fill.liquidity, taker_fill.leaves_qty) == ("b1", "taker", 0)
    assert eng.depth(YES, BUY) == ((4500, 4 * SHARE),)
    assert eng.queue(YES, BUY, 4500)[0].leaves_qty == 4 * SHARE


def test_place_gtc_taker_remainder_rests_at_its_price():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE)

    report = _place(eng, "b", "b1", YES, BUY, 5100, 8 * SHARE)

    assert _fills(report) == [("a1", "b1", 5000, 5 * SHARE)]
    assert eng.depth(YES, BUY) == ((5100, 3 * SHARE),)
    assert eng.depth(YES, SELL) == ()
    assert eng.order("b", "b1") is not None


def test_place_fok_without_enough_liquidity_is_killed():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE)

    report = _place(eng, "b", "b1", YES, BUY, 5000, 6 * SHARE, tif="FOK")

    assert [e.reason for _, e in _events(report, Rejected)] == [REASON_FOK_KILLED]
    assert report.trades == ()
    assert report.order_id == ""
    assert eng.depth(YES, SELL) == ((5000, 5 * SHARE),)


def test_place_fok_with_enough_liquidity_fills_completely():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE)
    _place(eng, "a", "a2", NO, BUY, 4900, 5 * SHARE)  # YES-equivalent ask at 0.51

    report = _place(eng, "b", "b1", YES, BUY, 5100, 8 * SHARE, tif="FOK")

    assert _fills(report) == [("a1", "b1", 5000, 5 * SHARE), ("a2", "b1", 5100, 3 * SHARE)]
    assert _events(report, Canceled) == []


def test_place_fak_fills_available_and_cancels_remainder():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE)

    report = _place(eng, "b", "b1", YES, BUY, 5000, 8 * SHARE, tif="FAK")

    assert [type(e) for _, e in report.execs] == [Accepted, Filled, Filled, Canceled]
    assert _events(report, Canceled)[0][1].reason == REASON_FAK_REMAINDER
    assert eng.depth(YES, BUY) == ()
    assert eng.open_orders() == ()


def test_place_fak_without_match_is_rejected():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5100, 5 * SHARE)

    report = _place(eng, "b", "b1", YES, BUY, 5000, 5 * SHARE, tif="FAK")

    assert [e.reason for _, e in _events(report, Rejected)] == [REASON_FAK_NO_MATCH]


def test_expire_due_gtd_order_is_canceled_as_expired():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE, tif="GTD", expire_ns=100, ts_ns=10)

    early = eng.expire(99)
    report = eng.expire(100)

    assert early.execs == ()
    assert [(o, e.client_id, e.reason) for o, e in _events(report, Canceled)] == [("a", "a1", REASON_EXPIRED)]
    assert BookDelta(market="m", outcome=YES, ts_ns=100, side=BUY, px=4500, qty=0) in report.deltas
    assert eng.depth(YES, BUY) == ()


def test_place_after_gtd_expiry_does_not_match_expired_order():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE, tif="GTD", expire_ns=100)

    report = _place(eng, "b", "b1", YES, BUY, 5000, 5 * SHARE, ts_ns=100)

    assert report.trades == ()
    assert [e.reason for _, e in _events(report, Canceled)] == [REASON_EXPIRED]
    assert eng.depth(YES, BUY) == ((5000, 5 * SHARE),)


def test_place_gtd_already_expired_is_rejected():
    eng = _engine()

    report = _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE, tif="GTD", expire_ns=10, ts_ns=10)

    assert [e.reason for _, e in _events(report, Rejected)] == [REASON_EXPIRATION]


def test_place_post_only_crossing_is_rejected():
    eng = _engine()
    _place(eng, "a", "a1", NO, BUY, 5000, 5 * SHARE)  # YES-equivalent ask at 0.50

    crossing = _place(eng, "b", "b1", YES, BUY, 5000, 5 * SHARE, post_only=True)
    resting = _place(eng, "b", "b2", YES, BUY, 4900, 5 * SHARE, post_only=True)

    assert [e.reason for _, e in _events(crossing, Rejected)] == [REASON_POST_ONLY_CROSSES]
    assert [type(e) for _, e in resting.execs] == [Accepted]
    assert eng.depth(YES, BUY) == ((4900, 5 * SHARE),)


def test_place_post_only_fok_is_rejected():
    eng = _engine()

    report = _place(eng, "a", "a1", YES, BUY, 5000, 5 * SHARE, tif="FOK", post_only=True)

    assert [e.reason for _, e in _events(report, Rejected)] == [REASON_POST_ONLY_TIF]


def test_place_off_tick_price_is_rejected_with_venue_message():
    eng = _engine()

    report = _place(eng, "a", "a1", YES, BUY, 4550, 5 * SHARE)

    reason = _events(report, Rejected)[0][1].reason
    assert reason == "order a1 is invalid. Price (0.455) breaks minimum tick size rule: 0.01"


def test_place_price_outside_tick_range_is_rejected():
    eng = _engine()

    reports = [_place(eng, "a", f"a{px}", YES, BUY, px, 5 * SHARE) for px in (0, 9_950, PX_ONE)]

    assert all(_events(r, Rejected) for r in reports)
    assert [r.order_id for r in (_place(eng, "a", "ok", YES, BUY, 9_900, 5 * SHARE),)] == ["o-000001"]


def test_set_tick_finer_accepts_new_grid_and_keeps_resting_orders():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE)

    eng.set_tick(10)
    report = _place(eng, "a", "a2", YES, BUY, 4550, 5 * SHARE)

    assert report.order_id
    assert eng.depth(YES, BUY) == ((4550, 5 * SHARE), (4500, 5 * SHARE))


def test_place_below_min_size_is_rejected_with_venue_message():
    eng = _engine()

    report = _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE - 1)

    reason = _events(report, Rejected)[0][1].reason
    assert reason == "order a1 is invalid. Size (4.999999) lower than the minimum: 5"


def test_place_marketable_below_min_notional_is_rejected():
    eng = _engine(min_marketable_usdc6=USDC6_ONE)

    report = _place(eng, "a", "a1", YES, BUY, 1000, 9 * SHARE, tif="FAK")  # $0.90

    assert _events(report, Rejected)[0][1].reason.startswith("invalid amount for a marketable BUY order")


def test_place_duplicate_live_client_id_is_rejected():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE)

    report = _place(eng, "a", "a1", YES, BUY, 4400, 5 * SHARE)
    other_owner = _place(eng, "b", "a1", YES, BUY, 4400, 5 * SHARE)

    assert _events(report, Rejected)[0][1].reason == "order a1 is invalid. Duplicated."
    assert other_owner.order_id


def test_place_ids_come_from_counters_with_prefix():
    eng = _engine(id_prefix="m1-")
    first = _place(eng, "a", "a1", YES, SELL, 5000, 5 * SHARE)

    second = _place(eng, "b", "b1", YES, BUY, 5000, 5 * SHARE)

    assert (first.order_id, second.order_id) == ("m1-o-000001", "m1-o-000002")
    assert second.trades[0].trade_id == "m1-t-000001"
    assert {e.trade_id for _, e in _events(second, Filled)} == {"m1-t-000001"}


# --- market data -----------------------------------------------------------------------------------


def test_place_resting_order_publishes_level_for_both_tokens():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE, ts_ns=7)

    report = _place(eng, "b", "b1", NO, SELL, 5500, 6 * SHARE, ts_ns=8)  # a YES-equivalent bid at 0.45

    assert report.deltas == (
        BookDelta(market="m", outcome=YES, ts_ns=8, side=BUY, px=4500, qty=11 * SHARE),
        BookDelta(market="m", outcome=NO, ts_ns=8, side=SELL, px=5500, qty=11 * SHARE),
    )


def test_place_trade_publishes_prints_for_both_tokens_and_emptied_level():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 5200, 5 * SHARE)

    report = _place(eng, "b", "b1", NO, SELL, 4000, 5 * SHARE)  # a YES-equivalent bid at 0.60 takes

    assert report.prints == (
        TradePrint(market="m", outcome=YES, ts_ns=0, px=5200, qty=5 * SHARE, aggressor=BUY),
        TradePrint(market="m", outcome=NO, ts_ns=0, px=4800, qty=5 * SHARE, aggressor=SELL),
    )
    assert report.deltas == (
        BookDelta(market="m", outcome=YES, ts_ns=0, side=SELL, px=5200, qty=0),
        BookDelta(market="m", outcome=NO, ts_ns=0, side=BUY, px=4800, qty=0),
    )


def test_depth_no_book_mirrors_yes_book():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE)
    _place(eng, "a", "a2", YES, BUY, 4400, 6 * SHARE)
    _place(eng, "a", "a3", NO, BUY, 4000, 7 * SHARE)

    no_bids = eng.depth(NO, BUY)
    no_asks = eng.depth(NO, SELL)

    assert no_bids == ((4000, 7 * SHARE),)
    assert no_asks == ((5500, 5 * SHARE), (5600, 6 * SHARE))
    assert eng.depth(YES, SELL) == ((6000, 7 * SHARE),)
    assert (eng.best_bid(NO), eng.best_ask(NO)) == (4000, 5500)
    assert (eng.best_bid(YES), eng.best_ask(YES)) == (4500, 6000)
    assert eng.snapshot(NO, 5).asks == no_asks


# --- fees ------------------------------------------------------------------------------------------


def test_taker_fee_hundred_shares_at_half_is_one_usdc():
    assert taker_fee_usdc6(5000, 100 * SHARE, 40_000) == USDC6_ONE


def test_taker_fee_floors_to_five_decimals():
    # 1 share * 0.07 * 0.37 * 0.63 = 0.016317 USDC, floored to 0.01631.
    assert taker_fee_usdc6(3700, SHARE, 70_000) == 16_310


def test_place_taker_pays_fee_and_maker_pays_none():
    eng = _engine(fee_rate_ppm=40_000)
    _place(eng, "a", "a1", YES, SELL, 5000, 100 * SHARE)

    report = _place(eng, "b", "b1", NO, SELL, 5000, 100 * SHARE)  # merges at NO 0.50

    fees = {e.liquidity: e.fee_usdc6 for _, e in _events(report, Filled)}
    assert fees == {"maker": 0, "taker": USDC6_ONE}
    assert eng.balance("b").cash_usdc6 == 50 * USDC6_ONE - USDC6_ONE
    assert eng.fees_usdc6 == USDC6_ONE


def test_place_no_taker_fee_uses_its_own_token_price():
    eng = _engine(fee_rate_ppm=70_000)
    _place(eng, "a", "a1", YES, SELL, 6300, SHARE * 5)

    report = _place(eng, "b", "b1", NO, SELL, 3700, SHARE * 5)

    assert report.trades[0].taker_px == 3700
    assert report.trades[0].taker_fee_usdc6 == taker_fee_usdc6(3700, 5 * SHARE, 70_000) == 81_580


@given(px=st.integers(0, PX_ONE), qty=st.integers(0, 10_000 * SHARE), rate=st.integers(0, 10**6))
@example(px=3700, qty=SHARE, rate=70_000)
@example(px=6600, qty=7_575_758, rate=30_000)  # an odd fill size
def test_fee_bound_is_exact_fee_rounded_up(px: int, qty: int, rate: int):
    shares = Fraction(qty, QTY_ONE)
    exact_usdc6 = shares * Fraction(rate, 10**6) * Fraction(px * (PX_ONE - px), PX_ONE**2) * 10**6

    bound = fee_bound_usdc6(px, qty, rate)

    assert exact_usdc6 <= bound < exact_usdc6 + 1
    assert bound >= taker_fee_usdc6(px, qty, rate)


@given(
    limit=st.integers(1, PX_ONE - 1),
    data=st.data(),
    rate=st.integers(0, 10**6),
)
def test_fee_bound_covers_any_fills_at_or_below_limit(limit: int, data: st.DataObject, rate: int):
    pieces = data.draw(
        st.lists(st.tuples(st.integers(1, limit), st.integers(1, 1_000 * SHARE)), min_size=1, max_size=5)
    )

    # In Usdc10 (px * qty), exact: the notional of each piece plus its fee.
    cost = sum(px * qty + taker_fee_usdc6(px, qty, rate) * USDC10_PER_USDC6 for px, qty in pieces)
    total = sum(qty for _, qty in pieces)

    assert cost <= limit * total + fee_bound_usdc6(limit, total, rate) * USDC10_PER_USDC6


@given(px=st.integers(0, PX_ONE))
def test_yes_equivalent_mirrors_token_and_side(px: int):
    assert yes_equivalent(YES, BUY, px) == yes_equivalent(NO, SELL, PX_ONE - px) == (True, px)
    assert yes_equivalent(YES, SELL, px) == yes_equivalent(NO, BUY, PX_ONE - px) == (False, px)


# --- sizes in 1e-6 share: cash in whole micro-USDC ------------------------------------------------

ODD = 7_575_758  # 7.575758 shares, the size a $5 market BUY at 0.66 fills: 5.00000028 USDC at 0.66


def test_transfer_of_an_odd_size_moves_the_floored_notional_both_ways():
    eng = _engine()
    _place(eng, "a", "a1", YES, SELL, 6600, ODD)

    report = _place(eng, "b", "b1", YES, BUY, 6600, ODD)

    assert report.trades[0].kind == "transfer"
    assert eng.balance("a").cash_usdc6 == 5_000_000  # floor(5.00000028), as the venue's contract does
    assert eng.balance("b").cash_usdc6 == -5_000_000
    assert (eng.balance("a").yes_qty, eng.balance("b").yes_qty) == (-ODD, ODD)


def test_mint_of_an_odd_size_costs_exactly_one_usdc_per_pair():
    eng = _engine()
    _place(eng, "a", "a1", NO, BUY, 3400, ODD)

    report = _place(eng, "b", "b1", YES, BUY, 6600, ODD)

    assert report.trades[0].kind == "mint"
    assert eng.balance("a").cash_usdc6 == -2_575_757  # the maker: floor(0.34 * 7.575758)
    assert eng.balance("b").cash_usdc6 == -5_000_001  # the taker: the rest of 7.575758 USDC
    assert eng.pool_usdc6 == ODD
    assert eng.balance("a").cash_usdc6 + eng.balance("b").cash_usdc6 + eng.pool_usdc6 == 0


def test_merge_of_an_odd_size_pays_exactly_one_usdc_per_pair():
    eng = _engine()
    for owner in ("a", "b"):
        eng.deposit(owner, 10 * USDC6_ONE)
        eng.split(owner, ODD)
    _place(eng, "a", "a1", NO, SELL, 3400, ODD)

    report = _place(eng, "b", "b1", YES, SELL, 6600, ODD)

    assert report.trades[0].kind == "merge"
    assert eng.balance("a").cash_usdc6 == 10 * USDC6_ONE - ODD + 2_575_757  # the maker's floor
    assert eng.balance("b").cash_usdc6 == 10 * USDC6_ONE - ODD + 5_000_001  # the rest of the pair's USDC
    assert eng.pool_usdc6 == ODD
    total = eng.balance("a").cash_usdc6 + eng.balance("b").cash_usdc6 + eng.pool_usdc6
    assert total == eng.deposits_usdc6 == 20 * USDC6_ONE


def test_sizes_on_the_order_grid_never_round():
    eng = _engine(tick_px=1)
    size = 5 * SHARE + 37 * ORDER_QTY_STEP  # 5.37 shares
    _place(eng, "a", "a1", NO, BUY, 3471, size)

    _place(eng, "b", "b1", YES, BUY, 6529, size)

    assert eng.balance("a").cash_usdc6 == -1_863_927  # 0.3471 * 5.37, exactly
    assert eng.balance("b").cash_usdc6 == -3_506_073  # 0.6529 * 5.37, exactly


def test_locked_cash_of_an_odd_size_is_rounded_up():
    eng = _engine(enforce_balance=True)
    eng.deposit("a", 10 * USDC6_ONE)

    _place(eng, "a", "a1", YES, BUY, 6600, ODD)

    assert eng.balance("a").locked_cash_usdc6 == 5_000_001  # 5.00000028 reserved, never understated


def test_enforced_buy_minting_odd_pieces_must_cover_each_rounded_up_leg():
    eng = _engine(enforce_balance=True)
    for cid in ("a1", "a2"):
        eng.deposit("a", 3 * USDC6_ONE)
        _place(eng, "a", cid, NO, BUY, 3400, ODD)
    # Two mint pieces of 5.00000028 USDC each: the taker's legs are 5.000001 + 5.000001 = 10.000002.
    eng.deposit("b", 10_000_001)  # covers the exact 10.00000056 but not the rounded-up legs

    short = _place(eng, "b", "b1", YES, BUY, 6600, 2 * ODD)
    eng.deposit("b", 2)
    enough = _place(eng, "b", "b2", YES, BUY, 6600, 2 * ODD)

    assert _events(short, Rejected)[0][1].reason == REASON_BALANCE
    assert [t.kind for t in enough.trades] == ["mint", "mint"]
    assert eng.balance("b").cash_usdc6 == 10_000_003 - 10_000_002
    assert eng.balance("b").yes_qty == 2 * ODD


def test_marketable_minimum_holds_for_a_crossing_gtc_not_for_one_that_rests():
    eng = _engine(min_marketable_usdc6=USDC6_ONE, tick_px=10)
    _place(eng, "a", "a1", YES, SELL, 1500, 100 * SHARE)

    crossing = _place(eng, "b", "b1", YES, BUY, 1500, 6 * SHARE)  # $0.90 would execute at once
    gtd = _place(eng, "b", "b2", YES, BUY, 1500, 6 * SHARE, tif="GTD", expire_ns=10**12)
    post_only = _place(eng, "b", "b3", YES, BUY, 1500, 6 * SHARE, post_only=True)
    resting = _place(eng, "b", "b4", YES, BUY, 1490, 6 * SHARE)  # $0.894, rests
    enough = _place(eng, "b", "b5", YES, BUY, 1500, 7 * SHARE)  # $1.05

    assert [_events(r, Rejected)[0][1].reason for r in (crossing, gtd)] == [
        "invalid amount for a marketable BUY order ($0.9), min size: $1"
    ] * 2
    assert _events(post_only, Rejected)[0][1].reason == REASON_POST_ONLY_CROSSES
    assert resting.order_id and not resting.trades
    assert [t.qty for t in enough.trades] == [7 * SHARE]


def test_only_the_venue_s_ticks_are_accepted():
    for tick in TICKS_PX:
        MatchingEngine("m", tick_px=tick).set_tick(tick)
    for bad in (0, 2, 20, 200, 500, 2_500, PX_ONE, -100):
        with pytest.raises(
            ValueError, match=re.escape("the venue's ticks are 0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001")
        ):
            MatchingEngine("m", tick_px=bad)
        with pytest.raises(ValueError, match="invalid tick"):
            MatchingEngine("m").set_tick(bad)


def test_marketable_minimum_compares_the_exact_notional():
    eng = _engine(min_marketable_usdc6=USDC6_ONE)
    _place(eng, "a", "a1", YES, SELL, 5000, 10 * SHARE)

    below = _place(eng, "b", "b1", YES, BUY, 5000, 2 * SHARE - 1, tif="FAK")  # $0.9999995
    at = _place(eng, "b", "b2", YES, BUY, 5000, 2 * SHARE, tif="FAK")  # $1

    reason = _events(below, Rejected)[0][1].reason
    assert reason == "invalid amount for a marketable BUY order ($0.999999), min size: $1"
    assert at.trades


# --- cancels, balances, resolution -----------------------------------------------------------------


def test_cancel_resting_order_removes_it_and_reports_canceled():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE)

    report = eng.cancel("a", "a1", 1)
    again = eng.cancel("a", "a1", 2)

    assert [(o, e.client_id) for o, e in _events(report, Canceled)] == [("a", "a1")]
    assert eng.depth(YES, BUY) == ()
    assert again.execs == ()
    assert again.error == REASON_NOT_CANCELED


def test_cancel_all_with_outcome_only_cancels_that_token():
    eng = _engine()
    _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE)
    _place(eng, "a", "a2", NO, BUY, 4500, 5 * SHARE)
    _place(eng, "b", "b1", YES, BUY, 4400, 5 * SHARE)

    report = eng.cancel_all("a", 1, outcome=NO)

    assert [e.client_id for _, e in _events(report, Canceled)] == ["a2"]
    assert [o.client_id for o in eng.open_orders()] == ["a1", "b1"]


def test_submit_dispatches_commands():
    eng = _engine()
    place = Place(market="m", client_id="a1", outcome=YES, side=BUY, px=4500, qty=5 * SHARE)

    placed = eng.submit("a", place, 0)
    canceled = eng.submit("a", Cancel(market="m", client_id="a1"), 1)
    nothing = eng.submit("a", CancelAll(market="m"), 2)

    assert placed.order_id == "o-000001"
    assert _events(canceled, Canceled)
    assert nothing.execs == ()


def test_cancel_many_behind_first_order_keeps_time_priority():
    eng = _engine()
    _place(eng, "a", "first", YES, SELL, 5000, 5 * SHARE)
    for i in range(100):
        _place(eng, "b", f"b{i}", YES, SELL, 5000, 5 * SHARE)
        eng.cancel("b", f"b{i}", 0)
    _place(eng, "c", "last", YES, SELL, 5000, 5 * SHARE)

    report = _place(eng, "d", "d1", YES, BUY, 5000, 10 * SHARE)

    assert [t.maker_client_id for t in report.trades] == ["first", "last"]


def test_place_many_levels_created_and_emptied_keeps_best_prices():
    eng = _engine()
    _place(eng, "a", "keep", YES, BUY, 1000, 5 * SHARE)
    for i in range(300):
        px = 2000 + (i % 30) * 100
        _place(eng, "a", f"a{i}", YES, BUY, px, 5 * SHARE)
        eng.cancel("a", f"a{i}", 0)

    best = eng.best_bid(YES)

    assert best == 1000
    assert len(eng.depth(YES, BUY)) == 1


def test_place_balance_enforced_buy_without_cash_is_rejected():
    eng = _engine(enforce_balance=True)
    eng.deposit("a", 2_500_000)

    fits = _place(eng, "a", "a1", YES, BUY, 5000, 5 * SHARE)
    too_much = _place(eng, "a", "a2", YES, BUY, 100, 5 * SHARE)

    assert fits.order_id
    assert _events(too_much, Rejected)[0][1].reason == REASON_BALANCE
    assert eng.balance("a").locked_cash_usdc6 == 2_500_000


def test_place_balance_enforced_sell_needs_free_shares():
    eng = _engine(enforce_balance=True)
    eng.deposit("a", 5 * USDC6_ONE)
    eng.split("a", 5 * SHARE)

    first = _place(eng, "a", "a1", YES, SELL, 6000, 5 * SHARE)
    second = _place(eng, "a", "a2", YES, SELL, 6100, 5 * SHARE)
    no_side = _place(eng, "a", "a3", NO, SELL, 6100, 5 * SHARE)

    assert first.order_id
    assert _events(second, Rejected)[0][1].reason == REASON_BALANCE
    assert no_side.order_id


def test_place_balance_enforced_crossing_buy_needs_fee_headroom():
    eng = _engine(enforce_balance=True, fee_rate_ppm=40_000)
    eng.deposit("a", 100 * USDC6_ONE)
    eng.split("a", 100 * SHARE)
    _place(eng, "a", "a1", YES, SELL, 5000, 100 * SHARE)
    eng.deposit("b", 50 * USDC6_ONE)

    short = _place(eng, "b", "b1", YES, BUY, 5000, 100 * SHARE)
    eng.deposit("b", USDC6_ONE)
    enough = _place(eng, "b", "b2", YES, BUY, 5000, 100 * SHARE)

    assert _events(short, Rejected)[0][1].reason == REASON_BALANCE
    assert len(enough.trades) == 1
    assert eng.balance("b").cash_usdc6 == 0


def test_resolve_yes_pays_yes_holders_and_cancels_orders():
    eng = _engine()
    _place(eng, "a", "a1", NO, BUY, 4000, 10 * SHARE)
    _place(eng, "b", "b1", YES, BUY, 6000, 10 * SHARE)  # mint: b holds YES, a holds NO
    _place(eng, "c", "c1", YES, BUY, 3000, 5 * SHARE)

    report = eng.resolve(yes_won=True, ts_ns=9)

    assert [(o, e.reason) for o, e in _events(report, Canceled)] == [("c", REASON_RESOLVED)]
    payouts = {s.owner: (s.yes_qty, s.no_qty, s.payout_usdc6, s.cash_usdc6) for s in report.settlements}
    assert payouts == {
        "a": (0, 10 * SHARE, 0, -4_000_000),
        "b": (10 * SHARE, 0, 10 * USDC6_ONE, 4_000_000),
        "c": (0, 0, 0, 0),
    }
    assert eng.pool_usdc6 == 0
    assert eng.depth(YES, BUY) == ()


def test_place_after_resolution_is_rejected():
    eng = _engine()
    eng.resolve(yes_won=False, ts_ns=0)

    report = _place(eng, "a", "a1", YES, BUY, 4500, 5 * SHARE)

    assert _events(report, Rejected)[0][1].reason == REASON_RESOLVED
