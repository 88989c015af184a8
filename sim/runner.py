"""The deterministic simulation loop: tapes → simulated venues ⇄ market sessions.

Each market is a *lane*: its tape, its ``SimExchange`` (the venue side) and its ``MarketSession``
(our side), run as one exact discrete-event loop with feed, order-entry and response latencies.
Lanes interact only through the exposure budgets (the global one, and each neg-risk event's for the
markets that share a ``MarketInfo.neg_risk_market_id``; ``core.inventory.budget_rooms``): time is
cut into intervals on a fixed grid, every lane runs to the end of the interval on its own, and each
reads the others' exposure as of the interval's start. The ``actors`` engine runs each lane inside
its pykka ``MarketActor`` (a ``RunWindow`` ask per interval, then a barrier); the ``inline`` engine
calls the same ``Lane.run_until`` directly. Each lane's records are kept as rows
(``core.eventlog.RowSink``: nothing encoded while the lane runs) and handed to the run's columnar log
(``Runner.log``, ``sim.eventcols.ColumnLog``) in lane order after each interval, so both engines log
the same records in the same order and get the same digest; the log's ``units`` record
(``core.eventlog.units_record``) is stamped with the run's first event. Randomness (latency jitter)
comes from per-market ``random.Random`` streams seeded from the run's seed; nothing reads the wall
clock.

The risk rules run here as live (``actors.risk.RiskMonitor``, the risk actor's own): each session
reports its samples to the monitor inline (a fill is assessed at once, touching only that market's
part of the monitor), and the monitor assesses every market and the book at each interval's barrier
(the book's loss stop and drawdown, the time-based rules); a changed gate reaches the session at once.
Risk records go to the market's lane log (the book's after the lanes'), so both engines still log
the same records.
"""

from __future__ import annotations

import gc
import random
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, Literal

import msgspec

from actors.risk import MarketSample, RiskMonitor
from actors.session import MarketSession
from core.book import L2Book
from core.eventlog import RowSink, units_record
from core.inventory import budget_rooms
from core.messages import (
    BookSnapshot,
    Cancel,
    CancelAll,
    Command,
    ExecEvent,
    Filled,
    MarketResolved,
    Merge,
    Place,
    TickSizeChanged,
)
from core.quoting import QuoteParams
from core.risk import RiskGate, RiskLimits
from core.units import NEVER_NS, NS_PER_MS, PX_ONE, Side
from sim.eventcols import ColumnLog
from sim.rewards import RewardAccrual
from sim.structs import RunSettings
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SPECIAL, MarketTape
from venue.exchange import SimExchange
from venue.markouts import Markouts

INF: Final = NEVER_NS


class SimClock:
    """Simulated time: the lane sets ``t`` to each event's time, in order, before handing it over."""

    __slots__ = ("t",)

    def __init__(self, t: int = 0) -> None:
        self.t = t

    def now_ns(self) -> int:
        """Current simulated time."""
        return self.t


class SimPort:
    """The session's ``ExchangePort`` in simulation: an outbox the runner drains after each window."""

    __slots__ = ("clock", "outbox")

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.outbox: list[tuple[int, Command]] = []

    def submit(self, commands: Sequence[Command]) -> None:
        """Queue commands stamped with the session's current time."""
        t = self.clock.t
        outbox = self.outbox
        for c in commands:
            outbox.append((t, c))

    def cancel_all(self, market: str) -> None:
        """Queue a cancel of everything in ``market``."""
        self.outbox.append((self.clock.t, CancelAll(market=market)))


def _draw(rng: random.Random, base_ns: int, jitter_ns: int) -> int:
    return base_ns + (rng.randrange(jitter_ns + 1) if jitter_ns else 0)


BUY: Final = Side.BUY
SELL: Final = Side.SELL


class Lane:
    """One market: its tape, its simulated venue and its session, run as an exact event loop.

    Six time-ordered streams are merged: commands reaching the venue, tape events at the venue,
    execution reports reaching the session, tape events delivered to the session (after the feed
    latency, never reordered), timers and the session's pending requote. Ties go in that order, so
    a command sent at t with zero latency meets the book as it was before the tape event at t.
    Once a tape event is due, tape events run in an inner loop until another stream is due; a
    delivered level reaches the session only when it moved the top. Without feed latency the venue
    and the session share one book (``_run_shared``); with it the session keeps its own, delayed.
    """

    def __init__(
        self,
        idx: int,
        tape: MarketTape,
        params: QuoteParams,
        settings: RunSettings,
        seed: int,
        *,
        share_book: bool = False,
    ) -> None:
        """``share_book``: one book for the venue and the session when the feed has no latency."""
        info = tape.info
        self.idx = idx
        self.tape = tape
        self.market = info.market
        self.sink = RowSink()
        self.clock = SimClock()
        self.port = SimPort(self.clock)
        self.session = MarketSession(info, params, self.port, self.clock, self.sink)
        lat = settings.latency
        #: One book for the venue and the session (see ``_run_shared``): without feed latency the
        #: session's view of the market is the data's book as the venue applies it.
        self.shared = share_book and lat.feed_ms == 0 and lat.feed_jitter_ms == 0
        if self.shared:
            self.exchange = SimExchange(
                info, settings.queue, shown=L2Book(tick_px=info.tick_px, min_qty=info.min_qty)
            )
            assert self.exchange.shown is not None
            self.session.book = self.exchange.shown
        else:
            self.exchange = SimExchange(info, settings.queue)
        #: Shared book: the tape events the session is still to hear of (trades, specials, and
        #: every event while it keeps a book of its own: ``apart``), in order.
        self.pending: deque[int] = deque()
        self.apart = False
        #: Shared book with a risk manager: this instant's level changes (op, price, size before),
        #: their instant, the book's time before them, and the last instant the session heard of.
        self.undo: list[tuple[int, int, int]] = []
        self.undo_t = self.undo_book_ts = self.heard_t = -1
        self.rng = random.Random(f"venue:{seed}:{info.market}")
        self.feed_rng = random.Random(f"feed:{seed}:{info.market}")
        self.feed_ns = round(lat.feed_ms * NS_PER_MS)
        self.feed_jitter_ns = round(lat.feed_jitter_ms * NS_PER_MS)
        self.order_ns, self.order_jitter_ns = (
            round(lat.order_ms * NS_PER_MS),
            round(lat.order_jitter_ms * NS_PER_MS),
        )
        self.resp_ns = round(lat.response_ms * NS_PER_MS)
        self.resp_jitter_ns = round(lat.response_jitter_ms * NS_PER_MS)
        self.merge_ns = round(lat.merge_ms * NS_PER_MS)
        self.timer_ns = settings.timer_ms * NS_PER_MS
        n = len(tape.ts)
        self.i = 0  # venue cursor on the tape
        self.j = 0  # session cursor on the tape
        self.t_del = self._delivery(0, 0)
        self.next_timer = (tape.ts[0] + self.timer_ns) if n else INF
        #: Commands on their way to the venue and reports on their way to the session, as
        #: ``(arrival, item)`` in arrival order: each channel keeps its order (arrivals never
        #: decrease), so a FIFO is the time-ordered queue.
        self.cmds: deque[tuple[int, Command]] = deque()
        self.reps: deque[tuple[int, ExecEvent]] = deque()
        self.last_cmd_arrival = 0
        self.last_rep_arrival = 0
        self.markouts = Markouts()
        self.resolution: tuple[int, bool, int] | None = None  # (ts, yes_won, mid2 before)
        #: Liquidity-rewards samples (``sim.rewards``): a side computation, never read by a decision.
        self.rewards = RewardAccrual(info, seed, tape.ts[0] if n else 0, tape.ts[-1] if n else -1)

    def _delivery(self, j: int, prev: int) -> int:
        ts = self.tape.ts
        if j >= len(ts):
            return INF
        if not self.feed_jitter_ns:
            return ts[j] + self.feed_ns
        # A feed delivers in order: jitter never reorders messages.
        return max(prev, ts[j] + _draw(self.feed_rng, self.feed_ns, self.feed_jitter_ns))

    def _columns(self, lo: int, end_ns: int) -> tuple[list[int], list[int], list[int], list[int]]:
        """The tape's columns (time, op, price, size) for a window before ``end_ns``, as lists.

        They run from event ``lo`` (the first one the window may read: no cursor is behind it)
        through the first event at or after ``end_ns``, which the window reads and does not process,
        so the lists end where the tape does only when the tape ends there: a loop's ``i < n`` still
        means "an event is left". The loops index them from ``lo``. A list is what the compiled
        build reads fastest (a machine-int index, no int object made per read: an ``array`` read
        makes one, and boxes the index too), and a window's worth keeps the run's memory what the
        tape's arrays take.
        """
        tape = self.tape
        hi = min(bisect_left(tape.ts, end_ns, lo) + 1, len(tape.ts))
        return (
            tape.ts[lo:hi].tolist(),
            tape.op[lo:hi].tolist(),
            tape.px[lo:hi].tolist(),
            tape.qty[lo:hi].tolist(),
        )

    def next_time(self) -> int:
        """Earliest pending event of this lane."""
        ts = self.tape.ts
        t = min(ts[self.i] if self.i < len(ts) else INF, self.t_del)
        if self.cmds:
            t = min(t, self.cmds[0][0])
        if self.reps:
            t = min(t, self.reps[0][0])
        if self.j < len(ts):
            t = min(t, self.next_timer)
        return min(t, self.session.wakeup_ns)

    def run_until(self, end_ns: int, room_usdc6: int | None) -> int:
        """Process every event before ``end_ns``; returns the session's exposure for the global budget."""
        if self.shared:
            return self._run_shared(end_ns, room_usdc6)
        s = self.session
        s.set_global_room(room_usdc6)  # a tighter budget is acted on, as live
        ex = self.exchange
        specials = self.tape.specials
        lo = self.j  # (the session's cursor is never ahead of the venue's)
        ts, op, px, qty = self._columns(lo, end_ns)
        n = len(ts)
        i, j = self.i - lo, 0
        t_del = self.t_del
        cmds, reps = self.cmds, self.reps
        clock = self.clock
        box = self.port.outbox
        markouts = self.markouts
        # Methods are called on their objects, not through bound-method locals: the compiled build
        # (bench/fast.py) calls a native method directly, and a bound method through the generic path.
        sb = s.book  # (never replaced without a shared book)
        constant_feed = not self.feed_jitter_ns
        feed = self.feed_ns
        timer_ns = self.timer_ns
        next_timer = self.next_timer if j < n else INF
        rewards = self.rewards
        reward_ts = rewards.next_ts  # (changed by its ``until`` only)
        while True:
            # Pick the earliest stream; ties: commands, venue tape, reports, deliveries, timers.
            t = cmds[0][0] if cmds else INF
            k = 0
            tv = ts[i] if i < n else INF
            if tv < t:
                t, k = tv, 1
            if reps and reps[0][0] < t:
                t, k = reps[0][0], 2
            if t_del < t:
                t, k = t_del, 3
            if next_timer < t:
                t, k = next_timer, 4
            if s.wakeup_ns < t:
                t, k = s.wakeup_ns, 5
            if reward_ts < t:  # reward samples due: the venue as of every event up to them
                rewards.until(min(t, end_ns), ex, self.sink)
                reward_ts = rewards.next_ts
            if t >= end_ns:
                break
            if k in {1, 3}:
                # A run of tape events, the venue's and the session's deliveries in the merged
                # order, until another stream is due (ties as above): a command (the venue first
                # sees it), a report (after the venue's events, before the deliveries of that
                # instant), a timer or a requote (after both), a reward sample or the window's end.
                w = s.wakeup_ns
                lim = min(
                    (cmds[0][0] - 1) if cmds else INF,
                    next_timer if next_timer < w else w,
                    reward_ts,
                    end_ns - 1,
                )
                hr = reps[0][0] if reps else INF
                vlim = lim if lim < hr else hr  # a venue event at tv: tv <= vlim (and tv <= t_del)
                dlim = lim if lim < hr - 1 else hr - 1  # a delivery at td: td <= dlim (and td < tv)
                mdue = markouts.due  # (only ``update`` and a fill's report change it)
                # ``tv``: the venue's next event time, as chosen above, kept as the venue moves on.
                # ``lim`` only falls while the loop runs (it may stay below the other streams: then
                # the loop leaves early and the choice above is made again), and ``vlim`` and
                # ``dlim`` follow it and ``hr``.
                while True:
                    if tv <= t_del:  # --- the venue sees a tape event
                        if tv > vlim:
                            if hr > lim:
                                break  # another stream is due
                            # The reports of ``hr`` are next: handled below, without leaving.
                        else:
                            t = tv
                            o = op[i]
                            if o <= OP_ASK:
                                out = ex.on_level(BUY if o == OP_BID else SELL, px[i], qty[i], t)
                            elif o != OP_SPECIAL:
                                out = ex.on_trade(BUY if o == OP_BUY else SELL, px[i], qty[i], t)
                            else:
                                out = self._venue_special(specials[lo + i], t)
                            i += 1
                            tv = ts[i] if i < n else INF
                            if out:  # reports are on their way: they bound the tape events taken
                                self._reports(out, t)
                                if t >= markouts.due:
                                    markouts.update(t, ex)
                                mdue = markouts.due
                                hr = reps[0][0]
                                vlim = lim if lim < hr else hr
                                dlim = lim if lim < hr - 1 else hr - 1
                            elif t >= mdue:
                                markouts.update(t, ex)
                                mdue = markouts.due
                            continue
                    elif t_del <= dlim:  # --- the session receives a tape event
                        t = t_del
                        clock.t = t
                        o = op[j]
                        heard = True  # the session was called: it may have sent or scheduled
                        if o <= OP_ASK:
                            # The session's book is its feed view: the level goes there, and the
                            # session hears of it only when the top moved (most levels: not).
                            if sb.set_level(BUY if o == OP_BID else SELL, px[j], qty[j], t) and s.book_valid:
                                s.on_top_moved(t)
                            else:
                                heard = False
                        elif o != OP_SPECIAL:
                            s.on_trade(BUY if o == OP_BUY else SELL, px[j], qty[j], t)
                        else:
                            self._session_special(specials[lo + j], t)
                        j += 1
                        if j >= n:
                            t_del = INF
                            next_timer = INF
                        else:
                            t_del = ts[j] + feed if constant_feed else self._delivery(lo + j, t_del)
                        if heard:
                            if box:
                                break  # commands to send (a special pulls our quotes): drain them
                            w = s.wakeup_ns
                            if w < lim:  # a requote is due sooner: nothing of the tape after it
                                lim = w
                                vlim = lim if lim < hr else hr
                                dlim = lim if lim < hr - 1 else hr - 1
                        continue
                    elif hr > lim:
                        break  # another stream is due
                    # --- the reports of ``hr`` reach the session: before the tape events after them,
                    # and before every other stream (``hr <= lim``), as the choice above would take them
                    t = hr
                    clock.t = t
                    while True:
                        s.on_exec(reps.popleft()[1])
                        if box or not reps or reps[0][0] != t:
                            break
                    if box:
                        break  # (a report handler sends nothing: kept as the choice above has it)
                    hr = reps[0][0] if reps else INF
                    w = s.wakeup_ns
                    if w < lim:  # noqa: PLR1730 (a requote is due, no sooner than ``t``: nothing after it)
                        lim = w
                    vlim = lim if lim < hr else hr
                    dlim = lim if lim < hr - 1 else hr - 1
            elif k == 0:  # --- the commands of this instant reach the venue
                self._commands_at(t)
            elif k == 2:  # --- the reports of this instant reach the session
                # (A report handler sends nothing and schedules a requote no sooner than ``t``, which
                # goes after the reports of ``t``: taking them in one go is the loop's order.)
                clock.t = t
                while True:
                    s.on_exec(reps.popleft()[1])
                    if box or not reps or reps[0][0] != t:
                        break
            elif k == 4:  # --- a timer
                clock.t = t
                s.on_timer(t)
                next_timer = t + timer_ns
            else:  # --- the session's pending requote is due
                clock.t = t
                s.flush(t)
            if box:
                self._drain(box)
        self.i, self.j, self.t_del = lo + i, lo + j, t_del
        self.next_timer = next_timer
        return s.exposure_usdc6()

    def _run_shared(self, end_ns: int, room_usdc6: int | None) -> int:
        """``run_until`` with one book for the venue and the session (no feed latency).

        Each tape event is applied once, to the data's book, by the venue (``SimExchange.shown``),
        and the session reads the same book. A level change reaches the session as the venue
        applies it: when it moved the top, ``on_top_moved`` schedules a requote from the book as
        that event left it. Its delivery would come after the venue's other events of that
        instant and the reports arriving then, but scheduling only marks the session dirty and
        brings its wake-up forward, which commutes with those (no report handler reads what the
        scheduling sets), so the session ends each instant exactly as with a book of its own. The
        one report handler that reads the book, a fill's risk sample, is shown the book without
        that instant's events while they are still to be delivered (``undo``). Trade prints and
        specials keep their delivery order (``pending``): a print feeds the flow estimator, which
        a fill's report feeds too. A special (snapshot, tick change, resolution) changes what later
        changes mean to the session, so before the venue applies one the session takes a copy of
        the book and hears of every event in order on it (``apart``), until it has caught up; the
        two books are then the same and it reads the shared one again.
        """
        s = self.session
        s.set_global_room(room_usdc6)  # a tighter budget is acted on, as live
        ex = self.exchange
        shown = ex.shown
        assert shown is not None
        specials = self.tape.specials
        lo = self.pending[0] if self.pending else self.i
        ts, op, px, qty = self._columns(lo, end_ns)
        n = len(ts)
        i = self.i - lo
        pend = deque([k - lo for k in self.pending])  # (indices into the window's lists)
        apart = self.apart
        cmds, reps = self.cmds, self.reps
        clock = self.clock
        box = self.port.outbox
        markouts = self.markouts
        timer_ns = self.timer_ns
        next_timer = self.next_timer
        rewards = self.rewards
        reward_ts = rewards.next_ts  # (changed by its ``until`` only)
        # With a risk manager a report reads the session's book (a fill's sample: the mid and the
        # book's time). A report that comes before this instant's deliveries must see the book
        # without this instant's events: the levels they changed are kept (``undo``: side, price,
        # size before) while the session has not heard of the instant in delivery order
        # (``heard_t``: the last instant of a delivery, timer or requote).
        risky = s.risk_report is not None
        undo = self.undo
        undo_t, undo_book_ts, heard_t = self.undo_t, self.undo_book_ts, self.heard_t
        while True:
            # Pick the earliest stream; ties: commands, venue tape, reports, deliveries, timers.
            t = cmds[0][0] if cmds else INF
            k = 0
            tv = ts[i] if i < n else INF
            if tv < t:
                t, k = tv, 1
            if reps and reps[0][0] < t:
                t, k = reps[0][0], 2
            t_del = ts[pend[0]] if pend else INF
            if t_del < t:
                t, k = t_del, 3
            if next_timer < t:
                t, k = next_timer, 4
            if s.wakeup_ns < t:
                t, k = s.wakeup_ns, 5
            if reward_ts < t:  # reward samples due: the venue as of every event up to them
                rewards.until(min(t, end_ns), ex, self.sink)
                reward_ts = rewards.next_ts
            if t >= end_ns:
                break
            if k in {1, 3}:
                # A run of tape events, the venue's and the session's deliveries (prints, specials,
                # and every event while ``apart``) in the merged order, until another stream is due
                # (ties as in ``run_until``): a venue event at tv goes first when tv <= vlim (and tv
                # <= t_del), a delivery at td when td <= dlim (and td < tv). ``lim`` only falls while
                # the loop runs (it may stay below the other streams: then the loop leaves early and
                # the choice above is made again); ``vlim`` and ``dlim`` follow it and ``hr``.
                w = s.wakeup_ns
                lim = min(
                    (cmds[0][0] - 1) if cmds else INF,
                    next_timer if next_timer < w else w,
                    reward_ts,
                    end_ns - 1,
                )
                hr = reps[0][0] if reps else INF
                vlim = lim if lim < hr else hr
                dlim = lim if lim < hr - 1 else hr - 1
                mdue = markouts.due  # (only ``update`` and a fill's report change it)
                while True:
                    if tv <= t_del:  # --- the venue sees a tape event
                        if tv > vlim:
                            if hr > lim or risky:
                                break  # another stream is due (a report with a risk manager: above)
                            # The reports of ``hr`` are next: handled below, without leaving.
                        else:
                            t = tv
                            o = op[i]
                            if o <= OP_ASK:
                                p, q = px[i], qty[i]
                                if risky and not apart:
                                    if t != undo_t:
                                        undo_t, undo_book_ts = t, shown.ts_ns
                                        undo.clear()
                                    undo.append((o, p, shown.bids[p] if o == OP_BID else shown.asks[p]))
                                if o == OP_BID:
                                    best = shown.bid_px
                                    out = ex.on_level(BUY, p, q, t)
                                    # What set_level told the venue (compares: no tuple per event).
                                    moved = p == best or p == shown.bid_px  # noqa: PLR1714
                                else:
                                    best = shown.ask_px
                                    out = ex.on_level(SELL, p, q, t)
                                    moved = p == best or p == shown.ask_px  # noqa: PLR1714
                                if apart:
                                    pend.append(i)
                                    if t_del > t:  # noqa: PLR1730 (delivered before anything later)
                                        t_del = t
                                else:
                                    clock.t = t  # (the session hears of it now)
                                    if moved and s.book_valid:
                                        s.on_top_moved(t)
                                        w = s.wakeup_ns
                                        if w < lim:  # a requote is due sooner: nothing after it
                                            lim = w
                                            vlim = lim if lim < hr else hr
                                            dlim = lim if lim < hr - 1 else hr - 1
                            elif o != OP_SPECIAL:
                                out = ex.on_trade(BUY if o == OP_BUY else SELL, px[i], qty[i], t)
                                pend.append(i)
                                if t_del > t:  # noqa: PLR1730 (delivered before anything later)
                                    t_del = t
                            else:
                                if not apart:  # the session keeps the book as it is until it hears of this
                                    apart = True
                                    s.book = shown.copy()
                                out = self._venue_special(specials[lo + i], t)
                                pend.append(i)
                                if t_del > t:  # noqa: PLR1730 (delivered before anything later)
                                    t_del = t
                            i += 1
                            tv = ts[i] if i < n else INF
                            if out:  # reports are on their way: they bound the tape events taken
                                self._reports(out, t)
                                if t >= markouts.due:
                                    markouts.update(t, ex)
                                mdue = markouts.due
                                hr = reps[0][0]
                                vlim = lim if lim < hr else hr
                                dlim = lim if lim < hr - 1 else hr - 1
                            elif t >= mdue:
                                markouts.update(t, ex)
                                mdue = markouts.due
                            continue
                    elif t_del <= dlim:  # --- the session hears of a tape event
                        j = pend.popleft()
                        t = t_del
                        clock.t = heard_t = t
                        o = op[j]
                        if o <= OP_ASK:  # (apart: the session's own book)
                            side = BUY if o == OP_BID else SELL
                            if s.book.set_level(side, px[j], qty[j], t) and s.book_valid:
                                s.on_top_moved(t)
                        elif o != OP_SPECIAL:
                            s.on_trade(BUY if o == OP_BUY else SELL, px[j], qty[j], t)
                        else:
                            self._session_special(specials[lo + j], t)
                        if pend:
                            t_del = ts[pend[0]]
                        else:
                            t_del = INF
                            if apart:  # caught up: its book is the shared one, event for event
                                apart = False
                                s.book = shown
                        if box:
                            break  # commands to send (a special pulls our quotes): drain them
                        w = s.wakeup_ns
                        if w < lim:  # a requote is due sooner: nothing after it
                            lim = w
                            vlim = lim if lim < hr else hr
                            dlim = lim if lim < hr - 1 else hr - 1
                        continue
                    elif hr > lim or risky:
                        break  # another stream is due (a report with a risk manager: above)
                    # --- the reports of ``hr`` reach the session: before the tape events after them,
                    # and before every other stream (``hr <= lim``), as the choice above would take them
                    t = hr
                    clock.t = t
                    while True:
                        s.on_exec(reps.popleft()[1])
                        if box or not reps or reps[0][0] != t:
                            break
                    if box:
                        break  # (a report handler sends nothing: kept as the choice above has it)
                    hr = reps[0][0] if reps else INF
                    w = s.wakeup_ns
                    if w < lim:  # noqa: PLR1730 (a requote is due, no sooner than ``t``: nothing after it)
                        lim = w
                    vlim = lim if lim < hr else hr
                    dlim = lim if lim < hr - 1 else hr - 1
                if i >= n and not pend:
                    next_timer = INF  # the session heard of the last event
            elif k == 0:  # --- the commands of this instant reach the venue
                self._commands_at(t)
            elif k == 2:  # --- a report reaches the session
                clock.t = t
                if risky and undo_t == t and heard_t != t and undo:
                    # Before this instant's deliveries: the book as it was before its events.
                    book = s.book
                    s.book = before = book.copy()
                    for o, p, q in reversed(undo):
                        before.set_level(BUY if o == OP_BID else SELL, p, q, undo_book_ts)
                    before.ts_ns = undo_book_ts
                    s.on_exec(reps.popleft()[1])
                    s.book = book
                else:
                    s.on_exec(reps.popleft()[1])
            elif k == 4:  # --- a timer
                clock.t = heard_t = t
                s.on_timer(t)
                next_timer = t + timer_ns
            else:  # --- the session's pending requote is due
                clock.t = heard_t = t
                s.flush(t)
            if box:
                self._drain(box)
        self.undo_t, self.undo_book_ts, self.heard_t = undo_t, undo_book_ts, heard_t
        self.i = lo + i
        self.apart = apart
        self.j = self.i - len(pend)  # events the session heard of
        self.t_del = ts[pend[0]] if pend else INF
        self.pending = deque([lo + k for k in pend])
        self.next_timer = next_timer
        return s.exposure_usdc6()

    def _drain(self, box: list[tuple[int, Command]]) -> None:
        # The session's commands travel to the venue with the order-entry latency, in order (one
        # connection): jitter never lets a cancel overtake the place it cancels.
        cmds = self.cmds
        if not self.order_jitter_ns:  # a constant latency keeps the order by itself
            lat = self.order_ns
            for t, cmd in box:
                cmds.append((t + lat, cmd))
        else:
            for t, cmd in box:
                arrival = max(self.last_cmd_arrival, t + _draw(self.rng, self.order_ns, self.order_jitter_ns))
                self.last_cmd_arrival = arrival
                cmds.append((arrival, cmd))
        box.clear()

    def _venue_special(self, ev: BookSnapshot | TickSizeChanged | MarketResolved, t: int) -> list[ExecEvent]:
        ex = self.exchange
        if isinstance(ev, BookSnapshot):
            return ex.on_snapshot(ev)
        if isinstance(ev, TickSizeChanged):
            ex.set_tick(ev.tick_px)
            return []
        b = ex.book
        mid2 = b.bid_px + b.ask_px if b.bid_px >= 0 and b.ask_px <= PX_ONE else self.markouts.last_mid2
        self.resolution = (t, ev.yes_won, mid2)
        return ex.resolve(t)

    def _session_special(self, ev: BookSnapshot | TickSizeChanged | MarketResolved, t: int) -> None:
        s = self.session
        if isinstance(ev, BookSnapshot):
            s.on_snapshot(ev, t)
        elif isinstance(ev, TickSizeChanged):
            s.on_tick_size(ev.tick_px, t)
        else:
            s.on_resolved(ev.yes_won, t)

    def _merge_done(self, out: list[ExecEvent], t: int) -> None:
        """A merge's outcome: the venue took the shares at ``t``; the confirmation (an on-chain
        receipt, not the user channel, so it does not queue behind the reports) reaches the session
        ``merge_ms`` later, after every report due by then."""
        done = t + self.merge_ns
        for ev in out:
            self._insert_rep(done, msgspec.structs.replace(ev, ts_ns=done))

    def _insert_rep(self, arrival: int, ev: ExecEvent) -> None:
        # The queue stays in arrival order, ties in the order queued: only a merge's confirmation
        # (due later than the reports queued after it) makes a report go anywhere but the end.
        reps = self.reps
        k = len(reps)
        while k and reps[k - 1][0] > arrival:
            k -= 1
        reps.insert(k, (arrival, ev))

    def _commands_at(self, t: int) -> None:
        """Every command arriving at ``t`` reaches the venue, in order (there is at least one).

        Commands go first at an instant, and nothing the venue does adds a stream before the next
        one at ``t``: taking them in one go is the order the loop would pick one by one.
        """
        cmds = self.cmds
        ex = self.exchange
        batch: list[ExecEvent] = []  # the reports of this instant's commands, in order
        while True:
            cmd = cmds.popleft()[1]
            # (``apply``'s dispatch, the two usual kinds first.)
            if type(cmd) is Place:
                out = ex.place(cmd, t)
            elif type(cmd) is Cancel:
                out = ex.cancel(cmd.client_id, t)
            else:
                out = ex.apply(cmd, t)
            if out:
                if type(cmd) is Merge:
                    if batch:  # (reports queued first keep their place before its confirmation)
                        self._reports(batch, t)
                        batch = []
                    self._merge_done(out, t)
                else:
                    batch += out
            if not cmds or cmds[0][0] != t:
                break
        if batch:  # one go for the instant: they arrive together, in the order the venue made them
            self._reports(batch, t)

    def _reports(self, out: list[ExecEvent], t: int) -> None:
        # Reports come back in order too (the user channel is one stream).
        jitter = self.resp_jitter_ns
        reps = self.reps
        if not jitter:
            arrival = t + self.resp_ns
            if reps and reps[-1][0] > arrival:  # a merge's confirmation is due later
                for ev in out:
                    self._insert_rep(arrival, ev)
            else:
                for ev in out:
                    reps.append((arrival, ev))
        else:
            for ev in out:
                arrival = max(self.last_rep_arrival, t + _draw(self.rng, self.resp_ns, jitter))
                self.last_rep_arrival = arrival
                if reps and reps[-1][0] > arrival:
                    self._insert_rep(arrival, ev)
                else:
                    reps.append((arrival, ev))
        # The venue appended this batch's fills in order: index each one, not the last. (Most
        # batches are one acceptance or cancel: a look at each report's type, no list made.)
        fill_idx = -1
        for ev in out:
            if type(ev) is Filled:
                if fill_idx < 0:
                    fill_idx = len(self.exchange.fills) - sum(type(e) is Filled for e in out)
                self.sink.record("fill", t, self.market, ev)
                self.markouts.start(t, fill_idx)
                fill_idx += 1


Engine = Literal["inline", "actors"]
#: Allocations between young garbage collections while a run runs (``Runner.run``; Python's default: 700).
YOUNG_GC_OBJECTS: Final = 10_000
WindowRunner = Callable[[list[tuple["Lane", int | None]], int, list[int]], None]


class Runner:
    """Runs tapes through sessions and simulated venues; see the module docstring."""

    def __init__(
        self,
        tapes: Sequence[MarketTape],
        params: QuoteParams | Sequence[QuoteParams],
        settings: RunSettings,
        seed: int,
        risk: RiskLimits | None = None,
        *,
        share_books: bool = True,
    ) -> None:
        """``risk``: the risk rules' limits (``core.risk.risk_limits``); None: no risk manager.

        ``share_books``: without feed latency each market's venue and session share one book
        (``Lane``); False keeps a book per session, the reference the shared book is tested against.
        """
        plist = [params] * len(tapes) if isinstance(params, QuoteParams) else list(params)
        self.lanes = [
            Lane(i, t, p, settings, seed, share_book=share_books)
            for i, (t, p) in enumerate(zip(tapes, plist, strict=True))
        ]
        #: The risk manager's monitor (its ``history`` lists every change of state), None without one.
        self.risk: RiskMonitor | None = None
        self.risk_sink = RowSink()
        #: The run's records, in log order (``sim.eventcols``): ``log.save`` writes ``events.npz``.
        self.log = ColumnLog()
        if risk is not None:
            self.risk = RiskMonitor(
                risk,
                [lane.market for lane in self.lanes],
                sinks={lane.market: lane.sink for lane in self.lanes},
                book_sink=self.risk_sink,
                keep_history=True,
            )
            for lane in self.lanes:
                lane.session.risk_report = _inline_report(self.risk)
        self.window_ns = settings.budget_interval_ms * NS_PER_MS
        self.global_cap = settings.global_ev_cap_usdc6
        # The event budget: as set, else the per-market cap (``inventory.event_cap``'s default).
        ev_cap = settings.event_cap_usdc6
        self.event_cap = (
            ev_cap if ev_cap is not None else min((p.per_market_cap_usdc6 for p in plist), default=0)
        )
        #: Each lane's neg-risk event ("" for none): its markets share ``event_cap``.
        self.groups = [t.info.neg_risk_market_id for t in tapes]
        self._grouped = any(self.groups)
        self.events_total = sum(len(t) for t in tapes)
        self.windows = 0

    def events_done(self) -> int:
        """Tape events the venue side has processed so far."""
        return sum(lane.i for lane in self.lanes)

    def run(self, engine: Engine, progress: Callable[[int, int], None] | None = None) -> None:
        """Run to the end; the records are in ``self.log``."""
        # The run makes and drops short-lived objects by the million (messages, reports, tuples): a
        # young collection every YOUNG_GC_OBJECTS of them rather than the default 700 (the bench
        # engine workload: 8 collections, 0.03 s, instead of 420, 0.13-0.19 s of a ~2 s compiled run).
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], YOUNG_GC_OBJECTS), *threshold[1:])
        try:
            if engine == "actors":
                from actors.market import ActorWindowRunner  # noqa: PLC0415 (pykka only for this engine)

                runner = ActorWindowRunner(self.lanes)
                try:
                    self._loop(runner.run_window, progress)
                finally:
                    runner.stop()
            else:
                self._loop(_inline_window, progress)
        finally:
            gc.set_threshold(*threshold)

    def _loop(self, run_window: WindowRunner, progress: Callable[[int, int], None] | None) -> None:
        lanes = self.lanes
        w = self.window_ns
        exposures = [0] * len(lanes)
        first = min((lane.next_time() for lane in lanes), default=INF)
        log = self.log
        log.units = units_record(first if first < INF else 0)
        limited = self.global_cap is not None or self._grouped
        groups = self.groups if self._grouped else ()
        while True:
            start = min(lane.next_time() for lane in lanes)
            if start >= INF:
                break
            # Windows sit on a fixed grid, so the budget snapshots do not depend on event timing.
            end = (start // w + 1) * w
            self.windows += 1
            rooms = budget_rooms(exposures, self.global_cap, groups, self.event_cap) if limited else None
            work = [
                (lane, None if rooms is None else rooms[lane.idx]) for lane in lanes if lane.next_time() < end
            ]
            run_window(work, end, exposures)
            if self.risk is not None:
                self._risk_barrier(end)
            for lane in lanes:
                log.add(lane.sink)
            log.add(self.risk_sink)
            if progress is not None and self.windows % 16 == 0:
                progress(self.events_done(), self.events_total)
        end_ts = max((lane.exchange.last_ts for lane in lanes), default=0)
        for lane in lanes:
            lane.exchange.close_stats(max(end_ts, lane.tape.ts[-1] if len(lane.tape) else 0))
        if progress is not None:
            progress(self.events_done(), self.events_total)

    def _risk_barrier(self, ts_ns: int) -> None:
        # Every market and the book, as of the end of the interval; a changed gate acts at once.
        assert self.risk is not None
        changed = self.risk.evaluate(ts_ns)
        if changed:
            for lane in self.lanes:
                gate = changed.get(lane.market)
                if gate is not None:
                    lane.session.set_risk_gate(gate, ts_ns)


def _inline_report(monitor: RiskMonitor) -> Callable[[MarketSample, bool], RiskGate | None]:
    def report(sample: MarketSample, urgent: bool) -> RiskGate | None:
        return monitor.observe(sample, assess=urgent)

    return report


def _inline_window(work: list[tuple[Lane, int | None]], end: int, exposures: list[int]) -> None:
    for lane, room in work:
        exposures[lane.idx] = lane.run_until(end, room)
