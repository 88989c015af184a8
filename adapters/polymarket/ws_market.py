"""Polymarket market-channel WebSocket client: books, deltas and trades as ``MarketEvent``s.

The client subscribes to every token of an ``AssetMap``, keeps the books with ``BookFeed`` (venue
epoch rules) and hands each event to ``on_event`` on its own event-loop thread. The market actors
are told through that callback.

Connection life cycle (docs/polymarket-api.md §7.1; the shared part is ``ws_channel.ChannelClient``):

* connect, send ``{"assets_ids": [...], "type": "market", "custom_feature_enabled": true}``;
* send the text ``PING`` every ``ping_interval_s``; the venue answers ``PONG``. A connection with no
  frame at all for ``stale_after_s`` is dropped;
* on any drop, every book becomes invalid (``on_invalidate`` is told) and deltas are held back until a
  fresh ``book`` arrives; reconnect with exponential backoff plus jitter from an injected
  ``random.Random``, and subscribe again (the venue sends a ``book`` per token);
* if a book is still invalid ``snapshot_timeout_s`` after (re)subscribing or after a tick-size
  change, fetch ``GET {clob_url}/book?token_id=`` and use it as the snapshot.

Malformed frames are skipped and counted; they never end the connection. Stop with ``stop()`` from
any thread; ``start_in_thread()`` runs the client on a background thread with its own loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal

import httpx
import msgspec

from adapters.polymarket.book_feed import BookFeed, BookKey
from adapters.polymarket.parse import AssetMap, PayloadError, decode_book, decode_market_frame, parse_book
from adapters.polymarket.schemas import JSON_ENCODER, WireMarketSubscribe
from adapters.polymarket.ws_channel import ChannelClient, StaleConnectionError, backoff_delay_s
from core.book import L2Book
from core.messages import BookDelta, BookSnapshot, MarketEvent, MarketResolved, TickSizeChanged
from core.units import Outcome

__all__ = [
    "DEFAULT_CLOB_URL",
    "DEFAULT_WS_URL",
    "MarketWsClient",
    "MarketWsConfig",
    "MarketWsStatus",
    "StaleConnectionError",
    "backoff_delay_s",
]

logger = logging.getLogger(__name__)

DEFAULT_WS_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
DEFAULT_CLOB_URL: Final = "https://clob.polymarket.com"
#: Above this many tokens per connection the venue sends no initial snapshots (§7.1).
MAX_ASSETS_PER_CONNECTION: Final = 500


class MarketWsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of the market-channel client; the defaults follow the official clients."""

    url: str = DEFAULT_WS_URL
    clob_url: str = DEFAULT_CLOB_URL
    #: Text ``PING`` cadence (the official Rust client: 10 s).
    ping_interval_s: float = 10.0
    #: Drop the connection after this long without any frame, PONG included (official: 30 s).
    stale_after_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_factor: float = 2.0
    #: Extra delay drawn uniformly from ``[0, jitter * delay]``, so clients do not reconnect in step.
    backoff_jitter: float = 0.25
    #: REST ``/book`` fallback when no snapshot arrives in time; None disables it.
    snapshot_timeout_s: float | None = 5.0
    rest_timeout_s: float = 5.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    #: Books of thousands of levels exceed websockets' 1 MiB default.
    max_message_bytes: int = 16 * 1024 * 1024
    custom_feature_enabled: bool = True
    #: websockets' proxy setting: True reads the environment, None connects directly.
    proxy: str | Literal[True] | None = True


class MarketWsStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Counters for status pages and tests (``messages`` are data frames, PONGs not included)."""

    connected: bool
    connects: int
    reconnects: int
    messages: int
    events: int
    skipped: int
    dropped_deltas: int
    pings: int
    pongs: int
    rest_snapshots: int
    callback_errors: int
    books_valid: int
    last_error: str


class MarketWsClient(ChannelClient[MarketWsConfig]):
    """Market-channel subscriber for a fixed set of tokens; see the module docstring."""

    def __init__(
        self,
        assets: AssetMap,
        on_event: Callable[[MarketEvent], None],
        *,
        config: MarketWsConfig | None = None,
        rng: random.Random | None = None,
        on_invalidate: Callable[[str, Outcome], None] | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        on_batch: Callable[[list[MarketEvent]], None] | None = None,
    ) -> None:
        """Set up the client; nothing connects until ``run()`` or ``start_in_thread()``.

        Args:
            assets: Tokens to subscribe to and their ``(market, outcome)``.
            on_event: Called on the client's loop thread with every event that is safe to apply
                (deltas on a book waiting for its snapshot are held back).
            config: Connection settings.
            rng: Source of reconnect jitter; a fresh unseeded ``random.Random()`` when None (live only).
            on_invalidate: Told ``(market, outcome)`` when a valid book becomes invalid because the
                connection dropped or the client stopped (tick-size changes arrive as events).
            http_transport: httpx transport for the REST fallback (``httpx.MockTransport`` in tests).
            on_batch: When given, called once per frame with its events (instead of ``on_event``
                per event), so a consumer can hand a frame's changes over in one message.
        """
        super().__init__(config or MarketWsConfig(), rng, label="market ws", logger=logger)
        self._assets = assets
        self._on_event = on_event
        self._on_batch = on_batch
        self._on_invalidate = on_invalidate
        self._http_transport = http_transport
        self._http: httpx.AsyncClient | None = None
        self._feed = BookFeed()
        self._subscribe_frame = JSON_ENCODER.encode(
            WireMarketSubscribe(
                assets_ids=assets.asset_ids(), custom_feature_enabled=self._cfg.custom_feature_enabled
            )
        ).decode()
        if len(assets) > MAX_ASSETS_PER_CONNECTION:
            logger.warning("%d tokens on one connection: the venue sends no snapshots above 500", len(assets))
        # Loop-thread state.
        self._invalid_since: dict[BookKey, float] = {}
        self._resolved: set[str] = set()
        self._rest_snapshots = 0

    # --- control ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream and reconnect until ``stop()``."""
        cfg = self._cfg
        self._http = http = (
            httpx.AsyncClient(transport=self._http_transport, timeout=cfg.rest_timeout_s)
            if cfg.snapshot_timeout_s is not None
            else None
        )
        try:
            await super().run()
        finally:
            self._http = None
            if http is not None:
                await http.aclose()

    def start_in_thread(self, name: str = "polymm-ws-market") -> threading.Thread:
        """Run the client on a daemon thread with its own event loop; ``stop()`` ends it."""
        return super().start_in_thread(name)

    # --- reading ---------------------------------------------------------------------------------

    def status(self) -> MarketWsStatus:
        """A snapshot of the counters."""
        return MarketWsStatus(
            **self._counters(),
            dropped_deltas=self._feed.dropped_deltas,
            rest_snapshots=self._rest_snapshots,
            books_valid=len(self._feed.valid_keys()),
        )

    def book(self, market: str, outcome: Outcome) -> L2Book | None:
        """The client's book of a token while valid (read it on the loop thread, or when quiet)."""
        return self._feed.book(market, outcome)

    # --- connection hooks ------------------------------------------------------------------------

    def _subscribe_text(self) -> str:
        return self._subscribe_frame

    def _on_connect(self, now: float) -> None:
        # The venue sends a ``book`` per token after subscribing; until then the fallback clock runs.
        for _, key in self._assets.items():
            if key[0] not in self._resolved and not self._feed.is_valid(*key):
                self._invalid_since[key] = now

    def _on_subscribed(self) -> None:
        logger.info("market ws: subscribed to %d tokens at %s", len(self._assets), self._cfg.url)

    def _session_tasks(self) -> list[Coroutine[Any, Any, None]]:
        http, timeout_s = self._http, self._cfg.snapshot_timeout_s
        if http is None or timeout_s is None:
            return []
        return [self._snapshot_watchdog(http, timeout_s)]

    def _on_disconnect(self) -> None:
        for market, outcome in self._feed.invalidate_all():
            if self._on_invalidate is not None:
                try:
                    self._on_invalidate(market, outcome)
                except Exception:
                    self._callback_errors += 1
                    logger.exception("market ws: on_invalidate failed")

    # --- frames and events -----------------------------------------------------------------------

    def _on_message(self, frame: str | bytes) -> None:
        reasons: list[str] = []
        events = decode_market_frame(frame, self._assets, skipped=reasons)
        self._skipped += len(reasons)
        if self._on_batch is None:
            for event in events:
                self._handle(event)
            return
        apply = self._feed.apply
        # Book deltas (nearly every event) need only the replica's epoch check.
        accepted = [e for e in events if (apply(e) if type(e) is BookDelta else self._track(e))]
        self._events += len(accepted)
        if accepted:
            try:
                self._on_batch(accepted)
            except Exception:
                self._callback_errors += 1
                logger.exception("market ws: on_batch failed")

    def _handle(self, event: MarketEvent) -> None:
        if not self._track(event):
            return
        self._events += 1
        try:
            self._on_event(event)
        except Exception:
            self._callback_errors += 1
            logger.exception("market ws: on_event failed for %s", type(event).__name__)

    def _track(self, event: MarketEvent) -> bool:
        # Keep our own replica of the books (REST fallback, epochs); False drops the event.
        if not self._feed.apply(event):
            return False
        match event:
            case BookSnapshot():
                self._invalid_since.pop((event.market, event.outcome), None)
            case TickSizeChanged():
                self._invalid_since[(event.market, event.outcome)] = asyncio.get_running_loop().time()
            case MarketResolved():
                self._resolved.add(event.market)
                for outcome in Outcome:
                    self._invalid_since.pop((event.market, outcome), None)
            case _:
                pass
        return True

    # --- REST fallback ---------------------------------------------------------------------------

    async def _snapshot_watchdog(self, http: httpx.AsyncClient, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        step = min(max(timeout_s / 4, 0.01), 1.0)
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            due = [
                key
                for key, since in self._invalid_since.items()
                if now - since >= timeout_s and not self._feed.is_valid(*key)
            ]
            for key in due:
                self._invalid_since[key] = now  # next attempt after another timeout
            if due:
                await asyncio.gather(*(self._fetch_book(http, key) for key in due))

    async def _fetch_book(self, http: httpx.AsyncClient, key: BookKey) -> None:
        token = self._assets.token(*key)
        if token is None:
            return
        url = self._cfg.clob_url.rstrip("/") + "/book"
        reasons: list[str] = []  # bad levels of a book whose other levels stand
        try:
            resp = await http.get(url, params={"token_id": token})
            resp.raise_for_status()
            snap = parse_book(decode_book(resp.content), key[0], key[1], skipped=reasons)
        except (httpx.HTTPError, PayloadError) as exc:
            self._last_error = f"REST book {token}: {type(exc).__name__}: {exc}"
            logger.warning("market ws: %s", self._last_error)
            return
        for reason in reasons:
            logger.warning("market ws: REST book %s: skipped %s", token, reason)
        self._skipped += len(reasons)
        if self._feed.is_valid(*key):
            return  # the WebSocket snapshot arrived while we waited
        logger.info("market ws: no snapshot for %s in time, seeded from REST", token)
        self._rest_snapshots += 1
        self._handle(snap)
