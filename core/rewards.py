"""Polymarket's liquidity-rewards score, exactly: per order, per side, two-sided, and a maker's share.

Pure: no I/O, clock or randomness. Rules and sources in ``docs/rewards.md``
(docs.polymarket.com/market-makers/liquidity-rewards, as summarised in the venue notes):

* Per order ``S = ((v - s) / v)^2 * size`` for ``s < v``; 0 for ``s >= v`` or ``size < min size``.
  ``v`` is the market's max spread, ``s`` the order's distance from the size-cutoff-adjusted midpoint.
  Both are in ``Px`` here (1 cent = 100 Px): the ratio ``(v - s) / v`` has no unit, so the score is
  the same as with cents. The in-game multiplier ``b`` is 1 (boosted markets are not modelled).
* ``Q_one`` = scores of bids on YES + asks on NO (an ask on NO at ``q`` is a YES bid at ``1 - q``);
  ``Q_two`` = asks on YES + bids on NO. Distances are measured on the YES book: a NO order at ``q``
  sits at ``1 - q``.
* Mid in [0.10, 0.90] (inclusive): ``Q_min = max(min(Q_one, Q_two), max(Q_one, Q_two) / c)``, c = 3
  (single-sided quoting scores a third). Outside: ``Q_min = min(Q_one, Q_two)`` (two-sided only).
* A maker's share of a sample is ``Q_min / sum of every maker's Q_min`` (0 when nobody scores).

Arithmetic is exact: scores are ``Fraction`` in Qty units (1e-6 share-points); nothing rounds here. A
money amount made from a share (deliverable 3) is floored to the micro-USDC by ``reward_usdc6``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Final

import msgspec

from core.inventory import OrderLike
from core.units import PX_ONE, Outcome, Px, Qty, Side, Usdc6

#: The venue's single-sided scaling factor c ("currently 3.0 on all markets").
SINGLE_SIDED_DIVISOR: Final = 3
#: The mid band (inclusive, in Px) inside which single-sided quoting scores at 1/c.
BAND_LO_PX: Final = 1_000
BAND_HI_PX: Final = 9_000
_ZERO: Final = Fraction(0)


class RewardParams(msgspec.Struct, frozen=True, kw_only=True):
    """One market's liquidity-rewards terms (Gamma ``rewardsMaxSpread``, ``rewardsMinSize``, ``clobRewards``).

    ``max_spread_px`` 0 means the market has no rewards program.
    """

    max_spread_px: Px = 0
    min_qty: Qty = 0
    daily_usdc6: Usdc6 = 0

    @property
    def active(self) -> bool:
        """Whether orders in this market can score at all."""
        return self.max_spread_px > 0


NO_REWARDS: Final = RewardParams()


def order_score(max_spread_px: Px, distance2_px: int, qty: Qty, min_qty: Qty) -> Fraction:
    """``S * size`` of one order, exact, in Qty units.

    Args:
        max_spread_px: ``v`` in Px (4.5 cents = 450).
        distance2_px: twice ``s`` in Px (twice, so a mid halfway between two ticks stays an integer);
            its sign is ignored.
        qty: The order's size.
        min_qty: The market's reward minimum size; a smaller order scores 0.
    """
    v2 = 2 * max_spread_px
    d2 = abs(distance2_px)
    if max_spread_px <= 0 or qty <= 0 or qty < min_qty or d2 >= v2:
        return _ZERO
    return Fraction((v2 - d2) ** 2 * qty, v2 * v2)


def adjusted_mid2_px(bids: Iterable[tuple[Px, Qty]], asks: Iterable[tuple[Px, Qty]], min_qty: Qty) -> int:
    """Twice the size-cutoff-adjusted midpoint of the YES book, in Px (0: a side is empty).

    The venue does not define it. Assumption (docs/rewards.md): the best bid and best ask among price
    levels whose aggregate size is at least ``min_qty``; a side with no such level uses its raw touch.
    """
    bid_raw = bid_cut = ask_raw = ask_cut = -1
    for px, qty in bids:
        if qty <= 0:
            continue
        bid_raw = max(bid_raw, px)
        if qty >= min_qty:
            bid_cut = max(bid_cut, px)
    for px, qty in asks:
        if qty <= 0:
            continue
        ask_raw = px if ask_raw < 0 else min(ask_raw, px)
        if qty >= min_qty:
            ask_cut = px if ask_cut < 0 else min(ask_cut, px)
    if bid_raw < 0 or ask_raw < 0:
        return 0
    return (bid_cut if bid_cut >= 0 else bid_raw) + (ask_cut if ask_cut >= 0 else ask_raw)


def yes_book_px(outcome: Outcome, px: Px) -> Px:
    """Where an order on ``outcome`` at ``px`` sits on the YES book."""
    return px if outcome is Outcome.YES else PX_ONE - px


def side_scores(orders: Iterable[OrderLike], mid2_px: int, rp: RewardParams) -> tuple[Fraction, Fraction]:
    """``(Q_one, Q_two)`` of one maker's resting orders against twice the adjusted mid.

    ``Q_one``: bids on YES and asks on NO (both buy YES exposure); ``Q_two``: asks on YES and bids on NO.
    """
    q_one = q_two = _ZERO
    for outcome, side, px, qty in orders:
        s = order_score(rp.max_spread_px, 2 * yes_book_px(outcome, px) - mid2_px, qty, rp.min_qty)
        if not s:
            continue
        if (outcome is Outcome.YES) == (side is Side.BUY):
            q_one += s
        else:
            q_two += s
    return q_one, q_two


def q_min(q_one: Fraction, q_two: Fraction, mid2_px: int) -> Fraction:
    """The two-sided combination: single-sided scores at 1/c inside the mid band, nothing outside it."""
    lo, hi = min(q_one, q_two), max(q_one, q_two)
    if 2 * BAND_LO_PX <= mid2_px <= 2 * BAND_HI_PX:
        return max(lo, hi / SINGLE_SIDED_DIVISOR)
    return lo


def maker_q(orders: Iterable[OrderLike], mid2_px: int, rp: RewardParams) -> Fraction:
    """One maker's ``Q_min`` for one sample."""
    q_one, q_two = side_scores(orders, mid2_px, rp)
    return q_min(q_one, q_two, mid2_px)


def pool_shares(qs: Sequence[Fraction]) -> tuple[Fraction, ...]:
    """Each maker's share of a sample: ``Q_min / sum Q_min`` (all 0 when nobody scores)."""
    total = sum(qs, _ZERO)
    if total <= 0:
        return tuple(_ZERO for _ in qs)
    return tuple(q / total for q in qs)


def pool_share(ours: Fraction, others: Iterable[Fraction]) -> Fraction:
    """Our share of a sample given the competing makers' ``Q_min``."""
    total = ours + sum(others, _ZERO)
    return ours / total if total > 0 else _ZERO


def reward_usdc6(share: Fraction, pool_usdc6: Usdc6) -> Usdc6:
    """``share`` of a pool in micro-USDC, floored (the venue pays no fraction of a unit)."""
    return int(share * pool_usdc6)
