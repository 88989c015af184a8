"""A market's expected daily income for a reference maker: rewards + rebates + spread - adverse selection.

Pure: no I/O, clock or randomness. ``rank_by: expected_income`` ranks markets by ``net_usdc6_per_day``;
``polymm refresh-markets`` prints every term. The formula, its assumptions and sources are in
``docs/rewards.md`` ("Ranking by expected income"). In short, for one bid and one ask of ``q`` shares
(``income.quote_shares``, at least ``rewardsMinSize``) resting at the touch, with ``p`` the mid and
``C`` the competing resting shares (the book's, or ``liquidityNum / p`` without one):

* fills ``F = V / p * 2q / (2q + C)`` shares a day (Gamma's 24h volume ``V`` shared pro rata by size);
* spread ``F * (ask - bid) / 2``; rebates ``F * rate * p * (1 - p) * rebateRate`` (venue notes §5);
* rewards ``pool * Q_min(ours) / (Q_min(ours) + Q_min(competition))`` (``core.rewards``, §6);
* adverse selection ``F * m``, ``m`` the market's recent absolute price change scaled to
  ``income.holding_hours`` (the largest of the 1 h, 1 day and 1 week estimates), or the half-spread
  when Gamma serves no change (spread capture then nets to zero).

Every term is USDC per day, computed exactly (``Fraction``) and rounded to the micro-USDC; the net is
the sum of the rounded terms, so a printed row adds up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Final, Literal

import msgspec

from core.config import IncomeConfig
from core.inventory import OrderLike
from core.messages import Level
from core.rewards import RewardParams, adjusted_mid2_px, maker_q, pool_share
from core.units import PX_ONE, QTY_ONE, USDC6_ONE, Outcome, Px, Qty, Side, Usdc6

HOURS_PER_DAY: Final = 24
HOURS_PER_WEEK: Final = 168

#: Which estimate of the adverse move was used: a Gamma price-change field, or the half-spread.
MoveSource = Literal["1h", "1d", "1w", "spread", ""]


class IncomeInputs(msgspec.Struct, frozen=True, kw_only=True):
    """What the estimate reads about one market (``MarketRecord.income_inputs()`` builds it from Gamma).

    ``bids``/``asks`` are the YES book's levels (any order) when a book is at hand; ``None`` means
    Gamma's fields stand in (its touch, and ``liquidity_usdc`` for the competition).
    """

    best_bid_px: Px | None
    best_ask_px: Px | None
    volume_24h_usdc: float = 0.0
    liquidity_usdc: float = 0.0
    reward: RewardParams = RewardParams()
    fee_rate_ppm: int = 0
    rebate_ppm: int = 0
    #: Gamma's ``oneHourPriceChange``, ``oneDayPriceChange``, ``oneWeekPriceChange`` in Px (signed).
    change_1h_px: Px | None = None
    change_1d_px: Px | None = None
    change_1w_px: Px | None = None
    bids: tuple[Level, ...] | None = None
    asks: tuple[Level, ...] | None = None


class IncomeEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """The terms of one market's expected income, each in micro-USDC per day.

    ``priced`` is false for a market without a two-sided, uncrossed quote: every term is 0 and the
    ranking puts it last.
    """

    priced: bool
    source: Literal["book", "gamma"] = "gamma"
    quote_qty: Qty = 0
    competing_qty: Qty = 0
    fills_qty_per_day: Qty = 0
    pool_usdc6_per_day: Usdc6 = 0
    #: The competition's ``Q_min`` (share-points, Qty units) and the reward density: the pool per
    #: competing scored share, USDC a day (a ratio for people, not money: ``inf`` when a pool has no
    #: competition, 0 without a pool).
    competing_score_qty: Qty = 0
    density_usdc_per_share: float = 0.0
    adverse_move_px: Px = 0
    move_source: MoveSource = ""
    reward_usdc6_per_day: Usdc6 = 0
    rebate_usdc6_per_day: Usdc6 = 0
    spread_usdc6_per_day: Usdc6 = 0
    adverse_usdc6_per_day: Usdc6 = 0
    net_usdc6_per_day: Usdc6 = 0


UNPRICED: Final = IncomeEstimate(priced=False)


def _usdc6(usdc: Fraction) -> Usdc6:
    return round(usdc * USDC6_ONE)


def adverse_move(inp: IncomeInputs, holding_hours: float, spread_px: Px) -> tuple[Fraction, MoveSource]:
    """The expected adverse price move per filled share over ``holding_hours``, in USDC, and its source.

    Each served change ``d`` over ``T`` hours gives ``|d| * sqrt(H / T)`` (a random walk's scaling);
    the largest is taken (one change is a noisy estimate; the largest is the cautious one). Without
    any, half of ``spread_px`` (the touch's): a fill then earns its spread and gives it back.
    """
    best: tuple[Fraction, MoveSource] | None = None
    served: tuple[tuple[Px | None, int, MoveSource], ...] = (
        (inp.change_1h_px, 1, "1h"),
        (inp.change_1d_px, HOURS_PER_DAY, "1d"),
        (inp.change_1w_px, HOURS_PER_WEEK, "1w"),
    )
    for change, hours, name in served:
        if change is None:
            continue
        ratio = Fraction(holding_hours) / hours
        root = math.isqrt(ratio.numerator * ratio.denominator)
        # sqrt exact when it is rational (H = T, H = 4 T, ...); a float's exact value otherwise.
        scale = (
            Fraction(root, ratio.denominator)
            if root * root == ratio.numerator * ratio.denominator
            else Fraction(math.sqrt(ratio))
        )
        move = Fraction(abs(change), PX_ONE) * scale
        if best is None or move > best[0]:
            best = (move, name)
    if best is not None:
        return best
    return Fraction(spread_px, 2 * PX_ONE), "spread"


def _book_touch(levels: Sequence[Level], *, bid: bool) -> Px | None:
    prices = [px for px, qty in levels if qty > 0]
    if not prices:
        return None
    return max(prices) if bid else min(prices)


def expected_income(inp: IncomeInputs, cfg: IncomeConfig) -> IncomeEstimate:
    """The expected daily income of quoting ``cfg``'s reference bid and ask at ``inp``'s touch.

    Args:
        inp: The market (Gamma fields, and its YES book when one is at hand).
        cfg: The reference quote (``market_selection.income``).

    Returns:
        Every term in micro-USDC per day; ``UNPRICED`` without a two-sided, uncrossed quote.
    """
    with_book = inp.bids is not None and inp.asks is not None
    bids: tuple[Level, ...] = inp.bids or ()
    asks: tuple[Level, ...] = inp.asks or ()
    if with_book:
        bid_px = _book_touch(bids, bid=True)
        ask_px = _book_touch(asks, bid=False)
    else:
        bid_px, ask_px = inp.best_bid_px, inp.best_ask_px
    if bid_px is None or ask_px is None or ask_px <= bid_px:
        return UNPRICED
    rp = inp.reward
    q = max(round(cfg.quote_shares * QTY_ONE), rp.min_qty)
    p = Fraction(bid_px + ask_px, 2 * PX_ONE)

    if with_book:
        competing = sum(qty for _, qty in bids if qty > 0) + sum(qty for _, qty in asks if qty > 0)
    else:
        competing = round(Fraction(inp.liquidity_usdc) / p * QTY_ONE)
    fills = Fraction(inp.volume_24h_usdc) / p * Fraction(2 * q, 2 * q + competing)  # shares a day

    half_spread = Fraction(ask_px - bid_px, 2 * PX_ONE)
    spread = fills * half_spread
    rebate = fills * Fraction(inp.fee_rate_ppm * inp.rebate_ppm, 10**12) * p * (1 - p)
    move, move_source = adverse_move(inp, cfg.holding_hours, ask_px - bid_px)
    adverse = fills * move

    ours: list[OrderLike] = [(Outcome.YES, Side.BUY, bid_px, q), (Outcome.YES, Side.SELL, ask_px, q)]
    if with_book:
        # Our orders join the touch levels, so they count toward the size-cutoff-adjusted mid.
        mid2 = adjusted_mid2_px(
            [(px, qty + (q if px == bid_px else 0)) for px, qty in bids],
            [(px, qty + (q if px == ask_px else 0)) for px, qty in asks],
            rp.min_qty,
        )
        theirs: list[OrderLike] = [(Outcome.YES, Side.BUY, px, qty) for px, qty in bids] + [
            (Outcome.YES, Side.SELL, px, qty) for px, qty in asks
        ]
    else:
        # Gamma gives no sizes: the mid is the raw touch's, and the competition rests at our prices,
        # half on each side.
        mid2 = bid_px + ask_px
        half = competing // 2
        theirs = [(Outcome.YES, Side.BUY, bid_px, half), (Outcome.YES, Side.SELL, ask_px, half)]
    pool = Fraction(rp.daily_usdc6, USDC6_ONE) if rp.active else Fraction(0)
    q_ours = maker_q(ours, mid2, rp) if rp.active else Fraction(0)
    q_theirs = maker_q(theirs, mid2, rp) if rp.active else Fraction(0)
    reward = pool * pool_share(q_ours, [q_theirs])
    density = 0.0
    if pool > 0:
        density = float(pool * QTY_ONE / q_theirs) if q_theirs > 0 else math.inf

    terms = (_usdc6(reward), _usdc6(rebate), _usdc6(spread), _usdc6(adverse))
    return IncomeEstimate(
        priced=True,
        source="book" if with_book else "gamma",
        quote_qty=q,
        competing_qty=competing,
        fills_qty_per_day=round(fills * QTY_ONE),
        pool_usdc6_per_day=_usdc6(pool),
        competing_score_qty=math.floor(q_theirs),
        density_usdc_per_share=density,
        adverse_move_px=round(move * PX_ONE),
        move_source=move_source,
        reward_usdc6_per_day=terms[0],
        rebate_usdc6_per_day=terms[1],
        spread_usdc6_per_day=terms[2],
        adverse_usdc6_per_day=terms[3],
        net_usdc6_per_day=terms[0] + terms[1] + terms[2] - terms[3],
    )
