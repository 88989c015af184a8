"""A Gamma API on 127.0.0.1 for tests: real payloads from ``tests/fixtures/gamma/``, paged like Gamma.

``GET /markets`` honours ``limit`` (capped at 100), ``offset``, ``order``, ``ascending``, ``active``,
``closed``, ``archived``, ``end_date_min`` and ``liquidity_num_min``, and answers HTTP 422 once ``offset``
runs past the end, as Gamma does. ``GET /events`` returns the events whose ``id`` is asked for.
``GET /book?token_id=`` serves ``books[token_id]`` (a JSON value, or ``bytes`` sent as they are), and
the venue's 404 for a token without one, so the server can stand in for the CLOB's REST books too.
``fail(status, times)`` queues error answers (429, 500, ...) before the next real ones. Every request is
recorded in ``requests``. The server only ever binds the loopback address.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "gamma"

_SINGLE_MARKETS = (
    "market_btc_updown_5m_2026-03.json",
    "market_btc_updown_5m_twap_subset_2026-08.json",
    "market_closed_binary_accepting_false_2026.json",
    "market_closed_binary_accepting_true_2026.json",
    "market_closed_nonbinary_legacy_2020.json",
    "market_closed_zero_zero_legacy_2020.json",
    "market_politics_negrisk_live_2026-06.json",
    "market_sports_map_handicap_2026-04.json",
    "market_sports_money_line_2026-04.json",
)


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_events() -> list[dict[str, Any]]:
    """Every real event object in the fixtures (``/events`` and ``/public-search`` payloads)."""
    return [*_load("events_democratic_nominee_2028.json"), *_load("public_search_2026-03.json")["events"]]


def fixture_markets() -> list[Any]:
    """Every real market object in the fixtures, as ``GET /markets`` would list them.

    Markets nested in an event carry no ``events`` back-reference there; ``/markets`` serves one
    (``[{id, ticker, slug, title}]``), so it is added here, from the enclosing event.
    """
    markets: list[Any] = [_load(n) for n in _SINGLE_MARKETS]
    markets.extend(_load("markets_list_derived_btc5m_2026-07-24_first10.json"))
    for ev in fixture_events():
        for m in ev.get("markets", []):
            m2 = copy.deepcopy(m)
            m2.setdefault("events", [{k: ev[k] for k in ("id", "ticker", "slug", "title") if k in ev}])
            markets.append(m2)
    return markets


def malformed_markets() -> list[Any]:
    """Synthetic broken records (see ``fixtures/gamma/PROVENANCE.md``)."""
    return _load("malformed_markets_synthetic.json")


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _flag(obj: Any, key: str) -> bool:
    return isinstance(obj, dict) and obj.get(key) is True


class GammaServer:
    """A threaded HTTP server on 127.0.0.1 with an ephemeral port; use as a context manager."""

    def __init__(
        self,
        markets: list[Any] | None = None,
        events: list[dict[str, Any]] | None = None,
        *,
        filter_markets: bool = True,
    ) -> None:
        self.markets = fixture_markets() if markets is None else markets
        self.events = fixture_events() if events is None else events
        self.filter_markets = filter_markets
        self.books: dict[str, Any] = {}
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self._faults: deque[tuple[str, int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="gamma-server", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43123``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> GammaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def fail(
        self, status: int, times: int = 1, *, path: str = "/markets", retry_after: str | None = None
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status``."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._faults.extend((path, status, headers) for _ in range(times))

    def paths(self, path: str = "/markets") -> list[dict[str, list[str]]]:
        """Query parameters of every request made to ``path``."""
        return [q for p, q in self.requests if p == path]

    def _take_fault(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            if self._faults and self._faults[0][0] == path:
                _, status, headers = self._faults.popleft()
                return status, headers
        return None

    def _list_markets(self, q: dict[str, list[str]]) -> list[Any]:
        items = list(self.markets)
        one = {k: v[-1] for k, v in q.items()}
        if self.filter_markets:
            for key in ("active", "closed", "archived"):
                if key in one:
                    want = one[key] == "true"
                    items = [m for m in items if not isinstance(m, dict) or _flag(m, key) == want]
            if "end_date_min" in one:
                floor = datetime.fromisoformat(one["end_date_min"].replace("Z", "+00:00"))
                items = [
                    m
                    for m in items
                    if not isinstance(m, dict)
                    or not m.get("endDate")
                    or datetime.fromisoformat(str(m["endDate"]).replace("Z", "+00:00")) >= floor
                ]
            if "liquidity_num_min" in one:
                floor_liq = float(one["liquidity_num_min"])
                items = [
                    m for m in items if not isinstance(m, dict) or _num(m.get("liquidityNum")) >= floor_liq
                ]
        order = one.get("order")
        if order:
            descending = one.get("ascending", "false") != "true"
            items.sort(key=lambda m: _num(m.get(order)) if isinstance(m, dict) else 0.0, reverse=descending)
        return items

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                q = parse_qs(parts.query)
                server.requests.append((parts.path, q))
                fault = server._take_fault(parts.path)
                if fault is not None:
                    status, headers = fault
                    self._send(status, {"error": f"injected {status}"}, headers)
                    return
                if parts.path == "/markets":
                    items = server._list_markets(q)
                    limit = min(int(q.get("limit", ["100"])[-1]), 100)
                    offset = int(q.get("offset", ["0"])[-1])
                    if offset > 0 and offset >= len(items):
                        self._send(422, {"error": "offset out of range"})
                        return
                    self._send(200, items[offset : offset + limit])
                elif parts.path == "/events":
                    ids = set(q.get("id", []))
                    self._send(200, [e for e in server.events if not ids or str(e.get("id")) in ids])
                elif parts.path == "/book":
                    book = server.books.get(q.get("token_id", [""])[-1])
                    if book is None:
                        self._send(404, {"error": "No orderbook exists for the requested token id"})
                    else:
                        self._send(200, book)
                else:
                    self._send(404, {"error": "not found"})

        return Handler
