"""Charts as inline SVG: no JavaScript, no library, no network; fast however long the run.

Why SVG written here rather than a chart library: a report must open offline as one file and stay
small and quick on a million-event run. plotly's bundle is ~4 MB per file; a small canvas library
(uPlot, ~50 KB) would have to be vendored and carries the raw points into the page. Our pictures are
line and step charts and scatters, which are a few hundred lines of SVG code; every line is thinned
to at most four points per pixel column (first, min, max, last: spikes survive) before it is drawn,
so a chart costs the same for ten thousand points as for ten million, and the page stays well under
a megabyte. The numbers beside the charts are never thinned.

Each chart is a ``<figure class="chart">`` whose ``data-points`` attribute counts the points drawn
(the browser test checks every chart has some).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Num = npt.NDArray[np.float64] | npt.NDArray[np.int64]
XAxis = Literal["time", "log", "linear"]

#: Colours that stay apart for common colour-vision deficiencies (Okabe-Ito, then a few more).
PALETTE: Final = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#999999",
    "#F0E442",
    "#000000",
    "#8C564B",
)
_TIME_STEPS_S: Final = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
)


def color(i: int) -> str:
    """The ``i``-th colour of the palette (it wraps)."""
    return PALETTE[i % len(PALETTE)]


@dataclass
class Line:
    """A line: ``x`` (ns since the epoch on a time axis, else plain numbers), ``y`` (NaN: a gap).

    ``step``: a step function, each value held until the next ``x`` (and the last until the chart's
    right edge).
    """

    name: str
    x: Num
    y: Num
    color: str
    step: bool = False
    width: float = 1.5
    dash: str = ""


@dataclass
class Dots:
    """Markers; ``links`` (one per point) make each marker a link, ``tips`` its tooltip."""

    name: str
    x: Num
    y: Num
    color: str
    r: float = 2.5
    links: Sequence[str] | None = None
    tips: Sequence[str] | None = None


def thin(x: F64, y: F64, columns: int) -> tuple[F64, F64]:
    """At most four points per pixel column (``x`` already in pixels): first, min, max, last.

    The shape a viewer sees is kept, spikes included; points are in ``x`` order.
    """
    n = len(x)
    if n <= 4 * columns or n < 8:
        return x, y
    col = np.floor(x).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], col[1:] != col[:-1])))
    ends = np.concatenate((starts[1:], [n])) - 1
    with np.errstate(invalid="ignore"):
        lo = np.fmin.reduceat(y, starts)
        hi = np.fmax.reduceat(y, starts)
    mid = (x[starts] + x[ends]) / 2
    xs = np.stack((x[starts], mid, mid, x[ends]), axis=1).ravel()
    ys = np.stack((y[starts], lo, hi, y[ends]), axis=1).ravel()
    return xs, ys


def _path(x: F64, y: F64) -> tuple[str, int]:
    # An SVG path through the points, broken at NaN; returns (d, points drawn).
    ok = np.isfinite(y) & np.isfinite(x)
    if not ok.any():
        return "", 0
    parts: list[str] = []
    pen_up = True
    count = 0
    for xi, yi, good in zip(x.tolist(), y.tolist(), ok.tolist(), strict=True):
        if not good:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{xi:.1f} {yi:.1f}")
        pen_up = False
        count += 1
    return "".join(parts), count


def _nice_step(span: float, target: int) -> float:
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + 1.0
    step = _nice_step(hi - lo, target)
    start = math.ceil(lo / step - 1e-9) * step
    out = []
    v = start
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


def fmt_num(v: float) -> str:
    """A tick label: short, with thousands separators, no needless decimals."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.4g}"
    return f"{v:.3g}"


def _time_ticks(t0_s: float, t1_s: float, target: int = 6) -> tuple[list[float], Callable[[float], str]]:
    span = max(t1_s - t0_s, 1e-9)
    step = next((s for s in _TIME_STEPS_S if span / s <= target), _TIME_STEPS_S[-1])
    first = math.ceil(t0_s / step) * step
    ticks = []
    v = float(first)
    while v <= t1_s:
        ticks.append(v)
        v += step

    def label(s: float) -> str:
        d = datetime.fromtimestamp(s, tz=UTC)
        if step >= 86400:
            return d.strftime("%m-%d")
        return d.strftime("%H:%M" if step >= 60 else "%H:%M:%S")

    return ticks, label


def chart(
    title: str,
    lines: Sequence[Line],
    dots: Sequence[Dots] = (),
    *,
    x_axis: XAxis = "time",
    y_label: str = "",
    x_label: str = "",
    y_format: Callable[[float], str] = fmt_num,
    x_format: Callable[[float], str] = fmt_num,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_ticks: Sequence[float] | None = None,
    width: int = 960,
    height: int = 260,
    zero_line: bool = False,
    note: str = "",
    uid: str = "",
) -> str:
    """One chart as an HTML ``<figure>`` holding an inline SVG (see the module docstring).

    ``uid`` names the chart's clip path: unique within a page (default: from the title).
    """
    clip = "c" + (uid or hashlib.sha1(title.encode()).hexdigest()[:10])  # noqa: S324 (a name, not security)
    ml, mr, mt, mb = 64, 16, 10, 34
    pw, ph = width - ml - mr, height - mt - mb

    def xval(v: Num) -> F64:
        a = np.asarray(v)
        if x_axis == "time":
            return a.astype(np.float64) / 1e9  # ns -> s since the epoch
        if x_axis == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log10(a.astype(np.float64))
        return a.astype(np.float64)

    xs = [xval(s.x) for s in lines] + [xval(d.x) for d in dots]
    ys = [np.asarray(s.y, np.float64) for s in lines] + [np.asarray(d.y, np.float64) for d in dots]
    finite_x = np.concatenate([a[np.isfinite(a)] for a in xs]) if xs else np.zeros(0)
    finite_y = np.concatenate([a[np.isfinite(a)] for a in ys]) if ys else np.zeros(0)
    if x_range is not None:
        x0, x1 = (float(v) for v in xval(np.asarray(x_range)))
    elif len(finite_x):
        x0, x1 = float(finite_x.min()), float(finite_x.max())
    else:
        x0, x1 = 0.0, 1.0
    if x1 <= x0:
        x1 = x0 + 1.0
    if dots and x_range is None:  # markers at the ends stay whole
        xpad = (x1 - x0) * 0.03
        x0, x1 = x0 - xpad, x1 + xpad
    if y_range is not None:
        y0, y1 = y_range
    elif len(finite_y):
        y0, y1 = float(finite_y.min()), float(finite_y.max())
        if zero_line:
            y0, y1 = min(y0, 0.0), max(y1, 0.0)
        pad = (y1 - y0) * 0.05 or max(abs(y0) * 0.05, 1.0)
        y0, y1 = y0 - pad, y1 + pad
    else:
        y0, y1 = 0.0, 1.0

    def px(v: F64) -> F64:
        return ml + (v - x0) / (x1 - x0) * pw

    def py(v: F64) -> F64:
        return mt + ph - (v - y0) / (y1 - y0) * ph

    out: list[str] = [
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="plot"/>',
    ]
    # Axes and grid.
    for t in nice_ticks(y0, y1):
        yy = float(py(np.asarray([t]))[0])
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(f'<text x="{ml - 6}" y="{yy + 4:.1f}" class="ytick">{escape(y_format(t))}</text>')
    if zero_line and y0 < 0 < y1:
        yy = float(py(np.asarray([0.0]))[0])
        out.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{yy:.1f}" y2="{yy:.1f}" class="zero"/>')
    if x_axis == "time":
        ticks, label = _time_ticks(x0, x1)
        xt = [(t, label(t)) for t in ticks]
    elif x_axis == "log":
        vals = x_ticks or [10**e for e in range(math.floor(x0), math.ceil(x1) + 1)]
        xt = [(math.log10(v), x_format(v)) for v in vals if v > 0 and x0 <= math.log10(v) <= x1]
    else:
        vals = list(x_ticks) if x_ticks else nice_ticks(x0, x1, 6)
        xt = [(v, x_format(v)) for v in vals if x0 <= v <= x1]
    for v, lab in xt:
        xx = float(px(np.asarray([v]))[0])
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{mt}" y2="{mt + ph}" class="grid"/>')
        out.append(f'<text x="{xx:.1f}" y="{mt + ph + 16}" class="xtick">{escape(lab)}</text>')
    if y_label:
        out.append(
            f'<text x="12" y="{mt + ph / 2:.0f}" class="ylabel" '
            f'transform="rotate(-90 12 {mt + ph / 2:.0f})">{escape(y_label)}</text>'
        )
    if x_label:
        out.append(f'<text x="{ml + pw / 2:.0f}" y="{height - 3}" class="xlabel">{escape(x_label)}</text>')
    out.append(f'<clipPath id="{clip}"><rect x="{ml}" y="{mt}" width="{pw}" height="{ph}"/></clipPath>')
    out.append(f'<g clip-path="url(#{clip})">')
    drawn = 0
    for s, sx, sy in zip(lines, xs, ys, strict=False):
        xv, yv = sx, sy
        if s.step and len(sx):
            right = max(x1, float(np.nanmax(sx)))
            nxt = np.concatenate((sx[1:], [right]))
            xv = np.stack((sx, nxt), axis=1).ravel()
            yv = np.repeat(sy, 2)
        tx, ty = thin(px(xv), yv, pw)
        d, n = _path(tx, py(ty))
        drawn += n
        if d:
            dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            out.append(
                f'<path d="{d}" stroke="{s.color}" stroke-width="{s.width}"{dash} fill="none">'
                f"<title>{escape(s.name)}</title></path>"
            )
    for dset, xv, yv in zip(dots, xs[len(lines) :], ys[len(lines) :], strict=True):
        cx, cy = px(xv), py(yv)
        for i, (a, b) in enumerate(zip(cx.tolist(), cy.tolist(), strict=True)):
            if not (math.isfinite(a) and math.isfinite(b)):
                continue
            tip = f"<title>{escape(dset.tips[i])}</title>" if dset.tips else ""
            mark = f'<circle cx="{a:.1f}" cy="{b:.1f}" r="{dset.r}" fill="{dset.color}">{tip}</circle>'
            if dset.links:
                mark = f'<a href="{escape(dset.links[i])}">{mark}</a>'
            out.append(mark)
            drawn += 1
    out.append("</g></svg>")
    keyed: list[tuple[str, str]] = [(s.name, s.color) for s in lines] + [(d.name, d.color) for d in dots]
    legend = "".join(
        f'<span><i style="background:{c}"></i>{escape(name)}</span>' for name, c in keyed if name
    )
    note_html = f'<div class="note">{escape(note)}</div>' if note else ""
    return (
        f'<figure class="chart" data-points="{drawn}"><figcaption>{escape(title)}</figcaption>'
        + "".join(out)
        + f'<div class="legend">{legend}</div>{note_html}</figure>'
    )


CSS: Final = """
.chart{margin:0 0 18px 0}
.chart figcaption{font-weight:600;margin:0 0 4px 0}
.chart svg{display:block;max-width:100%;height:auto;font:11px system-ui,sans-serif}
.chart .plot{fill:#fff;stroke:#ccc}
.chart .grid{stroke:#eee}
.chart .zero{stroke:#888;stroke-dasharray:3 3}
.chart .ytick{text-anchor:end;fill:#555}
.chart .xtick{text-anchor:middle;fill:#555}
.chart .ylabel,.chart .xlabel{text-anchor:middle;fill:#333}
.chart .legend{font-size:12px;color:#333}
.chart .legend span{margin-right:14px;white-space:nowrap}
.chart .legend i{display:inline-block;width:12px;height:3px;margin:0 4px 3px 0;vertical-align:middle}
.chart .note{font-size:12px;color:#666}
"""
