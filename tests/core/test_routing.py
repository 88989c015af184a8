"""Routing cached markets between strategies: the snake draft, overlap, limits and risk coverage."""

from __future__ import annotations

import random

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.config import MarketSelection
from core.routing import RoutingResult, StrategySpec, route_markets
from core.selection import MarketRecord, criteria, filter_reason, tradability_reason
from tests.core.test_selection import LOOSE, NOW, selections, tradable, unique_markets


def ranked(n: int) -> list[MarketRecord]:
    """``n`` tradable markets; market ``i`` has the i-th highest volume (ids 1..n)."""
    return [tradable(i, volume_24h=float(1_000 * (n - i + 1))) for i in range(1, n + 1)]


def ids(result: RoutingResult, name: str) -> list[str]:
    return [m.market_id for m in result.route(name).markets]


def spec(name: str, limit: int, sel: MarketSelection = LOOSE, role: str = "trading") -> StrategySpec:
    return StrategySpec(name=name, selection=sel, limit=limit, role=role)  # type: ignore[arg-type]


def test_route_snake_draft_alternates_first_pick() -> None:
    result = route_markets(ranked(10), [spec("mm", 5), spec("os", 5)], now_ns=NOW)

    assert ids(result, "mm") == ["1", "4", "5", "8", "9"]
    assert ids(result, "os") == ["2", "3", "6", "7", "10"]


def test_route_strategy_with_larger_limit_keeps_picking_after_other_is_full() -> None:
    result = route_markets(ranked(10), [spec("mm", 2), spec("os", 6)], now_ns=NOW)

    assert ids(result, "mm") == ["1", "4"]
    assert ids(result, "os") == ["2", "3", "5", "6", "7", "8"]


def test_route_each_strategy_gets_only_markets_passing_its_filters() -> None:
    wide = tradable(1, best_bid_px=4_000, best_ask_px=5_000, volume_24h=9e9)  # 10 cent spread
    tight = tradable(2, volume_24h=1.0)
    mm_sel = msgspec.structs.replace(LOOSE, max_spread_cents=4)

    result = route_markets([wide, tight], [spec("mm", 5, mm_sel), spec("os", 5)], now_ns=NOW)

    assert ids(result, "mm") == ["2"]
    assert ids(result, "os") == ["1"]
    assert result.route("mm").eligible.reason_counts() == {"wide_spread": 1}


def test_route_without_overlap_counts_markets_taken_by_other() -> None:
    result = route_markets(ranked(3), [spec("mm", 5), spec("os", 5)], now_ns=NOW)

    assert ids(result, "mm") == ["1"]
    assert ids(result, "os") == ["2", "3"]
    assert dict(result.route("mm").not_given) == {"taken_by:os": 2}
    assert dict(result.route("os").not_given) == {"taken_by:mm": 1}


def test_route_allow_overlap_gives_each_strategy_its_own_best() -> None:
    result = route_markets(ranked(6), [spec("mm", 3), spec("os", 2)], now_ns=NOW, allow_overlap=True)

    assert ids(result, "mm") == ["1", "2", "3"]
    assert ids(result, "os") == ["1", "2"]


def test_route_risk_manager_covers_traded_then_fills_with_its_own_best() -> None:
    markets = ranked(8)
    risk_sel = msgspec.structs.replace(LOOSE, rank_by="liquidity")
    markets[7] = msgspec.structs.replace(markets[7], liquidity=1e9)  # market 8: risk's favourite

    result = route_markets(
        markets, [spec("mm", 2), spec("os", 2), spec("rm", 6, risk_sel, role="risk")], now_ns=NOW
    )

    assert ids(result, "mm") == ["1", "4"]
    assert ids(result, "os") == ["2", "3"]
    assert ids(result, "rm") == ["1", "2", "3", "4", "8", "5"]


def test_route_risk_limit_caps_the_number_of_traded_markets() -> None:
    result = route_markets(ranked(10), [spec("mm", 5), spec("os", 5), spec("rm", 3, role="risk")], now_ns=NOW)

    traded = ids(result, "mm") + ids(result, "os")
    assert len(traded) == 3
    assert sorted(ids(result, "rm")) == sorted(traded)
    assert dict(result.route("mm").not_given)["risk_capacity"] > 0


def test_route_risk_manager_covers_markets_failing_its_own_filters() -> None:
    strict_risk = msgspec.structs.replace(LOOSE, min_volume_24h=1e12)

    result = route_markets(ranked(2), [spec("mm", 2), spec("rm", 5, strict_risk, role="risk")], now_ns=NOW)

    assert ids(result, "rm") == ids(result, "mm") == ["1", "2"]


def test_route_rejects_duplicate_names_and_two_risk_strategies() -> None:
    with pytest.raises(ValueError, match="unique"):
        route_markets([], [spec("a", 1), spec("a", 1)], now_ns=NOW)
    with pytest.raises(ValueError, match="one risk"):
        route_markets([], [spec("a", 1, role="risk"), spec("b", 1, role="risk")], now_ns=NOW)


# --- properties -------------------------------------------------------------------------------------------


@st.composite
def strategy_sets(draw: st.DrawFn) -> list[StrategySpec]:
    """Two trading strategies and maybe a risk strategy, each with random filters and limits."""
    specs = [
        spec("market_maker", draw(st.integers(0, 8)), draw(selections())),
        spec("option_seller", draw(st.integers(0, 8)), draw(selections())),
    ]
    if draw(st.booleans()):
        specs.append(spec("risk_manager", draw(st.integers(0, 20)), draw(selections()), role="risk"))
    return specs


@given(unique_markets(), strategy_sets(), st.booleans())
def test_route_property_limits_and_no_overlap(
    markets: list[MarketRecord], specs: list[StrategySpec], overlap: bool
) -> None:
    result = route_markets(markets, specs, now_ns=NOW, allow_overlap=overlap)

    traded: list[str] = []
    for s in specs:
        got = [m.condition_id for m in result.route(s.name).markets]
        assert len(got) <= s.limit
        assert len(set(got)) == len(got)
        if s.role == "trading":
            traded.extend(got)
    if not overlap:
        assert len(set(traded)) == len(traded)


@given(unique_markets(), strategy_sets(), st.booleans())
def test_route_property_risk_manager_covers_every_traded_market(
    markets: list[MarketRecord], specs: list[StrategySpec], overlap: bool
) -> None:
    result = route_markets(markets, specs, now_ns=NOW, allow_overlap=overlap)

    traded = {m.condition_id for r in result.routes if r.role == "trading" for m in r.markets}
    risk = [r for r in result.routes if r.role == "risk"]
    if risk:
        assert traded <= {m.condition_id for m in risk[0].markets}


@given(unique_markets(), strategy_sets(), st.booleans())
def test_route_property_trading_markets_pass_the_strategy_filters(
    markets: list[MarketRecord], specs: list[StrategySpec], overlap: bool
) -> None:
    result = route_markets(markets, specs, now_ns=NOW, allow_overlap=overlap)

    for s in specs:
        if s.role != "trading":
            continue
        c = criteria(s.selection)
        for m in result.route(s.name).markets:
            assert tradability_reason(m, NOW) is None
            assert filter_reason(m, c, NOW) is None


@given(unique_markets(), strategy_sets(), st.booleans(), st.randoms(use_true_random=False))
def test_route_property_deterministic_whatever_the_input_order(
    markets: list[MarketRecord], specs: list[StrategySpec], overlap: bool, rnd: random.Random
) -> None:
    shuffled = list(markets)
    rnd.shuffle(shuffled)

    a = route_markets(markets, specs, now_ns=NOW, allow_overlap=overlap)
    b = route_markets(markets, specs, now_ns=NOW, allow_overlap=overlap)
    c = route_markets(shuffled, specs, now_ns=NOW, allow_overlap=overlap)

    assert a == b
    assert [r.markets for r in a.routes] == [r.markets for r in c.routes]


@given(unique_markets(), strategy_sets())
def test_route_property_short_strategy_lost_every_eligible_market(
    markets: list[MarketRecord], specs: list[StrategySpec]
) -> None:
    # A trading strategy below its limit could not have had any more: the others took them, or the
    # risk manager's capacity was used up.
    result = route_markets(markets, specs, now_ns=NOW)

    for r in result.routes:
        if r.role == "trading" and len(r.markets) < r.limit:
            assert all(k.startswith(("taken_by:", "risk_capacity")) for k, _ in r.not_given)


@given(st.integers(1, 20), st.integers(1, 10))
def test_route_property_equal_strategies_split_evenly(n: int, limit: int) -> None:
    result = route_markets(ranked(n), [spec("a", limit), spec("b", limit)], now_ns=NOW)

    a, b = ids(result, "a"), ids(result, "b")
    assert abs(len(a) - len(b)) <= 1
    assert len(a) + len(b) == min(n, 2 * limit)
    if len(a) == len(b):
        # Snake draft: picks pair up as (1, 2), (4, 3), (5, 6), ... so the rank sums differ by <= 1.
        assert abs(sum(map(int, a)) - sum(map(int, b))) <= 1
