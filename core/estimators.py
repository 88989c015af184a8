"""Pure online estimators: EWMA volatility of the mid (with a pull regime) and signed trade flow.

State in, state out; time is passed in as ``ts_ns``. Decay is by half-life in seconds, so the
estimates do not depend on how often events arrive.
"""

from __future__ import annotations

from typing import Final

from core.structs import FlowState, VolParams, VolState
from core.units import NS_PER_S, Qty, Side

_BUY: Final = Side.BUY


def update_vol(state: VolState, mid_px: float, ts_ns: int, p: VolParams) -> VolState:
    """Fold one mid sample into the estimate and update the pull regime."""
    if state.mid_px < 0:
        return VolState(mid_px=mid_px, mean_px=mid_px, ts_ns=ts_ns, pulled=state.pulled)
    dt_s = max(0, ts_ns - state.ts_ns) / NS_PER_S
    a = 1.0 - 0.5 ** (dt_s / p.halflife_s)
    dev = mid_px - state.mean_px
    var = (1.0 - a) * state.var_px2 + a * dev * dev
    mean = state.mean_px + a * dev
    vol = int(max(var**0.5, abs(mid_px - mean)))
    pulled = vol >= p.pull_threshold_px if not state.pulled else vol > p.resume_threshold_px
    return VolState(mid_px=mid_px, mean_px=mean, var_px2=var, ts_ns=ts_ns, vol_px=vol, pulled=pulled)


def decay_vol(state: VolState, ts_ns: int, p: VolParams) -> VolState:
    """Let time pass with no new mid (no two-sided book): the last mid stands in for the sample."""
    if state.mid_px < 0 or ts_ns <= state.ts_ns:
        return state
    return update_vol(state, state.mid_px, ts_ns, p)


def update_flow(state: FlowState, aggressor: Side, qty: Qty, ts_ns: int, halflife_s: float) -> FlowState:
    """Fold one trade (a market print or one of our fills, by the taker's side) into the flow."""
    return update_flow_permille(state, aggressor, qty, ts_ns, halflife_s, 0)[0]


def update_flow_permille(
    state: FlowState, aggressor: Side, qty: Qty, ts_ns: int, halflife_s: float, min_flow_qty: Qty
) -> tuple[FlowState, int]:
    """``update_flow`` and then ``flow_imbalance_permille`` of the new state at ``ts_ns``, in one call.

    Every market print does both: the new state is never older than ``ts_ns``, so the imbalance is
    the undecayed one (the same floats, the same rule, one call and no second look at the state).
    """
    # No decay at all (factor 1.0, exactly) when no time passed: prints often share an instant.
    last = state.ts_ns
    buy, sell = state.buy_qty, state.sell_qty
    if last and ts_ns > last:
        decay = 0.5 ** ((ts_ns - last) / NS_PER_S / halflife_s)
        buy *= decay
        sell *= decay
    elif last > ts_ns:
        ts_ns = last
    if aggressor is _BUY:
        buy += qty
    else:
        sell += qty
    total = buy + sell
    if total <= 0 or total < min_flow_qty:
        return FlowState(buy_qty=buy, sell_qty=sell, ts_ns=ts_ns), 0
    return FlowState(buy_qty=buy, sell_qty=sell, ts_ns=ts_ns), int(1000 * (buy - sell) / total)


def flow_imbalance_permille(state: FlowState, ts_ns: int, halflife_s: float, min_flow_qty: Qty) -> int:
    """Signed imbalance in [-1000, 1000]: +1000 is all buying (asks being lifted).

    Returns 0 while the decayed total is below ``min_flow_qty`` (too little flow to mean anything).
    """
    # Called right after ``update_flow`` at the same instant on every print: then no decay (1.0).
    last = state.ts_ns
    buy, sell = state.buy_qty, state.sell_qty
    if ts_ns > last:
        decay = 0.5 ** ((ts_ns - last) / NS_PER_S / halflife_s)
        buy *= decay
        sell *= decay
    total = buy + sell
    if total <= 0 or total < min_flow_qty:
        return 0
    return int(1000 * (buy - sell) / total)
