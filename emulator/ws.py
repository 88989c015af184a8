"""The emulator's WebSocket side: the market and user channels on the same port as REST.

A connection arrives as a socket whose first bytes are ``GET /ws/``; ``websockets``' threaded server
connection does the handshake and framing. Each connection gets a reader (subscriptions, ``PING``)
and a writer thread draining a queue (``WsSink``), so the venue never blocks on a slow client.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import queue
import socket
import threading
from collections.abc import Iterator
from typing import Any, Final

import msgspec
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.sync.server import ServerConnection

from emulator.auth import UNAUTHORIZED, AuthError, KeyStore
from emulator.faults import Channel
from emulator.venue import MarketSub, Sink, UserSub, Venue

__all__ = ["ShutdownFlag", "WebSockets", "WsSink"]

#: websockets >= 16 gives ``ServerConnection`` its server as the third positional argument (asked
#: during the handshake whether it is closing); 15 (what polymarket-client 0.14.0 pins) has no such
#: parameter.
_TAKES_SERVER: Final = "server" in inspect.signature(ServerConnection.__init__).parameters


class ShutdownFlag:
    """The part of a ``websockets`` server a ``ServerConnection`` asks about (is it closing?)."""

    # ``websockets.sync.server.ServerConnection`` asks its server whether it is closing during the
    # handshake (``server.socket_closed``); this is all of the server it needs.
    def __init__(self) -> None:
        self.socket_closed = threading.Event()


class WsSink:
    """A WebSocket connection's outgoing side: a queue drained by a writer thread."""

    _STOP: Final = object()

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn
        self._q: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="emulator-ws-writer", daemon=True)
        self._thread.start()

    def send(self, text: str) -> None:
        self._q.put(text)

    def drop(self, abrupt: bool) -> None:
        self._q.put(("drop", abrupt))

    def close(self) -> None:
        self._q.put(self._STOP)
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is self._STOP:
                return
            try:
                if isinstance(item, tuple):
                    if item[1]:
                        with contextlib.suppress(OSError):
                            self._conn.socket.shutdown(socket.SHUT_RDWR)
                    else:
                        self._conn.close(1011, "emulator fault: connection dropped")
                    return
                self._conn.send(str(item))
            except (ConnectionClosed, OSError):
                return


class WebSockets:
    """The WebSocket half of the emulator (mixed into ``Emulator``, which sets these attributes)."""

    venue: Venue
    keys: KeyStore
    _stop: threading.Event
    _ws_flag: ShutdownFlag
    _ws_conns: set[ServerConnection]
    _ws_lock: threading.Lock

    def serve_ws(self, sock: socket.socket) -> None:
        """Run one WebSocket connection on ``sock`` (its first bytes are ``GET /ws/``) until it ends."""
        sock.settimeout(None)
        protocol = ServerProtocol(max_size=2**20, logger=logging.getLogger("emulator.ws"))
        conn = ServerConnection(
            sock,
            protocol,
            *((self._ws_flag,) if _TAKES_SERVER else ()),
            ping_interval=20,
            ping_timeout=20,
            close_timeout=1,
        )
        try:
            conn.handshake(timeout=5)
        except Exception:
            conn.close_socket()
            return
        if conn.protocol.state is not State.OPEN:
            conn.close_socket()
            return
        channel = (conn.request.path if conn.request is not None else "").split("?")[0].rstrip("/")
        if channel not in ("/ws/market", "/ws/user"):
            conn.close(1008, "unknown channel")
            return
        with self._ws_lock:
            if self._stop.is_set():
                conn.close(1001, "emulator shutting down")
                return
            self._ws_conns.add(conn)
        conn.start_keepalive()
        sink = WsSink(conn)
        try:
            if channel == "/ws/market":
                self._market_channel(conn, sink)
            else:
                self._user_channel(conn, sink)
        except ConnectionClosed:
            pass
        finally:
            sink.close()
            with self._ws_lock:
                self._ws_conns.discard(conn)
            with contextlib.suppress(Exception):
                conn.close()

    def _requests(self, conn: ServerConnection, sink: Sink, channel: Channel) -> Iterator[dict[str, Any]]:
        """The client's JSON object messages; a ``PING`` is answered (when the venue's faults allow)
        and anything else that is not a JSON object is ignored, as the venue does."""
        for msg in conn:
            text = msg if isinstance(msg, str) else msg.decode(errors="replace")
            if text.strip() == "PING":
                if self.venue.pong_allowed(channel):
                    sink.send("PONG")
                continue
            try:
                raw = msgspec.json.decode(text)
            except msgspec.DecodeError:
                continue
            if isinstance(raw, dict):
                yield raw

    def _market_channel(self, conn: ServerConnection, sink: WsSink) -> None:
        sub = MarketSub(sink)
        try:
            for raw in self._requests(conn, sink, "market"):
                assets = [str(a) for a in raw.get("assets_ids") or raw.get("asset_ids") or []]
                op = str(raw.get("operation", "subscribe")).lower()
                if op == "unsubscribe":
                    self.venue.unsubscribe_market(sub, assets)
                else:
                    self.venue.subscribe_market(
                        sub, assets, initial_dump=raw.get("initial_dump", True) is not False
                    )
        finally:
            self.venue.remove_sub(sub)

    def _user_channel(self, conn: ServerConnection, sink: Sink) -> None:
        sub: UserSub | None = None
        try:
            for raw in self._requests(conn, sink, "user"):
                markets = [str(x) for x in raw.get("markets") or []]
                if sub is None:
                    auth = raw.get("auth")
                    if not isinstance(auth, dict):
                        conn.close(1008, UNAUTHORIZED)
                        return
                    try:
                        creds = self.keys.check_ws(
                            str(auth.get("apiKey", "")),
                            str(auth.get("secret", "")),
                            str(auth.get("passphrase", "")),
                        )
                    except AuthError:
                        conn.close(1008, UNAUTHORIZED)
                        return
                    sub = UserSub(sink, creds.address, markets)
                    self.venue.subscribe_user(sub)
                elif str(raw.get("operation", "")).lower() == "unsubscribe":
                    with self.venue.lock:
                        sub.markets.difference_update(markets)
                else:
                    with self.venue.lock:
                        sub.markets.update(markets)
        finally:
            if sub is not None:
                self.venue.remove_sub(sub)
