"""Rewards-aware quoting: one level per side in the reward band at the reward size, never past a rule."""

from __future__ import annotations

import msgspec
from hypothesis import assume, example, given
from hypothesis import strategies as st

from app.configfile import load_config
from core.book import BookView
from core.estimators import FlowState, VolState
from core.inventory import Inventory
from core.quoting import decide, quote_params
from core.rewards import RewardParams
from core.risk import RiskGate, TradingState
from core.units import PX_ONE, QTY_ONE, USDC10_PER_USDC6
from tests.core.test_quoting import _brute_force_worst_usdc10, view
from tests.strategies import book_views, inventories, orders, params

SHARE = QTY_ONE
NOW = 10**18
VOL, FLOW = VolState(), FlowState()
RM = quote_params(load_config("configs/rewards_maker.yaml"))
MM = quote_params(load_config("configs/market_maker.yaml"))
RP = RewardParams(max_spread_px=300, min_qty=20 * SHARE, daily_usdc6=50_000_000)


def rewards_on(p, band_pct=50):
    return msgspec.structs.replace(p, rewards_enabled=True, rewards_band_pct=band_pct)


def test_the_shipped_configs_keep_rewards_off_except_rewards_maker():
    assert not MM.rewards_enabled
    assert RM.rewards_enabled and RM.rewards_band_pct == 50


def test_a_ladder_outside_the_band_moves_in_and_its_best_level_grows_to_the_reward_size():
    wide = msgspec.structs.replace(RM, half_spread_px=400, fair_microprice=False)
    v = view(bid=4_700, ask=5_300)  # mid 0.50; band (0.47, 0.53) for v = 3c
    off = decide(
        v, Inventory(), VOL, FLOW, msgspec.structs.replace(wide, rewards_enabled=False), NOW, rewards=RP
    )
    assert off.bids[0].px == 4_600 and off.asks[0].px == 5_400  # 4c off the mid: scores nothing
    d = decide(v, Inventory(), VOL, FLOW, wide, NOW, rewards=RP)
    # at most 50% of v (1.5c) from the mid, on the tick grid, inside the band
    assert [q.px for q in d.bids] == [4_900, 4_800, 4_700]
    assert [q.px for q in d.asks] == [5_100, 5_200, 5_300]
    assert d.bids[0].qty == d.asks[0].qty == 20 * SHARE  # raised from 10 to the reward minimum
    assert d.bids[1].qty == 20 * SHARE and d.bids[2].qty == 40 * SHARE  # deeper levels keep their size
    notes = [t for t in d.reasons.trims if t.endswith("(rewards)")]
    assert notes == [
        "bids moved 0.46 -> 0.49 into the reward band (rewards)",
        "asks moved 0.54 -> 0.51 into the reward band (rewards)",
        "bid 0.49: 10 -> 20 shares (rewards)",
        "ask 0.51: 10 -> 20 shares (rewards)",
    ]


def test_the_adjusted_mid_is_used_when_given_and_a_market_without_a_program_is_untouched():
    wide = msgspec.structs.replace(RM, half_spread_px=400, fair_microprice=False)
    v = view(bid=4_700, ask=5_300)
    d = decide(v, Inventory(), VOL, FLOW, wide, NOW, rewards=RP, reward_mid2_px=2 * 5_100)
    # adjusted mid 0.51, band (0.48, 0.54): the bid stops below our own fair price (0.50), the ask
    # goes to 1.5c above the adjusted mid
    assert (d.bids[0].px, d.asks[0].px) == (4_900, 5_200)
    # adjusted mid 0.52: the band starts at 0.49, which our fair price allows only at its edge
    d = decide(v, Inventory(), VOL, FLOW, wide, NOW, rewards=RP, reward_mid2_px=2 * 5_200)
    assert d.bids[0].px == 4_600
    assert "bid 0.46: outside the reward band, cannot move in (rewards)" in d.reasons.trims
    plain = decide(v, Inventory(), VOL, FLOW, msgspec.structs.replace(wide, rewards_enabled=False), NOW)
    assert decide(v, Inventory(), VOL, FLOW, wide, NOW, rewards=RewardParams()) == plain


def test_a_level_already_in_the_band_is_not_moved_and_a_cap_still_trims_the_reward_size():
    d = decide(view(), Inventory(), VOL, FLOW, RM, NOW, rewards=RP)  # 0.47/0.48: 1c from the mid
    base = decide(view(), Inventory(), VOL, FLOW, MM, NOW)
    assert [q.px for q in d.bids] == [q.px for q in base.bids]
    tight = msgspec.structs.replace(RM, per_market_cap_usdc6=3_000_000)  # $3: 6 shares at 0.46
    d = decide(view(), Inventory(), VOL, FLOW, tight, NOW, rewards=RP)
    assert d.bids[0].qty < 20 * SHARE  # the cap wins over the reward size


rewards_terms = st.builds(
    RewardParams,
    max_spread_px=st.integers(0, 1_500),
    min_qty=st.integers(0, 300).map(lambda n: n * SHARE),
    daily_usdc6=st.integers(0, 10**9),
)


@given(
    book_views(),
    inventories(),
    params(),
    st.lists(orders, max_size=2),
    rewards_terms,
    st.integers(1, 99),
    st.none() | st.integers(0, 10**9),
)
def test_rewards_never_cross_and_never_break_the_caps(v, inv, p, inflight, rp, pct, room):
    p = rewards_on(p, pct)
    d = decide(v, inv, VOL, FLOW, p, NOW, global_room_usdc6=room, inflight=tuple(inflight), rewards=rp)
    t = v.tick_px
    for q in d.bids + d.asks:
        assert q.px % t == 0 and t <= q.px <= PX_ONE - t and q.qty >= v.min_qty
    if p.maker_only:
        assert all(q.px < v.ask_px for q in d.bids)
        assert all(q.px > v.bid_px for q in d.asks)
    if d.bids and d.asks:
        assert d.bids[0].px < d.asks[0].px
    cap = p.per_market_cap_usdc6 if room is None else min(p.per_market_cap_usdc6, room)
    before = _brute_force_worst_usdc10(inv, inflight)
    new = [(o.outcome, o.side, o.px, o.qty) for o in d.orders]
    after = _brute_force_worst_usdc10(inv, [*inflight, *new[:6]])
    assert after <= max(cap * USDC10_PER_USDC6, before)


@given(
    book_views(),
    inventories(),
    params(),
    rewards_terms,
    st.integers(0, 2_000),
    st.sampled_from(list(TradingState)),
)
def test_rewards_never_quote_through_a_pull_or_a_pause(v, inv, p, rp, vol_px, state):
    p = rewards_on(p)
    pulled = decide(v, inv, VolState(vol_px=vol_px, pulled=True), FLOW, p, NOW, rewards=rp)
    assert not pulled.quote and not pulled.orders
    if state >= TradingState.PAUSED:
        d = decide(v, inv, VOL, FLOW, p, NOW, risk=RiskGate(state=state, rule="r", detail="x"), rewards=rp)
        assert not d.quote and not d.orders


@given(book_views(), inventories(), params(), rewards_terms)
def test_rewards_off_decides_exactly_as_before(v, inv, p, rp):
    assert decide(v, inv, VOL, FLOW, p, NOW, rewards=rp) == decide(v, inv, VOL, FLOW, p, NOW)


@given(
    book_views(),
    params(cap_usdc=10_000_000.0),
    st.integers(100, 1_500),
    st.integers(20, 300),
    st.integers(1, 99),
)
@example(  # the ladder's ask rounds up to 1, off the price range: it must move into the band, not vanish
    BookView(bid_px=9500, bid_qty=1, ask_px=9950, ask_qty=1, tick_px=50, min_qty=SHARE, ts_ns=NOW),
    msgspec.structs.replace(
        MM,
        levels=2,
        half_spread_px=226,
        level_sizes_qty=(SHARE, SHARE),
        level_sizes_usdc6=None,
        sell_yes_via_buy_no=True,
        max_book_spread_px=0,
        max_book_age_ns=0,
        improve_best_ticks=-1,
        skew_px=0,
        per_market_cap_usdc6=10**13,
    ),
    276,
    20,
    19,
)
def test_with_room_each_side_gets_a_level_in_the_band_at_the_reward_size(v, p, spread_px, min_shares, pct):
    p = msgspec.structs.replace(rewards_on(p, pct), fair_microprice=False)
    rp = RewardParams(max_spread_px=spread_px, min_qty=min_shares * SHARE)
    t, mid2, v2, reach = v.tick_px, v.bid_px + v.ask_px, 2 * spread_px, 2 * spread_px * pct
    assume(reach >= 200 * t)  # the target is at least one tick from the mid
    assume(100 * mid2 - reach >= 200 * t and 100 * mid2 + reach <= 200 * (PX_ONE - t))  # on the price range
    d = decide(v, Inventory(), VOL, FLOW, p, NOW, rewards=rp)
    assume(d.quote)  # e.g. a book wider than max_book_spread
    assert any(2 * q.px > mid2 - v2 and q.qty >= rp.min_qty for q in d.bids)
    if p.sell_yes_via_buy_no:  # flat: asks go out as BUY NO
        assert any(2 * q.px < mid2 + v2 and q.qty >= rp.min_qty for q in d.asks)
