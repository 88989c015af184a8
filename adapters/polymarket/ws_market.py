"""Polymarket market-channel WebSocket client: books, deltas and trades as ``MarketEvent``s.

The client subscribes to every token of an ``AssetMap``, keeps the books with ``BookFeed`` (venue
epoch rules) and hands each event to ``on_event`` on its own event-loop thread. The market actors
are told through that callback.

Connection life cycle (docs/polymarket-api.md §7.1):

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
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from typing import Final, Literal

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect

from adapters.polymarket.book_feed import BookFeed, BookKey
from adapters.polymarket.parse import AssetMap, PayloadError, decode_book, decode_market_frame, parse_book
from adapters.polymarket.schemas import JSON_ENCODER, WireMarketSubscribe
from core.book import L2Book
from core.messages import BookSnapshot, MarketEvent, MarketResolved, TickSizeChanged
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

_PONG: Final = frozenset(("PONG", b"PONG"))


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


class StaleConnectionError(Exception):
    """No frame arrived for ``stale_after_s``: the connection is dropped and reopened."""


def backoff_delay_s(attempt: int, config: MarketWsConfig, rng: random.Random) -> float:
    """Delay before reconnect number ``attempt`` (0 after a healthy session): exponential plus jitter."""
    base = min(config.backoff_max_s, config.backoff_initial_s * config.backoff_factor ** max(attempt, 0))
    return base + base * config.backoff_jitter * rng.random()


class MarketWsClient:
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
        self._assets = assets
        self._on_event = on_event
        self._on_batch = on_batch
        self._cfg = config or MarketWsConfig()
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._on_invalidate = on_invalidate
        self._http_transport = http_transport
        self._feed = BookFeed()
        self._subscribe_text = JSON_ENCODER.encode(
            WireMarketSubscribe(
                assets_ids=assets.asset_ids(), custom_feature_enabled=self._cfg.custom_feature_enabled
            )
        ).decode()
        if len(assets) > MAX_ASSETS_PER_CONNECTION:
            logger.warning("%d tokens on one connection: the venue sends no snapshots above 500", len(assets))
        # Loop-thread state.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._invalid_since: dict[BookKey, float] = {}
        self._resolved: set[str] = set()
        self._last_rx = 0.0
        self._got_frame = False
        # Counters.
        self._connected = False
        self._connects = 0
        self._messages = 0
        self._events = 0
        self._skipped = 0
        self._pings = 0
        self._pongs = 0
        self._rest_snapshots = 0
        self._callback_errors = 0
        self._last_error = ""

    # --- control ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream and reconnect until ``stop()``."""
        loop = asyncio.get_running_loop()
        self._stop_event = stop_event = asyncio.Event()
        self._loop = loop
        if self._stop_requested:
            stop_event.set()
        http = (
            httpx.AsyncClient(transport=self._http_transport, timeout=self._cfg.rest_timeout_s)
            if self._cfg.snapshot_timeout_s is not None
            else None
        )
        attempt = 0
        try:
            while not stop_event.is_set():
                healthy = await self._run_session(http, stop_event)
                self._on_disconnect()
                if stop_event.is_set():
                    break
                attempt = 0 if healthy else attempt + 1
                delay = backoff_delay_s(attempt, self._cfg, self._rng)
                logger.info("market ws: reconnecting in %.2f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), delay)
        finally:
            self._connected = False
            if http is not None:
                await http.aclose()

    def stop(self, timeout_s: float | None = 10.0) -> None:
        """Ask the client to close and return from ``run()``; safe from any thread.

        When the client runs in its own thread (``start_in_thread``), wait up to ``timeout_s`` for it.
        """
        self._stop_requested = True
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(event.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def start_in_thread(self, name: str = "polymm-ws-market") -> threading.Thread:
        """Run the client on a daemon thread with its own event loop; ``stop()`` ends it."""
        if self._thread is not None:
            raise RuntimeError("client already started")
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name=name, daemon=True)
        self._thread.start()
        return self._thread

    # --- reading ---------------------------------------------------------------------------------

    def status(self) -> MarketWsStatus:
        """A snapshot of the counters."""
        return MarketWsStatus(
            connected=self._connected,
            connects=self._connects,
            reconnects=max(self._connects - 1, 0),
            messages=self._messages,
            events=self._events,
            skipped=self._skipped,
            dropped_deltas=self._feed.dropped_deltas,
            pings=self._pings,
            pongs=self._pongs,
            rest_snapshots=self._rest_snapshots,
            callback_errors=self._callback_errors,
            books_valid=len(self._feed.valid_keys()),
            last_error=self._last_error,
        )

    def book(self, market: str, outcome: Outcome) -> L2Book | None:
        """The client's book of a token while valid (read it on the loop thread, or when quiet)."""
        return self._feed.book(market, outcome)

    # --- connection ------------------------------------------------------------------------------

    async def _run_session(self, http: httpx.AsyncClient | None, stop_event: asyncio.Event) -> bool:
        # One connection until it drops or stop() is called; True if any frame arrived (healthy).
        self._got_frame = False
        session = asyncio.ensure_future(self._session(http))
        stopper = asyncio.ensure_future(stop_event.wait())
        await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (session, stopper):
            if not task.done():
                task.cancel()
        await asyncio.gather(session, stopper, return_exceptions=True)
        if session.cancelled():
            return self._got_frame
        if (exc := session.exception()) is not None:
            self._last_error = f"{type(exc).__name__}: {exc}"
        elif not stop_event.is_set():
            self._last_error = "connection closed by the venue"
        else:
            return self._got_frame
        logger.warning("market ws: connection lost: %s", self._last_error)
        return self._got_frame

    async def _session(self, http: httpx.AsyncClient | None) -> None:
        cfg = self._cfg
        loop = asyncio.get_running_loop()
        async with connect(
            cfg.url,
            proxy=cfg.proxy,
            open_timeout=cfg.open_timeout_s,
            close_timeout=cfg.close_timeout_s,
            ping_interval=None,  # application-level PING/PONG instead, as the venue expects
            max_size=cfg.max_message_bytes,
        ) as ws:
            self._connects += 1
            self._connected = True
            now = loop.time()
            self._last_rx = now
            for _, key in self._assets.items():
                if key[0] not in self._resolved and not self._feed.is_valid(*key):
                    self._invalid_since[key] = now
            await ws.send(self._subscribe_text)
            logger.info("market ws: subscribed to %d tokens at %s", len(self._assets), cfg.url)
            tasks = [asyncio.ensure_future(self._receive(ws)), asyncio.ensure_future(self._keepalive(ws))]
            if http is not None and cfg.snapshot_timeout_s is not None:
                tasks.append(asyncio.ensure_future(self._snapshot_watchdog(http, cfg.snapshot_timeout_s)))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                await ws.close()  # stop(): a normal closure (1000) rather than 1011
                raise
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    raise exc

    def _on_disconnect(self) -> None:
        self._connected = False
        for market, outcome in self._feed.invalidate_all():
            if self._on_invalidate is not None:
                try:
                    self._on_invalidate(market, outcome)
                except Exception:
                    self._callback_errors += 1
                    logger.exception("market ws: on_invalidate failed")

    async def _receive(self, ws: ClientConnection) -> None:
        # Ends normally when the server closes cleanly; the run loop reconnects either way.
        async for frame in ws:
            self._on_frame(frame)

    async def _keepalive(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        interval, stale_after = self._cfg.ping_interval_s, self._cfg.stale_after_s
        next_ping = loop.time() + interval
        while True:
            now = loop.time()
            stale_at = self._last_rx + stale_after
            if now >= stale_at:
                raise StaleConnectionError(f"no frame for {now - self._last_rx:.1f} s")
            if now >= next_ping:
                await ws.send("PING")
                self._pings += 1
                next_ping = now + interval
                continue
            await asyncio.sleep(min(next_ping, stale_at) - now)

    # --- frames and events -----------------------------------------------------------------------

    def _on_frame(self, frame: str | bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        self._got_frame = True
        if frame in _PONG:
            self._pongs += 1
            return
        self._messages += 1
        reasons: list[str] = []
        events = decode_market_frame(frame, self._assets, skipped=reasons)
        self._skipped += len(reasons)
        if self._on_batch is None:
            for event in events:
                self._handle(event)
            return
        accepted = [e for e in events if self._track(e)]
        if accepted:
            try:
                self._on_batch(accepted)
            except Exception:
                self._callback_errors += 1
                logger.exception("market ws: on_batch failed")

    def _handle(self, event: MarketEvent) -> None:
        if not self._track(event):
            return
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
        self._events += 1
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
        try:
            resp = await http.get(url, params={"token_id": token})
            resp.raise_for_status()
            snap = parse_book(decode_book(resp.content), key[0], key[1])
        except (httpx.HTTPError, PayloadError) as exc:
            self._last_error = f"REST book {token}: {type(exc).__name__}: {exc}"
            logger.warning("market ws: %s", self._last_error)
            return
        if self._feed.is_valid(*key):
            return  # the WebSocket snapshot arrived while we waited
        logger.info("market ws: no snapshot for %s in time, seeded from REST", token)
        self._rest_snapshots += 1
        self._handle(snap)
