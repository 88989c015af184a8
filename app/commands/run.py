"""``polymm run-market-maker``: quote the routed (or freshly selected) markets live, on paper or dry."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from adapters.market_cache import MarketCacheError, load_selected_markets
from app.bootstrap import Mode, TradingEngine
from app.configfile import ConfigFileError, load_config
from core.config import Config
from core.markets import MarketInfo
from core.units import QTY_ONE, format_px, format_qty, format_usdc6
from sim.summary import market_summary, pnl_line, totals

log = logging.getLogger("polymm")

DEFAULT_CLOB_URL = "https://clob.polymarket.com"
DEFAULT_WS_URL = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
DEFAULT_GAMMA_URL = "https://gamma-api.polymarket.com"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run-market-maker`` subcommand."""
    p = sub.add_parser(
        "run-market-maker",
        help="quote the selected markets: live, paper (simulated fills on the live book) or dry-run",
        description=(
            "Quote the markets routed to this strategy (ops.selected_markets_path) or, when that file does "
            "not exist, markets selected fresh from Gamma. --mode dry-run (the default) decides and logs "
            "every decision with its reasons and sends nothing; --mode paper fills against the live book "
            "with the simulator's queue model and reports PnL; --mode live sends post-only orders through "
            "py-clob-client-v2, needs ops.dry_run: false in the config and a key (POLYMM_PRIVATE_KEY or "
            "--key-file). On SIGINT/SIGTERM or "
            "after --duration every order is cancelled before exit."
        ),
    )
    p.add_argument("--config", required=True, help="strategy YAML, e.g. configs/market_maker.yaml")
    p.add_argument("--mode", choices=("live", "paper", "dry-run"), default="dry-run", help="[dry-run]")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
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
    p.add_argument("--user-ws-url", default=None, help="user channel [the market channel URL with /user]")
    p.add_argument(
        "--data-api-url",
        default=os.environ.get("POLYMM_DATA_API_URL"),
        help="Data API, for positions (live) [production's; the CLOB URL + /data-api for another CLOB]",
    )
    p.add_argument(
        "--key-file", default=None, help="file holding the private key (live; else POLYMM_PRIVATE_KEY)"
    )
    p.add_argument("--state-dir", default=None, help="where events.jsonl goes [ops.state_dir]")
    p.set_defaults(run=run)


def choose_markets(cfg: Config, gamma_url: str, config_path: str) -> tuple[list[MarketInfo], str]:
    """Routed markets when the selection file exists, else a fresh selection; says which."""
    path = Path(cfg.ops.selected_markets_path)
    if path.exists():
        try:
            records = load_selected_markets(path)
        except MarketCacheError as exc:
            raise ConfigFileError(f"{config_path}: ops.selected_markets_path: {exc}") from None
        return [r.to_info() for r in records], f"using {len(records)} routed markets from {path}"
    from app.commands.markets import discover_markets  # noqa: PLC0415 (Gamma only when needed)

    found = discover_markets(cfg, now_ns=time.time_ns(), gamma_url=gamma_url)
    chosen = list(found.selection.selected)
    how = f"no routed markets at {path} (ops.selected_markets_path): selected {len(chosen)} fresh"
    return [r.to_info() for r in chosen], f"{how} from {gamma_url}"


def run(args: argparse.Namespace) -> int:
    """Run until the duration ends or a signal arrives, then cancel everything and summarise."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config)
    mode: Mode = args.mode
    if cfg.strategy == "risk_manager":
        raise ConfigFileError(f"{args.config}: strategy: a risk_manager config places no quotes")
    if mode == "live" and cfg.ops.dry_run:
        raise ConfigFileError(
            f"{args.config}: ops.dry_run: true refuses --mode live; set it to false in your own copy"
        )
    markets, how = choose_markets(cfg, args.gamma_url, args.config)
    print(f"mode {mode}: {how}")
    if not markets:
        print("no markets to quote; nothing to do")
        return 0
    state_dir = Path(args.state_dir or cfg.ops.state_dir)
    live: dict[str, Any] = {}
    if mode == "live":
        from app.live import start_live  # noqa: PLC0415 (py-clob-client-v2 only when trading)

        live = start_live(args, cfg, markets)
    engine = TradingEngine(
        cfg,
        markets,
        mode,
        ws_url=args.ws_url,
        clob_url=args.clob_url,
        state_dir=state_dir,
        live_port=live.get("port"),
        inventory=live.get("inventory"),
    )
    if mode == "live":
        live["attach"](engine)
    for m in markets:
        event = f"  event {m.neg_risk_market_id[:12]}" if m.neg_risk_market_id else ""
        print(
            f"  {m.market}  tick {format_px(m.tick_px)} USDC  min {format_qty(m.min_qty)} shares{event}"
            f"  {m.question[:70]}"
        )
    inv = cfg.inventory
    print(
        f"limits: worst-case loss {inv.per_market_ev_cap:g} USDC per market, {inv.event_cap:g} USDC per "
        f"neg-risk event, {inv.global_ev_cap:g} USDC in all; maker_only {inv.maker_only}; "
        f"events -> {state_dir / 'events.jsonl'}"
    )
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        print(f"\n{signal.Signals(signum).name}: cancelling every order", file=sys.stderr)
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    statuses: dict[str, Any] = {}
    venue_summary: dict[str, Any] | None = None
    paper: dict[str, Any] = {}
    try:
        engine.start()
        done.wait(args.duration)
    finally:
        # Whatever happened above, every order is cancelled before we exit: each step is guarded
        # so a failing status query cannot skip the gateway's shutdown.
        for s, h in previous.items():
            signal.signal(s, h)
        try:
            statuses = engine.statuses()
        except Exception:
            log.exception("status before shutdown failed")
        try:
            engine.stop()
        finally:
            if mode == "live":
                venue_summary = live["shutdown"]()
            try:
                paper = engine.paper_markets()
            finally:
                engine.close()
    report = venue_summary.pop("report", None) if venue_summary else None
    print(summarise(mode, engine, statuses, paper, venue_summary))
    return shutdown_exit_code(report)


def shutdown_exit_code(report: Any) -> int:
    """0 when every order of ours is confirmed gone; 1, naming the orders that may remain, when not."""
    if report is None or report.confirmed:
        return 0
    print(
        f"shutdown NOT confirmed: {len(report.remaining)} orders of ours may still be open at the venue"
        " (its heartbeat switch cancels them about 10 s after our last heartbeat):",
        file=sys.stderr,
    )
    for line in report.described or report.remaining:
        print(f"  {line}", file=sys.stderr)
    return 1


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
        lines.append("venue    " + "  ".join(f"{k} {v}" for k, v in venue_summary.items()))
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
