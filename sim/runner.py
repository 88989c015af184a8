"""The deterministic simulation loop: tapes → simulated venues ⇄ market sessions, in lockstep windows.

Each market has a *lane*: its tape, its ``SimExchange`` (the venue side) and its ``SessionDriver``
(our side: a ``MarketSession`` fed in delivery order). Lanes interact only through the global
exposure budget, which each session reads from a snapshot taken at the start of every window.

Time advances in windows no longer than the smallest order or response latency (conservative
lockstep): a command issued in a window reaches the venue in a later one, and a venue report reaches
the session in a later one, so within a window every lane can run on its own. A window runs in two
phases, venue then sessions; the ``actors`` engine runs the session phase inside one pykka actor per
market (a ``RunWindow`` ask, then a barrier), the ``inline`` engine calls the same driver directly.
Log lines are buffered per market and written in market order after each window, so both engines
write byte-identical logs. Randomness (latency jitter) comes from per-market ``random.Random``
streams seeded from the run's seed; nothing reads the wall clock except the summary's timing.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec

from actors.session import MarketSession
from core.inventory import Inventory
from core.messages import (
    BookSnapshot,
    Cancel,
    CancelAll,
    Command,
    ExecEvent,
    MarketResolved,
    Place,
    TickSizeChanged,
)
from core.quoting import QuoteParams
from core.units import NS_PER_MS, NS_PER_S, PX_ONE, Side
from sim.eventlog import BufferSink
from sim.exchange import QueueModel, SimExchange
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SPECIAL, MarketTape

INF = 1 << 62
MARKOUT_HORIZONS_S = (1, 10, 60)


class Latency(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One-way latencies in ms: ``base + U(0, jitter)`` from the run's seeded RNG when jitter > 0."""

    feed_ms: float = 50.0
    feed_jitter_ms: float = 0.0
    order_ms: float = 50.0
    order_jitter_ms: float = 0.0
    response_ms: float = 50.0
    response_jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.order_ms < 1 or self.response_ms < 1:
            raise ValueError("order_ms: order_ms and response_ms must be >= 1 (they set the lockstep window)")
        if min(self.feed_ms, self.feed_jitter_ms, self.order_jitter_ms, self.response_jitter_ms) < 0:
            raise ValueError("feed_ms: latencies cannot be negative")


class RunSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a simulation runs, independent of where its data comes from."""

    latency: Latency = msgspec.field(default_factory=Latency)
    queue: QueueModel = msgspec.field(default_factory=QueueModel)
    timer_ms: int = 1000
    log_inputs: bool = True
    global_ev_cap_usdc6: int | None = None


class SimClock:
    """Simulated time, advanced by the runner; it never goes backwards."""

    __slots__ = ("t",)

    def __init__(self, t: int = 0) -> None:
        self.t = t

    def now_ns(self) -> int:
        """Current simulated time."""
        return self.t

    def advance_to(self, ts_ns: int) -> None:
        """Move time forward to ``ts_ns``."""
        if ts_ns < self.t:
            raise ValueError("time can't go backwards")
        self.t = ts_ns


class SimPort:
    """The session's ``ExchangePort`` in simulation: an outbox the runner drains after each window."""

    __slots__ = ("clock", "outbox")

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.outbox: list[tuple[int, Command]] = []

    def submit(self, commands: Sequence[Command]) -> None:
        """Queue commands stamped with the session's current time."""
        t = self.clock.t
        self.outbox.extend((t, c) for c in commands)

    def cancel_all(self, market: str) -> None:
        """Queue a cancel of everything in ``market``."""
        self.outbox.append((self.clock.t, CancelAll(market=market)))


def _draw(rng: random.Random, base_ns: int, jitter_ns: int) -> int:
    return base_ns + (rng.randrange(jitter_ns + 1) if jitter_ns else 0)


class SessionDriver:
    """Feeds one market session its inputs in delivery order, window by window."""

    def __init__(
        self,
        session: MarketSession,
        tape: MarketTape,
        clock: SimClock,
        lat: Latency,
        timer_ms: int,
        seed: str,
    ) -> None:
        self.session = session
        self.tape = tape
        self.clock = clock
        self.j = 0
        self.feed_ns = round(lat.feed_ms * NS_PER_MS)
        self.feed_jitter_ns = round(lat.feed_jitter_ms * NS_PER_MS)
        self.rng = random.Random(f"feed:{seed}")
        self.timer_ns = timer_ms * NS_PER_MS
        self.next_timer = (tape.ts[0] if len(tape) else 0) + self.timer_ns
        self.last_delivery = 0
        self._next_delivery = self._delivery(0)

    def _delivery(self, j: int) -> int:
        if j >= len(self.tape):
            return INF
        t = self.tape.ts[j] + (
            _draw(self.rng, self.feed_ns, self.feed_jitter_ns) if self.feed_jitter_ns else self.feed_ns
        )
        # A feed delivers in order: jitter never reorders messages.
        t = max(t, self.last_delivery)
        self.last_delivery = t
        return t

    def next_time(self) -> int:
        """Earliest pending input (tape delivery or timer); reports are the runner's."""
        return min(self._next_delivery, self.next_timer) if self.j < len(self.tape) else INF

    def run_window(self, end_ns: int, reports: list[tuple[int, ExecEvent]], room_usdc6: int | None) -> int:
        """Process every input before ``end_ns``; returns the session's exposure for the global budget."""
        s = self.session
        s.global_room_usdc6 = room_usdc6
        tape = self.tape
        ts, op, px, qty, specials = tape.ts, tape.op, tape.px, tape.qty, tape.specials
        n = len(ts)
        clock = self.clock
        ri = 0
        nrep = len(reports)
        t_rep = reports[0][0] if nrep else INF
        t_del = self._next_delivery
        on_level, on_trade = s.on_level, s.on_trade
        j = self.j
        live = j < n
        while True:
            t_tim = self.next_timer if live else INF
            if t_rep <= t_del and t_rep <= t_tim:
                if t_rep >= end_ns:
                    break
                clock.t = t_rep
                s.on_exec(reports[ri][1])
                ri += 1
                t_rep = reports[ri][0] if ri < nrep else INF
            elif t_del <= t_tim:
                if t_del >= end_ns:
                    break
                clock.t = t_del
                o = op[j]
                if o <= OP_ASK:
                    on_level(Side.BUY if o == OP_BID else Side.SELL, px[j], qty[j], t_del)
                elif o != OP_SPECIAL:
                    on_trade(Side.BUY if o == OP_BUY else Side.SELL, px[j], qty[j], t_del)
                else:
                    self._special(specials[j], t_del)
                j += 1
                self.j = j
                t_del = self._delivery(j)
                live = j < n
            else:
                if t_tim >= end_ns:
                    break
                clock.t = t_tim
                s.on_timer(t_tim)
                self.next_timer = t_tim + self.timer_ns
        self._next_delivery = t_del
        return s.exposure_usdc6()

    def _special(self, ev: BookSnapshot | TickSizeChanged | MarketResolved, t: int) -> None:
        s = self.session
        if isinstance(ev, BookSnapshot):
            s.on_snapshot(msgspec.structs.replace(ev, ts_ns=t))
        elif isinstance(ev, TickSizeChanged):
            s.on_tick_size(ev.tick_px, t)
        else:
            s.on_resolved(ev.yes_won, t)


class Lane:
    """The runner's state for one market."""

    def __init__(
        self, idx: int, tape: MarketTape, params: QuoteParams, settings: RunSettings, seed: int
    ) -> None:
        info = tape.info
        self.idx = idx
        self.tape = tape
        self.market = info.market
        self.sink = BufferSink()
        self.clock = SimClock()
        self.port = SimPort(self.clock)
        self.session = MarketSession(info, params, self.port, self.clock, self.sink)
        self.exchange = SimExchange(info, settings.queue)
        lat = settings.latency
        self.driver = SessionDriver(
            self.session, tape, self.clock, lat, settings.timer_ms, f"{seed}:{info.market}"
        )
        self.rng = random.Random(f"venue:{seed}:{info.market}")
        self.order_ns, self.order_jitter_ns = (
            round(lat.order_ms * NS_PER_MS),
            round(lat.order_jitter_ms * NS_PER_MS),
        )
        self.resp_ns, self.resp_jitter_ns = (
            round(lat.response_ms * NS_PER_MS),
            round(lat.response_jitter_ms * NS_PER_MS),
        )
        self.i = 0  # venue cursor on the tape
        self.cmd_heap: list[tuple[int, int, Command]] = []
        self.rep_heap: list[tuple[int, int, ExecEvent]] = []
        self.seq = 0
        self.exposure = 0
        self.log_inputs = settings.log_inputs
        self.markouts: list[deque[tuple[int, int]]] = [deque() for _ in MARKOUT_HORIZONS_S]
        self.markout_sum2 = [0] * len(MARKOUT_HORIZONS_S)  # sum of side*(2*mid_later - 2*px)*qty
        self.markout_qty = [0] * len(MARKOUT_HORIZONS_S)
        self.next_markout = INF
        self.resolution: tuple[int, bool, int] | None = None  # (ts, yes_won, mid2 before)
        self.last_mid2 = -1

    def next_time(self) -> int:
        """Earliest pending event of this lane, venue or session side."""
        t = self.tape.ts[self.i] if self.i < len(self.tape) else INF
        if self.cmd_heap:
            t = min(t, self.cmd_heap[0][0])
        if self.rep_heap:
            t = min(t, self.rep_heap[0][0])
        return min(t, self.driver.next_time())

    # --- venue phase ---------------------------------------------------------------------------------

    def venue_window(self, end_ns: int) -> None:
        """Run the venue side of this market up to ``end_ns``."""
        tape, ex, sink = self.tape, self.exchange, self.sink
        ts, op, px, qty, specials = tape.ts, tape.op, tape.px, tape.qty, tape.specials
        n = len(ts)
        i = self.i
        heap = self.cmd_heap
        log = self.log_inputs
        market = self.market
        lines = sink.lines
        on_level, on_trade = ex.on_level, ex.on_trade
        while True:
            t_tape = ts[i] if i < n else INF
            t_cmd = heap[0][0] if heap else INF
            if t_cmd <= t_tape:
                if t_cmd >= end_ns:
                    break
                _, _, cmd = heapq.heappop(heap)
                self._command(cmd, t_cmd)
                continue
            if t_tape >= end_ns:
                break
            o = op[i]
            if o <= OP_ASK:
                side = Side.BUY if o == OP_BID else Side.SELL
                out = on_level(side, px[i], qty[i], t_tape)
                if log:
                    lines.append(
                        f'{{"kind":"delta","ts_ns":{t_tape},"market":"{market}","side":{side.value},'
                        f'"px":{px[i]},"qty":{qty[i]}}}\n'.encode()
                    )
            elif o != OP_SPECIAL:
                side = Side.BUY if o == OP_BUY else Side.SELL
                out = on_trade(side, px[i], qty[i], t_tape)
                if log:
                    lines.append(
                        f'{{"kind":"trade","ts_ns":{t_tape},"market":"{market}","aggressor":{side.value},'
                        f'"px":{px[i]},"qty":{qty[i]}}}\n'.encode()
                    )
            else:
                out = self._special(specials[i], t_tape)
            i += 1
            if out:
                self._reports(out, t_tape)
            if t_tape >= self.next_markout:
                self._markouts(t_tape)
        self.i = i

    def _special(self, ev: BookSnapshot | TickSizeChanged | MarketResolved, t: int) -> list[ExecEvent]:
        ex = self.exchange
        self.sink.record(_kind(ev), t, self.market, ev)
        if isinstance(ev, BookSnapshot):
            return ex.on_snapshot(ev)
        if isinstance(ev, TickSizeChanged):
            ex.set_tick(ev.tick_px)
            return []
        b = ex.book
        mid2 = b.bid_px + b.ask_px if b.bid_px >= 0 and b.ask_px <= PX_ONE else self.last_mid2
        self.resolution = (t, ev.yes_won, mid2)
        return ex.resolve(t)

    def _command(self, cmd: Command, t: int) -> None:
        ex = self.exchange
        if isinstance(cmd, Place):
            out = ex.place(cmd, t)
        elif isinstance(cmd, Cancel):
            out = ex.cancel(cmd.client_id, t)
        else:
            out = ex.cancel_all(t)
        if out:
            self._reports(out, t)

    def _reports(self, out: list[ExecEvent], t: int) -> None:
        sink = self.sink
        for ev in out:
            if ev.__class__.__name__ == "Filled":
                sink.record("fill", t, self.market, ev)
                self._markout_start(t)
            self.seq += 1
            heapq.heappush(
                self.rep_heap, (t + _draw(self.rng, self.resp_ns, self.resp_jitter_ns), self.seq, ev)
            )

    def _markout_start(self, t: int) -> None:
        idx = len(self.exchange.fills) - 1
        for k, h in enumerate(MARKOUT_HORIZONS_S):
            self.markouts[k].append((t + h * NS_PER_S, idx))
        self.next_markout = min(self.next_markout, t + MARKOUT_HORIZONS_S[0] * NS_PER_S)

    def _markouts(self, t: int) -> None:
        b = self.exchange.book
        if b.bid_px < 0 or b.ask_px > PX_ONE:
            return
        mid2 = b.bid_px + b.ask_px
        self.last_mid2 = mid2
        fills = self.exchange.fills
        nxt = INF
        for k, dq in enumerate(self.markouts):
            while dq and dq[0][0] <= t:
                _, idx = dq.popleft()
                f = fills[idx]
                self.markout_sum2[k] += f.yes_side * (mid2 - 2 * f.yes_px) * f.qty
                self.markout_qty[k] += f.qty
            if dq:
                nxt = min(nxt, dq[0][0])
        self.next_markout = nxt

    # --- session phase -------------------------------------------------------------------------------

    def take_reports(self, end_ns: int) -> list[tuple[int, ExecEvent]]:
        """Pop the reports the session receives before ``end_ns``, in delivery order."""
        heap = self.rep_heap
        out: list[tuple[int, ExecEvent]] = []
        while heap and heap[0][0] < end_ns:
            t, _, ev = heapq.heappop(heap)
            out.append((t, ev))
        return out

    def drain_outbox(self) -> None:
        """Schedule the session's commands at the venue after the order latency."""
        box = self.port.outbox
        if not box:
            return
        for t, cmd in box:
            self.seq += 1
            heapq.heappush(
                self.cmd_heap, (t + _draw(self.rng, self.order_ns, self.order_jitter_ns), self.seq, cmd)
            )
        box.clear()


def _kind(ev: object) -> str:
    return {"BookSnapshot": "book", "TickSizeChanged": "tick_size", "MarketResolved": "resolved"}[
        type(ev).__name__
    ]


Engine = Literal["inline", "actors"]
WindowRunner = Callable[[list[tuple[Lane, list[tuple[int, ExecEvent]], int | None]], int, list[int]], None]


class Runner:
    """Runs tapes through sessions and simulated venues; see the module docstring."""

    def __init__(
        self,
        tapes: Sequence[MarketTape],
        params: QuoteParams | Sequence[QuoteParams],
        settings: RunSettings,
        seed: int,
    ) -> None:
        plist = [params] * len(tapes) if isinstance(params, QuoteParams) else list(params)
        self.lanes = [
            Lane(i, t, p, settings, seed) for i, (t, p) in enumerate(zip(tapes, plist, strict=True))
        ]
        lat = settings.latency
        self.window_ns = round(min(lat.order_ms, lat.response_ms) * NS_PER_MS)
        self.global_cap = settings.global_ev_cap_usdc6
        self.events_total = sum(len(t) for t in tapes)
        self.windows = 0

    def events_done(self) -> int:
        """Tape events the venue side has processed so far."""
        return sum(lane.i for lane in self.lanes)

    def run(
        self,
        engine: Engine,
        write: Callable[[bytes], object],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Run to the end, writing log bytes through ``write``."""
        if engine == "actors":
            from actors.market import ActorWindowRunner  # noqa: PLC0415 (pykka only for this engine)

            runner = ActorWindowRunner([lane.driver for lane in self.lanes])
            try:
                self._loop(runner.run_window, write, progress)
            finally:
                runner.stop()
        else:
            self._loop(_inline_window, write, progress)

    def _loop(
        self,
        run_window: WindowRunner,
        write: Callable[[bytes], object],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        lanes = self.lanes
        w = self.window_ns
        exposures = [0] * len(lanes)
        while True:
            start = min(lane.next_time() for lane in lanes)
            if start >= INF:
                break
            end = start + w
            self.windows += 1
            for lane in lanes:
                lane.venue_window(end)
            total = sum(exposures)
            work = []
            for lane in lanes:
                reports = lane.take_reports(end)
                if reports or lane.driver.next_time() < end:
                    room = (
                        None if self.global_cap is None else self.global_cap - (total - exposures[lane.idx])
                    )
                    work.append((lane, reports, room))
            if work:
                run_window(work, end, exposures)
            for lane in lanes:
                lane.drain_outbox()
                if lane.sink.lines:
                    write(b"".join(lane.sink.lines))
                    lane.sink.lines.clear()
            if progress is not None and self.windows % 64 == 0:
                progress(self.events_done(), self.events_total)
        end_ts = max((lane.exchange.last_ts for lane in lanes), default=0)
        for lane in lanes:
            lane.exchange.close_stats(max(end_ts, lane.tape.ts[-1] if len(lane.tape) else 0))
        if progress is not None:
            progress(self.events_done(), self.events_total)


def _inline_window(
    work: list[tuple[Lane, list[tuple[int, ExecEvent]], int | None]], end: int, exposures: list[int]
) -> None:
    for lane, reports, room in work:
        exposures[lane.idx] = lane.driver.run_window(end, reports, room)


def final_inventory(lane: Lane) -> Inventory:
    """The session's inventory at the end of the run."""
    return lane.session.inv
