"""``polymm sim``: a deterministic simulation through the same sessions and actors that trade live."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from adapters.files import resolve_named_yaml
from adapters.recording import RecordingError, open_recording
from app.buildinfo import build_label
from app.commands import HELP
from app.compose import Deps, SimInputs, bootstrap
from app.configfile import (
    ConfigFileError,
    load_config,
    load_risk_config,
    load_struct,
    refuse_risk_manager,
)
from app.progress import Progress
from core.config import Config
from core.risk import risk_limits
from core.units import NS_PER_S, QTY_ONE, USDC6_ONE, format_qty
from research.report import write_report
from research.runlog import write_venue_marks
from sim.eventcols import COLUMNS_NAME
from sim.inputs import write_input_identity
from sim.scenario import Scenario, WsReplaySource, scenario_tapes
from sim.summary import data_lines, pnl_line, run_summary
from sim.tape_cache import TapeCache

SCENARIO_DIR = Path("configs/scenarios")
DEFAULT_SCENARIO = "default"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sim`` subcommand."""
    p = sub.add_parser(
        "sim",
        help=HELP["sim"],
        description=(
            "Replay a scenario (synthetic, recorded WebSocket, BBO polls or hftbacktest .npz data) through "
            "the market sessions with a simulated venue: queue position, latency, fees and resolution. "
            "Writes OUT/events.npz (what the run decided and did, in columns: `polymm events OUT` prints "
            "it as JSON lines), OUT/input.json (the input's path and sha256, or the generated scenario "
            "and its seed: the input is not copied), OUT/summary.json and OUT/report.html (see "
            "`polymm report`; --no-report skips it); the same inputs and seed always give the same "
            "`digest`, with either engine. The tapes a source makes (synthetic, BBO polls, recordings) "
            "are cached by content in $POLYMM_TAPE_CACHE [~/.cache/polymm/tapes; off: no cache], so a "
            "second run reads columns."
        ),
    )
    p.add_argument("--config", required=True, help="strategy YAML, e.g. configs/market_maker.yaml")
    p.add_argument(
        "--risk-config",
        default=None,
        help="a risk_manager config (configs/risk.yaml) whose risk limits apply [--config's risk section]",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--scenario",
        default=None,
        help=f"scenario name in {SCENARIO_DIR}/ or a YAML path [{DEFAULT_SCENARIO}]",
    )
    which.add_argument(
        "--replay",
        metavar="REC",
        default=None,
        help="a recording (`polymm record`, or a session's market_data/...): its directory or one of its "
        "files, with no scenario file: markets, ticks, sizes and fees from its manifest",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="with --replay: replay as the session ran it (receive times, the session's own timers, "
        "the live engine's code; no fills, or a paper session's recorded fills): a dry-run or paper "
        "session's recording gives its decisions again",
    )
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument(
        "--engine",
        choices=("inline", "actors"),
        default="inline",
        help="inline: sessions called directly (fast); actors: one pykka actor per market [inline]",
    )
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--quiet", action="store_true", help="print only the digest")
    p.add_argument("--no-report", action="store_true", help="skip OUT/report.html (see `polymm report`)")
    p.set_defaults(run=run)


def resolve_scenario(name: str) -> Path:
    """A scenario name (``default``) or a path to a YAML file."""
    try:
        return resolve_named_yaml(name, SCENARIO_DIR, "scenario")
    except FileNotFoundError as exc:
        raise ConfigFileError(f"--scenario: {exc}") from None


def simulate(
    config_path: str,
    scenario_path: Path,
    seed: int | None,
    engine: str,
    out_dir: Path,
    progress: bool = True,
    *,
    config: Config | None = None,
    scenario: Scenario | None = None,
    risk_config: str | None = None,
) -> dict[str, Any]:
    """Run one simulation; returns the summary (also written to ``out_dir/summary.json``).

    ``config``/``scenario``, when given, are used instead of reading ``config_path`` (then only a
    label) and ``scenario_path`` (then only where the scenario's relative data paths start). The risk
    rules run with the limits of ``risk_config`` (a risk_manager config), else of the config's own
    ``risk`` section.
    """
    cfg = config if config is not None else load_config(config_path)
    refuse_risk_manager(cfg, config_path)
    risk_cfg = load_risk_config(risk_config) if risk_config else cfg
    sc = scenario if scenario is not None else load_struct(scenario_path, Scenario)
    if seed is not None:
        sc = msgspec.structs.replace(sc, seed=seed)
    try:
        tapes = scenario_tapes(sc, scenario_path.parent, TapeCache.from_env())
    except (OSError, ValueError) as exc:
        raise ConfigFileError(f"{scenario_path}: source: {exc}") from None
    if not tapes:
        raise ConfigFileError(f"{scenario_path}: source: no market data")
    inv = cfg.inventory
    settings = sc.settings(round(inv.global_ev_cap * USDC6_ONE), round(inv.event_cap * USDC6_ONE))
    sim = SimInputs(settings, sc.seed, risk_limits(risk_cfg))
    runner = bootstrap(cfg, "sim", tapes, deps=Deps(), sim=sim)  # (app.compose: the one composition root)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The input's identity, not a copy of it: research.runlog re-reads it to rebuild the market data.
    write_input_identity(out_dir, sc, scenario_path.parent)
    t0 = time.perf_counter()
    runner.run(engine, Progress(f"sim {sc.name or scenario_path.stem}") if progress else None)  # type: ignore[arg-type]
    digest = runner.log.save(out_dir / COLUMNS_NAME)
    wall = time.perf_counter() - t0
    write_venue_marks(out_dir, runner.lanes)
    summary = run_summary(runner.lanes, runner.risk)
    head = {
        "scenario": sc.name or scenario_path.stem,
        "config": config_path,
        "risk_config": risk_config,
        "strategy": cfg.strategy,
        "seed": sc.seed,
        "engine": engine,
        "build": build_label(),
        "events_processed": summary.pop("events_processed"),
        "wall_seconds": round(wall, 3),
        "events_per_s": round(runner.events_total / wall) if wall > 0 else None,
        "windows": runner.windows,
        "digest": digest,
    }
    full = head | summary
    (out_dir / "summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(full)) + b"\n")
    return full


def replay_scenario(path: Path) -> Scenario:
    """A scenario replaying the recording at ``path`` (no YAML): the venue simulated as by default."""
    try:
        rec = open_recording(path)
    except RecordingError as exc:
        raise ConfigFileError(f"polymm sim: --replay: {exc}") from None
    name = f"replay-{rec.name}"
    return Scenario(
        name=name, description=f"the recording {path}", source=WsReplaySource(path=str(path.resolve()))
    )


def dry_run_replay(args: argparse.Namespace, path: Path, out: Path) -> int:
    """``--replay REC --dry-run``: the recording through the live engine's pieces, as its session ran.

    A dry-run session, or a ``polymm record`` recording, replays as a dry-run session; a paper
    session's recording with its paper venue's recorded reports (``sim.session_replay``).

    Built by the composition root (``app.compose.bootstrap``, mode ``replay``) like every engine.
    """
    from sim.session_replay import read_replay, run_replay  # noqa: PLC0415

    cfg = load_config(args.config)
    refuse_risk_manager(cfg, args.config)
    if args.risk_config:
        raise ConfigFileError(
            "polymm sim: --risk-config does not apply with --dry-run: a session's recording replays the "
            "risk manager's gates it recorded (a `polymm record` recording replays without risk rules)"
        )
    try:
        source = read_replay(open_recording(path))
    except RecordingError as exc:
        raise ConfigFileError(f"polymm sim: --replay: {exc}") from None
    replay = bootstrap(cfg, "replay", source.markets, deps=Deps(), replay=source)
    s = run_replay(replay, source, out)
    report = None if args.no_report else write_report(out)
    if args.quiet:
        print(s["digest"])
        return 0
    counts = s["counts"]
    print(
        f"replay   {path} as a {s['mode']} session ({s['markets']} markets, {s['seconds']:,.1f} s, "
        f"engine inputs {s['engine_inputs']})"
    )
    print(
        f"input    {counts.get('frames', 0):,} frames, {s['events_in']:,} market events (YES book), "
        f"{counts.get('gaps', 0)} gaps, {s['skipped']} malformed"
    )
    decided = f"decided  {sum(s['decisions'].values()):,} decisions; "
    if s["mode"] == "paper":
        print(
            f"{decided}the paper venue's recorded reports: {counts.get('reports', 0):,} handed over "
            f"({counts.get('fills', 0):,} fills), {counts.get('unfit_reports', 0):,} fitting no order of "
            "the replay"
        )
    else:
        print(f"{decided}orders acknowledged, none filled (dry-run)")
    if s["diverged"] is not None:
        d = s["diverged"]
        print(f"DIVERGED at {d['ts_ns']} in {d['market']}: {d['why']}")
    for note in s["notes"]:
        print(f"note     {note}")
    print(f"digest   {s['digest']}")
    print(f"wrote    {out / 'events.jsonl'}, {out / 'replay.json'}")
    if report is not None:
        print(f"         {report}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the simulation and print a readable summary."""
    out = Path(args.out)
    scenario: Scenario | None = None
    if args.replay is not None:
        scenario_path = Path(args.replay)
        if not scenario_path.exists():
            raise ConfigFileError(f"polymm sim: --replay: {scenario_path}: no such file or directory")
        if args.dry_run:
            return dry_run_replay(args, scenario_path, out)
        scenario = replay_scenario(scenario_path)
    elif args.dry_run:
        raise ConfigFileError("polymm sim: --dry-run replays a recording: give --replay REC")
    else:
        scenario_path = resolve_scenario(args.scenario or DEFAULT_SCENARIO)
    s = simulate(
        args.config,
        scenario_path,
        args.seed,
        args.engine,
        out,
        not args.quiet,
        scenario=scenario,
        risk_config=args.risk_config,
    )
    report = None if args.no_report else write_report(out)
    if args.quiet:
        print(s["digest"])
        return 0
    print(render(s, out))
    if report is not None:
        print(f"         {report}")
    return 0


def risk_lines(s: dict[str, Any]) -> list[str]:
    """The risk manager's HALTs and the count of its pauses, for people."""
    r = s.get("risk")
    if not r:
        return []
    lines = []
    for h in r["halts"]:
        when = datetime.fromtimestamp(h["ts_ns"] // NS_PER_S, UTC).strftime("%H:%M:%SZ")
        lines.append(f"         HALTED {h['market'] or 'the book'} at {when}: {h['text']}")
    counts = r["counts"]
    lines.append(
        f"         book {r['book_state']}; {counts['halted']} halted, {counts['paused']} paused, "
        f"{counts['reduce_only']} reduce-only, {counts['widened']} widened by a fast move"
    )
    return lines


def reward_lines(s: dict[str, Any]) -> list[str]:
    """The liquidity-reward samples for people: the fraction where our orders scored, per market."""
    r = s.get("rewards")
    if not r:
        return []
    rewarded = [m for m in s.get("per_market", []) if "rewards" in m]
    per = ", ".join(f"{m['market']} {m['rewards']['scoring_fraction']:.1%}" for m in rewarded)
    return [
        f"rewards  {s['pnl_usdc'].get('rewards', 0.0):+,.2f} USDC; our orders scored in "
        f"{r['scoring_fraction']:.1%} of {r['samples']:,} minute samples ({per})"
    ]


def merge_lines(s: dict[str, Any]) -> list[str]:
    """The merges of YES+NO pairs for people (none: no line)."""
    m = s.get("merges")
    if not m:
        return []
    failed = f", {m['failed']} failed" if m["failed"] else ""
    return [
        f"merges   {m['count']} merges of {m['pairs_shares']:,.2f} YES+NO pairs freed {m['freed_usdc']:,.2f} "
        f"USDC of collateral{failed}"
    ]


def render(s: dict[str, Any], out: Path) -> str:
    """The summary for people."""
    pnl = s["pnl_usdc"]  # its parts: sim.summary.pnl_line
    mk = s["markouts"]
    spread = s["avg_quoted_spread_px"]
    lines = [
        f"scenario {s['scenario']}  seed {s['seed']}  engine {s['engine']} ({s.get('build', 'pure Python')})"
        f"  markets {s['markets']}",
        f"events   {s['events_processed']:,} in {s['wall_seconds']:.2f} s ({s['events_per_s'] or 0:,}/s)",
        f"fills    {s['fills']['maker']} maker, {s['fills']['taker']} taker   "
        f"volume {s['volume_shares']:,.2f} shares / {s['volume_usdc']:,.2f} USDC",
        f"pnl      {pnl_line(pnl)}",
        *reward_lines(s),
        *merge_lines(s),
        f"risk     max |inventory| {format_qty(round(s['max_abs_inventory_shares'] * QTY_ONE))} shares",
        *risk_lines(s),
        f"quoting  uptime {s['quote_uptime']:.1%}   avg spread "
        + (f"{spread / 100:.2f} cents" if spread is not None else "n/a"),
        "markouts " + "   ".join(f"+{h} {v['px_per_share'] / 100:+.2f}c/share" for h, v in mk.items()),
        *data_lines(s),
        f"digest   {s['digest']}",
        f"wrote    {out / COLUMNS_NAME} (polymm events {out}), {out / 'summary.json'}",
    ]
    return "\n".join(lines)
