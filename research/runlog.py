"""The one reader of a run directory: everything in ``research`` sees a run through ``read_run``.

A run directory holds the event log a simulation or a paper/dry-run session wrote and, from a
simulation, its ``summary.json`` and its input's identity (``input.json``, ``sim.inputs``): a
simulation does not copy its market data into the log, so the reader re-reads the input through the
simulator's own loader (each input file's sha256 checked first) and rebuilds the displayed book from
it. A simulation's log is columnar (``events.npz``, ``sim.eventcols``); a session's is JSON lines
(``events.jsonl``: a ``units`` header, then one JSON object per line with ``kind``, ``ts_ns`` and
``market``; a long session's log also has rotated segments before it, ``events.000001.jsonl.gz``...,
and its feed is in its own recordings, ``market_data/*``, which give its market lines); both are
read as the same JSON lines (``event_lines``, what ``polymm events`` prints). ``read_run`` turns
them into format-free columns per market: the displayed book's best bid and ask at each change, our
fills (YES-equivalent), our resting quotes at each change, every decision with its reasons, the
resolution. When the on-disk format changes, only this module changes; the report, the diff and the
sweep do not.

Units: the log's ``units`` header must say what this module computes with (Px 1e-4 USDC per share,
Qty 1e-6 share, Usdc6 1e-6 USDC, ns); a log in other units is refused with one line rather than
misread. All columns stay integers in those units; converting to USDC or shares is the caller's, once,
for people.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, cast

import msgspec
import numpy as np
import numpy.typing as npt

from core.messages import BookSnapshot, MarketResolved, TickSizeChanged
from core.units import PX_ONE, UNITS, complement_notional_usdc6, notional_usdc6
from sim.eventcols import COLUMNS_NAME, ColumnFormatError, ColumnReader
from sim.inputs import InputError, file_sha256, load_input_tapes
from sim.tape import OP_ASK, OP_BID, OP_SPECIAL, MarketTape

if TYPE_CHECKING:
    from sim.runner import Lane

LOG_NAME: Final = "events.jsonl"
#: A session's recordings of its own feed (``app.session_recording.RECORDINGS_DIR``).
RECORDINGS_DIR: Final = "market_data"
SUMMARY_NAME: Final = "summary.json"
MARKS_NAME: Final = "venue_marks.json"
#: ``bid_px``/``ask_px`` when that side is empty.
NO_PX: Final = -1

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

#: Record kinds that are our own actions and the venue's answers (what ``actions`` keeps, in order).
ACTION_KINDS: Final = frozenset(
    {"place", "cancel", "cancel_all", "fill", "canceled", "rejected", "settlement"}
)
#: Record kinds that are market data as the venue saw it.
INPUT_KINDS: Final = frozenset({"book", "delta", "trade", "tick_size", "resolved"})


#: A rotated segment of a session's event log (``adapters.runlog`` writes them; research may not import
#: it: tests/research/test_runlog.py checks both list the same files).
_SEGMENT = re.compile(r"^events\.(?P<index>\d{6,})\.jsonl(?P<gz>\.gz)?$")


class RunFormatError(Exception):
    """A run directory that cannot be read; ``str(err)`` is the one line to show."""


class _Delta(msgspec.Struct):
    market: str
    ts_ns: int
    side: int
    px: int
    qty: int
    outcome: int = 0


class _Book(msgspec.Struct):
    market: str
    ts_ns: int
    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]
    outcome: int = 0
    tick_px: int = 0


class _Order(msgspec.Struct):
    market: str
    ts_ns: int
    client_id: str = ""
    outcome: int = 0
    side: int = 0
    px: int = 0
    qty: int = 0
    leaves_qty: int = 0
    fee_usdc6: int = 0
    liquidity: str = ""


class _Head(msgspec.Struct):
    market: str = ""
    ts_ns: int = 0


class _Kind(msgspec.Struct):
    kind: str = ""
    market: str = ""


class _Reward(msgspec.Struct):
    market: str
    ts_ns: int
    accrued_usdc6: int
    scoring: bool


@dataclass(frozen=True)
class Fills:
    """Our fills of one market, in log order, on the YES-equivalent book.

    ``yes_side`` +1 bought YES-equivalent (a YES buy or a NO sell), -1 sold; ``yes_px`` the
    YES-equivalent price; ``cash_usdc6`` what the fill moved before fees with the venue's rounding
    (as ``venue.exchange.Fill``); ``maker`` whether we provided the liquidity.
    """

    ts_ns: I64
    yes_side: I64
    yes_px: I64
    qty: I64
    cash_usdc6: I64
    fee_usdc6: I64
    maker: BOOL

    def __len__(self) -> int:
        return len(self.ts_ns)


@dataclass(frozen=True)
class Steps:
    """A step function of time: ``bid_px``/``ask_px`` hold from each ``ts_ns`` to the next.

    ``NO_PX`` marks an empty side.
    """

    ts_ns: I64
    bid_px: I64
    ask_px: I64

    def __len__(self) -> int:
        return len(self.ts_ns)


@dataclass(frozen=True)
class Decision:
    """One logged decision: its time, its place among the market's decisions at that time, its record."""

    ts_ns: int
    seq: int
    record: dict[str, Any]

    @property
    def key(self) -> tuple[int, int]:
        """What aligns two runs' decisions: (time, order at that time)."""
        return (self.ts_ns, self.seq)


@dataclass
class MarketLog:
    """Everything one market's part of a run says, as columns (see the module docstring)."""

    market: str
    #: The displayed book's best bid and ask (market data as the venue saw it) at each change.
    top: Steps
    #: Our resting YES-equivalent best bid and ask at each change, from the orders we sent and the
    #: venue's answers (an order counts from when it was sent until a cancel, reject or last fill).
    quotes: Steps
    fills: Fills
    decisions: list[Decision]
    #: (time, YES won) when the market resolved during the run.
    resolved: tuple[int, bool] | None
    inputs: int
    #: Level changes and trades logged: none means the market data between snapshots is missing.
    deltas: int
    trades: int
    places: int
    cancels: int
    rejects: int
    #: Our actions and the venue's answers in log order (only when read with ``actions=True``).
    actions: list[dict[str, Any]] = field(default_factory=list)
    #: The simulated venue's own marks (``venue_marks.json``, None without it): twice its mid at each
    #: of our fills (``fill_mid2``, aligned with ``fills``), at the resolution and at the end.
    fill_mid2: I64 | None = None
    resolution_mid2: int | None = None
    final_mid2: int | None = None
    #: The sha256 of this market's input records in order (only when read with ``actions=True``).
    inputs_sha256: str = ""
    #: Liquidity-rewards samples (``reward`` records, sim.rewards): their times, the reward accrued
    #: by each (micro-USDC, floored) and whether our orders scored.
    reward_ts: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    reward_accrued_usdc6: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    reward_scored: int = 0


@dataclass
class Run:
    """A run directory read by ``read_run``."""

    path: Path
    mode: str
    markets: dict[str, MarketLog]
    start_ns: int
    end_ns: int
    #: ``summary.json`` of a simulation (None for a run without one, e.g. paper trading).
    summary: dict[str, Any] | None
    #: Whether the run has the market data between snapshots: a simulation's input re-read
    #: (``input.json``) or a log that holds it (a session that does not log its feed has none).
    inputs_logged: bool
    #: Where the market lines (``MarketLog.top``) come from when the log holds no market data: the
    #: session's own recordings (``RUN_DIR/market_data/*``) read through the simulator's loader, with
    #: anything unreadable said; "" when the log's own records give them.
    market_data: str = ""

    def digest(self) -> str:
        """The run's digest: ``summary.json``'s, else the columnar log's own, else the log's sha256.

        A rotated session log's segments count decompressed and in order: the digest of the whole log.
        """
        if self.summary and isinstance(self.summary.get("digest"), str):
            return str(self.summary["digest"])
        if (self.path / COLUMNS_NAME).is_file():
            return _columns(self.path / COLUMNS_NAME).digest
        return file_digest(*log_files(self.path))


def file_digest(*paths: Path) -> str:
    """The sha256 of the files' contents one after the other (``.gz`` ones decompressed), in chunks."""
    if len(paths) == 1 and paths[0].suffix != ".gz":
        return file_sha256(paths[0])
    h = hashlib.sha256()
    for path in paths:
        with cast(IO[bytes], gzip.open(path, "rb")) if path.suffix == ".gz" else path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


class _BookTop:
    # One market's displayed book, kept only as far as its best levels need.
    __slots__ = ("ask", "asks", "bid", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.bid = NO_PX
        self.ask = NO_PX

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.bid = self.ask = NO_PX

    def set(self, buy: bool, px: int, qty: int) -> None:
        levels = self.bids if buy else self.asks
        if qty > 0:
            levels[px] = qty
            if buy:
                self.bid = max(self.bid, px)
            elif self.ask == NO_PX or px < self.ask:
                self.ask = px
        elif levels.pop(px, None) is not None:
            if buy and px == self.bid:
                self.bid = max(levels) if levels else NO_PX
            elif not buy and px == self.ask:
                self.ask = min(levels) if levels else NO_PX


class _Market:
    # Accumulates one market's columns while the log is read.
    def __init__(self, market: str, keep_actions: bool) -> None:
        self.market = market
        self.book = _BookTop()
        self.top_ts: list[int] = []
        self.top_bid: list[int] = []
        self.top_ask: list[int] = []
        self.q_ts: list[int] = []
        self.q_bid: list[int] = []
        self.q_ask: list[int] = []
        self.live: dict[str, tuple[bool, int]] = {}  # client id -> (YES-equivalent bid?, YES px)
        self.our_bids: dict[int, int] = {}  # px -> number of our orders there
        self.our_asks: dict[int, int] = {}
        self.f_ts: list[int] = []
        self.f_side: list[int] = []
        self.f_px: list[int] = []
        self.f_qty: list[int] = []
        self.f_cash: list[int] = []
        self.f_fee: list[int] = []
        self.f_maker: list[bool] = []
        self.decisions: list[Decision] = []
        self.last_dec_ts = -1
        self.seq = 0
        self.resolved: tuple[int, bool] | None = None
        self.r_ts: list[int] = []
        self.r_acc: list[int] = []
        self.r_scored = 0
        self.inputs = self.deltas = self.trades = self.places = self.cancels = self.rejects = 0
        self.keep_actions = keep_actions
        self.actions: list[dict[str, Any]] = []
        self.in_hash = hashlib.sha256() if keep_actions else None

    def top_changed(self, ts: int) -> None:
        b = self.book
        if self.top_bid and self.top_bid[-1] == b.bid and self.top_ask[-1] == b.ask:
            return
        if self.top_ts and self.top_ts[-1] == ts:  # several changes at one instant: the last one holds
            self.top_bid[-1], self.top_ask[-1] = b.bid, b.ask
            return
        self.top_ts.append(ts)
        self.top_bid.append(b.bid)
        self.top_ask.append(b.ask)

    def quotes_changed(self, ts: int) -> None:
        bid = max(self.our_bids) if self.our_bids else NO_PX
        ask = min(self.our_asks) if self.our_asks else NO_PX
        if self.q_bid and self.q_bid[-1] == bid and self.q_ask[-1] == ask:
            return
        if self.q_ts and self.q_ts[-1] == ts:
            self.q_bid[-1], self.q_ask[-1] = bid, ask
            return
        self.q_ts.append(ts)
        self.q_bid.append(bid)
        self.q_ask.append(ask)

    def add_order(self, cid: str, outcome: int, side: int, px: int, ts: int) -> None:
        yes = outcome == 0
        bid = (side > 0) == yes  # a YES buy or a NO sell is a YES-equivalent bid
        yes_px = px if yes else PX_ONE - px
        self.live[cid] = (bid, yes_px)
        levels = self.our_bids if bid else self.our_asks
        levels[yes_px] = levels.get(yes_px, 0) + 1
        self.quotes_changed(ts)

    def drop_order(self, cid: str, ts: int) -> None:
        o = self.live.pop(cid, None)
        if o is None:
            return
        levels = self.our_bids if o[0] else self.our_asks
        n = levels[o[1]] - 1
        if n:
            levels[o[1]] = n
        else:
            del levels[o[1]]
        self.quotes_changed(ts)

    def apply_tape(self, tape: MarketTape) -> None:
        """The market data the venue applied, from the run's input (what an input log would hold)."""
        ts, op, px, qty = tape.ts.tolist(), tape.op.tolist(), tape.px.tolist(), tape.qty.tolist()
        specials = tape.specials
        book = self.book
        top_changed = self.top_changed
        for i, o in enumerate(op):
            t = ts[i]
            if o <= OP_ASK:
                book.set(o == OP_BID, px[i], qty[i])
                top_changed(t)
            elif o != OP_SPECIAL:
                self.trades += 1
            else:
                ev = specials[i]
                if isinstance(ev, BookSnapshot):
                    book.clear()
                    yes = ev.outcome == 0
                    for p, q in ev.bids:
                        book.set(yes, p if yes else PX_ONE - p, q)
                    for p, q in ev.asks:
                        book.set(not yes, p if yes else PX_ONE - p, q)
                    top_changed(t)
                elif isinstance(ev, TickSizeChanged):  # a new book epoch: the next snapshot reseeds it
                    book.clear()
                    top_changed(t)
                elif isinstance(ev, MarketResolved):
                    self.resolved = (t, ev.yes_won)
        n = len(op)
        self.inputs += n
        self.deltas += sum(1 for o in op if o <= OP_ASK)
        if self.in_hash is not None:
            h = self.in_hash
            for col in (tape.ts, tape.op, tape.px, tape.qty):
                h.update(col.tobytes())
            for i in sorted(specials):
                h.update(b"%d:" % i + msgspec.json.encode(specials[i]))

    def finish(self) -> MarketLog:
        i64 = np.int64
        return MarketLog(
            market=self.market,
            top=Steps(
                np.asarray(self.top_ts, i64), np.asarray(self.top_bid, i64), np.asarray(self.top_ask, i64)
            ),
            quotes=Steps(
                np.asarray(self.q_ts, i64), np.asarray(self.q_bid, i64), np.asarray(self.q_ask, i64)
            ),
            fills=Fills(
                ts_ns=np.asarray(self.f_ts, i64),
                yes_side=np.asarray(self.f_side, i64),
                yes_px=np.asarray(self.f_px, i64),
                qty=np.asarray(self.f_qty, i64),
                cash_usdc6=np.asarray(self.f_cash, i64),
                fee_usdc6=np.asarray(self.f_fee, i64),
                maker=np.asarray(self.f_maker, np.bool_),
            ),
            decisions=self.decisions,
            resolved=self.resolved,
            inputs=self.inputs,
            deltas=self.deltas,
            trades=self.trades,
            places=self.places,
            cancels=self.cancels,
            rejects=self.rejects,
            actions=self.actions,
            inputs_sha256=self.in_hash.hexdigest() if self.in_hash is not None else "",
            reward_ts=np.asarray(self.r_ts, i64),
            reward_accrued_usdc6=np.asarray(self.r_acc, i64),
            reward_scored=self.r_scored,
        )


_dec_delta = msgspec.json.Decoder(_Delta)
_dec_book = msgspec.json.Decoder(_Book)
_dec_order = msgspec.json.Decoder(_Order)
_dec_head = msgspec.json.Decoder(_Head)
_dec_kind = msgspec.json.Decoder(_Kind)
_dec_reward = msgspec.json.Decoder(_Reward)
_dec_any = msgspec.json.Decoder()
_PREFIX = b'{"kind":"'
_HEAD_KEYS = ("kind", "ts_ns", "market")


def _check_units(header: dict[str, Any], source: str) -> None:
    got = header.get("units")
    if not isinstance(got, dict):
        raise RunFormatError(f"{source}: line 1: the units header has no `units`")
    for name in ("px", "qty", "usdc6", "ns"):
        want = UNITS[name]["scale"]
        have = got.get(name, {}).get("scale") if isinstance(got.get(name), dict) else None
        if have != want:
            raise RunFormatError(
                f"{source}: line 1: unit {name} has scale {have!r}, this reader needs {want!r}"
            )


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """``summary.json`` of a run directory, or None when it has none."""
    path = run_dir / SUMMARY_NAME
    if not path.exists():
        return None
    try:
        data = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise RunFormatError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RunFormatError(f"{path}: not a JSON object")
    return data


def log_files(run_dir: Path) -> list[Path]:
    """The event log's files, oldest first: a session's rotated segments, then ``events.jsonl``.

    A segment both gzipped and plain (a crash while compressing) is read from the gzipped file, which
    is complete once it has its name.
    """
    rotated: dict[int, Path] = {}
    names = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else []
    for name in names:
        m = _SEGMENT.match(name)
        if m is not None and (m["gz"] or int(m["index"]) not in rotated):
            rotated[int(m["index"])] = run_dir / name
    out = [rotated[i] for i in sorted(rotated)]
    if (run_dir / LOG_NAME).is_file():
        out.append(run_dir / LOG_NAME)
    return out


def read_run(run_dir: str | Path, *, actions: bool = False) -> Run:
    """Read a run directory (see the module docstring); ``actions`` also keeps every action record.

    Raises ``RunFormatError`` with one line for a missing directory, a missing or malformed log, or
    a log in other units.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFormatError(f"{path}: no such run directory")
    lines = _log_lines(path)
    summary = read_summary(path)
    try:
        tapes = load_input_tapes(path)
    except InputError as exc:
        raise RunFormatError(str(exc)) from None
    # The input's markets first, in its order (the simulator's lanes).
    markets: dict[str, _Market] = {t.info.market: _Market(t.info.market, actions) for t in tapes or ()}
    mode = ""
    start = end = -1
    source = str(path)
    try:
        for source, n, line in lines:
            if not line.startswith(_PREFIX):
                if not line.strip():
                    continue
                raise RunFormatError(f"{source}: line {n}: not an event record (no leading `kind`)")
            stop = line.index(b'"', 9)
            kind = line[9:stop].decode()
            try:
                if kind == "units":
                    header = _dec_any.decode(line)
                    _check_units(header, source)
                    mode = str(header.get("mode", ""))
                    continue
                if kind == "delta":
                    d = _dec_delta.decode(line)
                    m = markets.get(d.market) or markets.setdefault(d.market, _Market(d.market, actions))
                    m.inputs += 1
                    m.deltas += 1
                    if m.in_hash is not None:
                        m.in_hash.update(line)
                    if d.outcome == 0:
                        m.book.set(d.side > 0, d.px, d.qty)
                    else:  # a NO level is the YES level on the other side at 1 - p
                        m.book.set(d.side < 0, PX_ONE - d.px, d.qty)
                    m.top_changed(d.ts_ns)
                    ts = d.ts_ns
                elif kind in ("place", "fill", "canceled", "rejected", "cancel"):
                    o = _dec_order.decode(line)
                    m = markets.get(o.market) or markets.setdefault(o.market, _Market(o.market, actions))
                    ts = o.ts_ns
                    if kind == "place":
                        m.places += 1
                        m.add_order(o.client_id, o.outcome, o.side, o.px, ts)
                    elif kind == "fill":
                        yes = o.outcome == 0
                        m.f_ts.append(ts)
                        m.f_side.append(o.side if yes else -o.side)
                        m.f_px.append(o.px if yes else PX_ONE - o.px)
                        m.f_qty.append(o.qty)
                        m.f_cash.append(
                            notional_usdc6(o.px, o.qty) if yes else complement_notional_usdc6(o.px, o.qty)
                        )
                        m.f_fee.append(o.fee_usdc6)
                        m.f_maker.append(o.liquidity == "maker")
                        if o.leaves_qty <= 0:
                            m.drop_order(o.client_id, ts)
                    elif kind == "cancel":
                        m.cancels += 1
                    else:
                        if kind == "rejected":
                            m.rejects += 1
                        m.drop_order(o.client_id, ts)
                    if actions:
                        m.actions.append(_strip(_dec_any.decode(line)))
                elif kind == "decision":
                    rec = _dec_any.decode(line)
                    market, ts = str(rec.get("market", "")), int(rec.get("ts_ns", 0))
                    m = markets.get(market) or markets.setdefault(market, _Market(market, actions))
                    if ts == m.last_dec_ts:
                        m.seq += 1
                    else:
                        m.last_dec_ts, m.seq = ts, 0
                    m.decisions.append(Decision(ts, m.seq, _body(rec)))
                elif kind == "reward":
                    r = _dec_reward.decode(line)
                    m = markets.get(r.market) or markets.setdefault(r.market, _Market(r.market, actions))
                    ts = r.ts_ns
                    m.r_ts.append(ts)
                    m.r_acc.append(r.accrued_usdc6)
                    m.r_scored += r.scoring
                elif kind == "book":
                    b = _dec_book.decode(line)
                    m = markets.get(b.market) or markets.setdefault(b.market, _Market(b.market, actions))
                    m.inputs += 1
                    if m.in_hash is not None:
                        m.in_hash.update(line)
                    m.book.clear()
                    yes = b.outcome == 0
                    for px, q in b.bids:
                        m.book.set(yes, px if yes else PX_ONE - px, q)
                    for px, q in b.asks:
                        m.book.set(not yes, px if yes else PX_ONE - px, q)
                    ts = b.ts_ns
                    m.top_changed(ts)
                else:
                    h = _dec_head.decode(line)
                    ts = h.ts_ns
                    m = markets.get(h.market) or markets.setdefault(h.market, _Market(h.market, actions))
                    if kind in INPUT_KINDS:
                        m.inputs += 1
                        if m.in_hash is not None:
                            m.in_hash.update(line)
                        if kind == "trade":
                            m.trades += 1
                        elif kind == "tick_size":  # a new book epoch: the next snapshot reseeds it
                            m.book.clear()
                            m.top_changed(ts)
                        elif kind == "resolved":
                            rec = _dec_any.decode(line)
                            m.resolved = (ts, bool(rec.get("yes_won")))
                    elif kind in ACTION_KINDS and actions:
                        m.actions.append(_strip(_dec_any.decode(line)))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise RunFormatError(f"{source}: line {n}: a malformed {kind} record: {exc}") from None
            if start < 0 or ts < start:
                start = ts
            end = max(end, ts)
    except (OSError, EOFError) as exc:  # a damaged gzip segment
        raise RunFormatError(f"{source}: unreadable: {exc}") from None
    if mode == "" and not markets:
        raise RunFormatError(f"{source}: empty log")
    for tape in tapes or ():
        m = markets[tape.info.market]
        if not (m.inputs or len(tape) == 0):  # (a log that holds its inputs is read as it is)
            m.apply_tape(tape)
            if start < 0 or tape.ts[0] < start:
                start = tape.ts[0]
            end = max(end, tape.ts[-1])
    markets.pop("", None)
    done = {k: v.finish() for k, v in markets.items()}
    inputs_logged = any(m.deltas or m.trades for m in done.values())
    market_data = ""
    if not inputs_logged and (path / RECORDINGS_DIR).is_dir():
        market_data = _recorded_tops(path / RECORDINGS_DIR, done)
    _read_marks(path, done)
    return Run(
        path=path,
        mode=mode,
        markets=done,
        start_ns=max(start, 0),
        end_ns=max(end, 0),
        summary=summary,
        inputs_logged=inputs_logged,
        market_data=market_data,
    )


def _recorded_tops(root: Path, markets: dict[str, MarketLog]) -> str:
    # A trading session logs no market data: its feed is in its recordings (one per session of the
    # run, named by UTC start, so in time order). Each logged market's top of book is rebuilt from
    # them through the simulator's own loader (YES book, venue timestamps); returns what was used.
    from sim.scenario import WsReplaySource, ws_replay_tapes  # noqa: PLC0415

    tops = {k: _Market(k, keep_actions=False) for k in markets}
    used: list[str] = []
    bad: list[str] = []
    for rec in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            tapes = ws_replay_tapes(WsReplaySource(path=str(rec)), rec)
        except (OSError, ValueError) as exc:  # a RecordingError is a ValueError
            bad.append(f"{rec.name}: {' '.join(str(exc).split())[:160]}")
            continue
        used.append(rec.name)
        for tape in tapes:
            m = tops.get(tape.info.market)
            if m is not None:  # (a market recorded but never traded is left out)
                m.apply_tape(tape)
    for k, m in tops.items():
        if m.top_ts:
            markets[k].top = m.finish().top
    said = f"the session's recordings in {root.name}/: {', '.join(used)}" if used else ""
    if bad:
        said += ("; " if said else "") + "unreadable: " + "; ".join(bad)
    return said


def _columns(path: Path) -> ColumnReader:
    try:
        return ColumnReader.open(path)
    except ColumnFormatError as exc:
        raise RunFormatError(str(exc)) from None


def _log_lines(path: Path) -> Generator[tuple[str, int, bytes], None, None]:
    # (what to name in errors, line number, line) over a run directory's log, the units header first:
    # a simulation's columns as ``polymm events`` prints them, else a session's JSON lines (rotated
    # segments first), where a last line without its newline (a kill in mid-write) is not a record.
    cols = path / COLUMNS_NAME
    if cols.is_file():
        name = f"{cols} (as `polymm events` prints it)"
        for n, line in enumerate(_column_lines(_columns(cols)), 1):
            yield name, n, line
        return
    files = log_files(path)
    if not files:
        raise RunFormatError(f"{path}: no {COLUMNS_NAME} or {LOG_NAME} (not a run directory)")
    for file in files:
        with cast(IO[bytes], gzip.open(file, "rb")) if file.suffix == ".gz" else file.open("rb") as f:
            for n, line in enumerate(f, 1):
                if line.endswith(b"\n"):
                    yield str(file), n, line


def _column_lines(
    reader: ColumnReader, kinds: Iterable[str] | None = None, market: str | None = None
) -> Generator[bytes, None, None]:
    yield reader.units_line()
    try:
        yield from reader.lines(kinds, market)
    except ColumnFormatError as exc:
        raise RunFormatError(str(exc)) from None


def event_lines(
    run_dir: str | Path, kinds: Iterable[str] | None = None, market: str | None = None
) -> Iterator[bytes]:
    """A run directory's event log as JSON lines in log order, the ``units`` header first.

    ``kinds``/``market``: only the records of these kinds / of this market (the header always).
    A simulation's columnar log comes out as the lines ``core.eventlog.BufferSink`` writes; a
    session's ``events.jsonl`` as it is.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFormatError(f"{path}: no such run directory")
    cols = path / COLUMNS_NAME
    if cols.is_file():
        yield from _column_lines(_columns(cols), kinds, market)
        return
    want = set(kinds) if kinds is not None else None
    with contextlib.closing(_log_lines(path)) as lines:
        for source, n, line in lines:
            if not line.strip():
                continue
            if line.startswith(b'{"kind":"units"'):
                yield line
                continue
            if want is not None or market is not None:
                try:
                    head = _dec_kind.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise RunFormatError(f"{source}: line {n}: {exc}") from None
                if (want is not None and head.kind not in want) or (
                    market is not None and head.market != market
                ):
                    continue
            yield line


def log_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of a run directory's event log in order, the ``units`` header first, as dicts."""
    try:
        return [_dec_any.decode(line) for line in event_lines(run_dir)]
    except msgspec.DecodeError as exc:
        raise RunFormatError(f"{run_dir}: {exc}") from None


def _strip(rec: dict[str, Any]) -> dict[str, Any]:
    # An action record without its market (the list it is in says it); kind and time stay.
    return {k: v for k, v in rec.items() if k != "market"}


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    # A decision's content: the record without its head keys (``Decision`` holds the time).
    return {k: v for k, v in rec.items() if k not in _HEAD_KEYS}


class _Marks(msgspec.Struct, forbid_unknown_fields=True):
    fill_mid2: list[int]
    resolution_mid2: int | None = None
    final_mid2: int | None = None


class _MarksFile(msgspec.Struct):
    markets: dict[str, _Marks]


def _read_marks(path: Path, markets: dict[str, MarketLog]) -> None:
    # The venue's marks, when the simulator wrote them; a file that does not match the log is refused.
    file = path / MARKS_NAME
    if not file.exists():
        return
    try:
        marks = msgspec.json.decode(file.read_bytes(), type=_MarksFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RunFormatError(f"{file}: {exc}") from None
    for name, mk in marks.markets.items():
        m = markets.get(name)
        if m is None or len(mk.fill_mid2) != len(m.fills):
            got = len(m.fills) if m else 0
            raise RunFormatError(
                f"{file}: market {name}: {len(mk.fill_mid2)} fill marks for {got} fills in the log"
            )
        m.fill_mid2 = np.asarray(mk.fill_mid2, np.int64)
        m.resolution_mid2 = mk.resolution_mid2
        m.final_mid2 = mk.final_mid2


def write_venue_marks(run_dir: Path, lanes: Sequence[Lane]) -> None:
    """Write the simulated venue's marks per market (``venue_marks.json``) after a simulation.

    The event log has no mid per fill; ``summary.json``'s spread capture uses the venue's own book
    (less the liquidity we used) at each fill, its resolution part the venue's mid before the
    resolution and its final mark the venue's last mid. This file keeps those three, so a report's
    PnL split is the summary's. It is not part of the run's digest.
    """
    markets = {}
    for lane in lanes:
        ex = lane.exchange
        b = ex.book
        two_sided = 0 <= b.bid_px < b.ask_px <= PX_ONE
        final = b.bid_px + b.ask_px if two_sided else max(ex.last_mid2, lane.markouts.last_mid2)
        markets[lane.market] = {
            "fill_mid2": [f.mid2 for f in ex.fills],
            "resolution_mid2": lane.resolution[2] if lane.resolution else None,
            "final_mid2": final,
        }
    body = {
        "about": "twice the simulated venue's mid (Px, 1e-4 USDC) at each of our fills in log order, "
        "before the resolution and at the end of the run, per market; not part of the digest",
        "markets": markets,
    }
    (run_dir / MARKS_NAME).write_bytes(msgspec.json.encode(body) + b"\n")
