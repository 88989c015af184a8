"""Polymarket user-channel WebSocket client: our orders and trades as parsed ``UserEvent``s.

The client subscribes to the markets (condition ids) of an ``AssetMap`` and hands every parsed
event (``parse.VenueOrderUpdate``, ``parse.VenueTrade``) to ``on_event`` on its own event-loop
thread; ``clob_port.UserChannelBridge`` tells them to the order gateway.

Connection life cycle (docs/polymarket-api.md §7.2, clob-emulator-spec.md §8):

* connect, send ``{"type": "user", "auth": {"apiKey", "secret", "passphrase"}, "markets": [...]}``;
* send the text ``PING`` every ``ping_interval_s``; the venue answers ``PONG``. A connection with no
  frame at all for ``stale_after_s`` is dropped;
* on any drop, reconnect with exponential backoff plus jitter and subscribe again. Events sent
  during the outage are lost (no replay), so every connection after the first calls
  ``on_reconnect`` and the gateway reconciles against ``GET /data/orders``.

The subscribe frame carries the API secret: it is built at send time and never logged, and the
``websockets`` frame logger is a child of this module's logger held at INFO, so a DEBUG log
configuration does not print frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Sequence
from typing import Final, Literal

import msgspec
from websockets.asyncio.client import ClientConnection, connect

from adapters.polymarket.parse import AssetMap, UserEvent, decode_user_frame
from adapters.polymarket.schemas import JSON_ENCODER
from adapters.polymarket.secrets import ApiCredentials

__all__ = [
    "DEFAULT_USER_WS_URL",
    "StaleConnectionError",
    "UserWsClient",
    "UserWsConfig",
    "UserWsStatus",
    "backoff_delay_s",
]

logger = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, the subscribe frame (with the secret) included.
_wire_logger = logging.getLogger(f"{__name__}.wire")
_wire_logger.setLevel(logging.INFO)

DEFAULT_USER_WS_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/user"
_PONG: Final = frozenset(("PONG", b"PONG"))


class UserWsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Connection settings (seconds)."""

    url: str = DEFAULT_USER_WS_URL
    ping_interval_s: float = 10.0
    #: The official SDK treats 30 s without a PONG as a dead connection.
    stale_after_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_factor: float = 2.0
    #: Extra delay drawn uniformly from ``[0, jitter * delay]``.
    backoff_jitter: float = 0.25
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    max_message_bytes: int = 4 * 1024 * 1024
    #: websockets' proxy setting: True reads the environment, None connects directly.
    proxy: str | Literal[True] | None = True


class UserWsStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Counters for status pages and tests."""

    connected: bool
    connects: int
    reconnects: int
    messages: int
    events: int
    skipped: int
    pings: int
    pongs: int
    callback_errors: int
    last_error: str


class StaleConnectionError(Exception):
    """No frame arrived for ``stale_after_s``: the connection is dropped and reopened."""


def backoff_delay_s(attempt: int, config: UserWsConfig, rng: random.Random) -> float:
    """Delay before reconnect number ``attempt`` (0 after a healthy session): exponential plus jitter."""
    base = min(config.backoff_max_s, config.backoff_initial_s * config.backoff_factor ** max(attempt, 0))
    return base + base * config.backoff_jitter * rng.random()


class UserWsClient:
    """User-channel subscriber for a fixed set of markets; see the module docstring."""

    def __init__(
        self,
        assets: AssetMap,
        creds: ApiCredentials,
        on_event: Callable[[UserEvent], None],
        *,
        on_reconnect: Callable[[], None] | None = None,
        markets: Sequence[str] | None = None,
        config: UserWsConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Set up the client; nothing connects until ``run()`` or ``start_in_thread()``.

        Args:
            assets: Tokens of our markets (events for other tokens are dropped).
            creds: API credentials for the subscribe frame.
            on_event: Called on the client's loop thread with every parsed event.
            on_reconnect: Called after every re-subscription (not the first): ask for a reconcile.
            markets: Condition ids to subscribe to; every market of ``assets`` when None.
            config: Connection settings.
            rng: Source of reconnect jitter; a fresh unseeded ``random.Random()`` when None (live only).
        """
        self._assets = assets
        self._creds = creds
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        if markets is None:
            markets = list(dict.fromkeys(market for _, (market, _) in assets.items()))
        self._markets = tuple(markets)
        self._cfg = config or UserWsConfig()
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._last_rx = 0.0
        self._got_frame = False
        self._connected = False
        self._connects = 0
        self._messages = 0
        self._events = 0
        self._skipped = 0
        self._pings = 0
        self._pongs = 0
        self._callback_errors = 0
        self._last_error = ""

    def __repr__(self) -> str:
        return f"UserWsClient(url={self._cfg.url!r}, markets={len(self._markets)}, creds={self._creds!r})"

    # --- control ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream and reconnect until ``stop()``."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = stop_event = asyncio.Event()
        if self._stop_requested:
            stop_event.set()
        attempt = 0
        try:
            while not stop_event.is_set():
                healthy = await self._run_session(stop_event)
                self._connected = False
                if stop_event.is_set():
                    break
                attempt = 0 if healthy else attempt + 1
                delay = backoff_delay_s(attempt, self._cfg, self._rng)
                logger.info("user ws: reconnecting in %.2f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), delay)
        finally:
            self._connected = False

    def stop(self, timeout_s: float | None = 10.0) -> None:
        """Ask the client to close and return from ``run()``; safe from any thread."""
        self._stop_requested = True
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(event.set)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def start_in_thread(self, name: str = "polymm-ws-user") -> threading.Thread:
        """Run the client on a daemon thread with its own event loop; ``stop()`` ends it."""
        if self._thread is not None:
            raise RuntimeError("client already started")
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name=name, daemon=True)
        self._thread.start()
        return self._thread

    def status(self) -> UserWsStatus:
        """A snapshot of the counters."""
        return UserWsStatus(
            connected=self._connected,
            connects=self._connects,
            reconnects=max(self._connects - 1, 0),
            messages=self._messages,
            events=self._events,
            skipped=self._skipped,
            pings=self._pings,
            pongs=self._pongs,
            callback_errors=self._callback_errors,
            last_error=self._last_error,
        )

    # --- connection ------------------------------------------------------------------------------

    async def _run_session(self, stop_event: asyncio.Event) -> bool:
        # One connection until it drops or stop() is called; True if any frame arrived (healthy).
        self._got_frame = False
        session = asyncio.ensure_future(self._session())
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
        logger.warning("user ws: connection lost: %s", self._last_error)
        return self._got_frame

    def _subscribe_text(self) -> str:
        frame = {"type": "user", "auth": self._creds.ws_auth(), "markets": list(self._markets)}
        return JSON_ENCODER.encode(frame).decode()

    async def _session(self) -> None:
        cfg = self._cfg
        async with connect(
            cfg.url,
            proxy=cfg.proxy,
            open_timeout=cfg.open_timeout_s,
            close_timeout=cfg.close_timeout_s,
            ping_interval=None,  # application-level PING/PONG instead, as the venue expects
            max_size=cfg.max_message_bytes,
            logger=_wire_logger,
        ) as ws:
            self._connects += 1
            self._connected = True
            self._last_rx = asyncio.get_running_loop().time()
            await ws.send(self._subscribe_text())
            logger.info("user ws: subscribed to %d markets at %s", len(self._markets), cfg.url)
            if self._connects > 1 and self._on_reconnect is not None:
                try:
                    self._on_reconnect()
                except Exception:
                    self._callback_errors += 1
                    logger.exception("user ws: on_reconnect failed")
            tasks = [asyncio.ensure_future(self._receive(ws)), asyncio.ensure_future(self._keepalive(ws))]
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

    async def _receive(self, ws: ClientConnection) -> None:
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

    def _on_frame(self, frame: str | bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        self._got_frame = True
        if frame in _PONG:
            self._pongs += 1
            return
        self._messages += 1
        reasons: list[str] = []
        events = decode_user_frame(frame, self._assets, skipped=reasons)
        self._skipped += len(reasons)
        for event in events:
            self._events += 1
            try:
                self._on_event(event)
            except Exception:
                self._callback_errors += 1
                logger.exception("user ws: on_event failed for %s", type(event).__name__)
