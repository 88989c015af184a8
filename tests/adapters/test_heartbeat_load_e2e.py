"""Heartbeats at 150 markets under order load never gap beyond the venue's window (emulator, loopback).

The gateway's mailbox is kept full (every market cancels and replaces two quotes as fast as it can
be told to) while the heartbeat thread beats every second; the venue's dead-man switch (10 s) must
never fire and the largest gap between two heartbeats that reached the venue is printed (run with
``-s`` to see it). Before #10 heartbeats went through the gateway's mailbox and gaps reached 18 s.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

from eth_account import Account

from actors.gateway import GatewayConfig, GetGatewayStatus, Shutdown, Startup
from adapters.clock import LiveClock
from adapters.polymarket.clob_port import connect_venue
from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import Secret
from app.gateway import start_gateway
from core.markets import MarketInfo
from core.messages import Cancel, Place
from core.units import QTY_ONE, Outcome, Side
from emulator import Emulator
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario
from tests.actors.venue_fake import Routed

N_MARKETS = 150
LOAD_S = float(os.environ.get("POLYMM_E2E_HEARTBEAT_LOAD_S", "10"))
WINDOW_S = 10.0


@pytest.mark.slow
def test_heartbeats_at_150_markets_never_gap_beyond_the_window_under_load():
    lot = 100 * QTY_ONE
    book = InitialBook(bids=((4800, lot),), asks=((5200, lot),))
    scenario = Scenario(
        name="heartbeat-load",
        markets=tuple(
            MarketConfig(
                slug=f"hb-{i}", question=f"Market {i}?", initial_book=book, flow=FlowConfig(enabled=False)
            )
            for i in range(N_MARKETS)
        ),
        heartbeat_timeout_ms=int(WINDOW_S * 1000),
    )
    with Emulator(scenario, port=0) as emu:
        client, signer, _, rate_limits = connect_venue(
            environment_for(emu.clob_url), Secret(str(Account.create().key.hex()))
        )
        markets = [
            MarketInfo(market=m["market"], yes_token=m["yes_token"], no_token=m["no_token"], tick_px=100)
            for m in emu.venue.market_ids()
        ]
        config = GatewayConfig(
            heartbeat_interval_s=1.0,
            heartbeat_window_s=WINDOW_S,
            reconcile_interval_s=5.0,
            rate_limit_tier="gold",
        )
        gateway, port, _ = start_gateway(
            client, signer, markets, Routed(), LiveClock(), config=config, rate_limits=rate_limits
        )
        stop = threading.Event()
        sent = [0]

        def load() -> None:
            # Every market replaces its two quotes each round: cancels and places flood the mailbox.
            live: dict[str, list[str]] = {m.market: [] for m in markets}
            n = 0
            while not stop.is_set():
                for m in markets:
                    n += 1
                    cmds: list[object] = [Cancel(market=m.market, client_id=c) for c in live[m.market]]
                    bid_px, ask_px = 4000 + 100 * (n % 5), 6000 + 100 * (n % 5)
                    new = [
                        Place(market=m.market, client_id=f"{m.market}-b{n}", outcome=Outcome.YES,
                              side=Side.BUY, px=bid_px, qty=5 * QTY_ONE),
                        Place(market=m.market, client_id=f"{m.market}-a{n}", outcome=Outcome.NO,
                              side=Side.BUY, px=10_000 - ask_px, qty=5 * QTY_ONE),
                    ]  # fmt: skip
                    live[m.market] = [p.client_id for p in new]
                    port.submit([*cmds, *new])  # type: ignore[list-item]
                    sent[0] += len(new)
                time.sleep(0.5)

        try:
            gateway.ask(Startup(), timeout=60)
            driver = threading.Thread(target=load, daemon=True)
            started = time.monotonic()
            driver.start()
            while time.monotonic() - started < LOAD_S:
                time.sleep(0.5)
            stop.set()
            driver.join(10)
            status = gateway.ask(GetGatewayStatus(), timeout=120)
            report = gateway.ask(Shutdown(), timeout=120)
            expired = emu.status()["users"][signer.address.lower()]["requests"].get("heartbeat_expired", 0)
        finally:
            stop.set()
            gateway.stop()
            client.close()

    print(
        f"\nheartbeats at {N_MARKETS} markets over {LOAD_S:g} s of load: {status.heartbeats} beats, "
        f"max gap {status.heartbeat_max_gap_s:.2f} s (window {WINDOW_S:g} s); {sent[0]} orders submitted, "
        f"{status.post_requests} posts, {status.cancel_requests} cancel requests"
    )
    assert status.heartbeats >= LOAD_S / 2
    assert status.heartbeat_failures == 0
    assert status.heartbeat_max_gap_s < WINDOW_S
    assert status.heartbeat_losses == 0 and expired == 0
    assert status.post_requests > 0 and report.confirmed
