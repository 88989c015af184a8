"""``polymm demo-live``: the market maker trading live against the loopback exchange emulator.

Starts the emulator in this process, runs ``run-market-maker --mode live`` against it with a fresh
throwaway key (the emulator credits every new wallet) through the venue's official client
(polymarket-client), and after shutdown reads the emulator's own REST status: the bot's open orders
must be zero. Orders accepted, filled and cancelled are counted per protocol (V1 token ids, Protocol
V2 position ids, as the emulator's Gamma lists each market). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from adapters.runlog import latest_run_dir, read_events
from app.commands import HELP
from app.commands import run as run_cmd


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo-live`` subcommand."""
    p = sub.add_parser(
        "demo-live",
        help=HELP["demo-live"],
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default="configs/market_maker.yaml")
    p.add_argument("--scenario", default="default", help="emulator scenario [default]")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of live trading [60]")
    p.add_argument("--out", default="runs/demo-live", help="state directory [runs/demo-live]")
    p.set_defaults(run=run)


def skew_check(run_dir: Path | None) -> dict[str, int]:
    """How logged decisions moved with inventory: long must lower the skewed mid, short raise it."""
    long_lower = long_not = short_higher = short_not = 0
    for e in read_events(run_dir) if run_dir is not None else ():
        if e.get("kind") != "decision" or not e.get("quote"):
            continue
        inv = e["reasons"]["inventory_qty"]
        if inv > 0:
            long_lower += e["skewed_mid_px"] < e["fair_px"]
            long_not += e["skewed_mid_px"] > e["fair_px"]
        elif inv < 0:
            short_higher += e["skewed_mid_px"] > e["fair_px"]
            short_not += e["skewed_mid_px"] < e["fair_px"]
    return {
        "long_lower": long_lower,
        "long_wrong_way": long_not,
        "short_higher": short_higher,
        "short_wrong_way": short_not,
    }


def protocol_summary(run_dir: Path | None, versions: dict[str, str]) -> dict[str, dict[str, int]]:
    """Markets traded, orders accepted, fills and cancels per protocol version, from the run's log."""
    out = {v: {"markets": 0, "accepted": 0, "fills": 0, "canceled": 0} for v in ("v1", "v2")}
    traded: set[str] = set()
    for e in read_events(run_dir) if run_dir is not None else ():
        kind, market = e.get("kind"), e.get("market", "")
        if kind not in ("accepted", "fill", "canceled") or market not in versions:
            continue
        counts = out[versions[market]]
        counts["fills" if kind == "fill" else kind] += 1
        if market not in traded:
            traded.add(market)
            counts["markets"] += 1
    return out


def gamma_versions(gamma_url: str) -> dict[str, str]:
    """Condition id -> protocol version of every market the Gamma at ``gamma_url`` lists."""
    from adapters.gamma import GammaClient, MalformedMarket, parse_market  # noqa: PLC0415

    versions: dict[str, str] = {}
    with GammaClient(gamma_url, retries=1) as gamma:
        for _, page in gamma.iter_market_pages({}, limit=1_000):
            for raw in page:
                try:
                    record = parse_market(raw)
                except MalformedMarket:
                    continue
                versions[record.condition_id] = record.version
    return versions


def run(args: argparse.Namespace) -> int:
    """Emulator up, live run, emulator status check."""
    from emulator import Emulator  # noqa: PLC0415 (the emulator is only needed here)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Routed markets from an earlier run must not leak in: a copy of the config keeps its state here.
    # The copy also turns dry_run off: this run may send orders (to the local emulator only).
    cfg_text = Path(args.config).read_text().replace("local_state/", f"{out}/local_state/")
    cfg_text = cfg_text.replace("dry_run: true", "dry_run: false")
    cfg_path = out / "config.yaml"
    cfg_path.write_text(cfg_text)
    (out / "local_state" / "market_maker" / "selected_markets.json").unlink(missing_ok=True)
    acct = Account.create()
    os.environ["POLYMM_PRIVATE_KEY"] = acct.key.hex()  # this process only: a throwaway key
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    with Emulator(args.scenario, seed=args.seed) as emu:
        print(f"emulator on {emu.clob_url} (scenario {args.scenario}); bot wallet {acct.address}")
        ns = argparse.Namespace(
            config=str(cfg_path),
            mode="live",
            duration=args.duration,
            clob_url=emu.clob_url,
            ws_url=emu.ws_market_url,
            user_ws_url=emu.ws_user_url,
            gamma_url=emu.gamma_url,
            key_file=None,
            state_dir=str(out),
        )
        code = run_cmd.run(ns)
        status: dict[str, Any] = httpx.get(f"{emu.clob_url}/emulator/status", timeout=10).json()
        versions = gamma_versions(emu.gamma_url)
    me = next((u for u in status["users"].values() if u["address"].lower() == acct.address.lower()), None)
    run_dir = latest_run_dir(out)  # this run's directory (runs/<time>-live-<id>/)
    skew = skew_check(run_dir)
    print(
        f"emulator says: bot orders placed {me['orders'] if me else 0}, fills {me['fills'] if me else 0}, "
        f"open orders after shutdown {me['open_orders'] if me else 0}"
    )
    long_part = (
        f"{skew['long_lower']} decisions long and quoting lower ({skew['long_wrong_way']} the wrong way)"
    )
    short_part = f"{skew['short_higher']} short and quoting higher ({skew['short_wrong_way']} the wrong way)"
    print(f"skew: {long_part}, {short_part}")
    for version, c in protocol_summary(run_dir, versions).items():
        name = "V1 (token ids)" if version == "v1" else "Protocol V2 (position ids)"
        print(
            f"{name}: {c['markets']} markets traded, {c['accepted']} orders accepted, "
            f"{c['fills']} fills, {c['canceled']} cancelled"
        )
    ok = code == 0 and me is not None and me["open_orders"] == 0
    return 0 if ok else 1
