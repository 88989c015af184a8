from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.configfile import load_config, load_struct
from core.book import L2Book
from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot, Canceled, Filled, Place, Rejected
from core.quoting import quote_params
from core.units import QTY_ONE, Outcome, Side
from sim.runner import Runner
from sim.scenario import Scenario, scenario_tapes
from venue.exchange import QueueModel, SimExchange

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
    fills_by_model = {}
    for model in ("risk_averse", "probabilistic"):
        ex = venue(model)
        ex.place(bid(), T)  # 100 shares ahead

        ex.on_level(Side.BUY, 4_700, 300 * SHARE, T + 1)  # 200 shares join behind us
        ex.on_level(Side.BUY, 4_700, 220 * SHARE, T + 2)  # 80 shares cancelled somewhere in the queue
        # A 90-share trade a second later, as the venue sends it: the level's decrease, then the print.
        ex.on_level(Side.BUY, 4_700, 130 * SHARE, T + 10**9)
        fills_by_model[model] = sum(
            f.qty for f in fills(ex.on_trade(Side.SELL, 4_700, 90 * SHARE, T + 10**9))
        )

    # Risk-averse: the cancel came from behind, 100 still ahead, 90 traded. Probabilistic: 16 of
    # the 80 cancelled were ahead (100^2 / (100^2 + 200^2)), 84 ahead of the 90-share trade.
    assert fills_by_model == {"risk_averse": 0, "probabilistic": 6 * SHARE}


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


def snap(bids, asks, ts=T, outcome=Outcome.YES):
    return BookSnapshot(
        market="m",
        outcome=outcome,
        ts_ns=ts,
        bids=tuple(bids),
        asks=tuple(asks),
        tick_px=100,
        min_qty=5 * SHARE,
    )


def filled(events):
    return sum(f.qty for f in fills(events))


def test_a_crossing_ask_fills_once_however_many_snapshots_still_show_it():
    ex = venue()
    ex.place(bid(px=4_700, qty=40 * SHARE), T)
    book = [(4_600, 50 * SHARE)], [(4_700, 10 * SHARE), (4_800, 100 * SHARE)]  # 10 shares ask at our bid

    first = filled(ex.on_snapshot(snap(*book, ts=T + 1)))
    again = filled(ex.on_snapshot(snap(*book, ts=T + 2)))
    level = filled(ex.on_level(Side.SELL, 4_700, 10 * SHARE, T + 3))

    assert (first, again, level) == (10 * SHARE, 0, 0)
    assert ex.book.asks[4_700] == 0  # what we bought is gone for us while the data shows it


def test_liquidity_we_used_stays_used_across_a_tick_change():
    ex = venue()
    ex.place(bid(px=4_700, qty=40 * SHARE), T)
    ex.on_level(Side.SELL, 4_700, 10 * SHARE, T + 1)  # fills 10 of our 40

    ex.set_tick(100)
    again = ex.on_snapshot(snap([(4_600, 50 * SHARE)], [(4_700, 10 * SHARE)], ts=T + 2))

    assert filled(again) == 0 and ex.orders["b1"].qty == 30 * SHARE


def test_used_liquidity_is_forgotten_once_the_data_shows_the_level_at_or_below_what_is_left():
    ex = venue()
    ex.place(bid(px=4_700, qty=10 * SHARE), T)

    assert filled(ex.on_level(Side.SELL, 4_700, 30 * SHARE, T + 1)) == 10 * SHARE  # 20 left to others
    steps = []
    for qty in (25, 15, 40):  # the data's own trades or cancels take the used part first
        ex.on_level(Side.SELL, 4_700, qty * SHARE, T + 2)
        steps.append(ex.book.asks[4_700] // SHARE)
    ex.on_snapshot(snap([(4_600, 50 * SHARE)], [(4_700, 40 * SHARE)], ts=T + 3))

    assert steps == [20, 15, 40]  # 25: 5 of ours still shown; 15: all of it gone; then 25 more joined
    assert ex.book.asks[4_700] == 40 * SHARE


def test_taking_uses_the_liquidity_until_the_data_shows_it_gone():
    ex = venue()
    take = bid(cid="t1", px=4_800, qty=10 * SHARE, tif="FAK", post_only=False)
    assert filled(ex.place(take, T)) == 10 * SHARE
    ex.on_snapshot(snap([(4_700, 100 * SHARE)], [(4_800, 100 * SHARE)], ts=T + 1))

    more = ex.place(bid(cid="t2", px=4_800, qty=95 * SHARE, tif="FAK", post_only=False), T + 2)

    assert filled(more) == 90 * SHARE


def queue_after(model, events, place_at=0):
    """Our 20-share bid at 0.47 behind 100 shares; ``events`` are applied in order (ours joins first)."""
    ex = venue(model)
    for i, ev in enumerate(events):
        if i == place_at:
            ex.place(bid(), T)
        kind, *args = ev
        if kind == "level":
            ex.on_level(Side.BUY, 4_700, args[0] * SHARE, args[1])
        elif kind == "trade":
            ex.on_trade(Side.SELL, 4_700, args[0] * SHARE, args[1])
        else:  # something at another price meanwhile
            ex.on_level(Side.SELL, 4_900, args[0] * SHARE, args[1])
    if place_at >= len(events):
        ex.place(bid(), T)
    return ex.orders["b1"].ahead // SHARE


@pytest.mark.parametrize("model", ["risk_averse", "probabilistic"])
@pytest.mark.parametrize("gap", [0, 1, 10**12])
def test_a_trade_advances_the_queue_once_whichever_half_comes_first_and_however_far_apart(model, gap):
    t2 = T + 1 + gap
    print_first = [("trade", 30, T + 1), ("other", 7, T + 2), ("level", 70, t2)]
    decrease_first = [("level", 70, T + 1), ("other", 7, T + 2), ("trade", 30, t2)]

    assert queue_after(model, print_first) == queue_after(model, decrease_first) == 70


@pytest.mark.parametrize("model", ["risk_averse", "probabilistic"])
def test_the_decrease_of_the_trade_we_stand_behind_then_its_print_moves_us_by_the_trade(model):
    # 100 ahead, 200 behind: the venue's order (decrease, then print) of a 130-share trade.
    ex = venue(model, bid_qty=100 * SHARE)
    ex.place(bid(), T)
    ex.on_level(Side.BUY, 4_700, 300 * SHARE, T + 1)
    ex.on_level(Side.BUY, 4_700, 170 * SHARE, T + 2)

    got = fills(ex.on_trade(Side.SELL, 4_700, 130 * SHARE, T + 3))

    assert [f.qty for f in got] == [20 * SHARE]  # 100 ahead, then all of our 20 shares
    assert ex.orders == {}


@pytest.mark.parametrize("model", ["risk_averse", "probabilistic"])
def test_an_order_joining_between_a_trade_s_halves_is_not_moved_by_that_trade(model):
    # Decrease first: we join behind the 70 left; the print is that decrease's trade.
    assert queue_after(model, [("level", 70, T + 1), ("trade", 30, T + 2)], place_at=1) == 70
    # Print first: the 30 printed are already gone from the 100 shown; its decrease changes nothing.
    assert queue_after(model, [("trade", 30, T + 1), ("level", 70, T + 2)], place_at=1) == 70


def test_a_cancel_then_a_print_is_read_as_one_trade_until_the_level_grows_in_between():
    # The documented ambiguity: an unexplained decrease followed at its level by a print is taken
    # as that trade's decrease and print (the venue's order).
    taken_as_one = queue_after("risk_averse", [("level", 90, T + 1), ("trade", 10, T + 2)])
    # If the print's own decrease then comes (a print-first feed), the position is exact again.
    then_its_decrease = queue_after(
        "risk_averse", [("level", 90, T + 1), ("trade", 10, T + 2), ("level", 80, T + 3)]
    )
    # An increase closes the level: the decrease was a cancel, the print a trade of its own.
    closed = queue_after("risk_averse", [("level", 90, T + 1), ("level", 95, T + 2), ("trade", 10, T + 3)])

    assert (taken_as_one, then_its_decrease, closed) == (90, 80, 80)


def test_any_order_that_executes_on_arrival_must_be_worth_a_dollar():
    ex = SimExchange(INFO)
    ex.on_snapshot(snap([(1_000, 100 * SHARE)], [(1_500, 100 * SHARE)]))

    def buy(cid, px, qty, **kw):
        return ex.place(bid(cid=cid, px=px, qty=qty, post_only=False, **kw), T)

    small_gtc = buy("g1", 1_500, 5 * SHARE)  # $0.75 and crosses: it would execute
    small_fak = buy("f1", 1_400, 2 * SHARE, tif="FAK")  # $0.28: a market order, crossing or not
    post_only = ex.place(bid(cid="p1", px=1_500, qty=5 * SHARE), T)  # post-only never executes
    resting = buy("r1", 1_400, 5 * SHARE)  # $0.70 but rests: only the minimum size binds
    enough = buy("g2", 1_500, 7 * SHARE)  # $1.05, crosses

    assert [e.reason for e in small_gtc + small_fak] == [
        "invalid amount for a marketable BUY order ($0.75), min size: $1",
        "invalid amount for a marketable BUY order ($0.28), min size: $1",
    ]
    assert post_only[0].reason == "invalid post-only order: order crosses book"
    assert isinstance(resting[0], Accepted)
    assert filled(enough) == 7 * SHARE


def test_maker_fills_carry_the_rebate_taker_fills_the_fee():
    info = msgspec.structs.replace(INFO, rebate_ppm=250_000)
    ex = SimExchange(info)
    ex.on_snapshot(snap([(4_700, 100 * SHARE)], [(5_000, 100 * SHARE)]))
    ex.place(bid(px=4_700, qty=10 * SHARE), T)
    ex.place(bid(cid="t1", px=5_000, qty=10 * SHARE, tif="FAK", post_only=False), T)

    ex.on_trade(Side.SELL, 4_600, 10 * SHARE, T + 1)  # through our bid: a maker fill at 0.47

    # Taker: 10 * 0.04 * 0.5 * 0.5 = 0.1 USDC. Maker: a quarter of 10 * 0.04 * 0.47 * 0.53 = 0.09964.
    assert [(f.liquidity, f.fee_usdc6, f.rebate_usdc6) for f in ex.fills] == [
        ("taker", 100_000, 0),
        ("maker", 0, 24_910),
    ]


def test_a_no_token_snapshot_is_read_as_the_yes_book():
    ex = SimExchange(INFO)
    # NO bids at 0.52 are YES asks at 0.48; NO asks at 0.54 are YES bids at 0.46.
    ex.on_snapshot(snap([(5_200, 30 * SHARE)], [(5_400, 40 * SHARE)], outcome=Outcome.NO))

    assert (ex.book.best_bid(), ex.book.best_ask()) == ((4_600, 40 * SHARE), (4_800, 30 * SHARE))


def test_ws_replay_fills_no_more_from_the_crossing_burst_than_it_displayed():
    # Acceptance of issue #9: the recorded burst's 45.83-share ask at 0.301 (message 47) arrives
    # across our bids, and the fresh book that follows still shows it.
    sc = load_struct(Path("configs/scenarios/ws_replay.yaml"), Scenario)
    tapes = scenario_tapes(sc, Path("configs/scenarios"))
    runner = Runner(
        tapes, quote_params(load_config("configs/market_maker.yaml")), sc.settings(10**12), sc.seed
    )
    runner.run("inline")
    burst_ts = 1_790_658_827_000_000_000

    burst = [f for f in runner.lanes[0].exchange.fills if f.ts_ns == burst_ts]

    assert burst and sum(f.qty for f in burst) == 45_830_000


_PXS = (4_500, 4_600, 4_700, 4_800, 4_900)
_STEP = st.one_of(
    st.tuples(st.just("level"), st.sampled_from(Side), st.sampled_from(_PXS), st.integers(0, 60)),
    st.tuples(st.just("trade"), st.sampled_from(Side), st.sampled_from(_PXS), st.integers(1, 40)),
    st.tuples(st.just("place"), st.sampled_from(Side), st.sampled_from(_PXS), st.integers(5, 40)),
    st.tuples(st.just("take"), st.sampled_from(Side), st.sampled_from(_PXS), st.integers(5, 40)),
    st.tuples(st.just("cancel"), st.just(Side.BUY), st.sampled_from(_PXS), st.integers(0, 9)),
    st.tuples(st.just("snapshot"), st.just(Side.BUY), st.sampled_from(_PXS), st.integers(0, 60)),
    st.tuples(st.just("tick"), st.just(Side.BUY), st.just(0), st.just(0)),
)


@given(steps=st.lists(_STEP, max_size=60), model=st.sampled_from(["risk_averse", "probabilistic"]))
def test_a_shared_book_shows_the_data_and_the_venue_trades_as_with_a_book_of_its_own(steps, model):
    # ``shown``: the venue keeps the data's own book current (as the feed would show it: every
    # level change applied, as it comes) and trades exactly as a venue with a private book, also
    # while liquidity we used makes the book we trade against differ from the data's.
    shown = L2Book(tick_px=100, min_qty=5 * SHARE)
    shared = SimExchange(INFO, QueueModel(model=model), shown=shown)
    alone = SimExchange(INFO, QueueModel(model=model))
    data = L2Book(tick_px=100, min_qty=5 * SHARE)  # the feed's book, as a session keeps it
    first = snap([(4_600, 50 * SHARE)], [(4_800, 50 * SHARE)])
    assert shared.on_snapshot(first) == alone.on_snapshot(first)
    data.apply_snapshot(first.bids, first.asks, first.ts_ns, first.tick_px, first.min_qty)
    for k, (kind, side, px, q) in enumerate(steps):
        ts = T + 1 + k
        if kind == "level":
            out = shared.on_level(side, px, q * SHARE, ts), alone.on_level(side, px, q * SHARE, ts)
            data.set_level(side, px, q * SHARE, ts)
        elif kind == "trade":
            out = shared.on_trade(side, px, q * SHARE, ts), alone.on_trade(side, px, q * SHARE, ts)
        elif kind in ("place", "take"):
            cmd = Place(
                market="m",
                client_id=f"o{k}",
                outcome=Outcome.YES,
                side=side,
                px=px,
                qty=q * SHARE,
                post_only=kind == "place",
                tif="GTC" if kind == "place" else "FAK",
            )
            out = shared.place(cmd, ts), alone.place(cmd, ts)
        elif kind == "cancel":
            ids = sorted(alone.orders)
            cid = ids[q % len(ids)] if ids else "none"
            out = shared.cancel(cid, ts), alone.cancel(cid, ts)
        elif kind == "snapshot":
            s = snap([(px - 100, q * SHARE + SHARE)], [(px + 100, 30 * SHARE)], ts=ts)
            out = shared.on_snapshot(s), alone.on_snapshot(s)
            data.apply_snapshot(s.bids, s.asks, ts, s.tick_px, s.min_qty)
        else:
            shared.set_tick(100)
            alone.set_tick(100)
            data.set_tick(100)
            data.clear()
            out = [], []
        assert out[0] == out[1]
        assert shared.book.levels(Side.BUY) == alone.book.levels(Side.BUY)
        assert shared.book.levels(Side.SELL) == alone.book.levels(Side.SELL)
        assert (shared.book.bid_px, shared.book.ask_px) == (alone.book.bid_px, alone.book.ask_px)
        assert shared.shown is shown
        assert shown.levels(Side.BUY) == data.levels(Side.BUY)
        assert shown.levels(Side.SELL) == data.levels(Side.SELL)
        assert (shown.bid_px, shown.ask_px, shown.ts_ns) == (data.bid_px, data.ask_px, data.ts_ns)
        assert (shared.book is shown) == (not shared._used)  # apart only while something is used


def test_a_level_where_we_rest_reaches_the_shared_book_even_unchanged():
    # The session reads the shared book's time (its age) and hears of a change at the touch even
    # when the size is the same: every level event must reach the book, ours included.
    shown = L2Book(tick_px=100, min_qty=5 * SHARE)
    ex = SimExchange(INFO, shown=shown)
    ex.on_snapshot(snap([(4_700, 100 * SHARE)], [(4_800, 100 * SHARE)]))
    ex.place(bid(px=4_700), T)

    ex.on_level(Side.BUY, 4_700, 100 * SHARE, T + 5)

    assert shown.ts_ns == T + 5
