"""``polymm quote``: one quote decision for a recorded book, with every reason, for people or machines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import cast

import msgspec

from adapters.polymarket.parse import PayloadError, decode_book, parse_book
from app.commands import HELP
from app.configfile import ConfigFileError, load_config, refuse_risk_manager
from core.book import L2Book
from core.estimators import FlowState, VolState
from core.inventory import Inventory
from core.messages import BookSnapshot
from core.quoting import Decision, QuoteParams, decide, quote_params
from core.units import (
    CODES,
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_DECIMALS,
    QTY_ONE,
    UNITS,
    USDC10_PER_USDC6,
    Outcome,
    UnitError,
    complement_px,
    decimal_to_int,
    format_px,
    format_qty,
    format_usdc6,
    notional_usdc6,
    parse_tick,
)
from core.yes_view import to_yes

_DEFAULT_TICK_PX = 100
_DEFAULT_MIN_QTY = 5 * QTY_ONE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``quote`` subcommand."""
    p = sub.add_parser(
        "quote",
        help=HELP["quote"],
        description=(
            "Read a Polymarket book (REST /book or WebSocket `book` message; the venue lists the best "
            "level LAST) and print the ladder polymm would quote, with every reason. Prices in the "
            "JSON are integers in 1e-4 USDC (4700 = 0.47), sizes in 1e-6 shares (10000000 = 10 shares), "
            "money in 1e-6 USDC."
        ),
    )
    p.add_argument("--config", required=True, help="strategy YAML, e.g. configs/market_maker.yaml")
    p.add_argument("--book", required=True, help="book JSON file")
    p.add_argument(
        "--inventory",
        default="0",
        help="net YES position in shares, up to 6 decimals (negative: long NO), assumed bought at the "
        "fair price [0]",
    )
    p.add_argument("--outcome", choices=("yes", "no"), default="yes", help="which token the book is of [yes]")
    p.add_argument("--tick", default=None, help="tick if the book has none, e.g. 0.01 [book's or 0.01]")
    p.add_argument(
        "--min-size", default=None, help="minimum size in shares if the book has none [book's or 5]"
    )
    p.add_argument("--json", action="store_true", help="print JSON for machines instead of a table")
    p.set_defaults(run=run)


def levels_below_minimum(params: QuoteParams, min_qty: int) -> str | None:
    """Which configured levels a market whose minimum order is ``min_qty`` cannot take (None: all can).

    ``decide`` never raises a level to the minimum (it drops it, with a trim); this says so before
    the first decision. Sizes in USDC buy fewer shares at higher prices: such a level is below the
    minimum for bids above some price (and asks below one minus it).
    """
    if min_qty <= 0:
        return None
    minimum = f"the minimum order of {format_qty(min_qty)} shares"
    if params.level_sizes_qty is not None:
        sizes = params.level_sizes_qty
        below = [i + 1 for i, q in enumerate(sizes) if q < min_qty]
        if not below:
            return None
        shown = ", ".join(format_qty(sizes[i - 1]) for i in below)
        if len(below) == len(sizes):
            return f"every level ({shown} shares) is below {minimum}: no order can be placed"
        which = "level " + ", ".join(map(str, below))
        return f"{which} of {len(sizes)} ({shown} shares) below {minimum}: not quoted"
    parts = []
    for i, usdc6 in enumerate(params.level_sizes_usdc6 or ()):
        # A bid at px buys usdc6 * 1e4 // px shares: at least min_qty up to this price.
        max_px = usdc6 * USDC10_PER_USDC6 // min_qty
        if max_px >= PX_ONE:
            continue
        parts.append(
            f"level {i + 1} ({format_usdc6(usdc6)} USDC) for bids above {format_px(max_px)} and asks below "
            f"{format_px(PX_ONE - max_px)}"
        )
    if not parts:
        return None
    return "below " + minimum + ": " + "; ".join(parts)


def _read_book(path: str, outcome: Outcome) -> BookSnapshot:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"{path}: (file): cannot read: {exc.strerror}") from None
    try:
        snap = parse_book(decode_book(data), "", outcome)
    except PayloadError as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    # Quotes are on the YES book: a NO token's book is the YES book it mirrors.
    return cast(BookSnapshot, to_yes(snap))


def _arg_int(text: str, decimals: int, flag: str) -> int:
    try:
        return decimal_to_int(text, decimals)
    except UnitError as exc:
        raise ConfigFileError(f"{flag}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Decide once and print the decision."""
    cfg = load_config(args.config)
    refuse_risk_manager(cfg, args.config)
    params = quote_params(cfg)
    snap = _read_book(args.book, Outcome.YES if args.outcome == "yes" else Outcome.NO)
    notes: list[str] = []
    tick = snap.tick_px
    if args.tick is not None:
        try:
            tick = parse_tick(args.tick)
        except UnitError as exc:
            raise ConfigFileError(f"--tick: {exc}") from None
    elif not tick:
        tick = _DEFAULT_TICK_PX
        notes.append("book has no tick_size: assuming 0.01 (--tick to change)")
    min_qty = snap.min_qty
    if args.min_size is not None:
        # An order size: whole 0.01 shares (ORDER_QTY_STEP), the venue's order-size precision.
        min_qty = _arg_int(args.min_size, QTY_DECIMALS, "--min-size")
        if min_qty % ORDER_QTY_STEP:
            raise ConfigFileError(f"--min-size: {args.min_size!r} is not a whole number of 0.01 shares")
    elif not min_qty:
        min_qty = _DEFAULT_MIN_QTY
        notes.append("book has no min_order_size: assuming 5 shares (--min-size to change)")
    small = levels_below_minimum(params, min_qty)
    if small is not None:
        notes.append(f"cannot quote as configured: {small}")
    book = L2Book(tick_px=tick, min_qty=min_qty)
    book.apply_snapshot(snap.bids, snap.asks, snap.ts_ns, tick, min_qty)
    view = book.view()
    net_qty = _arg_int(args.inventory, QTY_DECIMALS, "--inventory")
    fair_guess = (view.bid_px + view.ask_px) // 2 if view.bid_qty and view.ask_qty else PX_ONE // 2
    if net_qty >= 0:
        yes_cost = notional_usdc6(fair_guess, net_qty)
        inv = Inventory(yes_qty=net_qty, cash_usdc6=-yes_cost, yes_cost_usdc6=yes_cost)
    else:
        no_cost = notional_usdc6(complement_px(fair_guess), -net_qty)
        inv = Inventory(no_qty=-net_qty, cash_usdc6=-no_cost, no_cost_usdc6=no_cost)
    decision = decide(view, inv, VolState(), FlowState(), params, view.ts_ns)
    if args.json:
        out = {"units": UNITS, "codes": CODES} | msgspec.to_builtins(decision)
        out["market"] = snap.market
        out["tick_px"] = tick
        out["min_qty"] = min_qty
        out["notes"] = notes
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        sys.stdout.write(
            render(
                decision,
                snap.market,
                view.bid_px,
                view.bid_qty,
                view.ask_px,
                view.ask_qty,
                tick,
                min_qty,
                notes,
            )
        )
    return 0


def _signed_px(px: int) -> str:
    # A signed move of a price ("+0.004", "-0.01", "0").
    return ("+" if px > 0 else "") + format_px(px)


def _signed_usdc6(amount: int) -> str:
    return ("+" if amount > 0 else "") + format_usdc6(amount)


def render(
    d: Decision,
    market: str,
    bid_px: int,
    bid_qty: int,
    ask_px: int,
    ask_qty: int,
    tick: int,
    min_qty: int,
    notes: list[str],
) -> str:
    """A table for people."""
    r = d.reasons
    lines = [
        f"market {market or '?'}   tick {format_px(tick)}   min size {format_qty(min_qty)}",
        f"book   best bid {format_px(bid_px)} x {format_qty(bid_qty)}   best ask {format_px(ask_px)} x "
        f"{format_qty(ask_qty)}",
    ]
    lines += [f"note   {n}" for n in notes]
    if not d.quote:
        lines.append(f"NO QUOTE: {d.no_quote} ({r.pulled})")
        return "\n".join(lines) + "\n"
    risk = f"risk   cap {format_usdc6(r.cap_usdc6)} USDC"
    if r.bound_usdc6 != r.cap_usdc6:
        # The inventory (with orders being cancelled) is already past the cap: no order may raise its
        # worst case further, and orders that lower it still go out.
        risk += f" (bound {format_usdc6(r.bound_usdc6)}: the worst case before quoting)"
    risk += (
        f"   worst-case loss if YES {_signed_usdc6(r.loss_if_yes_usdc6)}  if NO "
        f"{_signed_usdc6(r.loss_if_no_usdc6)} USDC (negative: a gain)"
    )
    lines += [
        f"fair   {format_px(d.fair_px)} ({r.fair_source})   inventory {format_qty(r.inventory_qty)} sh   "
        f"skew {_signed_px(d.skewed_mid_px - d.fair_px)}   skewed mid {format_px(d.skewed_mid_px)}",
        f"spread half {format_px(r.half_spread_px)} = base {format_px(r.base_half_spread_px)} + "
        f"vol {format_px(r.vol_widen_px)} (vol {r.vol_px} px)",
        f"flow   imbalance {r.flow_permille / 1000:+.3f}   size bid {r.bid_size_pct}%  ask {r.ask_size_pct}%",
        risk,
        "",
        f"{'BID size':>10} {'BID px':>8}   {'ASK px':<8} {'ASK size':<10}",
    ]
    for i in range(max(len(d.bids), len(d.asks))):
        b = d.bids[i] if i < len(d.bids) else None
        a = d.asks[i] if i < len(d.asks) else None
        left = f"{format_qty(b.qty):>10} {format_px(b.px):>8}" if b else " " * 19
        right = f"{format_px(a.px):<8} {format_qty(a.qty):<10}" if a else ""
        lines.append(f"{left}   {right}".rstrip())
    lines.append("")
    lines.append("orders (post-only GTC):")
    for o in d.orders:
        lines.append(f"  {o.side.name:<4} {o.outcome.name:<3} {format_qty(o.qty):>8} @ {format_px(o.px)}")
    if r.trims:
        lines.append("trims: " + "; ".join(r.trims))
    return "\n".join(lines) + "\n"
