"""Hypothesis generators for the core's inputs: books, inventories, quoting parameters."""

from __future__ import annotations

import msgspec
from hypothesis import strategies as st

from core.book import BookView
from core.config import Config, FlowConfig, InventoryConfig, QuotingConfig, VolatilityConfig
from core.inventory import Inventory
from core.quoting import QuoteParams, quote_params
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, TICKS_PX, Outcome, Side, notional_usdc6

TICKS = TICKS_PX  # every tick the venue uses, 0.1 down to 0.0001


@st.composite
def book_views(draw: st.DrawFn, tick: int | None = None) -> BookView:
    """A two-sided, uncrossed top of book on the tick grid."""
    t = tick if tick is not None else draw(st.sampled_from(TICKS))
    n = PX_ONE // t
    bid_i = draw(st.integers(1, n - 2))
    ask_i = draw(st.integers(bid_i + 1, n - 1))
    return BookView(
        bid_px=bid_i * t,
        bid_qty=draw(st.integers(1, 10**5 * QTY_ONE)),
        ask_px=ask_i * t,
        ask_qty=draw(st.integers(1, 10**5 * QTY_ONE)),
        tick_px=t,
        min_qty=draw(st.sampled_from((1, 5, 15))) * QTY_ONE,
        ts_ns=10**18,
    )


@st.composite
def inventories(draw: st.DrawFn, max_qty: int = 2_000 * QTY_ONE) -> Inventory:
    """YES/NO holdings (any 1e-6 size, as fills come) bought at some price; cash consistent with them."""
    yes = draw(st.integers(0, max_qty))
    no = draw(st.integers(0, max_qty))
    yes_px = draw(st.integers(1, PX_ONE - 1))
    no_px = draw(st.integers(1, PX_ONE - 1))
    yes_cost, no_cost = notional_usdc6(yes_px, yes), notional_usdc6(no_px, no)
    return Inventory(
        yes_qty=yes,
        no_qty=no,
        cash_usdc6=-(yes_cost + no_cost),
        yes_cost_usdc6=yes_cost,
        no_cost_usdc6=no_cost,
    )


@st.composite
def configs(draw: st.DrawFn, skew: bool = True, cap_usdc: float | None = None) -> Config:
    """A valid strategy config across the quoting knobs."""
    levels = draw(st.integers(2, 4))
    base = draw(st.integers(1, 50))
    step = draw(st.integers(0, 50))
    sizes = tuple(float(base + i * step) for i in range(levels))
    pull = draw(st.integers(10, 1000))
    resume = draw(st.integers(0, pull - 1))
    widen = draw(st.integers(0, pull))
    sizing = draw(st.sampled_from(("shares", "usdc")))
    cap = cap_usdc if cap_usdc is not None else float(draw(st.integers(1, 2000)))
    return Config(
        quoting=QuotingConfig(
            fair_price=draw(st.sampled_from(("mid", "microprice"))),
            max_book_age_ms=0,
            max_book_spread_px=draw(st.none() | st.integers(1, PX_ONE)),
            levels=levels,
            half_spread_px=draw(st.integers(0, 500)),
            level_spacing_px=draw(st.integers(1, 300)),
            level_sizes_shares=sizes if sizing == "shares" else None,
            level_sizes_usdc=sizes if sizing == "usdc" else None,
            skew_px=draw(st.integers(0, 1000)) if skew else 0,
            improve_best_ticks=draw(st.none() | st.integers(0, 3)),
            sell_yes_via_buy_no=draw(st.booleans()),
            buy_yes_via_sell_no=draw(st.booleans()),
            volatility=VolatilityConfig(
                pull_threshold_px=pull, resume_threshold_px=resume, widen_threshold_px=widen
            ),
            flow=FlowConfig(
                one_sided_threshold=draw(st.floats(0.05, 0.95)),
                shrink_factor=draw(st.floats(0, 1)),
                min_flow_shares=0,
            ),
        ),
        inventory=InventoryConfig(
            per_market_ev_cap=cap,
            global_ev_cap=max(cap, 10_000.0),
            inventory_limit_shares=float(draw(st.integers(1, 5000))),
        ),
    )


@st.composite
def params(draw: st.DrawFn, skew: bool = True, cap_usdc: float | None = None) -> QuoteParams:
    return quote_params(draw(configs(skew=skew, cap_usdc=cap_usdc)))


def with_maker_only(p: QuoteParams, on: bool = True) -> QuoteParams:
    return msgspec.structs.replace(p, maker_only=on)


#: One of our orders as the exposure functions take it: sizes on the 0.01-share order grid.
orders = st.tuples(
    st.sampled_from(list(Outcome)),
    st.sampled_from(list(Side)),
    st.integers(1, PX_ONE - 1),
    st.integers(1, 100_000).map(lambda n: n * ORDER_QTY_STEP),
)
