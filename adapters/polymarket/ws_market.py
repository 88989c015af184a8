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
  change, fetch ``GET {clob_url}/book?token_id=`` and use it as the snapshot of our replica. A REST
  book is data as old as its timestamp, kept current only by the feed: it is *held* (not handed to
  the consumers, so nothing quotes on it) until the connection delivers data for its market, and
  then passed on just before that data. A connection that answers pings but delivers nothing never
  gets a market quoted on one frozen REST snapshot;
* with ``audit`` set, every market's book is checked against REST ``/book`` once per period
  (``book_audit.BookAuditor`` decides; this client fetches and acts): a market whose book the feed
  stopped updating is resynced (its books invalidated, ``on_resync`` told, its tokens unsubscribed
  and subscribed again so the venue sends fresh books), and a connection that looks frozen as a
  whole is dropped and reopened (``FrozenFeedError``). ``request_book_resync(market)`` audits one market
  at once (a post-only order of it was refused as crossing: our book may be wrong).

Malformed frames are skipped and counted; they never end the connection. Stop with ``stop()`` from
any thread; ``start_in_thread()`` runs the client on a background thread with its own loop.

Recording and replay: a ``MarketFeedTap`` (``tap=``) sees every frame as received, each connect and
disconnect, every REST book used as a snapshot and every audit resync; ``replay_frame``,
``replay_disconnect``, ``replay_rest_book`` and ``replay_resync`` feed those back through the same
code with no connection (``sim.session_replay``), on the caller's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any, Final, Literal, Protocol

import httpx
import msgspec

from adapters.polymarket.book_audit import AuditConfig, BookAuditor, BookTop, Reconnect, book_top, top_of
from adapters.polymarket.book_feed import BookFeed, BookKey
from adapters.polymarket.parse import AssetMap, PayloadError, decode_book, decode_market_frame, parse_book
from adapters.polymarket.schemas import JSON_ENCODER, WireMarketSubscribe
from adapters.polymarket.ws_channel import ChannelClient, FeedTap, StaleConnectionError, backoff_delay_s
from core.book import L2Book
from core.messages import BookDelta, BookSnapshot, MarketEvent, MarketResolved, TickSizeChanged
from core.units import Outcome

__all__ = [
    "DEFAULT_CLOB_URL",
    "DEFAULT_WS_URL",
    "FrozenFeedError",
    "MarketFeedTap",
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
    #: Audit the books against REST ``/book`` (``book_audit``); None: no audit.
    audit: AuditConfig | None = None
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
    #: Books seeded from REST and held until the feed delivers their market's data.
    rest_held: int
    #: REST audits sent, found equal, found different (after their grace), failed (HTTP or payload).
    audits: int
    audit_matches: int
    audit_differs: int
    audit_errors: int
    #: Markets resynced by the audit, immediate audits asked for, reconnects of a frozen connection.
    audit_resyncs: int
    audit_requests: int
    frozen_reconnects: int


class MarketFeedTap(FeedTap, Protocol):
    """A ``FeedTap`` that also sees the REST books the client uses and the markets it resyncs."""

    def on_rest_book(self, token: str, body: bytes) -> None:
        """``GET /book`` of ``token`` answered ``body``, which the client now uses as its snapshot."""

    def on_resync(self, market: str, reason: str) -> None:
        """The audit dropped ``market``'s books until a fresh snapshot."""


class FrozenFeedError(Exception):
    """The connection answers but delivers nothing while the venue's books move: reopen it."""


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
        on_resync: Callable[[str, str], None] | None = None,
        tap: MarketFeedTap | None = None,
        input_scope: AbstractContextManager[object] | None = None,
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
            on_resync: Told ``(market, reason)`` when the audit drops a market's books until a fresh
                snapshot (else ``on_invalidate`` is told, as for a drop).
            tap: Sees frames as received, connects, disconnects, REST books used and resyncs (a recorder).
            input_scope: Entered around each of those and its handling: one time for the tap's stamp and
                the consumers' clock readings (a trading engine's ``actors.loop.InputClock``).
        """
        super().__init__(
            config or MarketWsConfig(),
            rng,
            label="market ws",
            logger=logger,
            tap=tap,
            input_scope=input_scope,
        )
        self._market_tap = tap
        self._assets = assets
        self._on_event = on_event
        self._on_batch = on_batch
        self._on_invalidate = on_invalidate
        self._on_resync = on_resync
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
        #: REST snapshots applied to our replica but not passed on yet (see the module docstring).
        self._held: dict[BookKey, BookSnapshot] = {}
        self._markets = sorted({market for _, (market, _) in assets.items()})
        self._auditor: BookAuditor | None = None
        self._audit_wake: asyncio.Event | None = None
        self._audit_requests = 0
        self._frozen_reconnects = 0

    # --- control ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream and reconnect until ``stop()``."""
        cfg = self._cfg
        self._http = http = (
            httpx.AsyncClient(transport=self._http_transport, timeout=cfg.rest_timeout_s)
            if cfg.snapshot_timeout_s is not None or cfg.audit is not None
            else None
        )
        if cfg.audit is not None:
            self._auditor = BookAuditor(self._markets, cfg.audit, asyncio.get_running_loop().time())
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
        a = self._auditor
        return MarketWsStatus(
            **self._counters(),
            dropped_deltas=self._feed.dropped_deltas,
            rest_snapshots=self._rest_snapshots,
            books_valid=len(self._feed.valid_keys()),
            rest_held=len(self._held),
            audits=a.sent if a else 0,
            audit_matches=a.matched if a else 0,
            audit_differs=a.differed if a else 0,
            audit_errors=a.errors if a else 0,
            audit_resyncs=a.resyncs if a else 0,
            audit_requests=self._audit_requests,
            frozen_reconnects=self._frozen_reconnects,
        )

    def request_book_resync(self, market: str) -> None:
        """Audit ``market``'s book against REST ``/book`` now (any thread; no-op without an audit).

        For a post-only order refused as crossing: the book we priced it on may not be the venue's.
        Asked again within the audit's ``recheck_s``, or while connecting, it does nothing.
        """
        loop = self._loop
        if loop is None or self._cfg.audit is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to audit
            loop.call_soon_threadsafe(self._request_audit, market)

    def book(self, market: str, outcome: Outcome) -> L2Book | None:
        """The client's book of a token while valid (read it on the loop thread, or when quiet)."""
        return self._feed.book(market, outcome)

    # --- replay (no connection: sim.session_replay feeds a recording through the same code) ---------

    def replay_frame(self, frame: str | bytes) -> None:
        """Handle a recorded data frame as if it had just been received."""
        self._messages += 1
        self._on_message(frame)

    def replay_disconnect(self) -> None:
        """A recorded gap: every book is invalid until its next snapshot, as after a drop."""
        self._connected = False
        self._on_disconnect()

    def replay_rest_book(self, token: str, body: bytes) -> None:
        """A recorded REST book that the live client used as a snapshot (``_fetch_book``)."""
        key = self._assets.get(token)
        if key is None:
            return
        reasons: list[str] = []
        try:
            snap = parse_book(decode_book(body), key[0], key[1], skipped=reasons)
        except PayloadError:
            return
        self._skipped += len(reasons)
        if not self._feed.is_valid(*key):
            self._use_rest_snapshot(key, snap)

    def replay_resync(self, market: str, reason: str) -> None:
        """A recorded audit resync of ``market`` (its books dropped until a fresh snapshot)."""
        self._drop_market(market, reason, 0.0)

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
        if http is None:
            return []
        tasks = [] if timeout_s is None else [self._snapshot_watchdog(http, timeout_s)]
        if self._auditor is not None:
            tasks.append(self._audit_loop(http, self._auditor))
        return tasks

    def _on_disconnect(self) -> None:
        self._held.clear()
        if self._auditor is not None:
            self._auditor.reset()
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
        # REST snapshots held for a market are passed on before the first data of that market.
        released = self._release_held(events) if self._held else []
        if self._on_batch is None:
            for snap in released:
                self._events += 1
                self._call_on_event(snap)
            for event in events:
                self._handle(event)
        else:
            apply = self._feed.apply
            # Book deltas (nearly every event) need only the replica's epoch check.
            accepted = [e for e in events if (apply(e) if type(e) is BookDelta else self._track(e))]
            if released:
                accepted[:0] = released
            self._events += len(accepted)
            if accepted:
                try:
                    self._on_batch(accepted)
                except Exception:
                    self._callback_errors += 1
                    logger.exception("market ws: on_batch failed")
        auditor = self._auditor
        if auditor is not None and auditor.watching and events:
            # An open audit compares the REST book with every state the feed passes through.
            for market in {e.market for e in events}:
                if auditor.is_open(market):
                    auditor.on_data(market, self._audit_top(market))

    def _release_held(self, events: list[MarketEvent]) -> list[BookSnapshot]:
        markets = {e.market for e in events}
        keys = [key for key in self._held if key[0] in markets]
        return [self._held.pop(key) for key in keys]

    def _call_on_event(self, event: MarketEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            self._callback_errors += 1
            logger.exception("market ws: on_event failed for %s", type(event).__name__)

    def _handle(self, event: MarketEvent) -> None:
        if not self._track(event):
            return
        self._events += 1
        self._call_on_event(event)

    def _track(self, event: MarketEvent) -> bool:
        # Keep our own replica of the books (REST fallback, epochs); False drops the event.
        if not self._feed.apply(event):
            return False
        match event:
            case BookSnapshot():
                self._invalid_since.pop((event.market, event.outcome), None)
            case TickSizeChanged():
                self._invalid_since[(event.market, event.outcome)] = _loop_time()
            case MarketResolved():
                self._resolved.add(event.market)
                for outcome in Outcome:
                    self._invalid_since.pop((event.market, outcome), None)
                if self._auditor is not None:
                    self._auditor.retire(event.market)
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

    async def _rest_book(
        self, http: httpx.AsyncClient, key: BookKey, quiet: bool = False
    ) -> BookSnapshot | None:
        # GET /book of one token; None (logged, unless quiet) when it fails.
        got = await self._rest_book_body(http, key, quiet)
        return None if got is None else got[0]

    async def _rest_book_body(
        self, http: httpx.AsyncClient, key: BookKey, quiet: bool = False
    ) -> tuple[BookSnapshot, bytes] | None:
        # The book and the body it came from (a recorder keeps the body of a book the client uses).
        token = self._assets.token(*key)
        if token is None:
            return None
        url = self._cfg.clob_url.rstrip("/") + "/book"
        reasons: list[str] = []  # bad levels of a book whose other levels stand
        try:
            resp = await http.get(url, params={"token_id": token})
            resp.raise_for_status()
            snap = parse_book(decode_book(resp.content), key[0], key[1], skipped=reasons)
        except (httpx.HTTPError, PayloadError) as exc:
            self._last_error = f"REST book {token}: {type(exc).__name__}: {exc}"
            if not quiet:
                logger.warning("market ws: %s", self._last_error)
            return None
        for reason in reasons:
            logger.warning("market ws: REST book %s: skipped %s", token, reason)
        self._skipped += len(reasons)
        return snap, resp.content

    async def _fetch_book(self, http: httpx.AsyncClient, key: BookKey) -> None:
        got = await self._rest_book_body(http, key)
        if got is None or self._feed.is_valid(*key):
            return  # failed, or the WebSocket snapshot arrived while we waited
        snap, body = got
        logger.info("market ws: no snapshot for %s in time, seeded from REST until the feed sends data", key)
        with self._input:
            if self._market_tap is not None:
                self._market_tap.on_rest_book(self._assets.token(*key) or "", body)
            self._use_rest_snapshot(key, snap)

    def _use_rest_snapshot(self, key: BookKey, snap: BookSnapshot) -> None:
        # Our replica takes it (deltas apply on it from now on); the consumers get it with the first
        # data of its market: a REST book alone is never quoted (see the module docstring).
        self._rest_snapshots += 1
        self._feed.apply(snap)
        self._invalid_since.pop(key, None)
        self._held[key] = snap

    # --- audit -----------------------------------------------------------------------------------

    def _audit_key(self, market: str) -> BookKey:
        # The YES token's book (the NO book mirrors it), or the NO token's if we follow only that.
        yes = self._assets.token(market, Outcome.YES) is not None
        return (market, Outcome.YES if yes else Outcome.NO)

    def _audit_top(self, market: str) -> BookTop | None:
        # Our replica's top of the audited token (None: not valid, nothing to audit).
        cfg = self._cfg.audit
        book = self._feed.book(*self._audit_key(market))
        if book is None or cfg is None or market in self._resolved:
            return None
        return book_top(book, cfg.levels)

    def _request_audit(self, market: str) -> None:
        auditor, wake = self._auditor, self._audit_wake
        if auditor is None or wake is None:
            return  # not connected: every book waits for a fresh snapshot anyway
        if auditor.request(market, asyncio.get_running_loop().time()):
            self._audit_requests += 1
            wake.set()

    async def _audit_loop(self, http: httpx.AsyncClient, auditor: BookAuditor) -> None:
        loop = asyncio.get_running_loop()
        self._audit_wake = wake = asyncio.Event()
        fetches: set[asyncio.Future[None]] = set()
        try:
            while True:
                now = loop.time()
                for effect in auditor.expire(now, self._last_data_rx):
                    if isinstance(effect, Reconnect):
                        self._frozen_reconnects += 1
                        raise FrozenFeedError(effect.reason)
                    await self._resync(effect.market, effect.reason)
                for market in auditor.due(now, self._audit_top):
                    fetch = asyncio.ensure_future(self._audit_fetch(http, auditor, market, wake))
                    fetches.add(fetch)
                    fetch.add_done_callback(fetches.discard)
                delay = auditor.next_wakeup_s(now) - loop.time()
                wake.clear()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), delay)
                else:
                    await asyncio.sleep(0)
        finally:
            self._audit_wake = None
            for unfinished in list(fetches):
                unfinished.cancel()
            await asyncio.gather(*fetches, return_exceptions=True)

    async def _audit_fetch(
        self, http: httpx.AsyncClient, auditor: BookAuditor, market: str, wake: asyncio.Event
    ) -> None:
        cfg = self._cfg.audit
        assert cfg is not None
        key = self._audit_key(market)
        # REST failures are the venue's or the network's, not the feed's: counted, logged sparingly.
        snap = await self._rest_book(http, key, quiet=True)
        if snap is None:
            auditor.on_error(market)
            if auditor.errors in (1, 10, 100) or auditor.errors % 1000 == 0:
                logger.warning(
                    "market ws: book audit failed (%d so far): %s", auditor.errors, self._last_error
                )
            return
        book = self._feed.book(*key)
        if book is None:
            auditor.forget(market)
            return
        rest = top_of(snap.bids, snap.asks, snap.tick_px, cfg.levels)
        auditor.on_reply(market, asyncio.get_running_loop().time(), rest, snap.ts_ns, book.ts_ns)
        wake.set()  # the grace deadline is new

    async def _resync(self, market: str, reason: str) -> None:
        # Treat it as a feed loss for this market: invalidate, tell, and ask the venue for fresh books.
        logger.warning("market ws: %s: %s: quotes pulled until a fresh snapshot", market, reason)
        with self._input:
            if self._market_tap is not None:
                self._market_tap.on_resync(market, reason)
            tokens = self._drop_market(market, reason, asyncio.get_running_loop().time())
        ws = self._ws
        if ws is not None and tokens:
            # Unsubscribe first: the venue sends books only for tokens newly subscribed.
            await ws.send(JSON_ENCODER.encode({"assets_ids": tokens, "operation": "unsubscribe"}).decode())
            await ws.send(
                JSON_ENCODER.encode(
                    {
                        "assets_ids": tokens,
                        "operation": "subscribe",
                        "custom_feature_enabled": self._cfg.custom_feature_enabled,
                    }
                ).decode()
            )

    def _drop_market(self, market: str, reason: str, now: float) -> list[str]:
        # Invalidate the market's books and tell the consumers; returns its tokens.
        tokens: list[str] = []
        for outcome in Outcome:
            token = self._assets.token(market, outcome)
            if token is None:
                continue
            tokens.append(token)
            self._held.pop((market, outcome), None)
            self._feed.invalidate(market, outcome)
            if market not in self._resolved:
                self._invalid_since[(market, outcome)] = now
        if self._auditor is not None:
            self._auditor.forget(market)
        try:
            if self._on_resync is not None:
                self._on_resync(market, reason)
            elif self._on_invalidate is not None:
                self._on_invalidate(market, Outcome.YES)
        except Exception:
            self._callback_errors += 1
            logger.exception("market ws: on_resync failed")
        return tokens


def _loop_time() -> float:
    # The running loop's clock; 0.0 in a replay, which runs outside any loop (nothing there waits on it).
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0
