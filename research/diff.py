"""Compare two runs of the same input: where their decisions first part, then what that changed.

``compare(a, b)`` takes two sides, each a run directory (its event log + ``summary.json``) or a
compact baseline (``baseline.json``, written by ``write_baseline``: the summary, the digest and, per
market, digests of the decisions, of our actions and of the inputs, a few kilobytes instead of the
log). It reports, in order:

1. whether the inputs are the same (per-market digests of the market data; comparing runs of
   different inputs is allowed but said loudly);
2. the first divergent decision: decisions are aligned per market by ``(ts_ns, seq)`` (``seq``: the
   order among that market's decisions at the same instant); the first pair that differs in time or
   in content, earliest over all markets, is printed with both sides' reasons, field by field. When
   one side decided and the other did not, the other side's decision in force then is shown. Against
   a baseline only the market and the count can be named (the baseline keeps digests, not decisions:
   ``just regress-diff`` reruns the baseline's code for the full picture);
3. if the decisions agree, the first divergent action (order, cancel, fill, venue answer);
4. per market, every figure that differs: fills, volume, PnL parts, inventory (peak, final, and the
   largest gap between the two inventory paths and when), uptime, spread, markouts, counts.

Two runs are *identical* when their logs have the same digest, or, failing that, when decisions,
actions, inputs (where both have them) and every figure agree (e.g. one run has its market data and
the other, a session's log or a run without its input.json, does not). Wall-clock figures never count.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from core.units import NS_PER_S, PX_ONE, QTY_ONE
from research.analysis import analyse
from research.runlog import Decision, MarketLog, Run, RunFormatError, read_run, read_summary

BASELINE_NAME: Final = "baseline.json"
#: Per-market figures compared, as dotted paths into a summary's ``per_market`` entry.
FIGURES: Final = (
    "fills.maker",
    "fills.taker",
    "volume_shares",
    "volume_usdc",
    "pnl_usdc.total",
    "pnl_usdc.spread_capture",
    "pnl_usdc.inventory_mtm",
    "pnl_usdc.fees",
    "pnl_usdc.rebates",
    "pnl_usdc.resolution",
    "max_abs_inventory_shares",
    "final_inventory_shares",
    "quote_uptime",
    "avg_quoted_spread_px",
    "markouts.1s.px_per_share",
    "markouts.10s.px_per_share",
    "markouts.60s.px_per_share",
    "events",
    "decisions",
    "orders",
    "cancels",
    "rejects",
)
TOTAL_FIGURES: Final = (
    "fills.maker",
    "fills.taker",
    "volume_shares",
    "pnl_usdc.total",
    "pnl_usdc.spread_capture",
    "pnl_usdc.inventory_mtm",
    "pnl_usdc.fees",
    "pnl_usdc.rebates",
    "pnl_usdc.resolution",
    "max_abs_inventory_shares",
    "quote_uptime",
    "avg_quoted_spread_px",
    "events_processed",
)
_enc = msgspec.json.Encoder(order="sorted")


def canonical(record: dict[str, Any]) -> bytes:
    """A record's bytes with sorted keys: equal content, equal bytes, whatever the log's layout."""
    return _enc.encode(record)


def decisions_digest(decisions: list[Decision]) -> str:
    """The sha256 of a market's decisions, each with its ``(ts_ns, seq)``, in order."""
    h = hashlib.sha256()
    for d in decisions:
        h.update(b"%d,%d:" % d.key)
        h.update(canonical(d.record))
        h.update(b"\n")
    return h.hexdigest()


def actions_digest(actions: list[dict[str, Any]]) -> str:
    """The sha256 of a market's actions and venue answers, in order."""
    h = hashlib.sha256()
    for a in actions:
        h.update(canonical(a))
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class Side:
    """One side of a comparison: a run read with its actions, or a compact baseline."""

    path: Path
    summary: dict[str, Any]
    digest: str
    run: Run | None = None
    #: Per market: decisions/actions/inputs counts and digests (computed for a run, stored in a baseline).
    markets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def is_baseline(self) -> bool:
        """A compact baseline: digests only, no decisions to show."""
        return self.run is None


def _market_digests(m: MarketLog) -> dict[str, Any]:
    return {
        "decisions": len(m.decisions),
        "decisions_sha256": decisions_digest(m.decisions),
        "actions": len(m.actions),
        "actions_sha256": actions_digest(m.actions),
        "inputs": m.inputs,
        "inputs_sha256": m.inputs_sha256 if m.inputs else "",
        "flow": m.deltas + m.trades,
    }


def _log_summary(run: Run) -> dict[str, Any]:
    # Figures from the log for a run without summary.json (a paper session).
    a = analyse(run)
    per = []
    for name, ma in a.markets.items():
        per.append({"market": name, "events": run.markets[name].inputs, **ma.figures})
    return {"per_market": per}


def load_side(path: str | Path) -> Side:
    """A run directory or a baseline directory; ``RunFormatError`` (one line) otherwise."""
    p = Path(path)
    base = p / BASELINE_NAME
    if base.is_file():
        try:
            data = msgspec.json.decode(base.read_bytes())
        except msgspec.DecodeError as exc:
            raise RunFormatError(f"{base}: not JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("summary"), dict):
            raise RunFormatError(f"{base}: not a baseline (no `summary`)")
        return Side(p, data["summary"], str(data.get("digest", "")), None, dict(data.get("markets", {})))
    run = read_run(p, actions=True)
    summary = run.summary if run.summary is not None else _log_summary(run)
    markets = {k: _market_digests(m) for k, m in run.markets.items()}
    return Side(p, summary, run.digest(), run, markets)


def peek_side(path: str | Path) -> Side | None:
    """A side from its summary alone (no log read), when it states a digest; None otherwise."""
    p = Path(path)
    if (p / BASELINE_NAME).is_file():
        return load_side(p)
    summary = read_summary(p) if p.is_dir() else None
    if summary is None or not isinstance(summary.get("digest"), str):
        return None
    return Side(p, summary, summary["digest"], None, {})


def diff_paths(path_a: str | Path, path_b: str | Path) -> Comparison:
    """Compare two run or baseline directories, reading the logs only when the digests differ."""
    pa, pb = peek_side(path_a), peek_side(path_b)
    if pa is not None and pb is not None and pa.digest == pb.digest:
        return Comparison(
            False,
            [
                _side_head("A", pa, True),
                _side_head("B", pb, True),
                "identical: the two logs have the same digest",
            ],
        )
    a = pa if pa is not None and pa.markets else load_side(path_a)
    b = pb if pb is not None and pb.markets else load_side(path_b)
    return compare(a, b)


def write_baseline(run_dir: str | Path, dest: str | Path) -> Path:
    """Write ``dest/baseline.json`` for the run in ``run_dir`` (see the module docstring)."""
    side = load_side(run_dir)
    if side.is_baseline:
        raise RunFormatError(f"{run_dir}: is a baseline already, not a run")
    summary = {k: v for k, v in side.summary.items() if k not in ("wall_seconds", "events_per_s", "build")}
    body = {
        "about": "a compact regression baseline: the run's summary, its digest and per-market digests of "
        "its decisions, actions and inputs (research.diff); refresh with `just regress-update`",
        "digest": side.digest,
        "summary": summary,
        "markets": side.markets,
    }
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    path = out / BASELINE_NAME
    path.write_bytes(msgspec.json.format(msgspec.json.encode(body)) + b"\n")
    return path


# --- formatting -------------------------------------------------------------------------------------


def _get(d: Any, dotted: str) -> Any:
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:,.6f}".rstrip("0").rstrip(".") if v != int(v) or abs(v) < 1e15 else f"{v:g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _delta(a: Any, b: Any) -> str:
    if isinstance(a, bool) or isinstance(b, bool):
        return ""
    if isinstance(a, int | float) and isinstance(b, int | float):
        d = b - a
        return f"{d:+,.6f}".rstrip("0").rstrip(".") if isinstance(d, float) else f"{d:+,}"
    return ""


def _when(ts: int, start: int) -> str:
    t = datetime.fromtimestamp(ts / NS_PER_S, tz=UTC)
    return f"{t:%H:%M:%S}.{ts % NS_PER_S:09d} (+{(ts - start) / NS_PER_S:,.3f} s)"


def _levels(levels: list[dict[str, int]]) -> str:
    return " ".join(f"{lv['px'] / PX_ONE:g}x{lv['qty'] / QTY_ONE:g}" for lv in levels) or "-"


def _decision_line(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "(none yet)"
    if not rec.get("quote"):
        return f"no quote: {rec.get('no_quote', '')}"
    return (
        f"quote bids {_levels(rec.get('bids', []))} | asks {_levels(rec.get('asks', []))} | "
        f"fair {rec.get('fair_px', 0) / PX_ONE:g} skewed {rec.get('skewed_mid_px', 0) / PX_ONE:g}"
    )


def _flatten(rec: dict[str, Any] | None) -> dict[str, Any]:
    # A decision's fields for the side-by-side table: the reasons, then the decision's own fields.
    if rec is None:
        return {}
    out: dict[str, Any] = {}
    for k, v in rec.get("reasons", {}).items():
        out[k] = "; ".join(v) if isinstance(v, list) else v
    for k in ("quote", "no_quote", "fair_px", "skewed_mid_px"):
        if k in rec:
            out[k] = rec[k]
    for k in ("bids", "asks"):
        if k in rec:
            out[k] = _levels(rec[k])
    if "orders" in rec:
        out["orders"] = " ".join(
            f"{'YES' if o['outcome'] == 0 else 'NO'} {'BUY' if o['side'] > 0 else 'SELL'} "
            f"{o['px'] / PX_ONE:g}x{o['qty'] / QTY_ONE:g}"
            for o in rec["orders"]
        )
    return out


def first_divergence(a: list[Decision], b: list[Decision]) -> int | None:
    """The index of the first decision that differs in time or content (None: the lists agree)."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i].key != b[i].key or canonical(a[i].record) != canonical(b[i].record):
            return i
    return None if len(a) == len(b) else n


def _first_action_divergence(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int | None:
    n = min(len(a), len(b))
    for i in range(n):
        if canonical(a[i]) != canonical(b[i]):
            return i
    return None if len(a) == len(b) else n


@dataclass
class Comparison:
    """What ``compare`` found: ``differ`` (the exit status) and the lines to print."""

    differ: bool
    lines: list[str]
    first_market: str = ""

    def text(self) -> str:
        """The report for people."""
        return "\n".join(self.lines)


def _side_head(tag: str, s: Side, peeked: bool = False) -> str:
    sm = s.summary
    bits = [f"{k} {sm[k]}" for k in ("scenario", "seed", "engine", "config") if k in sm]
    kind = "baseline" if s.is_baseline and not peeked else "run"
    if (s.path / BASELINE_NAME).is_file():
        kind = "baseline"
    return f"{tag}  {s.path}  ({kind}; {', '.join(bits) or 'no summary'}; digest {s.digest[:16]})"


def _decision_report(a: Side, b: Side, out: list[str]) -> tuple[bool, str]:
    # Decisions: the first divergence over all markets with both sides' reasons. Returns (differ, market).
    assert a.run is not None and b.run is not None
    start = min(a.run.start_ns, b.run.start_ns)
    found: list[tuple[int, str, int]] = []
    for name in sorted(set(a.run.markets) & set(b.run.markets)):
        da, db = a.run.markets[name].decisions, b.run.markets[name].decisions
        i = first_divergence(da, db)
        if i is not None:
            ts = min(
                da[i].ts_ns if i < len(da) else 1 << 62,
                db[i].ts_ns if i < len(db) else 1 << 62,
            )
            found.append((ts, name, i))
    if not found:
        out.append("decisions  identical in every market")
        return False, ""
    found.sort()
    ts, name, i = found[0]
    da, db = a.run.markets[name].decisions, b.run.markets[name].decisions
    ra = da[i] if i < len(da) else None
    rb = db[i] if i < len(db) else None
    out.append(f"decisions  DIFFER: first in {name} at {_when(ts, start)}, its decision #{i + 1:,}")
    # Which side made a decision at ts the other did not? Show the other's decision in force.
    rec_a: dict[str, Any] | None
    rec_b: dict[str, Any] | None
    if ra is not None and rb is not None and ra.key == rb.key:
        rec_a, rec_b = ra.record, rb.record
        out.append(f"  A: {_decision_line(rec_a)}")
        out.append(f"  B: {_decision_line(rec_b)}")
    else:
        a_first = rb is None or (ra is not None and ra.key < rb.key)
        new, other_list, tag_new, tag_old = (ra, db, "A", "B") if a_first else (rb, da, "B", "A")
        assert new is not None
        in_force = other_list[i - 1].record if i > 0 else None
        rec_new = new.record
        if a_first:
            rec_a, rec_b = rec_new, in_force
        else:
            rec_a, rec_b = in_force, rec_new
        out.append(f"  {tag_new}: {_decision_line(rec_new)}")
        out.append(f"  {tag_old}: no new decision then; in force: {_decision_line(in_force)}")
    fa, fb = _flatten(rec_a), _flatten(rec_b)
    keys = list(dict.fromkeys([*fa, *fb]))
    width = max((len(k) for k in keys), default=8)
    out.append(f"  {'':2}{'reason'.ljust(width)}  {'A':>22}  {'B':>22}")
    for k in keys:
        va, vb = fa.get(k), fb.get(k)
        mark = "* " if va != vb else "  "
        sa, sb = _fmt(va), _fmt(vb)
        if va == vb and len(sa) > 22:
            out.append(f"  {mark}{k.ljust(width)}  both: {sa}")
        elif len(sa) > 22 or len(sb) > 22:
            out.append(f"  {mark}{k.ljust(width)}  A: {sa}")
            out.append(f"  {'':2}{''.ljust(width)}  B: {sb}")
        else:
            out.append(f"  {mark}{k.ljust(width)}  {sa:>22}  {sb:>22}")
    if len(found) > 1:
        rest = ", ".join(f"{n} at +{(t - start) / NS_PER_S:,.3f} s (#{j + 1:,})" for t, n, j in found[1:])
        out.append(f"  other markets' first divergent decisions: {rest}")
    same = sorted(set(a.run.markets) & set(b.run.markets) - {n for _, n, _ in found})
    if same:
        out.append(f"  identical decisions: {', '.join(same)}")
    return True, name


def _action_report(a: Side, b: Side, out: list[str]) -> bool:
    assert a.run is not None and b.run is not None
    start = min(a.run.start_ns, b.run.start_ns)
    found = []
    for name in sorted(set(a.run.markets) & set(b.run.markets)):
        xa, xb = a.run.markets[name].actions, b.run.markets[name].actions
        i = _first_action_divergence(xa, xb)
        if i is not None:
            ta = xa[i].get("ts_ns", 0) if i < len(xa) else 1 << 62
            tb = xb[i].get("ts_ns", 0) if i < len(xb) else 1 << 62
            found.append((min(ta, tb), name, i))
    if not found:
        out.append("actions    identical (orders, cancels, fills, venue answers)")
        return False
    ts, name, i = min(found)
    xa, xb = a.run.markets[name].actions, b.run.markets[name].actions
    out.append(f"actions    DIFFER: first in {name} at {_when(ts, start)}, its action #{i + 1:,}")
    out.append(f"  A: {canonical(xa[i]).decode() if i < len(xa) else '(no more actions)'}")
    out.append(f"  B: {canonical(xb[i]).decode() if i < len(xb) else '(no more actions)'}")
    return True


def _inventory_gap(ma: MarketLog, mb: MarketLog) -> tuple[float, int, int] | None:
    # The largest |inventory A - inventory B| in shares, when it happened, and when they first parted.
    fa, fb = ma.fills, mb.fills
    ts = np.union1d(fa.ts_ns, fb.ts_ns)
    if not len(ts):
        return None
    na = np.concatenate(([0], np.cumsum(fa.yes_side * fa.qty)))[np.searchsorted(fa.ts_ns, ts, side="right")]
    nb = np.concatenate(([0], np.cumsum(fb.yes_side * fb.qty)))[np.searchsorted(fb.ts_ns, ts, side="right")]
    gap = np.abs(na - nb)
    if not gap.any():
        return None
    k = int(np.argmax(gap))
    return float(gap[k]) / QTY_ONE, int(ts[k]), int(ts[np.flatnonzero(gap)[0]])


def _figure_rows(sa: dict[str, Any], sb: dict[str, Any], keys: tuple[str, ...]) -> list[tuple[str, Any, Any]]:
    rows = []
    for k in keys:
        va, vb = _get(sa, k), _get(sb, k)
        if va != vb:
            rows.append((k, va, vb))
    return rows


def compare(a: Side, b: Side) -> Comparison:
    """Compare two sides (see the module docstring)."""
    out = [_side_head("A", a), _side_head("B", b)]
    if a.digest and a.digest == b.digest:
        out.append("identical: the two logs have the same digest")
        return Comparison(False, out)
    differ = False
    ma_names, mb_names = set(a.markets), set(b.markets)
    if ma_names != mb_names:
        differ = True
        out.append(
            f"markets    DIFFER: only in A: {', '.join(sorted(ma_names - mb_names)) or '-'}; "
            f"only in B: {', '.join(sorted(mb_names - ma_names)) or '-'}"
        )
    common = sorted(ma_names & mb_names)
    # Inputs.
    # Inputs compare only where both logs hold the market data between snapshots (level changes, trades).
    unknown = [n for n in common if not a.markets[n].get("flow") or not b.markets[n].get("flow")]
    diff_in = [
        n
        for n in common
        if n not in unknown and a.markets[n].get("inputs_sha256") != b.markets[n].get("inputs_sha256")
    ]
    if diff_in:
        differ = True
        out.append(
            f"inputs     DIFFERENT market data in {', '.join(diff_in)}: these are not runs of the same input"
        )
    elif unknown:
        out.append(
            f"inputs     not logged on both sides for {', '.join(unknown)} (compared what both logged)"
        )
    else:
        out.append(
            f"inputs     the same market data ({sum(a.markets[n]['inputs'] for n in common):,} events)"
        )
    # Decisions, then actions.
    first_market = ""
    if a.run is not None and b.run is not None:
        dec_differ, first_market = _decision_report(a, b, out)
        act_differ = _action_report(a, b, out) if not dec_differ else True
        differ |= dec_differ or act_differ
    else:
        parts = [
            n
            for n in common
            if (a.markets[n].get("decisions_sha256"), a.markets[n].get("decisions"))
            != (b.markets[n].get("decisions_sha256"), b.markets[n].get("decisions"))
        ]
        acts = [n for n in common if a.markets[n].get("actions_sha256") != b.markets[n].get("actions_sha256")]
        if parts:
            differ = True
            first_market = parts[0]
            counts = ", ".join(
                f"{n} ({a.markets[n].get('decisions', 0):,} vs "
                f"{b.markets[n].get('decisions', 0):,} decisions)"
                for n in parts
            )
            out.append(f"decisions  DIFFER in {counts}")
            out.append(
                "  a baseline keeps digests only: `just regress-diff SCENARIO` reruns the committed code "
                "and names the first divergent decision with both sides' reasons"
            )
        else:
            out.append("decisions  identical in every market (by digest)")
        if acts and not parts:
            differ = True
            out.append(f"actions    DIFFER in {', '.join(acts)} (by digest)")
    # Figures per market.
    per_a = {m["market"]: m for m in a.summary.get("per_market", []) if isinstance(m, dict)}
    per_b = {m["market"]: m for m in b.summary.get("per_market", []) if isinstance(m, dict)}
    out.append("per market")
    width = max((len(k) for k in FIGURES), default=10)
    any_fig = False
    for name in common:
        rows = _figure_rows(per_a.get(name, {}), per_b.get(name, {}), FIGURES)
        gap = None
        if a.run is not None and b.run is not None:
            gap = _inventory_gap(a.run.markets[name], b.run.markets[name])
        if not rows and gap is None:
            out.append(f"  {name}: identical figures")
            continue
        any_fig = True
        out.append(f"  {name}{'':{max(0, width - len(name) - 2)}}  {'A':>16}  {'B':>16}  {'B - A':>14}")
        for k, va, vb in rows:
            out.append(f"    {k.ljust(width)}{_fmt(va):>16}  {_fmt(vb):>16}  {_delta(va, vb):>14}")
        if gap is not None:
            start = min(a.run.start_ns, b.run.start_ns)  # type: ignore[union-attr]
            size, when, first = gap
            out.append(
                f"    inventory path: first apart at +{(first - start) / NS_PER_S:,.3f} s; largest gap "
                f"{size:,.2f} shares at +{(when - start) / NS_PER_S:,.3f} s"
            )
    tot = _figure_rows(a.summary, b.summary, TOTAL_FIGURES)
    if tot:
        any_fig = True
        out.append("totals")
        for k, va, vb in tot:
            out.append(f"    {k.ljust(width)}{_fmt(va):>16}  {_fmt(vb):>16}  {_delta(va, vb):>14}")
    differ |= any_fig
    if not differ:
        out.append(
            "identical: same decisions, actions and figures (the logs differ only in what they record)"
        )
    else:
        out.append("result     the runs DIFFER")
    return Comparison(differ, out, first_market)


def main(argv: list[str] | None = None) -> int:
    """``python -m research.diff --write-baseline RUN_DIR DEST``: what ``just regress-update`` runs."""
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="python -m research.diff")
    p.add_argument("--write-baseline", nargs=2, metavar=("RUN_DIR", "DEST"), required=True)
    args = p.parse_args(argv)
    try:
        path = write_baseline(*args.write_baseline)
    except RunFormatError as exc:
        print(str(exc), file=sys.stderr)  # noqa: T201
        return 2
    print(f"wrote    {path}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
