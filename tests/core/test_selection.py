"""Market selection: one test per filter, the score, and properties of the pure ``select_markets``."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import DEFAULT_MAX_BOOK_CANDIDATES, Config, IncomeConfig, MarketSelection
from core.markets import MarketInfo
from core.messages import BookSnapshot, Level
from core.selection import (
    NS_PER_HOUR,
    TRADABILITY_REASONS,
    MarketRecord,
    Reason,
    criteria,
    filter_reason,
    income,
    reward_density,
    score,
    select_candidates,
    select_markets,
    select_markets_for,
    tradability_reason,
)
from core.units import QTY_ONE, Outcome

NOW = 1_780_000_000 * 1_000_000_000  # 2026-05-28


def tradable(n: int = 1, **changes: object) -> MarketRecord:
    """A market that passes every filter of ``LOOSE``; ``changes`` break one thing at a time."""
    m = MarketRecord(
        market_id=str(n),
        condition_id=f"0x{n:064x}",
        question=f"Market {n}?",
        outcomes=("Yes", "No"),
        token_ids=(f"{n}1", f"{n}2"),
        tick_px=100,
        min_qty=500,
        end_date="2026-12-31T00:00:00Z",
        end_ns=NOW + 1_000 * NS_PER_HOUR,
        active=True,
        accepting_orders=True,
        enable_order_book=True,
        volume_24h=50_000.0,
        liquidity=20_000.0,
        best_bid_px=4_900,
        best_ask_px=5_100,
        tags=("politics",),
        tag_labels=("Politics",),
        category="politics",
    )
    return msgspec.structs.replace(m, **changes)


LOOSE = MarketSelection(limit=10, fetch_limit=100, max_spread_cents=100, mid_price_band=(0.0, 1.0))
STRICT = MarketSelection(
    limit=10,
    fetch_limit=100,
    min_volume_24h=10_000,
    min_liquidity=1_000,
    max_spread_cents=4,
    mid_price_band=(0.10, 0.90),
    exclude_tags=("crypto-prices", "Up or Down"),
    min_hours_to_end=24,
)


def reason_of(m: MarketRecord, sel: MarketSelection = STRICT) -> Reason | None:
    result = select_markets([m], sel, now_ns=NOW)
    return result.rejected[0].reason if result.rejected else None


# --- one test per filter ------------------------------------------------------------------------------


def test_select_tradable_market_is_selected() -> None:
    assert reason_of(tradable()) is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"active": False}, Reason.NOT_ACTIVE),
        ({"closed": True}, Reason.CLOSED),
        # Real Gamma data: closed yet still accepting orders (market_closed_binary_accepting_true_2026.json).
        ({"closed": True, "accepting_orders": True}, Reason.CLOSED),
        ({"archived": True}, Reason.ARCHIVED),
        ({"accepting_orders": False}, Reason.NOT_ACCEPTING_ORDERS),
        ({"enable_order_book": False}, Reason.NO_ORDER_BOOK),
        ({"token_ids": ("1",)}, Reason.NOT_TWO_TOKENS),
        ({"token_ids": ()}, Reason.NOT_TWO_TOKENS),
        ({"token_ids": ("1", "2", "3")}, Reason.NOT_TWO_TOKENS),
        ({"tick_px": None}, Reason.NO_TICK_SIZE),
        ({"end_ns": NOW}, Reason.ENDED),
    ],
)
def test_select_tradability_flag_rejected_with_reason(changes: dict[str, object], reason: Reason) -> None:
    assert reason_of(tradable(**changes), LOOSE) == reason


def test_select_min_hours_to_end_rejects_market_ending_sooner() -> None:
    assert reason_of(tradable(end_ns=NOW + 23 * NS_PER_HOUR)) == Reason.ENDS_TOO_SOON
    assert reason_of(tradable(end_ns=NOW + 25 * NS_PER_HOUR)) is None


def test_select_market_without_end_date_passes_end_filters() -> None:
    assert reason_of(tradable(end_ns=None, end_date="")) is None


def test_select_exclude_tags_matches_slug_or_label_case_insensitively() -> None:
    assert reason_of(tradable(tags=("crypto-prices",), tag_labels=())) == Reason.EXCLUDED_TAG
    assert reason_of(tradable(tags=("up-or-down",), tag_labels=())) == Reason.EXCLUDED_TAG
    assert reason_of(tradable(tags=(), tag_labels=("Crypto Prices",))) == Reason.EXCLUDED_TAG
    assert reason_of(tradable(tags=("crypto",), tag_labels=("Crypto",))) is None


def test_select_include_categories_keeps_only_listed_categories() -> None:
    sel = msgspec.structs.replace(LOOSE, include_categories=("politics", "sports"))

    assert reason_of(tradable(category="politics"), sel) is None
    assert reason_of(tradable(category="crypto"), sel) == Reason.CATEGORY_NOT_INCLUDED
    assert reason_of(tradable(category=""), sel) == Reason.CATEGORY_NOT_INCLUDED


def test_select_exclude_categories_drops_listed_categories() -> None:
    sel = msgspec.structs.replace(LOOSE, exclude_categories=("crypto",))

    assert reason_of(tradable(category="crypto"), sel) == Reason.CATEGORY_EXCLUDED
    assert reason_of(tradable(category="sports"), sel) is None
    assert reason_of(tradable(category=""), sel) is None


def test_select_min_volume_24h_rejects_thin_markets() -> None:
    assert reason_of(tradable(volume_24h=9_999.0)) == Reason.LOW_VOLUME
    assert reason_of(tradable(volume_24h=10_000.0)) is None


def test_select_min_liquidity_rejects_shallow_markets() -> None:
    assert reason_of(tradable(liquidity=999.0)) == Reason.LOW_LIQUIDITY
    assert reason_of(tradable(liquidity=1_000.0)) is None


def test_select_missing_side_is_no_two_sided_quote() -> None:
    assert reason_of(tradable(best_bid_px=None)) == Reason.NO_TWO_SIDED_QUOTE
    assert reason_of(tradable(best_ask_px=None)) == Reason.NO_TWO_SIDED_QUOTE


def test_select_crossed_cached_quote_rejected() -> None:
    assert reason_of(tradable(best_bid_px=5_100, best_ask_px=5_000)) == Reason.CROSSED_QUOTE


def test_select_max_spread_cents_is_inclusive() -> None:
    assert reason_of(tradable(best_bid_px=4_800, best_ask_px=5_200)) is None  # 4 cents
    assert reason_of(tradable(best_bid_px=4_800, best_ask_px=5_210)) == Reason.WIDE_SPREAD


def test_select_mid_price_band_uses_exact_half_px_mid() -> None:
    # bid 0.0995 / ask 0.1005: mid exactly 0.1000, on the band edge.
    assert reason_of(tradable(best_bid_px=995, best_ask_px=1_005)) is None
    assert reason_of(tradable(best_bid_px=994, best_ask_px=1_005)) == Reason.MID_OUTSIDE_BAND
    assert reason_of(tradable(best_bid_px=9_000, best_ask_px=9_100)) == Reason.MID_OUTSIDE_BAND


def test_select_limit_rejects_the_rest_as_below_limit() -> None:
    markets = [tradable(i, volume_24h=1_000.0 * (20 + i)) for i in range(5)]

    result = select_markets(markets, msgspec.structs.replace(LOOSE, limit=2), now_ns=NOW)

    assert [m.market_id for m in result.selected] == ["4", "3"]
    assert [r.reason for r in result.rejected] == [Reason.BELOW_LIMIT] * 3
    assert result.rejected[0].detail.startswith("rank 3")


def test_select_duplicate_condition_id_kept_once() -> None:
    a = tradable(1)
    b = tradable(2, condition_id=a.condition_id)

    result = select_markets([a, b], LOOSE, now_ns=NOW)

    assert [m.market_id for m in result.selected] == ["1"]
    assert result.rejected[0].reason == Reason.DUPLICATE


def test_select_tradability_checked_before_filters() -> None:
    m = tradable(closed=True, volume_24h=0.0, best_bid_px=None)

    assert reason_of(m) == Reason.CLOSED


# --- score and ranking -------------------------------------------------------------------------------------


def test_select_default_rank_is_volume_24h_descending() -> None:
    markets = [tradable(1, volume_24h=10.0), tradable(2, volume_24h=30.0), tradable(3, volume_24h=20.0)]

    result = select_markets(markets, LOOSE, now_ns=NOW)

    assert [m.market_id for m in result.selected] == ["2", "3", "1"]
    assert result.scores == (30.0, 20.0, 10.0)


def test_select_rank_by_liquidity() -> None:
    markets = [tradable(1, liquidity=5.0, volume_24h=9.0), tradable(2, liquidity=7.0, volume_24h=1.0)]
    sel = msgspec.structs.replace(LOOSE, rank_by="liquidity")

    assert [m.market_id for m in select_markets(markets, sel, now_ns=NOW).selected] == ["2", "1"]


def test_reward_density_is_pool_over_liquidity_plus_min_order() -> None:
    m = tradable(
        rewards_daily_usdc=100.0,
        rewards_max_spread_px=450,
        rewards_min_qty=100 * QTY_ONE,  # 100 shares at mid 0.50 = 50 USDC
        liquidity=950.0,
    )

    assert reward_density(m) == pytest.approx(100.0 / 1_000.0)
    assert reward_density(tradable(rewards_daily_usdc=100.0, rewards_max_spread_px=0)) == 0.0
    assert reward_density(tradable()) == 0.0


def test_select_rank_by_reward_density_prefers_rich_pool_in_thin_book() -> None:
    rich = tradable(1, rewards_daily_usdc=50.0, rewards_max_spread_px=350, liquidity=1_000.0, volume_24h=1.0)
    crowded = tradable(2, rewards_daily_usdc=50.0, rewards_max_spread_px=350, liquidity=90_000.0)
    none = tradable(3, volume_24h=10**9)
    sel = msgspec.structs.replace(LOOSE, rank_by="reward_density")

    assert [m.market_id for m in select_markets([none, crowded, rich], sel, now_ns=NOW).selected] == [
        "1",
        "2",
        "3",
    ]


def yes_book(m: MarketRecord, bids: tuple[Level, ...], asks: tuple[Level, ...]) -> BookSnapshot:
    return BookSnapshot(market=m.condition_id, outcome=Outcome.YES, ts_ns=0, bids=bids, asks=asks)


def test_select_expected_income_with_books_ranks_the_market_with_little_scored_competition_first() -> None:
    # Gamma says the two markets are alike (same touch, liquidity, pool): 20,000 USDC of liquidity is
    # 40,000 shares at the mid, read as resting at the touch; each earns 50 * 100 / 20,100 = 0.248756.
    pool = {"rewards_daily_usdc": 50.0, "rewards_max_spread_px": 300, "rewards_min_qty": 50 * QTY_ONE}
    crowded, far = tradable(1, **pool), tradable(2, **pool)
    sel = msgspec.structs.replace(LOOSE, rank_by="expected_income")
    lot = QTY_ONE
    books = {
        # 10,000 shares a side at the touch.
        "1": yes_book(crowded, ((4_900, 10_000 * lot),), ((5_100, 10_000 * lot),)),
        # 60 shares a side at the touch; 50,000 a side 20 cents away, outside the 3-cent band: no score.
        "2": yes_book(
            far, ((4_900, 60 * lot), (3_000, 50_000 * lot)), ((5_100, 60 * lot), (7_000, 50_000 * lot))
        ),
    }

    gamma = select_markets([crowded, far], sel, now_ns=NOW)
    booked = select_markets([crowded, far], sel, now_ns=NOW, books=books)

    assert [m.market_id for m in gamma.selected] == ["1", "2"]  # a tie, broken on the id
    assert gamma.scores == (0.248756, 0.248756)
    # Our 100 shares a side and theirs sit 1 cent from the mid: the same score weight, so the pool is
    # shared by size at the touch: 50 * 100 / 160 = 31.25 and 50 * 100 / 10,100 = 0.495050.
    assert [m.market_id for m in booked.selected] == ["2", "1"]
    assert booked.scores == (31.25, 0.49505)
    assert (income(far, sel.income, books["2"]).source, income(far, sel.income).source) == ("book", "gamma")
    # Books change the ranking only for expected_income.
    by_volume = select_markets([crowded, far], LOOSE, now_ns=NOW, books=books)
    assert [m.market_id for m in by_volume.selected] == ["1", "2"]


def test_book_count_defaults_to_three_per_kept_market_capped_and_obeys_the_setting() -> None:
    assert IncomeConfig().book_count(10) == 30
    assert IncomeConfig().book_count(1_000) == DEFAULT_MAX_BOOK_CANDIDATES
    assert IncomeConfig(book_candidates=7).book_count(1_000) == 7
    assert IncomeConfig(book_candidates=0).book_count(10) == 0


@given(st.integers(0, 10_000), st.none() | st.integers(0, 500))
def test_book_count_property_bounded_and_explicit_wins(keep: int, setting: int | None) -> None:
    n = IncomeConfig(book_candidates=setting).book_count(keep)

    assert n == setting if setting is not None else n == min(3 * keep, DEFAULT_MAX_BOOK_CANDIDATES)
    assert 0 <= n <= 500


def test_select_summary_counts_each_reason() -> None:
    markets = [tradable(1), tradable(2, closed=True), tradable(3, closed=True), tradable(4, volume_24h=1.0)]

    result = select_markets(markets, STRICT, now_ns=NOW)

    assert result.reason_counts() == {"closed": 2, "low_volume_24h": 1}
    assert result.summary() == "selected 1 of 4 by volume_24h; rejected: closed 2, low_volume_24h 1"


def test_select_candidates_applies_only_tradability() -> None:
    markets = [tradable(1, volume_24h=1.0), tradable(2, closed=True)]

    result = select_candidates(markets, STRICT, now_ns=NOW)

    assert [m.market_id for m in result.selected] == ["1"]
    assert {r.reason for r in result.rejected} <= TRADABILITY_REASONS


def test_select_markets_for_uses_config_market_selection() -> None:
    config = Config(market_selection=msgspec.structs.replace(STRICT, limit=1))

    result = select_markets_for(config, [tradable(1), tradable(2, volume_24h=60_000.0)], now_ns=NOW)

    assert [m.market_id for m in result.selected] == ["2"]


def test_criteria_converts_cents_and_band_to_px() -> None:
    c = criteria(STRICT)

    assert (c.max_spread_px, c.band_lo_px, c.band_hi_px) == (400, 1_000, 9_000)
    assert c.exclude_tags == frozenset({"crypto-prices", "up-or-down"})


def test_market_record_to_info_keeps_trading_rules() -> None:
    m = tradable(7, neg_risk=True, fee_rate_ppm=40_000, tick_px=10)

    assert m.to_info() == MarketInfo(
        market=m.condition_id,
        yes_token="71",
        no_token="72",
        tick_px=10,
        min_qty=500,
        neg_risk=True,
        fee_rate_ppm=40_000,
        question="Market 7?",
    )


def test_market_record_to_info_carries_the_reward_terms_to_quoting() -> None:
    m = tradable(7, rewards_min_qty=20_000_000, rewards_max_spread_px=450, rewards_daily_usdc=12.5)

    rp = m.to_info().reward_params()

    assert (rp.max_spread_px, rp.min_qty, rp.daily_usdc6, rp.active) == (450, 20_000_000, 12_500_000, True)
    assert not tradable(8).to_info().reward_params().active


def test_market_record_to_info_refuses_untradable() -> None:
    with pytest.raises(ValueError, match="two tokens"):
        tradable(token_ids=()).to_info()


# --- properties -------------------------------------------------------------------------------------------


def _mostly(draw: st.DrawFn, good: object, bad: object) -> object:
    # One value in ten is the bad one, so most generated markets get far enough to be ranked.
    return draw(st.sampled_from((good,) * 9 + (bad,)))


@st.composite
def market_records(draw: st.DrawFn, n: int | None = None) -> MarketRecord:
    """A market that is usually tradable, with random prices, volumes, rewards, tags and end date."""
    i = draw(st.integers(1, 10**6)) if n is None else n
    tick = draw(st.sampled_from((10, 100)))
    bid = draw(st.integers(0, 10_000 // tick - 1)) * tick
    ask = min(bid + draw(st.integers(1, 8)) * tick, 10_000)
    if draw(st.integers(0, 9)) == 0:
        bid, ask = draw(st.sampled_from(((None, ask), (bid, None), (ask, bid))))
    return MarketRecord(
        market_id=str(i),
        condition_id=f"0x{i:064x}",
        question=f"Market {i}?",
        outcomes=("Yes", "No"),
        token_ids=_mostly(draw, (f"{i}1", f"{i}2"), (f"{i}1",)),  # type: ignore[arg-type]
        tick_px=_mostly(draw, tick, None),  # type: ignore[arg-type]
        min_qty=500,
        end_ns=draw(st.none() | st.integers(NOW - 24 * NS_PER_HOUR, NOW + 2_000 * NS_PER_HOUR)),
        active=_mostly(draw, True, False),  # type: ignore[arg-type]
        closed=_mostly(draw, False, True),  # type: ignore[arg-type]
        archived=_mostly(draw, False, True),  # type: ignore[arg-type]
        accepting_orders=_mostly(draw, True, False),  # type: ignore[arg-type]
        enable_order_book=_mostly(draw, True, False),  # type: ignore[arg-type]
        volume_24h=float(draw(st.integers(0, 200_000))),
        liquidity=float(draw(st.integers(0, 50_000))),
        best_bid_px=bid,
        best_ask_px=ask,
        rewards_daily_usdc=float(draw(st.integers(0, 100))),
        rewards_max_spread_px=draw(st.sampled_from((0, 350, 450))),
        rewards_min_qty=draw(st.sampled_from((0, 5_000, 20_000))),
        tags=_mostly(draw, ("politics",), ("crypto-prices",)),  # type: ignore[arg-type]
        category=draw(st.sampled_from(("", "politics", "politics", "sports", "crypto", "other"))),
    )


@st.composite
def selections(draw: st.DrawFn) -> MarketSelection:
    """A random but valid ``market_selection``."""
    lo = draw(st.sampled_from((0.0, 0.05, 0.1)))
    hi = draw(st.sampled_from((0.9, 0.95, 1.0)))
    limit = draw(st.integers(1, 15))
    return MarketSelection(
        limit=limit,
        fetch_limit=max(limit, 100),
        min_volume_24h=float(draw(st.sampled_from((0, 0, 1_000, 50_000)))),
        min_liquidity=float(draw(st.sampled_from((0, 0, 500, 10_000)))),
        max_spread_cents=float(draw(st.sampled_from((2, 6, 10, 100)))),
        mid_price_band=(lo, hi),
        exclude_tags=tuple(draw(st.lists(st.sampled_from(("crypto-prices", "up-or-down")), max_size=2))),
        include_categories=tuple(draw(st.sampled_from(((), (), ("politics", "sports"))))),
        exclude_categories=tuple(draw(st.sampled_from(((), ("crypto",))))),
        min_hours_to_end=float(draw(st.sampled_from((0, 0, 24, 100)))),
        rank_by=draw(st.sampled_from(("volume_24h", "liquidity", "reward_density", "expected_income"))),
    )


def unique_markets(max_size: int = 30) -> st.SearchStrategy[list[MarketRecord]]:
    """Lists of markets with distinct ids."""
    return st.lists(market_records(), max_size=max_size, unique_by=lambda m: m.condition_id)


@given(unique_markets(), selections())
def test_select_property_every_market_selected_or_rejected_once(
    markets: list[MarketRecord], sel: MarketSelection
) -> None:
    result = select_markets(markets, sel, now_ns=NOW)

    ids = [m.market_id for m in result.selected] + [r.market_id for r in result.rejected]
    assert sorted(ids) == sorted(m.market_id for m in markets)
    assert len(result.selected) <= sel.limit
    assert sum(result.reason_counts().values()) == len(result.rejected)


@given(unique_markets(), selections())
def test_select_property_selected_pass_every_filter_and_are_ranked(
    markets: list[MarketRecord], sel: MarketSelection
) -> None:
    result = select_markets(markets, sel, now_ns=NOW)

    c = criteria(sel)
    for m in result.selected:
        assert tradability_reason(m, NOW) is None
        assert filter_reason(m, c, NOW) is None
        lo, hi = sel.mid_price_band
        mid2 = m.mid_px2()
        assert mid2 is not None
        assert 2 * round(lo * 10_000) <= mid2 <= 2 * round(hi * 10_000)
    assert list(result.scores) == sorted(result.scores, reverse=True)


@given(unique_markets(), selections(), st.randoms(use_true_random=False))
def test_select_property_order_of_input_does_not_matter(
    markets: list[MarketRecord], sel: MarketSelection, rnd: random.Random
) -> None:
    shuffled = list(markets)
    rnd.shuffle(shuffled)

    a = select_markets(markets, sel, now_ns=NOW)
    b = select_markets(shuffled, sel, now_ns=NOW)

    assert a.selected == b.selected
    assert sorted(r.market_id for r in a.rejected) == sorted(r.market_id for r in b.rejected)


@given(unique_markets(), selections())
def test_select_property_smaller_limit_is_a_prefix(markets: list[MarketRecord], sel: MarketSelection) -> None:
    full = select_markets(markets, sel, now_ns=NOW, limit=None)
    cut = select_markets(markets, sel, now_ns=NOW)

    assert cut.selected == full.selected[: sel.limit]


@given(unique_markets(), selections())
def test_select_property_candidates_superset_of_selection(
    markets: list[MarketRecord], sel: MarketSelection
) -> None:
    candidates = select_candidates(markets, sel, now_ns=NOW, limit=None)
    chosen = select_markets(markets, sel, now_ns=NOW, limit=None)

    assert {m.market_id for m in chosen.selected} <= {m.market_id for m in candidates.selected}


@st.composite
def books_for(draw: st.DrawFn, markets: list[MarketRecord]) -> dict[str, BookSnapshot]:
    """YES books for some of ``markets``: random levels around the mid, a side sometimes empty."""
    out: dict[str, BookSnapshot] = {}
    for m in markets:
        if not draw(st.booleans()):
            continue
        split = draw(st.integers(2, 9_998))
        sizes = st.integers(1, 5_000).map(lambda n: n * QTY_ONE)
        bids = draw(
            st.lists(st.tuples(st.integers(1, split - 1), sizes), max_size=4, unique_by=lambda lv: lv[0])
        )
        asks = draw(
            st.lists(st.tuples(st.integers(split, 9_999), sizes), max_size=4, unique_by=lambda lv: lv[0])
        )
        out[m.market_id] = yes_book(m, tuple(sorted(bids, reverse=True)), tuple(sorted(asks)))
    return out


@settings(max_examples=40, deadline=None)
@given(unique_markets(max_size=12), selections(), st.data())
def test_select_property_books_reprice_only_their_markets_and_never_change_who_passes(
    markets: list[MarketRecord], sel: MarketSelection, data: st.DataObject
) -> None:
    sel = msgspec.structs.replace(sel, rank_by="expected_income")
    books = data.draw(books_for(markets))

    plain = select_candidates(markets, sel, now_ns=NOW, limit=None)
    booked = select_candidates(markets, sel, now_ns=NOW, limit=None, books=books)

    assert select_candidates(markets, sel, now_ns=NOW, limit=None, books={}) == plain
    assert {m.market_id for m in booked.selected} == {m.market_id for m in plain.selected}
    assert list(booked.scores) == sorted(booked.scores, reverse=True)
    for m, value in zip(booked.selected, booked.scores, strict=True):
        assert value == score(m, "expected_income", sel.income, books.get(m.market_id))
        if m.market_id not in books:
            assert value == score(m, "expected_income", sel.income)
