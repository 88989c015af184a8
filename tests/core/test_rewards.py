"""The liquidity-rewards score against hand-computed examples of the venue's formula, and its invariants."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from core.rewards import (
    RewardParams,
    adjusted_mid2_px,
    book_scores,
    estimate,
    maker_q,
    order_score,
    order_scoring,
    pool_share,
    pool_shares,
    q_min,
    reward_usdc6,
    side_scores,
    yes_book_px,
    yes_levels_without,
)
from core.units import PX_ONE, QTY_ONE, Outcome, Side

SHARE = QTY_ONE
YES, NO, BUY, SELL = Outcome.YES, Outcome.NO, Side.BUY, Side.SELL
RP = RewardParams(max_spread_px=300, min_qty=20 * SHARE, daily_usdc6=10_000_000)
MID50 = 2 * 5_000  # twice 0.50


def shares(x: Fraction) -> Fraction:
    return x / SHARE


# --- hand-computed examples ---------------------------------------------------------------------------


def test_the_venue_worked_example_a_100_share_bid_one_cent_off_a_3c_band_scores_44_4():
    # docs: v = 3c, adjusted mid 0.50, 100-share bid at 0.49: ((3 - 1) / 3)^2 * 100 = 44.4
    assert shares(order_score(300, 2 * 4_900 - MID50, 100 * SHARE, 20 * SHARE)) == Fraction(400, 9)


def test_the_band_edge_and_beyond_and_small_orders_score_zero():
    assert order_score(300, 2 * 300, 100 * SHARE, 0) == 0  # s == v
    assert order_score(300, 2 * 400, 100 * SHARE, 0) == 0  # s > v
    assert order_score(300, 0, 19 * SHARE, 20 * SHARE) == 0  # below the min size
    assert shares(order_score(300, 0, 20 * SHARE, 20 * SHARE)) == 20  # at the mid: the whole size
    assert order_score(0, 0, 100 * SHARE, 0) == 0  # no program


def test_an_ask_on_no_counts_as_a_yes_bid_and_a_bid_on_no_as_a_yes_ask():
    orders = [
        (YES, BUY, 4_900, 100 * SHARE),  # Q_one: s = 1c -> (2/3)^2 * 100 = 400/9
        (NO, SELL, 5_200, 100 * SHARE),  # YES bid at 0.48, Q_one: s = 2c -> (1/3)^2 * 100 = 100/9
        (YES, SELL, 5_100, 50 * SHARE),  # Q_two: s = 1c -> (2/3)^2 * 50 = 200/9
        (NO, BUY, 4_700, 90 * SHARE),  # YES ask at 0.53: s = 3c = v -> 0
        (YES, BUY, 4_950, 10 * SHARE),  # below the min size -> 0
    ]
    q_one, q_two = side_scores(orders, MID50, RP)
    assert (shares(q_one), shares(q_two)) == (Fraction(500, 9), Fraction(200, 9))
    # inside [0.10, 0.90]: max(min, max / 3) = max(200/9, 500/27) = 200/9
    assert shares(maker_q(orders, MID50, RP)) == Fraction(200, 9)


def test_single_sided_scores_a_third_inside_the_band_and_nothing_outside():
    one_sided = [(YES, BUY, 4_900, 100 * SHARE)]
    assert shares(maker_q(one_sided, MID50, RP)) == Fraction(400, 27)
    # mid 0.05 (bid 0.04 / ask 0.06): a 0.04 bid 1c off -> 400/9 on one side, but outside the band
    assert maker_q([(YES, BUY, 400, 100 * SHARE)], 2 * 500, RP) == 0
    two_sided = [(YES, BUY, 400, 100 * SHARE), (YES, SELL, 700, 100 * SHARE)]  # 1c and 2c off 0.05
    assert shares(maker_q(two_sided, 2 * 500, RP)) == Fraction(100, 9)  # min(400/9, 100/9)


def test_the_mid_band_is_inclusive_at_0_10_and_0_90():
    a, b = Fraction(9), Fraction(0)
    assert q_min(a, b, 2 * 1_000) == 3
    assert q_min(a, b, 2 * 9_000) == 3
    assert q_min(a, b, 2 * 1_000 - 1) == 0
    assert q_min(a, b, 2 * 9_000 + 1) == 0


def test_share_of_the_pool_against_the_competition():
    ours = Fraction(200, 9)
    assert pool_share(ours, [Fraction(400, 9)]) == Fraction(1, 3)
    assert pool_share(Fraction(0), []) == 0
    assert reward_usdc6(Fraction(1, 3), 10_000_000) == 3_333_333  # floored


def test_adjusted_mid_drops_levels_below_the_min_size_and_falls_back_to_the_touch():
    bids = [(4_900, 5 * SHARE), (4_800, 50 * SHARE)]
    asks = [(5_000, 5 * SHARE), (5_300, 20 * SHARE)]
    assert adjusted_mid2_px(bids, asks, 20 * SHARE) == 4_800 + 5_300
    assert adjusted_mid2_px(bids, [(5_000, 5 * SHARE)], 20 * SHARE) == 4_800 + 5_000  # raw ask touch
    assert adjusted_mid2_px(bids, [], 20 * SHARE) == 0
    assert adjusted_mid2_px(bids, asks, 0) == 4_900 + 5_000


# --- invariants -----------------------------------------------------------------------------------------

spreads = st.integers(1, 2_000)
sizes = st.integers(1, 10**6 * SHARE)


@given(spreads, st.integers(0, 4_000), st.integers(0, 4_000), sizes)
def test_score_is_monotone_decreasing_in_distance_and_zero_at_or_past_v(v, d_a, d_b, qty):
    near, far = sorted((d_a, d_b))
    s_near, s_far = order_score(v, near, qty, 0), order_score(v, far, qty, 0)
    assert s_near >= s_far >= 0
    if far >= 2 * v:
        assert s_far == 0
    else:
        assert s_far > 0
    assert s_near <= qty  # at most the whole size, at the mid


@given(spreads, st.integers(0, 4_000), sizes, st.integers(1, 1_000))
def test_score_is_linear_in_size_and_zero_below_the_min(v, d, qty, k):
    assert order_score(v, d, k * qty, 0) == k * order_score(v, d, qty, 0)
    assert order_score(v, d, qty, qty + 1) == 0
    assert order_score(v, d, qty, qty) == order_score(v, d, qty, 0)


order = st.tuples(
    st.sampled_from(list(Outcome)),
    st.sampled_from(list(Side)),
    st.integers(1, PX_ONE - 1),
    st.integers(1, 1_000 * SHARE),
)


@given(st.lists(st.lists(order, max_size=4), min_size=1, max_size=5), st.integers(2, 2 * PX_ONE - 2), spreads)
def test_shares_are_in_0_1_and_sum_to_1_when_anyone_scores(makers, mid2, v):
    rp = RewardParams(max_spread_px=v, min_qty=5 * SHARE)
    qs = [maker_q(m, mid2, rp) for m in makers]
    out = pool_shares(qs)
    assert all(0 <= s <= 1 for s in out)
    assert sum(out) == (1 if any(qs) else 0)
    for i, q in enumerate(qs):
        assert pool_share(q, qs[:i] + qs[i + 1 :]) == out[i]


@given(st.lists(order, max_size=6), st.integers(2, 2 * PX_ONE - 2), spreads)
def test_q_min_lies_between_the_two_sided_and_the_one_sided_score(orders, mid2, v):
    rp = RewardParams(max_spread_px=v, min_qty=0)
    q_one, q_two = side_scores(orders, mid2, rp)
    q = maker_q(orders, mid2, rp)
    assert min(q_one, q_two) <= q <= max(q_one, q_two)


# --- tracking: which orders score, our share of a sample against a displayed book -------------------------


def test_a_single_order_scores_by_its_own_rule_and_the_two_sided_rule_of_its_maker():
    mine = [(YES, BUY, 4_900, 100 * SHARE), (YES, BUY, 4_950, 10 * SHARE), (YES, SELL, 5_400, 50 * SHARE)]
    # Inside the band: 1c off scores, below the min size does not, 4c off (v = 3c) does not.
    assert order_scoring(mine, MID50, RP) == (True, False, False)
    # Mid 0.05 (outside the band): a lone bid scores nothing, nor does anything of a one-sided maker...
    assert order_scoring([(YES, BUY, 400, 100 * SHARE)], 2 * 500, RP) == (False,)
    # ...and both sides of a two-sided one score (a NO bid at 0.94 is a YES ask at 0.06).
    assert order_scoring([(YES, BUY, 400, 100 * SHARE), (NO, BUY, 9_400, 30 * SHARE)], 2 * 500, RP) == (
        True,
        True,
    )


def test_book_scores_adds_our_orders_to_the_book_for_the_mid_and_scores_the_rest_as_one_maker():
    # Book 0.47 / 0.53 (100 shares); our 50-share bid at 0.49 moves the size-cutoff bid: mid 0.51.
    ours = [(YES, BUY, 4_900, 50 * SHARE)]
    q_ours, q_total, mid2 = book_scores(ours, [(4_700, 100 * SHARE)], [(5_300, 100 * SHARE)], RP)
    assert mid2 == 4_900 + 5_300
    # Ours: 2c off, ((3 - 2) / 3)^2 * 50 = 50/9, a third of it one-sided.
    assert shares(q_ours) == Fraction(50, 9) / 3
    # Theirs: bid 0.47 (4c off) scores 0, ask 0.53 (2c off) (1/3)^2 * 100 = 100/9, a third one-sided.
    assert shares(q_total - q_ours) == Fraction(100, 27)
    assert book_scores(ours, [], [(5_300, SHARE)], RP)[2] == 4_900 + 5_300
    assert book_scores([], [], [(5_300, SHARE)], RP) == (0, 0, 0)  # one-sided book: no mid


def test_levels_without_our_orders_take_them_out_where_they_rest_on_the_yes_book():
    bids = [(4_900, 70 * SHARE), (4_800, 10 * SHARE)]
    asks = [(5_100, 30 * SHARE)]
    ours = [(YES, BUY, 4_900, 50 * SHARE), (NO, SELL, 5_200, 10 * SHARE), (NO, BUY, 4_900, 30 * SHARE)]
    assert yes_levels_without(bids, ours, bids=True) == ((4_900, 20 * SHARE),)  # NO ask 0.52 = YES bid 0.48
    assert yes_levels_without(asks, ours, bids=False) == ()  # NO bid 0.49 = YES ask 0.51
    assert yes_levels_without(bids, [(YES, BUY, 4_900, 500 * SHARE)], bids=True) == ((4_800, 10 * SHARE),)


def test_estimate_counts_orders_and_sizes_and_pays_our_share_of_the_pool():
    ours = [(YES, BUY, 4_900, 40 * SHARE), (YES, SELL, 5_100, 10 * SHARE), (YES, SELL, 5_200, 0)]
    est = estimate(ours, [True, False, True], Fraction(1), Fraction(3), RP)
    assert (est.orders, est.scoring_orders, est.qty, est.scoring_qty) == (2, 1, 50 * SHARE, 40 * SHARE)
    assert (est.share_ppm, est.daily_usdc6) == (333_333, 3_333_333)
    assert estimate([], [], Fraction(0), Fraction(0), RP).daily_usdc6 == 0


@given(st.lists(order, max_size=6), st.lists(st.tuples(st.integers(1, 4_999), sizes), max_size=4),
       st.lists(st.tuples(st.integers(5_001, PX_ONE - 1), sizes), max_size=4), spreads)  # fmt: skip
def test_book_scores_agree_with_maker_q_and_order_scoring_with_the_scores(ours, bids, asks, v):
    rp = RewardParams(max_spread_px=v, min_qty=20 * SHARE, daily_usdc6=1_000_000)
    q_ours, q_total, mid2 = book_scores(ours, bids, asks, rp)
    assert 0 <= q_ours <= q_total
    if mid2:
        assert q_ours == maker_q(ours, mid2, rp)
        flags = order_scoring(ours, mid2, rp)
        scored = [o for o, f in zip(ours, flags, strict=True) if f]
        # Scoring orders are exactly those with S > 0 when the maker earns, none when it does not.
        if q_ours > 0:
            assert scored and side_scores(scored, mid2, rp) == side_scores(ours, mid2, rp)
            assert all(
                order_score(v, 2 * yes_book_px(o, px) - mid2, q, rp.min_qty) > 0 for o, _, px, q in scored
            )
        else:
            assert not scored
    est = estimate(ours, [False] * len(ours), q_ours, q_total, rp)
    assert 0 <= est.daily_usdc6 <= rp.daily_usdc6 and est.scoring_orders == 0


@given(st.lists(order, max_size=6), st.lists(st.tuples(st.integers(1, PX_ONE - 1), sizes), max_size=5),
       st.booleans())  # fmt: skip
def test_levels_without_then_with_our_orders_never_exceed_the_book(ours, levels, bids):
    out = dict(yes_levels_without(levels, ours, bids=bids))
    book: dict[int, int] = {}
    for px, q in levels:
        book[px] = book.get(px, 0) + q
    assert all(0 < q <= book[px] for px, q in out.items())
    untouched = {px for px, _ in levels} - {
        yes_book_px(o, px) for o, s, px, _ in ours if ((o is YES) == (s is BUY)) == bids
    }
    assert all(out.get(px) == book[px] for px in untouched)
