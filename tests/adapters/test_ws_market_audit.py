"""The market-channel client audits its books against REST ``/book`` (a fake venue on 127.0.0.1).

The fake venue answers ``PING`` and sends what each test says; the fake REST (``httpx.MockTransport``)
serves books the test moves. Tests wait on conditions, never on the clock.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from websockets.asyncio.server import ServerConnection

from adapters.polymarket.book_audit import AuditConfig
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.ws_market import MarketWsClient, MarketWsStatus
from core.units import Outcome, Side
from tests.adapters.test_ws_market_client import (
    FIRST_BOOK,
    MARKET,
    TOKEN_A,
    TOKEN_B,
    WAIT_S,
    FakeVenue,
    Recorder,
    fast_config,
    running,
    send,
    snapshots,
)

AUDIT = AuditConfig(period_s=0.2, grace_s=0.05, recheck_s=0.1)
# A second market: the first one's book under other ids.
MARKET_2 = "0x" + "2" * 64
TOKEN_C, TOKEN_D = "1" * 70, "2" * 70
SECOND_BOOK = FIRST_BOOK | {"market": MARKET_2, "asset_id": TOKEN_C}
TWO_MARKETS = AssetMap(
    {
        TOKEN_A: (MARKET, Outcome.YES),
        TOKEN_B: (MARKET, Outcome.NO),
        TOKEN_C: (MARKET_2, Outcome.YES),
        TOKEN_D: (MARKET_2, Outcome.NO),
    }
)
ONE_MARKET = AssetMap({TOKEN_A: (MARKET, Outcome.YES), TOKEN_B: (MARKET, Outcome.NO)})


def moved(book: dict[str, Any]) -> dict[str, Any]:
    """The venue's book after someone took the best ask and the best bid (the best levels are last)."""
    out = copy.deepcopy(book)
    out["bids"], out["asks"] = out["bids"][:-1], out["asks"][:-1]
    return out


class FakeRest:
    """``GET /book``: the book the test set per token, stamped with a time after the feed's books."""

    def __init__(self, books: dict[str, dict[str, Any]]) -> None:
        self.books = books
        self.requests: list[str] = []
        self._ts = int(FIRST_BOOK["timestamp"])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/book"
        token = request.url.params["token_id"]
        self.requests.append(token)
        self._ts += 1000
        body = {k: v for k, v in self.books[token].items() if k != "event_type"}
        return httpx.Response(200, json=body | {"asset_id": token, "timestamp": str(self._ts)})


async def until(client: MarketWsClient, predicate: Callable[[MarketWsStatus], bool]) -> MarketWsStatus:
    async with asyncio.timeout(WAIT_S):
        while not predicate(status := client.status()):
            await asyncio.sleep(0.005)
    return status


def test_a_feed_that_answers_pings_but_sends_nothing_is_dropped_once_rest_shows_the_book_moved():
    rest = FakeRest({TOKEN_A: FIRST_BOOK, TOKEN_B: FIRST_BOOK})

    async def then_silent(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, FIRST_BOOK)
        await venue.answer_pings(ws)  # PONGs, and nothing else: a frozen feed with a live socket

    async def fresh(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, rest.books[TOKEN_A])
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(then_silent, fresh)
        rec, invalidated = Recorder(), []

        def make(url: str) -> MarketWsClient:
            return MarketWsClient(
                ONE_MARKET,
                rec,
                config=fast_config(url, audit=AUDIT, ping_interval_s=0.02),
                on_invalidate=lambda m, o: invalidated.append((m, o)),
                http_transport=httpx.MockTransport(rest),
            )

        async with running(venue, make) as client:
            quiet = await until(client, lambda s: s.audit_matches >= 3)  # a quiet book is not a frozen one
            assert quiet.frozen_reconnects == 0 and invalidated == []
            rest.books[TOKEN_A] = moved(FIRST_BOOK)  # the venue's book moves; the feed says nothing

            status = await until(client, lambda s: s.connects == 2 and s.books_valid == 1)
            book = client.book(MARKET, Outcome.YES)
            assert book is not None
            levels = book.levels(Side.BUY, 1), book.levels(Side.SELL, 1)

        assert status.frozen_reconnects == 1 and status.pongs > 0
        assert "FrozenFeedError" in status.last_error and "delivered no data" in status.last_error
        assert invalidated[0] == (MARKET, Outcome.YES)  # every quote pulled: the book was dropped
        assert set(rest.requests) == {TOKEN_A}  # the YES book is audited (the NO book mirrors it)
        # The reconnect's fresh book is the venue's current one.
        assert levels == ((snapshots(rec.events)[-1].bids[0],), (snapshots(rec.events)[-1].asks[0],))
        assert snapshots(rec.events)[-1].bids[0][0] < snapshots(rec.events)[0].bids[0][0]

    asyncio.run(scenario())


def test_one_frozen_market_among_flowing_ones_is_resubscribed_alone():
    rest = FakeRest({TOKEN_A: FIRST_BOOK, TOKEN_C: SECOND_BOOK})
    frames: list[Any] = []

    async def second_market_flows(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, [FIRST_BOOK, SECOND_BOOK])

        async def receive() -> None:
            async for msg in ws:
                if msg == "PING":
                    await ws.send("PONG")
                    continue
                frames.append(msgspec.json.decode(msg))
                if frames[-1].get("operation") == "subscribe":  # the venue sends books on subscribe
                    await send(ws, rest.books[TOKEN_A])

        receiver = asyncio.create_task(receive())
        size = 100
        try:
            while True:  # market 2's data keeps flowing; market 1's never comes
                size += 1
                change = {"asset_id": TOKEN_C, "price": "0.2", "size": str(size), "side": "BUY"}
                msg = {
                    "market": MARKET_2,
                    "price_changes": [change],
                    "timestamp": "1",
                    "event_type": "price_change",
                }
                await send(ws, msg)
                await asyncio.sleep(0.01)
        finally:
            receiver.cancel()

    async def scenario() -> None:
        venue = FakeVenue(second_market_flows)
        rec, resynced = Recorder(), []

        def make(url: str) -> MarketWsClient:
            return MarketWsClient(
                TWO_MARKETS,
                rec,
                config=fast_config(url, audit=AUDIT),
                on_resync=lambda m, why: resynced.append((m, why)),
                http_transport=httpx.MockTransport(rest),
            )

        async with running(venue, make) as client:
            await until(client, lambda s: s.audit_matches >= 2 and s.events > 20)  # market 2 flows
            rest.books[TOKEN_A] = moved(FIRST_BOOK)
            await rec.until(lambda ev: len([s for s in snapshots(ev) if s.market == MARKET]) == 2)
            status = client.status()
            book = client.book(MARKET, Outcome.YES)
            assert book is not None
            best_bid = book.levels(Side.BUY, 1)

        assert resynced and resynced[0][0] == MARKET and "sent nothing" in resynced[0][1]
        assert status.connects == 1 and status.frozen_reconnects == 0  # the connection stays
        ops = [(f.get("operation"), tuple(f["assets_ids"])) for f in frames]
        assert ops[:2] == [("unsubscribe", (TOKEN_A, TOKEN_B)), ("subscribe", (TOKEN_A, TOKEN_B))]
        assert best_bid[0][0] < snapshots(rec.events)[0].bids[0][0]  # the fresh book, after the move

    asyncio.run(scenario())


def test_request_book_resync_audits_one_market_at_once():
    rest = FakeRest({TOKEN_A: moved(FIRST_BOOK)})  # our book is already behind the venue's

    async def then_silent(ws: ServerConnection, venue: FakeVenue) -> None:
        await send(ws, FIRST_BOOK)
        await venue.answer_pings(ws)

    async def scenario() -> None:
        venue = FakeVenue(then_silent)
        rec, invalidated = Recorder(), threading.Event()
        slow = AuditConfig(period_s=600.0, grace_s=0.05)

        def make(url: str) -> MarketWsClient:
            return MarketWsClient(
                ONE_MARKET,
                rec,
                config=fast_config(url, audit=slow),
                on_invalidate=lambda m, o: invalidated.set(),
                http_transport=httpx.MockTransport(rest),
            )

        async with running(venue, make) as client:
            await rec.until(lambda ev: len(snapshots(ev)) == 1)
            assert client.status().audits == 0  # nothing due for ten minutes
            # From another thread, as a market session would after a post-only rejection.
            await asyncio.to_thread(client.request_book_resync, MARKET)
            await asyncio.to_thread(client.request_book_resync, MARKET)  # at most once per recheck_s
            assert await asyncio.to_thread(invalidated.wait, WAIT_S)
            status = client.status()

        assert status.audit_requests == 1 and status.audits == 1 and status.frozen_reconnects == 1

    asyncio.run(scenario())


def test_without_pongs_or_data_a_rest_book_is_never_passed_on():
    rest = FakeRest({TOKEN_A: FIRST_BOOK, TOKEN_B: FIRST_BOOK | {"asset_id": TOKEN_B}})

    async def dead(ws: ServerConnection, venue: FakeVenue) -> None:
        await venue.answer_pings(ws, pong=False)  # a dead connection that is not closed

    async def scenario() -> None:
        venue = FakeVenue(dead)
        rec = Recorder()

        def make(url: str) -> MarketWsClient:
            return MarketWsClient(
                ONE_MARKET,
                rec,
                config=fast_config(url, audit=AUDIT, snapshot_timeout_s=0.05, stale_after_s=60.0),
                http_transport=httpx.MockTransport(rest),
            )

        async with running(venue, make) as client:
            # Seeded from REST and audited again and again (unchanged): still nothing to quote on.
            status = await until(client, lambda s: s.rest_held == 2 and s.audit_matches >= 3)
            events = list(rec.events)

        assert events == []
        assert status.rest_snapshots == 2 and status.pongs == 0 and status.messages == 0

    asyncio.run(scenario())
