"""Hypothesis generators for the core's inputs: books, inventories, quoting parameters, risk state."""

from __future__ import annotations

import msgspec
from hypothesis import strategies as st

from core.book import BookView
from core.config import Config, FlowConfig, InventoryConfig, QuotingConfig, VolatilityConfig
from core.inventory import Inventory
from core.quoting import QuoteParams, quote_params
from core.risk import (
    BookCarry,
    BookObs,
    EventWindow,
    Halt,
    MarketCarry,
    MarketDay,
    MarketObs,
    MidWindow,
    RiskLimits,
    RiskReason,
    TradingState,
    record_events,
    record_mid,
    utc_day,
)
from core.units import NS_PER_S, ORDER_QTY_STEP, PX_ONE, QTY_ONE, TICKS_PX, Outcome, Side, notional_usdc6

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


# --- risk -------------------------------------------------------------------------------------------

#: A time in the middle of a UTC day (2026-08-01 12:00), so a few minutes either way stay in it.
RISK_NOW = 20_666 * 86_400 * NS_PER_S + 12 * 3_600 * NS_PER_S
USD = 1_000_000


@st.composite
def risk_limits(draw: st.DrawFn) -> RiskLimits:
    """Limits across their range, each optional rule on or off."""
    fast = draw(st.none() | st.integers(1, 2_000))
    pause = draw(st.none() | st.integers((fast or 0) + 1, 5_000))
    return RiskLimits(
        daily_loss_stop_usdc6=draw(st.integers(1, 2_000)) * USD,
        market_daily_loss_stop_usdc6=draw(st.integers(1, 500)) * USD,
        halt_book_on_market_loss=draw(st.booleans()),
        max_drawdown_usdc6=draw(st.none() | st.integers(1, 2_000).map(lambda n: n * USD)),
        fast_move_px=fast,
        fast_move_window_ns=draw(st.integers(1, 120)) * NS_PER_S,
        widen_px=draw(st.integers(0, 300)),
        pause_move_px=pause,
        inventory_hard_limit_qty=draw(st.none() | st.integers(1, 2_000).map(lambda n: n * QTY_ONE)),
        max_errors_per_min=draw(st.none() | st.integers(0, 20)),
        max_feed_age_ns=draw(st.none() | st.integers(1, 120).map(lambda n: n * NS_PER_S)),
        max_heartbeat_age_ns=draw(st.none() | st.integers(1, 30).map(lambda n: n * NS_PER_S)),
    )


@st.composite
def mid_windows(draw: st.DrawFn, ts_ns: int = RISK_NOW, window_ns: int | None = None) -> MidWindow:
    """A window fed with a few mids over the last two minutes (times in order, up to ``ts_ns``)."""
    w = MidWindow(window_ns=window_ns or draw(st.integers(1, 120)) * NS_PER_S)
    ages = sorted(draw(st.lists(st.integers(0, 120 * NS_PER_S), max_size=12)), reverse=True)
    for age in ages:
        w = record_mid(w, draw(st.integers(0, PX_ONE)), ts_ns - age)
    return w


@st.composite
def event_windows(draw: st.DrawFn, ts_ns: int = RISK_NOW) -> EventWindow:
    """Rejects and errors counted over the last two minutes."""
    w = EventWindow()
    for age in sorted(draw(st.lists(st.integers(0, 120 * NS_PER_S), max_size=8)), reverse=True):
        w = record_events(w, ts_ns - age, draw(st.integers(1, 10)))
    return w


states = st.sampled_from(list(TradingState))


@st.composite
def market_obs(
    draw: st.DrawFn, market: str, ts_ns: int = RISK_NOW, window_ns: int | None = None
) -> MarketObs:
    """One market's observation: inventory, mark, mid moves, errors, ages, drift and the operator."""
    drift = draw(st.sampled_from(("", "position drift: venue YES +5000000 NO +0 (1e-6 shares) vs ledger")))
    return MarketObs(
        market=market,
        inv=draw(inventories(max_qty=1_000 * QTY_ONE)),
        mark_px=draw(st.integers(0, PX_ONE)),
        moves=draw(st.none() | mid_windows(ts_ns, window_ns)),
        errors=draw(event_windows(ts_ns)),
        feed_age_ns=draw(st.none() | st.integers(0, 200 * NS_PER_S)),
        drift=drift,
        drift_qty=5 * QTY_ONE if drift else 0,
        operator=draw(st.sampled_from((TradingState.ACTIVE,) * 3 + tuple(TradingState))),
        operator_note="by hand",
    )


@st.composite
def market_carries(draw: st.DrawFn, ts_ns: int = RISK_NOW, halted: bool | None = None) -> MarketCarry:
    """A carry from earlier today (or none yet), latched or not."""
    day = draw(
        st.none()
        | st.builds(
            MarketDay,
            day=st.just(utc_day(ts_ns)),
            start_value_usdc6=st.integers(-500 * USD, 500 * USD),
            start_realized_usdc6=st.integers(-500 * USD, 500 * USD),
        )
    )
    latch = draw(st.booleans()) if halted is None else halted
    halt = Halt(reason=RiskReason(rule="operator", state=TradingState.HALTED, scope="market"), ts_ns=0)
    return MarketCarry(day=day, halt=halt if latch else None)


@st.composite
def book_obs(draw: st.DrawFn, ts_ns: int = RISK_NOW) -> BookObs:
    """Book-wide inputs: errors tied to no market, the heartbeat age and the operator's state."""
    return BookObs(
        errors=draw(event_windows(ts_ns)),
        heartbeat_age_ns=draw(st.none() | st.integers(0, 40 * NS_PER_S)),
        operator=draw(st.sampled_from((TradingState.ACTIVE,) * 3 + tuple(TradingState))),
        operator_note="by hand",
    )


@st.composite
def book_carries(draw: st.DrawFn, ts_ns: int = RISK_NOW) -> BookCarry:
    """The book's carry from earlier today: its peak PnL so far (>= 0), maybe a latch."""
    halt = Halt(reason=RiskReason(rule="operator", state=TradingState.HALTED, scope="book"), ts_ns=0)
    return BookCarry(
        day=utc_day(ts_ns),
        peak_pnl_usdc6=draw(st.integers(0, 1_000 * USD)),
        halt=halt if draw(st.booleans()) else None,
    )
