"""Replay a recording as a dry-run or paper trading session ran it: the live engine's own pieces.

``polymm sim --replay REC --dry-run``: ``read_replay`` reads the recording, the composition root
(``app.compose.bootstrap(cfg, "replay", ...)``) builds the ``SessionReplay`` and ``run_replay`` runs
it. Where the simulator (``sim.runner``) replays the venue's
timestamps through a simulated venue that fills our orders, this replays what the *process* saw, when
it saw it, through the very code a ``run-market-maker --mode dry-run`` (or ``paper``) session runs:

* each recorded frame goes through ``MarketWsClient`` (its decoding, its book epochs, REST snapshots
  held until their market's data, resyncs) and the engine's ``FrameDispatcher`` (its YES view), to one
  ``MarketActor`` per market (``on_receive``, the live actor's handler), whose ``MarketSession``
  decides; orders go to a ``DryRunPort``, acknowledged at once, never filled;
* a paper session's recording holds its paper venue's execution reports (``Reports``: acks, fills,
  cancels, rejections) where the session heard them: the replay hands them to the session there,
  as one more recorded input, and its orders go to a ``VenueReplayPort``, which answers nothing.
  Client ids are the session's own sequence (``market-1``, ``market-2``, ...), so a recorded report
  names the replay's order when the replay decided as the session did; a report that names an order
  the replay never placed, or a fill its order could not have had, is the replay's first
  divergence: it is reported (``SessionReplay.diverged``, the summary, ``polymm sim``'s output), and
  such reports are never handed over;
* the sessions' clock is the recorded time of the input being handled, which is the time the live
  sessions read for it (one reading per input of the actors' loop, ``actors.loop.InputClock``);
* the engine's own inputs come where they came: a session recording (``ops.record_market_data``)
  holds its ticker's ``Timer``s, budget shares, feed-alive notes, the risk manager's gates, status
  asks and the shutdown's pull;
  for a ``polymm record`` recording the ticker is reconstructed (every ``tick_s`` from the first
  record, a budget share and a feed-alive note every tenth tick, a pull at the end);
* messages are handled as the actors' loop handles them (``actors.loop``): a frame's batch at once,
  the acknowledgements it causes right after it, in order; a requote waits for the inbox to drain.

A dry-run or paper session replayed from its own recording makes the same decisions, in the same
order, with the same content and the same time stamps, and a paper session the same fills
(``tests/app/test_record_replay.py``, ``tests/app/test_session_recording_clock.py``): live, every
clock reading a session makes while it handles an input is the input's recorded time, however late
the loop got to it, so a throttled requote or a volatility sample falls due on the same input here.
A recording of format version 1 (``adapters.recording``) was stamped a little before its sessions
read the clock: its replay can part from the session where a time boundary (the 250 ms requote
throttle, the volatility sampling period) fell in between, which the summary's notes say.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import msgspec

from actors.dispatch import FrameDispatcher
from actors.market import (
    FeedAlive,
    FeedLost,
    GetStatus,
    MarketActor,
    PullQuotes,
    SetBudget,
    Status,
)
from actors.risk import SetRiskGate
from actors.session import MarketSession
from actors.supervisor import Router
from adapters.paper import DryRunPort
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.ws_market import MarketWsClient, MarketWsConfig
from adapters.recording import (
    VERSION,
    Connect,
    Dropped,
    FileHeader,
    Frame,
    Gap,
    Input,
    Record,
    Recording,
    Reports,
    RestBook,
    Resync,
)
from core.eventlog import BufferSink
from core.inventory import budget_rooms
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Canceled,
    Command,
    ExecBatch,
    ExecEvent,
    Filled,
    Merge,
    Merged,
    MergeFailed,
    Place,
    Rejected,
    Timer,
)
from core.quoting import QuoteParams
from core.risk import RiskGate
from core.units import NS_PER_S, units_header

__all__ = ["ReplayClock", "ReplayInput", "SessionReplay", "VenueReplayPort", "read_replay", "run_replay"]

#: The live engine's ticker period and how many ticks apart it shares the budget (app.bootstrap).
TICK_NS: Final = 100_000_000
BUDGET_EVERY: Final = 10
#: What a session replay writes beside its events.jsonl.
REPLAY_SUMMARY: Final = "replay.json"


class ReplayClock:
    """The sessions' clock: the recorded time of the input being handled."""

    __slots__ = ("t",)

    def __init__(self, t: int = 0) -> None:
        self.t = t

    def now_ns(self) -> int:
        """The current input's time."""
        return self.t


class VenueReplayPort:
    """``ExchangePort`` of a paper session's replay: keeps the session's commands, answers none.

    The answers are the paper venue's recorded reports; ``check`` says whether one fits the orders
    this replay sent (see the module docstring). The paper venue answers each order as it arrives
    (accepted, rejected, or filled at once), so the first report naming each order comes in the
    order they were placed: a first answer to a later order while an earlier one of the replay has
    none says the session never placed that earlier one.
    """

    def __init__(self, market: str) -> None:
        self.market = market
        #: Every order this replay placed, by client id, and what of it is not filled yet.
        self.placed: dict[str, Place] = {}
        self.unfilled_qty: dict[str, int] = {}
        #: The replay's orders no report has named yet, oldest first.
        self.unanswered: collections.deque[str] = collections.deque()
        self.merges: set[str] = set()

    def submit(self, commands: Sequence[Command]) -> None:
        """Keep what the session sent (nothing leaves the process, nothing answers)."""
        for cmd in commands:
            if isinstance(cmd, Place):
                self.placed[cmd.client_id] = cmd
                self.unfilled_qty[cmd.client_id] = cmd.qty
                self.unanswered.append(cmd.client_id)
            elif isinstance(cmd, Merge):
                self.merges.add(cmd.merge_id)

    def cancel_all(self, market: str) -> None:
        """Nothing to do: the recorded venue's cancels come as recorded."""

    def check(self, report: ExecEvent) -> str:
        """Why ``report`` cannot answer an order of this replay ("" when it can; a fill is booked)."""
        if isinstance(report, Merged | MergeFailed):
            if report.merge_id in self.merges:
                return ""
            return f"{_kind(report)} of merge {report.merge_id}, which this replay never sent"
        if not isinstance(report, Accepted | Rejected | Canceled | Filled):
            return ""  # (adopted orders and position resyncs are a live venue's, never a paper one's)
        cid = report.client_id
        place = self.placed.get(cid)
        if place is None:
            return f"{_kind(report)} of order {cid}, which this replay never placed"
        first = cid in self.unanswered
        if first and self.unanswered[0] != cid:
            return (
                f"{_kind(report)} of order {cid} before any answer to the replay's earlier order "
                f"{self.unanswered[0]}, which the session never placed"
            )
        if isinstance(report, Filled):
            left = self.unfilled_qty[cid]
            if (
                report.outcome is not place.outcome
                or report.side is not place.side
                or report.qty > left
                or (report.liquidity == "maker" and report.px != place.px)
            ):
                return (
                    f"fill of order {cid} ({report.side.name} {report.outcome.name} {report.qty} @ "
                    f"{report.px}) does not fit the replay's order ({place.side.name} "
                    f"{place.outcome.name} @ {place.px}, {left} unfilled)"
                )
            self.unfilled_qty[cid] = left - report.qty
        if first:
            self.unanswered.popleft()
        return ""


def _kind(report: ExecEvent) -> str:
    # The report's tag (``accepted``, ``fill``, ...), as the event log names it.
    return str(type(report).__struct_config__.tag)


class _Inbox(collections.deque[Any]):
    """The actor's mailbox (``empty`` is what ``MarketActor`` asks before it requotes)."""

    def empty(self) -> bool:
        return not self


class _ReplayActor(MarketActor):
    """A ``MarketActor`` handled synchronously by ``_Loop`` (never started as a pykka actor)."""

    actor_inbox: _Inbox  # type: ignore[assignment]

    @staticmethod
    def _create_actor_inbox() -> _Inbox:  # type: ignore[override]
        return _Inbox()


class _Loop:
    """The actors' event loop, on one thread, in order (``actors.loop.LoopActor``'s rules).

    A message told while nothing is being handled is handled at once (the feed's frame); one told
    while an actor handles another (its acknowledgements) waits in the inbox, and is handled right
    after by the same drain.
    """

    def __init__(self) -> None:
        self.actors: dict[str, _ReplayActor] = {}
        self.draining = False
        self._due: collections.deque[_ReplayActor] = collections.deque()

    def tell(self, market: str, message: object) -> bool:
        actor = self.actors.get(market)
        if actor is None:
            return False
        actor.actor_inbox.append(message)
        if self.draining:
            self._due.append(actor)
            return True
        self._drain(actor)
        while self._due:
            self._drain(self._due.popleft())
        return True

    def ask(self, market: str, message: object) -> Any:
        # An ask is a message like any other, answered when handled (nothing else waits here).
        actor = self.actors[market]
        self.draining = True
        try:
            answer = actor.on_receive(message)
        finally:
            self.draining = False
        self._drain(actor)
        return answer

    def _drain(self, actor: _ReplayActor) -> None:
        inbox = actor.actor_inbox
        self.draining = True
        try:
            while inbox:
                actor.on_receive(inbox.popleft())
        finally:
            self.draining = False


class SessionReplay:
    """One dry-run or paper session over a recording (see the module docstring).

    ``paper``: the recording is a paper session's, its venue's reports replayed (``VenueReplayPort``).
    """

    def __init__(
        self,
        markets: Sequence[MarketInfo],
        params: QuoteParams,
        sink: BufferSink,
        *,
        global_cap_usdc6: int,
        event_cap_usdc6: int,
        start_ns: int,
        paper: bool = False,
    ) -> None:
        self.markets = list(markets)
        self.params = params
        self.sink = sink
        self.clock = ReplayClock(start_ns)
        self.loop = _Loop()
        self.global_cap = global_cap_usdc6
        self.event_cap = event_cap_usdc6
        self.sessions: dict[str, MarketSession] = {}
        # The live engine's own dispatcher, telling our loop instead of its router.
        self.dispatch = FrameDispatcher(cast(Router, self.loop))
        self.feed = MarketWsClient(
            AssetMap.from_markets(self.markets),
            lambda ev: self.dispatch((ev,)),
            config=MarketWsConfig(snapshot_timeout_s=None),
            on_invalidate=self._feed_lost,
            on_batch=self.dispatch,
            on_resync=self._book_resync,
        )
        self.counts: collections.Counter[str] = collections.Counter()
        #: Records that make the replay differ from what was live (frames the recorder dropped).
        self.notes: list[str] = []
        self.connected = False
        self.mode = "paper" if paper else "dry-run"
        #: Paper: each market's port, which checks the recorded reports against the replay's orders.
        self.venue_ports: dict[str, VenueReplayPort] = {}
        #: The first recorded report that does not fit the replay's orders (None: none so far).
        self.diverged: dict[str, Any] | None = None
        sink.record("units", start_ns, "", units_header(self.mode))
        rooms = self.rooms([0] * len(self.markets))
        for info, room in zip(self.markets, rooms, strict=True):
            port: DryRunPort | VenueReplayPort
            if paper:
                port = self.venue_ports[info.market] = VenueReplayPort(info.market)
            else:
                port = DryRunPort(info.market, self.loop.tell, self.clock)
            s = MarketSession(info, params, port, self.clock, sink, book_resync=lambda _m: None)
            s.global_room_usdc6 = room
            self.sessions[info.market] = s
            self.loop.actors[info.market] = _ReplayActor(s)

    def rooms(self, exposures: Sequence[int]) -> list[int]:
        """Each market's share of the budgets (``app.bootstrap.TradingEngine.rooms``)."""
        cap = self.global_cap
        rooms = budget_rooms(exposures, cap, [m.neg_risk_market_id for m in self.markets], self.event_cap)
        return [cap if r is None else r for r in rooms]

    # --- the feed's callbacks (as app.bootstrap.TradingEngine's) -----------------------------------

    def _feed_lost(self, market: str, outcome: object) -> None:
        from core.units import Outcome  # noqa: PLC0415

        if outcome is Outcome.YES:
            self.loop.tell(market, FeedLost(ts_ns=self.clock.now_ns()))

    def _book_resync(self, market: str, reason: str) -> None:
        now = self.clock.now_ns()
        self.sink.record("book_resync", now, market, {"reason": reason})
        self.loop.tell(market, FeedLost(ts_ns=now))

    # --- inputs ------------------------------------------------------------------------------------

    def at(self, t: int) -> None:
        """Move the clock to ``t`` (never back)."""
        self.clock.t = max(self.clock.t, t)

    def record(self, rec: Record) -> None:
        """Apply one recorded record at its time."""
        self.at(rec.recv_ns)
        match rec:
            case Frame():
                self.counts["frames"] += 1
                self.feed.replay_frame(rec.data())
            case Input():
                self.counts[f"input_{rec.input}"] += 1
                self.engine_input(rec.input, rec.market, rec.room_usdc6, rec.risk_gate)
            case Connect():
                self.counts["connects"] += 1
                self.connected = True
            case Gap():
                self.counts["gaps"] += 1
                self.connected = False
                self.feed.replay_disconnect()
            case Dropped():
                self.counts["dropped_frames"] += rec.frames
                self.notes.append(
                    f"{rec.frames} frames from {rec.since_ns} were not recorded (the disk was behind): "
                    "replayed as a gap, so the decisions until the next snapshots differ from the live ones"
                )
                self.feed.replay_disconnect()
            case RestBook():
                self.counts["rest_books"] += 1
                self.feed.replay_rest_book(rec.token, rec.body.encode())
            case Resync():
                self.counts["resyncs"] += 1
                self.feed.replay_resync(rec.market, rec.reason)
            case Reports():
                self.venue_reports(rec)
            case FileHeader():
                pass

    def venue_reports(self, rec: Reports) -> None:
        """The paper venue's reports to one market's session, now: those that fit the replay's orders.

        A report that does not (an order the replay never placed, a fill it could not have had) is
        the replay's divergence from the session: kept out, counted, the first one noted.
        """
        port = self.venue_ports.get(rec.market)
        fit: list[ExecEvent] = []
        for ev in rec.reports:
            if port is None:
                why = "a venue report, but this replay has no venue (not a paper session's replay?)"
            else:
                why = port.check(ev)
            if why:
                self.counts["unfit_reports"] += 1
                if self.diverged is None:
                    self.diverged = {"ts_ns": rec.recv_ns, "market": rec.market, "why": why}
                    self.notes.append(
                        f"diverged at {rec.recv_ns} in {rec.market}: the recorded venue sent a {why}: "
                        "from there on the replay decided differently from the session (reports that fit "
                        "no order of the replay are not handed over)"
                    )
                continue
            self.counts["reports"] += 1
            if type(ev) is Filled:
                self.counts["fills"] += 1
            fit.append(ev)
        if fit:
            self.loop.tell(rec.market, ExecBatch(tuple(fit)))

    def engine_input(
        self, kind: str, market: str, room_usdc6: int | None = None, gate: RiskGate | None = None
    ) -> None:
        """One of the engine's own inputs (``adapters.recording.Input``), now."""
        now = self.clock.now_ns()
        loop = self.loop
        match kind:
            case "timer":
                loop.tell(market, Timer(market=market, ts_ns=now))
            case "budget":
                if room_usdc6 is not None:
                    loop.tell(market, SetBudget(room_usdc6=room_usdc6))
            case "alive":
                loop.tell(market, FeedAlive(ts_ns=now))
            case "risk":
                if gate is not None:
                    loop.tell(market, SetRiskGate(gate))
            case "status":
                self.statuses()
            case "pull":
                for m in sorted(loop.actors):
                    loop.ask(m, PullQuotes(ts_ns=now, reason="shutdown"))

    def statuses(self) -> dict[str, Status]:
        """Every market's status (what the engine asks: a pending requote that is due is made)."""
        return {m: self.loop.ask(m, GetStatus()) for m in sorted(self.loop.actors)}

    def tick(self, n: int) -> None:
        """The live ticker's ``n``-th tick (1-based), now: timers, and every tenth a budget share."""
        now = self.clock.now_ns()
        for m in self.markets:
            self.engine_input("timer", m.market)
        if n % BUDGET_EVERY:
            return
        statuses = self.statuses()
        exposures = [
            statuses[m.market].exposure_usdc6 if m.market in statuses else self.params.per_market_cap_usdc6
            for m in self.markets
        ]
        for m, room in zip(self.markets, self.rooms(exposures), strict=True):
            self.engine_input("budget", m.market, room)
        if self.connected:
            for m in self.markets:
                self.loop.tell(m.market, FeedAlive(ts_ns=now))


@dataclass(frozen=True, eq=False)
class ReplayInput:
    """A recording read for a session replay: its markets, its records in order, and its first time."""

    recording: Recording
    markets: list[MarketInfo]
    records: list[Record]
    start_ns: int
    #: A session's recording (``ops.record_market_data``): the engine's own inputs are in it.
    session: bool
    #: A paper session's recording: its paper venue's reports are in it (replayed, not made up).
    paper: bool = False
    #: The recording's format version (``adapters.recording.VERSION``; 1 before its stamps were the
    #: times its sessions read).
    version: int = VERSION


def read_replay(recording: Recording, markets: Sequence[MarketInfo] | None = None) -> ReplayInput:
    """Read ``recording`` for a session replay (``markets``: its markets and rules; default: its manifest).

    The replay itself is built by ``app.compose.bootstrap(cfg, "replay", input.markets, ...)``, the
    composition root, and run by ``run_replay``.

    Raises:
        RecordingError: The recording is corrupt or names no market.
    """
    from adapters.recording import RecordingError  # noqa: PLC0415

    infos = list(markets) if markets is not None else recording.markets()
    if not infos:
        why = "has no manifest to name its markets" if recording.manifest is None else "names no market"
        raise RecordingError(f"{recording.path}: {why}: a dry-run replay needs them")
    records = list(recording.records())
    start = next((r.recv_ns for r in records), 0)
    session = recording.manifest is not None and recording.manifest.kind == "session"
    paper = session and recording.manifest is not None and recording.manifest.session.get("mode") == "paper"
    version = recording.manifest.version if recording.manifest is not None else VERSION
    return ReplayInput(recording, infos, records, start, session, paper, version)


def run_replay(replay: SessionReplay, source: ReplayInput, out_dir: Path) -> dict[str, Any]:
    """Run ``replay`` over ``source`` into ``out_dir/events.jsonl``; returns the summary.

    ``out_dir`` gets ``events.jsonl`` and ``replay.json`` (created; no ``summary.json``: a dry run has
    no fills or PnL, a paper replay's fills are the recorded ones, in its ``events.jsonl``, and
    ``polymm report``/``diff`` read it as they read a live run). ``replay.json``'s ``diverged`` is the
    first recorded report that fit no order of the replay (None: every one fit).
    """
    recording, infos, start = source.recording, source.markets, source.start_ns
    if source.session and source.version < 2:
        replay.notes.append(
            f"recorded in format version {source.version}, whose stamps came a little before the session "
            "read the clock: where a requote fell due or the volatility was sampled in between, the "
            "replay decided on another input than the session did (format 2 records the time the "
            "session read)"
        )
    _run(replay, source.records, source.session)
    unanswered = sum(len(port.unanswered) for port in replay.venue_ports.values())
    if unanswered:
        replay.counts["unanswered_orders"] = unanswered
        replay.notes.append(
            f"{unanswered} orders the replay placed were never answered in the recording (placed after "
            "the recorder stopped, or never placed by the session)"
        )
    sink = replay.sink
    out_dir.mkdir(parents=True, exist_ok=True)
    data = b"".join(sink.lines)
    (out_dir / "events.jsonl").write_bytes(data)
    decisions = collections.Counter(
        msgspec.json.decode(line)["market"] for line in sink.lines if line.startswith(b'{"kind":"decision"')
    )
    summary: dict[str, Any] = {
        "replay": str(recording.path),
        "mode": replay.mode,
        "markets": len(infos),
        "engine_inputs": "recorded" if source.session else f"a ticker every {TICK_NS // 1_000_000} ms",
        "format_version": source.version,
        "from_ns": start,
        "to_ns": replay.clock.t,
        "seconds": round((replay.clock.t - start) / NS_PER_S, 3),
        "counts": dict(sorted(replay.counts.items())),
        "events_in": replay.dispatch.events_in,
        "skipped": replay.feed.status().skipped,
        "decisions": {m.market: decisions.get(m.market, 0) for m in infos},
        "truncated_files": recording.truncated,
        "diverged": replay.diverged,
        "notes": replay.notes,
        "digest": hashlib.sha256(data).hexdigest(),
    }
    (out_dir / REPLAY_SUMMARY).write_bytes(msgspec.json.format(msgspec.json.encode(summary)) + b"\n")
    return summary


def _run(replay: SessionReplay, records: Iterable[Record], session_recording: bool) -> None:
    if session_recording:
        for rec in records:
            replay.record(rec)
        return
    # A plain recording: the ticker is reconstructed between the records, then the shutdown's pull.
    n = 0
    next_tick = replay.clock.t + TICK_NS
    for rec in records:
        while next_tick <= rec.recv_ns:
            replay.at(next_tick)
            n += 1
            replay.tick(n)
            next_tick += TICK_NS
        replay.record(rec)
    replay.engine_input("pull", "")
