"""Ports: the interfaces the actors drive, each with a simulated and a live implementation.

Protocols (``typing.Protocol``) and the Structs they take and return, never client objects or dicts.
``ExchangePort``, ``Clock`` and ``EventSink`` are a market session's; ``Venue`` is the order
gateway's blocking order API (``adapters.polymarket.clob_port.PolymarketVenue`` live, fakes in
tests), with its results (``PreparedOrder``, ``PlaceResult``, ``CancelResult``, ``VenueOrderStatus``,
``RateLimitInfo``, ``Failure``). Adapters implement these without importing ``actors``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from core.ledger import VenueOrderView, VenuePosition, VenueTrade
from core.markets import MarketInfo
from core.messages import Command, Place
from core.units import Px, Qty


class ExchangePort(Protocol):
    """Where a market session sends its commands (simulator, paper engine or the live gateway).

    Execution reports come back asynchronously as ``ExecEvent`` messages to the session's owner.
    """

    def submit(self, commands: Sequence[Command]) -> None:
        """Hand over commands in order; never blocks on the network."""
        ...

    def cancel_all(self, market: str) -> None:
        """Best-effort cancel of every order of ours in ``market`` (used when an actor fails)."""
        ...


class Clock(Protocol):
    """Time source: simulated in the simulator, the wall clock live."""

    def now_ns(self) -> int:
        """Current time in ns since the epoch."""
        ...


class EventSink(Protocol):
    """Where sessions record what happened (events.jsonl in simulation, the log live)."""

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        """Record one event; ``payload`` is a msgspec-encodable value."""
        ...


#: Tell a message (an execution report, ``HoldQuotes``/``ReleaseQuotes``) to the actor of ``market``.
Route = Callable[[str, object], object]
#: Run ``fn`` after ``delay_s`` seconds on some thread (``threading.Timer`` live, recorded in tests).
Schedule = Callable[[float, Callable[[], None]], None]


# --- the order gateway's venue port ----------------------------------------------------------------


class PreparedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A signed order ready to post; ``order_id`` is the id the venue will give it ("" if unknown)."""

    client_id: str
    order_id: str
    payload: Any


class PlaceResult(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's answer for one posted order: accepted under ``order_id``, refused, or ``unknown``.

    ``status`` is the venue's for an accepted order: ``live``, ``matched``, ``delayed`` or ``unmatched``.
    """

    client_id: str
    order_id: str = ""
    error: str = ""
    unknown: bool = False
    status: str = "live"


class CancelResult(msgspec.Struct, frozen=True, kw_only=True):
    """Venue ids cancelled, and ``(id, reason)`` of those the venue did not cancel."""

    canceled: tuple[str, ...] = ()
    not_canceled: tuple[tuple[str, str], ...] = ()


class VenueOrderStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One order looked up by id (``GET /data/order/{id}``): its venue status (``LIVE``, ``MATCHED``...)."""

    order_id: str
    status: str


class RateLimitInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A reply's ``Poly-RateLimit-*`` headers (``remaining`` tokens, ``reset`` unix s, ``tier``)."""

    remaining: int | None = None
    reset_s: float | None = None
    tier: str = ""
    warning: bool = False


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """What a failed venue call means: retry it (after ``retry_after_s``)? might it have taken effect?

    ``rate_limited``: a 429 (``ambiguous`` too when it came without the venue's rate-limit headers,
    i.e. from a CDN, so whether the request arrived is unknown). ``not_found``: a 404.
    """

    reason: str
    retry: bool
    ambiguous: bool = False
    retry_after_s: float | None = None
    rate_limited: bool = False
    not_found: bool = False


class Venue(Protocol):
    """The blocking order API. Called from the gateway's thread; ``heartbeat`` from the heartbeat's,
    ``positions`` and ``merge`` from threads of their own."""

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
        """Send a heartbeat chained on ``heartbeat_id`` ("" first); return the next id.

        A stale id is resynced from the id the venue's refusal names (one more call).
        """
        ...

    def open_orders(self) -> list[VenueOrderView]:
        """Every open order of ours, on any market (a market we do not trade keeps its condition id)."""
        ...

    def trades(self, after_ns: int) -> list[VenueTrade]:
        """Our trades matched at or after ``after_ns`` (venue time), each with its latest status."""
        ...

    def order(self, order_id: str) -> VenueOrderStatus | None:
        """One order of ours by venue id, whatever its status; None when the venue never had it."""
        ...

    def positions(self) -> list[VenuePosition] | None:
        """Every position of ours in the markets we trade; None when the venue offers no listing."""
        ...

    def rate_limit(self) -> RateLimitInfo | None:
        """The rate-limit headers of the last reply on this thread (then forgotten); None if none."""
        ...

    def merge(self, info: MarketInfo, qty: Qty) -> str:
        """Merge ``qty`` YES+NO pairs of ``info`` into collateral; blocks until confirmed.

        Returns the transaction hash. Raises on a refusal or a revert; ``describe_failure`` says
        ``ambiguous`` when the transaction may have been sent without a receipt seen.
        """
        ...

    def describe_failure(self, exc: Exception) -> Failure:
        """Classify an exception raised by the calls above."""
        ...
