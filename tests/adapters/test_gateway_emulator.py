"""End to end through the exchange emulator: real ``ClobClient``, gateway, user channel and a session.

place → rests (listed by ``GET /data/orders``) → cancel; a fill from the emulator's takers reaches the
market session's inventory through the user channel; shutdown cancels what is left. The whole run is
logged at DEBUG and the private key, API secret and passphrase must not appear in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from py_clob_client_v2.http_helpers import helpers as clob_http

from actors.gateway import GatewayConfig, GetGatewayStatus, Shutdown, Startup
from actors.market import GetStatus, MarketActor
from actors.session import MarketSession, OrderRecord
from actors.supervisor import Router
from adapters.clock import LiveClock
from adapters.polymarket.clob_port import sdk_retry_after_probe
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.secrets import Secret, build_clob_client
from adapters.polymarket.ws_user import UserWsClient, UserWsConfig
from app.configfile import load_config
from app.gateway import start_gateway
from core.markets import MarketInfo
from core.messages import Cancel, Place
from core.quoting import quote_params
from core.units import QTY_ONE, Outcome, Side
from emulator import Emulator
from emulator.scenario import HttpFault
from tests.emulator.conftest import BUSY, NEGRISK, QUIET, ids, make_scenario
from tests.fakes import FakeClock, ListSink

PARAMS = quote_params(load_config("configs/market_maker.yaml"))


def wait_for(pred: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := pred()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def market_info(emu: Emulator, slug: str, tick_px: int = 100, neg_risk: bool = False) -> MarketInfo:
    m = ids(emu, slug)
    return MarketInfo(
        market=m["market"],
        yes_token=m["yes_token"],
        no_token=m["no_token"],
        tick_px=tick_px,
        neg_risk=neg_risk,
    )


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(make_scenario(), port=0) as e:
        yield e


def test_live_path_against_the_emulator(emu: Emulator, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    key = Account.create().key.hex()
    paths: list[str] = []

    def spy(request: Any) -> None:
        paths.append(f"{request.method} {request.url.path}")

    clob_http._http_client.event_hooks["request"].append(spy)
    probe = sdk_retry_after_probe()
    refs: list[Any] = []
    ws: UserWsClient | None = None
    try:
        # Arrange: credentials derived with the key (L1), one actor per market, the gateway, the user channel.
        client, creds = build_clob_client(emu.clob_url, Secret(key))
        quiet, busy = market_info(emu, QUIET), market_info(emu, BUSY)
        negrisk = market_info(emu, NEGRISK, tick_px=10, neg_risk=True)
        markets = [quiet, busy, negrisk]
        router = Router()
        gateway, port, bridge = start_gateway(
            client,
            markets,
            router.tell,
            LiveClock(),
            config=GatewayConfig(heartbeat_interval_s=0.2, reconcile_interval_s=None),
            retry_after=probe,
        )
        refs.append(gateway)
        gateway.ask(Startup(), timeout=10)
        fill_order = Place(
            market=busy.market,
            client_id="busy-1",
            outcome=Outcome.YES,
            side=Side.BUY,
            px=4900,
            qty=5 * QTY_ONE,
        )
        sessions = {}
        for info in markets:
            session = MarketSession(info, PARAMS, port, FakeClock(), ListSink(), quoting_enabled=False)
            sessions[info.market] = session
            ref = MarketActor.start(session)
            refs.append(ref)
            router.set(info.market, ref)
        sessions[busy.market].orders["busy-1"] = OrderRecord(
            client_id="busy-1", outcome=Outcome.YES, side=Side.BUY, px=4900, qty=5 * QTY_ONE
        )
        ws = UserWsClient(
            AssetMap.from_markets(markets),
            creds,
            bridge.on_event,
            on_reconnect=bridge.on_reconnect,
            config=UserWsConfig(url=emu.ws_user_url, proxy=None, ping_interval_s=0.05),
        )
        ws.start_in_thread()
        wait_for(lambda: ws is not None and ws.status().pongs > 0)  # the subscription is in place

        # Act 1: place two resting orders (one on the neg-risk exchange), then cancel one.
        rest = [
            Place(
                market=quiet.market,
                client_id="quiet-1",
                outcome=Outcome.YES,
                side=Side.BUY,
                px=4500,
                qty=10 * QTY_ONE,
            ),
            Place(
                market=negrisk.market,
                client_id="neg-1",
                outcome=Outcome.NO,
                side=Side.BUY,
                px=4010,
                qty=6 * QTY_ONE,
            ),
        ]
        port.submit(rest)
        resting = wait_for(
            lambda: gateway.ask(GetGatewayStatus(), timeout=5).accepted == 2 and client.get_open_orders()
        )
        port.submit([Cancel(market=quiet.market, client_id="quiet-1")])
        wait_for(lambda: len(client.get_open_orders()) == 1)

        # Act 2: improve BUSY's best bid (0.48): the emulator's sellers hit it.
        port.submit([fill_order])
        busy_actor = router.get(busy.market)
        assert busy_actor is not None
        status = wait_for(lambda: (s := busy_actor.ask(GetStatus(), timeout=5)).fills >= 1 and s)

        # Act 3: shutdown cancels what is left.
        report = gateway.ask(Shutdown(), timeout=10)
        gw_status = gateway.ask(GetGatewayStatus(), timeout=5)
        open_after = client.get_open_orders()
    finally:
        if ws is not None:
            ws.stop()
        for ref in refs:
            ref.stop()
        clob_http._http_client.event_hooks["request"].remove(spy)
        probe.uninstall(clob_http._http_client)

    # Assert: resting orders were listed with our prices, the fill reached the session, all is cancelled.
    assert sorted((o["price"], o["original_size"]) for o in resting) == [("0.401", "6"), ("0.45", "10")]
    assert (status.yes_qty, status.no_qty, status.open_orders) == (5 * QTY_ONE, 0, 0)
    assert status.cash_usdc6 == -2_450_000  # 5 shares at 0.49
    assert report.confirmed and report.canceled == 1
    assert open_after == []
    assert gw_status.heartbeats >= 2 and gw_status.heartbeat_failures == 0
    assert gw_status.rejects == 0
    # No per-order lookups: tick size, neg-risk and version are ours, not the client's caches.
    assert not [p for p in paths if p.split()[1] in ("/tick-size", "/neg-risk", "/version", "/fee-rate")]
    assert "POST /orders" in paths and "DELETE /orders" in paths
    # Nothing secret in the log of the whole run.
    text = caplog.text
    for secret in (key, key.removeprefix("0x"), creds.secret.reveal(), creds.passphrase.reveal()):
        assert secret not in text


def test_rate_limited_post_waits_for_retry_after_then_succeeds(caplog: pytest.LogCaptureFixture):
    faults = (HttpFault(status=429, routes=("POST /orders",), max_count=1, retry_after_s=1),)
    probe = sdk_retry_after_probe()
    refs: list[Any] = []
    try:
        with Emulator(make_scenario(faults=faults), port=0) as emu:
            client, _ = build_clob_client(emu.clob_url, Secret(Account.create().key.hex()))
            quiet = market_info(emu, QUIET)
            router = Router()
            gateway, port, _ = start_gateway(
                client,
                [quiet],
                router.tell,
                LiveClock(),  # the gateway times its pauses
                config=GatewayConfig(
                    heartbeat_interval_s=None, reconcile_interval_s=None, backoff_initial_s=0.05
                ),
                retry_after=probe,
            )
            refs.append(gateway)
            gateway.ask(Startup(), timeout=10)
            place = Place(
                market=quiet.market,
                client_id="q-1",
                outcome=Outcome.YES,
                side=Side.BUY,
                px=4500,
                qty=5 * QTY_ONE,
            )

            started = time.monotonic()
            port.submit([place])
            wait_for(lambda: gateway.ask(GetGatewayStatus(), timeout=5).accepted == 1)
            waited = time.monotonic() - started
            status = gateway.ask(GetGatewayStatus(), timeout=5)
            gateway.ask(Shutdown(), timeout=10)
    finally:
        for ref in refs:
            ref.stop()
        probe.uninstall(clob_http._http_client)

    # The emulator's 429 carries no rate-limit headers (a CDN's, as far as we can tell): the venue is
    # asked whether the order arrived before the same signed order is sent again, after Retry-After.
    assert status.rate_limited == 1 and status.post_requests == 2
    assert waited >= 1.0  # Retry-After, not the 0.05 s backoff
    assert "holding them 1.00 s" in caplog.text
