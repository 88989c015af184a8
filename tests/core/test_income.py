"""``core.income.expected_income``: hand-computed examples from the formula in docs/rewards.md, and the
direction each input moves its own term."""

from __future__ import annotations

import math
from fractions import Fraction

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.config import IncomeConfig, MarketSelection
from core.income import UNPRICED, IncomeEstimate, IncomeInputs, adverse_move, expected_income
from core.rewards import RewardParams
from core.selection import MarketRecord, income, score, select_candidates

SHARE = 1_000_000
REF = IncomeConfig()  # 100-share quotes, fills held 1 h

#: Mid 0.50, spread 2 cents; v = 3 cents, 50-share minimum, 100 USDC a day; fee 4% with a 25% rebate;
#: the price moved 1.5 cents in the last hour.
EXAMPLE = IncomeInputs(
    best_bid_px=4_900,
    best_ask_px=5_100,
    volume_24h_usdc=10_000.0,
    liquidity_usdc=4_900.0,
    reward=RewardParams(max_spread_px=300, min_qty=50 * SHARE, daily_usdc6=100_000_000),
    fee_rate_ppm=40_000,
    rebate_ppm=250_000,
    change_1h_px=150,
)


def test_gamma_example_by_hand() -> None:
    est = expected_income(EXAMPLE, REF)

    # Competition: liquidity / mid = 4,900 / 0.5 = 9,800 shares, half on each side at the touch.
    assert est.competing_qty == 9_800 * SHARE
    # Fills: volume / mid = 20,000 shares a day, ours 2 * 100 / (2 * 100 + 9,800) = 2% of them.
    assert est.fills_qty_per_day == 400 * SHARE
    # Rewards: both makers 1 cent from the mid, weight ((3 - 1) / 3)^2 = 4/9 each: 100 / (100 + 4,900).
    assert est.reward_usdc6_per_day == 2_000_000
    assert est.competing_score_qty == math.floor(Fraction(4_900 * SHARE * 4, 9))
    assert est.density_usdc_per_share == pytest.approx(100 / (4_900 * 4 / 9))
    # Rebates: 400 * 0.04 * 0.5 * 0.5 * 0.25 = 1 USDC; spread: 400 * 0.01 = 4 USDC.
    assert est.rebate_usdc6_per_day == 1_000_000
    assert est.spread_usdc6_per_day == 4_000_000
    # Adverse: 400 shares * 0.015 (the hour's move over a 1 h hold).
    assert (est.adverse_move_px, est.move_source) == (150, "1h")
    assert est.adverse_usdc6_per_day == 6_000_000
    assert est.net_usdc6_per_day == 2_000_000 + 1_000_000 + 4_000_000 - 6_000_000
    assert (est.priced, est.source, est.quote_qty, est.pool_usdc6_per_day) == (
        True,
        "gamma",
        100 * SHARE,
        10**8,
    )


def test_book_example_by_hand() -> None:
    book = IncomeInputs(
        best_bid_px=None,  # the book's touch is used, not Gamma's
        best_ask_px=None,
        volume_24h_usdc=5_000.0,
        liquidity_usdc=1e9,  # ignored with a book
        reward=RewardParams(max_spread_px=300, min_qty=50 * SHARE, daily_usdc6=90_000_000),
        bids=((4_900, 300 * SHARE), (4_800, 500 * SHARE)),
        asks=((5_100, 200 * SHARE),),
    )

    est = expected_income(book, REF)

    # Competition's Q_one = 300 * 4/9 + 500 * 1/9 = 188.9, Q_two = 200 * 4/9 = 88.9; Q_min = 88.9 (in
    # band: max(88.9, 188.9 / 3)). Ours: 100 * 4/9 = 44.4 each side. Share 44.4 / 133.3 = 1/3 of 90.
    assert est.source == "book"
    assert est.competing_score_qty == math.floor(Fraction(200 * SHARE * 4, 9))
    assert est.reward_usdc6_per_day == 30_000_000
    # Fills: 5,000 / 0.5 = 10,000 shares, ours 200 / (200 + 1,000) = 1/6.
    assert est.competing_qty == 1_000 * SHARE
    assert est.fills_qty_per_day == 1_666_666_667
    assert est.spread_usdc6_per_day == 16_666_667
    # No price change served: the adverse move is the half-spread, so the spread nets to zero.
    assert (est.adverse_move_px, est.move_source) == (100, "spread")
    assert est.adverse_usdc6_per_day == 16_666_667
    assert est.net_usdc6_per_day == 30_000_000


def test_outside_the_mid_band_one_sided_competition_scores_nothing_inside_a_third() -> None:
    # Mid 0.05: only two-sided makers score, and the competition has bids only.
    inp = IncomeInputs(
        best_bid_px=None,
        best_ask_px=None,
        volume_24h_usdc=0.0,
        reward=RewardParams(max_spread_px=300, min_qty=0, daily_usdc6=10_000_000),
        bids=((400, 1_000 * SHARE),),
        asks=((600, 0),),  # an emptied level: the ask side has no size
    )
    assert expected_income(inp, REF) is UNPRICED
    inp = msgspec.structs.replace(inp, asks=((600, 1),))  # one micro-share: two-sided, scoring ~0

    est = expected_income(inp, REF)

    # Their Q_min = min(1,000 * 4/9, 1e-6 * 4/9) share-points: we take the pool but for a sliver.
    assert est.competing_score_qty == 0
    assert est.reward_usdc6_per_day == round(Fraction(10**7 * 10**8, 10**8 + 1)) == 10_000_000
    # The same book around 0.50: their one-sided 1,000 shares score a third, 333.3 against our 100.
    mid = msgspec.structs.replace(inp, bids=((4_900, 1_000 * SHARE),), asks=((5_100, 1),))
    assert expected_income(mid, REF).reward_usdc6_per_day == round(Fraction(10**7 * 3, 13)) == 2_307_692


@pytest.mark.parametrize(
    ("bid", "ask"), [(None, 5_000), (5_000, None), (5_000, 5_000), (5_100, 5_000), (None, None)]
)
def test_a_market_without_a_two_sided_uncrossed_quote_is_unpriced(bid: int | None, ask: int | None) -> None:
    inp = msgspec.structs.replace(EXAMPLE, best_bid_px=bid, best_ask_px=ask)
    assert expected_income(inp, REF) is UNPRICED


def test_adverse_move_scales_each_change_to_the_holding_time_and_takes_the_largest() -> None:
    inp = msgspec.structs.replace(EXAMPLE, change_1h_px=None, change_1d_px=-240, change_1w_px=None)
    # 0.024 a day over 6 h: 0.024 * sqrt(6 / 24) = 0.012, exactly.
    assert adverse_move(inp, 6.0, 200) == (Fraction(12, 1_000), "1d")
    # 0.01 an hour over 6 h: 0.01 * sqrt(6) = 0.0245 > 0.012.
    inp = msgspec.structs.replace(inp, change_1h_px=100)
    move, source = adverse_move(inp, 6.0, 200)
    assert source == "1h"
    assert float(move) == pytest.approx(0.01 * math.sqrt(6))
    # A week's 0.1 over 1 h: 0.1 / sqrt(168) = 0.0077 < 0.01 an hour.
    assert adverse_move(msgspec.structs.replace(inp, change_1w_px=1_000), 1.0, 200) == (
        Fraction(1, 100),
        "1h",
    )


def test_the_quote_is_raised_to_the_reward_minimum() -> None:
    inp = msgspec.structs.replace(EXAMPLE, reward=RewardParams(max_spread_px=300, min_qty=250 * SHARE))
    assert expected_income(inp, REF).quote_qty == 250 * SHARE
    assert expected_income(inp, IncomeConfig(quote_shares=300)).quote_qty == 300 * SHARE


# --- properties ---------------------------------------------------------------------------------------------


@st.composite
def inputs(draw: st.DrawFn) -> IncomeInputs:
    bid = draw(st.integers(0, 9_800))
    ask = bid + draw(st.integers(1, 200))
    change = st.none() | st.integers(-5_000, 5_000)
    return IncomeInputs(
        best_bid_px=bid,
        best_ask_px=ask,
        volume_24h_usdc=float(draw(st.integers(0, 10**6))),
        liquidity_usdc=float(draw(st.integers(0, 10**6))),
        reward=RewardParams(
            max_spread_px=draw(st.sampled_from((0, 100, 350, 450))),
            min_qty=draw(st.sampled_from((0, 20, 50, 200))) * SHARE,
            daily_usdc6=draw(st.integers(0, 10**9)),
        ),
        fee_rate_ppm=draw(st.sampled_from((0, 30_000, 40_000, 70_000))),
        rebate_ppm=draw(st.sampled_from((0, 200_000, 250_000))),
        change_1h_px=draw(change),
        change_1d_px=draw(change),
        change_1w_px=draw(change),
    )


configs = st.builds(
    IncomeConfig,
    quote_shares=st.sampled_from((5.0, 100.0, 1_000.0)),
    holding_hours=st.sampled_from((0.25, 1.0, 24.0)),
)
more = st.integers(0, 10**8)


def _terms(e: IncomeEstimate) -> tuple[int, int, int, int]:
    return e.reward_usdc6_per_day, e.rebate_usdc6_per_day, e.spread_usdc6_per_day, e.adverse_usdc6_per_day


@settings(max_examples=200)
@given(inputs(), configs)
def test_the_net_is_the_sum_of_the_terms_and_rewards_never_exceed_the_pool(
    inp: IncomeInputs, cfg: IncomeConfig
) -> None:
    e = expected_income(inp, cfg)
    reward, rebate, spread, adverse = _terms(e)
    assert e.net_usdc6_per_day == reward + rebate + spread - adverse
    assert 0 <= reward <= e.pool_usdc6_per_day
    assert min(rebate, spread, adverse) >= 0


@given(inputs(), configs, more)
def test_a_richer_pool_never_pays_less(inp: IncomeInputs, cfg: IncomeConfig, extra: int) -> None:
    richer = msgspec.structs.replace(
        inp, reward=msgspec.structs.replace(inp.reward, daily_usdc6=inp.reward.daily_usdc6 + extra)
    )
    a, b = expected_income(inp, cfg), expected_income(richer, cfg)
    assert b.reward_usdc6_per_day >= a.reward_usdc6_per_day
    assert b.net_usdc6_per_day - a.net_usdc6_per_day == b.reward_usdc6_per_day - a.reward_usdc6_per_day


@given(inputs(), configs, more)
def test_more_competition_never_pays_more_rewards(inp: IncomeInputs, cfg: IncomeConfig, extra: int) -> None:
    deeper = msgspec.structs.replace(inp, liquidity_usdc=inp.liquidity_usdc + extra)
    assert expected_income(deeper, cfg).reward_usdc6_per_day <= expected_income(inp, cfg).reward_usdc6_per_day


@given(inputs(), configs, st.integers(0, 10**4), st.integers(1, 5_000))
def test_a_competing_book_level_never_pays_more_rewards(
    inp: IncomeInputs, cfg: IncomeConfig, qty_shares: int, px: int
) -> None:
    assert inp.best_bid_px is not None and inp.best_ask_px is not None
    # Touch levels at least the reward minimum, so the adjusted mid is the touch's.
    book = msgspec.structs.replace(
        inp, bids=((inp.best_bid_px, 200 * SHARE),), asks=((inp.best_ask_px, 200 * SHARE),)
    )
    # A level added behind the touch: it does not move the adjusted mid.
    far_bid = inp.best_bid_px - px
    assume(far_bid >= 0)
    deeper = msgspec.structs.replace(book, bids=(*(book.bids or ()), (far_bid, qty_shares * SHARE)))
    assert (
        expected_income(deeper, cfg).reward_usdc6_per_day <= expected_income(book, cfg).reward_usdc6_per_day
    )


@given(inputs(), configs, st.integers(0, 100_000), st.integers(0, 100_000))
def test_a_richer_rebate_never_pays_less(
    inp: IncomeInputs, cfg: IncomeConfig, rate: int, rebate: int
) -> None:
    richer = msgspec.structs.replace(
        inp, fee_rate_ppm=inp.fee_rate_ppm + rate, rebate_ppm=min(inp.rebate_ppm + rebate, 10**6)
    )
    a, b = expected_income(inp, cfg), expected_income(richer, cfg)
    assert b.rebate_usdc6_per_day >= a.rebate_usdc6_per_day
    assert b.net_usdc6_per_day - a.net_usdc6_per_day == b.rebate_usdc6_per_day - a.rebate_usdc6_per_day


@given(inputs(), configs, st.integers(0, 5_000))
def test_a_larger_recent_move_never_costs_less(inp: IncomeInputs, cfg: IncomeConfig, extra: int) -> None:
    base = msgspec.structs.replace(inp, change_1h_px=inp.change_1h_px or 0)  # a served change
    wilder = msgspec.structs.replace(base, change_1h_px=abs(base.change_1h_px or 0) + extra)
    a, b = expected_income(base, cfg), expected_income(wilder, cfg)
    assert b.adverse_usdc6_per_day >= a.adverse_usdc6_per_day
    assert b.net_usdc6_per_day <= a.net_usdc6_per_day
    longer = msgspec.structs.replace(cfg, holding_hours=cfg.holding_hours * 2)
    assert expected_income(base, longer).adverse_usdc6_per_day >= a.adverse_usdc6_per_day


@given(inputs(), configs, more)
def test_more_volume_scales_every_fill_term_up(inp: IncomeInputs, cfg: IncomeConfig, extra: int) -> None:
    busier = msgspec.structs.replace(inp, volume_24h_usdc=inp.volume_24h_usdc + extra)
    a, b = expected_income(inp, cfg), expected_income(busier, cfg)
    assert b.fills_qty_per_day >= a.fills_qty_per_day
    for before, after in zip(_terms(a)[1:], _terms(b)[1:], strict=True):
        assert after >= before
    assert b.reward_usdc6_per_day == a.reward_usdc6_per_day


@given(inputs(), configs, st.integers(1, 100))
def test_a_wider_spread_around_the_same_mid_captures_more(
    inp: IncomeInputs, cfg: IncomeConfig, widen: int
) -> None:
    assert inp.best_bid_px is not None and inp.best_ask_px is not None
    assume(inp.best_bid_px >= widen)
    wider = msgspec.structs.replace(
        inp, best_bid_px=inp.best_bid_px - widen, best_ask_px=inp.best_ask_px + widen
    )
    a, b = expected_income(inp, cfg), expected_income(wider, cfg)
    assert b.fills_qty_per_day == a.fills_qty_per_day  # same mid, same competition
    assert b.spread_usdc6_per_day >= a.spread_usdc6_per_day


# --- in the selection ---------------------------------------------------------------------------------------


def _record(i: int, **kw: object) -> MarketRecord:
    """A tradable market with ``EXAMPLE``'s terms (no pool unless ``rewards_daily_usdc`` is given)."""
    base = MarketRecord(
        market_id=str(i),
        condition_id=f"0x{i:064x}",
        token_ids=(f"{i}1", f"{i}2"),
        tick_px=100,
        active=True,
        accepting_orders=True,
        enable_order_book=True,
        best_bid_px=4_900,
        best_ask_px=5_100,
        volume_24h=10_000.0,
        liquidity=4_900.0,
        rewards_max_spread_px=300,
        rewards_min_qty=50 * SHARE,
        fee_rate_ppm=40_000,
        maker_rebate_ppm=250_000,
        change_1h_px=150,
    )
    return msgspec.structs.replace(base, **kw)


def test_rank_by_expected_income_orders_by_net_and_puts_unpriced_markets_last() -> None:
    rich = _record(1, rewards_daily_usdc=100.0)  # the example: net 1 USDC a day
    poor = _record(2, volume_24h=1e6)  # no pool, a busy market with a wild price: net well below 0
    quiet = _record(3, change_1h_px=0)  # no pool, no move: spread and rebates only
    unpriced = _record(4, best_bid_px=None, volume_24h=1e9)
    sel = MarketSelection(rank_by="expected_income", limit=4)

    result = select_candidates([unpriced, poor, rich, quiet], sel, now_ns=0)

    assert income(rich, sel.income) == expected_income(EXAMPLE, REF)
    assert [m.market_id for m in result.selected] == ["3", "1", "2", "4"]
    assert result.scores[1] == 1.0
    assert result.scores[3] == -math.inf
    cut = select_candidates([unpriced, poor, rich, quiet], msgspec.structs.replace(sel, limit=3), now_ns=0)
    assert [r.detail for r in cut.rejected] == ["rank 4, expected_income unpriced"]


def test_existing_rank_by_values_ignore_the_income_settings() -> None:
    m = _record(1, rewards_daily_usdc=100.0)
    other = IncomeConfig(quote_shares=1.0, holding_hours=100.0)
    for rank_by in ("volume_24h", "liquidity", "reward_density"):
        assert score(m, rank_by, other) == score(m, rank_by)
    assert MarketSelection().rank_by == "volume_24h"
