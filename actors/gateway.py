"""OrderGatewayActor: the thin I/O shell around ``core.ledger.OrderLedger``; it alone talks to the venue.

The ledger decides every order's fate and every fill; the gateway does the I/O, batching, retries
and timers, and carries out the ledger's effects:

* ``Report`` → the market's session (``route``); ``CancelVenueOrders`` → cancels by venue id;
  ``QueryOrders`` → ``Venue.order`` per id, answered with ``ledger.order_status``; ``ResendOrder`` →
  the same signed order posted again; ``PullMarket``/``ResumeMarket`` → the session holds or releases
  its quotes (``HoldQuotes``/``ReleaseQuotes``); ``Audit`` → the event log (``ledger`` records). A
  ``PositionResync`` report (the venue's position adopted) is also a ``fault`` record.

What it does itself:

* **start-up** (``Startup``, asked once before the sessions exist): the venue's positions seed the
  ledger (cost basis included), recent trades are registered as already held, and every open order of
  ours on any market goes through the ledger's first reconcile: adopted or cancelled per ``on_start``
  (a cancel is confirmed by listing again); orders on markets we do not trade are always cancelled;
* **batching**: everything submitted before its flush goes out together, cancels first (by venue id,
  or ``cancel_market`` for a ``CancelAll``), then places in batches of ``venue.max_batch``. Orders are
  signed when submitted (post-only GTC/GTD only), so a retry sends the same signed order;
* **rate limits** (``core.ratelimit.RateLimiter``, per signer): each request is charged before it
  goes (a batch per order; a cancel larger than the burst is split); cancels go before any new order;
  a 429 holds new orders for its Retry-After, never cancels, and a hold longer than
  ``max_rate_limit_pause_s`` pulls every market's quotes until new orders may go again;
* **retries**: 425/5xx/no reply back off exponentially (Retry-After respected) and a post whose
  outcome is unknown is settled by a reconcile (the ledger says whether to send it again);
* **reconciles** at start, periodically (``reconcile_interval_s``, with the venue's positions), after
  a user-channel (re)subscription, a lost heartbeat, a refused cancel or an unknown outcome: open
  orders are listed first, then trades are backfilled from ``ledger.backfill_from_ns()``; after each
  periodic one the ledger forgets what can no longer change (``ledger.prune``);
* **position checks** (after each periodic reconcile) read the venue's positions on a thread of their
  own (``spawn``): the listing is a slow read (the official client retries a Data API 429 by sleeping
  on the calling thread), and cancels must never wait behind a consistency check. One read at a time;
  its reply comes back as a message and is compared with the ledger as the ledger then stands, market
  by market, only where the position has not moved since it was asked for (``ledger.position_marks``).
  A refused read (429, 5xx, no reply) is asked again after its Retry-After (or a backoff), through a
  reconcile, never sooner; orders and cancels are not held by it;
* **heartbeats** run on a thread of their own (``HeartbeatLoop``), never through this mailbox, so order
  work cannot starve them; a gap longer than the venue's window means the venue cancelled every order
  of ours (``ledger.heartbeat_lost``: the markets requote from scratch);
* **merges** of YES+NO pairs (a ``Merge`` command): the ledger counts the merge from the moment it
  is sent (``merge_sent``: its market is settling, so the position check never takes it for a drift),
  the venue's ``merge`` (an on-chain transaction through the official client, seconds long) runs on a
  thread of its own so orders are never held behind it, and its outcome comes back as a message:
  confirmed (``merge_done``: the ledger books it and the market gets ``Merged``), refused or reverted
  (``merge_failed``: ``MergeFailed``), or unknown (``merge_unknown``: the listings settle it);
* **shutdown** cancels every order of ours and lists again until the venue shows none; the
  ``ShutdownReport`` names what may remain.

Venue-neutral: the ``Venue`` protocol below takes and returns our Structs; the Polymarket
implementation is ``adapters.polymarket.clob_port.PolymarketVenue``. Time comes from the injected
``Clock``, timers from ``schedule(delay_s, fn)`` (tests fire them by hand) and the bounded waits of
start-up and shutdown from ``wait(delay_s)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgspec
import pykka

from actors.market import HoldQuotes, ReleaseQuotes
from core.inventory import Inventory
from core.ledger import (
    Audit,
    CancelVenueOrders,
    Effect,
    OnStart,
    OrderLedger,
    PullMarket,
    QueryOrders,
    Report,
    ResendOrder,
    ResumeMarket,
    VenuePosition,
    VenueTrade,
)
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Cancel,
    CancelAll,
    Command,
    ExecEvent,
    Filled,
    Merge,
    Merged,
    MergeFailed,
    Place,
    PositionResync,
    Reconcile,
    Rejected,
    Submit,
    TickSizeChanged,
    UserOrderUpdate,
)
from core.ports import (
    CancelResult,
    Clock,
    EventSink,
    Failure,
    PlaceResult,
    PreparedOrder,
    RateLimitInfo,
    Route,
    Schedule,
    Venue,
    VenueOrderStatus,
)
from core.ratelimit import Kind, RateLimiter
from core.units import NS_PER_S, TICKS_PX, Px

log = logging.getLogger(__name__)

__all__ = [
    "AddMarket",
    "CancelResult",
    "Failure",
    "GatewayConfig",
    "GatewayStatus",
    "GetGatewayStatus",
    "GetOpenOrderIds",
    "GetPositions",
    "HeartbeatLoop",
    "HeartbeatLost",
    "HeartbeatStatus",
    "OrderGatewayActor",
    "PlaceResult",
    "PreparedOrder",
    "RateLimitInfo",
    "Reconcile",
    "Route",
    "Schedule",
    "SetSink",
    "Shutdown",
    "ShutdownReport",
    "Startup",
    "StartupReport",
    "Submit",
    "UserOrderUpdate",
    "Venue",
    "VenueOrderStatus",
]

# Coarsest first (core.units.TICKS_PX): when a price is off the market's known tick, the coarsest
# finer tick it sits on.
_VENUE_TICKS_PX: Final = TICKS_PX
_RATE_LIMIT_HOLD: Final = "rate_limit"
_DRIFT_HOLD: Final = "position_drift"


# --- messages --------------------------------------------------------------------------------------


class AddMarket(msgspec.Struct, frozen=True):
    """Start trading ``info.market`` (its tokens, tick and neg-risk flag)."""

    info: MarketInfo


class HeartbeatLost(msgspec.Struct, frozen=True, kw_only=True):
    """From the heartbeat thread: no heartbeat reached the venue for ``gap_s`` (beyond its window)."""

    ts_ns: int
    gap_s: float


class SetSink(msgspec.Struct, frozen=True):
    """Where the gateway records orders sent, reconciles, ledger audits and faults (the event log)."""

    sink: Any


class GetPositions(msgspec.Struct, frozen=True):
    """Control plane (ask): the ledger's position per market (``dict[str, Inventory]``)."""


class GetOpenOrderIds(msgspec.Struct, frozen=True):
    """Control plane (ask): the venue ids of every order the ledger believes may rest or fill."""


class Startup(msgspec.Struct, frozen=True):
    """Control plane (ask, once, before the sessions exist): load the venue's truth; a ``StartupReport``."""


class StartupReport(msgspec.Struct, frozen=True, kw_only=True):
    """What start-up found: positions per market, adopted and cancelled orders, what could not be done."""

    positions: dict[str, Inventory]
    positions_loaded: bool
    pre_start_trades: int
    adopted: int
    canceled: int
    unconfirmed: tuple[str, ...]
    errors: tuple[str, ...]


class GetGatewayStatus(msgspec.Struct, frozen=True):
    """Control plane (ask): a status snapshot; also a barrier (pending work is flushed first)."""


class Shutdown(msgspec.Struct, frozen=True):
    """Control plane (ask): cancel every order of ours and confirm; returns a ``ShutdownReport``."""


class ShutdownReport(msgspec.Struct, frozen=True, kw_only=True):
    """Orders cancelled at shutdown, venue ids still open when we gave up, and whether confirmed.

    ``described`` names each remaining order (venue id, market, our client id when known).
    """

    canceled: int
    remaining: tuple[str, ...]
    confirmed: bool
    described: tuple[str, ...] = ()


class HeartbeatStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the heartbeat thread."""

    heartbeats: int
    failures: int
    heartbeat_id: str
    max_gap_s: float
    losses: int


class GatewayStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Counters and state of the gateway."""

    open_orders: int
    queued: int
    in_doubt: int
    post_requests: int
    cancel_requests: int
    accepted: int
    rejects: int
    fills: int
    reversals: int
    heartbeats: int
    heartbeat_failures: int
    heartbeat_id: str
    heartbeat_max_gap_s: float
    heartbeat_losses: int
    reconciles: int
    unknown_cancelled: int
    retries: int
    rate_limited: int
    paused: bool
    quotes_held: bool
    last_error: str
    merges: int = 0
    merge_failures: int = 0
    #: Position listings compared with the ledger, and position reads that failed.
    position_checks: int = 0
    position_check_failures: int = 0


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Gateway timings and limits (seconds)."""

    #: Heartbeat period; None: no heartbeat thread (tests, or a venue without the switch).
    heartbeat_interval_s: float | None = 5.0
    #: Retry a failed heartbeat this soon.
    heartbeat_retry_s: float = 1.0
    #: The venue cancels every order of ours after this long without a heartbeat.
    heartbeat_window_s: float = 10.0
    #: One message handled for longer than this means the gateway hangs: heartbeats stop, so the
    #: venue's switch cancels orders nobody manages any more.
    stall_s: float = 60.0
    #: Periodic reconcile (open orders, trades, positions); None: only at start and on demand.
    reconcile_interval_s: float | None = 30.0
    #: Orders accepted this recently are not declared gone by a reconcile (the venue's list may lag).
    reconcile_grace_s: float = 2.0
    #: Backfills ask for trades from this long before the newest trade applied (statuses move late).
    trade_overlap_s: float = 120.0
    #: At start, trades this recent are registered as already in the positions listed.
    pre_start_trades_s: float = 3600.0
    #: What to do at start with open orders of ours in the markets we trade.
    on_start: OnStart = "adopt"
    #: A position difference (1e-6 shares) the periodic comparison tolerates.
    drift_tolerance_qty: int = 0
    #: The same drift in this many listings in a row, over at least ``drift_resync_min_s``, with
    #: nothing settling and no order in doubt, adopts the venue's position; None: never.
    drift_resync_listings: int | None = 3
    drift_resync_min_s: float = 120.0
    #: Finished orders and settled trades are kept in full this long (``core.ledger``, "Memory").
    ledger_retention_s: float = 120.0
    #: A trade stuck in MATCHED, or a merge in doubt (no receipt), is settled by the listings within
    #: this long (``core.ledger``: a merge the listings never show fails after it).
    settle_timeout_s: float = 600.0
    #: The volume tier assumed until the venue's ``Poly-RateLimit-Tier`` header names one.
    rate_limit_tier: str = "standard"
    #: New orders held by a 429 longer than this: every quote is pulled until they may go again.
    max_rate_limit_pause_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Give up on a place (``Rejected``) after this many failed sends.
    max_place_attempts: int = 5
    startup_attempts: int = 3
    #: A start-up read the venue asks to wait longer than this for (Retry-After) is given up at once:
    #: start-up stays bounded and says why.
    startup_max_wait_s: float = 30.0
    shutdown_attempts: int = 5
    shutdown_backoff_s: float = 0.5


class _MergeResult(msgspec.Struct, frozen=True, kw_only=True):
    # From the merge's thread: the transaction hash once confirmed, else why not (``unknown``: sent,
    # no receipt).
    merge_id: str
    tx: str = ""
    error: str = ""
    unknown: bool = False


class _PositionsResult(msgspec.Struct, frozen=True, kw_only=True):
    # From the position read's thread: the listing (None: the venue has none), or why there is none.
    seq: int
    positions: list[VenuePosition] | None = None
    failure: Failure | None = None


class _PositionsAsked(msgspec.Struct, frozen=True, kw_only=True):
    # The position read in flight: its number, when it was asked for, the ledger's marks then.
    seq: int
    asked_ns: int
    marks: dict[str, int]


class _Timer(msgspec.Struct, frozen=True):
    # Self-told: "flush" (now), "flush_at" (when tokens or a pause allow), "resume", "periodic",
    # "positions" (a refused position read, again), "rl_pull".
    what: str
    generation: int


# --- the heartbeat thread ----------------------------------------------------------------------------


class HeartbeatLoop:
    """Heartbeats on a thread of their own: the ``heartbeat_id`` chain, gaps measured, loss reported.

    ``beat()`` sends one heartbeat and returns the delay to the next (tests call it by hand);
    ``start()`` runs it on a daemon thread until ``stop()``. A gap between two heartbeats that reached
    the venue longer than ``window_s`` (or failures lasting that long) means the venue cancelled every
    order of ours: ``on_lost(ts_ns, gap_s)`` is called once per such gap.

    The switch must still fire when the order gateway hangs (orders nobody manages must not be kept
    alive): ``healthy()`` (the gateway's "no message has taken longer than its stall limit") is asked
    before each beat, and no heartbeat is sent while it says no.
    """

    def __init__(
        self,
        venue: Venue,
        clock: Clock,
        on_lost: Callable[[int, float], object],
        *,
        interval_s: float = 5.0,
        retry_s: float = 1.0,
        window_s: float = 10.0,
        healthy: Callable[[], bool] | None = None,
    ) -> None:
        self.venue = venue
        self.healthy = healthy
        self.clock = clock
        self.on_lost = on_lost
        self.interval_s = interval_s
        self.retry_s = min(retry_s, interval_s)
        self.window_ns = int(window_s * NS_PER_S)
        self.heartbeat_id = ""
        self.beats = 0
        self.failures = 0
        self.losses = 0
        self.max_gap_ns = 0
        self.last_ok_ns = 0
        self.last_error = ""
        self._lost_told = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def beat(self) -> float:
        """Send one heartbeat; the delay (s) until the next one."""
        sent_ns = self.clock.now_ns()
        if self.healthy is not None and not self.healthy():
            with self._lock:
                self.failures += 1
                self.last_error = (
                    "the order gateway is stuck: no heartbeat (the venue will cancel our orders)"
                )
            log.error("heartbeat withheld: the order gateway has been stuck on one message too long")
            return self.retry_s
        try:
            self.heartbeat_id = self.venue.heartbeat(self.heartbeat_id)
        except Exception as exc:
            reason = self.venue.describe_failure(exc).reason
            with self._lock:
                self.failures += 1
                self.last_error = reason
            log.warning("heartbeat failed: %s", reason)
            now = self.clock.now_ns()
            if self.last_ok_ns and now - self.last_ok_ns > self.window_ns:
                self._lost(now, now - self.last_ok_ns)
            return self.retry_s
        with self._lock:
            self.beats += 1
            if self.last_ok_ns:
                gap = sent_ns - self.last_ok_ns
                self.max_gap_ns = max(self.max_gap_ns, gap)
                if gap > self.window_ns:
                    self._lost(sent_ns, gap)
            self.last_ok_ns = sent_ns
            self._lost_told = False
        return self.interval_s

    def _lost(self, ts_ns: int, gap_ns: int) -> None:
        if self._lost_told:
            return
        self._lost_told = True
        self.losses += 1
        log.error("heartbeat gap of %.1f s: the venue has cancelled every order of ours", gap_ns / NS_PER_S)
        try:
            self.on_lost(ts_ns, gap_ns / NS_PER_S)
        except Exception:
            log.exception("heartbeat: reporting the loss failed")

    def status(self) -> HeartbeatStatus:
        """A snapshot of the counters (any thread)."""
        with self._lock:
            return HeartbeatStatus(
                heartbeats=self.beats,
                failures=self.failures,
                heartbeat_id=self.heartbeat_id,
                max_gap_s=self.max_gap_ns / NS_PER_S,
                losses=self.losses,
            )

    def start(self) -> None:
        """Beat now, then every ``interval_s`` on a daemon thread."""
        if self._thread is not None:
            return

        def run() -> None:
            delay = 0.0
            while not self._stop.wait(delay):
                try:
                    delay = self.beat()
                except Exception:  # never let the switch die silently
                    log.exception("heartbeat loop")
                    delay = self.retry_s

        self._thread = threading.Thread(target=run, name="polymm-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop beating (the venue then cancels whatever of ours is still open after its window)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)


# --- the actor ---------------------------------------------------------------------------------------


class OrderGatewayActor(pykka.ThreadingActor):
    """Owns the venue client and the ledger; see the module docstring."""

    def __init__(
        self,
        venue: Venue,
        markets: Iterable[MarketInfo],
        route: Route,
        clock: Clock,
        *,
        config: GatewayConfig | None = None,
        schedule: Schedule | None = None,
        wait: Callable[[float], object] | None = None,
        sink: EventSink | None = None,
        spawn: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        """Set up the gateway; no I/O here (pykka runs ``__init__`` on the caller's thread).

        Args:
            venue: The blocking order API; only this actor (and its heartbeat thread) calls it.
            markets: Markets we trade (tokens, tick, neg-risk); more via ``AddMarket``.
            route: Where execution reports and quote holds go (``Router.tell``).
            clock: Timestamps and the rate limiter's time.
            config: Timings and limits.
            schedule: Timer service; ``threading.Timer`` when None.
            wait: Blocking wait used by start-up and shutdown retries; ``threading.Event().wait`` when None.
            sink: The event log (or later by ``SetSink``).
            spawn: Runs a blocking read (the position check) off this actor's thread; a daemon thread
                per call when None (tests run them by hand).
        """
        super().__init__()
        self.venue = venue
        self.route = route
        self.clock = clock
        self.cfg = cfg = config or GatewayConfig()
        self.sink = sink
        self._schedule = schedule or _thread_timer
        self._wait = wait or threading.Event().wait
        self._spawn = spawn or _thread_run
        markets = list(markets)
        self.ledger = OrderLedger(
            markets,
            on_start=cfg.on_start,
            reconcile_grace_ns=int(cfg.reconcile_grace_s * NS_PER_S),
            drift_tolerance_qty=cfg.drift_tolerance_qty,
            resync_listings=cfg.drift_resync_listings,
            resync_min_ns=int(cfg.drift_resync_min_s * NS_PER_S),
            retention_ns=int(cfg.ledger_retention_s * NS_PER_S),
            backfill_overlap_ns=int(cfg.trade_overlap_s * NS_PER_S),
            settle_timeout_ns=int(cfg.settle_timeout_s * NS_PER_S),
        )
        self._ticks: dict[str, Px] = {m.market: m.tick_px for m in markets}
        self.limiter = RateLimiter(
            cfg.rate_limit_tier,
            max_pause_ns=int(cfg.max_rate_limit_pause_s * NS_PER_S),
            now_ns=clock.now_ns(),
        )
        self._prepared: dict[str, PreparedOrder] = {}
        self._attempts: dict[str, int] = {}
        self._place_queue: list[str] = []
        self._cancel_queue: OrderedDict[str, str] = OrderedDict()  # venue id -> why
        self._market_cancels: list[str] = []
        self._queries: list[str] = []
        self._reconcile_reasons: list[str] = []
        self._check_positions = False
        self._positions_available = True
        self._positions_seq = 0
        self._positions_asked: _PositionsAsked | None = None  # the read in flight
        self._positions_failures = 0  # refused reads in a row
        self._positions_not_before_ns = 0  # a refused read's Retry-After: not asked again before
        self._flush_pending = False
        self._flush_timer_ns = 0  # when the earliest scheduled flush fires (0: none)
        self._paused_until_ns = 0  # venue unavailable (425/5xx/no reply): nothing is sent before
        self._failures = 0
        self._held: set[str] = set()  # markets whose quotes the rate limiter pulled
        self._rl_pull_scheduled = False
        self._generation = 0
        self._stopping = False
        self._started = False
        self._shutdown_report: ShutdownReport | None = None
        self._tick_warned: set[str] = set()
        self.heartbeats: HeartbeatLoop | None = None
        if cfg.heartbeat_interval_s is not None:
            self.heartbeats = HeartbeatLoop(
                venue,
                clock,
                self._on_heartbeat_lost,
                interval_s=cfg.heartbeat_interval_s,
                retry_s=cfg.heartbeat_retry_s,
                window_s=cfg.heartbeat_window_s,
                healthy=self._healthy,
            )
        self._busy_since_ns = 0  # when the message being handled arrived (0: idle); any thread reads it
        self._n = dict.fromkeys(
            (
                "post_requests",
                "cancel_requests",
                "accepted",
                "rejects",
                "fills",
                "reversals",
                "reconciles",
                "unknown_cancelled",
                "retries",
                "rate_limited",
                "merges",
                "merge_failures",
                "position_checks",
                "position_check_failures",
            ),
            0,
        )
        self._last_error = ""

    # --- lifecycle ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Start the heartbeat thread: orders adopted at start-up must stay alive."""
        if self.heartbeats is not None:
            self.heartbeats.start()

    def on_stop(self) -> None:
        """Cancel every order (if ``Shutdown`` was not asked already)."""
        if self._shutdown_report is None:
            self._shutdown()

    def on_failure(self, *_: object) -> None:
        """Best effort: pull every order; the venue's heartbeat switch is the backstop."""
        with contextlib.suppress(Exception):
            self._shutdown()

    def _on_heartbeat_lost(self, ts_ns: int, gap_s: float) -> None:
        # On the heartbeat thread: hand it to the actor.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(HeartbeatLost(ts_ns=ts_ns, gap_s=gap_s))

    # --- dispatch ----------------------------------------------------------------------------------

    def _healthy(self) -> bool:
        busy = self._busy_since_ns
        return busy == 0 or self.clock.now_ns() - busy < self.cfg.stall_s * NS_PER_S

    def on_receive(self, message: Any) -> Any:
        """Commands and venue events by ``tell``; start-up, status and shutdown by ``ask``."""
        self._busy_since_ns = self.clock.now_ns()
        try:
            return self._receive(message)
        finally:
            self._busy_since_ns = 0

    def _receive(self, message: Any) -> Any:
        match message:
            case Submit():
                self._on_submit(message.commands)
            case _Timer():
                self._on_timer(message)
            case _MergeResult():
                self._on_merge_result(message)
            case _PositionsResult():
                self._on_positions_result(message)
            case VenueTrade():
                self._apply(self.ledger.trade(message, self.clock.now_ns()))
                self._want_flush()
            case UserOrderUpdate():
                self._apply(self.ledger.order_update(message.order_id, message.kind, self.clock.now_ns()))
                self._want_flush()
            case Reconcile():
                # The user channel reconnected or (re)subscribed: it may have missed trades. The
                # backfill starts where the last reconcile left it, before whatever it missed.
                self._request_reconcile(message.reason)
            case HeartbeatLost():
                self._on_heartbeat_lost_msg(message)
            case TickSizeChanged():
                if message.market in self._ticks:
                    self._ticks[message.market] = message.tick_px
            case AddMarket():
                self.ledger.add_market(message.info)
                self._ticks[message.info.market] = message.info.tick_px
                follow = getattr(self.venue, "add_market", None)
                if follow is not None:
                    follow(message.info)  # the venue reads listings by token
            case SetSink():
                self.sink = message.sink
            case GetPositions():
                return {m: self.ledger.position(m) for m in self.ledger.markets}
            case GetOpenOrderIds():
                return frozenset(o.order_id for o in self.ledger.open_orders() if o.order_id)
            case Startup():
                return self._startup()
            case GetGatewayStatus():
                self._flush()
                return self._status()
            case Shutdown():
                return self._shutdown()
            case _:
                raise TypeError(f"gateway: unexpected message {type(message).__name__}")
        return None

    # --- effects -----------------------------------------------------------------------------------

    def _apply(self, effects: Iterable[Effect]) -> None:
        for e in effects:
            match e:
                case Report():
                    self._report(e.market, e.event)
                case CancelVenueOrders():
                    for oid in e.order_ids:
                        if oid not in self._cancel_queue:
                            self._n["unknown_cancelled"] += 1
                            self._cancel_queue[oid] = e.reason
                    log.warning("cancelling %d open orders of ours: %s", len(e.order_ids), e.reason)
                    self._record(
                        "cancel_unaccounted", "", {"order_ids": list(e.order_ids), "reason": e.reason}
                    )
                case QueryOrders():
                    self._queries.extend(oid for oid in e.order_ids if oid not in self._queries)
                case ResendOrder():
                    if e.client_id in self._prepared and e.client_id not in self._place_queue:
                        self._place_queue.append(e.client_id)
                case PullMarket():
                    log.error("%s: quotes pulled: %s", e.market, e.reason)
                    self.route(e.market, HoldQuotes(key=_DRIFT_HOLD, reason=e.reason))
                case ResumeMarket():
                    log.info("%s: positions agree again; quoting resumes", e.market)
                    self.route(e.market, ReleaseQuotes(key=_DRIFT_HOLD))
                case Audit():
                    self._record("ledger", e.market, {"event": e.kind, **e.detail})

    def _report(self, market: str, ev: ExecEvent) -> None:
        if isinstance(ev, Merged | MergeFailed):
            if isinstance(ev, Merged):
                self._n["merges"] += 1
                log.info("%s: merged %d pairs (1e-6 shares) into collateral, tx %s", market, ev.qty, ev.tx)
            else:
                self._n["merge_failures"] += 1
                log.warning("%s: merge of %d pairs (1e-6 shares) failed: %s", market, ev.qty, ev.reason)
            self.route(market, ev)
            return
        if isinstance(ev, PositionResync):
            log.error("%s: %s", market, ev.reason)
            self._record("fault", market, {"fault": "position_resync", **msgspec.structs.asdict(ev)})
            self.route(market, ev)
            return
        match ev:
            case Accepted():
                self._n["accepted"] += 1
                self._record("accepted", market, ev)
            case Rejected():
                self._n["rejects"] += 1
            case Filled():
                if ev.trade_id.endswith(":failed"):
                    self._n["reversals"] += 1  # the ledger's trade_failed audit says which leg
                else:
                    self._n["fills"] += 1
                    self._record_fill(market, ev)
            case _:
                pass
        if not isinstance(ev, Filled) or ev.leaves_qty == 0:
            cid = ev.client_id
            o = self.ledger.order(cid)
            if o is not None and not o.open:
                self._prepared.pop(cid, None)
                self._attempts.pop(cid, None)
        self.route(market, ev)

    def _record_fill(self, market: str, ev: Filled) -> None:
        # The venue's side of a fill the ledger applied: its trade id, our venue order id and the
        # trade's status when it applied (MINED/CONFIRMED follow as trade_status, FAILED as
        # trade_failed), so the log reconciles with the venue's trades leg by leg.
        o = self.ledger.order(ev.client_id)
        trade = self.ledger.trades.get(ev.trade_id)
        detail = {
            "event": "fill",
            "trade_id": ev.trade_id,
            "order_id": o.order_id if o is not None else "",
            "client_id": ev.client_id,
            "status": trade.status if trade is not None else "",
            "outcome": ev.outcome,
            "side": ev.side,
            "px": ev.px,
            "qty": ev.qty,
            "liquidity": ev.liquidity,
            "fee_usdc6": ev.fee_usdc6,
            "leaves_qty": ev.leaves_qty,
        }
        self._record("ledger", market, detail)

    def _record(self, kind: str, market: str, payload: object) -> None:
        if self.sink is not None:
            try:
                self.sink.record(kind, self.clock.now_ns(), market, payload)
            except Exception:
                log.exception("event log: could not record %s", kind)

    # --- commands ----------------------------------------------------------------------------------

    def _on_submit(self, commands: Sequence[Command]) -> None:
        for cmd in commands:
            match cmd:
                case Place():
                    self._on_place(cmd)
                case Cancel():
                    self._on_cancel(cmd.client_id)
                case CancelAll():
                    self._on_cancel_all(cmd.market)
                case Merge():
                    self._on_merge(cmd)
        self._want_flush()

    def _on_merge(self, cmd: Merge) -> None:
        now = self.clock.now_ns()
        info = self.ledger.markets.get(cmd.market)
        reason = "gateway is stopping" if self._stopping else "unknown market" if info is None else ""
        if not reason and any(
            m.market == cmd.market and m.state != "done" for m in self.ledger.merges.values()
        ):
            # (A restarted session does not know its predecessor's merge: one at a time per market.)
            reason = "a merge of this market is in flight"
        if reason or info is None:
            self._n["merge_failures"] += 1
            ev = MergeFailed(market=cmd.market, merge_id=cmd.merge_id, ts_ns=now, qty=cmd.qty, reason=reason)
            self.route(cmd.market, ev)
            return
        self.ledger.merge_sent(cmd.market, cmd.merge_id, cmd.qty, now)
        self._record("merge_sent", cmd.market, cmd)
        ref, venue = self.actor_ref, self.venue

        def run() -> None:
            # On a thread of its own: an on-chain merge takes seconds (a block, then its receipt).
            try:
                result = _MergeResult(merge_id=cmd.merge_id, tx=venue.merge(info, cmd.qty) or "-")
            except Exception as exc:
                failure = venue.describe_failure(exc)
                result = _MergeResult(merge_id=cmd.merge_id, error=failure.reason, unknown=failure.ambiguous)
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(result)

        self._schedule(0.0, run)

    def _on_merge_result(self, r: _MergeResult) -> None:
        now = self.clock.now_ns()
        if r.tx:
            effects = self.ledger.merge_done(r.merge_id, r.tx, now)
        elif r.unknown:
            log.warning(
                "merge %s: outcome unknown (%s); the position listings will settle it", r.merge_id, r.error
            )
            effects = self.ledger.merge_unknown(r.merge_id, r.error, now)
        else:
            effects = self.ledger.merge_failed(r.merge_id, r.error, now)
        self._apply(effects)

    def _reject_locally(self, place: Place, reason: str) -> None:
        self._n["rejects"] += 1
        log.warning("%s: rejected %s: %s", place.market, place.client_id, reason)
        ev = Rejected(
            market=place.market, client_id=place.client_id, ts_ns=self.clock.now_ns(), reason=reason
        )
        self.route(place.market, ev)

    def _on_place(self, place: Place) -> None:
        if self.ledger.order(place.client_id) is not None:
            self._reject_locally(place, "duplicate client id")
            return
        if self._stopping:
            self._reject_locally(place, "gateway is stopping")
            return
        info = self.ledger.markets.get(place.market)
        if info is None:
            self._reject_locally(place, "unknown market")
            return
        if not place.post_only or place.tif not in ("GTC", "GTD"):
            self._reject_locally(place, "the live gateway sends post-only GTC/GTD orders only")
            return
        now = self.clock.now_ns()
        try:
            prepared = self.venue.prepare(place, info, self._tick_for(place))
        except Exception as exc:
            log.warning("%s: refused to send %s: %s", place.market, place.client_id, exc)
            self.ledger.submitted(place, "")
            self._apply(self.ledger.post_rejected(place.client_id, f"refused: {exc}", now))
            return
        self.ledger.submitted(place, prepared.order_id)
        self._prepared[place.client_id] = prepared
        self._place_queue.append(place.client_id)

    def _on_cancel(self, client_id: str) -> None:
        o = self.ledger.cancel_requested(client_id)
        if o is None:
            log.debug("cancel of unknown or finished order %s", client_id)
            return
        if o.state == "pending":
            if client_id in self._place_queue:
                self._place_queue.remove(client_id)
            self._apply(self.ledger.unsent(client_id, "canceled before it was sent", self.clock.now_ns()))
        elif o.order_id and o.order_id not in self._cancel_queue:
            self._cancel_queue[o.order_id] = "requested"

    def _on_cancel_all(self, market: str) -> None:
        ids = []
        for o in self.ledger.open_orders(market):
            if o.state == "pending":
                self._on_cancel(o.client_id)
            else:
                self.ledger.cancel_requested(o.client_id)
                if o.order_id:
                    ids.append(o.order_id)
        # cancel-market-orders costs 1 + the orders it cancels: past the burst, cancel by id in chunks.
        if len(ids) + 1 > self.limiter.burst("cancel"):
            for oid in ids:
                self._cancel_queue.setdefault(oid, "cancel all")
        elif market not in self._market_cancels:
            for oid in ids:
                self._cancel_queue.pop(oid, None)  # the market cancel covers them
            self._market_cancels.append(market)

    # --- sending -----------------------------------------------------------------------------------

    def _want_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self._tell_self("flush")

    def _flush_in(self, delay_ns: int) -> None:
        due = self.clock.now_ns() + delay_ns
        if self._flush_timer_ns and self._flush_timer_ns <= due:
            return
        self._flush_timer_ns = due
        self._after(delay_ns / NS_PER_S, "flush_at")

    def _flush(self) -> None:
        self._flush_pending = False
        if self._stopping:
            return
        now = self.clock.now_ns()
        if self._paused_until_ns > now:
            self._flush_in(self._paused_until_ns - now)  # a timer may fire a hair early
            return
        if self._reconcile_reasons and not self._reconcile():
            return
        if self._queries and not self._run_queries():
            return
        if self._send_market_cancels() and self._send_cancels():
            self._send_places()

    def _charge(self, kind: Kind, n: int) -> bool:
        """Take ``n`` tokens of ``kind`` now, or schedule a flush for when they are there."""
        now = self.clock.now_ns()
        wait = self.limiter.wait_ns(kind, n, now)
        if wait > 0:
            self._flush_in(wait)
            return False
        self.limiter.take(kind, n, now)
        return True

    def _observe(self, kind: Kind) -> None:
        info = self.venue.rate_limit()
        if info is None:
            return
        if self.limiter.observe(
            kind, self.clock.now_ns(), remaining=info.remaining, tier=info.tier, warning=info.warning
        ):
            log.info("rate limits: the venue says tier %s", info.tier)

    def _send_market_cancels(self) -> bool:
        while self._market_cancels:
            market = self._market_cancels[0]
            n = 1 + sum(1 for o in self.ledger.open_orders(market) if o.state != "pending")
            if not self._charge("cancel", n):
                return False
            try:
                self._n["cancel_requests"] += 1
                result = self.venue.cancel_market(market)
            except Exception as exc:
                self._observe("cancel")
                return self._on_cancel_failure(
                    exc, f"cancel market {market}", lambda: self._market_cancels.pop(0)
                )
            self._observe("cancel")
            self._market_cancels.pop(0)
            self._ok()
            done = self._apply_cancel_result(result, "canceled")
            for o in self.ledger.open_orders(market):
                if o.state == "canceling" and o.order_id not in done:
                    self._request_reconcile(f"cancel of market {market} did not list {o.order_id}")
        return True

    def _send_cancels(self) -> bool:
        while self._cancel_queue:
            batch = min(self.venue.max_cancel_batch, self.limiter.burst("cancel"))
            ids = list(self._cancel_queue)[:batch]
            if not self._charge("cancel", len(ids)):
                return False
            try:
                self._n["cancel_requests"] += 1
                result = self.venue.cancel(ids)
            except Exception as exc:
                self._observe("cancel")
                return self._on_cancel_failure(exc, f"cancel {len(ids)} orders", self._dropper(ids))
            self._observe("cancel")
            self._ok()
            for oid in ids:
                self._cancel_queue.pop(oid, None)
            done = self._apply_cancel_result(result, "canceled")
            refused = dict(result.not_canceled)
            for oid in ids:
                if oid not in done:
                    self._request_reconcile(f"cancel of {oid} refused: {refused.get(oid, 'not listed')}")
        return True

    def _dropper(self, ids: Sequence[str]) -> Callable[[], None]:
        def drop() -> None:
            for oid in ids:
                self._cancel_queue.pop(oid, None)

        return drop

    def _apply_cancel_result(self, result: CancelResult, reason: str) -> set[str]:
        now = self.clock.now_ns()
        for oid in result.canceled:
            self._apply(self.ledger.canceled(oid, reason, now))
        return set(result.canceled)

    def _send_places(self) -> None:
        now = self.clock.now_ns()
        if self.limiter.paused(now):
            # Quotes that cannot be moved rest only so long: the pull is due at the cap.
            self._schedule_rate_limit_pull()
            self._flush_in(self.limiter.paused_until_ns - now)
            return
        if self.limiter.resume(now):
            self._release_rate_limit_holds()
        if not self._place_queue:
            return
        queue, self._place_queue = self._place_queue, []
        ready = [cid for cid in queue if self._sendable(cid)]
        step = min(self.venue.max_batch, self.limiter.burst("order"))
        for i in range(0, len(ready), step):
            batch = ready[i : i + step]
            if not self._charge("order", len(batch)):
                self._place_queue = ready[i:] + self._place_queue
                return
            prepared = [self._prepared[cid] for cid in batch]
            self._record_sent(prepared)
            try:
                self._n["post_requests"] += 1
                results = self.venue.post(prepared, True)
            except Exception as exc:
                self._observe("order")
                self._place_queue = ready[i + step :] + self._place_queue
                self._on_post_failure(batch, exc)
                return
            self._observe("order")
            self._ok()
            self._on_post_results(batch, results)

    def _record_sent(self, prepared: Sequence[PreparedOrder]) -> None:
        # The venue order id of every order we post, next to our client id (the log reconciles).
        for p in prepared:
            o = self.ledger.order(p.client_id)
            if o is not None:
                pl = o.place
                detail = {
                    "client_id": p.client_id,
                    "order_id": p.order_id,
                    "outcome": pl.outcome,
                    "side": pl.side,
                    "px": pl.px,
                    "qty": pl.qty,
                    "attempt": self._attempts.get(p.client_id, 0) + 1,
                }
                self._record("order_sent", pl.market, detail)

    def _sendable(self, cid: str) -> bool:
        o = self.ledger.order(cid)
        return o is not None and o.state == "pending" and cid in self._prepared

    def _tick_for(self, place: Place) -> Px:
        tick = self._ticks[place.market]
        if place.px % tick == 0:
            return tick
        # The market actor follows tick_size_change; we may not have heard of a finer tick yet.
        finer = next((t for t in _VENUE_TICKS_PX if t < tick and place.px % t == 0), tick)
        if place.market not in self._tick_warned:
            self._tick_warned.add(place.market)
            log.warning(
                "%s: price %d is off tick %d; signing with tick %d", place.market, place.px, tick, finer
            )
        return finer

    def _on_post_results(self, batch: Sequence[str], results: Sequence[PlaceResult]) -> None:
        by_client = {r.client_id: r for r in results}
        now = self.clock.now_ns()
        for cid in batch:
            r = by_client.get(cid)
            if r is None or r.unknown:
                self.ledger.post_unknown(cid)
                self._request_reconcile(f"no reply for {cid}")
            elif r.error:
                self._apply(self.ledger.post_rejected(cid, r.error, now))
            else:
                self._apply(self.ledger.post_accepted(cid, r.order_id, r.status, now))

    def _on_post_failure(self, batch: Sequence[str], exc: Exception) -> None:
        f = self.venue.describe_failure(exc)
        now = self.clock.now_ns()
        for cid in batch:
            self._attempts[cid] = self._attempts.get(cid, 0) + 1
        self._last_error = f"post {len(batch)} orders: {f.reason}"
        if not f.retry:
            log.warning("post of %d orders failed: %s", len(batch), f.reason)
            for cid in batch:
                self._apply(self.ledger.post_rejected(cid, f.reason, now))
            return
        if f.ambiguous:
            # The venue may have them: a reconcile decides (accept, or send the same order again).
            for cid in batch:
                self.ledger.post_unknown(cid)
            self._request_reconcile(f"post outcome unknown: {f.reason}")
        else:
            for cid in reversed(batch):
                if self._attempts[cid] >= self.cfg.max_place_attempts:
                    reason = f"gave up after {self._attempts[cid]} attempts: {f.reason}"
                    self._apply(self.ledger.post_rejected(cid, reason, now))
                else:
                    self._place_queue.insert(0, cid)
        if f.rate_limited:
            self._on_rate_limited("order", f)
        else:
            self._pause(f, f"post {len(batch)} orders")

    def _on_cancel_failure(self, exc: Exception, what: str, drop: Callable[[], object]) -> bool:
        # Retryable: keep the request queued. Otherwise drop it and let a reconcile say what is still
        # open (a cancel the venue refuses as sent would be refused again).
        f = self.venue.describe_failure(exc)
        self._last_error = f"{what}: {f.reason}"
        if f.rate_limited:
            self._on_rate_limited("cancel", f)
            return False
        if f.retry:
            self._pause(f, what)
            return False
        log.error("%s failed: %s", what, f.reason)
        drop()
        self._request_reconcile(f"{what} failed")
        return True

    def _on_rate_limited(self, kind: Kind, f: Failure) -> None:
        self._n["rate_limited"] += 1
        now = self.clock.now_ns()
        retry_ns = int(f.retry_after_s * NS_PER_S) if f.retry_after_s is not None else None
        until = self.limiter.rate_limited(kind, retry_ns, now)
        # "request", not "kind": the event log's head key "kind" would drop it.
        rec = {"fault": "rate_limited", "request": kind, "retry_after_s": f.retry_after_s}
        self._record("fault", "", rec)
        if kind == "cancel":
            # Cancels are never held by a Retry-After: only until their bucket has a token again.
            delay = max(until - now, int(self.cfg.backoff_initial_s * NS_PER_S))
            log.warning("cancel rate-limited (%s); retrying in %.2f s", f.reason, delay / NS_PER_S)
            self._flush_in(delay)
            return
        log.warning(
            "new orders rate-limited (%s); holding them %.2f s (cancels go on)",
            f.reason,
            (until - now) / NS_PER_S,
        )
        self._schedule_rate_limit_pull()
        self._flush_in(until - now)

    def _schedule_rate_limit_pull(self) -> None:
        due = self.limiter.pull_due_ns()
        if due is None or self._rl_pull_scheduled or self._held:
            return
        self._rl_pull_scheduled = True
        self._after(max(0, due - self.clock.now_ns()) / NS_PER_S, "rl_pull")

    def _rate_limit_pull(self) -> None:
        self._rl_pull_scheduled = False
        now = self.clock.now_ns()
        due = self.limiter.pull_due_ns()
        if not self.limiter.paused(now) or due is None:
            return
        if due > now:
            self._schedule_rate_limit_pull()
            return
        reason = (
            f"new orders held by the venue's rate limit for {self.cfg.max_rate_limit_pause_s:g} s"
            f" (until {(self.limiter.paused_until_ns - now) / NS_PER_S:.0f} s from now)"
        )
        log.error("pulling every quote: %s", reason)
        self._flush_in(max(0, self.limiter.paused_until_ns - now))
        self._record("fault", "", {"fault": "rate_limit_pull", "reason": reason})
        for market in self.ledger.markets:
            self._held.add(market)
            self.route(market, HoldQuotes(key=_RATE_LIMIT_HOLD, reason=reason))

    def _release_rate_limit_holds(self) -> None:
        if not self._held:
            return
        log.info("new orders may go again: %d markets quote again", len(self._held))
        for market in sorted(self._held):
            self.route(market, ReleaseQuotes(key=_RATE_LIMIT_HOLD))
        self._held.clear()

    def _pause(self, f: Failure, what: str) -> None:
        self._failures += 1
        self._n["retries"] += 1
        self._last_error = f"{what}: {f.reason}"
        backoff = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2 ** (self._failures - 1))
        delay = max(backoff, f.retry_after_s or 0.0)
        log.warning("%s failed (%s); pausing %.2f s", what, f.reason, delay)
        self._record(
            "fault", "", {"fault": "venue_unavailable", "what": what, "reason": f.reason, "pause_s": delay}
        )
        self._paused_until_ns = self.clock.now_ns() + int(delay * NS_PER_S)
        self._after(delay, "resume")

    def _ok(self) -> None:
        self._failures = 0

    # --- reconcile ---------------------------------------------------------------------------------

    def _request_reconcile(self, reason: str) -> None:
        if not self._reconcile_reasons:
            self._want_flush()
        self._reconcile_reasons.append(reason)

    def _backfill_from_ns(self) -> int:
        return self.ledger.backfill_from_ns()

    def _reconcile(self) -> bool:
        reasons = self._reconcile_reasons
        try:
            # Open orders first: every trade of an order missing from this listing happened before it,
            # so the backfill that follows has them all.
            listed = self.venue.open_orders()
            trades = self.venue.trades(self._backfill_from_ns())
        except Exception as exc:
            f = self.venue.describe_failure(exc)
            self._last_error = f"reconcile: {f.reason}"
            if f.retry:
                self._pause(f, "reconcile")
                return False
            log.error("reconcile failed: %s", f.reason)
            self._reconcile_reasons = []
            return True
        self._reconcile_reasons = []
        self._n["reconciles"] += 1
        now = self.clock.now_ns()
        before = len(self.ledger.open_orders())
        effects = self.ledger.reconcile(listed, trades, now)
        self._record(
            "reconcile",
            "",
            {
                "reasons": reasons[:5],
                "venue_open": len(listed),
                "trades": len(trades),
                "ledger_open_before": before,
                "ledger_open_after": len(self.ledger.open_orders()),
                "effects": _effect_counts(effects),
            },
        )
        log.debug(
            "reconcile (%s): %d open at the venue, %d trades",
            "; ".join(reasons[:3]),
            len(listed),
            len(trades),
        )
        self._apply(effects)
        if self._check_positions:
            self._check_positions = False
            self._ask_positions()
            kept = self.ledger.prune(self.clock.now_ns())
            log.debug(
                "ledger keeps %d orders, %d trades, %d trade keys", kept.orders, kept.trades, kept.trade_keys
            )
        return True

    def _ask_positions(self) -> None:
        # Right after a reconcile: the venue's positions, read on a thread of its own (module docstring).
        now = self.clock.now_ns()
        if not self._positions_available or self._stopping:
            return
        if self._positions_asked is not None:
            # (The client's timeouts bound a read; one this old is named, not silently waited on.)
            age_s = (now - self._positions_asked.asked_ns) / NS_PER_S
            level = logging.WARNING if age_s > self.cfg.stall_s else logging.DEBUG
            log.log(
                level,
                "position read %d in flight for %.0f s: no second one",
                self._positions_asked.seq,
                age_s,
            )
            return
        if now < self._positions_not_before_ns:
            return  # the "positions" timer asks again when the venue's Retry-After is over
        self._positions_seq += 1
        asked = _PositionsAsked(seq=self._positions_seq, asked_ns=now, marks=self.ledger.position_marks())
        self._positions_asked = asked
        ref, venue = self.actor_ref, self.venue

        def run() -> None:
            try:
                result = _PositionsResult(seq=asked.seq, positions=venue.positions())
            except Exception as exc:
                result = _PositionsResult(seq=asked.seq, failure=venue.describe_failure(exc))
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(result)

        self._spawn(run)

    def _on_positions_result(self, r: _PositionsResult) -> None:
        asked = self._positions_asked
        if asked is None or r.seq != asked.seq:
            log.debug("position read %d: no longer awaited, ignored", r.seq)
            return
        self._positions_asked = None
        if self._stopping:
            return
        f = r.failure
        if f is not None:
            self._n["position_check_failures"] += 1
            self._last_error = f"positions: {f.reason}"
            if not f.retry:
                log.warning("listing positions failed: %s", f.reason)
                return
            # Asked again after the venue's Retry-After (or a backoff), through a reconcile, and never
            # sooner: orders and cancels go on meanwhile.
            self._positions_failures += 1
            backoff = min(
                self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2 ** (self._positions_failures - 1)
            )
            delay = max(backoff, f.retry_after_s or 0.0)
            log.warning("listing positions failed (%s); asking again in %.2f s", f.reason, delay)
            rec = {"fault": "positions_unavailable", "reason": f.reason, "retry_in_s": delay}
            self._record("fault", "", rec)
            self._positions_not_before_ns = self.clock.now_ns() + int(delay * NS_PER_S)
            self._after(delay, "positions")
            return
        self._positions_failures = 0
        if r.positions is None:
            self._positions_available = False
            return
        self._n["position_checks"] += 1
        self._apply(self.ledger.positions(r.positions, asked.asked_ns, marks=asked.marks))

    def _run_queries(self) -> bool:
        while self._queries:
            oid = self._queries[0]
            try:
                found = self.venue.order(oid)
            except Exception as exc:
                f = self.venue.describe_failure(exc)
                if f.retry:
                    self._pause(f, f"look up order {oid}")
                    return False
                log.error("looking up order %s failed: %s", oid, f.reason)
                self._queries.pop(0)
                continue
            self._queries.pop(0)
            now = self.clock.now_ns()
            self._apply(self.ledger.order_status(oid, found is not None, found.status if found else "", now))
        return True

    def _on_heartbeat_lost_msg(self, m: HeartbeatLost) -> None:
        self._record("fault", "", {"fault": "heartbeat_lost", "gap_s": round(m.gap_s, 3)})
        self._apply(self.ledger.heartbeat_lost(self.clock.now_ns()))
        # The venue may have cancelled them before or after our last orders: the listing tells.
        self._request_reconcile(f"heartbeat gap of {m.gap_s:.1f} s")

    # --- start-up ----------------------------------------------------------------------------------

    def _startup(self) -> StartupReport:
        errors: list[str] = []
        now = self.clock.now_ns()
        positions = self._with_retries("list positions", self.venue.positions, errors)
        loaded = isinstance(positions, list)
        if loaded:
            self._apply(self.ledger.seed_positions(positions))
        elif "list positions" not in " ".join(errors):
            self._positions_available = False
            log.warning("the venue offers no positions listing: every market starts from zero shares")
        since = max(0, now - int(self.cfg.pre_start_trades_s * NS_PER_S))
        trades = self._with_retries("list trades", lambda: self.venue.trades(since), errors) or []
        self.ledger.pre_start_trades(trades)
        # Later backfills start from here: older trades are in the positions just listed.
        floor = since + int(self.cfg.trade_overlap_s * NS_PER_S)
        self.ledger.trade_cursor_ns = max(self.ledger.trade_cursor_ns, floor)
        adopted = canceled = 0
        unconfirmed: tuple[str, ...] = ()
        listed = self._with_retries("list open orders", self.venue.open_orders, errors)
        if listed is not None:
            effects = self.ledger.reconcile(listed, [], self.clock.now_ns())
            adopted = sum(1 for e in effects if isinstance(e, Audit) and e.kind == "adopted")
            leftovers = [oid for e in effects if isinstance(e, CancelVenueOrders) for oid in e.order_ids]
            self._apply(e for e in effects if not isinstance(e, CancelVenueOrders))
            canceled, unconfirmed = self._cancel_confirmed(leftovers, errors)
        self._started = True
        if self.cfg.reconcile_interval_s is not None:
            self._after(self.cfg.reconcile_interval_s, "periodic")
        report = StartupReport(
            positions={m: self.ledger.position(m) for m in self.ledger.markets},
            positions_loaded=loaded,
            pre_start_trades=len(trades),
            adopted=adopted,
            canceled=canceled,
            unconfirmed=unconfirmed,
            errors=tuple(errors),
        )
        self._record(
            "startup", "", {k: v for k, v in msgspec.structs.asdict(report).items() if k != "positions"}
        )
        self._want_flush()
        return report

    def _with_retries(self, what: str, fn: Callable[[], Any], errors: list[str]) -> Any:
        # Bounded: ``startup_attempts`` calls, and no wait longer than ``startup_max_wait_s`` between
        # them (a longer Retry-After gives up at once, saying so). Nothing quotes yet, so the calls
        # run on this thread; the client's own retry of a Data API 429 (two sleeps of at most 5 s)
        # is inside one call.
        for attempt in range(1, self.cfg.startup_attempts + 1):
            try:
                return fn()
            except Exception as exc:
                f = self.venue.describe_failure(exc)
                wait_s = max(self.cfg.backoff_initial_s * 2 ** (attempt - 1), f.retry_after_s or 0.0)
                if not f.retry or attempt == self.cfg.startup_attempts:
                    log.warning("start-up: %s failed: %s", what, f.reason)
                    errors.append(f"{what}: {f.reason}")
                    return None
                if wait_s > self.cfg.startup_max_wait_s:
                    log.warning(
                        "start-up: %s failed: %s; the venue asks to wait %g s", what, f.reason, wait_s
                    )
                    errors.append(
                        f"{what}: {f.reason} (the venue asks to wait {wait_s:g} s; start-up waits at most"
                        f" {self.cfg.startup_max_wait_s:g} s)"
                    )
                    return None
                log.warning(
                    "start-up: %s failed (attempt %d of %d): %s; again in %.2f s",
                    what,
                    attempt,
                    self.cfg.startup_attempts,
                    f.reason,
                    wait_s,
                )
                self._wait(wait_s)
        return None

    def _cancel_confirmed(self, order_ids: Sequence[str], errors: list[str]) -> tuple[int, tuple[str, ...]]:
        """Cancel ``order_ids`` and list again until the venue shows none of them (bounded)."""
        targets = set(order_ids)
        canceled = 0
        for attempt in range(self.cfg.shutdown_attempts):
            if not targets:
                break
            ids = sorted(targets)
            for size in self.limiter.chunks("cancel", len(ids)):
                chunk, ids = ids[:size], ids[size:]
                now = self.clock.now_ns()
                wait = self.limiter.wait_ns("cancel", len(chunk), now)
                if wait:
                    self._wait(wait / NS_PER_S)
                self.limiter.take("cancel", len(chunk), self.clock.now_ns())
                try:
                    self._n["cancel_requests"] += 1
                    result = self.venue.cancel(chunk)
                except Exception as exc:
                    log.warning("cancel failed: %s", self.venue.describe_failure(exc).reason)
                    continue
                self._apply_cancel_result(result, "canceled")
            try:
                open_ids = {v.order_id for v in self.venue.open_orders()}
            except Exception as exc:
                log.warning("listing open orders failed: %s", self.venue.describe_failure(exc).reason)
                self._backoff(attempt)
                continue
            gone = targets - open_ids
            canceled += len(gone)
            targets &= open_ids
            if targets:
                self._backoff(attempt)
        if targets:
            errors.append(f"{len(targets)} orders could not be cancelled: {', '.join(sorted(targets)[:10])}")
        return canceled, tuple(sorted(targets))

    # --- status ------------------------------------------------------------------------------------

    def _status(self) -> GatewayStatus:
        states = [o.state for o in self.ledger.open_orders()]
        hb = self.heartbeats.status() if self.heartbeats is not None else None
        return GatewayStatus(
            open_orders=sum(1 for s in states if s in ("live", "canceling", "delayed")),
            queued=sum(1 for s in states if s == "pending"),
            in_doubt=sum(1 for s in states if s == "in_doubt"),
            heartbeats=hb.heartbeats if hb else 0,
            heartbeat_failures=hb.failures if hb else 0,
            heartbeat_id=hb.heartbeat_id if hb else "",
            heartbeat_max_gap_s=hb.max_gap_s if hb else 0.0,
            heartbeat_losses=hb.losses if hb else 0,
            paused=self._paused_until_ns > self.clock.now_ns() or self.limiter.paused(self.clock.now_ns()),
            quotes_held=bool(self._held),
            last_error=self._last_error,
            **self._n,
        )

    # --- timers ------------------------------------------------------------------------------------

    def _tell_self(self, what: str) -> None:
        self.actor_ref.tell(_Timer(what, self._generation))

    def _after(self, delay_s: float, what: str) -> None:
        ref, msg = self.actor_ref, _Timer(what, self._generation)

        def fire() -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(msg)

        self._schedule(delay_s, fire)

    def _on_timer(self, t: _Timer) -> None:
        if t.generation != self._generation or self._stopping:
            return
        match t.what:
            case "flush":
                self._flush()
            case "flush_at":
                self._flush_timer_ns = 0
                self._flush()
            case "resume":
                self._flush()
            case "periodic":
                self._check_positions = True
                self._request_reconcile("periodic")
                if self.cfg.reconcile_interval_s is not None:
                    self._after(self.cfg.reconcile_interval_s, "periodic")
            case "positions":
                early_ns = self._positions_not_before_ns - self.clock.now_ns()
                if early_ns > 0:  # a timer may fire a hair early
                    self._after(early_ns / NS_PER_S, "positions")
                    return
                self._check_positions = True
                self._request_reconcile("positions again after a refused read")
            case "rl_pull":
                self._rate_limit_pull()
            case _:
                raise AssertionError(f"unknown timer {t.what!r}")

    # --- shutdown ----------------------------------------------------------------------------------

    def _shutdown(self) -> ShutdownReport:
        if self._shutdown_report is not None:
            return self._shutdown_report
        self._stopping = True
        self._generation += 1  # timers already scheduled are ignored from now on
        now = self.clock.now_ns()
        for cid in self._place_queue:
            self._apply(self.ledger.unsent(cid, "gateway stopped before sending", now))
        self._place_queue = []
        for o in self.ledger.open_orders():
            self.ledger.cancel_requested(o.client_id)
        targets = {o.order_id for o in self.ledger.open_orders() if o.order_id and o.state != "pending"}
        targets |= set(self._cancel_queue)
        # Taken for cancelled by a lost heartbeat but never shown gone by a listing (the venue may be
        # unreachable, not down): cancelled again, and named if nothing confirms.
        targets |= self.ledger.unverified_gone
        canceled = 0
        confirmed = False
        for attempt in range(self.cfg.shutdown_attempts):
            ids = sorted(targets)
            batch = max(1, min(self.venue.max_cancel_batch, self.limiter.burst("cancel")))
            for i in range(0, len(ids), batch):
                chunk = ids[i : i + batch]
                try:
                    self._n["cancel_requests"] += 1
                    result = self.venue.cancel(chunk)
                except Exception as exc:
                    log.warning("shutdown: cancel failed: %s", self.venue.describe_failure(exc).reason)
                    continue
                canceled += sum(1 for oid in result.canceled if oid in targets)
                self._apply_cancel_result(result, "gateway shutdown")
            try:
                listed = self.venue.open_orders()
                trades = self.venue.trades(self._backfill_from_ns())
            except Exception as exc:
                log.warning("shutdown: listing failed: %s", self.venue.describe_failure(exc).reason)
                self._backoff(attempt)
                continue
            # The ledger settles what is gone (filled or cancelled, from its trades); every order of
            # ours still listed, on any market, is cancelled again.
            self._apply(
                e
                for e in self.ledger.reconcile(listed, trades, self.clock.now_ns())
                if not isinstance(e, (CancelVenueOrders, QueryOrders, ResendOrder))
            )
            targets = {v.order_id for v in listed}
            if not targets:
                confirmed = True
                break
            self._backoff(attempt)
        described = tuple(self._describe(oid) for oid in sorted(targets))
        if not confirmed:
            log.error("shutdown: %d orders may still be open: %s", len(targets), "; ".join(described[:10]))
        else:
            log.info("shutdown: cancelled %d orders; the venue lists none of ours", canceled)
        self._shutdown_report = ShutdownReport(
            canceled=canceled, remaining=tuple(sorted(targets)), confirmed=confirmed, described=described
        )
        self._record("shutdown", "", self._shutdown_report)
        if self.heartbeats is not None:
            self.heartbeats.stop()
        return self._shutdown_report

    def _backoff(self, attempt: int) -> None:
        # Between cancel-and-list attempts (start-up, shutdown); none after the last: nothing follows
        # it but the report, and a shutdown the venue refuses should say so without idling first.
        if attempt + 1 < self.cfg.shutdown_attempts:
            self._wait(self.cfg.shutdown_backoff_s * 2**attempt)

    def _describe(self, order_id: str) -> str:
        o = self.ledger.venue_order(order_id)
        if o is None:
            return f"{order_id} (not placed by this run)"
        return f"{order_id} (market {o.place.market}, {o.client_id})"


def _effect_counts(effects: Sequence[Effect]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in effects:
        name = type(e.event).__name__ if isinstance(e, Report) else type(e).__name__
        out[name] = out.get(name, 0) + 1
    return out


def _thread_run(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="polymm-positions", daemon=True).start()


def _thread_timer(delay_s: float, fn: Callable[[], None]) -> None:
    t = threading.Timer(max(delay_s, 0.0), fn)
    t.daemon = True
    t.start()
