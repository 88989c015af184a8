"""The emulator's network face: CLOB REST, Gamma and both WebSocket channels on one loopback port.

Serving stack, all from the standard library plus ``websockets`` (already a dependency):

* a ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, which is what the official clients'
  ``httpx`` needs (``DELETE`` requests carry JSON bodies, so every method reads ``Content-Length``);
* WebSocket connections arrive on the same port: a connection whose first bytes are ``GET /ws/`` is
  handed, socket and all, to ``websockets``' threaded server connection, which does the handshake
  and framing. Each WebSocket gets a reader thread (subscriptions, ``PING``) and a writer thread that
  drains a queue, so the venue never blocks on a slow client.

``Emulator`` wires it up: ``with Emulator(scenario, seed, port=0) as emu: emu.clob_url, emu.ws_url,
emu.gamma_url``. A background thread steps the venue every ``scenario.step_ms``; ``close()`` stops
everything and closes every connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import msgspec
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.sync.server import ServerConnection

from core.ports import Clock
from core.units import NS_PER_S, QTY_ONE, Side, format_px, parse_px, parse_qty, parse_tick
from emulator.auth import UNAUTHORIZED, ApiCreds, AuthError, KeyStore, recover_l1_address
from emulator.gamma import events_json, filter_markets, market_json
from emulator.orders import OrderError, PostOrder, decode_post_order
from emulator.scenario import Scenario, load_scenario, resolve_scenario
from emulator.venue import MarketSub, Sink, UserSub, Venue, VenueError, WallClock

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)

_JSON: Final = msgspec.json.Encoder()
#: Order requests counted per claimed address (``GET /emulator/status``).
_ORDER_REQUESTS: Final = {
    ("POST", "/order"): "post_order",
    ("POST", "/orders"): "post_orders",
    ("DELETE", "/order"): "cancel_order",
    ("DELETE", "/orders"): "cancel_orders",
    ("DELETE", "/cancel-all"): "cancel_all",
    ("DELETE", "/cancel-market-orders"): "cancel_market_orders",
}
_WS_PREFIX: Final = b"GET /ws/"
_MAX_BODY: Final = 1 << 20


class _ShutdownFlag:
    # ``websockets.sync.server.ServerConnection`` asks its server whether it is closing during the
    # handshake (``server.socket_closed``); this is all of the server it needs.
    def __init__(self) -> None:
        self.socket_closed = threading.Event()


class _WsSink:
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


def _q1(query: Mapping[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[-1] if values else ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "polymm-emulator"
    sys_version = ""
    # Idle keep-alive connections are closed after this long.
    timeout = 120
    server: _HTTPServer

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
            self.server.emulator.serve_ws(self.connection)
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

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        venue = emu.venue
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(413, {"error": "payload too large"})
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        kind = _ORDER_REQUESTS.get((method, path))
        if kind is not None:
            n = 1 if kind == "post_order" else 0
            if kind == "post_orders":
                with contextlib.suppress(msgspec.DecodeError):
                    raw = msgspec.json.decode(body)
                    n = len(raw) if isinstance(raw, list) else 0
            venue.count_request(self.headers.get("POLY_ADDRESS", ""), kind, n)
        if not path.startswith("/emulator/"):
            now_ms = venue.elapsed_ms()
            delay = emu.venue.faults.latency_s(method, path, now_ms)
            if delay:
                time.sleep(delay)
            fault = venue.faults.http_fault(method, path, now_ms)
            if fault is not None:
                headers = {"Retry-After": str(fault.retry_after_s)} if fault.status == 429 else {}
                self._send(
                    fault.status, {"error": fault.message or _FAULT_TEXT.get(fault.status, "error")}, headers
                )
                return
        try:
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = emu.route(method, path, query, headers, body)
        except VenueError as exc:
            status, payload = exc.status, exc.body
        except AuthError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except OrderError as exc:
            status, payload = 400, {"error": str(exc)}
        except Exception:
            logger.exception("emulator: %s %s failed", method, path)
            status, payload = 500, {"error": "internal error"}
        self._send(status, payload)


_FAULT_TEXT: Final = {
    425: "the matching engine is restarting, try again later",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Trading is currently disabled",
}


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise VenueError(400, "Invalid payload: not JSON") from None


class Emulator:
    """The exchange emulator: a venue behind CLOB REST, Gamma and WebSocket endpoints.

    Args:
        scenario: A ``Scenario``, a scenario name in ``configs/emulator/`` or a YAML path.
        seed: Seed of the flow, the faults and the credentials; the scenario's ``seed`` when None.
        host: Address to bind; loopback by default.
        port: TCP port; 0 picks a free one (read it back from ``port``).
        clock: Time source (the wall clock by default).
        base_dir: Directory for relative replay paths (the scenario file's directory by default).
    """

    def __init__(
        self,
        scenario: Scenario | str | Path,
        seed: int | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        base_dir: Path | None = None,
    ) -> None:
        if not isinstance(scenario, Scenario):
            path = resolve_scenario(str(scenario))
            base_dir = base_dir or path.parent
            scenario = load_scenario(path)
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.clock: Clock = clock or WallClock()
        self.venue = Venue(scenario, self.seed, self.clock, base_dir)
        self.keys = KeyStore(hashlib.sha256(f"polymm-emulator-keys:{self.seed}".encode()).digest())
        self._httpd = _HTTPServer((host, port), self)
        self.host = str(self._httpd.server_address[0])
        self.port = int(self._httpd.server_address[1])
        self._stop = threading.Event()
        self._ws_flag = _ShutdownFlag()
        self._ws_conns: set[ServerConnection] = set()
        self._ws_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._routes = self._build_routes()

    # --- life cycle ---------------------------------------------------------------------------------

    @property
    def clob_url(self) -> str:
        """CLOB REST root, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """WebSocket root; the channels are ``{ws_url}/market`` and ``{ws_url}/user``."""
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def ws_market_url(self) -> str:
        """Market channel URL."""
        return f"{self.ws_url}/market"

    @property
    def ws_user_url(self) -> str:
        """User channel URL."""
        return f"{self.ws_url}/user"

    @property
    def gamma_url(self) -> str:
        """Gamma root (pass it as ``--gamma-url``)."""
        return f"{self.clob_url}/gamma"

    def start(self) -> Emulator:
        """Start serving and stepping in background threads; returns self."""
        if self._started:
            return self
        self._started = True
        serve = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="emulator-http",
            daemon=True,
        )
        step = threading.Thread(target=self._step_loop, name="emulator-step", daemon=True)
        self._threads = [serve, step]
        for t in self._threads:
            t.start()
        logger.info("emulator: serving %s (ws %s, gamma %s)", self.clob_url, self.ws_url, self.gamma_url)
        return self

    def close(self) -> None:
        """Stop stepping and serving, and close every connection (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._ws_flag.socket_closed.set()
        if self._started:
            self._httpd.shutdown()
        with self._ws_lock:
            conns = list(self._ws_conns)
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close(1001, "emulator shutting down")
        with self._httpd.sockets_lock:
            socks = list(self._httpd.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self) -> None:
        """Block until ``close()`` is called from another thread (or KeyboardInterrupt)."""
        while not self._stop.wait(0.5):
            pass

    def _step_loop(self) -> None:
        interval = self.scenario.step_ms / 1000
        while not self._stop.wait(interval):
            try:
                self.venue.step()
            except Exception:
                logger.exception("emulator: venue step failed")

    def status(self) -> dict[str, Any]:
        """What ``GET /emulator/status`` serves."""
        out = self.venue.status()
        with self._ws_lock:
            out["ws_connections"] = len(self._ws_conns)
        for info in out["users"].values():
            info["api_keys"] = (
                list(self.keys.keys_of(info["address"])) if info["address"].startswith("0x") else []
            )
        out["urls"] = {"clob": self.clob_url, "ws": self.ws_url, "gamma": self.gamma_url}
        return out

    # --- REST routing ---------------------------------------------------------------------------------

    def _now_s(self) -> int:
        return self.clock.now_ns() // NS_PER_S

    def _l2(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> ApiCreds:
        return self.keys.verify_l2(
            headers, method, path, body, now_s=self._now_s(), max_skew_s=self.scenario.auth_max_skew_s
        )

    def _authed(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> int:
        # For routes that only need the caller to be authenticated: 200 once L2 checks out.
        self._l2(headers, method, path, body)
        return 200

    def _build_routes(self) -> dict[tuple[str, str], Callable[..., tuple[int, Any]]]:
        v = self.venue
        return {
            ("GET", "/"): lambda q, h, b: (200, "OK"),
            ("GET", "/ok"): lambda q, h, b: (200, "OK"),
            ("GET", "/time"): lambda q, h, b: (200, self._now_s()),
            ("GET", "/version"): lambda q, h, b: (200, {"version": self.scenario.order_version}),
            ("POST", "/auth/api-key"): self._create_key,
            ("GET", "/auth/derive-api-key"): self._derive_key,
            ("GET", "/auth/api-keys"): lambda q, h, b: (
                200,
                {"apiKeys": list(self.keys.keys_of(self._l2(h, "GET", "/auth/api-keys", b).address))},
            ),
            ("GET", "/auth/ban-status/closed-only"): lambda q, h, b: (
                self._authed(h, "GET", "/auth/ban-status/closed-only", b),
                {"closed_only": False},
            ),
            ("GET", "/book"): lambda q, h, b: (200, v.book(_q1(q, "token_id"))),
            ("POST", "/books"): lambda q, h, b: (200, [v.book(_token(x)) for x in _list(_decode(b))]),
            ("GET", "/midpoint"): lambda q, h, b: (200, {"mid": v.midpoint(_q1(q, "token_id"))}),
            ("POST", "/midpoints"): lambda q, h, b: (
                200,
                {_token(x): v.midpoint(_token(x)) for x in _list(_decode(b))},
            ),
            ("GET", "/price"): lambda q, h, b: (200, {"price": v.price(_q1(q, "token_id"), _q1(q, "side"))}),
            ("POST", "/prices"): self._prices,
            ("GET", "/spread"): lambda q, h, b: (200, {"spread": v.spread(_q1(q, "token_id"))}),
            ("POST", "/spreads"): lambda q, h, b: (
                200,
                {_token(x): v.spread(_token(x)) for x in _list(_decode(b))},
            ),
            ("GET", "/last-trade-price"): lambda q, h, b: (200, v.last_trade_price(_q1(q, "token_id"))),
            ("POST", "/last-trades-prices"): lambda q, h, b: (
                200,
                [{"token_id": _token(x), **v.last_trade_price(_token(x))} for x in _list(_decode(b))],
            ),
            ("GET", "/tick-size"): lambda q, h, b: (
                200,
                {"minimum_tick_size": float(format_px(v.tick_size(_q1(q, "token_id"))))},
            ),
            ("GET", "/neg-risk"): lambda q, h, b: (200, {"neg_risk": v.token_info(_q1(q, "token_id"))[1]}),
            ("GET", "/fee-rate"): lambda q, h, b: (
                200,
                {"base_fee": 1000 if v.token_info(_q1(q, "token_id"))[2] else 0},
            ),
            ("GET", "/markets"): lambda q, h, b: (200, _one_page(v.clob_markets())),
            ("GET", "/sampling-markets"): lambda q, h, b: (200, _one_page(v.clob_markets())),
            ("GET", "/simplified-markets"): lambda q, h, b: (
                200,
                _one_page([_simplified(m) for m in v.clob_markets()]),
            ),
            ("GET", "/sampling-simplified-markets"): lambda q, h, b: (
                200,
                _one_page([_simplified(m) for m in v.clob_markets()]),
            ),
            ("POST", "/order"): self._post_order,
            ("POST", "/orders"): self._post_orders,
            ("DELETE", "/order"): self._cancel_order,
            ("DELETE", "/orders"): self._cancel_orders,
            ("DELETE", "/cancel-all"): lambda q, h, b: (
                200,
                v.cancel_all(self._l2(h, "DELETE", "/cancel-all", b)),
            ),
            ("DELETE", "/cancel-market-orders"): self._cancel_market,
            ("GET", "/data/orders"): lambda q, h, b: (
                200,
                v.open_orders(self._l2(h, "GET", "/data/orders", b), _flat(q), _q1(q, "next_cursor")),
            ),
            ("GET", "/data/trades"): lambda q, h, b: (
                200,
                v.trades(self._l2(h, "GET", "/data/trades", b), _flat(q), _q1(q, "next_cursor")),
            ),
            ("GET", "/balance-allowance"): lambda q, h, b: (
                200,
                v.balance_allowance(
                    self._l2(h, "GET", "/balance-allowance", b), _q1(q, "asset_type"), _q1(q, "token_id")
                ),
            ),
            ("GET", "/balance-allowance/update"): lambda q, h, b: (
                self._authed(h, "GET", "/balance-allowance/update", b),
                {},
            ),
            ("POST", "/v1/heartbeats"): self._heartbeat,
            ("GET", "/order-scoring"): lambda q, h, b: (
                self._authed(h, "GET", "/order-scoring", b),
                {"scoring": False},
            ),
            ("POST", "/orders-scoring"): lambda q, h, b: (
                self._authed(h, "POST", "/orders-scoring", b),
                dict.fromkeys(_list(_decode(b)), False),
            ),
            ("GET", "/emulator/status"): lambda q, h, b: (200, self.status()),
            ("POST", "/emulator/take"): self._take,
            ("POST", "/emulator/tick"): self._set_tick,
            ("GET", "/gamma/markets"): self._gamma_markets,
            ("GET", "/gamma/events"): self._gamma_events,
        }

    def route(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        """Serve one REST request; returns ``(status, JSON value)`` (raises ``VenueError``/``AuthError``)."""
        handler = self._routes.get((method, path))
        if handler is not None:
            return handler(query, headers, body)
        v = self.venue
        head, _, rest = path.lstrip("/").partition("/")
        if method == "GET" and rest:
            match head:
                case "markets":
                    return 200, v.clob_market(rest)
                case "clob-markets":
                    return 200, v.clob_market_info(rest)
                case "markets-by-token":
                    cid, _, _ = v.token_info(rest)
                    return 200, {"condition_id": cid}
                case "tick-size":
                    return 200, {"minimum_tick_size": float(format_px(v.tick_size(rest)))}
                case "data" if rest.startswith("order/"):
                    creds = self._l2(headers, method, path, body)
                    return 200, v.order(creds, rest.removeprefix("order/"))
                case "gamma" if rest.startswith("markets/"):
                    key = rest.removeprefix("markets/")
                    found = [
                        market_json(m)
                        for m in v.gamma_markets()
                        if key in (m.gamma_id, m.slug, m.condition_id)
                    ]
                    if not found:
                        raise VenueError(404, "market not found")
                    return 200, found[0]
        raise VenueError(404, f"no route for {method} {path}")

    def _create_key(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        address, nonce = recover_l1_address(h, now_s=self._now_s(), max_skew_s=self.scenario.auth_max_skew_s)
        creds = self.keys.create(address, nonce)
        if creds is None:
            return 400, {"error": "Could not create api key"}
        self.venue.register(creds)
        return 200, {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}

    def _derive_key(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        address, nonce = recover_l1_address(h, now_s=self._now_s(), max_skew_s=self.scenario.auth_max_skew_s)
        creds = self.keys.derive(address, nonce)
        self.venue.register(creds)
        return 200, {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}

    def _prices(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        out: dict[str, dict[str, str]] = {}
        for x in _list(_decode(b)):
            token = _token(x)
            sides = [str(x.get("side"))] if isinstance(x, dict) and x.get("side") else ["BUY", "SELL"]
            for side in sides:
                with contextlib.suppress(VenueError):
                    out.setdefault(token, {})[side.upper()] = self.venue.price(token, side)
        return 200, out

    def _post_order(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/order", b)
        po = decode_post_order(_decode(b))
        rule = self.venue.faults.reject("POST", "/order", self.venue.elapsed_ms())
        result = self.venue.place(creds, [po], [rule])[0]
        if result.http_status != 200:
            return result.http_status, {
                "error": result.reply.get("errorMsg") or result.reply.get("error", "")
            }
        return 200, result.reply

    def _post_orders(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/orders", b)
        raw = _decode(b)
        if not isinstance(raw, list):
            raise VenueError(400, "Invalid payload: expected a JSON array of orders")
        if len(raw) > self.scenario.max_batch:
            raise VenueError(
                400, f"Too many orders in payload: {len(raw)}, max allowed: {self.scenario.max_batch}"
            )
        orders: list[PostOrder | None] = []
        errors: dict[int, str] = {}
        for i, x in enumerate(raw):
            try:
                orders.append(decode_post_order(x))
            except OrderError as exc:
                orders.append(None)
                errors[i] = str(exc)
        now_ms = self.venue.elapsed_ms()
        valid = [po for po in orders if po is not None]
        rules = [self.venue.faults.reject("POST", "/orders", now_ms) for _ in valid]
        results = iter(self.venue.place(creds, valid, rules))
        replies: list[dict[str, Any]] = []
        for i, po in enumerate(orders):
            if po is None:
                replies.append(
                    {
                        "success": False,
                        "errorMsg": errors[i],
                        "orderID": "",
                        "status": "",
                        "makingAmount": "",
                        "takingAmount": "",
                        "transactionsHashes": [],
                        "tradeIDs": [],
                    }
                )
                continue
            reply = next(results).reply
            if "error" in reply:
                reply = {
                    "success": False,
                    "errorMsg": reply["error"],
                    "orderID": "",
                    "status": "",
                    "makingAmount": "",
                    "takingAmount": "",
                    "transactionsHashes": [],
                    "tradeIDs": [],
                }
            replies.append(reply)
        return 200, replies

    def _cancel_order(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/order", b)
        raw = _decode(b)
        oid = raw.get("orderID") or raw.get("orderId") if isinstance(raw, dict) else None
        if not isinstance(oid, str) or not oid:
            raise VenueError(400, "Invalid payload: orderID is required")
        return 200, self.venue.cancel(creds, [oid])

    def _cancel_orders(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/orders", b)
        raw = _decode(b)
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise VenueError(400, "Invalid payload: expected a JSON array of order ids")
        if len(raw) > 1000:
            raise VenueError(400, f"Too many order ids in payload: {len(raw)}, max allowed: 1000")
        return 200, self.venue.cancel(creds, raw)

    def _cancel_market(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/cancel-market-orders", b)
        raw = _decode(b) or {}
        if not isinstance(raw, dict):
            raise VenueError(400, "Invalid payload: expected {market, asset_id}")
        return 200, self.venue.cancel_market(
            creds, str(raw.get("market") or ""), str(raw.get("asset_id") or "")
        )

    def _heartbeat(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/v1/heartbeats", b)
        raw = _decode(b) or {}
        hb = raw.get("heartbeat_id") if isinstance(raw, dict) else None
        return 200, self.venue.heartbeat(creds, hb if isinstance(hb, str) else None)

    def _take(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        if not isinstance(raw, dict):
            raise VenueError(400, 'expected {"market", "side", "size"[, "price"]}')
        side = Side.BUY if str(raw.get("side", "")).upper() == "BUY" else Side.SELL
        try:
            qty = parse_qty(str(raw.get("size", "")))
            px = parse_px(str(raw["price"])) if raw.get("price") is not None else None
        except ValueError as exc:
            raise VenueError(400, str(exc)) from None
        report = self.venue.take(str(raw.get("market", "")), side, qty, px)
        return 200, {"trades": len(report.trades), "filled": sum(t.qty for t in report.trades) / QTY_ONE}

    def _set_tick(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        if not isinstance(raw, dict):
            raise VenueError(400, 'expected {"market", "tick_size"}')
        try:
            tick = parse_tick(str(raw.get("tick_size", "")))
            self.venue.set_tick(str(raw.get("market", "")), tick)
        except ValueError as exc:
            raise VenueError(400, str(exc)) from None
        return 200, {"tick_size": format_px(tick)}

    def _gamma_markets(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        page = filter_markets(self.venue.gamma_markets(), q)
        if page is None:
            return 422, {"error": "offset is past the end of the listing"}
        return 200, page

    def _gamma_events(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        wanted = set(q.get("id", ()))
        events = events_json(self.venue.gamma_markets())
        return 200, [e for e in events if not wanted or e["id"] in wanted]

    # --- WebSocket ------------------------------------------------------------------------------------

    def serve_ws(self, sock: socket.socket) -> None:
        """Run one WebSocket connection on ``sock`` (its first bytes are ``GET /ws/``) until it ends."""
        sock.settimeout(None)
        protocol = ServerProtocol(max_size=2**20, logger=logging.getLogger("emulator.ws"))
        conn = ServerConnection(
            sock,
            protocol,
            self._ws_flag,  # type: ignore[arg-type]
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
        sink = _WsSink(conn)
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

    def _market_channel(self, conn: ServerConnection, sink: _WsSink) -> None:
        sub = MarketSub(sink)
        try:
            for msg in conn:
                text = msg if isinstance(msg, str) else msg.decode(errors="replace")
                if text.strip() == "PING":
                    if self.venue.pong_allowed("market"):
                        sink.send("PONG")
                    continue
                try:
                    raw = msgspec.json.decode(text)
                except msgspec.DecodeError:
                    continue
                if not isinstance(raw, dict):
                    continue
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
            for msg in conn:
                text = msg if isinstance(msg, str) else msg.decode(errors="replace")
                if text.strip() == "PING":
                    if self.venue.pong_allowed("user"):
                        sink.send("PONG")
                    continue
                try:
                    raw = msgspec.json.decode(text)
                except msgspec.DecodeError:
                    continue
                if not isinstance(raw, dict):
                    continue
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


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise VenueError(400, "Invalid payload: expected a JSON array")
    return raw


def _token(x: Any) -> str:
    if isinstance(x, dict) and x.get("token_id"):
        return str(x["token_id"])
    raise VenueError(400, "Invalid payload: every item needs a token_id")


def _flat(query: Mapping[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in query.items() if v}


def _one_page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": items, "next_cursor": "LTE=", "limit": len(items), "count": len(items)}


def _simplified(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("condition_id", "rewards", "tokens", "active", "closed", "archived", "accepting_orders")
    return {k: m[k] for k in keys}
