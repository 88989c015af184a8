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

Shared by the simulator, the emulator and live tracking (``docs/rewards.md``): ``book_scores`` scores
our orders against a displayed book that does not hold them (the competition taken as one maker),
``order_scoring`` says which single orders score, ``yes_levels_without`` takes our orders out of a
book that shows them, and ``estimate`` sums one market's tracking figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Final

import msgspec

from core.inventory import OrderLike
from core.units import PX_ONE, Outcome, Px, Qty, Side, Usdc6

#: Samples a day (one a minute): a sample pays ``share * daily pool / MINUTES_PER_DAY``.
MINUTES_PER_DAY: Final = 1440
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


def order_scoring(orders: Sequence[OrderLike], mid2_px: int, rp: RewardParams) -> tuple[bool, ...]:
    """Whether each of one maker's orders scores: its own ``S > 0`` and the maker's ``Q_min > 0``.

    ``S > 0`` is the size and distance rule. The second condition is the two-sided rule seen from one
    order: outside the [0.10, 0.90] mid band a maker quoting one side only has ``Q_min = 0``, so none
    of its orders earns and none is reported scoring (inside the band one side earns its third, so an
    order with ``S > 0`` always scores there).
    """
    scores = [
        order_score(rp.max_spread_px, 2 * yes_book_px(o, px) - mid2_px, qty, rp.min_qty)
        for o, _side, px, qty in orders
    ]
    if not any(scores) or maker_q(orders, mid2_px, rp) <= 0:
        return tuple(False for _ in orders)
    return tuple(s > 0 for s in scores)


def book_scores(
    ours: Sequence[OrderLike],
    bids: Iterable[tuple[Px, Qty]],
    asks: Iterable[tuple[Px, Qty]],
    rp: RewardParams,
) -> tuple[Fraction, Fraction, int]:
    """``(our Q_min, everyone's Q_min, twice the adjusted mid)`` of one sample.

    ``bids``/``asks`` are the displayed YES book's levels *without* our orders. The adjusted mid is
    taken on that book with our orders added to their levels (ours are in the book the venue sees).
    The competition is the displayed levels taken as one maker's orders (bids buy YES, asks sell YES),
    scored with the same ``maker_q``: the public book shows levels, not makers (an assumption,
    ``docs/rewards.md``). No two-sided book: ``(0, 0, 0)``.
    """
    bid_levels: dict[Px, Qty] = {}
    ask_levels: dict[Px, Qty] = {}
    for px, qty in bids:
        bid_levels[px] = bid_levels.get(px, 0) + qty
    for px, qty in asks:
        ask_levels[px] = ask_levels.get(px, 0) + qty
    theirs: list[OrderLike] = [(Outcome.YES, Side.BUY, px, q) for px, q in bid_levels.items()]
    theirs += [(Outcome.YES, Side.SELL, px, q) for px, q in ask_levels.items()]
    for outcome, side, px, qty in ours:
        if qty <= 0:
            continue
        levels = bid_levels if (outcome is Outcome.YES) == (side is Side.BUY) else ask_levels
        ypx = yes_book_px(outcome, px)
        levels[ypx] = levels.get(ypx, 0) + qty
    mid2 = adjusted_mid2_px(bid_levels.items(), ask_levels.items(), rp.min_qty)
    if mid2 <= 0:
        return _ZERO, _ZERO, 0
    q_ours = maker_q(ours, mid2, rp)
    return q_ours, q_ours + maker_q(theirs, mid2, rp), mid2


def yes_levels_without(
    levels: Iterable[tuple[Px, Qty]], ours: Iterable[OrderLike], *, bids: bool
) -> tuple[tuple[Px, Qty], ...]:
    """One side of a displayed YES book with our resting orders taken out (a level never below 0).

    For a book that shows our orders (the venue's): ``bids`` True takes out our YES bids and NO asks,
    False our YES asks and NO bids, each at its place on the YES book.
    """
    out: dict[Px, Qty] = {}
    for px, qty in levels:
        out[px] = out.get(px, 0) + qty
    for outcome, side, px, qty in ours:
        if ((outcome is Outcome.YES) == (side is Side.BUY)) != bids:
            continue
        ypx = yes_book_px(outcome, px)
        if ypx in out:
            out[ypx] = max(0, out[ypx] - qty)
    return tuple((px, q) for px, q in out.items() if q > 0)


class RewardEstimate(msgspec.Struct, frozen=True, kw_only=True):
    """One market's reward tracking figures at one moment (``estimate``).

    ``orders``/``qty``: our resting orders and their unfilled size; ``scoring_*`` those that score;
    ``share``: our fraction of the sample (``Q_min`` ours / everyone's) as a ppm integer;
    ``daily_usdc6``: the estimated accrual if the book stayed so all day (share x daily pool).
    """

    orders: int
    scoring_orders: int
    qty: Qty
    scoring_qty: Qty
    share_ppm: int
    daily_usdc6: Usdc6


def estimate(
    ours: Sequence[OrderLike], scoring: Sequence[bool], q_ours: Fraction, q_total: Fraction, rp: RewardParams
) -> RewardEstimate:
    """Sum one market's tracking figures: ``scoring[i]`` says whether ``ours[i]`` scores (the venue's
    answer live, ``order_scoring`` on paper); the share is ``q_ours / q_total`` of ``book_scores``."""
    share = pool_share(q_ours, [q_total - q_ours]) if q_total > 0 else _ZERO
    live = [(o, s) for o, s in zip(ours, scoring, strict=True) if o[3] > 0]
    return RewardEstimate(
        orders=len(live),
        scoring_orders=sum(1 for _, s in live if s),
        qty=sum(o[3] for o, _ in live),
        scoring_qty=sum(o[3] for o, s in live if s),
        share_ppm=int(share * 1_000_000),
        daily_usdc6=reward_usdc6(share, rp.daily_usdc6),
    )
