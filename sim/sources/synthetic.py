"""A seeded synthetic market generator: latent fair value, background makers, informed and noise takers.

Each market has a hidden *latent fair price* ``F``: a bounded diffusion with Poisson jumps, both
scaled by ``4p(1 - p)`` so that moves shrink toward 0 and 1. Background makers quote around a
*reference* ``R`` that follows ``F`` with a lag (``maker_lag_s``), so the displayed book is stale for a
while after every move. Takers are noise traders (random side) or, with probability
``informed_fraction``, informed: they buy when ``F`` is above the best ask (and sell when it is below
the best bid), never paying through ``F``. Because makers catch up with ``F`` afterwards, the mid
moves in the direction of informed trades: adverse selection is built in.

The generated tape is a consistent L2 book of the YES token:

* it opens with a ``BookSnapshot``;
* a maker add or cancel emits one level update (new level total);
* a taker emits, for each level it reaches, a trade print at that level's price followed by the
  level's new total; takers never empty a side and sweep at most ``max_sweep_levels`` levels;
* makers never cross the opposite best, so the book is never crossed or locked.

Time: actions (add, cancel, take) follow one another with exponential gaps whose mean is the number
of events the previous action emitted divided by ``events_per_s``, so a tape holds ``events_per_s``
events per second on average. Takers are ``taker_share`` of actions, cancels ``cancel_share`` of the
rest. An informed taker who sees no edge does nothing.

Crashes (``crashes``): from a given time the latent fair of one market moves by a given amount, at
once or evenly over a given time (a crash, a slide, or a spike); the makers follow with their lag
and the informed takers trade into every quote left behind, as after any jump. A crash draws
nothing from the random stream, so a market's tape is the same with or without another market's
crash.

Deterministic: every market draws from its own ``random.Random`` seeded from ``(seed, index)``.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right, insort
from typing import Annotated

import msgspec
from msgspec import Meta

from core.markets import MarketInfo
from core.messages import BookSnapshot, MarketResolved
from core.units import NS_PER_S, ORDER_QTY_STEP, PX_ONE, QTY_ONE, Outcome
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SELL, MarketTape, TickPx

__all__ = ["DEFAULT_START_TS_NS", "Crash", "SyntheticSource", "generate", "market_info", "market_name"]

#: 2026-07-10T00:00:00Z, the default start of synthetic tapes (any fixed instant would do).
DEFAULT_START_TS_NS = 1_783_641_600 * NS_PER_S
_STEPS_PER_SHARE = QTY_ONE // ORDER_QTY_STEP

_Frac = Annotated[float, Meta(ge=0, le=1)]
_PosFloat = Annotated[float, Meta(gt=0)]
_NonNegFloat = Annotated[float, Meta(ge=0)]


class Crash(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sudden move of one market's latent fair price: ``move_px`` (negative: down) at ``at_s``."""

    #: The market's index (``syn-01`` is 1).
    market: Annotated[int, Meta(ge=0, le=9_999)]
    #: Seconds after the tape's start.
    at_s: _NonNegFloat
    #: The move of the latent fair in Px (-3000: 30 cents down); the fair stays within one tick of 0 and 1.
    move_px: Annotated[int, Meta(ge=-10_000, le=10_000)]
    #: Over how long the move is spread evenly (0: all at once).
    over_s: _NonNegFloat = 0.0


class SyntheticSource(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="synthetic", tag_field="type"
):
    """Configuration of the synthetic generator (see the module docstring for the model)."""

    #: Number of markets, named ``syn-00``, ``syn-01``, ...
    markets: Annotated[int, Meta(ge=1, le=10_000)] = 4
    duration_s: _PosFloat = 3600.0
    #: Target density of book events (level updates + trade prints) per second and market.
    events_per_s: _PosFloat = 10.0
    start_ts_ns: Annotated[int, Meta(ge=0)] = DEFAULT_START_TS_NS
    #: Each market starts with its latent fair drawn uniformly on the tick grid in this range.
    start_px_min: Annotated[int, Meta(ge=1, le=9_999)] = 2_000
    start_px_max: Annotated[int, Meta(ge=1, le=9_999)] = 8_000
    #: Tick in Px, any the venue uses: 1000, 100, 50, 25, 10 or 1 (0.1 ... 0.0001).
    tick_px: TickPx = 100
    #: The venue's minimum order size in Qty (1e-6 share; 5 shares = 5_000_000), on the 0.01-share grid.
    min_qty: Annotated[int, Meta(ge=ORDER_QTY_STEP, multiple_of=ORDER_QTY_STEP)] = 5 * QTY_ONE
    #: Taker fee rate (0.04 style); ``MarketInfo.fee_rate_ppm`` gets ``round(fee_rate * 1e6)``.
    fee_rate: _Frac = 0.0
    #: Maker rebate (``feeSchedule.rebateRate``, 0.25 style); ``MarketInfo.rebate_ppm`` gets
    #: ``round(rebate_rate * 1e6)``.
    rebate_rate: _Frac = 0.0
    # --- latent fair value ---
    #: Diffusion volatility of the latent fair in Px per sqrt(second), at p = 0.5.
    vol_px_per_sqrt_s: _NonNegFloat = 3.0
    jumps_per_hour: _NonNegFloat = 12.0
    #: Mean absolute jump size in Px at p = 0.5 (exponential, random sign, scaled like the diffusion).
    jump_px: Annotated[int, Meta(ge=0, le=10_000)] = 150
    #: Time constant with which the makers' reference follows the latent fair (0 = instantly).
    maker_lag_s: _NonNegFloat = 10.0
    # --- book shape ---
    #: Price levels per side that makers quote, one tick apart behind their best quote.
    levels: Annotated[int, Meta(ge=1, le=100)] = 8
    #: Makers' best quotes sit this far from their reference (rounded outwards to the tick).
    half_spread_px: Annotated[int, Meta(ge=0, le=5_000)] = 50
    #: Depth profile: an add lands k ticks behind the best quote with weight ``depth_decay ** k``.
    depth_decay: Annotated[float, Meta(gt=0, le=1)] = 0.85
    #: Mean size of one maker add, in Qty (exponential, whole shares, at least one share).
    maker_qty_mean: Annotated[int, Meta(ge=QTY_ONE)] = 50 * QTY_ONE
    #: Share of maker actions that are cancels (the rest are adds).
    cancel_share: _Frac = 0.4
    # --- takers ---
    #: Share of actions that are taker arrivals.
    taker_share: _Frac = 0.1
    #: Share of takers that are informed (trade toward the latent fair).
    informed_fraction: _Frac = 0.3
    #: Mean taker size in Qty (exponential, whole shares, at least one share).
    taker_qty_mean: Annotated[int, Meta(ge=QTY_ONE)] = 20 * QTY_ONE
    max_sweep_levels: Annotated[int, Meta(ge=1, le=100)] = 3
    #: End each market with ``MarketResolved``: YES wins with probability final fair / 1.
    resolve: bool = False
    #: Sudden moves of the latent fair (see the module docstring).
    crashes: tuple[Crash, ...] = ()

    def __post_init__(self) -> None:
        """Check the cross-field rules."""
        for c in self.crashes:
            if c.market >= self.markets:
                raise ValueError(f"crashes: market {c.market} is not among the {self.markets} markets")
        if self.start_px_min > self.start_px_max:
            raise ValueError("start_px_min: must be <= start_px_max")
        lo = -(-self.start_px_min // self.tick_px) * self.tick_px
        if lo > self.start_px_max or lo >= PX_ONE:
            raise ValueError("start_px_min: no price on the tick grid between start_px_min and start_px_max")


def market_name(index: int) -> str:
    """The id of synthetic market ``index`` (``syn-00``, ``syn-01``, ...)."""
    return f"syn-{index:02d}"


def market_info(spec: SyntheticSource, index: int) -> MarketInfo:
    """``MarketInfo`` of synthetic market ``index``."""
    name = market_name(index)
    return MarketInfo(
        market=name,
        yes_token=f"{name}-yes",
        no_token=f"{name}-no",
        tick_px=spec.tick_px,
        min_qty=spec.min_qty,
        fee_rate_ppm=round(spec.fee_rate * 1_000_000),
        rebate_ppm=round(spec.rebate_rate * 1_000_000),
        question=f"Synthetic market {index}",
    )


def generate(spec: SyntheticSource, seed: int) -> list[MarketTape]:
    """Generate one tape per market; the same ``(spec, seed)`` always gives identical tapes."""
    tapes = [_market(spec, i, random.Random(f"synthetic:{seed}:{i}")) for i in range(spec.markets)]
    source: dict[str, object] = {
        "type": "synthetic",
        "synthetic": "everything: latent fair value with jumps, makers around a lagged copy of it, "
        f"noise and informed takers ({spec.informed_fraction:.0%} informed)",
    }
    for tape in tapes:
        tape.source = source
    return tapes


def _market(spec: SyntheticSource, index: int, rng: random.Random) -> MarketTape:
    info = market_info(spec, index)
    tape = MarketTape(info)
    tk = spec.tick_px
    top = PX_ONE - tk
    rand = rng.random
    gauss = rng.gauss
    log = math.log
    exp = math.exp
    sqrt = math.sqrt

    lo_i = -(-spec.start_px_min // tk)
    hi_i = min(spec.start_px_max, top) // tk
    fair = float(rng.randint(lo_i, hi_i) * tk)
    ref = fair
    half = float(spec.half_spread_px)
    levels = spec.levels
    weights = [spec.depth_decay**k for k in range(levels)]
    total_w = sum(weights)
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc / total_w)
    cum[-1] = 1.0
    # Means in shares: sizes are drawn as whole shares.
    maker_mean = spec.maker_qty_mean / QTY_ONE
    taker_mean = spec.taker_qty_mean / QTY_ONE

    # Displayed book: totals per price plus the sorted set of prices on each side.
    bids = [0] * (PX_ONE + 1)
    asks = [0] * (PX_ONE + 1)
    bid_pxs: list[int] = []
    ask_pxs: list[int] = []
    best_bid = _floor(ref - half, tk)
    best_ask = _ceil(ref + half, tk)
    best_bid = min(max(best_bid, tk), top - tk)
    best_ask = max(min(best_ask, top), best_bid + tk)
    for k in range(levels):
        bp, ap = best_bid - k * tk, best_ask + k * tk
        if bp >= tk:
            bids[bp] = QTY_ONE * (1 + int(-maker_mean * log(1.0 - rand())))
            bid_pxs.append(bp)
        if ap <= top:
            asks[ap] = QTY_ONE * (1 + int(-maker_mean * log(1.0 - rand())))
            ask_pxs.append(ap)
    bid_pxs.sort()
    ask_pxs.sort()
    t0 = spec.start_ts_ns
    tape.special(
        BookSnapshot(
            market=info.market,
            outcome=Outcome.YES,
            ts_ns=t0,
            bids=tuple((p, bids[p]) for p in reversed(bid_pxs)),
            asks=tuple((p, asks[p]) for p in ask_pxs),
            tick_px=tk,
            min_qty=spec.min_qty,
        )
    )

    ts_l: list[int] = []
    op_l: list[int] = []
    px_l: list[int] = []
    qty_l: list[int] = []
    ts_a, op_a, px_a, qty_a = ts_l.append, op_l.append, px_l.append, qty_l.append

    vol = spec.vol_px_per_sqrt_s
    jump_rate = spec.jumps_per_hour / 3600.0
    jump_mean = float(spec.jump_px)
    lag = spec.maker_lag_s
    duration = spec.duration_s
    mean_gap = 1.0 / spec.events_per_s
    p_taker = spec.taker_share
    p_cancel = p_taker + (1.0 - p_taker) * spec.cancel_share
    p_informed = spec.informed_fraction
    max_sweep = spec.max_sweep_levels
    lo_f, hi_f = float(tk), float(top)
    next_jump = -log(1.0 - rand()) / jump_rate if jump_rate > 0 else math.inf
    crashes = [c for c in spec.crashes if c.market == index]
    crashed = [0.0] * len(crashes)  # how much of each crash has happened

    t = 0.0
    n_prev = 1
    idle = 0
    while True:
        dt = -mean_gap * n_prev * log(1.0 - rand())
        t += dt
        if t >= duration:
            break
        ts = t0 + 1 + int(t * NS_PER_S)
        # Latent fair: bounded diffusion, then any jumps due by now; makers' reference follows.
        if vol:
            p = fair / PX_ONE
            fair += vol * 4.0 * p * (1.0 - p) * sqrt(dt) * gauss(0.0, 1.0)
        while next_jump <= t:
            p = fair / PX_ONE
            size = -jump_mean * 4.0 * p * (1.0 - p) * log(1.0 - rand())
            fair += size if rand() < 0.5 else -size
            next_jump += -log(1.0 - rand()) / jump_rate
        for k, c in enumerate(crashes):
            if t >= c.at_s and crashed[k] != c.move_px:
                done = c.move_px * (min(1.0, (t - c.at_s) / c.over_s) if c.over_s > 0 else 1.0)
                fair += done - crashed[k]
                crashed[k] = done
        fair = lo_f if fair < lo_f else hi_f if fair > hi_f else fair
        ref = fair if lag == 0 else ref + (fair - ref) * (1.0 - exp(-dt / lag))
        bb = bid_pxs[-1]
        ba = ask_pxs[0]
        n = 0
        u = rand()
        if u >= p_cancel:  # maker add
            k = bisect_right(cum, rand())
            if rand() < 0.5:
                px = int((ref - half) // tk) * tk - k * tk
                if px >= ba:
                    px = ba - tk
                px = max(px, tk)
                if px < ba:
                    q = bids[px]
                    if not q:
                        insort(bid_pxs, px)
                    q += QTY_ONE * (1 + int(-maker_mean * log(1.0 - rand())))
                    bids[px] = q
                    ts_a(ts)
                    op_a(OP_BID)
                    px_a(px)
                    qty_a(q)
                    n = 1
            else:
                px = -int(-(ref + half) // tk) * tk + k * tk
                if px <= bb:
                    px = bb + tk
                px = min(px, top)
                if px > bb:
                    q = asks[px]
                    if not q:
                        insort(ask_pxs, px)
                    q += QTY_ONE * (1 + int(-maker_mean * log(1.0 - rand())))
                    asks[px] = q
                    ts_a(ts)
                    op_a(OP_ASK)
                    px_a(px)
                    qty_a(q)
                    n = 1
        elif u >= p_taker:  # maker cancel: stale best quotes first, else any level
            if rand() < 0.5:
                pxs, book, op = bid_pxs, bids, OP_BID
                px = bb if bb > ref else pxs[int(rand() * len(pxs))]
                stale = bb > ref
            else:
                pxs, book, op = ask_pxs, asks, OP_ASK
                px = ba if ba < ref else pxs[int(rand() * len(pxs))]
                stale = ba < ref
            q = book[px]
            if len(pxs) > 1 and (stale or rand() < 0.3):
                new = 0
            else:
                # A partial cancel keeps a uniform fraction of q (drawn in 0.01 shares), in whole shares.
                new = int(q // ORDER_QTY_STEP * rand()) // _STEPS_PER_SHARE * QTY_ONE
                if new == 0:
                    # The last level halves instead, on the 0.01-share grid.
                    new = q // (2 * ORDER_QTY_STEP) * ORDER_QTY_STEP if len(pxs) == 1 else 0
            if new != q and (new or len(pxs) > 1):
                book[px] = new
                if not new:
                    pxs.remove(px)
                ts_a(ts)
                op_a(op)
                px_a(px)
                qty_a(new)
                n = 1
        else:  # taker
            if rand() < p_informed:
                if fair > ba:
                    buy, limit = True, fair
                elif fair < bb:
                    buy, limit = False, fair
                else:
                    buy, limit = True, -1.0  # no edge: an informed taker waits
            else:
                buy = rand() < 0.5
                limit = float(PX_ONE) if buy else 0.0
            left = QTY_ONE * (1 + int(-taker_mean * log(1.0 - rand())))
            swept = 0
            if buy:
                while left and swept < max_sweep and len(ask_pxs) > 1:
                    px = ask_pxs[0]
                    if px > limit:
                        break
                    q = asks[px]
                    take = q if q < left else left
                    q -= take
                    left -= take
                    asks[px] = q
                    ts_a(ts)
                    op_a(OP_BUY)
                    px_a(px)
                    qty_a(take)
                    ts_a(ts)
                    op_a(OP_ASK)
                    px_a(px)
                    qty_a(q)
                    n += 2
                    swept += 1
                    if not q:
                        del ask_pxs[0]
            else:
                while left and swept < max_sweep and len(bid_pxs) > 1:
                    px = bid_pxs[-1]
                    if px < limit:
                        break
                    q = bids[px]
                    take = q if q < left else left
                    q -= take
                    left -= take
                    bids[px] = q
                    ts_a(ts)
                    op_a(OP_SELL)
                    px_a(px)
                    qty_a(take)
                    ts_a(ts)
                    op_a(OP_BID)
                    px_a(px)
                    qty_a(q)
                    n += 2
                    swept += 1
                    if not q:
                        bid_pxs.pop()
        # An action that emitted nothing takes no time, so the density stays on target; a long run of
        # them (say, only informed takers without an edge) must still let time pass.
        idle = 0 if n else idle + 1
        n_prev = n if n or idle < 8 else 1

    tape.ts.extend(ts_l)
    tape.op.extend(op_l)
    tape.px.extend(px_l)
    tape.qty.extend(qty_l)
    if spec.resolve:
        end_ns = max(t0 + 1 + int(duration * NS_PER_S), tape.ts[-1])
        tape.special(MarketResolved(market=info.market, ts_ns=end_ns, yes_won=rand() < fair / PX_ONE))
    return tape


def _floor(px: float, tick: int) -> int:
    return int(px // tick) * tick


def _ceil(px: float, tick: int) -> int:
    return -int(-px // tick) * tick
