from itertools import combinations

import msgspec
from hypothesis import assume, example, given
from hypothesis import strategies as st

from app.configfile import load_config
from core.book import BookView
from core.estimators import FlowState, VolState
from core.inventory import Inventory, worst_case_losses, worst_case_losses_usdc10
from core.quoting import Reasons, decide, flow_size_pcts, flow_size_pcts_at, quote_params
from core.risk import ACTIVE_GATE, RiskGate, TradingState
from core.units import (
    NS_PER_S,
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Side,
    format_px,
    notional_usdc6,
)
from tests.reference import flow_size_pcts_ref
from tests.strategies import book_views, inventories, orders, params

SHARE = QTY_ONE

NEUTRAL_VOL = VolState()
NEUTRAL_FLOW = FlowState()
NOW = 10**18
MM = quote_params(load_config("configs/market_maker.yaml"))


def view(bid=4_700, ask=4_800, bid_qty=100 * SHARE, ask_qty=100 * SHARE, tick=100, min_qty=5 * SHARE, ts=NOW):
    return BookView(
        bid_px=bid, bid_qty=bid_qty, ask_px=ask, ask_qty=ask_qty, tick_px=tick, min_qty=min_qty, ts_ns=ts
    )


def long_yes(shares, px=4_750):
    qty = shares * SHARE
    cost = notional_usdc6(px, qty)
    return Inventory(yes_qty=qty, cash_usdc6=-cost, yes_cost_usdc6=cost)


# --- examples ---------------------------------------------------------------------------------------


def test_decide_flat_market_maker_quotes_two_sided_ladder_bigger_deeper():
    d = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

    assert d.quote
    assert [q.px for q in d.bids] == [4_600, 4_500, 4_400]
    assert [q.px for q in d.asks] == [4_900, 5_000, 5_100]
    assert [q.qty for q in d.bids] == [10 * SHARE, 20 * SHARE, 40 * SHARE]
    assert d.fair_px == 4_750 and d.skewed_mid_px == 4_750


def test_decide_flat_sells_yes_as_buy_no_at_complement():
    d = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

    asks_out = [o for o in d.orders if o.outcome is Outcome.NO]
    assert [(o.side, o.px) for o in asks_out] == [(Side.BUY, 5_100), (Side.BUY, 5_000), (Side.BUY, 4_900)]


def test_decide_holding_yes_sells_yes():
    d = decide(view(), long_yes(100), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

    assert all(o.outcome is Outcome.YES and o.side is Side.SELL for o in d.orders if o.side is Side.SELL)
    assert any(o.side is Side.SELL for o in d.orders)


def test_decide_long_inventory_lowers_every_quote():
    flat = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)
    long = decide(view(), long_yes(250), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

    assert long.skewed_mid_px == flat.skewed_mid_px - 100  # k=200 px at 500 shares, so 100 px at 250
    assert long.reasons.skew_px == 100
    assert all(a.px <= b.px for a, b in zip(long.bids, flat.bids, strict=False))
    assert all(a.px <= b.px for a, b in zip(long.asks, flat.asks, strict=False))


def test_decide_empty_one_sided_crossed_and_stale_books_give_reasoned_no_quote():
    cases = {
        "empty_book": view(bid_qty=0, ask_qty=0),
        "one_sided_book": view(ask_qty=0),
        "crossed_book": view(bid=4_800, ask=4_700),
        "stale_book": view(ts=NOW - 61 * 10**9),
    }
    for reason, v in cases.items():
        d = decide(v, Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

        assert not d.quote and d.no_quote == reason and d.orders == ()
        assert d.reasons.pulled


@given(book_views(), inventories(), params(), st.booleans(), st.sampled_from(list(TradingState)))
def test_every_decision_says_what_the_market_holds_refusals_too(v, inv, p, vol_pulled, state):
    # The decision log is where a restart shows the inventory it starts from: a refusal (a stale or
    # wide book, a volatility pull, a risk pause) must not read as flat.
    gate = ACTIVE_GATE if state is TradingState.ACTIVE else RiskGate(state=state, rule="r", detail="d")
    vol = VolState(vol_px=500 if vol_pulled else 0, pulled=vol_pulled)
    d = decide(v, inv, vol, NEUTRAL_FLOW, p, NOW, risk=gate)

    assert d.reasons.inventory_qty == inv.yes_qty - inv.no_qty


def test_decide_a_refusal_reports_the_inventory():
    d = decide(view(ask_qty=0), long_yes(50), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

    assert (d.no_quote, d.reasons.inventory_qty) == ("one_sided_book", 50 * SHARE)


def test_decide_volatility_widens_then_pulls():
    calm = decide(view(), Inventory(), VolState(vol_px=50), NEUTRAL_FLOW, MM, NOW)
    wild = decide(view(), Inventory(), VolState(vol_px=250), NEUTRAL_FLOW, MM, NOW)
    pulled = decide(view(), Inventory(), VolState(vol_px=500, pulled=True), NEUTRAL_FLOW, MM, NOW)

    assert calm.reasons.half_spread_px == 100
    assert wild.reasons.vol_widen_px == 75 and wild.reasons.half_spread_px == 175  # (250 - 100) * 0.5
    assert wild.bids[0].px < calm.bids[0].px and wild.asks[0].px > calm.asks[0].px
    assert not pulled.quote and pulled.no_quote == "volatility_pull"


def test_decide_one_way_buying_shrinks_ask_size_only():
    buying = FlowState(buy_qty=1_000.0 * SHARE, sell_qty=0.0, ts_ns=NOW)

    d = decide(view(), Inventory(), NEUTRAL_VOL, buying, MM, NOW)

    assert d.reasons.flow_permille == 1000 and d.reasons.ask_size_pct == 0
    assert d.asks == () and len(d.bids) == 3


def test_decide_partial_one_way_flow_shrinks_proportionally():
    mostly_selling = FlowState(buy_qty=100.0 * SHARE, sell_qty=900.0 * SHARE, ts_ns=NOW)

    d = decide(view(), Inventory(), NEUTRAL_VOL, mostly_selling, MM, NOW)

    assert d.reasons.flow_permille == -800
    assert d.reasons.bid_size_pct == 50  # (0.8 - 0.6) / 0.4 = half the size
    assert [q.qty for q in d.bids] == [5 * SHARE, 10 * SHARE, 20 * SHARE]
    assert [q.qty for q in d.asks] == [10 * SHARE, 20 * SHARE, 40 * SHARE]


@given(
    st.floats(0.0, 10.0**12),
    st.floats(0.0, 10.0**12),
    st.integers(-NS_PER_S, NS_PER_S),
    st.integers(0, 1_000),
    st.floats(-1.0, 2.0),
    st.floats(0.001, 3_600.0),
    st.integers(0, 10**9),
)
@example(1.0, 0.0, 0, 600, 1.0, 30.0, 0)
@example(0.0, 1.0, 0, 1_000, 0.5, 30.0, 0)
@example(0.0, 0.0, 0, 0, 1.0, 30.0, 0)
def test_flow_size_pcts_are_the_old_rule_and_at_their_imbalance(
    buy, sell, dt_ns, thr, shrink, halflife_s, min_qty
):
    # The size multipliers depend on the flow only through its imbalance: ``flow_size_pcts_at``
    # (what a print computes, once the imbalance may have left the calm band) gives them from it.
    p = msgspec.structs.replace(
        MM, flow_threshold_permille=thr, flow_shrink=shrink, flow_halflife_s=halflife_s, flow_min_qty=min_qty
    )
    flow = FlowState(buy_qty=buy, sell_qty=sell, ts_ns=NOW)
    ref = flow_size_pcts_ref(flow, NOW + dt_ns, p)
    assert flow_size_pcts(flow, NOW + dt_ns, p) == ref
    assert flow_size_pcts_at(ref[0], p) == ref[1:]
    # Inside the threshold both are 100: the band a print skips the multipliers in.
    for flow_pm in (-1_000, -thr, 1 - thr, -1, 0, 1, thr - 1, thr, 1_000):
        pcts = flow_size_pcts_at(flow_pm, p)
        assert (
            pcts
            == flow_size_pcts_ref(
                FlowState(buy_qty=1000.0 + flow_pm, sell_qty=1000.0 - flow_pm),
                0,
                msgspec.structs.replace(p, flow_min_qty=0),
            )[1:]
        )
        if abs(flow_pm) < thr:
            assert pcts == (100, 100)


def test_decide_cap_trims_deepest_bid_first_and_keeps_asks():
    inv = long_yes(180)  # 180 YES at 0.475: 85.50 USDC lost if NO wins; cap is 100

    d = decide(view(), inv, NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)

    assert len(d.asks) == 3
    # 85.5 + 4.5 + 8.8 = 98.8 if NO wins; the 40-share level would not fit under the 100 USDC cap.
    assert [q.qty for q in d.bids] == [10 * SHARE, 20 * SHARE]
    assert d.reasons.trims == (
        f"bid {format_px(d.bids[1].px - 100)}: dropped (cap)",
    )  # prices as people read them
    assert max(worst_case_losses(inv, [(o.outcome, o.side, o.px, o.qty) for o in d.orders])) <= 100_000_000
    assert d.reasons.loss_if_no_usdc6 == 98_800_000


def test_decide_cap_never_trims_selling_what_we_hold():
    # Long 1000 YES bought at 0.475: 475 USDC lost if NO wins, far above the 100 USDC cap. Every ask
    # sells held YES and lowers that loss, so none is trimmed; every bid would raise it, so none goes.
    inv = long_yes(1_000)
    big = msgspec.structs.replace(MM, level_sizes_qty=(50 * SHARE, 100 * SHARE, 200 * SHARE))

    d = decide(view(), inv, NEUTRAL_VOL, NEUTRAL_FLOW, big, NOW)

    assert [q.qty for q in d.asks] == [50 * SHARE, 100 * SHARE, 200 * SHARE]
    assert all(o.outcome is Outcome.YES and o.side is Side.SELL for o in d.orders)
    assert d.bids == () and not any(t.startswith("ask") for t in d.reasons.trims)
    # Both outcomes reported signed: if YES wins we keep a gain even after every ask fills.
    assert d.reasons.loss_if_no_usdc6 == 475_000_000 and d.reasons.loss_if_yes_usdc6 < 0


def test_decide_global_room_tightens_the_cap():
    d = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, global_room_usdc6=5_000_000)

    assert d.reasons.cap_usdc6 == 5_000_000
    assert sum(q.px * q.qty for q in d.bids) <= 5_000_000 * USDC10_PER_USDC6


def test_decide_maker_only_clamps_inside_one_tick_book():
    tight = view(bid=4_700, ask=4_710, tick=10)
    p = msgspec.structs.replace(MM, half_spread_px=0, level_spacing_px=10)

    d = decide(tight, Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)

    assert d.bids[0].px <= 4_700 and d.asks[0].px >= 4_710


def test_decide_join_best_moves_top_level_to_the_touch_but_not_past_fair():
    wide = view(bid=4_000, ask=6_000)
    p = msgspec.structs.replace(MM, improve_best_ticks=1, half_spread_px=1_500)

    d = decide(wide, Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)

    assert d.bids[0].px == 4_100 and d.asks[0].px == 5_900
    assert d.reasons.improved == 2


def test_option_seller_is_symmetric_and_ignores_inventory():
    os_params = quote_params(load_config("configs/option_seller.yaml"))

    flat = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, os_params, NOW)
    long = decide(view(), long_yes(100), NEUTRAL_VOL, NEUTRAL_FLOW, os_params, NOW)

    assert flat.skewed_mid_px == long.skewed_mid_px == flat.fair_px
    assert [flat.fair_px - q.px for q in flat.bids] == [q.px - flat.fair_px for q in flat.asks]
    assert len(flat.bids) == 4


# --- properties -------------------------------------------------------------------------------------


@given(book_views(), inventories(), params(), st.lists(orders, max_size=3))
def test_quotes_on_grid_inside_range_sized_and_never_crossing(v, inv, p, inflight):
    d = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, inflight=tuple(inflight))

    t = v.tick_px
    for q in d.bids + d.asks:
        assert q.px % t == 0 and t <= q.px <= PX_ONE - t
        assert q.qty >= v.min_qty
    if p.maker_only:
        assert all(q.px < v.ask_px for q in d.bids)
        assert all(q.px > v.bid_px for q in d.asks)
    if d.bids and d.asks:
        assert d.bids[0].px < d.asks[0].px
    assert [q.px for q in d.bids] == sorted({q.px for q in d.bids}, reverse=True)
    assert [q.px for q in d.asks] == sorted({q.px for q in d.asks})
    for o in d.orders:
        assert o.px % t == 0 and 0 < o.px < PX_ONE


def _brute_force_worst_usdc10(inv, fills_possible):
    # Reference: settle every combination of (full) fills in both outcomes, exact cash in Usdc10.
    worst = None
    for k in range(len(fills_possible) + 1):
        for subset in combinations(fills_possible, k):
            cash, yes, no = inv.cash_usdc6 * USDC10_PER_USDC6, inv.yes_qty, inv.no_qty
            for outcome, side, px, qty in subset:
                cash -= side * px * qty
                if outcome is Outcome.YES:
                    yes += side * qty
                else:
                    no += side * qty
            for loss in (-(cash + yes * USDC10_PER_USDC6), -(cash + no * USDC10_PER_USDC6)):
                worst = loss if worst is None else max(worst, loss)
    return worst


@given(book_views(), inventories(), params(), st.lists(orders, max_size=2), st.none() | st.integers(0, 10**9))
@example(
    v=BookView(bid_px=100, bid_qty=1, ask_px=200, ask_qty=1, tick_px=100, min_qty=SHARE, ts_ns=NOW),
    inv=Inventory(),
    p=MM,
    inflight=[],
    room=0,
)
def test_caps_hold_against_brute_force_settlement_of_every_fill_combination(v, inv, p, inflight, room):
    d = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, global_room_usdc6=room, inflight=tuple(inflight))

    cap = p.per_market_cap_usdc6 if room is None else min(p.per_market_cap_usdc6, room)
    before = _brute_force_worst_usdc10(inv, inflight)
    new = [(o.outcome, o.side, o.px, o.qty) for o in d.orders]
    # Every combination of the orders in flight and the new ladder, in both outcomes, stays within
    # max(cap, the worst case before the ladder); decide reports the worst case it leaves per outcome.
    # The whole ladder (up to 4 levels a side) and the orders in flight: at most 2**10 combinations.
    assert len(new) <= 8
    after = _brute_force_worst_usdc10(inv, [*inflight, *new])
    assert after <= max(cap * USDC10_PER_USDC6, before)
    if d.no_quote in ("", "no_room"):
        loss_yes, loss_no = worst_case_losses_usdc10(inv, [*inflight, *new])
        assert d.reasons.loss_if_yes_usdc6 == -(-loss_yes // USDC10_PER_USDC6)
        assert d.reasons.loss_if_no_usdc6 == -(-loss_no // USDC10_PER_USDC6)


@given(
    book_views(),
    params(),
    st.integers(0, PX_ONE),
    st.integers(1, 20_000),
    st.sampled_from(list(Outcome)),
    st.none() | st.integers(0, 10**8),
)
def test_cap_never_trims_an_order_that_unwinds_what_we_hold(v, p, cost_px, shares, held, room):
    # Holding only one outcome, the side of the ladder that sells it (asks for YES, bids for NO via
    # SELL NO) lowers the worst case whatever its price: the cap never trims it, whatever the cap,
    # the global room or the cost of the holding.
    qty = shares * SHARE
    assume(p.level_sizes_qty is not None)
    assume(qty >= sum(max(size, v.min_qty) for size in p.level_sizes_qty))  # the whole side sells held shares
    cost = notional_usdc6(cost_px, qty)
    if held is Outcome.YES:
        inv = Inventory(yes_qty=qty, cash_usdc6=-cost, yes_cost_usdc6=cost)
    else:
        inv = Inventory(no_qty=qty, cash_usdc6=-cost, no_cost_usdc6=cost)
        p = msgspec.structs.replace(p, buy_yes_via_sell_no=True)

    d = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, global_room_usdc6=room)

    side = "ask" if held is Outcome.YES else "bid"
    assert not [t for t in d.reasons.trims if t.startswith(side) and "cap" in t]
    unwinding = {q.px for q in d.asks} if held is Outcome.YES else {PX_ONE - q.px for q in d.bids}
    sells = {o.px for o in d.orders if o.outcome is held and o.side is Side.SELL}
    assert sells == unwinding  # each level of that side goes out as a sale of the held shares


def no_level_below_the_minimum(*decisions) -> bool:
    """No level of these decisions was dropped for buying less than the market's minimum size.

    A level sized in USDC buys a number of shares that depends on its price, and one below the
    minimum is not quoted (docs/configuration.md): of two ladders, the one with the better price can
    lose its best level where the other keeps its own. Ladders are compared level by level only
    where no such drop shifted them.
    """
    return not any("below the minimum" in t for d in decisions for t in d.reasons.trims)


@given(
    book_views(),
    params(cap_usdc=10_000_000.0),
    st.integers(-1_000 * SHARE, 1_000 * SHARE),
    st.integers(0, 1_000 * SHARE),
)
def test_skew_is_monotone_more_inventory_never_raises_a_price(v, p, net_a, delta):
    def inv(net):
        return Inventory(yes_qty=net) if net >= 0 else Inventory(no_qty=-net)

    a = decide(v, inv(net_a), NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)
    b = decide(v, inv(net_a + delta), NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)

    assume(a.quote and b.quote)
    assert b.skewed_mid_px <= a.skewed_mid_px
    assume(no_level_below_the_minimum(a, b))
    assert all(x.px <= y.px for x, y in zip(b.bids, a.bids, strict=False))
    assert all(x.px <= y.px for x, y in zip(b.asks, a.asks, strict=False))


@given(book_views(), params(cap_usdc=10_000_000.0))
def test_flat_generous_cap_quotes_both_sides(v, p):
    p = msgspec.structs.replace(p, sell_yes_via_buy_no=True)  # flat: the ask can only go out as a BUY NO

    v = msgspec.structs.replace(v, min_qty=ORDER_QTY_STEP)  # every configured size meets the minimum
    d = decide(v, Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)

    r = d.reasons
    t = v.tick_px
    assume(d.quote)
    assume(
        d.skewed_mid_px - r.half_spread_px - t >= t and d.skewed_mid_px + r.half_spread_px + t <= PX_ONE - t
    )
    assert d.bids and d.asks
    assert 2 <= len(d.bids) + len(d.asks) <= 2 * p.levels


@given(book_views(), inventories(), params())
def test_orders_mirror_the_yes_ladder(v, inv, p):
    d = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)

    yes_bids = sorted(
        (o.px if o.outcome is Outcome.YES else PX_ONE - o.px, o.qty)
        for o in d.orders
        if (o.outcome is Outcome.YES) == (o.side is Side.BUY)
    )
    yes_asks = sorted(
        (o.px if o.outcome is Outcome.YES else PX_ONE - o.px, o.qty)
        for o in d.orders
        if (o.outcome is Outcome.YES) != (o.side is Side.BUY)
    )
    assert yes_bids == sorted((q.px, q.qty) for q in d.bids)
    assert yes_asks == sorted((q.px, q.qty) for q in d.asks)
    sold_yes = sum(o.qty for o in d.orders if o.outcome is Outcome.YES and o.side is Side.SELL)
    sold_no = sum(o.qty for o in d.orders if o.outcome is Outcome.NO and o.side is Side.SELL)
    assert sold_yes <= inv.yes_qty and sold_no <= inv.no_qty


@given(book_views(), inventories(), params(), st.integers(0, 2_000))
def test_pull_regime_never_quotes(v, inv, p, vol_px):
    d = decide(v, inv, VolState(vol_px=vol_px, pulled=True), NEUTRAL_FLOW, p, NOW)

    assert not d.quote and d.orders == ()
    assert d.no_quote in ("volatility_pull", "wide_book")  # a book too wide to quote is refused first


def test_decide_wide_book_gives_no_quote_unless_configured_off():
    absurd = view(bid=100, ask=9_900)  # 0.01/0.99 with nothing between

    d = decide(absurd, Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)
    off = decide(
        absurd, Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, msgspec.structs.replace(MM, max_book_spread_px=0), NOW
    )

    assert not d.quote and d.no_quote == "wide_book" and "0.98" in d.reasons.pulled
    assert off.quote


def test_decide_reports_a_level_below_the_market_minimum_instead_of_raising_it():
    small = msgspec.structs.replace(MM, level_sizes_qty=(2 * SHARE, 10 * SHARE, 20 * SHARE))

    d = decide(view(min_qty=5 * SHARE), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, small, NOW)

    assert [q.qty for q in d.bids] == [10 * SHARE, 20 * SHARE]  # never silently raised to 5 shares
    assert "bid 0.46: 2 shares, below the minimum 5" in d.reasons.trims


# --- the risk gate (core.risk) ----------------------------------------------------------------------

REDUCE = RiskGate(
    state=TradingState.REDUCE_ONLY,
    rule="inventory_hard_limit",
    detail="reduce_only by inventory_hard_limit [m]: 600 shares >= 500 shares",
)


def long_no(shares, px=5_250):
    qty = shares * SHARE
    cost = notional_usdc6(px, qty)
    return Inventory(no_qty=qty, cash_usdc6=-cost, no_cost_usdc6=cost)


def test_decide_reduce_only_long_yes_sells_only_and_never_more_than_held():
    # Long 15 YES, ladder 10/20/40: the first ask sells 10, the second the last 5, the third is dropped.
    d = decide(view(), long_yes(15), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=REDUCE)

    assert d.quote and d.bids == ()
    assert [q.qty for q in d.asks] == [10 * SHARE, 5 * SHARE]
    assert all(o.outcome is Outcome.YES and o.side is Side.SELL for o in d.orders)
    assert d.reasons.risk_state == "reduce_only" and d.reasons.risk_rule == "inventory_hard_limit"
    assert d.reasons.trims == ("ask 0.5: 20 -> 5 shares (reduce-only)", "ask 0.51: dropped (reduce-only)")


def test_decide_reduce_only_short_buys_only_by_selling_the_no_it_holds():
    d = decide(view(), long_no(100), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=REDUCE)

    assert d.asks == () and sum(q.qty for q in d.bids) == 70 * SHARE
    assert all(o.outcome is Outcome.NO and o.side is Side.SELL for o in d.orders)


def test_decide_reduce_only_flat_quotes_nothing_and_says_why():
    d = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=REDUCE)

    assert not d.quote and d.no_quote == "risk_reduce_only" and d.orders == ()
    assert d.reasons.pulled == f"{REDUCE.detail}; flat: nothing to reduce"


def test_decide_reduce_only_counts_the_sells_in_flight():
    # 30 YES held, 25 of them offered by an ask whose cancel is in flight: 5 are left to offer.
    inflight = ((Outcome.YES, Side.SELL, 4_900, 25 * SHARE),)

    d = decide(view(), long_yes(30), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, inflight=inflight, risk=REDUCE)

    assert [q.qty for q in d.asks] == [5 * SHARE]


def test_decide_reduce_only_position_below_the_minimum_size_cannot_be_offered():
    d = decide(view(min_qty=5 * SHARE), long_yes(3), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=REDUCE)

    assert not d.quote and d.no_quote == "risk_reduce_only" and d.orders == ()
    assert d.reasons.pulled.startswith(REDUCE.detail)


def test_decide_paused_and_halted_quote_nothing_and_name_the_rule():
    paused = RiskGate(
        state=TradingState.PAUSED, rule="fast_move", detail="paused by fast_move [m]: 0.11 >= 0.1"
    )
    halted = RiskGate(state=TradingState.HALTED, rule="daily_loss_stop", detail="halted by daily_loss_stop")

    p = decide(view(), long_yes(50), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=paused)
    h = decide(view(bid_qty=0, ask_qty=0), long_yes(50), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=halted)

    assert (p.quote, p.no_quote, p.orders, p.reasons.pulled) == (False, "risk_paused", (), paused.detail)
    assert (p.reasons.risk_state, p.reasons.risk_rule) == ("paused", "fast_move")
    assert (h.no_quote, h.reasons.risk_state, h.reasons.risk_rule) == (
        "risk_halted",
        "halted",
        "daily_loss_stop",
    )


def test_decide_fast_move_addon_widens_the_half_spread():
    gate = RiskGate(widen_px=100, rule="fast_move", detail="active by fast_move")

    calm = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW)
    fast = decide(view(), Inventory(), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=gate)

    assert fast.reasons.half_spread_px == calm.reasons.half_spread_px + 100 == 200
    assert fast.reasons.risk_widen_px == 100 and fast.reasons.risk_rule == "fast_move"
    assert [q.px for q in fast.bids] == [q.px - 100 for q in calm.bids]
    assert [q.px for q in fast.asks] == [q.px + 100 for q in calm.asks]
    assert calm.reasons.risk_state == "active" and calm.reasons.risk_rule == ""


def test_decide_reasons_name_the_risk_state_on_book_refusals_too():
    d = decide(view(ask_qty=0), long_yes(10), NEUTRAL_VOL, NEUTRAL_FLOW, MM, NOW, risk=REDUCE)

    assert d.no_quote == "one_sided_book" and d.reasons.risk_state == "reduce_only"


def _net_after(net, fills):
    for outcome, side, _, qty in fills:
        net += side * qty if outcome is Outcome.YES else -side * qty
    return net


def _is_bid_on_yes(order):
    outcome, side, _, _ = order
    return (outcome is Outcome.YES) == (side is Side.BUY)


@given(book_views(), inventories(max_qty=200 * SHARE), params(), st.lists(orders, max_size=3))
@example(
    v=BookView(
        bid_px=4_700, bid_qty=SHARE, ask_px=4_800, ask_qty=SHARE, tick_px=100, min_qty=SHARE, ts_ns=NOW
    ),
    inv=long_yes(15),
    p=MM,
    inflight=[(Outcome.YES, Side.SELL, 4_900, 10 * SHARE)],
)
def test_reduce_only_never_adds_exposure_brute_force(v, inv, p, inflight):
    d = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, inflight=tuple(inflight), risk=REDUCE)

    net = inv.yes_qty - inv.no_qty
    new = [(o.outcome, o.side, o.px, o.qty) for o in d.orders]
    if net == 0:
        assert not d.quote and d.no_quote == "risk_reduce_only"
    assert all(_is_bid_on_yes(o) == (net < 0) for o in new)  # only the side that lowers |net|
    # The worst case over every combination of fills, settled in both outcomes, never grows.
    assert _brute_force_worst_usdc10(inv, [*inflight, *new]) <= _brute_force_worst_usdc10(inv, inflight)
    assert max(worst_case_losses(inv, [*inflight, *new])) <= max(worst_case_losses(inv, inflight))
    # With the reducing orders in flight, they offer at most |net|: no combination of fills of them
    # and these orders flips the position or grows it.
    reducing = [o for o in inflight if net and _is_bid_on_yes(o) == (net < 0)]
    offered = sum(q for *_, q in reducing)
    assert sum(o.qty for o in d.orders) <= max(0, abs(net) - offered)
    if offered <= abs(net):
        candidates = [*reducing, *new]
        for k in range(len(candidates) + 1):
            for subset in combinations(candidates, k):
                after = _net_after(net, subset)
                assert min(0, net) <= after <= max(0, net)


@given(
    book_views(),
    inventories(),
    params(),
    st.sampled_from((TradingState.PAUSED, TradingState.HALTED)),
    st.integers(0, 500),
)
def test_paused_or_halted_never_quotes(v, inv, p, state, widen):
    gate = RiskGate(state=state, widen_px=widen, rule="drift", detail="paused by drift")

    d = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, risk=gate)

    assert not d.quote and d.orders == () and d.bids == () and d.asks == ()
    assert d.no_quote == ("risk_paused" if state is TradingState.PAUSED else "risk_halted")
    assert d.reasons.pulled == "paused by drift" and d.reasons.risk_rule == "drift"


@given(book_views(), inventories(), params(), st.lists(orders, max_size=2))
def test_an_active_gate_changes_nothing(v, inv, p, inflight):
    plain = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, inflight=tuple(inflight))

    assert (
        decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, inflight=tuple(inflight), risk=ACTIVE_GATE) == plain
    )
    assert (
        decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, inflight=tuple(inflight), risk=RiskGate()) == plain
    )


@given(book_views(), inventories(), params(), st.integers(1, 500))
def test_the_fast_move_addon_never_tightens_a_quote(v, inv, p, widen):
    calm = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW)
    fast = decide(v, inv, NEUTRAL_VOL, NEUTRAL_FLOW, p, NOW, risk=RiskGate(widen_px=widen, rule="fast_move"))

    assume(calm.quote and fast.quote)
    assert fast.reasons.half_spread_px == calm.reasons.half_spread_px + widen
    assume(no_level_below_the_minimum(calm, fast))
    assert all(f.px <= c.px for f, c in zip(fast.bids, calm.bids, strict=False))
    assert all(f.px >= c.px for f, c in zip(fast.asks, calm.asks, strict=False))


def test_reasons_fields_are_in_the_order_decide_builds_them():
    # decide() builds its Reasons positionally (17 keywords cost msgspec ~5x more than positions):
    # a reordered or inserted field would silently shift every value after it.
    assert Reasons.__struct_fields__[:17] == (
        "fair_source",
        "inventory_qty",
        "skew_px",
        "base_half_spread_px",
        "vol_px",
        "vol_widen_px",
        "half_spread_px",
        "flow_permille",
        "bid_size_pct",
        "ask_size_pct",
        "maker_clamped",
        "improved",
        "cap_usdc6",
        "bound_usdc6",
        "loss_if_yes_usdc6",
        "loss_if_no_usdc6",
        "trims",
    )
