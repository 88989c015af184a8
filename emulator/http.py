"""HTTP framing of the emulator: a threading HTTP/1.1 server with keep-alive, and the request handler
that reads one request (line, headers, ``Content-Length`` body) and writes one JSON reply.

What a request means is not decided here: the handler hands ``(method, path, query, headers, body)`` to
its ``App`` and writes back the ``Response``. A connection whose first bytes are ``GET /ws/`` is handed,
socket and all, to ``App.serve_ws``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

import msgspec

__all__ = ["App", "HTTPServer", "Handler", "Response"]

logger = logging.getLogger("emulator.server")

_JSON: Final = msgspec.json.Encoder()
_WS_PREFIX: Final = b"GET /ws/"
#: Largest request body read; a larger ``Content-Length`` is answered 413.
MAX_BODY: Final = 1 << 20


class Response(msgspec.Struct, frozen=True):
    """One reply: status, JSON value and extra headers."""

    status: int
    payload: Any
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class App(Protocol):
    """What the HTTP layer serves."""

    def handle(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Serve one REST request."""
        ...

    def serve_ws(self, sock: socket.socket) -> None:
        """Run one WebSocket connection on ``sock`` until it ends."""
        ...


class HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open sockets (to close them all at shutdown)."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, body_timeout_s: float = 2.0) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        #: Set when the emulator closes: a request read after that is dropped unanswered (the venue
        #: is gone), so nothing changes state while the connections are being torn down.
        self.closing = False
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-reply is routine; anything else is a bug worth one log line.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            logger.debug("emulator: connection from %s ended: %s", client_address, exc)
        else:
            logger.exception("emulator: request from %s failed", client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


def q1(query: Mapping[str, list[str]], name: str) -> str:
    """The last value of a query parameter ("" when absent)."""
    values = query.get(name)
    return values[-1] if values else ""


class Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection: requests in, JSON replies out (see the module docstring)."""

    protocol_version = "HTTP/1.1"
    server_version = "polymm-emulator"
    sys_version = ""
    # Idle keep-alive connections are closed after this long.
    timeout = 120
    server: HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and the client's
        # delayed ACK add ~40 ms to every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (never headers: they carry signatures and passphrases).
        logger.debug("%s %s", self.address_string(), format % args)

    # --- connection dispatch ----------------------------------------------------------------------

    def handle(self) -> None:
        if self._peek_ws():
            self.close_connection = True
            self.server.app.serve_ws(self.connection)
            return
        super().handle()

    def _peek_ws(self) -> bool:
        sock = self.connection
        deadline = time.monotonic() + 5
        while True:
            try:
                data = sock.recv(len(_WS_PREFIX), socket.MSG_PEEK)
            except OSError:
                return False
            if not data or not _WS_PREFIX.startswith(data[: len(_WS_PREFIX)]):
                return False
            if len(data) >= len(_WS_PREFIX):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # --- REST -------------------------------------------------------------------------------------

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = _JSON.encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _fail(self, status: int, message: str) -> None:
        # A request we cannot frame: answer it, then close (the rest of the stream is not trusted).
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._send(status, {"error": message}, {"Connection": "close"})

    def _body_length(self) -> int | None:
        # The one Content-Length, as digits only; None (after answering 400/413) when it is unusable.
        values = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding"):
            self._fail(400, "Transfer-Encoding is not supported: send a Content-Length")
            return None
        if not values:
            return 0
        texts = {v.strip() for v in values}
        if len(texts) != 1:
            self._fail(400, "conflicting Content-Length headers")
            return None
        (text,) = texts
        if not text.isascii() or not text.isdigit():
            self._fail(400, f"invalid Content-Length: {text[:20]!r}")
            return None
        if len(text) > 12 or int(text) > MAX_BODY:
            self._fail(413, f"payload too large: at most {MAX_BODY} bytes")
            return None
        return int(text)

    def _read_body(self, length: int) -> bytes | None:
        # Read exactly ``length`` bytes within the body timeout; None (after a 400) when they do not come.
        if not length:
            return b""
        self.connection.settimeout(self.server.body_timeout_s)
        try:
            body = self.rfile.read(length)
        except (TimeoutError, OSError):
            body = b""
        finally:
            with contextlib.suppress(OSError):
                self.connection.settimeout(self.timeout)
        if len(body) != length:
            self._fail(400, f"the body is shorter than its Content-Length ({length} bytes)")
            return None
        return body

    def _dispatch(self, method: str) -> None:
        if self.server.closing:
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        length = self._body_length()
        if length is None:
            return
        body = self._read_body(length)
        if body is None:
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.app.handle(method, path, query, headers, body)
        self._send(reply.status, reply.payload, reply.headers)
