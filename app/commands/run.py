"""``polymm run-market-maker``: quote the routed (or freshly selected) markets live, on paper or dry."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.clock import LiveClock
from adapters.gamma import GammaClient, GammaError
from adapters.market_cache import MarketCacheError, describe_source, read_markets_file, selection_problem
from adapters.runlog import BYTES_PER_MB, RunDirError, RunLog, run_header, source_commit
from app.bootstrap import Mode, TradingEngine
from app.commands import HELP
from app.commands.quote import levels_below_minimum
from app.compose import Deps, bootstrap
from app.configfile import (
    ConfigFileError,
    ServiceUnavailable,
    load_config,
    load_risk_config,
    refuse_risk_manager,
)
from app.console import setup_logging, status_lines, wait_reporting
from app.operations import RiskSetup
from app.signals import EXIT_ORDERS_MAY_REMAIN, ShutdownSignals
from core.config import Config
from core.markets import MarketInfo
from core.quoting import quote_params
from core.units import QTY_ONE, format_px, format_qty, format_usdc6
from research.report import REPORT_NAME, write_session_report
from sim.summary import market_summary, pnl_line, totals

if TYPE_CHECKING:
    pass

log = logging.getLogger("polymm")

DEFAULT_CLOB_URL = "https://clob.polymarket.com"
DEFAULT_WS_URL = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
DEFAULT_GAMMA_URL = "https://gamma-api.polymarket.com"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run-market-maker`` subcommand."""
    p = sub.add_parser(
        "run-market-maker",
        help=HELP["run-market-maker"],
        description=(
            "Quote the markets routed to this strategy (ops.selected_markets_path) or, when that file does "
            "not exist, markets selected fresh from Gamma. --mode dry-run (the default) decides and logs "
            "every decision with its reasons and sends nothing; --mode paper fills against the live book "
            "with the simulator's queue model and reports PnL; --mode live sends post-only orders through "
            "the venue's official client (polymarket-client; V1 and Protocol V2 markets), needs "
            "ops.dry_run: false in the config and a key (POLYMM_PRIVATE_KEY or "
            "--key-file). On SIGINT/SIGTERM or after --duration every order is cancelled and confirmed "
            "before exit; a second signal forces an exit within 5 s after one cancel-all. Exit codes: 0 "
            "done, 1 Gamma or the venue unreachable at start, 2 bad input (config, flags, credentials), "
            "3 orders of ours may remain open (cancels not confirmed), 130/143 forced by a second "
            "signal with every order cancelled."
        ),
    )
    p.add_argument("--config", required=True, help="strategy YAML, e.g. configs/market_maker.yaml")
    p.add_argument("--mode", choices=("live", "paper", "dry-run"), default="dry-run", help="[dry-run]")
    p.add_argument("--duration", type=duration_s, default=None, help="seconds to run (default: until Ctrl-C)")
    p.add_argument(
        "--clob-url",
        default=os.environ.get("POLYMM_CLOB_URL", DEFAULT_CLOB_URL),
        help="CLOB REST [production]",
    )
    p.add_argument("--ws-url", default=os.environ.get("POLYMM_WS_URL", DEFAULT_WS_URL), help="market channel")
    p.add_argument(
        "--gamma-url",
        default=os.environ.get("POLYMM_GAMMA_URL", DEFAULT_GAMMA_URL),
        help="Gamma API [production]",
    )
    p.add_argument(
        "--gamma-retries",
        type=int,
        default=4,
        metavar="N",
        help="retries on Gamma 429/5xx/network errors when selecting markets [4]",
    )
    p.add_argument("--user-ws-url", default=None, help="user channel [the market channel URL with /user]")
    p.add_argument(
        "--data-api-url",
        default=os.environ.get("POLYMM_DATA_API_URL"),
        help="Data API, for positions (live) [production's; the CLOB URL + /data-api for another CLOB]",
    )
    p.add_argument(
        "--key-file", default=None, help="file holding the private key (live; else POLYMM_PRIVATE_KEY)"
    )
    p.add_argument(
        "--state-dir",
        default=None,
        help="where each session's run directory goes (runs/<UTC time>-<mode>-<id>/) [ops.state_dir]",
    )
    p.add_argument(
        "--risk-config",
        default=None,
        help="a risk_manager config (configs/risk.yaml) whose risk limits apply [--config's risk section]",
    )
    p.add_argument(
        "--no-report",
        action="store_true",
        help="paper and dry-run: skip RUN_DIR/report.html at the end (see `polymm report`)",
    )
    p.set_defaults(run=run)


#: Longest --duration: ten years (a bound the OS timers take; "until Ctrl-C" is no --duration).
MAX_DURATION_S = 10 * 365 * 86_400.0
#: How long a forced exit waits for its run_end record to reach the disk (within app.signals'
#: FORCE_EXIT_S, after the cancel-all's CANCEL_BUDGET_S).
FORCED_FLUSH_S = 0.5


def duration_s(text: str) -> float:
    """``--duration``: finite seconds, at least 0 and at most ten years."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_DURATION_S:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and {MAX_DURATION_S:g} seconds")
    return value


def choose_markets(
    cfg: Config, gamma_url: str, config_path: str, now_ns: int | None = None, *, gamma_retries: int = 4
) -> tuple[list[MarketInfo], str]:
    """Routed markets when the selection file may be traded, else a fresh selection; says which and why.

    The routed file (``ops.selected_markets_path``) is used only when its markets came from the Gamma
    this run points at and were fetched at most ``ops.selected_markets_max_age_s`` ago; otherwise
    markets are selected fresh, or the run stops (``ops.stale_selection: stop``).
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    path = Path(cfg.ops.selected_markets_path)
    if path.exists():
        try:
            doc = read_markets_file(path)
        except MarketCacheError as exc:
            raise ConfigFileError(f"{config_path}: ops.selected_markets_path: {exc}") from None
        problem = selection_problem(
            doc, gamma_url=gamma_url, now_ns=now_ns, max_age_s=cfg.ops.selected_markets_max_age_s
        )
        if problem is None:
            try:
                infos = [e.market.to_info() for e in doc.markets]
            except ValueError as exc:
                raise ConfigFileError(f"{config_path}: ops.selected_markets_path: {path}: {exc}") from None
            return infos, f"using {len(infos)} routed markets from {path} ({describe_source(doc, now_ns)})"
        if cfg.ops.stale_selection == "stop":
            raise ConfigFileError(
                f"{config_path}: ops.stale_selection: stop: routed markets at {path} not used: {problem}"
            )
        how = f"routed markets at {path} not used: {problem}; selected"
    else:
        how = f"no routed markets at {path} (ops.selected_markets_path): selected"
    from app.commands.markets import discover_markets  # noqa: PLC0415 (Gamma only when needed)

    try:
        with GammaClient(gamma_url, retries=max(gamma_retries, 0)) as client:
            found = discover_markets(cfg, now_ns=now_ns, gamma_url=gamma_url, client=client)
    except GammaError as exc:
        raise ServiceUnavailable(f"polymm run-market-maker: cannot select markets: {exc}") from None
    chosen = list(found.selection.selected)
    return [r.to_info() for r in chosen], f"{how} {len(chosen)} fresh from {gamma_url}"


def size_warnings(cfg: Config, markets: list[MarketInfo]) -> list[str]:
    """One line per market whose minimum order size leaves configured levels unquoted."""
    params = quote_params(cfg)
    out = []
    for m in markets:
        problem = levels_below_minimum(params, m.min_qty)
        if problem is not None:
            out.append(f"  cannot quote {m.market} as configured: {problem}")
    return out


def _state_dir(path: Path, flag: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".polymm-write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigFileError(f"{flag}: cannot write to {path}: {exc.strerror or exc}") from None
    return path


def shutdown_exit_code(venue_summary: dict[str, Any] | None) -> int:
    """0 when every order is known cancelled (or none was ever sent), else ``EXIT_ORDERS_MAY_REMAIN``.

    When cancels could not be confirmed, every order that may remain is named on stderr (the
    gateway's ``ShutdownReport``: venue id, market, our client id).
    """
    if venue_summary is None or venue_summary.get("confirmed", True):
        return 0
    named = venue_summary.get("may_remain") or ()
    print(
        f"shutdown NOT confirmed: {venue_summary.get('still_open', len(named))} orders of ours may still be"
        " open at the venue (its heartbeat switch cancels them about 10 s after our last heartbeat):",
        file=sys.stderr,
    )
    for line in named:
        print(f"  {line}", file=sys.stderr)
    return EXIT_ORDERS_MAY_REMAIN


def run(args: argparse.Namespace) -> int:
    """Run until the duration ends or a signal arrives, then cancel everything and summarise."""
    cfg = load_config(args.config)
    mode: Mode = args.mode
    refuse_risk_manager(cfg, args.config)
    if getattr(args, "risk_config", None):
        load_risk_config(args.risk_config)  # a wrong file stops the run here, before anything starts
    if mode == "live" and cfg.ops.dry_run:
        raise ConfigFileError(
            f"{args.config}: ops.dry_run: true refuses --mode live; set it to false in your own copy"
        )
    state_dir = _state_dir(
        Path(args.state_dir or cfg.ops.state_dir),
        "--state-dir" if args.state_dir else f"{args.config}: ops.state_dir",
    )
    human_log = Path(cfg.ops.log_path)
    try:
        restore_logging = setup_logging(human_log, rotate_bytes(cfg))
    except OSError as exc:
        raise ConfigFileError(
            f"{args.config}: ops.log_path: cannot write to {human_log}: {exc.strerror or exc}"
        ) from None
    try:
        return _run(args, cfg, mode, state_dir, human_log)
    finally:
        restore_logging()


def rotate_bytes(cfg: Config) -> int:
    """``ops.log_rotate_mb`` in bytes."""
    return max(1, round(cfg.ops.log_rotate_mb * BYTES_PER_MB))


def _open_run_log(state_dir: Path, mode: Mode, cfg: Config, flag: str) -> RunLog:
    try:
        return RunLog.create(state_dir, mode, cfg, start_ns=time.time_ns(), rotate_bytes=rotate_bytes(cfg))
    except RunDirError as exc:
        raise ConfigFileError(f"{flag}: {exc}") from None


def _run(args: argparse.Namespace, cfg: Config, mode: Mode, state_dir: Path, human_log: Path) -> int:
    markets, how = choose_markets(
        cfg, args.gamma_url, args.config, gamma_retries=getattr(args, "gamma_retries", 4)
    )
    print(f"mode {mode}: {how}")
    if not markets:
        print("no markets to quote; nothing to do")
        return 0
    risk = RiskSetup.load(args, cfg, mode, state_dir, markets)
    run_log = _open_run_log(
        state_dir, mode, cfg, "--state-dir" if args.state_dir else f"{args.config}: ops.state_dir"
    )
    try:
        code = _trade(args, cfg, mode, markets, run_log, human_log, risk)
    finally:
        run_log.close()
    if mode in REPORTED_MODES and not getattr(args, "no_report", False):
        write_run_report(run_log.directory)
    return code


#: The modes whose run directory gets its report.html when the session ends (as ``polymm sim`` does).
REPORTED_MODES: tuple[Mode, ...] = ("paper", "dry-run")


def write_run_report(run_dir: Path) -> None:
    """Write ``run_dir/report.html`` from the closed event log; a failure or a Ctrl-C only skips it.

    Every order is cancelled by now: nothing here changes the session's exit code.
    """
    print(f"report   writing {run_dir / REPORT_NAME} ...", flush=True)
    try:
        path = write_session_report(run_dir)
    except KeyboardInterrupt:
        print("report   skipped (interrupted); `polymm report RUN_DIR` writes it later", flush=True)
        return
    if path is None:
        print(f"report   none (see the log); `polymm report {run_dir}` says why", flush=True)
    else:
        print(f"report   {path}", flush=True)


def _trade(
    args: argparse.Namespace,
    cfg: Config,
    mode: Mode,
    markets: list[MarketInfo],
    run_log: RunLog,
    human_log: Path,
    risk: RiskSetup,
) -> int:
    clock = LiveClock()
    sink = run_log.sink
    log.info("run %s: mode %s, pid %d, config %s", run_log.directory, mode, os.getpid(), args.config)

    def header(wallet: str | None, markets: Sequence[MarketInfo]) -> None:
        urls = {
            "clob": args.clob_url,
            "ws_market": args.ws_url,
            "ws_user": getattr(args, "user_ws_url", None),
            "gamma": args.gamma_url,
            "data_api": getattr(args, "data_api_url", None),
        }
        head = run_header(
            mode=mode,
            run_dir=run_log.directory,
            config_path=args.config,
            cfg=cfg,
            markets=markets,
            wallet=wallet,
            urls=urls,
            human_log=human_log.resolve(),
            commit=source_commit(),
        )
        sink.record("run", clock.now_ns(), "", head)

    built = bootstrap(
        cfg,
        mode,
        markets,
        deps=Deps(clock=clock, sink=sink, risk=risk),
        args=args,
        run_dir=run_log.directory,
        announce=header,
    )
    markets, engine, monitor = built.markets, built.trading, built.monitor
    assert monitor is not None  # (a run always has its risk setup)
    for m in markets:
        event = f"  event {m.neg_risk_market_id[:12]}" if m.neg_risk_market_id else ""
        print(
            f"  {m.market}  tick {format_px(m.tick_px)} USDC  min {format_qty(m.min_qty)} shares{event}"
            f"  {m.question[:70]}"
        )
    for line in size_warnings(cfg, markets):
        print(line)
    inv = cfg.inventory
    print(
        f"limits: worst-case loss {inv.per_market_ev_cap:g} USDC per market, {inv.event_cap:g} USDC per "
        f"neg-risk event, {inv.global_ev_cap:g} USDC in all; maker_only {inv.maker_only}; "
        f"events -> {run_log.directory / 'events.jsonl'}"
    )
    print(f"log -> {human_log} (warnings and errors here too); status every {cfg.ops.status_interval_s:g} s")
    for line in risk.lines(monitor):
        print(line)

    def report_status() -> None:
        tracker = engine.reward_tracker
        lines = status_lines(
            engine.statuses().values(), clock.now_ns(), tracker.snapshot() if tracker is not None else None
        )
        print("\n".join(lines), flush=True)
        for line in lines[1:]:
            log.info("status %s", line.strip())

    # A first SIGINT/SIGTERM shuts down in order; a second forces an exit within 5 s (app.signals).
    # The handlers stay until the shutdown below is over.
    signals = ShutdownSignals(cancel_all_now=built.cancel_all_now)

    def forced_run_end(code: int, detail: dict[str, Any]) -> None:
        # A forced exit ends with os._exit: the log's last record says so, written before it goes.
        sink.record("run_end", clock.now_ns(), "", {"exit_code": code, "forced": True, **detail})
        sink.close(timeout_s=FORCED_FLUSH_S)

    signals.on_forced_exit = forced_run_end
    signals.install()
    try:
        try:
            built.start()
            wait_reporting(signals.requested, args.duration, cfg.ops.status_interval_s, report_status)
        finally:
            # Whatever happened above, every order is cancelled before we exit (Engine.shutdown).
            stopped = built.shutdown()
    finally:
        signals.restore()
    statuses, paper, venue_summary = stopped.statuses, stopped.paper, stopped.venue_summary
    print(summarise(mode, engine, statuses, paper, venue_summary))
    code = shutdown_exit_code(venue_summary)
    sink.record("run_end", clock.now_ns(), "", run_end(code, statuses, venue_summary))
    return code


def run_end(code: int, statuses: dict[str, Any], venue_summary: dict[str, Any] | None) -> dict[str, Any]:
    """The last record of a run's event log: the exit code, each market's position and counts."""
    return {
        "exit_code": code,
        "venue": venue_summary,
        "markets": {
            m: {
                "yes_qty": s.yes_qty,
                "no_qty": s.no_qty,
                "cash_usdc6": s.cash_usdc6,
                "pnl_usdc6": s.pnl_usdc6,
                "fills": s.fills,
                "decisions": s.decisions,
                "open_orders": s.open_orders,
            }
            for m, s in sorted(statuses.items())
        },
    }


def summarise(
    mode: Mode,
    engine: TradingEngine,
    statuses: dict[str, Any],
    paper: dict[str, Any],
    venue_summary: dict[str, Any] | None,
) -> str:
    """The end-of-run summary for people."""
    decisions = sum(s.decisions for s in statuses.values())
    events = engine.dispatch.events_in
    lines = [f"{mode}: {len(statuses)} markets, {events:,} market events (YES book), {decisions:,} decisions"]
    if mode == "dry-run":
        lines.append("order requests sent: 0 (dry-run)")
    if paper:
        per = [
            market_summary(
                pm.market,
                pm.exchange,
                pm.events,
                pm.markouts,
                pm.resolution,
                {"decisions": statuses[m].decisions if m in statuses else 0},
            )
            for m, pm in sorted(paper.items())
        ]
        t = totals(per)
        lines += [
            f"fills    {t['fills']['maker']} maker, {t['fills']['taker']} taker   "
            f"volume {_shares(t['volume_shares'])} shares / {t['volume_usdc']:,.2f} USDC",
            f"pnl      {pnl_line(t['pnl_usdc'])}",
            f"quoting  uptime {t['quote_uptime']:.1%}   "
            f"max |inventory| {_shares(t['max_abs_inventory_shares'])} shares",
        ]
    if venue_summary:
        shown = {k: v for k, v in venue_summary.items() if k != "may_remain"}
        lines.append("venue    " + "  ".join(f"{k} {v}" for k, v in shown.items()))
    for m, s in sorted(statuses.items()):
        # Positions are exact to the 1e-6 share (fills come in any size): every decimal is printed.
        lines.append(
            f"  {m[:20]:<20} inventory {_signed(format_qty(s.yes_qty - s.no_qty))} shares net YES "
            f"(YES {format_qty(s.yes_qty)}, NO {format_qty(s.no_qty)})  cash "
            f"{_signed(format_usdc6(s.cash_usdc6))} USDC  fills {s.fills}"
        )
    return "\n".join(lines)


def _signed(text: str) -> str:
    return text if text.startswith("-") or text == "0" else "+" + text


def _shares(value: float) -> str:
    # A share count from a summary, with every decimal a size can have (1e-6 share).
    return format_qty(round(value * QTY_ONE))
