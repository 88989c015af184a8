"""``report.html``: one self-contained page about a run (no script, no server, no network).

It shows PnL over time split into its parts, inventory per market, our quotes against the market's
best bid, ask and mid, markout curves, fill rates, quote uptime, time at the caps, and a per-market
table. The run is read through ``research.runlog.read_run`` and analysed by ``research.analysis``;
the charts come from ``research.svg`` (why SVG: see there). The figures in the tables are the
simulator's ``summary.json`` where the run has one (the same numbers ``polymm sim`` prints), else
computed from the log; pictures are thinned to the pixel, numbers never.

``write_report`` is what ``polymm report`` and ``polymm sim`` call; ``write_session_report`` is the
hook for paper and dry-run sessions (it never raises: a session's shutdown must not fail on a report).
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Final

import numpy as np

from core.units import NS_PER_S, PX_ONE
from research.analysis import MARKOUT_HORIZONS_S, PNL_PARTS, Analysis, analyse, consistency
from research.runlog import Run, RunFormatError, read_run
from research.svg import CSS as CHART_CSS
from research.svg import Dots, Line, chart, color

log = logging.getLogger(__name__)

REPORT_NAME: Final = "report.html"
#: Markets drawn one chart each (quotes against the market); the table lists every market.
MAX_MARKET_CHARTS: Final = 24
#: Fill markers drawn per side per market chart (the fill counts in the table are all fills).
MAX_FILL_MARKERS: Final = 300
_PART_LABEL: Final = {
    "total": "total",
    "spread_capture": "spread capture",
    "inventory_mtm": "inventory mark-to-market",
    "fees": "fees",
    "rebates": "rebates",
    "rewards": "rewards",
    "resolution": "resolution",
}
_PART_COLOR: Final = {
    "total": "#000000",
    "spread_capture": "#0072B2",
    "inventory_mtm": "#E69F00",
    "fees": "#D55E00",
    "rebates": "#009E73",
    "rewards": "#56B4E9",
    "resolution": "#CC79A7",
}

PAGE_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;margin:24px auto;
max-width:1000px;padding:0 12px}
h1{font-size:20px;margin:0 0 4px 0} h2{font-size:16px;margin:26px 0 8px 0;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f6f6f6;position:sticky;top:0} td:first-child,th:first-child{text-align:left}
.meta td{text-align:left} .meta td:first-child{color:#666}
.wide{overflow-x:auto;max-width:100%} .muted{color:#666;font-size:12.5px}
.pos{color:#0a7a3a} .neg{color:#b3261e} code{font-size:12.5px}
"""


def _usdc(v: float) -> str:
    return f"{v:+,.2f}"


def _cls(v: float) -> str:
    return "pos" if v > 0 else "neg" if v < 0 else ""


def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def _opt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_S, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _price(v: float) -> str:
    return f"{v:.2f}" if abs(v * 100 - round(v * 100)) < 1e-9 else f"{v:.3f}"


def _per_market_rows(a: Analysis) -> list[dict[str, Any]]:
    # One row per market: the summary's figures where it has them, the log's for the rest.
    sm = {m["market"]: m for m in (a.run.summary or {}).get("per_market", []) if isinstance(m, dict)}
    rows = []
    for name, m in a.markets.items():
        fig = dict(m.figures)
        s = sm.get(name)
        row: dict[str, Any] = {
            "market": name,
            "maker": fig["fills"]["maker"],
            "taker": fig["fills"]["taker"],
            "fills_per_hour": fig["fills_per_hour"],
            "volume_shares": fig["volume_shares"],
            "pnl": dict(fig["pnl_usdc"]),
            "max_inv": fig["max_abs_inventory_shares"],
            "final_inv": fig["final_inventory_shares"],
            "uptime": fig["quote_uptime"],
            "caps": fig["time_at_caps"],
            "no_quote": fig["time_without_quote"],
            "spread_c": None,
            "markouts": {f"{h:g}s": m.markouts[h][0] for h in (1.0, 10.0, 60.0)},
            "decisions": fig["decisions"],
            "orders": fig["orders"],
            "cancels": fig["cancels"],
            "rejects": fig["rejects"],
        }
        if s:
            row.update(
                maker=s["fills"]["maker"],
                taker=s["fills"]["taker"],
                volume_shares=s["volume_shares"],
                pnl=dict(s["pnl_usdc"]),
                max_inv=s["max_abs_inventory_shares"],
                final_inv=s.get("final_inventory_shares", row["final_inv"]),
                uptime=s["quote_uptime"],
                spread_c=(
                    s["avg_quoted_spread_px"] / 100 if s.get("avg_quoted_spread_px") is not None else None
                ),
                markouts={k: v["px_per_share"] / 100 for k, v in s["markouts"].items()},
            )
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    mk_keys = list(rows[0]["markouts"]) if rows else []
    head = (
        "<tr><th>market</th><th>fills maker/taker</th><th>fills/h</th><th>volume sh</th><th>PnL</th>"
        "<th>spread</th><th>inventory</th><th>fees</th><th>rebates</th><th>rewards</th><th>resolution</th>"
        "<th>max |inv| sh</th><th>final inv sh</th><th>uptime</th><th>at caps</th><th>no quote</th>"
        "<th>avg spread c</th>"
        + "".join(f"<th>markout +{k} c/sh</th>" for k in mk_keys)
        + "<th>decisions</th><th>orders</th><th>cancels</th><th>rejects</th></tr>"
    )
    body = []
    for r in rows:
        p = r["pnl"]
        cells = [
            f"<td>{escape(r['market'])}</td>",
            f"<td>{r['maker']:,} / {r['taker']:,}</td>",
            f"<td>{r['fills_per_hour']:,.1f}</td>",
            f"<td>{r['volume_shares']:,.2f}</td>",
            *(f'<td class="{_cls(p[k])}">{_usdc(p[k])}</td>' for k in ("total", *PNL_PARTS)),
            f"<td>{r['max_inv']:,.2f}</td>",
            f"<td>{r['final_inv']:,.2f}</td>",
            f"<td>{_pct(r['uptime'])}</td>",
            f"<td>{_pct(r['caps'])}</td>",
            f"<td>{_pct(r['no_quote'])}</td>",
            f"<td>{_opt(r['spread_c'])}</td>",
            *(
                f'<td class="{_cls(v)}">{"n/a" if math.isnan(v) else f"{v:+.2f}"}</td>'
                for v in r["markouts"].values()
            ),
            f"<td>{r['decisions']:,}</td>",
            f"<td>{r['orders']:,}</td>",
            f"<td>{r['cancels']:,}</td>",
            f"<td>{r['rejects']:,}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="wide"><table>{head}{"".join(body)}</table></div>'


def _meta(run: Run) -> str:
    s = run.summary or {}
    items: list[tuple[str, str]] = [("run", str(run.path)), ("mode", run.mode or "?")]
    for k in ("scenario", "seed", "engine", "config", "strategy"):
        if k in s:
            items.append((k, str(s[k])))
    items.append(("markets", str(len(run.markets))))
    items.append(
        (
            "period",
            f"{_utc(run.start_ns)} to {_utc(run.end_ns)} ({(run.end_ns - run.start_ns) / NS_PER_S:,.0f} s)",
        )
    )
    if "events_processed" in s:
        items.append(("events", f"{s['events_processed']:,}"))
    items.append(("digest", str(s.get("digest", "(no summary.json)"))))
    return (
        '<table class="meta">'
        + "".join(f"<tr><td>{escape(k)}</td><td><code>{escape(v)}</code></td></tr>" for k, v in items)
        + "</table>"
    )


def _headline(a: Analysis, rows: list[dict[str, Any]]) -> str:
    s = a.run.summary
    if s:
        pnl = s["pnl_usdc"]
        fills = s["fills"]
        max_inv = s["max_abs_inventory_shares"]
        uptime = s["quote_uptime"]
    else:
        pnl = {k: sum(r["pnl"][k] for r in rows) for k in ("total", *PNL_PARTS)}
        fills = {"maker": sum(r["maker"] for r in rows), "taker": sum(r["taker"] for r in rows)}
        max_inv = max((r["max_inv"] for r in rows), default=0.0)
        uptime = float(np.mean([r["uptime"] for r in rows])) if rows else 0.0
    parts = " ".join(
        f'{_PART_LABEL[k]} <b class="{_cls(pnl.get(k, 0.0))}">{_usdc(pnl.get(k, 0.0))}</b>' for k in PNL_PARTS
    )
    rw = s.get("rewards") if s else None
    scoring = (
        f" &middot; reward samples scored {_pct(rw['scoring_fraction'])} "
        f"({rw['scored']:,} of {rw['samples']:,})"
        if rw
        else ""
    )
    return (
        f'<p>PnL <b class="{_cls(pnl["total"])}" style="font-size:18px">{_usdc(pnl["total"])} USDC</b> = '
        f"{parts}<br>fills {fills['maker']:,} maker, {fills['taker']:,} taker &middot; max |inventory| "
        f"{max_inv:,.2f} shares &middot; quote uptime {_pct(uptime)}{scoring}</p>"
    )


def _sample(n: int, k: int) -> np.ndarray:
    # Up to ``k`` evenly spread indices of ``n`` (for markers only).
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).astype(np.int64)


def _window(ts: np.ndarray, lo: int, hi: int) -> slice:
    # The points of a step series that show between lo and hi (with the one in force at lo).
    i = max(0, int(np.searchsorted(ts, lo, side="right")) - 1)
    j = int(np.searchsorted(ts, hi, side="right")) + 1
    return slice(i, j)


ZOOM_S: Final = 300


def _quote_chart(a: Analysis, name: str, x_range: tuple[int, int], title: str, uid: str) -> str:
    m = a.run.markets[name]
    ma = a.markets[name]
    lo, hi = x_range
    top, q, f = m.top, m.quotes, m.fills
    tw, qw, mw = _window(top.ts_ns, lo, hi), _window(q.ts_ns, lo, hi), _window(ma.mid2_ts, lo, hi)

    def px(v: np.ndarray, div: int = PX_ONE) -> np.ndarray:
        return np.where(v >= 0, v / div, np.nan)

    lines = [
        Line("market best bid", top.ts_ns[tw], px(top.bid_px[tw]), "#9ecae1", step=True, width=1),
        Line("market best ask", top.ts_ns[tw], px(top.ask_px[tw]), "#fdae6b", step=True, width=1),
        Line(
            "market mid",
            ma.mid2_ts[mw],
            px(ma.mid2[mw], 2 * PX_ONE),
            "#999999",
            step=True,
            width=1,
            dash="3 2",
        ),
        Line("our best bid", q.ts_ns[qw], px(q.bid_px[qw]), "#0072B2", step=True, width=1.4),
        Line("our best ask", q.ts_ns[qw], px(q.ask_px[qw]), "#D55E00", step=True, width=1.4),
    ]
    inside = (f.ts_ns >= lo) & (f.ts_ns <= hi)
    dots = []
    for side, label, col in ((1, "we bought", "#009E73"), (-1, "we sold", "#CC0000")):
        idx = np.flatnonzero(inside & (f.yes_side == side))
        pick = idx[_sample(len(idx), MAX_FILL_MARKERS)]
        dots.append(Dots(label, f.ts_ns[pick], f.yes_px[pick] / PX_ONE, col, r=2.0))
    if not len(top) and not len(q):
        decs = [d for d in m.decisions if d.record.get("quote")]
        fair = np.asarray([d.record.get("fair_px", 0) / PX_ONE for d in decs])
        lines.append(
            Line("our fair price", np.asarray([d.ts_ns for d in decs], np.int64), fair, "#000", step=True)
        )
    n = int(inside.sum())
    return chart(
        title,
        lines,
        dots,
        y_format=_price,
        x_range=x_range,
        height=240,
        uid=uid,
        note=f"{n:,} fills" + (f", {MAX_FILL_MARKERS} per side drawn" if n > 2 * MAX_FILL_MARKERS else ""),
    )


def _market_charts(a: Analysis, names: list[str], x_range: tuple[int, int]) -> list[str]:
    # Per market: the whole run, then a zoom on the minutes around its largest |inventory|.
    out = []
    span = x_range[1] - x_range[0]
    for i, name in enumerate(names):
        out.append(
            _quote_chart(
                a,
                name,
                x_range,
                f"{name}: our quotes against the market (YES price, USDC per share)",
                f"q{i}",
            )
        )
        ma = a.markets[name]
        if len(ma.inv_shares) and span > 2 * ZOOM_S * NS_PER_S:
            k = int(np.argmax(np.abs(ma.inv_shares)))
            mid_t = int(ma.inv_ts[k])
            lo = max(x_range[0], mid_t - ZOOM_S * NS_PER_S // 2)
            hi = min(x_range[1], lo + ZOOM_S * NS_PER_S)
            lo = hi - ZOOM_S * NS_PER_S
            title = (
                f"{name}: zoom on {ZOOM_S // 60} minutes around its largest |inventory| "
                f"({ma.inv_shares[k]:+,.2f} shares at {_utc(mid_t)[11:19]})"
            )
            out.append(_quote_chart(a, name, (lo, hi), title, f"z{i}"))
    return out


def build_report(run: Run, a: Analysis | None = None) -> str:
    """The report page for ``run`` (``a``: its analysis, computed when not given)."""
    a = a or analyse(run)
    rows = _per_market_rows(a)
    names = list(a.markets)
    x_range = (run.start_ns, max(run.end_ns, run.start_ns + 1))
    grid = a.grid
    charts: list[str] = []
    tot = a.total_pnl()
    charts.append(
        chart(
            "PnL over time, all markets (USDC)",
            [
                Line(_PART_LABEL[k], grid, tot[k], _PART_COLOR[k], width=2.2 if k == "total" else 1.4)
                for k in ("total", *PNL_PARTS)
            ],
            zero_line=True,
            x_range=x_range,
            uid="pnl",
        )
    )
    charts.append(
        chart(
            "PnL per market (USDC)",
            [Line(n, grid, a.markets[n].pnl["total"], color(i)) for i, n in enumerate(names)],
            zero_line=True,
            x_range=x_range,
            uid="pnlm",
        )
    )
    inv_lines = []
    for i, n in enumerate(names):
        ma = a.markets[n]
        xs = np.concatenate(([run.start_ns], ma.inv_ts))
        ys = np.concatenate(([0.0], ma.inv_shares))
        inv_lines.append(Line(n, xs, ys, color(i), step=True))
    charts.append(
        chart(
            "Inventory per market (YES-equivalent shares; negative: short YES, i.e. long NO)",
            inv_lines,
            zero_line=True,
            x_range=x_range,
            uid="inv",
        )
    )
    hs = [h for h in MARKOUT_HORIZONS_S if h > 0]
    mk_lines = []
    all_c = []
    for h in hs:
        num = sum(
            a.markets[n].markouts[h][0] * a.markets[n].markouts[h][1]
            for n in names
            if not math.isnan(a.markets[n].markouts[h][0])
        )
        den = sum(a.markets[n].markouts[h][1] for n in names if not math.isnan(a.markets[n].markouts[h][0]))
        all_c.append(num / den if den else np.nan)
    mk_lines.append(Line("all markets", np.asarray(hs), np.asarray(all_c), "#000000", width=2.4))
    for i, n in enumerate(names):
        mk_lines.append(
            Line(
                n, np.asarray(hs), np.asarray([a.markets[n].markouts[h][0] for h in hs]), color(i), width=1.2
            )
        )
    edge0 = all_c and sum(
        a.markets[n].markouts[0.0][0] * a.markets[n].markouts[0.0][1]
        for n in names
        if not math.isnan(a.markets[n].markouts[0.0][0])
    ) / max(1e-12, sum(a.markets[n].markouts[0.0][1] for n in names))
    charts.append(
        chart(
            "Markouts: the mid's move after our fills, in cents per share (positive is good for us)",
            mk_lines,
            x_axis="log",
            x_label="seconds after the fill",
            x_ticks=hs,
            x_format=lambda v: f"{v:g}s",
            zero_line=True,
            uid="mk",
            note=f"edge against the displayed mid at the fill itself: {edge0:+.2f} c/share (all markets); a "
            "curve falling from there is adverse selection. Measured against the displayed book's mid.",
        )
    )
    edges = a.edges
    minutes = float(np.diff(edges)[0]) / NS_PER_S / 60 if len(edges) > 1 else 1.0
    bx = edges[:-1]
    charts.append(
        chart(
            f"Fill rate (fills per minute, {minutes:.3g}-minute buckets)",
            [
                Line(n, bx, a.markets[n].fills_per_bucket / max(minutes, 1e-9), color(i), step=True)
                for i, n in enumerate(names)
            ],
            x_range=x_range,
            y_range=None,
            uid="fr",
        )
    )
    charts.append(
        chart(
            "Quote uptime (share of each bucket with a bid and an ask resting)",
            [
                Line(n, bx, a.markets[n].uptime_per_bucket * 100, color(i), step=True)
                for i, n in enumerate(names)
            ],
            x_range=x_range,
            y_range=(0, 102),
            y_format=lambda v: f"{v:.0f}%",
            uid="up",
        )
    )
    charts.append(
        chart(
            "Time at the caps (solid) and without a quote (dashed), share of each bucket",
            [
                Line(f"{n} at a cap", bx, a.markets[n].caps_per_bucket * 100, color(i), step=True)
                for i, n in enumerate(names)
            ]
            + [
                Line(
                    f"{n} no quote",
                    bx,
                    a.markets[n].no_quote_per_bucket * 100,
                    color(i),
                    step=True,
                    dash="4 3",
                )
                for i, n in enumerate(names)
            ],
            x_range=x_range,
            y_range=(0, 102),
            y_format=lambda v: f"{v:.0f}%",
            uid="caps",
            note="at a cap: the decision in force trimmed or dropped a level to keep the worst-case loss "
            "under a cap; no quote: the decision in force quoted nothing (with its reason in the log)",
        )
    )
    ranked = sorted(names, key=lambda n: -abs(a.markets[n].pnl_final["total"]))[:MAX_MARKET_CHARTS]
    shown = [n for n in names if n in ranked]
    market_charts = _market_charts(a, shown, x_range)
    more = (
        f'<p class="muted">{len(names) - len(shown)} more markets are in the table; charts show the '
        f"{MAX_MARKET_CHARTS} with the largest |PnL|.</p>"
        if len(shown) < len(names)
        else ""
    )
    notes = list(a.notes)
    gaps = consistency(a)
    worst = max(gaps.values(), default=0.0)
    if worst > 0.005:
        notes.append(
            f"the PnL split computed from the log differs from summary.json by up to {worst:.2f} USDC "
            "(the log has no venue marks for this run); the tables show summary.json"
        )
    src = (run.summary or {}).get("source")
    data_notes = []
    if isinstance(src, dict):
        for key in ("real", "synthetic"):
            if key in src:
                data_notes.append(f"{key}: {src[key]}")
        for r in src.get("refused", []):
            data_notes.append(f"refused {r.get('market')}: {r.get('reason')}")
    title = f"polymm report: {(run.summary or {}).get('scenario', run.path.name)}"
    notes_html = "".join(f"<li>{escape(n)}</li>" for n in [*data_notes, *notes])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>{escape(title)}</title>
<style>{PAGE_CSS}{CHART_CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
{_meta(run)}
<h2>Result</h2>
{_headline(a, rows)}
<h2>PnL</h2>
{charts[0]}{charts[1]}
<h2>Inventory</h2>
{charts[2]}
<h2>Adverse selection</h2>
{charts[3]}
<h2>Fills, uptime and caps</h2>
{charts[4]}{charts[5]}{charts[6]}
<h2>Per market</h2>
{_table(rows)}
<h2>Quotes against the market</h2>
{more}{"".join(market_charts)}
<h2>Notes</h2>
<ul class="muted">{notes_html}
<li>PnL is on the YES-equivalent position: total = spread capture + inventory mark-to-market + fees +
rebates + resolution (rebates: an upper bound, see docs/simulation.md). Prices are YES prices.</li>
<li>Pictures are thinned to at most four points per pixel column (first, min, max, last) and fill
markers to {MAX_FILL_MARKERS} per side per market; every figure in the tables uses every event.</li>
<li>Buckets: {len(edges) - 1} over the run. Uptime counts an order from when it was sent until its cancel,
reject or last fill; summary.json's uptime counts from the venue's side and is the one in the table.</li>
</ul>
</body></html>
"""


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Read ``run_dir``, write its report (default ``run_dir/report.html``) and return the path.

    Raises ``RunFormatError`` (one line) when the run cannot be read.
    """
    run = read_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    html = build_report(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def write_session_report(run_dir: str | Path) -> Path | None:
    """The report hook for paper and dry-run sessions: write ``run_dir/report.html``; never raise.

    Call it after the session has closed its event log. Returns the path, or None (with a warning in
    the log) when the run could not be read or drawn.
    """
    try:
        return write_report(run_dir)
    except RunFormatError as exc:
        log.warning("no report: %s", exc)
    except Exception:
        log.exception("no report for %s", run_dir)
    return None
