"""The numbers a market maker reads after a run: fills, volume, PnL and its parts, quoting quality.

PnL is computed on the YES-equivalent position (a NO share is short one YES plus 1 USDC), from the
venue's fills, so it does not depend on which token an order used:

* ``spread_capture``: each fill's edge against the mid at the time of the fill;
* ``fees``: taker fees paid (negative);
* ``rebates``: maker rebates credited per maker fill (``Fill.rebate_usdc6``: the market's
  ``rebateRate`` of the fill's fee-equivalent, an upper bound of what the venue's daily pro-rata
  pool pays, $1 minimum payout; ``core.units.maker_rebate_usdc6``), shown apart from fees;
* ``rewards``: liquidity rewards accrued by the once-a-minute samples (``sim.rewards``), floored to
  the micro-USDC; 0 in markets without a rewards program;
* ``resolution``: the jump from the last mid to the settlement value on the position held then;
* ``inventory_mtm``: the rest, i.e. what the mid's moves did to the inventory while it was held.

``total`` is the sum of the six: the account's cash and marked position, plus the rebates and the
rewards (which the venue pays separately, so the session's own cash does not hold them). With a rewards
program a market also reports ``rewards``: its samples, those where our orders scored and their
``scoring_fraction``; the totals add them over the markets with a program.

Sizes are Qty (1e-6 share). The cash is each fill's ``cash_usdc6`` (the venue's rounding, so the total
is what the account holds, to the micro-USDC); the spread capture and markouts are exact in ``Usdc10``
(``px * qty``), and the inventory part takes the sub-micro-USDC difference of odd fill sizes. Figures are
rounded to 6 decimals of USDC once, when reported. Every summary states its units (``UNITS``) and,
from a simulation, what its data is (``source``, and ``data`` per market: what is real, what is
synthetic and at what rate).
"""

from __future__ import annotations

from typing import Any, Final

from actors.risk import RiskMonitor
from core.risk import STATE_NAMES
from core.units import PX_DECIMALS, PX_ONE, QTY_ONE, SETTLE_PER_QTY_USDC6, USDC6_ONE, USDC10_PER_USDC6
from sim.rewards import RewardAccrual
from sim.runner import Lane
from venue.exchange import SimExchange
from venue.markouts import HORIZONS_S as MARKOUT_HORIZONS_S
from venue.markouts import Markouts

_USDC10_ONE = USDC6_ONE * USDC10_PER_USDC6
PNL_KEYS: Final = ("total", "spread_capture", "inventory_mtm", "fees", "rebates", "rewards", "resolution")

#: What the numbers of a summary are: ``value * scale`` is the amount in ``unit``; a field named like
#: one of ``applies_to`` (``*`` any prefix, ``a.*.b`` any key in between) is in that unit.
UNITS: Final[dict[str, dict[str, Any]]] = {
    "usdc": {
        "scale": "1",
        "unit": "USDC",
        "applies_to": ["*_usdc", "pnl_usdc.*", "markouts.*.usdc"],
    },
    "shares": {"scale": "1", "unit": "share", "applies_to": ["*_shares", "markouts.*.shares"]},
    "px": {
        "scale": "0." + "0" * (PX_DECIMALS - 1) + "1",
        "unit": "USDC per share",
        "applies_to": ["*_px", "markouts.*.px_per_share"],
    },
    "fraction": {"scale": "1", "unit": "fraction of the time", "applies_to": ["quote_uptime"]},
    "samples": {
        "scale": "1",
        "unit": "fraction of the reward samples",
        "applies_to": ["rewards.scoring_fraction", "per_market.*.rewards.scoring_fraction"],
    },
    "seconds": {"scale": "1", "unit": "second", "applies_to": ["wall_seconds"]},
}


def _usdc_half(v2_usdc10: int) -> float:
    # Twice an amount in Usdc10 -> USDC (int / int divides exactly, then rounds once).
    return round(v2_usdc10 / (2 * _USDC10_ONE), 6)


def merge_figures(merges: int, merged_qty: int, failures: int) -> dict[str, Any]:
    """Merges of YES+NO pairs: how many, the pairs merged (shares), the collateral they freed (USDC)."""
    return {
        "count": merges,
        "pairs_shares": merged_qty / QTY_ONE,
        "freed_usdc": round(merged_qty * SETTLE_PER_QTY_USDC6 / USDC6_ONE, 6),
        "failed": failures,
    }


def lane_summary(lane: Lane) -> dict[str, Any]:
    """Figures for one simulated market (``merges`` only where the session sent any)."""
    st = lane.session.stats
    figures = market_summary(
        lane.market,
        lane.exchange,
        len(lane.tape),
        lane.markouts,
        lane.resolution,
        {"decisions": st.decisions, "orders": st.places, "cancels": st.cancels, "rejects": st.rejects},
        lane.rewards,
    )
    if st.merges or st.merge_failures:
        figures["merges"] = merge_figures(st.merges, st.merged_qty, st.merge_failures)
    return figures


def market_summary(
    market: str,
    ex: SimExchange,
    events: int,
    mk: Markouts,
    res: tuple[int, bool, int] | None,
    counts: dict[str, int],
    rewards: RewardAccrual | None = None,
) -> dict[str, Any]:
    """Figures for one market from its simulated venue (simulation or paper trading).

    ``rewards``: the market's reward samples (``sim.rewards``); None or no program: no reward income.
    """
    fills = ex.fills
    net = 0  # YES-equivalent position in Qty
    cash = 0  # YES-equivalent cash in Usdc6
    capture2 = 0  # in Usdc10 times 2, like every ``*2`` below
    fees = 0  # in Usdc6
    rebates = 0  # in Usdc6
    volume_qty = volume_usdc10 = 0
    maker = taker = 0
    max_abs = 0
    net_at_res = None
    for f in fills:
        if res is not None and f.ts_ns > res[0] and net_at_res is None:
            net_at_res = net
        net += f.yes_side * f.qty
        cash -= f.yes_side * f.cash_usdc6 + f.fee_usdc6
        capture2 += f.yes_side * (f.mid2 - 2 * f.yes_px) * f.qty
        fees += f.fee_usdc6
        rebates += f.rebate_usdc6
        volume_qty += f.qty
        volume_usdc10 += f.yes_px * f.qty
        max_abs = max(max_abs, abs(net))
        if f.liquidity == "maker":
            maker += 1
        else:
            taker += 1
    if net_at_res is None:
        net_at_res = net
    b = ex.book
    # The mark: the book's mid if it ends two-sided, else the last two-sided mid it had.
    final_mid2 = (
        b.bid_px + b.ask_px if 0 <= b.bid_px < b.ask_px <= PX_ONE else max(ex.last_mid2, mk.last_mid2)
    )
    if res is not None:
        _, yes_won, mid2_before = res
        value2 = 2 * PX_ONE if yes_won else 0
        total2 = 2 * cash * USDC10_PER_USDC6 + net * value2
        resolution2 = net_at_res * (value2 - mid2_before) if mid2_before >= 0 else 0
    else:
        total2 = 2 * cash * USDC10_PER_USDC6 + net * max(final_mid2, 0)
        resolution2 = 0
    rebates2 = 2 * rebates * USDC10_PER_USDC6
    rewards2 = 2 * rewards.accrued_usdc6 * USDC10_PER_USDC6 if rewards is not None else 0
    total2 += rebates2 + rewards2
    spread2 = capture2
    fees2 = -2 * fees * USDC10_PER_USDC6
    inventory2 = total2 - spread2 - fees2 - rebates2 - rewards2 - resolution2
    duration = max(1, ex.last_ts - ex.first_ts) if ex.first_ts >= 0 else 1
    rewards_part = (
        {"rewards": reward_figures(rewards.samples, rewards.scored)} if rewards and rewards.samples else {}
    )
    markouts = {}
    for k, h in enumerate(MARKOUT_HORIZONS_S):
        q = mk.qty[k]
        markouts[f"{h}s"] = {
            "usdc": _usdc_half(mk.sum2[k]),
            "px_per_share": round(mk.sum2[k] / (2 * q), 2) if q else 0.0,
            "shares": q / QTY_ONE,
        }
    return {
        "market": market,
        "events": events,
        "fills": {"maker": maker, "taker": taker},
        "volume_shares": volume_qty / QTY_ONE,
        "volume_usdc": _usdc_half(2 * volume_usdc10),
        "pnl_usdc": {
            "total": _usdc_half(total2),
            "spread_capture": _usdc_half(spread2),
            "inventory_mtm": _usdc_half(inventory2),
            "fees": _usdc_half(fees2),
            "rebates": _usdc_half(rebates2),
            "rewards": _usdc_half(rewards2),
            "resolution": _usdc_half(resolution2),
        },
        "max_abs_inventory_shares": max_abs / QTY_ONE,
        "final_inventory_shares": net / QTY_ONE,
        "quote_uptime": round(ex.two_sided_ns / duration, 6),
        "avg_quoted_spread_px": round(ex.spread_px_ns / ex.two_sided_ns, 2) if ex.two_sided_ns else None,
        "markouts": markouts,
        **counts,
        **rewards_part,
        "_two_sided_ns": ex.two_sided_ns,
        "_spread_px_ns": ex.spread_px_ns,
        "_duration_ns": duration,
    }


def reward_figures(samples: int, scored: int) -> dict[str, Any]:
    """Reward samples, those where our orders scored, and the fraction that scored."""
    fraction = round(scored / samples, 6) if samples else 0.0
    return {"samples": samples, "scored": scored, "scoring_fraction": fraction}


def run_summary(lanes: list[Lane], risk: RiskMonitor | None = None) -> dict[str, Any]:
    """Totals over every simulated market plus the per-market figures, and what the data is.

    ``source`` holds the notes of the source the tapes came from (what is real and what synthetic,
    markets refused and why); each market's ``data`` holds its tape's ``meta`` (tick, synthetic flow
    and its rate...). With the risk manager's ``risk`` monitor: ``risk`` (``risk_summary``) and each
    market's ``risk_state``, ``halted_at_ns`` and ``halt``.
    """
    per = []
    for lane in lanes:
        m = lane_summary(lane)
        if lane.tape.meta:
            m["data"] = lane.tape.meta
        per.append(m)
    risk_part = risk_summary(risk) if risk is not None else None
    if risk_part is not None:
        for m in per:
            first = next((h for h in risk_part["halts"] if h["market"] == m["market"]), None)
            m["risk_state"] = risk_part["final"].get(m["market"], "active")
            m["halted_at_ns"] = first["ts_ns"] if first is not None else None
            m["halt"] = first["text"] if first is not None else ""
    sources: list[dict[str, object]] = []
    for lane in lanes:
        src = lane.tape.source
        if src and not any(s is src for s in sources):
            sources.append(src)
    out = totals(per)
    if risk_part is not None:
        out["risk"] = risk_part
    if sources:
        out["source"] = sources[0] if len(sources) == 1 else sources
    return out


def totals(per: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over per-market figures (``market_summary`` results), which it includes."""
    two_sided = sum(m.pop("_two_sided_ns") for m in per)
    spread_ns = sum(m.pop("_spread_px_ns") for m in per)
    duration = sum(m.pop("_duration_ns") for m in per)
    markouts = {}
    for h in MARKOUT_HORIZONS_S:
        key = f"{h}s"
        shares = sum(m["markouts"][key]["shares"] for m in per)
        usdc = sum(m["markouts"][key]["usdc"] for m in per)
        markouts[key] = {
            "usdc": round(usdc, 6),
            "px_per_share": round(usdc / shares * PX_ONE, 2) if shares else 0.0,
            "shares": shares,
        }
    rewarded = [m["rewards"] for m in per if "rewards" in m]
    reward_part = (
        {"rewards": reward_figures(sum(r["samples"] for r in rewarded), sum(r["scored"] for r in rewarded))}
        if rewarded
        else {}
    )
    merged = [m["merges"] for m in per if "merges" in m]
    merge_part = (
        {
            "merges": {
                "count": sum(x["count"] for x in merged),
                "pairs_shares": round(sum(x["pairs_shares"] for x in merged), 6),
                "freed_usdc": round(sum(x["freed_usdc"] for x in merged), 6),
                "failed": sum(x["failed"] for x in merged),
            }
        }
        if merged
        else {}
    )
    return {
        "markets": len(per),
        "events_processed": sum(m["events"] for m in per),
        "fills": {
            "maker": sum(m["fills"]["maker"] for m in per),
            "taker": sum(m["fills"]["taker"] for m in per),
        },
        "volume_shares": round(sum(m["volume_shares"] for m in per), 2),
        "volume_usdc": round(sum(m["volume_usdc"] for m in per), 6),
        "pnl_usdc": {k: round(sum(m["pnl_usdc"][k] for m in per), 6) for k in PNL_KEYS},
        "max_abs_inventory_shares": max((m["max_abs_inventory_shares"] for m in per), default=0.0),
        "quote_uptime": round(two_sided / duration, 6) if duration else 0.0,
        "avg_quoted_spread_px": round(spread_ns / two_sided, 2) if two_sided else None,
        "markouts": markouts,
        **reward_part,
        **merge_part,
        "units": UNITS,
        "notes": {
            "pnl_usdc": "total = spread_capture + inventory_mtm + fees + rebates + rewards + resolution",
            "rewards": "liquidity rewards: our share of each market's pool at one sample a simulated minute "
            "(seeded second), against the displayed book as one competing maker (docs/rewards.md)",
            "rebates": "maker rebates, an upper bound: the market's rebateRate of each maker fill's "
            "fee-equivalent; the venue pays its pool pro rata daily, $1 minimum",
            "merges": "YES+NO pairs merged into collateral (1 USDC a pair): cash now instead of at "
            "resolution; the PnL is unchanged by a merge (a pair is worth 1 whatever wins)",
        },
        "per_market": per,
    }


def risk_summary(monitor: RiskMonitor) -> dict[str, Any]:
    """What the risk manager did in a run: its final states, every HALT and PAUSE with its numbers.

    ``halts`` and ``pauses`` list each change into that state (``ts_ns``, ``market`` ("" the book),
    ``rule``, ``observed``/``limit`` in ``unit``, ``text``); ``counts`` counts every change by the
    state it went to (``widened``: a fast move widening the spread of an active market).
    """
    history = sorted(monitor.history or (), key=lambda h: (h.ts_ns, h.market))

    def entry(h: Any) -> dict[str, Any]:
        return {
            "ts_ns": h.ts_ns,
            "market": h.market,
            "from": h.from_state,
            "rule": h.rule,
            "observed": h.observed,
            "limit": h.limit,
            "unit": h.unit,
            "text": h.text,
        }

    counts = dict.fromkeys(STATE_NAMES, 0)
    counts["widened"] = 0
    for h in history:
        counts["widened" if h.state == "active" and h.rule == "fast_move" else h.state] += 1
    view = monitor.view(monitor.last_ts_ns)
    return {
        "book_state": view.book_state,
        "final": {m.market: m.state for m in view.markets},
        "halts": [entry(h) for h in history if h.state == "halted"],
        "pauses": [entry(h) for h in history if h.state == "paused"],
        "counts": counts,
        "limits": {
            "daily_loss_stop_usdc": monitor.limits.daily_loss_stop_usdc6 / USDC6_ONE,
            "market_daily_loss_stop_usdc": monitor.limits.market_daily_loss_stop_usdc6 / USDC6_ONE,
            "halt_scope": "book" if monitor.limits.halt_book_on_market_loss else "market",
        },
    }


def pnl_line(pnl: dict[str, float]) -> str:
    """The PnL and its parts for people (``pnl_usdc`` of a summary), rebates apart from fees."""
    return (
        f"{pnl['total']:+,.2f} USDC = spread {pnl['spread_capture']:+,.2f} + inventory "
        f"{pnl['inventory_mtm']:+,.2f} + fees {pnl['fees']:+,.2f} + rebates {pnl['rebates']:+,.2f} "
        f"+ rewards {pnl.get('rewards', 0.0):+,.2f} + resolution {pnl['resolution']:+,.2f}"
    )


def data_lines(s: dict[str, Any]) -> list[str]:
    """What the simulated data is, for people: real and synthetic parts, flow rates, refusals."""
    src = s.get("source")
    if not isinstance(src, dict):
        return []
    lines = []
    if "real" in src:
        lines.append(f"data     real: {src['real']}")
    if "synthetic" in src:
        lines.append(f"         synthetic: {src['synthetic']}")
    for m in s.get("per_market", []):
        flow = m.get("data", {}).get("synthetic_flow")
        if flow:
            lines.append(
                f"         {m['market']}: tick {m['data']['tick_px'] / PX_ONE:g} ({m['data']['tick']}), "
                f"synthetic takers {flow['takers_per_hour']:g}/h ({flow['basis']})"
            )
    for r in src.get("refused", []):
        lines.append(f"         refused {r['market']}: {r['reason']}")
    return lines
