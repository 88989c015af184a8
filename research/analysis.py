"""What a run did over time, computed from ``research.runlog.Run`` on every event (never on a sample).

PnL follows ``sim.summary`` on the YES-equivalent position: ``total = cash + position x mark +
rebates``, split into spread capture (each fill's edge against the mid then), fees, rebates,
resolution (the jump from the last mid to 0/1 on the position then held) and inventory
mark-to-market (the rest). Here the mid is the displayed book's as the log shows it; the simulator's
venue marks its own copy of the book, less the liquidity we used, so the split can differ from
``summary.json`` by a few cents where we took the touch (``consistency`` says by how much). The log
has no maker-rebate figure per fill: when ``summary.json`` gives a market's rebate total it is spread
over the maker fills in proportion to their fee-equivalent ``qty x p x (1 - p)``, which is how the
rebate is defined (``core.units.maker_rebate_usdc6``); without it rebates count as 0 and ``notes``
says so.

Time series for pictures are evaluated on a grid (``grid``), step functions are returned whole and
thinned by the chart code; the figures (``figures``) use every fill and every change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from core.units import NS_PER_S, PX_ONE, QTY_ONE, USDC6_ONE
from research.runlog import I64, NO_PX, MarketLog, Run, Steps

F64 = npt.NDArray[np.float64]
#: Markout horizons of the report's curves, in seconds (0: the edge at the fill itself).
MARKOUT_HORIZONS_S: Final = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
PNL_PARTS: Final = ("spread_capture", "inventory_mtm", "fees", "rebates", "rewards", "resolution")
GRID_POINTS: Final = 1200
BUCKETS: Final = 120


def mid2_steps(top: Steps) -> tuple[I64, I64]:
    """Twice the mark at each change of the book: the two-sided mid, else the last one (-1 before any)."""
    ok = (top.bid_px >= 0) & (top.ask_px >= 0) & (top.bid_px < top.ask_px)
    mid2 = np.where(ok, top.bid_px + top.ask_px, -1)
    idx = np.where(ok, np.arange(len(mid2)), -1)
    last = np.maximum.accumulate(idx) if len(idx) else idx
    held = np.where(last >= 0, mid2[np.maximum(last, 0)], -1)
    return top.ts_ns, held.astype(np.int64)


def at(ts: I64, values: npt.NDArray[Any], when: I64, before: float | int = -1) -> npt.NDArray[Any]:
    """The step function (``ts``, ``values``) at each time of ``when`` (``before`` earlier than its start)."""
    i = np.searchsorted(ts, when, side="right") - 1
    out = values[np.maximum(i, 0)] if len(values) else np.full(len(when), before)
    return np.where(i >= 0, out, before)


def integral(ts: I64, values: npt.NDArray[Any], when: I64) -> F64:
    """The integral of a step function from its start to each time of ``when`` (value x ns)."""
    if not len(ts):
        return np.zeros(len(when))
    v = values.astype(np.float64)
    seg = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(ts).astype(np.float64))))
    i = np.searchsorted(ts, when, side="right") - 1
    j = np.maximum(i, 0)
    out = seg[j] + v[j] * (when - ts[j]).astype(np.float64)
    return np.where(i >= 0, out, 0.0)


def share_in_buckets(ts: I64, on: npt.NDArray[Any], edges: I64) -> F64:
    """The share of each bucket (between consecutive ``edges``) during which ``on`` held."""
    f = integral(ts, on, edges)
    width = np.diff(edges).astype(np.float64)
    return np.divide(np.diff(f), width, out=np.zeros(len(width)), where=width > 0)


@dataclass
class MarketAnalysis:
    """One market's series and figures (see the module docstring)."""

    market: str
    #: Inventory (YES-equivalent shares) after each fill, with the fill times.
    inv_ts: I64
    inv_shares: F64
    #: PnL and its parts in USDC on the run's grid.
    pnl: dict[str, F64]
    #: Final PnL parts in USDC, from every fill.
    pnl_final: dict[str, float]
    #: Markout per horizon: (cents per share, shares measured).
    markouts: dict[float, tuple[float, float]]
    #: Per bucket: fills, share of time two-sided, share at a cap, share without a decided quote.
    fills_per_bucket: F64
    uptime_per_bucket: F64
    caps_per_bucket: F64
    no_quote_per_bucket: F64
    figures: dict[str, Any]
    #: Twice the mark (the mid, or the last one) at each change of the book.
    mid2_ts: I64
    mid2: I64


@dataclass
class Analysis:
    """A run's analysis: the grid, the bucket edges, each market's ``MarketAnalysis`` and notes."""

    run: Run
    grid: I64
    edges: I64
    markets: dict[str, MarketAnalysis]
    notes: list[str] = field(default_factory=list)

    def total_pnl(self) -> dict[str, F64]:
        """PnL and its parts summed over the markets, on the grid."""
        out = {k: np.zeros(len(self.grid)) for k in ("total", *PNL_PARTS)}
        for m in self.markets.values():
            for k, v in out.items():
                out[k] = v + m.pnl[k]
        return out


def _summary_market(run: Run, market: str) -> dict[str, Any] | None:
    if not run.summary:
        return None
    for m in run.summary.get("per_market", []):
        if isinstance(m, dict) and m.get("market") == market:
            return m
    return None


def _rebates_usdc6(m: MarketLog, total_usdc: float | None) -> npt.NDArray[np.float64]:
    # Each maker fill's share of the market's rebate total, by fee-equivalent qty * p * (1 - p).
    f = m.fills
    if total_usdc is None or not len(f):
        return np.zeros(len(f))
    w = np.where(f.maker, f.qty.astype(np.float64) * f.yes_px * (PX_ONE - f.yes_px), 0.0)
    s = w.sum()
    return w / s * total_usdc * USDC6_ONE if s > 0 else np.zeros(len(f))


def analyse_market(run: Run, m: MarketLog, grid: I64, edges: I64) -> MarketAnalysis:
    """One market's analysis on the run's ``grid`` and bucket ``edges``."""
    f = m.fills
    sm = _summary_market(run, m.market)
    rebate_total = sm["pnl_usdc"]["rebates"] if sm else None
    mts, mid2 = mid2_steps(m.top)
    if not (m.deltas or m.trades) and m.fill_mid2 is not None and len(f):
        # No market data between snapshots in the log: mark at the venue's mid at each of our fills.
        mts = np.concatenate((mts, f.ts_ns))
        mid2 = np.concatenate((mid2, m.fill_mid2))
        order = np.argsort(mts, kind="stable")
        mts, mid2 = mts[order], mid2[order]
    # Cumulative positions and cash after each fill (index 0: before any fill).
    signed_qty = f.yes_side * f.qty
    net = np.concatenate(([0], np.cumsum(signed_qty)))
    cash = np.concatenate(([0], np.cumsum(-(f.yes_side * f.cash_usdc6) - f.fee_usdc6)))
    fees = np.concatenate(([0], np.cumsum(-f.fee_usdc6)))
    rebate_each = _rebates_usdc6(m, rebate_total)
    rebates = np.concatenate(([0.0], np.cumsum(rebate_each)))
    if m.fill_mid2 is not None:  # the simulated venue's own mark at each fill (venue_marks.json)
        fill_mid2 = m.fill_mid2
    else:
        fill_mid2 = at(mts, mid2, f.ts_ns)
        fill_mid2 = np.where(fill_mid2 >= 0, fill_mid2, 2 * f.yes_px)  # no mid: no edge (sim.summary)
    edge2 = f.yes_side * (fill_mid2 - 2 * f.yes_px) * f.qty  # Usdc10 x 2, exact
    capture2 = np.concatenate(([0], np.cumsum(edge2)))
    usdc10 = float(USDC6_ONE * 10_000)
    reward_acc = m.reward_accrued_usdc6 if len(m.reward_ts) else np.zeros(1, np.int64)

    def pnl_at(when: I64) -> dict[str, F64]:
        k = np.searchsorted(f.ts_ns, when, side="right")
        mark2 = at(mts, mid2, when).astype(np.float64)
        mark2 = np.where(mark2 >= 0, mark2, 0.0)
        res = np.zeros(len(when))
        if m.resolved is not None:
            r_ts, yes_won = m.resolved
            value2 = 2.0 * PX_ONE if yes_won else 0.0
            after = when >= r_ts
            k_res = int(np.searchsorted(f.ts_ns, r_ts, side="right"))
            before = (
                m.resolution_mid2
                if m.resolution_mid2 is not None
                else at(mts, mid2, np.asarray([r_ts - 1], np.int64))[0]
            )
            jump = net[k_res] * (value2 - before) / (2 * usdc10) if before >= 0 else 0.0
            mark2 = np.where(after, value2, mark2)
            res = np.where(after, jump, 0.0)
        # Rewards accrued by the samples up to ``when`` (each ``reward`` record holds the running sum).
        kr = np.searchsorted(m.reward_ts, when, side="right")
        rew = np.where(kr > 0, reward_acc[np.maximum(kr - 1, 0)], 0) / USDC6_ONE
        total = cash[k] / USDC6_ONE + net[k] * mark2 / (2 * usdc10) + rebates[k] / USDC6_ONE + rew
        spread = capture2[k] / (2 * usdc10)
        fee = fees[k] / USDC6_ONE
        reb = rebates[k] / USDC6_ONE
        return {
            "total": total,
            "spread_capture": spread,
            "fees": fee,
            "rebates": reb,
            "rewards": rew,
            "resolution": res,
            "inventory_mtm": total - spread - fee - reb - rew - res,
        }

    pnl = pnl_at(grid)
    end = np.asarray([max(run.end_ns, grid[-1] if len(grid) else 0)], np.int64)
    if m.final_mid2 is not None and m.resolved is None:  # the venue's last mark, as the summary
        mts = np.concatenate((mts, end))
        mid2 = np.concatenate((mid2, [m.final_mid2]))
    final = {k: round(float(v[0]), 6) for k, v in pnl_at(end).items()}
    # Markouts: how the mark moved after each fill, against the fill's price (positive is good).
    markouts: dict[float, tuple[float, float]] = {}
    last_data = int(mts[-1]) if len(mts) else -1
    for h in MARKOUT_HORIZONS_S:
        t = f.ts_ns + round(h * NS_PER_S)
        later = at(mts, mid2, t)
        ok = (later >= 0) & (t <= max(last_data, run.end_ns))
        if m.resolved is not None:
            ok &= t < m.resolved[0]
        qty = f.qty[ok]
        shares = float(qty.sum()) / QTY_ONE
        s2 = float((f.yes_side[ok] * (later[ok] - 2 * f.yes_px[ok]) * qty).sum())
        markouts[h] = (s2 / (2 * float(qty.sum())) / 100 if qty.sum() else float("nan"), shares)
    # Buckets: fills, two-sided time, time at a cap, time without a decided quote.
    q = m.quotes
    two_sided = ((q.bid_px != NO_PX) & (q.ask_px != NO_PX)).astype(np.int64)
    d_ts = np.asarray([d.ts_ns for d in m.decisions], np.int64)
    at_cap = np.asarray([_at_cap(d.record) for d in m.decisions], np.int64)
    no_quote = np.asarray([not d.record.get("quote", True) for d in m.decisions], np.int64)
    fills_b = np.histogram(f.ts_ns, bins=edges)[0].astype(np.float64) if len(edges) > 1 else np.zeros(0)
    span = max(1, run.end_ns - run.start_ns)
    ends = np.asarray([run.start_ns, run.end_ns], np.int64)
    inv_sh = net[1:] / QTY_ONE
    figures: dict[str, Any] = {
        "fills": {"maker": int(f.maker.sum()), "taker": int((~f.maker).sum())},
        "volume_shares": float(f.qty.sum()) / QTY_ONE,
        "pnl_usdc": final,
        "max_abs_inventory_shares": float(np.abs(inv_sh).max()) if len(inv_sh) else 0.0,
        "final_inventory_shares": float(net[-1]) / QTY_ONE,
        "quote_uptime": round(float(np.diff(integral(q.ts_ns, two_sided, ends))[0]) / span, 6),
        "time_at_caps": round(float(np.diff(integral(d_ts, at_cap, ends))[0]) / span, 6),
        "time_without_quote": round(float(np.diff(integral(d_ts, no_quote, ends))[0]) / span, 6),
        "fills_per_hour": round(len(f) / (span / NS_PER_S / 3600), 2),
        "decisions": len(m.decisions),
        "orders": m.places,
        "cancels": m.cancels,
        "rejects": m.rejects,
    }
    return MarketAnalysis(
        market=m.market,
        inv_ts=f.ts_ns,
        inv_shares=inv_sh,
        pnl=pnl,
        pnl_final=final,
        markouts=markouts,
        fills_per_bucket=fills_b,
        uptime_per_bucket=share_in_buckets(q.ts_ns, two_sided, edges),
        caps_per_bucket=share_in_buckets(d_ts, at_cap, edges),
        no_quote_per_bucket=share_in_buckets(d_ts, no_quote, edges),
        figures=figures,
        mid2_ts=mts,
        mid2=mid2,
    )


def _at_cap(record: dict[str, Any]) -> bool:
    trims = record.get("reasons", {}).get("trims", ())
    return any(isinstance(t, str) and t.endswith("(cap)") for t in trims)


def analyse(run: Run, grid_points: int = GRID_POINTS, buckets: int = BUCKETS) -> Analysis:
    """Analyse every market of ``run`` (see the module docstring)."""
    start, end = run.start_ns, max(run.end_ns, run.start_ns + 1)
    grid = np.linspace(start, end, grid_points).astype(np.int64)
    edges = np.linspace(start, end, buckets + 1).astype(np.int64)
    markets = {k: analyse_market(run, m, grid, edges) for k, m in run.markets.items()}
    a = Analysis(run=run, grid=grid, edges=edges, markets=markets)
    if run.summary is None:
        a.notes.append("no summary.json: maker rebates are not in the log and count as 0 here")
    if run.market_data:
        a.notes.append(
            f"market lines and markouts from {run.market_data} (the session logs no market data; venue "
            "timestamps against the session's clock)"
        )
    elif not run.inputs_logged:
        a.notes.append(
            "the run has no market data between book snapshots (a session that does not log its feed, or "
            "a simulation without its input.json): marks are the venue's mid at our fills where the run "
            "has them, and the market's lines are mostly missing"
        )
    return a


def consistency(a: Analysis) -> dict[str, float]:
    """Per PnL part, the largest gap in USDC between this analysis and ``summary.json`` (empty: none)."""
    if not a.run.summary:
        return {}
    gaps: dict[str, float] = {}
    for m in a.markets.values():
        sm = _summary_market(a.run, m.market)
        if not sm:
            continue
        for k, v in m.pnl_final.items():
            gaps[k] = max(gaps.get(k, 0.0), abs(v - float(sm["pnl_usdc"].get(k, 0.0))))
    return gaps
