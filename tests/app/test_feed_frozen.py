"""A market feed that answers pings but sends nothing: the trading engine pulls its quotes (fakes).

A loopback WebSocket venue sends one book and then only ``PONG``s; a loopback REST server serves the
venue's ``/book``, which the test moves. Tests wait on conditions with generous timeouts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import msgspec
import pytest
from websockets.sync.server import ServerConnection, serve

from app.bootstrap import TradingEngine
from app.configfile import load_config
from core.markets import MarketInfo
from core.units import PX_ONE, QTY_ONE, Outcome, Side, format_px

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"
STREAM: list[dict[str, Any]] = msgspec.json.decode(
    (FIX / "stream_book_price_change_burst_2026-09.json").read_bytes()
)
BOOK = STREAM[0]  # the YES token's book
NO_TOKEN = "54179564009642723353355316176091991063553046330768303687769988635499280029688"
INFO = MarketInfo(
    market=BOOK["market"], yes_token=BOOK["asset_id"], no_token=NO_TOKEN, tick_px=10, min_qty=5 * QTY_ONE
)
AUDIT_S = 0.5
GRACE_S = 0.3  # book_audit.AuditConfig's default


def px(level: dict[str, str]) -> int:
    return round(float(level["price"]) * PX_ONE)


def mirror(levels: list[dict[str, str]]) -> list[dict[str, str]]:
    # One token's side as the other token's opposite side, in the same order (the best stays last).
    return [{"price": format_px(PX_ONE - px(x)), "size": x["size"]} for x in levels]


def wait_for(predicate: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


class Venue:
    """The fake venue: a market channel that goes silent after its first book, and REST ``/book``."""

    def __init__(self) -> None:
        self.book = dict(BOOK)  # the venue's YES book, as REST serves it
        self.rest_ts_ms = int(BOOK["timestamp"])
        self.connections = 0
        self.lock = threading.Lock()

    def rest_book(self, token: str) -> dict[str, Any]:
        with self.lock:
            self.rest_ts_ms += 100
            book = {k: v for k, v in self.book.items() if k != "event_type"} | {
                "timestamp": str(self.rest_ts_ms)
            }
        if token == NO_TOKEN:  # the NO book mirrors the YES book
            book |= {"asset_id": NO_TOKEN, "bids": mirror(book["asks"]), "asks": mirror(book["bids"])}
        return book

    def best_px(self) -> tuple[int, int]:
        """The venue's best YES bid and ask."""
        with self.lock:
            return px(self.book["bids"][-1]), px(self.book["asks"][-1])

    def move_through(self, bid_px: int) -> None:
        """The venue's best ask drops to ``bid_px``: a bid of ours there would cross it."""
        with self.lock:
            asks = [a for a in self.book["asks"] if px(a) > bid_px + 50]
            asks.append({"price": format_px(bid_px), "size": "500"})  # best last
            bids = [b for b in self.book["bids"] if px(b) < bid_px]
            self.book = self.book | {"asks": asks, "bids": bids}

    def ws_handler(self, ws: ServerConnection) -> None:
        with self.lock:
            first = self.connections == 0
            self.connections += 1
        ws.recv()  # the subscription
        if first:
            ws.send(msgspec.json.encode(BOOK).decode())
        with contextlib.suppress(Exception):
            for msg in ws:  # PONGs, and never another book: frozen
                if msg == "PING":
                    ws.send("PONG")


@contextlib.contextmanager
def serving(venue: Venue) -> Iterator[tuple[str, str]]:
    class Rest(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            token = parse_qs(url.query).get("token_id", [""])[0]
            body = msgspec.json.encode(venue.rest_book(token))
            self.send_response(200 if url.path == "/book" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    rest = ThreadingHTTPServer(("127.0.0.1", 0), Rest)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    with serve(venue.ws_handler, "127.0.0.1", 0, compression=None) as ws_server:
        threading.Thread(target=ws_server.serve_forever, daemon=True).start()
        try:
            yield (
                f"ws://127.0.0.1:{ws_server.socket.getsockname()[1]}",
                f"http://127.0.0.1:{rest.server_port}",
            )
        finally:
            ws_server.shutdown()
            rest.shutdown()
            rest.server_close()


def engine_for(tmp_path: Path, ws_url: str, clob_url: str, audit_s: float) -> TradingEngine:
    cfg = load_config("configs/market_maker.yaml")
    cfg = msgspec.structs.replace(cfg, ops=msgspec.structs.replace(cfg.ops, book_audit_s=audit_s))
    return TradingEngine(cfg, [INFO], "dry-run", ws_url=ws_url, clob_url=clob_url, state_dir=tmp_path)


def events(tmp_path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in (tmp_path / "events.jsonl").read_bytes().splitlines()]


def crosses(place: dict[str, Any], best_bid_px: int, best_ask_px: int) -> bool:
    """Whether a post-only order (on either token) would cross the YES book ``best_bid_px/best_ask_px``."""
    buys_yes = (place["side"] == Side.BUY) == (place["outcome"] == Outcome.YES)
    yes_px = place["px"] if place["outcome"] == Outcome.YES else PX_ONE - place["px"]
    return yes_px >= best_ask_px if buys_yes else yes_px <= best_bid_px


@pytest.fixture
def venue() -> Venue:
    return Venue()


def quoting(engine: TradingEngine) -> Any:
    s = engine.statuses().get(INFO.market)
    return s if s is not None and s.last_quote and s.open_orders > 0 else None


def pulled(engine: TradingEngine) -> bool:
    s = engine.statuses().get(INFO.market)
    return s is not None and not s.book_valid and s.open_orders == 0


def test_a_frozen_feed_that_answers_pings_gets_its_quotes_pulled_within_one_audit_period(venue, tmp_path):
    with serving(venue) as (ws_url, clob_url):
        engine = engine_for(tmp_path, ws_url, clob_url, AUDIT_S)
        engine.start()
        try:
            status = wait_for(lambda: quoting(engine))
            assert engine.feed is not None
            wait_for(lambda: engine.feed.status().audit_matches >= 1)  # a quiet book is left alone
            assert quoting(engine)

            bid_px = status.last_bids[0][0]
            moved_ns = engine.clock.now_ns()
            venue.move_through(bid_px)  # the venue moves through our bid; the feed says nothing
            venue_bid_px, venue_ask_px = venue.best_px()
            wait_for(lambda: pulled(engine))
            pulled_s = (engine.clock.now_ns() - moved_ns) / 1e9

            feed = engine.feed.status()
            # No quote on the frozen book: the connection was dropped, and the next one is frozen too.
            wait_for(lambda: engine.feed.status().connects >= 2)
            assert not quoting(engine)
        finally:
            engine.stop()
            engine.close()

    assert feed.frozen_reconnects == 1  # the socket stayed open: the audit had to drop it
    assert pulled_s <= AUDIT_S + GRACE_S + 2.0, pulled_s  # one audit period, its grace, and slack
    log = events(tmp_path)
    pull = next(e for e in log if e["kind"] == "cancel_all" and e["ts_ns"] >= moved_ns)
    assert pull["reason"] == "feed_lost"
    # Nothing sent after the move would have crossed the venue's book.
    after = [e for e in log if e["kind"] == "place" and e["ts_ns"] >= moved_ns]
    assert not [p for p in after if crosses(p, venue_bid_px, venue_ask_px)]


def test_request_book_resync_audits_at_once(venue, tmp_path):
    with serving(venue) as (ws_url, clob_url):
        engine = engine_for(tmp_path, ws_url, clob_url, audit_s=600.0)  # no periodic audit in this test
        engine.start()
        try:
            status = wait_for(lambda: quoting(engine))
            venue.move_through(status.last_bids[0][0])

            engine.request_book_resync(INFO.market)  # what a post-only rejection calls

            wait_for(lambda: pulled(engine))
            assert engine.feed is not None
            feed = engine.feed.status()
        finally:
            engine.stop()
            engine.close()

    assert feed.audit_requests == 1 and feed.audits == 1


def test_the_audit_can_be_turned_off(venue, tmp_path):
    with serving(venue) as (ws_url, clob_url):
        engine = engine_for(tmp_path, ws_url, clob_url, audit_s=0)
        engine.start()
        try:
            wait_for(lambda: quoting(engine))
            engine.request_book_resync(INFO.market)  # a no-op without an audit
            assert engine.feed is not None
            status = engine.feed.status()
        finally:
            engine.stop()
            engine.close()

    assert status.audits == 0 and status.audit_requests == 0
