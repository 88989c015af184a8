"""OrderGatewayActor: the only actor that talks to the venue's blocking order API.

Market actors never block on the network: their ``ExchangePort`` (``ClobExchangePort`` in
``adapters.polymarket.clob_port``) only tells this actor ``Submit(commands)``. The gateway:

* **batches**: everything submitted before its ``Flush`` turn goes out together, cancels first
  (``Venue.cancel`` by venue id, ``Venue.cancel_market`` for ``CancelAll``), then places in batches
  of ``venue.max_batch`` (15 on Polymarket). Only post-only GTC/GTD orders are sent;
* **maps ids**: our client ids ↔ venue order ids (known before sending: the EIP-712 digest), and
  tells ``Accepted``/``Rejected``/``Canceled``/``Filled`` to the owning market actor via ``route``.
  Each order gets at most one terminal report (``Rejected``, ``Canceled`` or the last ``Filled``);
* **keeps the dead-man switch armed**: a heartbeat every ``heartbeat_interval_s``, each carrying the
  id the previous one returned. Heartbeats go through this actor's mailbox on purpose: if the
  gateway hangs or dies they stop, and the venue cancels every order (~10 s);
* **retries** on 429/425/5xx/no reply with exponential backoff (Retry-After respected): sending
  pauses and a scheduled ``Resume`` message ends the pause; nothing sleeps. A post whose outcome is
  unknown (no reply, 5xx) is resolved by a reconcile before it is sent again;
* **counts fills once** per (trade, order) from the user channel: the first status that is not
  FAILED is the fill, later statuses only move settlement; FAILED reverses a counted fill (logged);
* **reconciles** against the venue's open orders at start, periodically, after a user-channel
  reconnect and when a cancel is refused. Orders the venue no longer has are reported ``Canceled``
  (fills missed while the user channel was down are not recovered for those; matched size of
  orders still open is, as ``Filled``). Open orders in our markets that we do not know are
  **cancelled, not adopted**: a session only learns of orders it placed (``Place`` → ``Accepted``),
  so an adopted order would be exposure outside its inventory and caps. They are leftovers of an
  earlier run, or orders whose placement we reported ``Rejected`` after an unknown outcome;
* on stop, **cancels every order it placed** and checks that the venue no longer lists them.

Venue-neutral: the ``Venue`` protocol below takes and returns our Structs; the Polymarket
implementation (signing, the client, its errors) is ``adapters.polymarket.clob_port.PolymarketVenue``.
Time comes from the injected ``Clock``, timers from ``schedule(delay_s, fn)`` (tests fire them by
hand) and the shutdown's bounded waits from ``wait(delay_s)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, Protocol

import msgspec
import pykka

from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Cancel,
    CancelAll,
    Canceled,
    Command,
    ExecEvent,
    Filled,
    Liquidity,
    Place,
    Rejected,
    TickSizeChanged,
)
from core.ports import Clock
from core.units import NS_PER_S, PX_ONE, TICKS_PX, Outcome, Px, Qty, Side, format_qty, taker_fee_usdc6

log = logging.getLogger(__name__)

__all__ = [
    "AddMarket",
    "CancelResult",
    "Failure",
    "GatewayConfig",
    "GatewayStatus",
    "GetGatewayStatus",
    "OrderGatewayActor",
    "PlaceResult",
    "PreparedOrder",
    "Reconcile",
    "Route",
    "Schedule",
    "Shutdown",
    "ShutdownReport",
    "Submit",
    "UserFill",
    "UserOrderUpdate",
    "Venue",
    "VenueOrder",
]

#: Tell an execution report to the market actor of ``market`` (``Router.tell`` fits).
Route = Callable[[str, ExecEvent], object]
#: Run ``fn`` after ``delay_s`` seconds on some thread (``threading.Timer`` live, recorded in tests).
Schedule = Callable[[float, Callable[[], None]], None]

# Coarsest first (core.units.TICKS_PX): when a price is off the market's known tick, the coarsest
# finer tick it sits on.
_VENUE_TICKS_PX: Final = TICKS_PX


# --- the venue port --------------------------------------------------------------------------------


class PreparedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A signed order ready to post; ``order_id`` is the id the venue will give it ("" if unknown)."""

    client_id: str
    order_id: str
    payload: Any


class PlaceResult(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's answer for one posted order: accepted under ``order_id``, refused, or ``unknown``."""

    client_id: str
    order_id: str = ""
    error: str = ""
    unknown: bool = False


class CancelResult(msgspec.Struct, frozen=True, kw_only=True):
    """Venue ids cancelled, and ``(id, reason)`` of those the venue did not cancel."""

    canceled: tuple[str, ...] = ()
    not_canceled: tuple[tuple[str, str], ...] = ()


class VenueOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One open order as the venue lists it (``matched_qty`` is -1 when the venue's value was unusable)."""

    order_id: str
    market: str
    outcome: Outcome
    side: Side
    px: Px
    original_qty: Qty
    matched_qty: Qty
    trade_ids: tuple[str, ...] = ()


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """What a failed venue call means: retry it (after ``retry_after_s``)? might it have taken effect?"""

    reason: str
    retry: bool
    ambiguous: bool = False
    retry_after_s: float | None = None


class Venue(Protocol):
    """The blocking order API, called only from the gateway's thread."""

    #: Most orders per ``post`` call.
    max_batch: int
    #: Most ids per ``cancel`` call.
    max_cancel_batch: int

    def prepare(self, place: Place, info: MarketInfo, tick_px: Px) -> PreparedOrder:
        """Sign ``place`` locally (no network); raise to refuse it (the message is the reason)."""
        ...

    def post(self, orders: Sequence[PreparedOrder], post_only: bool) -> list[PlaceResult]:
        """Post one batch; one result per order, in order. Raises on a failed request."""
        ...

    def cancel(self, order_ids: Sequence[str]) -> CancelResult:
        """Cancel orders by venue id. Raises on a failed request."""
        ...

    def cancel_market(self, market: str) -> CancelResult:
        """Cancel every order of ours in ``market``. Raises on a failed request."""
        ...

    def heartbeat(self, heartbeat_id: str) -> str:
        """Send a heartbeat chained on ``heartbeat_id`` ("" first); return the next id."""
        ...

    def open_orders(self) -> list[VenueOrder]:
        """Every open order of ours in the markets we follow. Raises on a failed request."""
        ...

    def describe_failure(self, exc: Exception) -> Failure:
        """Classify an exception raised by the calls above."""
        ...


# --- messages --------------------------------------------------------------------------------------


class Submit(msgspec.Struct, frozen=True):
    """Commands from a market actor (told by ``ClobExchangePort.submit``)."""

    commands: tuple[Command, ...]


class AddMarket(msgspec.Struct, frozen=True):
    """Start trading ``info.market`` (its tokens, tick and neg-risk flag)."""

    info: MarketInfo


class UserFill(msgspec.Struct, frozen=True, kw_only=True):
    """One leg of a venue trade that may be ours, from the user channel.

    ``outcome/side/px`` are the leg's own token, side and price as the venue reports them.
    """

    trade_id: str
    status: str
    order_id: str
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    liquidity: Liquidity
    fee_rate_bps: int = 0


class UserOrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A user-channel order event: ``kind`` is PLACEMENT, UPDATE or CANCELLATION."""

    order_id: str
    kind: str
    status: str = ""
    matched_qty: Qty = 0


class Reconcile(msgspec.Struct, frozen=True):
    """Compare our orders with the venue's open orders now (e.g. the user channel reconnected)."""

    reason: str


class GetGatewayStatus(msgspec.Struct, frozen=True):
    """Control plane (ask): a status snapshot; also a barrier (pending work is flushed first)."""


class Shutdown(msgspec.Struct, frozen=True):
    """Control plane (ask): cancel every order placed and confirm; returns a ``ShutdownReport``."""


class ShutdownReport(msgspec.Struct, frozen=True, kw_only=True):
    """Orders cancelled at shutdown, venue ids still open when we gave up, and whether confirmed."""

    canceled: int
    remaining: tuple[str, ...]
    confirmed: bool


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
    reconciles: int
    unknown_cancelled: int
    retries: int
    paused: bool
    last_error: str


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Gateway timings and limits (seconds)."""

    #: The venue cancels everything ~10 s after a missed heartbeat once they started; None: never start.
    heartbeat_interval_s: float | None = 5.0
    #: Retry a failed heartbeat this soon (the switch fires at ~10 s).
    heartbeat_retry_s: float = 1.0
    #: Periodic reconcile against ``GET /data/orders``; None: only at start and on demand.
    reconcile_interval_s: float | None = 30.0
    #: Orders accepted this recently are not declared gone by a reconcile (the venue's list may lag).
    reconcile_grace_s: float = 2.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    #: Give up on a place (``Rejected``) after this many failed sends.
    max_place_attempts: int = 5
    shutdown_attempts: int = 5
    shutdown_backoff_s: float = 0.5
    #: Finished orders kept for late fills (the oldest are forgotten beyond this).
    max_closed: int = 100_000


class _Timer(msgspec.Struct, frozen=True):
    # Self-told: "flush", "heartbeat", "resume" or "reconcile" (periodic).
    what: str
    generation: int


_State = Literal["queued", "in_doubt", "live", "canceling", "closed"]


class _Order:
    # Our view of one order; owned by the gateway thread.
    __slots__ = (
        "accepted_ns",
        "attempts",
        "cancel_wanted",
        "counted",
        "filled_qty",
        "final_told",
        "place",
        "prepared",
        "seen",
        "state",
    )

    def __init__(self, place: Place) -> None:
        self.place = place
        self.state: _State = "queued"
        self.prepared: PreparedOrder | None = None
        self.attempts = 0
        self.filled_qty = 0
        self.counted: dict[str, int] = {}  # trade id → qty counted (-1: counted by a reconcile catch-up)
        self.final_told = False
        self.cancel_wanted = False
        self.seen = False  # the venue has shown it (reply, user channel or open-orders list)
        self.accepted_ns = 0

    @property
    def order_id(self) -> str:
        return self.prepared.order_id if self.prepared is not None else ""

    @property
    def leaves_qty(self) -> Qty:
        return max(self.place.qty - self.filled_qty, 0)


class OrderGatewayActor(pykka.ThreadingActor):
    """Owns the venue client; see the module docstring."""

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
    ) -> None:
        """Set up the gateway; no I/O here (pykka runs ``__init__`` on the caller's thread).

        Args:
            venue: The blocking order API; only this actor calls it.
            markets: Markets we trade (tokens, tick, neg-risk); more via ``AddMarket``.
            route: Where execution reports go (``Router.tell``).
            clock: Timestamps of execution reports.
            config: Timings and limits.
            schedule: Timer service; ``threading.Timer`` when None.
            wait: Blocking wait used only by the shutdown's retries; ``threading.Event().wait`` when None.
        """
        super().__init__()
        self.venue = venue
        self.route = route
        self.clock = clock
        self.cfg = config or GatewayConfig()
        self._schedule = schedule or _thread_timer
        self._wait = wait or threading.Event().wait
        self._markets: dict[str, MarketInfo] = {m.market: m for m in markets}
        self._ticks: dict[str, Px] = {m.market: m.tick_px for m in self._markets.values()}
        self._by_client: dict[str, _Order] = {}
        self._by_venue: dict[str, _Order] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._place_queue: list[_Order] = []
        self._cancel_queue: OrderedDict[str, _Order | None] = OrderedDict()
        self._market_cancels: list[str] = []
        self._flush_pending = False
        self._reconcile_reasons: list[str] = []
        self._paused = False
        self._failures = 0
        self._generation = 0
        self._stopping = False
        self._shutdown_report: ShutdownReport | None = None
        self._hb_id = ""
        self._tick_warned: set[str] = set()
        # Counters.
        self._n = dict.fromkeys(
            (
                "post_requests",
                "cancel_requests",
                "accepted",
                "rejects",
                "fills",
                "reversals",
                "heartbeats",
                "heartbeat_failures",
                "reconciles",
                "unknown_cancelled",
                "retries",
            ),
            0,
        )
        self._last_error = ""

    # --- lifecycle ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Reconcile with the venue first (leftover orders), then start the heartbeat and timers."""
        self._reconcile_reasons.append("startup")
        self._tell_self("reconcile_now")
        if self.cfg.heartbeat_interval_s is not None:
            self._tell_self("heartbeat")
        if self.cfg.reconcile_interval_s is not None:
            self._after(self.cfg.reconcile_interval_s, "reconcile")

    def on_stop(self) -> None:
        """Cancel everything we placed (if ``Shutdown`` was not asked already)."""
        if self._shutdown_report is None:
            self._shutdown()

    def on_failure(self, *_: object) -> None:
        """Best effort: pull every order; the venue's heartbeat switch is the backstop."""
        with contextlib.suppress(Exception):
            self._shutdown()

    # --- dispatch ----------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Commands and user events by ``tell``; status and shutdown by ``ask``."""
        match message:
            case Submit():
                self._on_submit(message.commands)
            case _Timer():
                self._on_timer(message)
            case UserFill():
                self._on_user_fill(message)
            case UserOrderUpdate():
                self._on_user_order(message)
            case Reconcile():
                self._request_reconcile(message.reason)
            case TickSizeChanged():
                if message.market in self._ticks:
                    self._ticks[message.market] = message.tick_px
            case AddMarket():
                self._markets[message.info.market] = message.info
                self._ticks[message.info.market] = message.info.tick_px
            case GetGatewayStatus():
                self._flush()
                return self._status()
            case Shutdown():
                return self._shutdown()
            case _:
                raise TypeError(f"gateway: unexpected message {type(message).__name__}")
        return None

    # --- commands ----------------------------------------------------------------------------------

    def _on_submit(self, commands: Sequence[Command]) -> None:
        for cmd in commands:
            match cmd:
                case Place():
                    self._on_place(cmd)
                case Cancel():
                    self._on_cancel(cmd)
                case CancelAll():
                    self._on_cancel_all(cmd.market)
        self._want_flush()

    def _on_place(self, place: Place) -> None:
        if self._stopping:
            self._reject_place(place, "gateway is stopping")
            return
        if place.client_id in self._by_client:
            self._reject_place(place, "duplicate client id")
            return
        if place.market not in self._markets:
            self._reject_place(place, "unknown market")
            return
        if not place.post_only or place.tif not in ("GTC", "GTD"):
            self._reject_place(place, "the live gateway sends post-only GTC/GTD orders only")
            return
        o = _Order(place)
        self._by_client[place.client_id] = o
        self._place_queue.append(o)

    def _on_cancel(self, cmd: Cancel) -> None:
        o = self._by_client.get(cmd.client_id)
        if o is None or o.state == "closed":
            log.debug("%s: cancel of unknown or finished order %s", cmd.market, cmd.client_id)
            return
        o.cancel_wanted = True
        if o.state == "queued":
            self._finish(o, "canceled before it was sent")
        elif o.order_id and o.state != "canceling":
            o.state = "canceling"
            self._cancel_queue[o.order_id] = o

    def _on_cancel_all(self, market: str) -> None:
        for o in list(self._by_client.values()):
            if o.place.market == market and o.state != "closed":
                o.cancel_wanted = True
                if o.state == "queued":
                    self._finish(o, "canceled before it was sent")
                else:
                    o.state = "canceling"
                    self._cancel_queue.pop(o.order_id, None)  # the market cancel covers it
        if market not in self._market_cancels:
            self._market_cancels.append(market)

    # --- sending -----------------------------------------------------------------------------------

    def _want_flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self._tell_self("flush")

    def _flush(self) -> None:
        self._flush_pending = False
        if self._paused or self._stopping:
            return
        if self._reconcile_reasons and not self._reconcile():
            return
        if self._send_market_cancels() and self._send_cancels():
            self._send_places()

    def _send_market_cancels(self) -> bool:
        while self._market_cancels:
            market = self._market_cancels[0]
            try:
                self._n["cancel_requests"] += 1
                result = self.venue.cancel_market(market)
            except Exception as exc:
                return self._on_request_failure(
                    exc, f"cancel market {market}", lambda: self._market_cancels.pop(0)
                )
            self._market_cancels.pop(0)
            self._ok()
            done = self._apply_cancel_result(result)
            for o in self._by_client.values():
                if o.place.market == market and o.state == "canceling" and o.order_id not in done:
                    self._request_reconcile(f"cancel of market {market} did not list {o.order_id}")
        return True

    def _send_cancels(self) -> bool:
        while self._cancel_queue:
            ids = list(self._cancel_queue)[: self.venue.max_cancel_batch]
            try:
                self._n["cancel_requests"] += 1
                result = self.venue.cancel(ids)
            except Exception as exc:
                return self._on_request_failure(exc, f"cancel {len(ids)} orders", self._dropper(ids))
            self._ok()
            for oid in ids:
                self._cancel_queue.pop(oid, None)
            done = self._apply_cancel_result(result)
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

    def _apply_cancel_result(self, result: CancelResult) -> set[str]:
        done = set(result.canceled)
        for oid in result.canceled:
            o = self._by_venue.get(oid)
            if o is None:
                log.info("venue cancelled order %s, which this gateway did not place", oid)
            else:
                self._finish(o, "canceled")
        return done

    def _send_places(self) -> None:
        ready: list[_Order] = []
        queue, self._place_queue = self._place_queue, []
        for o in queue:
            if o.state != "queued":
                continue
            if o.prepared is None and not self._prepare(o):
                continue
            ready.append(o)
        step = self.venue.max_batch
        for i in range(0, len(ready), step):
            batch = ready[i : i + step]
            try:
                self._n["post_requests"] += 1
                results = self.venue.post([o.prepared for o in batch if o.prepared is not None], True)
            except Exception as exc:
                self._place_queue = ready[i + step :] + self._place_queue
                self._on_post_failure(batch, exc)
                return
            self._ok()
            self._on_post_results(batch, results)

    def _prepare(self, o: _Order) -> bool:
        place = o.place
        info = self._markets[place.market]
        try:
            o.prepared = self.venue.prepare(place, info, self._tick_for(place))
        except Exception as exc:
            log.warning("%s: refused to send %s: %s", place.market, place.client_id, exc)
            self._finish(o, f"refused: {exc}", rejected=True)
            return False
        if o.order_id:
            self._by_venue[o.order_id] = o
        return True

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

    def _on_post_results(self, batch: Sequence[_Order], results: Sequence[PlaceResult]) -> None:
        by_client = {r.client_id: r for r in results}
        for o in batch:
            r = by_client.get(o.place.client_id)
            if r is None or r.unknown:
                o.state = "in_doubt"
                self._request_reconcile(f"no reply for {o.place.client_id}")
            elif r.error:
                self._finish(o, r.error, rejected=True)
            else:
                if r.order_id and o.prepared is not None and r.order_id != o.order_id:
                    log.warning("%s: venue id %s, expected %s", o.place.client_id, r.order_id, o.order_id)
                    self._by_venue.pop(o.order_id, None)
                    o.prepared = msgspec.structs.replace(o.prepared, order_id=r.order_id)
                    self._by_venue[r.order_id] = o
                self._mark_live(o)

    def _on_post_failure(self, batch: Sequence[_Order], exc: Exception) -> None:
        f = self.venue.describe_failure(exc)
        for o in batch:
            o.attempts += 1
        if not f.retry:
            log.warning("post of %d orders failed: %s", len(batch), f.reason)
            self._last_error = f.reason
            for o in batch:
                self._finish(o, f.reason, rejected=True)
            return
        if f.ambiguous:
            # The venue may have them: the reconcile decides (accept, or send again).
            for o in batch:
                o.state = "in_doubt"
            self._request_reconcile(f"post outcome unknown: {f.reason}")
        else:
            for o in reversed(batch):
                if o.attempts >= self.cfg.max_place_attempts:
                    self._finish(o, f"gave up after {o.attempts} attempts: {f.reason}", rejected=True)
                else:
                    self._place_queue.insert(0, o)
        self._pause(f, f"post {len(batch)} orders")

    def _on_request_failure(self, exc: Exception, what: str, drop: Callable[[], object]) -> bool:
        # Retryable: pause and keep the request queued. Otherwise drop it and let a reconcile say
        # what is still open (a cancel the venue refuses as sent would be refused again).
        f = self.venue.describe_failure(exc)
        if f.retry:
            self._pause(f, what)
            return False
        log.error("%s failed: %s", what, f.reason)
        self._last_error = f"{what}: {f.reason}"
        drop()
        self._request_reconcile(f"{what} failed")
        return True

    def _pause(self, f: Failure, what: str) -> None:
        self._failures += 1
        self._n["retries"] += 1
        self._last_error = f"{what}: {f.reason}"
        backoff = min(self.cfg.backoff_max_s, self.cfg.backoff_initial_s * 2 ** (self._failures - 1))
        delay = max(backoff, f.retry_after_s or 0.0)
        log.warning("%s failed (%s); pausing %.2f s", what, f.reason, delay)
        self._paused = True
        self._after(delay, "resume")

    def _ok(self) -> None:
        self._failures = 0

    # --- reconcile ---------------------------------------------------------------------------------

    def _request_reconcile(self, reason: str) -> None:
        if not self._reconcile_reasons:
            self._tell_self("reconcile_now")
        self._reconcile_reasons.append(reason)

    def _reconcile(self) -> bool:
        if self._paused or self._stopping:
            return False
        reasons = self._reconcile_reasons
        try:
            venue_orders = self.venue.open_orders()
        except Exception as exc:
            f = self.venue.describe_failure(exc)
            self._last_error = f"reconcile: {f.reason}"
            if f.retry:
                self._pause(f, "reconcile")
                return False
            log.error("reconcile failed: %s", f.reason)
            self._reconcile_reasons = []
            return True
        # A successful read does not reset the backoff: the venue may serve reads and refuse writes.
        self._reconcile_reasons = []
        self._n["reconciles"] += 1
        log.debug("reconcile (%s): the venue lists %d open orders", "; ".join(reasons[:3]), len(venue_orders))
        listed = {v.order_id: v for v in venue_orders}
        now = self.clock.now_ns()
        grace_ns = int(self.cfg.reconcile_grace_s * NS_PER_S)
        requeued = False
        for o in list(self._by_client.values()):
            if o.state == "closed" or not o.order_id:
                continue  # finished orders still listed are cancelled below, as unknown ones are
            v = listed.pop(o.order_id, None)
            if v is not None:
                self._reconcile_listed(o, v)
            elif o.state == "queued":
                continue  # waiting to be sent (again)
            elif o.state == "in_doubt":
                requeued |= self._resolve_missing_in_doubt(o)
            elif o.state == "canceling" or now - o.accepted_ns >= grace_ns:
                if o.state == "live":
                    log.warning(
                        "%s: order %s is no longer open on the venue; reporting it canceled"
                        " (a fill missed while the user channel was down would not be counted)",
                        o.place.market,
                        o.place.client_id,
                    )
                self._finish(o, "not open on the venue (reconcile)")
        for v in listed.values():
            self._on_unknown_order(v)
        if requeued or self._cancel_queue:
            self._want_flush()
        return True

    def _reconcile_listed(self, o: _Order, v: VenueOrder) -> None:
        o.seen = True
        if o.state in ("in_doubt", "queued"):
            if o.cancel_wanted:
                o.state = "canceling"
            else:
                self._mark_live(o)
        if o.state == "canceling" and o.order_id not in self._cancel_queue:
            self._cancel_queue[o.order_id] = o
        if v.matched_qty > o.filled_qty:
            # Fills we did not hear about (user channel down): report the difference once, and count
            # the venue's trade ids so their late user-channel messages are not counted again.
            missed = v.matched_qty - o.filled_qty
            for tid in v.trade_ids:
                o.counted.setdefault(tid, -1)
            log.warning(
                "%s: %s matched %s shares more than we heard; reporting it",
                o.place.market,
                o.order_id,
                format_qty(missed),
            )
            self._report_fill(o, f"reconcile:{o.order_id}:{v.matched_qty}", o.place.px, missed, "maker", 0)
        elif 0 <= v.matched_qty < o.filled_qty:
            log.warning(
                "%s: %s venue matched %s < our %s shares",
                o.place.market,
                o.order_id,
                format_qty(v.matched_qty),
                format_qty(o.filled_qty),
            )

    def _resolve_missing_in_doubt(self, o: _Order) -> bool:
        if o.cancel_wanted or o.seen or o.counted:
            self._finish(o, "not open on the venue (reconcile)")
            return False
        if o.attempts >= self.cfg.max_place_attempts:
            self._finish(o, f"gave up after {o.attempts} attempts (outcome unknown)", rejected=True)
            return False
        # Never reached the venue: send the same signed order again (same id, so never twice).
        o.state = "queued"
        self._place_queue.append(o)
        return True

    def _on_unknown_order(self, v: VenueOrder) -> None:
        if v.market not in self._markets or v.order_id in self._cancel_queue:
            return
        known = self._by_venue.get(v.order_id)
        why = "finished here" if known is not None else "not placed by this gateway"
        log.warning(
            "%s: cancelling open order %s (%s): no session accounts for it", v.market, v.order_id, why
        )
        self._n["unknown_cancelled"] += 1
        self._cancel_queue[v.order_id] = None

    # --- user channel ------------------------------------------------------------------------------

    def _on_user_fill(self, leg: UserFill) -> None:
        o = self._by_venue.get(leg.order_id)
        if o is None:
            return
        o.seen = True
        status = leg.status.upper()
        if status == "FAILED":
            self._on_failed_trade(o, leg)
            return
        if leg.trade_id in o.counted:
            return  # MINED/CONFIRMED/RETRYING of a fill already counted: settlement only
        if o.state in ("in_doubt", "queued"):
            self._mark_live(o)
        px = leg.px if leg.outcome is o.place.outcome else PX_ONE - leg.px
        if leg.side is not o.place.side and leg.outcome is o.place.outcome:
            log.warning(
                "%s: trade %s reports side %s for our %s order",
                o.place.market,
                leg.trade_id,
                leg.side,
                o.place.side,
            )
        fee = taker_fee_usdc6(px, leg.qty, leg.fee_rate_bps * 100) if leg.liquidity == "taker" else 0
        o.counted[leg.trade_id] = leg.qty
        self._report_fill(o, leg.trade_id, px, leg.qty, leg.liquidity, fee)

    def _report_fill(
        self, o: _Order, trade_id: str, px: Px, qty: Qty, liquidity: Liquidity, fee: int
    ) -> None:
        o.filled_qty += qty
        self._n["fills"] += 1
        ev = Filled(
            market=o.place.market,
            client_id=o.place.client_id,
            ts_ns=self.clock.now_ns(),
            outcome=o.place.outcome,
            side=o.place.side,
            px=px,
            qty=qty,
            fee_usdc6=fee,
            liquidity=liquidity,
            trade_id=trade_id,
            leaves_qty=o.leaves_qty,
        )
        self.route(o.place.market, ev)
        if o.leaves_qty == 0 and o.state != "closed":
            o.final_told = True  # the last fill is the terminal report
            self._close(o, None)

    def _on_failed_trade(self, o: _Order, leg: UserFill) -> None:
        counted = o.counted.pop(leg.trade_id, None)
        if counted is None:
            log.info("%s: trade %s FAILED before we counted it", o.place.market, leg.trade_id)
            return
        qty = leg.qty if counted < 0 else counted
        log.warning(
            "%s: trade %s FAILED on chain; reversing its fill of %s shares on %s",
            o.place.market,
            leg.trade_id,
            format_qty(qty),
            o.place.client_id,
        )
        o.filled_qty -= qty
        self._n["reversals"] += 1
        reversal = Filled(
            market=o.place.market,
            client_id=o.place.client_id,
            ts_ns=self.clock.now_ns(),
            outcome=o.place.outcome,
            side=Side(-o.place.side),
            px=o.place.px,
            qty=qty,
            fee_usdc6=0,
            liquidity="maker",
            trade_id=f"{leg.trade_id}:failed",
            leaves_qty=o.leaves_qty,
        )
        self.route(o.place.market, reversal)
        self._request_reconcile(f"trade {leg.trade_id} failed")

    def _on_user_order(self, ev: UserOrderUpdate) -> None:
        o = self._by_venue.get(ev.order_id)
        if o is None:
            return
        o.seen = True
        kind = ev.kind.upper()
        if kind == "CANCELLATION":
            if o.state != "closed":
                self._finish(o, f"venue: {ev.status or 'canceled'}")
        elif o.state in ("in_doubt", "queued"):
            self._mark_live(o)

    # --- reporting ---------------------------------------------------------------------------------

    def _mark_live(self, o: _Order) -> None:
        o.seen = True
        o.accepted_ns = self.clock.now_ns()
        if o.cancel_wanted:
            o.state = "canceling"
            self._cancel_queue[o.order_id] = o
            self._want_flush()
        else:
            o.state = "live"
        self._n["accepted"] += 1
        self.route(
            o.place.market,
            Accepted(
                market=o.place.market, client_id=o.place.client_id, order_id=o.order_id, ts_ns=o.accepted_ns
            ),
        )

    def _finish(self, o: _Order, reason: str, *, rejected: bool = False) -> None:
        ts = self.clock.now_ns()
        p = o.place
        if rejected:
            self._n["rejects"] += 1
            ev: ExecEvent = Rejected(market=p.market, client_id=p.client_id, ts_ns=ts, reason=reason)
        else:
            ev = Canceled(market=p.market, client_id=p.client_id, ts_ns=ts, reason=reason)
        self._close(o, ev)

    def _close(self, o: _Order, ev: ExecEvent | None) -> None:
        o.state = "closed"
        self._cancel_queue.pop(o.order_id, None)
        if ev is not None and not o.final_told:
            o.final_told = True
            self.route(o.place.market, ev)
        cid = o.place.client_id
        self._closed[cid] = None
        while len(self._closed) > self.cfg.max_closed:
            old, _ = self._closed.popitem(last=False)
            gone = self._by_client.pop(old, None)
            if gone is not None:
                self._by_venue.pop(gone.order_id, None)

    def _reject_place(self, place: Place, reason: str) -> None:
        self._n["rejects"] += 1
        log.warning("%s: rejected %s: %s", place.market, place.client_id, reason)
        self.route(
            place.market,
            Rejected(
                market=place.market, client_id=place.client_id, ts_ns=self.clock.now_ns(), reason=reason
            ),
        )

    def _status(self) -> GatewayStatus:
        states = [o.state for o in self._by_client.values()]
        return GatewayStatus(
            open_orders=sum(1 for s in states if s in ("live", "canceling")),
            queued=sum(1 for s in states if s == "queued"),
            in_doubt=sum(1 for s in states if s == "in_doubt"),
            heartbeat_id=self._hb_id,
            paused=self._paused,
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
            case "heartbeat":
                self._heartbeat()
            case "resume":
                self._paused = False
                self._flush()
            case "reconcile":
                self._request_reconcile("periodic")
                if self.cfg.reconcile_interval_s is not None:
                    self._after(self.cfg.reconcile_interval_s, "reconcile")
            case "reconcile_now":
                self._flush()
            case _:
                raise AssertionError(f"unknown timer {t.what!r}")

    def _heartbeat(self) -> None:
        interval = self.cfg.heartbeat_interval_s
        if interval is None:
            return
        try:
            self._hb_id = self.venue.heartbeat(self._hb_id)
            self._n["heartbeats"] += 1
            delay = interval
        except Exception as exc:
            f = self.venue.describe_failure(exc)
            self._n["heartbeat_failures"] += 1
            self._last_error = f"heartbeat: {f.reason}"
            log.warning("heartbeat failed: %s", f.reason)
            delay = min(self.cfg.heartbeat_retry_s, interval)
        self._after(delay, "heartbeat")

    # --- shutdown ----------------------------------------------------------------------------------

    def _shutdown(self) -> ShutdownReport:
        if self._shutdown_report is not None:
            return self._shutdown_report
        self._stopping = True
        self._generation += 1  # timers already scheduled are ignored from now on
        for o in self._place_queue:
            if o.state == "queued":
                self._finish(o, "gateway stopped before sending")
        self._place_queue = []
        targets = {o.order_id: o for o in self._by_client.values() if o.order_id and o.state != "queued"}
        targets = {oid: o for oid, o in targets.items() if o.state != "closed"}
        canceled = 0
        confirmed = False
        for attempt in range(self.cfg.shutdown_attempts):
            ids = list(targets)
            for i in range(0, len(ids), self.venue.max_cancel_batch):
                chunk = ids[i : i + self.venue.max_cancel_batch]
                try:
                    self._n["cancel_requests"] += 1
                    result = self.venue.cancel(chunk)
                except Exception as exc:
                    log.warning("shutdown: cancel failed: %s", self.venue.describe_failure(exc).reason)
                    continue
                for oid in result.canceled:
                    if oid in targets:
                        canceled += 1
                        self._finish(targets.pop(oid), "gateway shutdown")
            try:
                open_ids = {v.order_id for v in self.venue.open_orders()}
            except Exception as exc:
                log.warning(
                    "shutdown: listing open orders failed: %s", self.venue.describe_failure(exc).reason
                )
                self._wait(self.cfg.shutdown_backoff_s * 2**attempt)
                continue
            for oid in list(targets):
                if oid not in open_ids:
                    self._finish(targets.pop(oid), "gateway shutdown (not open on the venue)")
            for oid in open_ids:
                mine = self._by_venue.get(oid)
                if mine is not None and oid not in targets:
                    targets[oid] = mine  # ours, finished here but still open there: cancel it too
            if not targets:
                confirmed = True
                break
            self._wait(self.cfg.shutdown_backoff_s * 2**attempt)
        if not confirmed:
            log.error("shutdown: %d orders may still be open: %s", len(targets), sorted(targets)[:10])
        else:
            log.info("shutdown: cancelled %d orders; the venue lists none of ours", canceled)
        self._shutdown_report = ShutdownReport(
            canceled=canceled, remaining=tuple(sorted(targets)), confirmed=confirmed
        )
        return self._shutdown_report


def _thread_timer(delay_s: float, fn: Callable[[], None]) -> None:
    t = threading.Timer(max(delay_s, 0.0), fn)
    t.daemon = True
    t.start()
