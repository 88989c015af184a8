from hypothesis import given
from hypothesis import strategies as st

from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot, Canceled, Filled, Place, Rejected
from core.units import QTY_ONE, Outcome, Side
from sim.exchange import QueueModel, SimExchange

T = 10**18
SHARE = QTY_ONE  # Qty of one share
INFO = MarketInfo(
    market="m", yes_token="y", no_token="n", tick_px=100, min_qty=5 * SHARE, fee_rate_ppm=40_000
)


def venue(model="risk_averse", bid_qty=100 * SHARE):
    ex = SimExchange(INFO, QueueModel(model=model))
    ex.on_snapshot(
        BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=T,
            bids=((4_700, bid_qty), (4_600, 50 * SHARE)),
            asks=((4_800, 100 * SHARE),),
            tick_px=100,
            min_qty=5 * SHARE,
        )
    )
    return ex


def bid(cid="b1", px=4_700, qty=20 * SHARE, **kw):
    return Place(market="m", client_id=cid, outcome=Outcome.YES, side=Side.BUY, px=px, qty=qty, **kw)


def fills(events):
    return [e for e in events or [] if isinstance(e, Filled)]


def test_new_order_joins_behind_displayed_size_and_fills_after_it_trades():
    ex = venue()
    assert isinstance(ex.place(bid(), T)[0], Accepted)

    assert fills(ex.on_trade(Side.SELL, 4_700, 60 * SHARE, T + 1)) == []  # 100 shares ahead, 60 traded
    f = fills(ex.on_trade(Side.SELL, 4_700, 50 * SHARE, T + 2))  # 40 left ahead, 50 traded: 10 reach us

    assert [(x.qty, x.px, x.liquidity, x.fee_usdc6) for x in f] == [(10 * SHARE, 4_700, "maker", 0)]


def test_risk_averse_cancels_do_not_advance_the_queue_probabilistic_do():
    for model, expect_fill in (("risk_averse", False), ("probabilistic", True)):
        ex = venue(model)
        ex.place(bid(), T)

        ex.on_level(Side.BUY, 4_700, 300 * SHARE, T + 1)  # 200 shares join behind us
        ex.on_level(Side.BUY, 4_700, 220 * SHARE, T + 2)  # 80 shares cancelled somewhere in the queue
        # A second later (not the same trade's print): fewer than the 100 shares ahead at the start.
        f = fills(ex.on_trade(Side.SELL, 4_700, 90 * SHARE, T + 2 + 1_000_000_000))

        assert bool(f) is expect_fill, model


def test_trade_through_our_price_fills_at_our_price():
    ex = venue()
    ex.place(bid(px=4_700), T)

    f = fills(ex.on_trade(Side.SELL, 4_600, 15 * SHARE, T + 1))

    assert [(x.qty, x.px) for x in f] == [(15 * SHARE, 4_700)]


def test_ask_arriving_across_our_bid_fills_us_as_maker():
    ex = venue()
    ex.place(bid(px=4_700), T)

    f = fills(ex.on_level(Side.SELL, 4_700, 8 * SHARE, T + 1))

    assert [(x.qty, x.liquidity) for x in f] == [(8 * SHARE, "maker")]


def test_post_only_crossing_is_rejected_taker_pays_fee():
    ex = venue()

    rej = ex.place(bid(px=4_800, post_only=True), T)
    take = ex.place(bid(cid="b2", px=4_800, qty=10 * SHARE, post_only=False, tif="FAK"), T)

    assert isinstance(rej[0], Rejected) and "crosses book" in rej[0].reason
    f = fills(take)
    assert [(x.qty, x.px, x.liquidity) for x in f] == [(10 * SHARE, 4_800, "taker")]
    assert f[0].fee_usdc6 == 99_840  # 10 * 0.04 * 0.48 * 0.52 = 0.09984


def test_buy_no_rests_as_yes_ask_and_fills_in_no_terms():
    ex = venue()
    ex.place(
        Place(market="m", client_id="n1", outcome=Outcome.NO, side=Side.BUY, px=5_100, qty=10 * SHARE), T
    )

    f = fills(ex.on_trade(Side.BUY, 4_900, 200 * SHARE, T + 1))  # buyers lift YES through 0.49

    assert [(x.outcome, x.side, x.px, x.qty) for x in f] == [(Outcome.NO, Side.BUY, 5_100, 10 * SHARE)]


def test_bad_tick_and_small_size_rejected_cancel_reports():
    ex = venue()

    assert "tick" in ex.place(bid(px=4_750), T)[0].reason
    assert "minimum" in ex.place(bid(cid="b3", qty=SHARE), T)[0].reason
    ex.place(bid(cid="b4"), T)
    assert isinstance(ex.cancel("b4", T + 1)[0], Canceled)
    assert ex.cancel("b4", T + 2) == []


@given(
    model=st.sampled_from(["risk_averse", "probabilistic"]),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("trade"), st.integers(1, 50 * SHARE)),
            st.tuples(st.just("level"), st.integers(0, 200 * SHARE)),
        ),
        max_size=30,
    ),
)
def test_an_order_never_fills_before_the_size_ahead_is_consumed(model, steps):
    ex = venue(model)
    ex.place(bid(qty=1_000 * SHARE), T)
    ahead0 = 100 * SHARE
    traded = filled = 0
    for i, (kind, q) in enumerate(steps, start=1):
        if kind == "trade":
            traded += q
            out = ex.on_trade(Side.SELL, 4_700, q, T + i)
        else:
            out = ex.on_level(Side.BUY, 4_700, q, T + i)
        filled += sum(f.qty for f in fills(out))

        # Only trades at our price fill us. Risk-averse: only beyond the size that was ahead of us,
        # i.e. what was displayed when we joined, or less if the level later showed less (cancels
        # ahead). Probabilistic: cancels may also advance us, but never past a trade.
        assert filled <= traded
        if model == "risk_averse":
            assert filled <= max(0, traded - min(ahead0, min_displayed(steps[:i], ahead0)))


def min_displayed(steps, start):
    m = start
    for kind, q in steps:
        if kind == "level":
            m = min(m, q)
    return m


def test_sell_needs_shares_not_already_offered():
    ex = venue()
    sell = Place(market="m", client_id="s1", outcome=Outcome.YES, side=Side.SELL, px=4_900, qty=10 * SHARE)

    assert "balance" in ex.place(sell, T)[0].reason  # nothing held: Polymarket cannot be shorted
    ex.place(bid(px=4_700, qty=10 * SHARE), T)
    ex.on_trade(Side.SELL, 4_600, 10 * SHARE, T + 1)  # our bid fills: we hold 10 YES
    assert isinstance(ex.place(sell, T + 2)[0], Accepted)
    again = Place(market="m", client_id="s2", outcome=Outcome.YES, side=Side.SELL, px=5_000, qty=10 * SHARE)
    assert "balance" in ex.place(again, T + 3)[0].reason  # the same 10 shares are already offered


def test_a_trade_and_its_level_decrease_advance_the_queue_once_in_either_order():
    for model in ("risk_averse", "probabilistic"):
        # The decrease first (the venue's price_change, then last_trade_price)...
        ex = venue(model)
        ex.place(bid(), T)
        ex.on_level(Side.BUY, 4_700, 0, T + 1)
        assert fills(ex.on_trade(Side.SELL, 4_700, 100 * SHARE, T + 1)) == [], model  # exactly the 100 ahead
        # ...or the print first (the synthetic and BBO sources).
        ex = venue(model, bid_qty=200 * SHARE)
        ex.place(bid(), T)
        ex.on_trade(Side.SELL, 4_700, 100 * SHARE, T + 1)
        ex.on_level(Side.BUY, 4_700, 100 * SHARE, T + 1)
        assert fills(ex.on_trade(Side.SELL, 4_700, 50 * SHARE, T + 2)) == [], model  # 100 still ahead


def test_our_own_orders_at_one_price_share_a_print_once():
    ex = venue()
    ex.place(bid("b1", qty=50 * SHARE), T)
    ex.place(bid("b2", qty=50 * SHARE), T)  # behind the 100 displayed and behind b1

    f = fills(ex.on_trade(Side.SELL, 4_700, 150 * SHARE, T + 1))  # 100 ahead trade, then 50 for us

    assert sum(x.qty for x in f) == 50 * SHARE and [x.client_id for x in f] == ["b1"]
    ex.cancel("b1", T + 2)
    assert ex.orders["b2"].ahead == 0  # b1 gone: b2 is next


def test_the_part_of_a_print_already_netted_does_not_explain_the_next_decrease():
    ex = venue()
    ex.place(bid(), T)  # 100 shares ahead
    ex.on_level(Side.BUY, 4_700, 70 * SHARE, T + 1)  # trade 1 (30 shares): the decrease first...
    ex.on_trade(Side.SELL, 4_700, 30 * SHARE, T + 1)  # ...then its print
    ex.on_level(Side.BUY, 4_700, 0, T + 2)  # trade 2 (70 shares): decrease...

    f = fills(ex.on_trade(Side.SELL, 4_700, 70 * SHARE, T + 2))  # ...and print: exactly what was ahead

    assert f == []


def test_a_snapshot_keeps_our_own_orders_queued_behind_each_other():
    ex = venue()
    ex.place(bid("b1", qty=50 * SHARE), T)
    ex.place(bid("b2", qty=50 * SHARE), T)
    ex.on_snapshot(
        BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=T + 1,
            bids=((4_700, 100 * SHARE),),
            asks=((4_800, 100 * SHARE),),
        )
    )

    f = fills(ex.on_trade(Side.SELL, 4_700, 150 * SHARE, T + 2))

    assert [(x.client_id, x.qty) for x in f] == [("b1", 50 * SHARE)]


def test_fills_come_in_any_six_decimal_size_and_carry_the_venue_cash():
    ex = venue()
    ex.place(
        Place(market="m", client_id="n1", outcome=Outcome.NO, side=Side.BUY, px=5_100, qty=10 * SHARE), T
    )
    ex.place(bid(cid="b1", px=4_600, qty=10 * SHARE), T)

    no_fill = fills(ex.on_trade(Side.BUY, 4_900, 3_333_333, T + 1))  # 3.333333 shares lift 0.49
    yes_fill = fills(ex.on_trade(Side.SELL, 4_500, 3_333_333, T + 2))  # and go through our 0.46 bid

    assert [(x.outcome, x.px, x.qty, x.leaves_qty) for x in no_fill + yes_fill] == [
        (Outcome.NO, 5_100, 3_333_333, 10 * SHARE - 3_333_333),
        (Outcome.YES, 4_600, 3_333_333, 10 * SHARE - 3_333_333),
    ]
    # The ledger's YES-equivalent cash: a NO bought at 0.51 pays floor(1.69999983) = 1.699999 USDC,
    # i.e. a YES sold at 0.49 for the rest of the pair's 3.333333 USDC; a YES bought at 0.46 pays
    # floor(1.53333318) = 1.533333 USDC.
    assert [(f.yes_side, f.yes_px, f.qty, f.cash_usdc6) for f in ex.fills] == [
        (Side.SELL, 4_900, 3_333_333, 3_333_333 - 1_699_999),
        (Side.BUY, 4_600, 3_333_333, 1_533_333),
    ]
