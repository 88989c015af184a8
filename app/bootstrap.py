"""The trading engine of live, paper and dry-run trading: one decision path, three ways to execute.

The composition root is ``app.compose.bootstrap``: it builds this engine with its dependencies
(clock, event log, feed, risk state store, live venue, operator's plane). ``TradingEngine`` wires
the same pieces for every mode:

* the market-channel WebSocket feed (``adapters.polymarket.ws_market``) → each market's actor;
* one ``MarketActor`` per market under a ``Supervisor`` (restarts failed markets), scheduled on the
  feed's event-loop thread (``actors.loop``): a frame is decided on the thread that decoded it;
* a ticker thread telling ``Timer`` every 100 ms and sharing the exposure budgets each second (the
  global cap among all markets, each neg-risk event's cap among its markets);
* the risk manager (``actors.risk.RiskActor``): the sessions tell it their samples, the ticker a
  ``RiskTick`` each second, and it tells each market actor its trading state (``SetRiskGate``);
* an ``ExchangePort`` per mode: ``live`` the order gateway over polymarket-client, ``paper`` the
  simulated venue fed by the live book (``adapters.paper.PaperVenue``), ``dry-run`` a port that
  acknowledges and sends nothing.

Market events reach the actors through ``actors.dispatch.FrameDispatcher``: one
``core.yes_view.YesView`` per market maps every event of either token onto the YES book, each
happening once.

The sessions' clock is the loop's ``actors.loop.InputClock``: each input (a feed frame, a timer, a
report, the status asks of every market, the shutdown's pull) is handled at one time, the time it
reached the loop, whatever the actors' turns took; a session's recording (``app.session_recording``)
stamps it with that time, so its replay decides exactly as the session did.

Decisions, orders and fills go to an event log (one JSON object per line, the simulator's format):
``run-market-maker`` gives each session a run directory of its own (``adapters.runlog``); the log
holds a ``units`` record (``core.units.units_header``) before anything else the engine writes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import pykka

from actors.dispatch import FrameDispatcher
from actors.loop import ActorLoop, InputClock
from actors.market import (
    FeedAlive,
    FeedLost,
    GetStatus,
    LatencyHistogram,
    PullQuotes,
    SetBudget,
    Status,
)
from actors.risk import MarketSample, RiskActor, RiskMonitor, RiskStore, RiskTick, SetRiskGate
from actors.session import MarketSession
from actors.supervisor import Router, StartMarket, Supervisor
from adapters.clock import LiveClock
from adapters.paper import DryRunPort, GetPaperMarkets, PaperPort, PaperVenue
from adapters.polymarket.book_audit import AuditConfig
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.ws_market import MarketFeedTap, MarketWsClient, MarketWsConfig
from adapters.runlog import JsonlFileSink
from core.config import Config
from core.inventory import Inventory, budget_rooms
from core.markets import MarketInfo
from core.messages import Timer
from core.ports import Clock, EventSink, ExchangePort
from core.quoting import quote_params
from core.risk import ACTIVE_GATE, RiskGate, risk_limits
from core.units import USDC6_ONE, Outcome, units_header

log = logging.getLogger(__name__)

Mode = Literal["live", "paper", "dry-run"]
TICK_S = 0.1
BUDGET_EVERY = 10  # ticks


class MarketFeed(Protocol):
    """What the engine needs of its market feed (``MarketWsClient``; a test's fake)."""

    async def run(self) -> None:
        """Deliver market events until ``stop``."""

    def stop(self) -> None:
        """End ``run``."""

    def status(self) -> Any:
        """Its state; ``connected`` vouches for books that did not change (``FeedAlive``)."""


#: Builds an engine's market feed when it starts (after the market actors).
FeedFactory = Callable[["TradingEngine"], MarketFeed]


def market_ws_feed(engine: TradingEngine) -> MarketFeed:
    """The production feed: the market channel WebSocket, delivering to the engine's dispatcher."""
    return MarketWsClient(
        AssetMap.from_markets(engine.markets),
        lambda ev: engine.dispatch((ev,)),
        config=MarketWsConfig(url=engine.ws_url, clob_url=engine.clob_url, audit=audit_config(engine.cfg)),
        on_invalidate=engine.feed_lost,
        on_batch=engine.dispatch,
        on_resync=engine.book_resync,
        tap=engine.feed_tap,
        input_scope=engine.input_clock,
    )


def tune_gc_for_latency() -> None:
    """Keep the garbage collector off the tick-to-quote path.

    Everything built at startup (configs, markets, parsers, actors) is frozen out of the collector's
    view, and young collections run every 50,000 allocations instead of 700: with the defaults, a
    full collection of a large heap stalled every thread for milliseconds (tick-to-quote p99 641 us
    against 113 us with this, 50 markets at 5,000 messages/s, measured with the bench's earlier
    in-process feeder).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _log_feed_end(done: concurrent.futures.Future[None]) -> None:
    # The feed reconnects by itself; if it ever ends with an error, say so at once (the books go stale
    # and the quotes are pulled by max_book_age_ms).
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.error("market feed stopped: %r", exc, exc_info=exc)


def audit_config(cfg: Config) -> AuditConfig | None:
    """The feed's book audit from ``ops.book_audit_*`` (None when ``book_audit_s`` is 0)."""
    ops = cfg.ops
    if ops.book_audit_s <= 0:
        return None
    return AuditConfig(
        period_s=ops.book_audit_s, levels=ops.book_audit_levels, max_requests_per_s=ops.book_audit_max_rps
    )


class TradingEngine:
    """Everything that trades (or pretends to) for one strategy config; see the module docstring."""

    def __init__(
        self,
        cfg: Config,
        markets: Sequence[MarketInfo],
        mode: Mode,
        *,
        ws_url: str,
        clob_url: str,
        state_dir: Path,
        clock: Clock | None = None,
        live_port: Any = None,
        tick_s: float | None = TICK_S,
        inventory: Mapping[str, Inventory] | None = None,
        sink: EventSink | None = None,
        risk: RiskMonitor | None = None,
        risk_store: RiskStore | None = None,
        feed: FeedFactory | None = None,
    ) -> None:
        """Wire everything; nothing starts until ``start``.

        ``clock`` is the running clock (``LiveClock``, unless a replay injects one that follows the
        venue's timestamps), which the sessions read through the loop's ``input_clock`` (one reading
        per input); ``tick_s`` the ticker's period (None: no ticker, so
        no timers, budget shares or feed-alive notes: whoever drives the engine tells them);
        ``inventory`` what each market holds at start (live: the venue's positions, through the ledger);
        ``sink`` the event log (``run-market-maker``: its run directory's, which it closes itself),
        else ``state_dir/events.jsonl``, closed by ``close``; ``risk`` the risk manager's monitor
        (restored from ``risk_store``, where it saves; None: the config's own ``risk`` limits, nothing
        saved); ``feed`` builds the market feed at ``start`` (None: ``market_ws_feed``).
        """
        self.cfg = cfg
        self.markets = list(markets)
        self.mode = mode
        self.clock = clock or LiveClock()
        #: The sessions' clock: ``clock`` read once per input of the actors' loop (``actors.loop``).
        self.input_clock = InputClock(self.clock)
        self.params = quote_params(cfg)
        self.router = Router()
        self._own_sink = sink is None
        self.sink: Any = JsonlFileSink(state_dir / "events.jsonl") if sink is None else sink
        self.sink.record("units", self.clock.now_ns(), "", units_header(mode))
        self.ws_url, self.clob_url = ws_url, clob_url
        self.live_port: ExchangePort | None = live_port
        self.dry_ports: dict[str, DryRunPort] = {}
        self._sessions: dict[str, MarketSession] = {}
        self._start_inventory: dict[str, Inventory] = dict(inventory or {})
        self._incarnations: dict[str, int] = {}
        self.venue: pykka.ActorRef[Any] | None = None
        self.supervisor: pykka.ActorRef[Any] | None = None
        self._feed_factory: FeedFactory = feed or market_ws_feed
        self.feed: MarketFeed | None = None
        #: Sees the feed's frames as received (``app.session_recording``: ``ops.record_market_data``).
        self.feed_tap: MarketFeedTap | None = None
        self._feed_done: concurrent.futures.Future[None] | None = None
        self.actor_loop = ActorLoop("polymm-market", clock=self.input_clock)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.tick_s = tick_s
        self.global_cap_usdc6 = round(cfg.inventory.global_ev_cap * USDC6_ONE)
        self.event_cap_usdc6 = round(cfg.inventory.event_cap * USDC6_ONE)
        # Until the first budget share, every market gets its share of the caps with nothing used.
        self._initial_rooms = dict(zip(self._market_ids(), self.rooms([0] * len(self.markets)), strict=True))
        #: Feed frames to market actors (its ``listeners`` are extra consumers of market events).
        self.dispatch = FrameDispatcher(self.router)
        self.risk_monitor = risk or RiskMonitor(risk_limits(cfg), self._market_ids(), book_sink=self.sink)
        self.risk_store = risk_store
        self.risk: pykka.ActorRef[Any] | None = None
        #: Live: ``() -> (heartbeat age in ns or None, venue errors so far)`` for the risk rules.
        self.book_health: Callable[[], tuple[int | None, int]] | None = None
        #: Tick-to-quote latencies of every market (the metrics endpoint reads them), on the running clock.
        self.quote_latency = LatencyHistogram(self.clock)
        #: Told on the actors' loop, first thing in an input that asks every market at once (``status``:
        #: ``statuses``; ``pull``: ``stop``): a session's recording notes it (``app.session_recording``).
        self.note_input: Callable[[str], object] | None = None
        #: Live: the venue's reward reads (``adapters.polymarket.rewards.VenueRewards``, set by
        #: ``LiveConnection.attach``); the operator's plane tracks rewards with it (``app.rewards``).
        self.rewards_venue: Any = None
        #: Reward tracking (``app.rewards.RewardTracker``) once the operator's plane started one.
        self.reward_tracker: Any = None

    # --- wiring ------------------------------------------------------------------------------------

    def _port(self, info: MarketInfo) -> ExchangePort:
        if self.mode == "live":
            assert self.live_port is not None, "live mode needs the gateway's port"
            return self.live_port
        if self.mode == "paper":
            assert self.venue is not None
            return PaperPort(self.venue, info.market)
        port = self.dry_ports.get(info.market)
        if port is None:
            port = self.dry_ports[info.market] = DryRunPort(info.market, self.router.tell, self.input_clock)
        return port

    def _session(self, market: str) -> MarketSession:
        info = next(m for m in self.markets if m.market == market)
        previous = self._sessions.get(market)
        # A restart keeps what the market holds (the failed session's inventory; the gateway's
        # reconcile and the buffered reports bring it up to date) and gets fresh client ids.
        s = MarketSession(
            info,
            self.params,
            self._port(info),
            self.input_clock,
            self.sink,
            inventory=previous.inv if previous is not None else self._start_inventory.get(market),
            incarnation=self._incarnations.get(market, 0),
            book_resync=self.request_book_resync,
            risk_gate=self.risk_monitor.gate(market),
            risk_report=self._risk_report,
        )
        s.quote_latency = self.quote_latency
        s.own_orders_in_book = self.mode == "live"  # (paper orders rest in the simulated venue only)
        self._incarnations[market] = self._incarnations.get(market, 0) + 1
        self._sessions[market] = s
        # Until the first budget share, an equal slice of the global cap and of its neg-risk event's cap
        # (never "no limit").
        s.global_room_usdc6 = self._initial_rooms[market]
        return s

    def start(self) -> None:
        """Start the venue (paper), the market actors, the feed and the ticker."""
        if self.mode == "paper":
            self.venue = PaperVenue.start(self.markets, self.router.tell, self.clock)
            self.dispatch.venue = self.venue
        # The risk manager first: every market starts in the state it is in (a HALT from before a
        # restart is in force before the first decision).
        gates = self.risk_monitor.start_gates()
        self.risk = RiskActor.start(self.risk_monitor, self._tell_gate, self.clock, store=self.risk_store)
        # The market actors and the feed share one loop thread: a frame is decided where it was decoded.
        self.actor_loop.start()
        self.supervisor = Supervisor.start(self._session, self.router, actor_loop=self.actor_loop)
        for m in self.markets:
            self.supervisor.ask(StartMarket(m.market), timeout=10)
        for market, gate in gates.items():
            if gate is not ACTIVE_GATE:  # (the session has it already: told so a recording notes it)
                self._tell_gate(market, gate)
        self.feed = self._feed_factory(self)
        self._feed_done = self.actor_loop.run_coroutine(self.feed.run())
        self._feed_done.add_done_callback(_log_feed_end)
        tune_gc_for_latency()
        if self.tick_s is not None:
            self._ticker = threading.Thread(target=self._tick, name="polymm-ticker", daemon=True)
            self._ticker.start()

    def _risk_report(self, sample: MarketSample, urgent: bool) -> RiskGate | None:
        # On the market actors' thread: hand the sample over; the gate comes back by SetRiskGate.
        risk = self.risk
        if risk is not None:
            with contextlib.suppress(pykka.ActorDeadError):  # stopping
                risk.tell(sample)
        return None

    def _tell_gate(self, market: str, gate: RiskGate) -> None:
        self.router.tell(market, SetRiskGate(gate))

    def request_book_resync(self, market: str) -> None:
        """A session's order crossed the venue's book (post-only refused): the feed should fetch it afresh.

        Called on the market actors' loop thread. The feed's ``request_book_resync(market)``, when it
        has one, does it; otherwise this is a no-op (the session's post-only backoff still applies).
        """
        hook = getattr(self.feed, "request_book_resync", None)
        if hook is not None:
            hook(market)
        else:
            log.debug("%s: book resync requested (the feed has no resync)", market)

    def feed_lost(self, market: str, outcome: Outcome) -> None:
        # The connection dropped (the sessions keep the YES book): pull now, resume on the snapshot.
        if outcome is Outcome.YES:
            self.router.tell(market, FeedLost(ts_ns=self.input_clock.now_ns()))

    def book_resync(self, market: str, reason: str) -> None:
        # The audit found the feed's book of ``market`` behind the venue's: a feed loss for that market.
        now = self.input_clock.now_ns()
        self.sink.record("book_resync", now, market, {"reason": reason})
        self.router.tell(market, FeedLost(ts_ns=now))

    def _tick(self) -> None:
        n = 0
        assert self.tick_s is not None
        while not self._stop.wait(self.tick_s):
            now = self.clock.now_ns()
            for m in self.markets:
                self.router.tell(m.market, Timer(market=m.market, ts_ns=now))
            n += 1
            if n % BUDGET_EVERY == 0:
                self._share_budget()
                self.risk_tick(now)
                # A connected feed (it drops the connection after 30 s without a frame or a PONG)
                # vouches for books that simply did not change: max_book_age_ms is about the feed.
                if self.feed is not None and self.feed.status().connected:
                    for m in self.markets:
                        self.router.tell(m.market, FeedAlive(ts_ns=now))

    def risk_tick(self, now_ns: int) -> None:
        """Tell the risk manager to evaluate everything (the ticker does, each second)."""
        if self.risk is None:
            return
        heartbeat_age, venue_errors = self.book_health() if self.book_health is not None else (None, 0)
        with contextlib.suppress(pykka.ActorDeadError):
            self.risk.tell(RiskTick(ts_ns=now_ns, heartbeat_age_ns=heartbeat_age, venue_errors=venue_errors))

    def _market_ids(self) -> list[str]:
        return [m.market for m in self.markets]

    def rooms(self, exposures: Sequence[int]) -> list[int]:
        """Each market's room (Usdc6) given every market's exposure, in ``markets`` order.

        The global cap is shared by all markets and each neg-risk event's cap
        (``inventory.per_event_ev_cap``) by that event's markets (``MarketInfo.neg_risk_market_id``):
        a market keeps its exposure plus an equal share of what its budget leaves, the smaller of the
        two (``core.inventory.budget_rooms``).
        """
        rooms = budget_rooms(
            exposures,
            self.global_cap_usdc6,
            [m.neg_risk_market_id for m in self.markets],
            self.event_cap_usdc6,
        )
        return [self.global_cap_usdc6 if r is None else r for r in rooms]

    def budget_shares(self, statuses: dict[str, Status]) -> dict[str, int]:
        """The room of every market that answered, from everyone's exposure (see ``rooms``).

        A market that does not answer counts as using its whole per-market cap.
        """
        markets = self._market_ids()
        exposures = [
            statuses[m].exposure_usdc6 if m in statuses else self.params.per_market_cap_usdc6 for m in markets
        ]
        rooms = self.rooms(exposures)
        return {m: room for m, room in zip(markets, rooms, strict=True) if m in statuses}

    def _share_budget(self) -> None:
        for market, room in self.budget_shares(self.statuses()).items():
            self.router.tell(market, SetBudget(room_usdc6=room))

    # --- control -----------------------------------------------------------------------------------

    def statuses(self, timeout: float = 2.0) -> dict[str, Status]:
        """A status snapshot of every running market actor, all asked on one input of the loop.

        (A status ask makes a pending requote that is due: each market's at the same time, the
        one a recording notes.)
        """
        out: dict[str, Status] = {}
        for market, answer in self._ask_all("status", lambda _now: GetStatus(), timeout).items():
            try:
                out[market] = cast(Status, answer.get(timeout=timeout))
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("%s: no status", market)
        return out

    def _ask_all(
        self, note: str, message: Callable[[int], object], timeout: float
    ) -> dict[str, pykka.Future[Any]]:
        # Ask every market actor ``message(now)`` on one input of the actors' loop, noted first
        # (``note_input``); their answers. An actor answers within that input (as the replay of a
        # recording asks them), after any message of another thread already waiting for it.
        if not self.router.markets():
            return {}

        def ask_all() -> dict[str, pykka.Future[Any]]:
            if self.note_input is not None:
                self.note_input(note)
            now = self.input_clock.now_ns()
            asked: dict[str, pykka.Future[Any]] = {}
            for market in self.router.markets():
                ref = self.router.get(market)
                if ref is None:
                    continue
                try:
                    asked[market] = ref.ask(message(now), block=False)
                except pykka.ActorDeadError:
                    log.warning("%s: actor stopped, not asked (%s)", market, note)
            return asked

        done: concurrent.futures.Future[dict[str, pykka.Future[Any]]] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(ask_all())
            except Exception as exc:  # (raised to the caller)
                done.set_exception(exc)

        try:
            self.actor_loop.call_soon(run)  # (never from the loop's own thread: it would wait for itself)
        except RuntimeError:  # the loop has stopped: no actor is left to ask
            return {}
        try:
            return done.result(timeout)
        except TimeoutError:
            log.warning("the actors' loop did not take the %s asks in %.1f s", note, timeout)
            return {}

    def stop(self) -> None:
        """Pull every quote, let the venue confirm, then stop everything (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        pulls = self._ask_all("pull", lambda now: PullQuotes(ts_ns=now, reason="shutdown"), 5)
        for market, pulled in pulls.items():
            try:
                pulled.get(timeout=5)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("%s: could not pull quotes", market)
        if self.feed is not None:
            self.feed.stop()
            if self._feed_done is not None:
                with contextlib.suppress(Exception):  # a crash was logged when it happened
                    self._feed_done.result(timeout=10)
        if self._ticker is not None:
            self._ticker.join(timeout=2)

    def close(self) -> None:
        """Stop the actors and close the event log (after ``stop`` and any venue shutdown)."""
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.risk is not None:
            self.risk.stop()  # (saves the risk state one last time)
        if self.venue is not None:
            self.venue.stop()
        self.actor_loop.stop()
        if self._own_sink:
            self.sink.close()

    def paper_markets(self) -> dict[str, Any]:
        """The paper venue's per-market state (for the summary)."""
        if self.venue is None:
            return {}
        return cast(dict[str, Any], self.venue.ask(GetPaperMarkets(), timeout=5))
