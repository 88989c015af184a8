"""The trading engine pulls its quotes when the market feed drops, and quotes again on the new book."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
from websockets.sync.server import ServerConnection, serve

from app.bootstrap import TradingEngine
from app.configfile import load_config
from core.markets import MarketInfo
from core.units import QTY_ONE

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


def wait_for(predicate: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_dropped_feed_pulls_the_quotes_until_a_fresh_book_arrives(tmp_path):
    dropped, resume = threading.Event(), threading.Event()
    connections: list[int] = []

    def handler(ws: ServerConnection) -> None:
        n = len(connections)
        connections.append(n)
        ws.recv()  # the subscription
        if n == 0:
            ws.send(msgspec.json.encode(BOOK).decode())
            assert resume.wait(10)  # the test has seen the quotes
            resume.clear()
            ws.socket.shutdown(socket.SHUT_RDWR)  # a drop, no close handshake
            dropped.set()
            return
        assert resume.wait(10)  # the test has seen the quotes pulled
        ws.send(msgspec.json.encode(BOOK).decode())
        with contextlib.suppress(Exception):
            for msg in ws:
                if msg == "PING":
                    ws.send("PONG")

    with serve(handler, "127.0.0.1", 0, compression=None) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        engine = TradingEngine(
            load_config("configs/market_maker.yaml"),
            [INFO],
            "dry-run",
            ws_url=f"ws://127.0.0.1:{port}",
            clob_url="http://127.0.0.1:9",  # never reached: the books come over the feed
            state_dir=tmp_path,
        )
        engine.start()
        try:

            def status() -> Any:
                return engine.statuses().get(INFO.market)

            assert wait_for(lambda: (s := status()) is not None and s.last_quote and s.open_orders > 0)
            resume.set()
            assert dropped.wait(10)

            # Blind: every order pulled (the dry-run port confirms the cancels), nothing quoted.
            assert wait_for(lambda: (s := status()) is not None and not s.book_valid and s.open_orders == 0)
            assert not status().last_quote

            resume.set()  # the reconnect's book
            assert wait_for(lambda: (s := status()) is not None and s.last_quote and s.open_orders > 0)
            assert connections == [0, 1]
        finally:
            engine.stop()
            engine.close()
            server.shutdown()
