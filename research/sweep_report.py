"""``sweep.html``: the best trials, each parameter's effect, the Pareto front, links to every trial's report.

Self-contained like the run report (inline SVG from ``research.svg``, no script, no network); each
marker and each table row links to that trial's own ``trials/NNNN/report.html``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any, Final

import numpy as np

from research.space import Space
from research.svg import CSS as CHART_CSS
from research.svg import Dots, Line, chart

SWEEP_REPORT_NAME: Final = "sweep.html"
_CSS: Final = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;margin:24px auto;
max-width:1000px;padding:0 12px}
h1{font-size:20px;margin:0 0 4px 0} h2{font-size:16px;margin:26px 0 8px 0;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f6f6f6} td:first-child,th:first-child{text-align:left}
.wide{overflow-x:auto;max-width:100%} .muted{color:#666;font-size:12.5px} .bad{color:#999}
"""


def _v(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:,.6g}"
    return escape(str(x))


def pareto_front(points: list[tuple[float, float, int]], x_max: bool, y_max: bool) -> list[int]:
    """Indices (third item) of the points no other point beats on both axes, in x order."""
    sx = -1.0 if x_max else 1.0
    sy = -1.0 if y_max else 1.0
    pts = sorted(points, key=lambda p: (sx * p[0], sy * p[1]))
    front = []
    best_y = math.inf
    for _, y, i in pts:
        if sy * y < best_y:
            front.append(i)
            best_y = sy * y
    return front


def _table(rows: list[dict[str, Any]], space: Space, metrics: list[str]) -> str:
    names = list(space.params)
    head = (
        "<tr><th>trial</th><th>report</th>"
        + "".join(f"<th>{escape(n)}</th>" for n in names)
        + "".join(f"<th>{escape(m)}</th>" for m in metrics)
        + "<th>feasible</th><th>seed</th></tr>"
    )
    body = []
    for r in rows:
        link = f'<a href="{escape(r["report"])}">report</a>' if r["report"] else escape(r["error"] or "-")
        cls = "" if r["feasible"] else ' class="bad"'
        body.append(
            f"<tr{cls}><td>#{r['number']}</td><td>{link}</td>"
            + "".join(f"<td>{_v(r['params'].get(n))}</td>" for n in names)
            + "".join(f"<td>{_v(r['metrics'].get(m))}</td>" for m in metrics)
            + f"<td>{'yes' if r['feasible'] else 'no'}</td><td>{_v(r['seed'])}</td></tr>"
        )
    return f'<div class="wide"><table>{head}{"".join(body)}</table></div>'


def _category_format(cats: list[str] | None) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        return cats[int(v)] if cats and 0 <= int(v) < len(cats) else f"{v:g}"

    return fmt


def _tip(r: dict[str, Any], space: Space) -> str:
    ps = ", ".join(f"{k}={_v(v)}" for k, v in r["params"].items())
    return f"trial #{r['number']}: {ps}; {space.objective.metric}={_v(r['value'])}"


def build_sweep_report(
    space: Space,
    name: str,
    config_label: str,
    rows: list[dict[str, Any]],
    best: list[dict[str, Any]],
    notes: list[str],
) -> str:
    """The sweep page (see the module docstring)."""
    obj = space.objective
    metrics = space.metrics()[: 3 + len(space.constraints)]
    done = [r for r in rows if r["value"] is not None]
    charts = []
    # The objective trial by trial, and the best feasible so far.
    if done:
        xs = np.asarray([r["number"] for r in done], np.float64)
        sign = 1.0 if obj.direction == "maximize" else -1.0
        run_best = []
        cur = -math.inf
        for r in sorted(done, key=lambda r: r["number"]):
            if r["feasible"]:
                cur = max(cur, sign * r["value"])
            run_best.append(sign * cur if math.isfinite(cur) else math.nan)
        feas = [r for r in done if r["feasible"]]
        infeas = [r for r in done if not r["feasible"]]
        charts.append(
            chart(
                f"{obj.metric} by trial ({obj.direction}); grey: breaks a constraint",
                [
                    Line(
                        "best feasible so far", xs[np.argsort(xs)], np.asarray(run_best), "#000000", step=True
                    )
                ],
                [
                    Dots(
                        "feasible",
                        np.asarray([r["number"] for r in feas], np.float64),
                        np.asarray([r["value"] for r in feas], np.float64),
                        "#0072B2",
                        r=3.5,
                        links=[r["report"] or "#" for r in feas],
                        tips=[_tip(r, space) for r in feas],
                    ),
                    Dots(
                        "infeasible",
                        np.asarray([r["number"] for r in infeas], np.float64),
                        np.asarray([r["value"] for r in infeas], np.float64),
                        "#BBBBBB",
                        r=3.5,
                        links=[r["report"] or "#" for r in infeas],
                        tips=[_tip(r, space) for r in infeas],
                    ),
                ],
                x_axis="linear",
                x_label="trial",
                uid="conv",
            )
        )
        # Each parameter's effect: the objective against the parameter's value.
        for i, (pname, p) in enumerate(space.params.items()):
            cats = [str(v) for v in p.values] if p.values is not None and p.type == "categorical" else None

            def xval(r: dict[str, Any], cats: list[str] | None = cats, pname: str = pname) -> float:
                v = r["params"].get(pname)
                if cats is not None:
                    return float(cats.index(str(v))) if str(v) in cats else math.nan
                return float(v) if isinstance(v, int | float) else math.nan

            dsets = []
            for label, group, col in (("feasible", feas, "#0072B2"), ("infeasible", infeas, "#BBBBBB")):
                dsets.append(
                    Dots(
                        label,
                        np.asarray([xval(r) for r in group], np.float64),
                        np.asarray([r["value"] for r in group], np.float64),
                        col,
                        r=3.5,
                        links=[r["report"] or "#" for r in group],
                        tips=[_tip(r, space) for r in group],
                    )
                )
            log_x = p.log and cats is None
            charts.append(
                chart(
                    f"Effect of {pname} on {obj.metric}",
                    [],
                    dsets,
                    x_axis="log" if log_x else "linear",
                    x_label=pname,
                    x_ticks=list(range(len(cats))) if cats else None,
                    x_format=_category_format(cats),
                    uid=f"p{i}",
                )
            )
        # The Pareto front: the objective against the other figure.
        pa = space.pareto_axis()
        pts = [
            (float(r["metrics"][pa.metric]), float(r["value"]), k)
            for k, r in enumerate(feas)
            if r["metrics"].get(pa.metric) is not None
        ]
        front = pareto_front(pts, pa.direction == "maximize", obj.direction == "maximize")
        fr = [feas[k] for k in front]
        charts.append(
            chart(
                f"Pareto front: {obj.metric} ({obj.direction}) against {pa.metric} ({pa.direction}), "
                "feasible trials",
                [
                    Line(
                        "Pareto front",
                        np.asarray([r["metrics"][pa.metric] for r in fr], np.float64),
                        np.asarray([r["value"] for r in fr], np.float64),
                        "#D55E00",
                        width=1.5,
                    )
                ],
                [
                    Dots(
                        "trial",
                        np.asarray([p[0] for p in pts], np.float64),
                        np.asarray([p[1] for p in pts], np.float64),
                        "#0072B2",
                        r=3.5,
                        links=[feas[p[2]]["report"] or "#" for p in pts],
                        tips=[_tip(feas[p[2]], space) for p in pts],
                    ),
                    Dots(
                        "on the front",
                        np.asarray([r["metrics"][pa.metric] for r in fr], np.float64),
                        np.asarray([r["value"] for r in fr], np.float64),
                        "#D55E00",
                        r=5,
                        links=[r["report"] or "#" for r in fr],
                        tips=[_tip(r, space) for r in fr],
                    ),
                ],
                x_axis="linear",
                x_label=pa.metric,
                uid="pareto",
            )
        )
    cons = "; ".join(
        f"{c.metric}"
        + (f" <= {c.max:g}" if c.max is not None else "")
        + (f" >= {c.min:g}" if c.min is not None else "")
        for c in space.constraints
    )
    failed = [r for r in rows if r["state"] == "FAIL"]
    note_items = [*notes]
    if failed:
        note_items.append(
            f"{len(failed)} trials failed: " + "; ".join(f"#{r['number']} {r['error']}" for r in failed[:5])
        )
    notes_html = "".join(f"<li>{escape(n)}</li>" for n in note_items)
    shown = sorted(rows, key=lambda r: r["number"])[:500]
    subject = f"; subject to {escape(cons)}" if cons else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>polymm sweep: {escape(name)}</title>
<style>{_CSS}{CHART_CSS}</style></head><body>
<h1>polymm sweep: {escape(name)}</h1>
<p class="muted">{len(rows)} trials ({len(done)} complete, {len(failed)} failed); sampler {space.sampler},
seed {space.seed}, batches of {space.batch}; simulation seeds {escape(space.seeds)};
config <code>{escape(config_label)}</code>;
objective: {obj.direction} <code>{escape(obj.metric)}</code>{subject}.</p>
<h2>Best trials</h2>
{_table(best, space, metrics) if best else "<p>No trial meets every constraint yet.</p>"}
<h2>Charts</h2>
{"".join(charts) or "<p>No complete trial yet.</p>"}
<h2>All trials</h2>
{_table(shown, space, metrics)}
<ul class="muted">{notes_html}<li>Each trial's own report (PnL parts, inventory, quotes, markouts) is linked
from its row and its markers.</li></ul>
</body></html>
"""


def write_sweep_report(
    out: Path,
    space: Space,
    name: str,
    config_label: str,
    rows: list[dict[str, Any]],
    best: list[dict[str, Any]],
    notes: list[str],
) -> Path:
    """Write ``out/sweep.html`` and return its path."""
    path = out / SWEEP_REPORT_NAME
    path.write_text(build_sweep_report(space, name, config_label, rows, best, notes), encoding="utf-8")
    return path
