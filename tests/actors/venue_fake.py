"""A naive venue model implementing the gateway's ``Venue`` protocol, plus the rig that drives a gateway.

The venue keeps our orders (open, matched), our trades (latest status) and what we held before the
run; positions are what we held plus every trade leg that did not fail. Failures are scripted per
method (``fail_next``): the exception carries the ``Failure`` the gateway will read, and may say the
request took effect anyway (a lost reply). Timers are recorded and fired by the test; the clock is
moved by hand.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from actors.gateway import (
    CancelResult,
    Failure,
    GatewayConfig,
    GetGatewayStatus,
    OrderGatewayActor,
    PlaceResult,
    PreparedOrder,
    RateLimitInfo,
    VenueOrderStatus,
)
from core.ledger import TradeLeg, VenueOrderView, VenuePosition, VenueTrade
from core.markets import MarketInfo
from core.messages import Place
from core.units import NS_PER_S, Outcome, Px, Side
from tests.fakes import ListSink

T0 = 1_800_000_000 * NS_PER_S


class Fault(Exception):
    """A scripted failure: the gateway reads ``failure`` through ``describe_failure``."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def fault(
    reason: str = "boom",
    *,
    retry: bool = True,
    ambiguous: bool = False,
    retry_after_s: float | None = None,
    rate_limited: bool = False,
) -> Fault:
    return Fault(
        Failure(
            reason=reason,
            retry=retry,
            ambiguous=ambiguous,
            retry_after_s=retry_after_s,
            rate_limited=rate_limited,
        )
    )


@dataclasses.dataclass
class VOrder:
    order_id: str
    place: Place
    matched: int = 0
    open: bool = True
    status: str = "LIVE"


class MutableClock:
    def __init__(self, t: int = T0) -> None:
        self.t = t
        self.lock = threading.Lock()

    def now_ns(self) -> int:
        with self.lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.t += int(seconds * NS_PER_S)


class FakeVenue:
    """See the module docstring."""

    max_batch = 15
    max_cancel_batch = 1000

    def __init__(self, clock: MutableClock) -> None:
        self.clock = clock
        self.orders: dict[str, VOrder] = {}
        self.trade_log: dict[str, VenueTrade] = {}
        self.failed: set[str] = set()
        self.held: dict[tuple[str, Outcome], int] = defaultdict(int)  # before the run
        self.has_positions = True
        self.calls: list[tuple[str, Any]] = []
        self.failures: dict[str, list[tuple[Fault, bool]]] = defaultdict(list)
        self.replies: list[PlaceResult | None] = []  # scripted per posted order (None: accept)
        self.rate_infos: list[RateLimitInfo] = []
        self.post_status = "live"
        self.hb = 0
        self.seq = 0
        self.lock = threading.Lock()
        #: Called (outside the venue's lock) before a positions listing is taken, and after it was
        #: taken but before it is returned: a slow read, or a fill racing the reply.
        self.before_positions: Callable[[], None] | None = None
        self.after_positions: Callable[[], None] | None = None

    # --- scripting -----------------------------------------------------------------------------------

    def fail_next(self, method: str, f: Fault, *, applied: bool = False) -> None:
        self.failures[method].append((f, applied))

    def called(self, method: str) -> list[Any]:
        return [a for m, a in self.calls if m == method]

    def _run(self, method: str, args: Any, effect: Callable[[], Any]) -> Any:
        with self.lock:
            self.calls.append((method, args))
            if self.failures[method]:
                f, applied = self.failures[method].pop(0)
                if applied:
                    effect()
                raise f
            return effect()

    def add_open(self, order_id: str, place: Place, matched: int = 0) -> None:
        """An order of ours the venue already has (an earlier run's)."""
        self.orders[order_id] = VOrder(order_id, place, matched)

    def fill(
        self, order_id: str, qty: int, *, status: str = "MATCHED", liquidity: str = "maker"
    ) -> VenueTrade:
        """The venue matches ``qty`` of one of our orders (nobody tells the gateway)."""
        with self.lock:
            o = self.orders[order_id]
            o.matched += qty
            if o.matched >= o.place.qty:
                o.open = False
                o.status = "MATCHED"
            self.seq += 1
            p = o.place
            t = VenueTrade(
                trade_id=f"t{self.seq}",
                market=p.market,
                status=status,
                ts_ns=self.clock.now_ns(),
                legs=(
                    TradeLeg(
                        order_id=order_id,
                        outcome=p.outcome,
                        side=p.side,
                        px=p.px,
                        qty=qty,
                        liquidity=liquidity,  # type: ignore[arg-type]
                    ),
                ),
            )
            self.trade_log[t.trade_id] = t
            return t

    def set_status(self, trade_id: str, status: str) -> VenueTrade:
        with self.lock:
            t = self.trade_log[trade_id]
            new = VenueTrade(trade_id=t.trade_id, market=t.market, status=status, ts_ns=t.ts_ns, legs=t.legs)
            self.trade_log[trade_id] = new
            if status == "FAILED":
                self.failed.add(trade_id)
                for leg in t.legs:
                    self.orders[leg.order_id].matched -= leg.qty
            return new

    def cancel_quietly(self, order_id: str) -> None:
        with self.lock:
            self.orders[order_id].open = False
            self.orders[order_id].status = "CANCELED"

    def position(self, market: str, outcome: Outcome) -> int:
        total = self.held[(market, outcome)]
        for t in self.trade_log.values():
            if t.trade_id in self.failed:
                continue
            for leg in t.legs:
                o = self.orders.get(leg.order_id)
                if o is not None and o.place.market == market and leg.outcome is outcome:
                    total += leg.side * leg.qty
        return total

    def open_ids(self) -> set[str]:
        return {oid for oid, o in self.orders.items() if o.open}

    # --- the Venue protocol --------------------------------------------------------------------------

    def prepare(self, place: Place, info: MarketInfo, tick_px: Px) -> PreparedOrder:
        if place.px % tick_px:
            raise ValueError(f"price {place.px} off tick {tick_px}")
        return PreparedOrder(client_id=place.client_id, order_id=f"0x{place.client_id}", payload=place)

    def post(self, orders: Sequence[PreparedOrder], post_only: bool) -> list[PlaceResult]:
        def effect() -> list[PlaceResult]:
            out = []
            for p in orders:
                scripted = self.replies.pop(0) if self.replies else None
                if scripted is not None:
                    out.append(msgspec.structs.replace(scripted, client_id=p.client_id))
                    if not scripted.error and not scripted.unknown:
                        self.orders[p.order_id] = VOrder(p.order_id, p.payload)
                    continue
                assert p.order_id not in self.orders, "the same order posted twice"
                self.orders[p.order_id] = VOrder(p.order_id, p.payload)
                out.append(PlaceResult(client_id=p.client_id, order_id=p.order_id, status=self.post_status))
            return out

        return self._run("post", [p.client_id for p in orders], effect)  # type: ignore[no-any-return]

    def cancel(self, order_ids: Sequence[str]) -> CancelResult:
        def effect() -> CancelResult:
            done = []
            for oid in order_ids:
                o = self.orders.get(oid)
                if o is not None and o.open:
                    o.open, o.status = False, "CANCELED"
                    done.append(oid)
            return CancelResult(
                canceled=tuple(done),
                not_canceled=tuple((i, "order not found") for i in order_ids if i not in done),
            )

        return self._run("cancel", list(order_ids), effect)  # type: ignore[no-any-return]

    def cancel_market(self, market: str) -> CancelResult:
        def effect() -> CancelResult:
            done = [oid for oid, o in self.orders.items() if o.open and o.place.market == market]
            for oid in done:
                self.orders[oid].open, self.orders[oid].status = False, "CANCELED"
            return CancelResult(canceled=tuple(done))

        return self._run("cancel_market", market, effect)  # type: ignore[no-any-return]

    def heartbeat(self, heartbeat_id: str) -> str:
        def effect() -> str:
            self.hb += 1
            return f"hb-{self.hb}"

        return self._run("heartbeat", heartbeat_id, effect)  # type: ignore[no-any-return]

    def open_orders(self) -> list[VenueOrderView]:
        def effect() -> list[VenueOrderView]:
            return [
                VenueOrderView(
                    order_id=o.order_id,
                    market=o.place.market,
                    outcome=o.place.outcome,
                    side=o.place.side,
                    px=o.place.px,
                    original_qty=o.place.qty,
                    matched_qty=o.matched,
                )
                for o in self.orders.values()
                if o.open
            ]

        return self._run("open_orders", None, effect)  # type: ignore[no-any-return]

    def trades(self, after_ns: int) -> list[VenueTrade]:
        return self._run(  # type: ignore[no-any-return]
            "trades", after_ns, lambda: [t for t in self.trade_log.values() if t.ts_ns >= after_ns]
        )

    def order(self, order_id: str) -> VenueOrderStatus | None:
        def effect() -> VenueOrderStatus | None:
            o = self.orders.get(order_id)
            return None if o is None else VenueOrderStatus(order_id=order_id, status=o.status)

        return self._run("order", order_id, effect)  # type: ignore[no-any-return]

    def positions(self) -> list[VenuePosition] | None:
        if self.before_positions is not None:
            self.before_positions()
        listed = self._positions()
        if self.after_positions is not None:
            self.after_positions()
        return listed

    def _positions(self) -> list[VenuePosition] | None:
        def effect() -> list[VenuePosition] | None:
            if not self.has_positions:
                return None
            markets = {m for m, _ in self.held} | {o.place.market for o in self.orders.values()}
            out = []
            for m in sorted(markets):
                for outcome in Outcome:
                    qty = self.position(m, outcome)
                    if qty:
                        out.append(VenuePosition(market=m, outcome=outcome, qty=qty, avg_px=5000))
            return out

        return self._run("positions", None, effect)  # type: ignore[no-any-return]

    def merge(self, info: MarketInfo, qty: int) -> str:
        def effect() -> str:
            for outcome in Outcome:
                if self.position(info.market, outcome) < qty:
                    raise Fault(Failure(reason="execution reverted", retry=False))
            for outcome in Outcome:
                self.held[(info.market, outcome)] -= qty
            self.seq += 1
            return f"0xtx{self.seq}"

        return self._run("merge", (info.market, qty), effect)  # type: ignore[no-any-return]

    def rate_limit(self) -> RateLimitInfo | None:
        return self.rate_infos.pop(0) if self.rate_infos else None

    def describe_failure(self, exc: Exception) -> Failure:
        if isinstance(exc, Fault):
            return exc.failure
        return Failure(reason=f"{type(exc).__name__}: {exc}", retry=False)


class Routed:
    """The route callable: records (market, message)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, market: str, ev: Any) -> None:
        with self.lock:
            self.events.append((market, ev))

    def of(self, kind: type, market: str | None = None) -> list[Any]:
        with self.lock:
            return [ev for m, ev in self.events if isinstance(ev, kind) and (market is None or m == market)]


class ManualSchedule:
    """Timers recorded, fired by the test."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None]]] = []
        self.lock = threading.Lock()

    def __call__(self, delay_s: float, fn: Callable[[], None]) -> None:
        with self.lock:
            self.pending.append((delay_s, fn))

    def delays(self) -> list[float]:
        with self.lock:
            return [d for d, _ in self.pending]

    def fire_all(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, []
        for _, fn in pending:
            fn()


class ManualWorkers:
    """Work the gateway runs off its thread (the position read), run by the test when it says."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []
        self.lock = threading.Lock()

    def __call__(self, fn: Callable[[], None]) -> None:
        with self.lock:
            self.pending.append(fn)

    def run_all(self) -> int:
        with self.lock:
            pending, self.pending = self.pending, []
        for fn in pending:
            fn()
        return len(pending)


@dataclasses.dataclass
class Rig:
    venue: FakeVenue
    clock: MutableClock
    routed: Routed
    schedule: ManualSchedule
    sink: ListSink
    ref: Any
    waits: list[float]
    workers: ManualWorkers | None = None

    def sync(self) -> Any:
        return self.ref.ask(GetGatewayStatus(), timeout=5)

    def tell(self, msg: Any) -> Any:
        self.ref.tell(msg)
        return self.sync()

    def advance(self, seconds: float) -> Any:
        """Move the clock, fire every timer, run the reads they started, and wait for the gateway."""
        self.clock.advance(seconds)
        self.schedule.fire_all()
        status = self.sync()
        if self.workers is not None and self.workers.run_all():
            status = self.sync()
        return status


def make_rig(
    markets: Sequence[MarketInfo],
    venue: FakeVenue | None = None,
    *,
    threads: bool = False,
    **cfg: Any,
) -> Rig:
    """A gateway over ``venue``; its position reads run by hand (``Rig.advance``), or on real
    threads with ``threads``."""
    clock = venue.clock if venue is not None else MutableClock()
    venue = venue or FakeVenue(clock)
    routed, schedule, sink, waits = Routed(), ManualSchedule(), ListSink(), []
    workers = None if threads else ManualWorkers()
    config = GatewayConfig(**{"heartbeat_interval_s": None, "reconcile_interval_s": None, **cfg})
    ref = OrderGatewayActor.start(
        venue,
        list(markets),
        routed,
        clock,
        config=config,
        schedule=schedule,
        wait=waits.append,
        sink=sink,
        spawn=workers,
    )
    return Rig(venue, clock, routed, schedule, sink, ref, waits, workers)


def place(
    market: MarketInfo,
    cid: str,
    *,
    px: int = 4000,
    qty: int = 10_000_000,
    side: Side = Side.BUY,
    outcome: Outcome = Outcome.YES,
) -> Place:
    return Place(market=market.market, client_id=cid, outcome=outcome, side=side, px=px, qty=qty)
