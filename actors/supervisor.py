"""Restart failed market actors: pykka actors cannot be restarted, so a new one is started.

The factory builds the new ``MarketSession`` (the composition root carries the failed session's
inventory over and gives the new one fresh client ids). Restarts back off exponentially per market;
the other markets are untouched. Messages for a market whose actor is down are kept (bounded) and
handed to the new actor in order, so no execution report is lost; its book waits for a snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pykka

from actors.loop import ActorLoop
from actors.market import (
    HoldQuotes,
    LoopMarketActor,
    MarketActor,
    MarketActorDied,
    PullQuotes,
    ReleaseQuotes,
)
from actors.session import MarketSession
from core.messages import (
    Accepted,
    Adopted,
    Canceled,
    ExecBatch,
    Filled,
    Merged,
    MergeFailed,
    PositionResync,
    Rejected,
)

log = logging.getLogger(__name__)

SessionFactory = Callable[[str], MarketSession]


class Restart(msgspec.Struct, frozen=True):
    """Start a new actor for ``market`` (sent to itself after the backoff)."""

    market: str


class StartMarket(msgspec.Struct, frozen=True):
    """Control plane: start the actor of ``market`` (ask; returns its ref)."""

    market: str


class GetRestarts(msgspec.Struct, frozen=True):
    """Control plane: ask how many times each market was restarted (also a barrier in tests)."""


class _Pending:
    """What arrived for a market while it was down: reports are never evicted, market data is."""

    __slots__ = ("data", "reports")

    def __init__(self, max_data: int) -> None:
        self.reports: deque[object] = deque()
        self.data: deque[object] = deque(maxlen=max_data)


def _is_report(message: object) -> bool:
    # Execution reports change inventory: they must reach the next actor. Market data does not: the
    # new session waits for a fresh snapshot anyway.
    return isinstance(
        message,
        (
            Accepted,
            Rejected,
            Filled,
            Canceled,
            Adopted,
            PositionResync,
            Merged,
            MergeFailed,
            ExecBatch,
            HoldQuotes,
            ReleaseQuotes,
        ),
    )


class Router:
    """Thread-safe market → current actor lookup for feeds and gateways (tell only, never blocks).

    While a market restarts, its messages are kept: every execution report, and the latest market
    data up to ``MAX_DATA``; the new actor gets the reports first, then the data, in arrival order.
    """

    MAX_DATA = 10_000

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._down: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self.dropped = 0

    def set(self, market: str, ref: pykka.ActorRef[Any] | None) -> None:
        """Point ``market`` at a new actor (after handing it what arrived meanwhile), or mark it down."""
        with self._lock:
            if ref is None:
                self._refs.pop(market, None)
                self._down.setdefault(market, _Pending(self.MAX_DATA))
                return
            pending = self._down.get(market)
            if pending is not None:
                # Replay before publishing the ref, so nothing new overtakes what was kept; if the
                # new actor dies on the way, the rest stays kept for the next one.
                for queue in (pending.reports, pending.data):
                    while queue:
                        try:
                            ref.tell(queue[0])
                        except pykka.ActorDeadError:
                            return
                        queue.popleft()
                del self._down[market]
            self._refs[market] = ref

    def requeue(self, market: str, messages: Sequence[object]) -> None:
        """Put messages a failed actor never handled back in front of what is kept for ``market``."""
        with self._lock:
            pending = self._down.setdefault(market, _Pending(self.MAX_DATA))
            for message in reversed(messages):
                (pending.reports if _is_report(message) else pending.data).appendleft(message)

    def get(self, market: str) -> pykka.ActorRef[Any] | None:
        """The current actor of ``market``, if any."""
        return self._refs.get(market)

    def markets(self) -> list[str]:
        """Markets that currently have an actor."""
        return sorted(self._refs)

    def tell(self, market: str, message: object) -> bool:
        """Tell the market's actor; while it restarts, keep the message for the next one (False)."""
        ref = self._refs.get(market)
        if ref is not None:
            try:
                ref.tell(message)
            except pykka.ActorDeadError:
                pass  # died a moment ago; the supervisor marks it down and restarts it
            else:
                return True
        with self._lock:
            ref = self._refs.get(market)
            if ref is not None:
                try:
                    ref.tell(message)
                except pykka.ActorDeadError:
                    pass
                else:
                    return True
            pending = self._down.setdefault(market, _Pending(self.MAX_DATA))
            if _is_report(message):
                pending.reports.append(message)
            else:
                if len(pending.data) == pending.data.maxlen:
                    self.dropped += 1
                pending.data.append(message)
            return False


class Supervisor(pykka.ThreadingActor):
    """Owns the market actors: starts them, restarts them after failures, stops them."""

    def __init__(
        self,
        factory: SessionFactory,
        router: Router,
        *,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        schedule: Callable[[float, Callable[[], None]], None] | None = None,
        actor_loop: ActorLoop | None = None,
    ) -> None:
        """``actor_loop``: run the market actors on this loop (live trading), else a thread each."""
        super().__init__()
        self.actor_loop = actor_loop
        self.factory = factory
        self.router = router
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.schedule = schedule or _timer
        self.restarts: dict[str, int] = {}

    def on_receive(self, message: Any) -> Any:
        """Handle start, death and restart messages."""
        if isinstance(message, StartMarket):
            return self._start(message.market)
        if isinstance(message, MarketActorDied):
            n = self.restarts.get(message.market, 0)
            self.restarts[message.market] = n + 1
            self.router.set(message.market, None)
            self.router.requeue(message.market, message.pending)
            delay = min(self.max_backoff_s, self.backoff_s * (2**n))
            log.error(
                "%s: market actor died (%s); restarting in %.1f s", message.market, message.reason, delay
            )
            me = self.actor_ref
            self.schedule(delay, lambda: _tell_quietly(me, Restart(message.market)))
            return None
        if isinstance(message, Restart):
            self._start(message.market)
            return None
        if isinstance(message, GetRestarts):
            return dict(self.restarts)
        raise TypeError(f"supervisor: unexpected message {type(message).__name__}")

    def _start(self, market: str) -> pykka.ActorRef[Any]:
        session = self.factory(market)
        ref: pykka.ActorRef[Any]
        if self.actor_loop is not None:
            ref = LoopMarketActor.start(session, supervisor=self.actor_ref, actor_loop=self.actor_loop)
        else:
            ref = MarketActor.start(session, supervisor=self.actor_ref)
        self.router.set(market, ref)
        return ref

    def on_stop(self) -> None:
        """Stop every market actor (they pull their quotes first)."""
        for market in self.router.markets():
            ref = self.router.get(market)
            if ref is None:
                continue
            try:
                ref.ask(PullQuotes(ts_ns=0, reason="shutdown"), timeout=5)
                ref.stop(timeout=5)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("%s: actor did not stop cleanly", market)
            self.router.set(market, None)


def _timer(delay: float, fn: Callable[[], None]) -> None:
    if delay <= 0:
        fn()
        return
    t = threading.Timer(delay, fn)
    t.daemon = True
    t.start()


def _tell_quietly(ref: pykka.ActorRef[Any], msg: object) -> None:
    with contextlib.suppress(pykka.ActorDeadError):  # the supervisor itself is stopping
        ref.tell(msg)
