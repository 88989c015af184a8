"""Heartbeats that stop reaching the venue: its dead-man switch fires, and the bot knows (emulator, loopback).

The real gateway, heartbeat thread and ledger, through the venue's SDK client, against the exchange
emulator on 127.0.0.1 with a 2 s switch (the bot's window the same). Every ``POST /v1/heartbeats``
is answered 503 for longer than the window: the emulator cancels every order of ours, and the bot
must see it by itself (no cancellation reaches it: there is no user channel here), mark those orders
gone, tell each market (so it requotes from scratch), and know exactly what rests once it quotes
again and its heartbeats get through. Before #10 the venue cancelled everything 16 times in a run
without the bot noticing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

from eth_account import Account

from actors.gateway import GatewayConfig, GetGatewayStatus, GetOpenOrderIds, Shutdown, Startup
from adapters.clock import LiveClock
from adapters.polymarket.clob_port import connect_venue
from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import Secret
from app.gateway import start_gateway
from core.markets import MarketInfo
from core.messages import Canceled, Place
from core.units import QTY_ONE, Outcome, Side
from emulator import Emulator
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario
from tests.actors.venue_fake import Routed

pytestmark = pytest.mark.slow

WINDOW_S = 2.0  # the venue's switch and the bot's window (production: 10 s)
INTERVAL_S = 0.5


def wait_for(pred: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := pred()):
        assert time.monotonic() < deadline, f"{what}: not met in {timeout_s} s"
        time.sleep(0.05)
    return value


def bid(m: MarketInfo, client_id: str) -> Place:
    # 0.40 under a 0.48 bid: rests, never fills (no flow).
    return Place(
        market=m.market, client_id=client_id, outcome=Outcome.YES, side=Side.BUY, px=4_000, qty=5 * QTY_ONE
    )


def test_heartbeats_refused_past_the_window_mark_our_orders_gone_and_the_ledger_knows_what_rests():
    lot = 100 * QTY_ONE
    book = InitialBook(bids=((4_800, lot),), asks=((5_200, lot),))
    scenario = Scenario(
        name="heartbeat-expiry",
        seed=5,
        markets=tuple(
            MarketConfig(
                slug=f"hx-{i}", question=f"Market {i}?", initial_book=book, flow=FlowConfig(enabled=False)
            )
            for i in (1, 2)
        ),
        heartbeat_timeout_ms=int(WINDOW_S * 1000),
        step_ms=20,
    )
    with Emulator(scenario, port=0) as emu:
        conn = connect_venue(environment_for(emu.clob_url), Secret(str(Account.create().key.hex())))
        client, address = conn.client, conn.signer.address.lower()
        m1, m2 = (
            MarketInfo(market=m["market"], yes_token=m["yes_token"], no_token=m["no_token"], tick_px=100)
            for m in emu.venue.market_ids()
        )
        config = GatewayConfig(
            heartbeat_interval_s=INTERVAL_S,
            heartbeat_retry_s=0.25,
            heartbeat_window_s=WINDOW_S,
            reconcile_interval_s=None,  # only the lost heartbeat may make the bot look
        )
        routed = Routed()
        gateway, port, _ = start_gateway(
            client, conn.signer, [m1, m2], routed, LiveClock(), config=config, rate_limits=conn.rate_limits
        )
        control = httpx.Client(base_url=emu.clob_url, timeout=10)

        def venue_open() -> set[str]:
            return {o["id"] for o in control.get("/emulator/orders", params={"address": address}).json()
                    if o["status"] == "LIVE"}  # fmt: skip

        def expired() -> int:
            return int(emu.status()["users"][address]["requests"].get("heartbeat_expired", 0))

        def ledger_open() -> set[str]:
            return set(gateway.ask(GetOpenOrderIds(), timeout=10))

        def status() -> Any:
            return gateway.ask(GetGatewayStatus(), timeout=10)

        try:
            gateway.ask(Startup(), timeout=30)
            port.submit([bid(m1, "a1"), bid(m2, "b1")])
            first = wait_for(lambda: len(venue_open()) == 2 and venue_open(), "both bids resting")
            wait_for(lambda: status().heartbeats >= 2, "the switch armed by our heartbeats")
            assert ledger_open() == first

            # The heartbeats stop getting through (the bot keeps sending them): 503 past the window.
            rule = control.post(
                "/emulator/faults",
                json={
                    "kind": "http_status",
                    "status": 503,
                    "message": "down",
                    "routes": ["POST /v1/heartbeats"],
                },
            ).json()["id"]
            wait_for(lambda: expired() == 1, "the venue's switch firing", timeout_s=WINDOW_S + 10)
            assert venue_open() == set()
            # The bot sees it by itself: each market is told its orders are gone, the ledger has none.
            gone = wait_for(
                lambda: len(routed.of(Canceled)) == 2 and routed.of(Canceled), "both markets told"
            )
            assert sorted(c.client_id for c in gone) == ["a1", "b1"]
            assert all("heartbeat" in c.reason for c in gone), [c.reason for c in gone]
            assert {c.market for c in gone} == {m1.market, m2.market}
            assert ledger_open() == set()
            lost = status()
            assert lost.heartbeat_losses == 1 and lost.heartbeat_failures > 0

            # The markets requote from scratch; the heartbeats get through again.
            assert control.delete("/emulator/faults", params={"id": rule}).status_code == 200
            port.submit([bid(m1, "a2"), bid(m2, "b2")])
            again = wait_for(lambda: len(venue_open()) == 2 and venue_open(), "both markets quoting again")
            assert not again & first
            beats = status().heartbeats
            # More than a window of heartbeats that reach the venue: the new orders outlive it.
            wait_for(lambda: status().heartbeats >= beats + WINDOW_S / INTERVAL_S + 2, "heartbeats again")
            assert expired() == 1
            assert venue_open() == again == ledger_open()
            assert status().heartbeat_losses == 1
            report = gateway.ask(Shutdown(), timeout=30)
            assert report.confirmed and venue_open() == set()
        finally:
            gateway.stop()
            control.close()
            client.close()
