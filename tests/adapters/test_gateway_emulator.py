"""End to end through the exchange emulator: the venue's SDK client, gateway, user channel and a session.

place → rests (listed by ``GET /data/orders``) → cancel; a fill from the emulator's takers reaches the
market session's inventory through the user channel; shutdown cancels what is left. The whole run is
logged at DEBUG and the private key, API secret and passphrase must not appear in the log. The same
again on a Protocol V2 market once the emulator lists one (skipped, saying so, until it does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from eth_account import Account
from polymarket.errors import RequestRejectedError

from actors.gateway import GatewayConfig, GetGatewayStatus, Shutdown, Startup
from actors.market import GetStatus, MarketActor
from actors.session import MarketSession, OrderRecord
from actors.supervisor import Router
from adapters.clock import LiveClock
from adapters.gamma import parse_market
from adapters.polymarket.clob_port import PolymarketVenue, VenueConnection, connect_venue
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import Secret
from adapters.polymarket.ws_user import UserWsClient, UserWsConfig
from app.configfile import load_config
from app.gateway import start_gateway
from core.markets import MarketInfo
from core.messages import Cancel, Place
from core.quoting import quote_params
from core.units import QTY_ONE, Outcome, Side
from emulator import Emulator
from emulator.scenario import FlowConfig, HttpFault, InitialBook, MarketConfig
from tests.emulator.conftest import BUSY, NEGRISK, QUIET, ids, make_scenario
from tests.fakes import FakeClock, ListSink

PARAMS = quote_params(load_config("configs/market_maker.yaml"))


def wait_for(pred: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := pred()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def market_info(
    emu: Emulator, slug: str, tick_px: int = 100, neg_risk: bool = False, version: str = "v1"
) -> MarketInfo:
    m = ids(emu, slug)
    return MarketInfo(
        market=m["market"],
        yes_token=m["yes_token"],
        no_token=m["no_token"],
        tick_px=tick_px,
        neg_risk=neg_risk,
        version=version,  # type: ignore[arg-type]
    )


def connect(emu: Emulator, key: str) -> VenueConnection:
    return connect_venue(environment_for(emu.clob_url), Secret(key))


class RequestLog:
    """Every request made through a synchronous ``httpx.Client`` (the SDK's) while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        send = httpx.Client.send

        def spy(client: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
            self.paths.append(f"{request.method} {request.url.path}")
            return send(client, request, **kw)

        monkeypatch.setattr(httpx.Client, "send", spy)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(make_scenario(), port=0) as e:
        yield e


def open_orders(client: Any) -> list[Any]:
    return [o for page in client.list_open_orders() for o in page.items]


def test_live_path_against_the_emulator(
    emu: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    caplog.set_level(logging.DEBUG)
    key = Account.create().key.hex()
    log = RequestLog(monkeypatch)
    refs: list[Any] = []
    ws: UserWsClient | None = None
    # Arrange: credentials derived with the key (L1), one actor per market, the gateway, the user channel.
    client, signer, creds, rate_limits = connect(emu, key)
    try:
        quiet, busy = market_info(emu, QUIET), market_info(emu, BUSY)
        negrisk = market_info(emu, NEGRISK, tick_px=10, neg_risk=True)
        markets = [quiet, busy, negrisk]
        router = Router()
        gateway, port, bridge = start_gateway(
            client,
            signer,
            markets,
            router.tell,
            LiveClock(),
            config=GatewayConfig(heartbeat_interval_s=0.2, reconcile_interval_s=None),
            rate_limits=rate_limits,
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
            lambda: gateway.ask(GetGatewayStatus(), timeout=5).accepted == 2 and open_orders(client)
        )
        port.submit([Cancel(market=quiet.market, client_id="quiet-1")])
        wait_for(lambda: len(open_orders(client)) == 1)

        # Act 2: improve BUSY's best bid (0.48): the emulator's sellers hit it.
        port.submit([fill_order])
        busy_actor = router.get(busy.market)
        assert busy_actor is not None
        status = wait_for(lambda: (s := busy_actor.ask(GetStatus(), timeout=5)).fills >= 1 and s)

        # The heartbeat chain runs on its own thread meanwhile: two beats, the second on the first's id.
        wait_for(lambda: gateway.ask(GetGatewayStatus(), timeout=5).heartbeats >= 2)

        # Act 3: shutdown cancels what is left.
        report = gateway.ask(Shutdown(), timeout=10)
        gw_status = gateway.ask(GetGatewayStatus(), timeout=5)
        open_after = open_orders(client)
    finally:
        if ws is not None:
            ws.stop()
        for ref in refs:
            ref.stop()
        client.close()
    paths = log.paths

    # Assert: resting orders were listed with our prices, the fill reached the session, all is cancelled.
    assert sorted((str(o.price), str(o.original_size)) for o in resting) == [("0.401", "6"), ("0.45", "10")]
    assert (status.yes_qty, status.no_qty, status.open_orders) == (5 * QTY_ONE, 0, 0)
    assert status.cash_usdc6 == -2_450_000  # 5 shares at 0.49
    assert report.confirmed and report.canceled == 1
    assert open_after == []
    assert gw_status.heartbeats >= 2 and gw_status.heartbeat_failures == 0
    assert gw_status.rejects == 0
    # No lookups in the order path: tick size and neg-risk are ours, not the SDK's metadata cache; and
    # the relayer (a deposit wallet) and the RPC (approvals) are never called.
    metadata = ("/markets-by-token/", "/clob-markets/", "/tick-size", "/neg-risk", "/fee-rate")
    assert not [p for p in paths if p.split()[1].startswith(metadata)]
    assert "POST /orders" in paths and "DELETE /orders" in paths and "POST /v1/heartbeats" in paths
    assert "POST /auth/api-key" in paths  # derived by the SDK with the key (L1)
    allowed = ("/auth/", "/orders", "/data/", "/data-api/v2/positions", "/v1/heartbeats", "/cancel")
    assert all(p.split()[1].startswith(allowed) for p in paths), sorted(set(paths))
    # Nothing secret in the log of the whole run, and nothing from the HTTP/2 and HTTP stacks at DEBUG
    # (hpack logs header values) though everything else logged at DEBUG.
    transport = ("hpack", "h2", "httpcore", "httpx")
    assert not [r for r in caplog.records if r.name.startswith(transport) and r.levelno < logging.INFO]
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    text = caplog.text
    for secret in (key, key.removeprefix("0x"), creds.secret.reveal(), creds.passphrase.reveal()):
        assert secret not in text


def test_rate_limited_post_waits_for_retry_after_then_succeeds(caplog: pytest.LogCaptureFixture):
    faults = (HttpFault(status=429, routes=("POST /orders",), max_count=1, retry_after_s=1),)
    refs: list[Any] = []
    try:
        with Emulator(make_scenario(faults=faults), port=0) as emu:
            client, signer, _, rate_limits = connect(emu, Account.create().key.hex())
            refs.append(client)
            quiet = market_info(emu, QUIET)
            router = Router()
            gateway, port, _ = start_gateway(
                client,
                signer,
                [quiet],
                router.tell,
                LiveClock(),  # the gateway times its pauses
                config=GatewayConfig(
                    heartbeat_interval_s=None, reconcile_interval_s=None, backoff_initial_s=0.05
                ),
                rate_limits=rate_limits,
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
            if hasattr(ref, "close"):
                ref.close()
            else:
                ref.stop()

    # The emulator's 429 carries no rate-limit headers (a CDN's, as far as we can tell): the venue is
    # asked whether the order arrived before the same signed order is sent again, after Retry-After.
    assert status.rate_limited == 1 and status.post_requests == 2
    assert waited >= 1.0  # Retry-After, not the 0.05 s backoff
    assert "holding them 1.00 s" in caplog.text


# --- Protocol V2 markets (position ids, ExchangeV3) --------------------------------------------------

V2_BUSY = "v2-busy-market"
V2_NEGRISK = "v2-negrisk-market"


def v2_scenario() -> Any:
    """A busy V2 market (takers hit an improved bid) and a quiet neg-risk V2 one on a 0.001 tick."""
    lot = 100 * QTY_ONE
    book = InitialBook(bids=((4800, lot), (4700, lot)), asks=((5200, lot), (5300, lot)))
    takers = FlowConfig(
        maker_levels=0,
        taker_rate_per_s=8.0,
        taker_qty_min=5 * QTY_ONE,
        taker_qty_max=5 * QTY_ONE,
        fair_vol_px_per_s=0,
    )
    markets = (
        MarketConfig(
            slug=V2_BUSY,
            version="v2",
            question="V2 busy?",
            initial_book=InitialBook(bids=((4800, 1_000 * QTY_ONE),), asks=((5200, 1_000 * QTY_ONE),)),
            flow=takers,
        ),
        MarketConfig(
            slug=V2_NEGRISK,
            version="v2",
            question="V2 neg risk?",
            tick_px=10,
            neg_risk=True,
            initial_book=book,
            flow=FlowConfig(enabled=False),
        ),
    )
    return make_scenario(markets=markets)


def gamma_market(emu: Emulator, slug: str) -> MarketInfo:
    """The market as polymm's own Gamma path reads it (version, the ids it trades by, tick, neg-risk)."""
    (raw,) = httpx.get(emu.gamma_url + "/markets", params={"slug": slug}, timeout=5).json()
    return parse_market(raw).to_info()


def test_protocol_v2_markets_rest_fill_and_cancel_through_the_sdk(monkeypatch: pytest.MonkeyPatch):
    scenario = v2_scenario()
    refs: list[Any] = []
    ws: UserWsClient | None = None
    with Emulator(scenario, port=0) as emu:
        busy, neg = gamma_market(emu, V2_BUSY), gamma_market(emu, V2_NEGRISK)
        assert (busy.version, neg.version, neg.neg_risk, neg.tick_px) == ("v2", "v2", True, 10)
        assert busy.yes_token == ids(emu, V2_BUSY)["yes_token"]  # Gamma's positionIds
        client, signer, creds, rate_limits = connect(emu, Account.create().key.hex())
        venue = PolymarketVenue(client, signer, [busy, neg], rate_limits=rate_limits)
        try:
            router = Router()
            gateway, port, bridge = start_gateway(
                client,
                signer,
                [busy, neg],
                router.tell,
                LiveClock(),
                config=GatewayConfig(heartbeat_interval_s=0.2, reconcile_interval_s=None),
                rate_limits=rate_limits,
            )
            refs.append(gateway)
            gateway.ask(Startup(), timeout=10)
            sessions = {}
            for info in (busy, neg):
                sessions[info.market] = MarketSession(
                    info, PARAMS, port, FakeClock(), ListSink(), quoting_enabled=False
                )
                ref = MarketActor.start(sessions[info.market])
                refs.append(ref)
                router.set(info.market, ref)
            sessions[busy.market].orders["v2-fill"] = OrderRecord(
                client_id="v2-fill", outcome=Outcome.YES, side=Side.BUY, px=4900, qty=5 * QTY_ONE
            )
            ws = UserWsClient(
                AssetMap.from_markets([busy, neg]),
                creds,
                bridge.on_event,
                on_reconnect=bridge.on_reconnect,
                config=UserWsConfig(url=emu.ws_user_url, proxy=None, ping_interval_s=0.05),
            )
            ws.start_in_thread()
            wait_for(lambda: ws is not None and ws.status().pongs > 0)

            # Rest on the neg-risk V2 market (signed for ExchangeV3, domain "3"), then cancel it.
            rest = Place(
                market=neg.market,
                client_id="v2-rest",
                outcome=Outcome.NO,
                side=Side.BUY,
                px=4010,
                qty=6 * QTY_ONE,
            )
            port.submit([rest])
            resting = wait_for(lambda: open_orders(client))
            port.submit([Cancel(market=neg.market, client_id="v2-rest")])
            wait_for(lambda: not open_orders(client))

            # A bid above the busy V2 market's touch is hit by the emulator's takers.
            port.submit(
                [
                    Place(
                        market=busy.market,
                        client_id="v2-fill",
                        outcome=Outcome.YES,
                        side=Side.BUY,
                        px=4900,
                        qty=5 * QTY_ONE,
                    )
                ]
            )
            actor = router.get(busy.market)
            assert actor is not None
            status = wait_for(lambda: (s := actor.ask(GetStatus(), timeout=5)).fills >= 1 and s)
            balance = wait_for(lambda: venue.balance_qty(busy, Outcome.YES))  # CONDITIONAL-V2
            positions = wait_for(venue.positions)

            # A V2 position signed for the V1 exchange (domain "2") is refused by the venue.
            wrong = signer.sign(
                Place(
                    market=busy.market,
                    client_id="x",
                    outcome=Outcome.YES,
                    side=Side.BUY,
                    px=4000,
                    qty=5 * QTY_ONE,
                ),
                busy.yes_token,
                100,
                neg_risk=False,
                protocol="v1",
            )
            try:
                (reply,) = client.post_orders([wrong.order])
                refused = not reply.ok
            except RequestRejectedError as exc:  # a 400, as for a bad signature
                refused = exc.status == 400

            report = gateway.ask(Shutdown(), timeout=10)
            open_after = open_orders(client)
        finally:
            if ws is not None:
                ws.stop()
            for ref in refs:
                ref.stop()
            client.close()

    (row,) = resting
    assert (row.asset_id, str(row.price), str(row.original_size)) == (neg.no_token, "0.401", "6")
    assert (status.yes_qty, status.no_qty, status.cash_usdc6) == (5 * QTY_ONE, 0, -2_450_000)
    assert balance == 5 * QTY_ONE
    assert [(p.market, p.outcome, p.qty) for p in positions or []] == [
        (busy.market, Outcome.YES, 5 * QTY_ONE)
    ]
    assert refused
    assert report.confirmed and open_after == []
