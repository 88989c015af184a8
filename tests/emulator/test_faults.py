"""Fault injection: statuses, Retry-After, latency, order rejections, WebSocket drops and freezes."""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest
from py_clob_client_v2.clob_types import OrderArgsV2, OrderType, PartialCreateOrderOptions, PostOrdersV2Args
from py_clob_client_v2.exceptions import PolyApiException
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from emulator import Emulator, ManualClock
from emulator.faults import FaultInjector, route_matches
from emulator.scenario import HttpFault, LatencyFault, RejectFault, WsDropFault, WsFreezeFault
from tests.emulator.conftest import QUIET, control, events, ids, make_client, make_scenario, wait_for


def test_429_carries_retry_after_and_425_stops_orders_once():
    faults = (
        HttpFault(status=429, routes=("GET /tick-size",), max_count=1, retry_after_s=2),
        HttpFault(status=425, routes=("POST /order",), max_count=1),
    )
    with Emulator(make_scenario(faults=faults), port=0) as emu:
        token = ids(emu, QUIET)["yes_token"]
        limited = httpx.get(f"{emu.clob_url}/tick-size", params={"token_id": token})
        after = httpx.get(f"{emu.clob_url}/tick-size", params={"token_id": token})
        client = make_client(emu)
        args = OrderArgsV2(token_id=token, price=0.45, size=10, side="BUY")

        with pytest.raises(PolyApiException) as restarting:
            client.create_and_post_order(args, order_type=OrderType.GTC, post_only=True)
        retried = client.create_and_post_order(args, order_type=OrderType.GTC, post_only=True)

        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"
        assert after.json() == {"minimum_tick_size": 0.01}
        assert restarting.value.status_code == 425
        assert retried["success"] is True
        st = emu.status()
        assert st["faults"] == {"http_status": 2}
        assert st["users"][client.get_address().lower()]["requests"]["post_order"] == 2  # the 425 counts too


def test_order_rejections_and_latency():
    faults = (
        RejectFault(
            routes=("POST /orders",), every_n=2, message="the market is not yet ready to process new orders"
        ),
        LatencyFault(ms=300, routes=("GET /time",), max_count=1),
    )
    with Emulator(make_scenario(faults=faults), port=0) as emu:
        client = make_client(emu)
        token = ids(emu, QUIET)["yes_token"]
        opts = PartialCreateOrderOptions(tick_size="0.01", neg_risk=False)
        batch = [
            PostOrdersV2Args(
                order=client.create_order(OrderArgsV2(token_id=token, price=p, size=10, side="BUY"), opts)
            )
            for p in (0.40, 0.41, 0.42, 0.43)
        ]

        replies = client.post_orders(batch, post_only=True)
        t0 = time.monotonic()
        httpx.get(f"{emu.clob_url}/time")
        slow = time.monotonic() - t0
        httpx.get(f"{emu.clob_url}/time")  # max_count 1: not delayed again

        assert [r["success"] for r in replies] == [True, False, True, False]
        assert replies[1]["errorMsg"] == "the market is not yet ready to process new orders"
        # A latency fault sleeps on the wall clock (it delays real replies), so only its lower bound
        # is asserted; how often it fired is the counter's.
        assert slow >= 0.3
        assert emu.status()["faults"] == {"reject_order": 2, "latency": 1}


def test_market_feed_freezes_then_resumes_with_books():
    # On the fake clock: the freeze ends when the test moves time past it, not after a wait.
    faults = (WsFreezeFault(channel="market", start_ms=0, duration_ms=600, pong=False),)
    with Emulator(make_scenario(faults=faults), port=0, clock=ManualClock()) as emu:
        m = ids(emu, QUIET)
        with connect(emu.ws_market_url) as ws:
            ws.send("PING")  # frozen: no PONG...
            ws.send(json.dumps({"assets_ids": [m["yes_token"]], "type": "market"}))  # ...and no book
            # Frames are read in order: once the subscription exists, the PING was handled, frozen.
            wait_for(lambda: emu.status()["subscriptions"]["market"] == 1)
            still = control(emu, "POST", "/emulator/clock", {"advance_ms": 599})
            frozen_at_599 = emu.status()["frozen"]["market"]
            control(emu, "POST", "/emulator/clock", {"advance_ms": 1})
            first = ws.recv(timeout=5)
            ws.send("PING")
            second = ws.recv(timeout=5)

        assert (still["elapsed_ms"], frozen_at_599) == (599, True)
        # The first frame after the freeze is the fresh book: the PING sent meanwhile got no PONG.
        assert [(e["event_type"], e["asset_id"]) for e in events([first])] == [("book", m["yes_token"])]
        assert second == "PONG"


def test_websocket_connections_are_dropped():
    faults = (WsDropFault(channel="market", start_ms=300),)
    with Emulator(make_scenario(faults=faults), port=0, clock=ManualClock()) as emu:
        m = ids(emu, QUIET)
        with connect(emu.ws_market_url) as ws:
            ws.send(json.dumps({"assets_ids": [m["yes_token"]], "type": "market"}))
            ws.recv(timeout=3)  # the book
            control(emu, "POST", "/emulator/clock", {"advance_ms": 299})
            ws.send("PING")
            alive = ws.recv(timeout=3)
            control(emu, "POST", "/emulator/clock", {"advance_ms": 1})

            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=3)

        assert alive == "PONG"
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1011


def test_route_patterns():
    assert route_matches((), "GET", "/book")
    assert route_matches(("POST /order",), "POST", "/order")
    assert not route_matches(("POST /order",), "POST", "/orders")
    assert route_matches(("POST /order*",), "POST", "/orders")
    assert route_matches(("* /data/*",), "GET", "/data/trades")
    assert not route_matches(("DELETE /cancel-*",), "GET", "/cancel-all")


def test_fault_windows_and_counts_are_respected():
    rule = HttpFault(status=500, start_ms=100, end_ms=200, every_n=2, max_count=2)
    inj = FaultInjector((rule,), random.Random(1))

    fired = [inj.http_fault("GET", "/book", t) is not None for t in (50, 100, 110, 120, 130, 140, 150, 250)]

    assert fired == [False, False, True, False, True, False, False, False]
