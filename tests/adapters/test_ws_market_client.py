"""End-to-end tests of the market-channel client against a tiny WebSocket venue on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve

from adapters.polymarket.parse import AssetMap, decode_market_frame
from adapters.polymarket.ws_market import MarketWsClient, MarketWsConfig, backoff_delay_s
from core.messages import BookDelta, BookSnapshot, MarketEvent
from core.units import Outcome, Side

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"
STREAM: list[dict[str, Any]] = msgspec.json.decode(
    (FIX / "stream_book_price_change_burst_2026-09.json").read_bytes()
)
MARKET = "0x285746de0e4f751fd4dc8f9dc2cecd0101ba9ad0096a43145ed9643b09514f01"
TOKEN_A = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
TOKEN_B = "54179564009642723353355316176091991063553046330768303687769988635499280029688"
ASSETS = AssetMap({TOKEN_A: (MARKET, Outcome.YES), TOKEN_B: (MARKET, Outcome.NO)})
FIRST_BOOK, DELTAS, FINAL_BOOK = STREAM[0], STREAM[1:-1], STREAM[-1]
WAIT_S = 5.0

Script = Callable[[ServerConnection, "FakeVenue"], Awaitable[None]]


def fast_config(url: str, **changes: Any) -> MarketWsConfig:
    cfg = MarketWsConfig(
        url=url,
        clob_url="http://clob.test",
        proxy=None,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        snapshot_timeout_s=None,
        open_timeout_s=2.0,
        close_timeout_s=0.2,
    )
    return msgspec.structs.replace(cfg, **changes)


class Recorder:
    """on_event spy; tests wait on a predicate over what it saw (any thread)."""

    def __init__(self) -> None:
        self.events: list[MarketEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: MarketEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[MarketEvent]], bool], timeout: float = WAIT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.events), timeout)

    async def until(self, predicate: Callable[[list[MarketEvent]], bool]) -> None:
        assert await asyncio.to_thread(self.wait_for, predicate), f"timed out; saw {len(self.events)} events"


class FakeVenue:
    """Serves one script per connection (the last one repeats) and records what clients sent."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = scripts
        self.subscriptions: list[Any] = []
        self.pings = 0
        self.changed = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        index = len(self.subscriptions)
        self.subscriptions.append(msgspec.json.decode(await ws.recv()))
        self.changed.set()
        await self.scripts[min(index, len(self.scripts) - 1)](ws, self)

    async def until(self, predicate: Callable[[FakeVenue], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

    async def answer_pings(self, ws: ServerConnection, pong: bool = True) -> None:
        async for msg in ws:
            if msg == "PING":
                self.pings += 1
                self.changed.set()
                if pong:
                    await ws.send("PONG")


@contextlib.asynccontextmanager
async def running(
    venue: FakeVenue, client_factory: Callable[[str], MarketWsClient]
) -> AsyncIterator[MarketWsClient]:
    async with serve(venue.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = client_factory(f"ws://127.0.0.1:{port}/ws/market")
        task = asyncio.create_task(client.run())
        try:
            yield client
        finally:
            client.stop()
            await asyncio.wait_for(task, WAIT_S)


def send(ws: ServerConnection, msg: object) -> Awaitable[None]:
    return ws.send(msgspec.json.encode(msg).decode())


def yes_deltas(events: list[MarketEvent]) -> list[BookDelta]:
    return [e for e in events if isinstance(e, BookDelta) and e.outcome is Outcome.YES]


def snapshots(events: list[MarketEvent]) -> list[BookSnapshot]:
    return [e for e in events if isinstance(e, BookSnapshot)]


# --- tests -----------------------------------------------------------------------------------------


def test_client_drop_reconnects_resubscribes_and_rebuilds_the_book():
    async def first(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, FIRST_BOOK)
        await send(ws, DELTAS[:10])  # one frame, an array of events
        for msg in DELTAS[10:24]:
            await send(ws, msg)
        await rec.until(lambda ev: len(yes_deltas(ev)) == 24)
        ws.transport.abort()  # a drop, no close handshake

    async def second(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, DELTAS[30])  # before the fresh book: must be held back
        await send(ws, FIRST_BOOK)
        for msg in DELTAS:
            await send(ws, msg)
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(first, second)
        invalidated: list[tuple[str, Outcome]] = []

        def make(url: str) -> MarketWsClient:
            return MarketWsClient(
                ASSETS,
                rec,
                config=fast_config(url),
                rng=random.Random(7),
                on_invalidate=lambda m, o: invalidated.append((m, o)),
            )

        async with running(venue, make) as client:
            await rec.until(lambda ev: len(snapshots(ev)) == 2 and len(yes_deltas(ev)) == 24 + len(DELTAS))
            book = client.book(MARKET, Outcome.YES)
            assert book is not None
            levels = (book.levels(Side.BUY), book.levels(Side.SELL))
            no_book = client.book(MARKET, Outcome.NO)
            status = client.status()
            invalidated_before_stop = list(invalidated)

        subscribe = {"assets_ids": [TOKEN_A, TOKEN_B], "type": "market", "custom_feature_enabled": True}
        assert venue.subscriptions == [subscribe, subscribe]
        assert status.reconnects == 1 and status.connected
        assert invalidated_before_stop == [(MARKET, Outcome.YES)]  # the drop
        assert invalidated == [(MARKET, Outcome.YES)] * 2  # and stop()
        assert levels == (snapshots_of(FINAL_BOOK).bids, snapshots_of(FINAL_BOOK).asks)
        assert no_book is None  # token B never had a snapshot
        assert len(yes_deltas(rec.events)) == 24 + len(DELTAS)  # the delta sent before the book was held back
        assert not client.status().connected

    rec = Recorder()
    asyncio.run(scenario())


def snapshots_of(msg: dict[str, Any]) -> BookSnapshot:
    (snap,) = decode_market_frame(msgspec.json.encode(msg), ASSETS)
    assert isinstance(snap, BookSnapshot)
    return snap


def test_client_ping_pong_keeps_a_quiet_connection_alive():
    async def pong(ws: ServerConnection, venue: FakeVenue) -> None:
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(pong)
        cfg = {"ping_interval_s": 0.02, "stale_after_s": 0.15}
        async with running(
            venue, lambda url: MarketWsClient(ASSETS, Recorder(), config=fast_config(url, **cfg))
        ) as c:
            await venue.until(lambda v: v.pings >= 15)  # 0.3 s: twice the stale limit
            status = c.status()

        assert status.connects == 1
        assert status.pings >= 15
        assert status.pongs >= 10
        assert status.messages == 0  # PONGs are not data

    asyncio.run(scenario())


def test_client_silent_connection_goes_stale_and_reconnects():
    async def silent(ws: ServerConnection, venue: FakeVenue) -> None:
        await venue.answer_pings(ws, pong=False)

    async def pong(ws: ServerConnection, venue: FakeVenue) -> None:
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(silent, pong)
        cfg = {"ping_interval_s": 0.02, "stale_after_s": 0.1}
        async with running(
            venue, lambda url: MarketWsClient(ASSETS, Recorder(), config=fast_config(url, **cfg))
        ) as c:
            await venue.until(lambda v: len(v.subscriptions) == 2)
            status = c.status()

        assert status.reconnects == 1
        assert "StaleConnectionError" in status.last_error

    asyncio.run(scenario())


def test_client_reconnects_after_a_clean_close_by_the_venue():
    async def close(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, FIRST_BOOK)
        await ws.close()

    async def pong(ws: ServerConnection, venue: FakeVenue) -> None:
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(close, pong)
        async with running(
            venue, lambda url: MarketWsClient(ASSETS, Recorder(), config=fast_config(url))
        ) as c:
            await venue.until(lambda v: len(v.subscriptions) == 2)
            status = c.status()

        assert status.reconnects == 1
        assert status.last_error == "connection closed by the venue"

    asyncio.run(scenario())


def test_client_in_thread_skips_malformed_frames_and_keeps_going():
    rec = Recorder()
    ready = threading.Event()
    bad_frames: list[str | bytes] = [
        "not json",
        b"\x00\xffbinary",
        '{"event_type": "book"}',
        msgspec.json.encode([{"event_type": "mystery"}, DELTAS[0]]).decode(),
        '{"event_type": "best_bid_ask", "asset_id": "x", "best_bid": "0.1", "best_ask": "0.2"}',
    ]

    async def script(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, FIRST_BOOK)
        for frame in bad_frames:
            await ws.send(frame)
        await send(ws, DELTAS[1])
        await venue.answer_pings(ws)

    async def serve_venue(port_box: list[int], stop: asyncio.Event) -> None:
        async with serve(FakeVenue(script).handler, "127.0.0.1", 0) as server:
            port_box.append(server.sockets[0].getsockname()[1])
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    port_box: list[int] = []
    server_thread = threading.Thread(target=loop.run_until_complete, args=(serve_venue(port_box, stop),))
    server_thread.start()
    try:
        assert ready.wait(WAIT_S)
        client = MarketWsClient(ASSETS, rec, config=fast_config(f"ws://127.0.0.1:{port_box[0]}"))
        thread = client.start_in_thread()

        assert rec.wait_for(lambda ev: len(yes_deltas(ev)) == 2)
        status = client.status()
        client.stop()

        assert not thread.is_alive()
        assert status.connects == 1
        assert status.skipped == 4  # not json, binary, book without asset_id, unknown type
        assert status.messages == 7  # book, five bad frames, delta
        assert [type(e).__name__ for e in rec.events] == ["BookSnapshot", "BookDelta", "BookDelta"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        server_thread.join(WAIT_S)
        loop.close()


def test_client_rest_fallback_seeds_books_and_passes_them_on_only_with_their_markets_data():
    requests: list[str] = []
    seeded = asyncio.Event()

    def clob(request: httpx.Request) -> httpx.Response:
        token = request.url.params["token_id"]
        requests.append(token)
        assert request.url.path == "/book"
        if token == TOKEN_A and requests.count(TOKEN_A) == 1:
            return httpx.Response(500, json={"error": "try again"})
        book = {k: v for k, v in FIRST_BOOK.items() if k != "event_type"} | {"asset_id": token}
        return httpx.Response(200, json=book)

    async def no_book(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, DELTAS[0])  # a delta without a snapshot is held back
        await seeded.wait()
        await send(ws, DELTAS[1])  # the market's data: the feed delivers it
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(no_book)
        rec = Recorder()

        def make(url: str) -> MarketWsClient:
            return MarketWsClient(
                ASSETS,
                rec,
                config=fast_config(url, snapshot_timeout_s=0.05),
                http_transport=httpx.MockTransport(clob),
            )

        async with running(venue, make) as client:
            async with asyncio.timeout(WAIT_S):
                while client.status().rest_snapshots < 2:
                    await asyncio.sleep(0.01)
            held = client.status()
            seen_while_held = list(rec.events)
            seeded.set()
            await rec.until(lambda ev: len(snapshots(ev)) == 2 and len(yes_deltas(ev)) == 1)
            status = client.status()
            book = client.book(MARKET, Outcome.YES)
            assert book is not None
            bids = book.levels(Side.BUY)

        # A REST book alone is never passed on: nothing could be quoted on it.
        assert held.rest_held == 2 and held.books_valid == 2
        assert seen_while_held == []
        assert sorted(requests) == sorted([TOKEN_A, TOKEN_A, TOKEN_B])
        assert status.rest_snapshots == 2 and status.rest_held == 0
        assert status.dropped_deltas == 2
        assert "500" in status.last_error
        # Passed on just before the first data of their market, in the order they were seeded.
        kinds = [(type(e).__name__, e.outcome) for e in rec.events]
        assert kinds[:2] == [("BookSnapshot", Outcome.NO), ("BookSnapshot", Outcome.YES)]
        assert {k[0] for k in kinds[2:]} == {"BookDelta"}
        (delta,) = yes_deltas(rec.events)
        assert delta == yes_deltas(decode_market_frame(msgspec.json.encode(DELTAS[1]), ASSETS))[0]
        assert delta.side is Side.BUY
        assert dict(bids) == dict(snapshots_of(FIRST_BOOK).bids) | {delta.px: delta.qty}

    asyncio.run(scenario())


def test_client_stop_while_reconnecting_to_a_dead_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: connections are refused
    client = MarketWsClient(ASSETS, Recorder(), config=fast_config(f"ws://127.0.0.1:{port}"))

    thread = client.start_in_thread()
    while client.status().last_error == "" and thread.is_alive():
        thread.join(0.01)
    client.stop()

    assert not thread.is_alive()
    status = client.status()
    assert status.connects == 0 and not status.connected
    assert status.last_error


def test_client_stop_before_start_returns_at_once():
    client = MarketWsClient(ASSETS, Recorder(), config=fast_config("ws://127.0.0.1:9"))
    client.stop()

    asyncio.run(asyncio.wait_for(client.run(), WAIT_S))

    assert client.status().connects == 0


@given(attempt=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_property_backoff_is_exponential_capped_and_jittered_upwards(attempt, seed):
    cfg = MarketWsConfig(backoff_initial_s=0.5, backoff_max_s=30.0, backoff_factor=2.0, backoff_jitter=0.25)

    delay = backoff_delay_s(attempt, cfg, random.Random(seed))

    base = min(30.0, 0.5 * 2.0**attempt)
    assert base <= delay <= base * 1.25
    assert delay == backoff_delay_s(attempt, cfg, random.Random(seed))  # injected rng: reproducible
