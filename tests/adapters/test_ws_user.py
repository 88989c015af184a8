"""The user-channel client against a tiny WebSocket venue on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection, serve

from actors.gateway import Reconcile, UserOrderUpdate
from adapters.polymarket.clob_port import UserChannelBridge
from adapters.polymarket.parse import AssetMap, UserEvent, VenueOrderUpdate, VenueTrade
from adapters.polymarket.secrets import ApiCredentials, Secret
from adapters.polymarket.ws_user import UserWsClient, UserWsConfig, backoff_delay_s
from core.ledger import VenueTrade as LedgerTrade
from core.units import QTY_ONE, Outcome, Side

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"
# Both fixtures are of the same market and token.
PLACEMENT = msgspec.json.decode((FIX / "order_placement_2024-09.json").read_bytes())
TRADE = msgspec.json.decode((FIX / "trade_maker_cross_asset_2025-11_edited.json").read_bytes())
MARKET = TRADE["market"]
YES = TRADE["maker_orders"][0]["asset_id"]
ASSETS = AssetMap({YES: (MARKET, Outcome.YES), "999": (MARKET, Outcome.NO)})
SECRET = "c2VjcmV0LXZhbHVlLW5vdC10by1iZS1sb2dnZWQtMTIzNA=="
PASSPHRASE = "passphrase-not-to-be-logged"
CREDS = ApiCredentials("3f1c2d4e-0000-4000-8000-000000000001", Secret(SECRET), Secret(PASSPHRASE))
WAIT_S = 5.0

Script = Callable[[ServerConnection, "FakeVenue"], Awaitable[None]]


def fast_config(url: str, **changes: Any) -> UserWsConfig:
    cfg = UserWsConfig(url=url, proxy=None, backoff_initial_s=0.01, backoff_max_s=0.05, close_timeout_s=0.2)
    return msgspec.structs.replace(cfg, **changes)


class FakeVenue:
    """Serves one script per connection (the last one repeats) and records the subscribe frames."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = scripts
        self.subscriptions: list[Any] = []
        self.pings = 0

    async def handler(self, ws: ServerConnection) -> None:
        index = len(self.subscriptions)
        self.subscriptions.append(msgspec.json.decode(await ws.recv()))
        await self.scripts[min(index, len(self.scripts) - 1)](ws, self)

    async def answer_pings(self, ws: ServerConnection, pong: bool = True) -> None:
        async for msg in ws:
            if msg == "PING":
                self.pings += 1
                if pong:
                    await ws.send("PONG")


class Recorder:
    """Callback spy; tests wait on a predicate (any thread)."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, item: Any = None) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    async def until(self, predicate: Callable[[list[Any]], bool]) -> None:
        def wait() -> bool:
            with self._cond:
                return self._cond.wait_for(lambda: predicate(self.items), WAIT_S)

        assert await asyncio.to_thread(wait), f"timed out; saw {self.items!r}"


class FakeGateway:
    """An ActorRef stand-in for the bridge: records what is told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, msg: Any) -> None:
        self.told.append(msg)


@contextlib.asynccontextmanager
async def running(venue: FakeVenue, make: Callable[[str], UserWsClient]) -> AsyncIterator[UserWsClient]:
    async with serve(venue.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = make(f"ws://127.0.0.1:{port}/ws/user")
        task = asyncio.create_task(client.run())
        try:
            yield client
        finally:
            client.stop()
            await asyncio.wait_for(task, WAIT_S)


def test_drop_and_reconnect_resubscribes_with_auth_and_requests_a_reconcile(caplog):
    caplog.set_level(logging.DEBUG)
    events = Recorder()
    reconnects = Recorder()
    gateway = FakeGateway()
    bridge = UserChannelBridge(gateway)  # type: ignore[arg-type]

    async def first(ws: ServerConnection, venue: FakeVenue) -> None:
        await ws.send(msgspec.json.encode([PLACEMENT, dict(TRADE, status="MATCHED")]).decode())
        await events.until(lambda ev: len(ev) == 2)
        ws.transport.abort()  # a drop, no close handshake

    async def second(ws: ServerConnection, venue: FakeVenue) -> None:
        await ws.send(msgspec.json.encode(dict(TRADE, status="MINED")).decode())
        await venue.answer_pings(ws)

    def on_event(ev: UserEvent) -> None:
        bridge.on_event(ev)
        events(ev)

    def on_reconnect() -> None:
        bridge.on_reconnect()
        reconnects()

    async def scenario() -> None:
        venue = FakeVenue(first, second)

        def make(url: str) -> UserWsClient:
            return UserWsClient(
                ASSETS, CREDS, on_event, on_reconnect=on_reconnect, markets=[MARKET], config=fast_config(url)
            )

        async with running(venue, make) as client:
            await events.until(lambda ev: len(ev) == 3)
            await reconnects.until(lambda r: len(r) == 1)
            status = client.status()
            shown = repr(client)

        subscribe = {
            "type": "user",
            "auth": {"apiKey": CREDS.api_key, "secret": SECRET, "passphrase": PASSPHRASE},
            "markets": [MARKET],
        }
        assert venue.subscriptions == [subscribe, subscribe]
        assert status.reconnects == 1 and status.events == 3
        assert SECRET not in shown and PASSPHRASE not in shown

    asyncio.run(scenario())

    assert [type(e) for e in events.items] == [VenueOrderUpdate, VenueTrade, VenueTrade]
    assert [type(m) for m in gateway.told] == [UserOrderUpdate, LedgerTrade, Reconcile, LedgerTrade]
    assert gateway.told[2] == Reconcile("user channel reconnected")
    (leg,) = gateway.told[1].legs
    assert (leg.outcome, leg.side, leg.px, leg.qty, leg.liquidity) == (
        Outcome.YES,
        Side.BUY,
        5130,
        5 * QTY_ONE,
        "maker",
    )
    assert SECRET not in caplog.text and PASSPHRASE not in caplog.text


def test_ping_pong_keeps_a_quiet_connection_and_silence_reconnects():
    async def pong(ws: ServerConnection, venue: FakeVenue) -> None:
        await venue.answer_pings(ws, pong=len(venue.subscriptions) > 1)

    async def scenario() -> None:
        venue = FakeVenue(pong)
        reconnects = Recorder()
        cfg = {"ping_interval_s": 0.02, "stale_after_s": 0.2}
        async with running(
            venue,
            lambda url: UserWsClient(
                ASSETS, CREDS, Recorder(), on_reconnect=reconnects, config=fast_config(url, **cfg)
            ),
        ) as client:
            # The first connection never answers PING: it goes stale and is replaced.
            await reconnects.until(lambda r: len(r) >= 1)
            await asyncio.sleep(0.3)
            status = client.status()

        assert status.pings >= 3
        assert status.pongs >= 3
        assert status.reconnects == 1  # the second connection answers and stays up
        assert "no frame" in status.last_error

    asyncio.run(scenario())


def test_malformed_frames_are_skipped_and_counted():
    got = Recorder()

    async def junk(ws: ServerConnection, venue: FakeVenue) -> None:
        await ws.send("not json")
        await ws.send(msgspec.json.encode({"event_type": "trade", "id": "x"}).decode())
        await ws.send(msgspec.json.encode(dict(TRADE, status="CONFIRMED")).decode())
        await venue.answer_pings(ws)

    async def scenario() -> None:
        async with running(
            FakeVenue(junk), lambda url: UserWsClient(ASSETS, CREDS, got, config=fast_config(url))
        ) as c:
            await got.until(lambda ev: len(ev) == 1)
            status = c.status()

        assert (status.messages, status.skipped, status.events) == (3, 2, 1)

    asyncio.run(scenario())


def test_subscribes_to_every_market_of_the_asset_map_by_default():
    assets = AssetMap({"1": ("0xa", Outcome.YES), "2": ("0xa", Outcome.NO), "3": ("0xb", Outcome.YES)})
    client = UserWsClient(assets, CREDS, Recorder())

    text = client._subscribe_text()

    assert msgspec.json.decode(text)["markets"] == ["0xa", "0xb"]


def test_backoff_delay_grows_and_is_capped():
    cfg = UserWsConfig(backoff_initial_s=0.5, backoff_max_s=4.0, backoff_jitter=0.0)
    rng = random.Random(1)

    assert [backoff_delay_s(a, cfg, rng) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
