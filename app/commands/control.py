"""``polymm status``, ``positions``, ``pause``, ``resume``, ``reduce-only``, ``cancel-all``, ``halt``.

Each finds the running bot through the state directory's latest run (``--state-dir``, else
``--config``'s ``ops.state_dir``, else the default's): its ``control.json`` says where the control
plane listens (``app.control``) and its ``control.token`` is the bearer token. Exit codes: 0 done,
1 no running bot to reach, 2 bad input (an unknown market), 3 ``cancel-all`` could not confirm that
no order is left open. Only the standard library is imported, so a command answers at once.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from app.commands import HELP
from app.configfile import ConfigFileError, ServiceUnavailable

#: The commands (help lines in ``app.commands.COMMANDS``) and the control plane's request of each.
_NAMES: Final = ("status", "positions", "pause", "resume", "reduce-only", "cancel-all", "halt")
_REQUESTS: Final = {
    "status": ("GET", "/status"),
    "positions": ("GET", "/positions"),
    "pause": ("POST", "/pause"),
    "resume": ("POST", "/resume"),
    "reduce-only": ("POST", "/reduce-only"),
    "cancel-all": ("POST", "/cancel-all"),
    "halt": ("POST", "/halt"),
}
EXIT_NOT_CONFIRMED: Final = 3
_TIMEOUT_S: Final = 120.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the operator's commands."""
    for name in _NAMES:
        p = sub.add_parser(name, help=HELP[name], description=_DESCRIPTIONS[name])
        p.add_argument(
            "--state-dir", default=None, help="the bot's state directory [--config's ops.state_dir]"
        )
        p.add_argument("--config", default=None, help="the bot's config (for its ops.state_dir)")
        p.add_argument("--json", action="store_true", help="print the control plane's JSON reply")
        if name in ("pause", "resume", "reduce-only"):
            p.add_argument(
                "--market", default=None, help="one market (condition id or a unique prefix) [all]"
            )
        if name == "halt":
            p.add_argument("--reason", required=True, help="why (recorded, and shown until resumed)")
        p.set_defaults(run=run, control_command=name)


_DESCRIPTIONS: Final = {
    "status": "Per market: risk state and why, position, PnL parts, open orders, quotes, the last decision's "
    "reasons, the feed's age; then the book and the totals.",
    "positions": "Every market's YES and NO shares, net position, cash and marked PnL.",
    "pause": "Quote nothing (one market, or every one) until `polymm resume`: the orders are pulled now.",
    "resume": "Lift pauses, reduce-only and HALTs set by the operator or latched by a rule (one market, or "
    "everything): rules still breached act again at once.",
    "reduce-only": "Quote only what lowers the position (one market, or every one) until `polymm resume`.",
    "cancel-all": "Pause every market, cancel every order and confirm that none is left open (exit 3 if "
    "not confirmed).",
    "halt": "HALT the whole book: nothing is quoted, across restarts, until `polymm resume`.",
}


def find_bot(args: argparse.Namespace) -> tuple[Path, dict[str, Any], str]:
    """The latest run's directory, its ``control.json`` and its token.

    Raises:
        ServiceUnavailable: No run, or the latest one is not running.
        ConfigFileError: ``--config`` cannot be read.
    """
    from adapters.runlog import latest_run_dir  # noqa: PLC0415

    if args.state_dir:
        state_dir = Path(args.state_dir)
    elif args.config:
        from app.configfile import load_config  # noqa: PLC0415

        state_dir = Path(load_config(args.config).ops.state_dir)
    else:
        from core.config import OpsConfig  # noqa: PLC0415

        state_dir = Path(OpsConfig().state_dir)
    run_dir = latest_run_dir(state_dir)
    if run_dir is None:
        raise ServiceUnavailable(
            f"polymm {args.control_command}: no run in {state_dir / 'runs'} (start one with "
            "run-market-maker, or pass --state-dir / --config)"
        )
    try:
        info = json.loads((run_dir / "control.json").read_text())
    except FileNotFoundError:
        raise ServiceUnavailable(
            f"polymm {args.control_command}: the latest run {run_dir} is not running (no control.json: it "
            "ended, or its ops.control_port is null)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ServiceUnavailable(
            f"polymm {args.control_command}: {run_dir / 'control.json'}: {exc}"
        ) from None
    try:
        token = (run_dir / info.get("token_file", "control.token")).read_text().strip()
    except OSError as exc:
        raise ServiceUnavailable(
            f"polymm {args.control_command}: cannot read the token of {run_dir}: {exc.strerror or exc}"
        ) from None
    return run_dir, info, token


def request(info: dict[str, Any], token: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
    """One request to the control plane; returns ``(status, reply)``."""
    url = str(info["url"])
    host_port = url.removeprefix("http://")
    host, _, port = host_port.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=_TIMEOUT_S)
    try:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        reply = conn.getresponse()
        raw = reply.read()
        return reply.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def run(args: argparse.Namespace) -> int:
    """Send the command to the running bot and print its answer."""
    name = args.control_command
    run_dir, info, token = find_bot(args)
    method, path = _REQUESTS[name]
    body: dict[str, Any] = {}
    if getattr(args, "market", None):
        body["market"] = args.market
    if name == "halt":
        body["reason"] = args.reason
    try:
        status, reply = request(info, token, method, path, body)
    except (OSError, http.client.HTTPException) as exc:
        alive = _alive(info.get("pid"))
        why = "its process is gone (killed?)" if alive is False else f"{type(exc).__name__}: {exc}"
        raise ServiceUnavailable(
            f"polymm {name}: the bot of {run_dir.name} (pid {info.get('pid')}) does not answer at "
            f"{info.get('url')}: {why}"
        ) from None
    if status == 404 and not reply.get("ok", True):
        raise ConfigFileError(f"polymm {name}: {reply.get('error')}")
    if status != 200:
        raise ServiceUnavailable(f"polymm {name}: the bot answered {status}: {reply.get('error', reply)}")
    if args.json:
        sys.stdout.write(json.dumps(reply, indent=1, sort_keys=True) + "\n")
    else:
        print(render(name, reply, run_dir))
    if name == "cancel-all" and not reply.get("confirmed"):
        return EXIT_NOT_CONFIRMED
    return 0


def _alive(pid: object) -> bool | None:
    if not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return None
    return True


# --- for people ------------------------------------------------------------------------------------------


def _qty(v: int) -> str:
    text = f"{abs(v) / 1_000_000:.6f}".rstrip("0").rstrip(".")
    return ("-" if v < 0 else "") + text


def _signed_qty(v: int) -> str:
    return _qty(v) if v < 0 or v == 0 else "+" + _qty(v)


def _usdc(v: int | None) -> str:
    if v is None:
        return "?"
    return f"{v / 1_000_000:+,.2f}"


def _px(v: int | None) -> str:
    return "-" if v is None else f"{v / 10_000:.4f}".rstrip("0").rstrip(".")


def _age(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e9:.1f} s"


def render(name: str, reply: dict[str, Any], run_dir: Path) -> str:
    """The reply of ``name`` for people."""
    if name == "status":
        return _status(reply, run_dir)
    if name == "positions":
        return _positions(reply, run_dir)
    return _command(name, reply)


def _status(s: dict[str, Any], run_dir: Path) -> str:
    b, t = s["book"], s["totals"]
    when = datetime.fromtimestamp(s["ts_ns"] // 1_000_000_000, UTC).strftime("%H:%M:%SZ")
    lines = [
        f"{run_dir.name} ({s['mode']}, pid {s['pid']}) at {when}: book {b['state'].upper()}"
        + (f" by {b['rule']}" if b["rule"] else ""),
        f"  day PnL {_usdc(b['day_pnl_usdc6'])} USDC (realised {_usdc(b['day_realized_usdc6'])}, unrealised "
        f"{_usdc(b['day_unrealized_usdc6'])}; peak {_usdc(b['peak_pnl_usdc6'])}, drawdown "
        f"{_usdc(b['drawdown_usdc6'])}); loss stops {_usdc(-b['daily_loss_stop_usdc6'])} book, "
        f"{_usdc(-b['market_daily_loss_stop_usdc6'])} a market",
    ]
    if b["heartbeat_age_ns"] is not None:
        lines[-1] += f"; heartbeat {_age(b['heartbeat_age_ns'])} ago"
    if b["halt"]:
        lines.append(f"  HALT: {b['halt']}")
    for r in b["reasons"]:
        lines.append(f"  book: {r}")
    if b["operator_note"]:
        lines.append(f"  operator: {b['operator']} ({b['operator_note']})")
    for m in s["markets"]:
        ours = f"{_px(m['bids'][0][0]) if m['bids'] else '-'}/{_px(m['asks'][0][0]) if m['asks'] else '-'}"
        lines.append(
            f"  {m['market'][:12]}  {m['state'].upper() if m['state'] != 'active' else 'active':<11} "
            f"pos {_signed_qty(m['net_yes_qty'])} shares (YES {_qty(m['yes_qty'])}, NO {_qty(m['no_qty'])})  "
            f"day pnl {_usdc(m['day_pnl_usdc6'])} USDC (realised {_usdc(m['day_realized_usdc6'])})  "
            f"orders {m['open_orders']}  {m['quoting']}  book {_px(m['best_bid_px'])}/{_px(m['best_ask_px'])}"
            f"  ours {ours}  feed {_age(m['feed_age_ns'])}"
        )
        if m["state"] != "active" or m["rule"]:
            lines.append(f"      why: {m['detail'] or m['rule']}")
        if m.get("rewards"):
            lines.append(f"      {reward_text(m['rewards'])}")
        d = m["last_decision"]
        if d and d["pulled"]:
            lines.append(f"      last decision: {d['no_quote'] or 'quoted'}: {d['pulled']}")
    states = ", ".join(f"{n} {k}" for k, n in sorted(t["by_state"].items()))
    lines.append(
        f"  totals: {t['markets']} markets ({states}), "
        f"{t['open_orders']} open orders, net {_signed_qty(t['net_yes_qty'])} shares, marked PnL "
        f"{_usdc(t['marked_pnl_usdc6'])} USDC"
    )
    return "\n".join(lines)


def reward_text(r: dict[str, Any]) -> str:
    """One market's reward tracking for people (``app.rewards.MarketRewards`` as builtins), with units.

    ``rewards 2/3 orders scoring (60 of 90 shares, venue), share 41.2%, est 4.12 USDC/day of a
    10.00 USDC pool, earned 0.35 USDC today``; ``venue``: the venue said which score (``local``:
    ``core.rewards`` decided); ``earned`` only where the venue reports it (live).
    """
    earned = r.get("earned_today_usdc6")
    tail = "" if earned is None else f", earned {earned / 1e6:.2f} USDC today"
    return (
        f"rewards {r['scoring_orders']}/{r['orders']} orders scoring "
        f"({r['scoring_qty'] / 1e6:g} of {r['qty'] / 1e6:g} shares, {r['scoring_by']}), "
        f"share {r['share_ppm'] / 1e4:.1f}%, est {r['est_daily_usdc6'] / 1e6:.2f} USDC/day of a "
        f"{r['daily_pool_usdc6'] / 1e6:.2f} USDC pool{tail}"
    )


def _positions(s: dict[str, Any], run_dir: Path) -> str:
    lines = [
        f"{run_dir.name} ({s['mode']}): positions (shares; cash and PnL in USDC)",
        f"  {'market':<12}  {'YES':>12}  {'NO':>12}  {'net YES':>12}  {'cash':>12}  {'marked PnL':>11}"
        "  orders",
    ]
    for m in s["markets"]:
        if not m["known"]:
            lines.append(f"  {m['market'][:12]:<12}  (its actor is restarting)")
            continue
        lines.append(
            f"  {m['market'][:12]:<12}  {_qty(m['yes_qty']):>12}  {_qty(m['no_qty']):>12}  "
            f"{_signed_qty(m['net_yes_qty']):>12}  {_usdc(m['cash_usdc6']):>12}  "
            f"{_usdc(m['marked_pnl_usdc6']):>11}  {m['open_orders']}"
        )
    return "\n".join(lines)


def _command(name: str, r: dict[str, Any]) -> str:
    where = r.get("market") or "every market"
    book = f"; the book is {r['book_state']}" if "book_state" in r else ""
    if name == "cancel-all":
        venue = r.get("venue_open_orders")
        shown = "" if venue is None else f", the venue lists {venue}"
        done = "confirmed" if r.get("confirmed") else "NOT confirmed: orders of ours may remain open"
        return (
            f"cancel-all: every market paused; {r.get('open_orders')} open orders left{shown}: {done} "
            "(polymm resume to quote again)"
        )
    if name == "halt":
        return f"halted the book: nothing is quoted, across restarts, until polymm resume{book}"
    verb = {"pause": "paused", "resume": "resumed", "reduce-only": "reduce-only"}[name]
    tail = ""
    if "open_orders" in r:
        whose = "its" if r.get("market") else "their"
        tail = (
            f"; {whose} orders pulled ({r['open_orders']} open)"
            if r.get("pulled")
            else f"; {r['open_orders']} orders still open (cancels in flight)"
        )
    return f"{verb} {where}{tail}{book}"
