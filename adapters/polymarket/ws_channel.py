"""What the Polymarket WebSocket channel clients share: one connection at a time, kept alive and reopened.

``ChannelClient`` runs the life cycle common to the market and user channels (docs/polymarket-api.md §7):

* connect, send the subclass's subscribe frame;
* send the text ``PING`` every ``ping_interval_s``; the venue answers ``PONG``. A connection with no
  frame at all for ``stale_after_s`` is dropped (``StaleConnectionError``);
* on any drop, reconnect after ``backoff_delay_s``: exponential, plus jitter from an injected
  ``random.Random``, and back to the initial delay after a session that received any frame.

A subclass (``ws_market.MarketWsClient``, ``ws_user.UserWsClient``) says what to subscribe to and
what to do with data frames, and may hook the moments after connecting, after subscribing and after
a disconnect, or run tasks of its own alongside a session. Everything but ``stop()`` runs on the
client's event-loop thread; ``start_in_thread()`` gives the client a thread and a loop of its own.

A ``FeedTap`` (``tap=``) sees every data frame exactly as received, before anything decodes it, and
each connect and disconnect: ``adapters.recording.Recorder`` writes them to a recording. It is
called on the loop thread and must not block (the recorder only stamps and enqueues).

Each of those is one input of the consumer: ``input_scope=`` (a trading engine's ``actors.loop.InputClock``)
is entered around the tap's call and the handling that follows it, so the tap's stamp and every
clock reading of the handling are one time.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Coroutine
from contextlib import AbstractContextManager
from typing import Any, Final, Generic, Literal, Protocol, TypedDict, TypeVar

from websockets.asyncio.client import ClientConnection, connect

__all__ = [
    "ChannelClient",
    "ChannelConfig",
    "ChannelCounters",
    "FeedTap",
    "StaleConnectionError",
    "backoff_delay_s",
]

_PONG: Final = frozenset(("PONG", b"PONG"))


class ChannelConfig(Protocol):
    """The connection settings every channel has (``MarketWsConfig``, ``UserWsConfig``)."""

    @property
    def url(self) -> str: ...
    @property
    def ping_interval_s(self) -> float: ...
    @property
    def stale_after_s(self) -> float: ...
    @property
    def backoff_initial_s(self) -> float: ...
    @property
    def backoff_max_s(self) -> float: ...
    @property
    def backoff_factor(self) -> float: ...
    @property
    def backoff_jitter(self) -> float: ...
    @property
    def open_timeout_s(self) -> float: ...
    @property
    def close_timeout_s(self) -> float: ...
    @property
    def max_message_bytes(self) -> int: ...
    @property
    def proxy(self) -> str | Literal[True] | None: ...


class ChannelCounters(TypedDict):
    """The status fields every channel reports (``messages`` are data frames, PONGs not included)."""

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


class FeedTap(Protocol):
    """Sees what a channel receives, on the client's loop thread; must return at once, never raise."""

    def on_frame(self, frame: str | bytes) -> None:
        """A data frame (not a PONG), exactly as received, before it is decoded."""

    def on_connect(self, url: str) -> None:
        """Connected to ``url``; the subscribe frame goes next."""

    def on_disconnect(self, reason: str) -> None:
        """The connection is gone (frames until the next connect are missed)."""


class StaleConnectionError(Exception):
    """No frame arrived for ``stale_after_s``: the connection is dropped and reopened."""


def backoff_delay_s(attempt: int, config: ChannelConfig, rng: random.Random) -> float:
    """Delay before reconnect number ``attempt`` (0 after a healthy session): exponential plus jitter."""
    base = min(config.backoff_max_s, config.backoff_initial_s * config.backoff_factor ** max(attempt, 0))
    return base + base * config.backoff_jitter * rng.random()


_C = TypeVar("_C", bound=ChannelConfig)


class ChannelClient(abc.ABC, Generic[_C]):
    """A channel subscription that keeps itself connected; see the module docstring."""

    def __init__(
        self,
        config: _C,
        rng: random.Random | None,
        *,
        label: str,
        logger: logging.Logger,
        wire_logger: logging.Logger | None = None,
        tap: FeedTap | None = None,
        input_scope: AbstractContextManager[object] | None = None,
    ) -> None:
        """Set up the connection state; nothing connects until ``run()`` or ``start_in_thread()``.

        Args:
            config: Connection settings.
            rng: Source of reconnect jitter; a fresh unseeded ``random.Random()`` when None (live only).
            label: Prefix of log messages, e.g. ``"market ws"``.
            logger: The subclass module's logger, so log configuration stays per channel.
            wire_logger: websockets' frame logger; its default (``websockets.client``) when None.
            tap: Told every data frame as received, and each connect and disconnect (a recorder).
            input_scope: Entered around each frame, connect and disconnect: the tap's call and the
                handling (the consumer's ``actors.loop.InputClock``; see the module docstring).
        """
        self._cfg = config
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._label = label
        self._log = logger
        self._wire_logger = wire_logger
        self._tap = tap
        self._input: AbstractContextManager[object] = (
            input_scope if input_scope is not None else contextlib.nullcontext()
        )
        # Loop-thread state.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._last_rx = 0.0
        #: When the last data frame (not a PONG) arrived: a connection may answer pings and send nothing.
        self._last_data_rx = 0.0
        self._got_frame = False
        #: The open connection, for subclasses that send more than the subscribe frame.
        self._ws: ClientConnection | None = None
        # Counters.
        self._connected = False
        self._connects = 0
        self._messages = 0
        self._events = 0
        self._skipped = 0
        self._pings = 0
        self._pongs = 0
        self._callback_errors = 0
        self._last_error = ""

    # --- hooks -----------------------------------------------------------------------------------

    # The subscribe frame, built at send time (it may carry credentials: never log it).
    @abc.abstractmethod
    def _subscribe_text(self) -> str: ...

    # A data frame (not a PONG), already counted in ``messages``; must not raise.
    @abc.abstractmethod
    def _on_message(self, frame: str | bytes) -> None: ...

    # Connected, subscribe frame not sent yet; ``now`` is the loop time of the connect.
    def _on_connect(self, now: float) -> None:
        pass

    # Subscribe frame sent; frames are read only after this returns.
    def _on_subscribed(self) -> None:
        pass

    # Coroutines to run alongside a session; one ending (or raising) ends the session.
    def _session_tasks(self) -> list[Coroutine[Any, Any, None]]:
        return []

    # The connection is gone (``connected`` is already False); the client may reconnect next.
    def _on_disconnect(self) -> None:
        pass

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
                was_connected, self._connected = self._connected, False
                with self._input:
                    if self._tap is not None and was_connected and not stop_event.is_set():
                        self._tap.on_disconnect(self._last_error)
                    self._on_disconnect()
                if stop_event.is_set():
                    break
                attempt = 0 if healthy else attempt + 1
                delay = backoff_delay_s(attempt, self._cfg, self._rng)
                self._log.info("%s: reconnecting in %.2f s", self._label, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop_event.wait(), delay)
        finally:
            self._connected = False

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

    def start_in_thread(self, name: str) -> threading.Thread:
        """Run the client on a daemon thread with its own event loop; ``stop()`` ends it."""
        if self._thread is not None:
            raise RuntimeError("client already started")
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name=name, daemon=True)
        self._thread.start()
        return self._thread

    def _counters(self) -> ChannelCounters:
        # The shared part of a subclass's ``status()``.
        return ChannelCounters(
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
        self._log.warning("%s: connection lost: %s", self._label, self._last_error)
        return self._got_frame

    async def _session(self) -> None:
        cfg = self._cfg
        async with connect(
            cfg.url,
            proxy=cfg.proxy,
            open_timeout=cfg.open_timeout_s,
            close_timeout=cfg.close_timeout_s,
            ping_interval=None,  # application-level PING/PONG instead, as the venue expects
            max_size=cfg.max_message_bytes,
            logger=self._wire_logger,
        ) as ws:
            self._connects += 1
            self._connected = True
            self._last_rx = self._last_data_rx = now = asyncio.get_running_loop().time()
            with self._input:
                if self._tap is not None:
                    self._tap.on_connect(cfg.url)
                self._on_connect(now)
            await ws.send(self._subscribe_text())
            self._on_subscribed()
            self._ws = ws
            tasks = [asyncio.ensure_future(self._receive(ws)), asyncio.ensure_future(self._keepalive(ws))]
            tasks.extend(asyncio.ensure_future(coro) for coro in self._session_tasks())
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                await ws.close()  # stop(): a normal closure (1000) rather than 1011
                raise
            finally:
                self._ws = None
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    raise exc

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

    def _on_frame(self, frame: str | bytes) -> None:
        self._last_rx = asyncio.get_running_loop().time()
        self._got_frame = True
        if frame in _PONG:
            self._pongs += 1
            return
        self._messages += 1
        self._last_data_rx = self._last_rx
        with self._input:  # one time for the tap's stamp and the frame's handling
            if self._tap is not None:
                self._tap.on_frame(frame)
            self._on_message(frame)
