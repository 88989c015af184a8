"""Replay of real best-bid/offer polls with synthetic depth and flow around them.

Input: a (gzip) CSV with the columns ``ts, slug, category, bid, ask, mid, spread, volume24hr,
segment`` (one row per market and poll, polls every ~2 minutes), the format of the CC BY 4.0
"Polymarket Order Book Dataset" by Dinesh Gopalakrishnan. Only ``ts``, ``slug``, ``category``,
``bid`` and ``ask`` are read; prices are parsed exactly (``core.units.parse_px``), ``ts`` is UTC.

The real top of book drives everything:

* at every usable poll (two-sided, uncrossed) the displayed best bid and ask become the polled ones;
  between polls they are held (``path_mode: hold``) or walk in tick steps toward the next poll
  (``interpolate``), reaching it exactly at the next poll's time;
* behind the top sit ``depth_levels - 1`` synthetic levels per side, one tick apart; levels that
  survive a move keep their size, new ones get a fresh random size;
* background updates re-draw the size of a random level (adds and cancels, in effect);
* takers trade at the displayed top: noise takers on a random side, informed takers
  (``informed_fraction``) only toward the *next* poll's mid when it lies beyond the touch. A taker
  never removes the top level: what it empties is refilled at once (the real quote persists).

**The taker flow is synthetic** (the dataset holds no trade prints, and its ``volume24hr`` is
documented as unreliable). Its rate comes from the data by default (``takers_per_s: touch_moves``):
each market gets ``takers_per_touch_move`` takers per *touch move*, where the rate of touch moves is
estimated from the polls. With ``k`` of ``n`` poll intervals (those no longer than ``max_gap_s``)
showing a different best bid or ask and a mean interval ``g``, and touch moves taken as a Poisson
process, ``P(no move in g) = exp(-rate * g)``, so ``rate = -ln(1 - k/n) / g`` (``k = n`` is taken as
``k = n - 1/2``). A touch move is the least activity the data proves: the best level was consumed or
withdrawn at least once. A number instead of ``touch_moves`` fixes the rate for every market. Every
tape's ``meta`` says what was used, and the run summary shows it.

Gaps between usable polls longer than ``max_gap_s`` (collector outages) get no synthetic flow.
Market ids are the slugs; token ids are ``<slug>-yes``/``<slug>-no``. The tick is inferred per
market as the coarsest venue tick (``core.units.TICKS_PX``: 0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001)
on which every polled price lies. That grid is always one the market's real tick allows (each
candidate tick is a multiple of every finer one, except 0.0025 and 0.001, and prices on both of
those grids lie on 0.005, which is tried first), so no simulated order or fill is off the real grid.

Auto-selection (no ``slugs``) refuses markets whose book never moves (no touch move in any poll
interval), besides too few, too one-sided or too wide ones; each refusal is logged with its reason
and listed in the tapes' ``source`` notes (the run summary's ``source.refused``).
Deterministic: each market draws from ``random.Random`` seeded from ``(seed, slug)``.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from core.markets import MarketInfo
from core.messages import BookSnapshot
from core.units import NS_PER_S, ORDER_QTY_STEP, PX_ONE, QTY_ONE, TICKS_PX, Outcome, Side, parse_px
from sim.tape import MarketTape, TickPx

__all__ = [
    "REQUIRED_COLUMNS",
    "BboCsvSource",
    "Poll",
    "PollSeries",
    "TouchMoves",
    "infer_tick",
    "load",
    "read_polls",
    "select_markets",
    "touch_moves",
]

logger = logging.getLogger(__name__)

#: Columns the reader needs (the dataset has more; extra columns are ignored).
REQUIRED_COLUMNS = ("ts", "slug", "category", "bid", "ask")
#: Refusals listed one by one in the source notes (the rest are counted by reason).
_MAX_LISTED = 50
_Frac = Annotated[float, Meta(ge=0, le=1)]
_NonNegFloat = Annotated[float, Meta(ge=0)]


class BboCsvSource(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="bbo_csv", tag_field="type"
):
    """Configuration of the BBO-poll replay (see the module docstring)."""

    #: The CSV (``.csv`` or ``.csv.gz``); relative paths resolve against the scenario's directory.
    path: str
    #: Markets to replay, in this order; empty: the first ``max_markets`` usable ones in file order.
    slugs: tuple[str, ...] = ()
    max_markets: Annotated[int, Meta(ge=1)] = 5
    #: Auto-selection only: keep markets of these categories (empty: any).
    categories: tuple[str, ...] = ()
    #: Auto-selection only: a market is usable if its median polled spread is at most this...
    max_median_spread_px: Annotated[int, Meta(ge=1, le=10_000)] = 300
    #: ...and at least this share of its polls is two-sided and uncrossed...
    min_two_sided_share: _Frac = 0.9
    #: ...and it has at least this many such polls...
    min_polls: Annotated[int, Meta(ge=2)] = 10
    #: ...and its best bid or ask moves between polls at least this often (a book that never moves
    #: says nothing about flow and would make a frozen simulation).
    min_touch_moves: Annotated[int, Meta(ge=1)] = 1
    #: No synthetic flow between polls further apart than this (outages); the book is held.
    max_gap_s: Annotated[float, Meta(gt=0)] = 600.0
    path_mode: Literal["hold", "interpolate"] = "hold"
    #: Tick in Px (any venue tick: 1000, 100, 50, 25, 10, 1); 0 infers it per market from the prices.
    tick_px: Literal[0] | TickPx = 0
    #: The venue's minimum order size in Qty (1e-6 share; 5 shares = 5_000_000), on the 0.01-share grid.
    min_qty: Annotated[int, Meta(ge=ORDER_QTY_STEP, multiple_of=ORDER_QTY_STEP)] = 5 * QTY_ONE
    #: Taker fee rate (0.04 style); ``MarketInfo.fee_rate_ppm`` gets ``round(fee_rate * 1e6)``.
    fee_rate: _Frac = 0.0
    #: Maker rebate (``feeSchedule.rebateRate``, 0.25 style); ``MarketInfo.rebate_ppm`` gets
    #: ``round(rebate_rate * 1e6)``.
    rebate_rate: _Frac = 0.0
    # --- synthetic depth and flow ---
    #: Displayed levels per side, the real top included.
    depth_levels: Annotated[int, Meta(ge=1, le=100)] = 5
    #: Mean size of a synthetic level in Qty (exponential, whole shares, at least one share).
    level_qty_mean: Annotated[int, Meta(ge=QTY_ONE)] = 200 * QTY_ONE
    #: Background level updates per second and market.
    updates_per_s: _NonNegFloat = 0.5
    #: Synthetic taker arrivals per second and market: ``touch_moves`` derives each market's rate
    #: from its polls (``takers_per_touch_move`` per estimated touch move, module docstring); a
    #: number sets it for every market.
    takers_per_s: _NonNegFloat | Literal["touch_moves"] = "touch_moves"
    #: With ``takers_per_s: touch_moves``: synthetic takers per estimated touch move.
    takers_per_touch_move: _NonNegFloat = 1.0
    informed_fraction: _Frac = 0.3
    #: Mean taker size in Qty (exponential, whole shares, at least one share).
    taker_qty_mean: Annotated[int, Meta(ge=QTY_ONE)] = 50 * QTY_ONE


class Poll(msgspec.Struct, frozen=True):
    """One usable poll of one market: time and exact top of book."""

    ts_ns: int
    bid_px: int
    ask_px: int


class PollSeries:
    """The polls of one market: its raw rows, parsed on first use into usable polls in time order."""

    __slots__ = ("_polls", "category", "raw", "slug", "source")

    def __init__(self, slug: str, category: str, source: str) -> None:
        """Create an empty series."""
        self.slug = slug
        self.category = category
        self.source = source
        self.raw: list[tuple[int, str, str, str]] = []  # (line number, ts, bid, ask)
        self._polls: list[Poll] | None = None

    @property
    def rows(self) -> int:
        """Rows of this market in the file."""
        return len(self.raw)

    @property
    def polls(self) -> list[Poll]:
        """The two-sided, uncrossed polls, in time order."""
        if self._polls is None:
            self._polls = _parse(self)
        return self._polls


def load(spec: BboCsvSource, seed: int, base_dir: Path | None = None) -> list[MarketTape]:
    """Read the CSV, select markets and synthesize their tapes (deterministic for ``seed``).

    Every tape's ``meta`` describes its market's data (tick, what is real and what synthetic, the
    taker rate and where it comes from); all tapes share one ``source`` dict (selection, refusals).
    """
    path = Path(spec.path)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    markets = read_polls(path, spec.slugs or None)
    refused: list[tuple[str, str]] = []
    chosen = select_markets(markets, spec, refused)
    source = _source_notes(spec, path, refused)
    tapes = []
    for m in chosen:
        tape = _tape(spec, m, random.Random(f"bbo_csv:{seed}:{m.slug}"))
        tape.source = source
        tapes.append(tape)
    return tapes


def _source_notes(spec: BboCsvSource, path: Path, refused: list[tuple[str, str]]) -> dict[str, object]:
    by_reason: dict[str, int] = {}
    for _, reason in refused:
        key = reason.split(":", 1)[0].split(" (", 1)[0]
        by_reason[key] = by_reason.get(key, 0) + 1
    rate = (
        f"{spec.takers_per_touch_move:g} per touch move estimated from each market's polls"
        if spec.takers_per_s == "touch_moves"
        else f"{spec.takers_per_s:g}/s per market, as configured"
    )
    return {
        "type": "bbo_csv",
        "path": path.name,
        "real": "best bid and ask polls (every ~2 min), parsed exactly",
        "synthetic": (
            f"depth behind the touch, and taker flow: {rate}, {spec.informed_fraction:.0%} informed, "
            f"mean size {spec.taker_qty_mean / QTY_ONE:g} shares (the data has no trades)"
        ),
        "selection": "slugs" if spec.slugs else "auto",
        "refused": [{"market": slug, "reason": reason} for slug, reason in refused[:_MAX_LISTED]],
        "refused_by_reason": by_reason,
    }


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8", newline="")


def _ts_ns(text: str) -> int:
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (int(dt.timestamp()) * 1_000_000 + dt.microsecond) * 1000


def read_polls(path: Path, slugs: Sequence[str] | None = None) -> dict[str, PollSeries]:
    """Group the usable polls of a BBO CSV by market, in order of first appearance.

    Args:
        path: The CSV (gzip or plain).
        slugs: Read only these markets (None: all).

    Returns:
        ``{slug: series}``; each series counts its rows and keeps its two-sided, uncrossed polls.
    """
    wanted = set(slugs) if slugs is not None else None
    out: dict[str, PollSeries] = {}
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path.name}: empty file, expected a BBO poll CSV")
        col = {name.strip(): i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED_COLUMNS if c not in col]
        if missing:
            raise ValueError(f"{path.name}: not a BBO poll CSV, missing columns {missing} (header {header})")
        i_ts, i_slug, i_cat, i_bid, i_ask = (col[c] for c in REQUIRED_COLUMNS)
        width = len(header)
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != width:
                raise ValueError(f"{path.name}:{lineno}: expected {width} columns, got {len(row)}")
            slug = row[i_slug]
            if wanted is not None and slug not in wanted:
                continue
            m = out.get(slug)
            if m is None:
                m = out[slug] = PollSeries(slug, row[i_cat], path.name)
            m.raw.append((lineno, row[i_ts], row[i_bid], row[i_ask]))
    return out


def _parse(series: PollSeries) -> list[Poll]:
    polls: list[Poll] = []
    # Prices and poll times repeat a lot: parse each distinct string once.
    px_cache: dict[str, int] = {}
    ts_cache: dict[str, int] = {}
    last = -1
    for lineno, ts_s, bid_s, ask_s in series.raw:
        if not bid_s or not ask_s:
            continue  # a one-sided or empty book: no usable top
        try:
            ts = ts_cache.get(ts_s)
            if ts is None:
                ts = ts_cache[ts_s] = _ts_ns(ts_s)
            bid = px_cache.get(bid_s)
            if bid is None:
                bid = px_cache[bid_s] = parse_px(bid_s)
            ask = px_cache.get(ask_s)
            if ask is None:
                ask = px_cache[ask_s] = parse_px(ask_s)
        except ValueError as exc:  # UnitError is a ValueError
            raise ValueError(f"{series.source}:{lineno}: {exc}") from None
        if ts < last:
            raise ValueError(f"{series.source}:{lineno}: {series.slug}: polls out of time order")
        last = ts
        if 0 < bid < ask < PX_ONE:
            polls.append(Poll(ts, bid, ask))
    return polls


class TouchMoves(msgspec.Struct, frozen=True):
    """How often a market's best bid or ask moved between consecutive usable polls."""

    #: Poll intervals (consecutive usable polls) and those with a different best bid or ask, overall...
    intervals_all: int
    moves_all: int
    #: ...and among intervals no longer than ``max_gap_s`` (those that get synthetic flow).
    intervals: int
    moves: int
    #: Total length of those intervals in ns.
    span_ns: int

    def rate_per_s(self) -> float:
        """Touch moves per second, a Poisson estimate from the share of intervals with a move.

        ``P(no move in g) = exp(-rate * g)`` for the mean interval ``g``; when every interval shows
        a move the share is taken as ``1 - 1/(2n)`` (the estimate is unbounded at 1).
        """
        if not self.intervals or not self.moves or not self.span_ns:
            return 0.0
        share = min(self.moves / self.intervals, 1.0 - 0.5 / self.intervals)
        mean_gap_s = self.span_ns / self.intervals / NS_PER_S
        return -math.log(1.0 - share) / mean_gap_s


def touch_moves(polls: Sequence[Poll], max_gap_ns: int) -> TouchMoves:
    """Count the poll intervals in which the touch moved (see ``TouchMoves``)."""
    n_all = m_all = n = m = span = 0
    for a, b in itertools.pairwise(polls):
        moved = a.bid_px != b.bid_px or a.ask_px != b.ask_px
        n_all += 1
        m_all += moved
        gap = b.ts_ns - a.ts_ns
        if gap <= max_gap_ns:
            n += 1
            m += moved
            span += gap
    return TouchMoves(n_all, m_all, n, m, span)


def select_markets(
    markets: dict[str, PollSeries], spec: BboCsvSource, refused: list[tuple[str, str]] | None = None
) -> list[PollSeries]:
    """The markets to replay: ``spec.slugs`` in order, else the first usable ones (module docstring).

    Args:
        markets: The file's markets (``read_polls``).
        spec: The source config.
        refused: If given, receives ``(slug, reason)`` for every market auto-selection looked at
            and refused (each is also logged).
    """
    if spec.slugs:
        chosen = []
        for slug in spec.slugs:
            m = markets.get(slug)
            if m is None:
                raise ValueError(f"source.slugs: {slug!r} is not in {spec.path}")
            if len(m.polls) < 2:
                raise ValueError(f"source.slugs: {slug!r} has fewer than 2 two-sided polls in {spec.path}")
            chosen.append(m)
        return chosen
    cats = set(spec.categories)
    max_gap_ns = round(spec.max_gap_s * NS_PER_S)
    chosen = []
    for m in markets.values():
        if cats and m.category not in cats:
            continue  # not a refusal: the config asked for other categories
        reason = _unusable(m, spec, max_gap_ns)
        if reason:
            logger.info("bbo_csv: %s refused: %s", m.slug, reason)
            if refused is not None:
                refused.append((m.slug, reason))
            continue
        chosen.append(m)
        if len(chosen) == spec.max_markets:
            break
    if not chosen:
        raise ValueError(
            f"source: no usable market in {spec.path} (see max_median_spread_px, min_polls, "
            "min_two_sided_share, min_touch_moves)"
        )
    return chosen


def _unusable(m: PollSeries, spec: BboCsvSource, max_gap_ns: int) -> str:
    # Why auto-selection refuses a market ("" if it does not).
    if m.rows < spec.min_polls:
        return f"too few polls ({m.rows} < min_polls {spec.min_polls})"
    n = len(m.polls)
    if n < spec.min_polls or n < spec.min_two_sided_share * m.rows:
        return f"too few two-sided polls ({n} of {m.rows})"
    spreads = sorted(p.ask_px - p.bid_px for p in m.polls)
    if spreads[n // 2] > spec.max_median_spread_px:
        limit = spec.max_median_spread_px
        return f"median spread too wide ({spreads[n // 2]} Px > max_median_spread_px {limit})"
    moves = touch_moves(m.polls, max_gap_ns)
    if moves.moves_all < spec.min_touch_moves:
        what = "book never moves" if not moves.moves_all else "book hardly moves"
        return (
            f"{what} ({moves.moves_all} touch moves in {moves.intervals_all} poll intervals, "
            f"min_touch_moves {spec.min_touch_moves})"
        )
    return ""


def infer_tick(polls: Sequence[Poll]) -> int:
    """The coarsest venue tick (``TICKS_PX``) on which every polled price lies (module docstring)."""
    for tick in TICKS_PX:
        if all(p.bid_px % tick == 0 and p.ask_px % tick == 0 for p in polls):
            return tick
    return TICKS_PX[-1]


class _Book:
    # The displayed synthetic book of one market and the tape it writes to.

    __slots__ = ("ask", "asks", "bid", "bids", "depth", "draw_qty", "tape", "tick")

    def __init__(self, tape: MarketTape, tick: int, depth: int, draw_qty: Callable[[], int]) -> None:
        self.tape = tape
        self.tick = tick
        self.depth = depth
        self.draw_qty = draw_qty
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid = 0
        self.ask = PX_ONE

    def ladder(self, bid: int, ask: int) -> tuple[list[int], list[int]]:
        t, d = self.tick, self.depth
        bids = [p for p in range(bid, bid - d * t, -t) if p >= t]
        asks = [p for p in range(ask, ask + d * t, t) if p <= PX_ONE - t]
        return bids, asks

    def move(self, ts: int, bid: int, ask: int) -> None:
        # Make (bid, ask) the displayed top; levels go before new ones come, so it never crosses.
        want_b, want_a = self.ladder(bid, ask)
        wb, wa = set(want_b), set(want_a)
        tape = self.tape
        for px in sorted(p for p in self.bids if p not in wb):
            del self.bids[px]
            tape.level(ts, Side.BUY, px, 0)
        for px in sorted(p for p in self.asks if p not in wa):
            del self.asks[px]
            tape.level(ts, Side.SELL, px, 0)
        for px in want_b:
            if px not in self.bids:
                q = self.bids[px] = self.draw_qty()
                tape.level(ts, Side.BUY, px, q)
        for px in want_a:
            if px not in self.asks:
                q = self.asks[px] = self.draw_qty()
                tape.level(ts, Side.SELL, px, q)
        self.bid, self.ask = bid, ask


def _tape(spec: BboCsvSource, m: PollSeries, rng: random.Random) -> MarketTape:
    polls = m.polls
    tick = spec.tick_px or infer_tick(polls)
    off = next((p for p in polls if p.bid_px % tick or p.ask_px % tick), None)
    if off is not None:
        raise ValueError(f"source.tick_px: {m.slug} has polled prices off the {tick} Px grid ({off})")
    info = MarketInfo(
        market=m.slug,
        yes_token=f"{m.slug}-yes",
        no_token=f"{m.slug}-no",
        tick_px=tick,
        min_qty=spec.min_qty,
        fee_rate_ppm=round(spec.fee_rate * 1_000_000),
        rebate_ppm=round(spec.rebate_rate * 1_000_000),
        question=m.slug,
    )
    max_gap_ns = round(spec.max_gap_s * NS_PER_S)
    moves = touch_moves(polls, max_gap_ns)
    if spec.takers_per_s == "touch_moves":
        touch_rate = moves.rate_per_s()
        takers_per_s = spec.takers_per_touch_move * touch_rate
        basis = (
            f"{spec.takers_per_touch_move:g} per touch move; the touch moved in {moves.moves} of "
            f"{moves.intervals} poll intervals of {moves.span_ns / max(moves.intervals, 1) / NS_PER_S:.0f} s "
            f"on average: {touch_rate * 3600:.1f} moves/h (Poisson estimate)"
        )
    else:
        takers_per_s = spec.takers_per_s
        basis = "configured (takers_per_s)"
    tape = MarketTape(info)
    tape.meta = {
        "data": "real best bid/ask polls; synthetic depth and taker flow",
        "polls": len(polls),
        "tick_px": tick,
        "tick": "configured" if spec.tick_px else f"inferred from {2 * len(polls)} polled prices",
        "touch_moves": moves.moves_all,
        "poll_intervals": moves.intervals_all,
        "synthetic_flow": {
            "takers_per_hour": round(takers_per_s * 3600, 2),
            "basis": basis,
            "informed_fraction": spec.informed_fraction,
            "mean_size_shares": spec.taker_qty_mean / QTY_ONE,
        },
    }
    rand = rng.random
    log = math.log
    # Means in shares: sizes are drawn as whole shares.
    level_mean = spec.level_qty_mean / QTY_ONE
    taker_mean = spec.taker_qty_mean / QTY_ONE

    def draw_qty() -> int:
        return QTY_ONE * (1 + int(-level_mean * log(1.0 - rand())))

    book = _Book(tape, tick, spec.depth_levels, draw_qty)
    first = polls[0]
    want_b, want_a = book.ladder(first.bid_px, first.ask_px)
    for px in want_b:
        book.bids[px] = draw_qty()
    for px in want_a:
        book.asks[px] = draw_qty()
    book.bid, book.ask = first.bid_px, first.ask_px
    tape.special(
        BookSnapshot(
            market=m.slug,
            outcome=Outcome.YES,
            ts_ns=first.ts_ns,
            bids=tuple((p, book.bids[p]) for p in want_b),
            asks=tuple((p, book.asks[p]) for p in want_a),
            tick_px=tick,
            min_qty=spec.min_qty,
        )
    )
    rate = spec.updates_per_s + takers_per_s
    p_update = spec.updates_per_s / rate if rate > 0 else 1.0
    interpolate = spec.path_mode == "interpolate"
    for a, b in itertools.pairwise(polls):
        if rate > 0 and b.ts_ns - a.ts_ns <= max_gap_ns:
            steps = _steps(a, b, tick) if interpolate else []
            si = 0
            next_mid2 = b.bid_px + b.ask_px
            t = float(a.ts_ns)
            while True:
                t += -log(1.0 - rand()) / rate * NS_PER_S
                ts = int(t)
                if ts >= b.ts_ns:
                    break
                while si < len(steps) and steps[si][0] <= ts:
                    book.move(*steps[si])
                    si += 1
                if rand() < p_update:
                    _update(book, ts, rand)
                else:
                    _take(book, ts, rand, spec.informed_fraction, next_mid2, taker_mean)
            for step in steps[si:]:
                book.move(*step)
        book.move(b.ts_ns, b.bid_px, b.ask_px)
    return tape


def _steps(a: Poll, b: Poll, tick: int) -> list[tuple[int, int, int]]:
    # Intermediate tops between two polls: bids floored and asks ceiled to the tick, so never crossed.
    n = max(abs(b.bid_px - a.bid_px), abs(b.ask_px - a.ask_px)) // tick
    n = min(n, 50)
    out = []
    for j in range(1, n):
        w = j / n
        bid = a.bid_px + math.floor((b.bid_px - a.bid_px) * w / tick) * tick
        ask = a.ask_px + math.ceil((b.ask_px - a.ask_px) * w / tick) * tick
        ts = a.ts_ns + (b.ts_ns - a.ts_ns) * j // n
        out.append((ts, bid, ask))
    return out


def _update(book: _Book, ts: int, rand: Callable[[], float]) -> None:
    levels, side = (book.bids, Side.BUY) if rand() < 0.5 else (book.asks, Side.SELL)
    pxs = sorted(levels, reverse=side is Side.BUY)
    px = pxs[int(rand() * len(pxs))]
    q = levels[px] = book.draw_qty()
    book.tape.level(ts, side, px, q)


def _take(
    book: _Book, ts: int, rand: Callable[[], float], informed: float, next_mid2: int, taker_mean: float
) -> None:
    if rand() < informed:
        if next_mid2 > 2 * book.ask:
            buy = True
        elif next_mid2 < 2 * book.bid:
            buy = False
        else:
            return  # the next poll is inside the touch: no edge, no trade
    else:
        buy = rand() < 0.5
    size = QTY_ONE * (1 + int(-taker_mean * math.log(1.0 - rand())))
    if buy:
        px, levels, aggressor, side = book.ask, book.asks, Side.BUY, Side.SELL
    else:
        px, levels, aggressor, side = book.bid, book.bids, Side.SELL, Side.BUY
    q = levels[px]
    take = min(size, q)
    book.tape.trade(ts, aggressor, px, take)
    # The real quote persists: an emptied top is refilled at once.
    new = q - take or book.draw_qty()
    levels[px] = new
    book.tape.level(ts, side, px, new)
