"""Faults switched on and off at run time, on a clock that moves only when the test says: a silent user
channel, a frozen market feed with or without PONGs, cancels refused with 425, heartbeat expiry."""

from __future__ import annotations

import json

import httpx
import pytest
from py_clob_client_v2.clob_types import OrderArgsV2, OrderMarketCancelParams, OrderType
from py_clob_client_v2.exceptions import PolyApiException
from websockets.sync.client import connect

from emulator import Emulator, ManualClock
from tests.emulator.conftest import QUIET, control, events, ids, make_client, make_scenario, recv_until

POST_ONLY = {"order_type": OrderType.GTC, "post_only": True}
CANCEL_ROUTES = ["DELETE /order", "DELETE /orders", "DELETE /cancel-all", "DELETE /cancel-market-orders"]


def _emu(**overrides: object) -> Emulator:
    return Emulator(make_scenario(**overrides), port=0, clock=ManualClock())


def _auth(client) -> dict[str, str]:
    c = client.creds
    return {"apiKey": c.api_key, "secret": c.api_secret, "passphrase": c.api_passphrase}


def _bid(client, token: str, px: float = 0.49, size: float = 20) -> str:
    reply = client.create_and_post_order(
        OrderArgsV2(token_id=token, price=px, size=size, side="BUY"), **POST_ONLY
    )
    return str(reply["orderID"])


def test_a_silent_user_channel_answers_pings_and_loses_what_it_did_not_send():
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        order_id = _bid(client, m["yes_token"])
        with connect(emu.ws_user_url) as ws:
            ws.send(json.dumps({"auth": _auth(client), "markets": [], "type": "user"}))
            ws.send("PING")
            assert ws.recv(timeout=5) == "PONG"
            rule = control(
                emu,
                "POST",
                "/emulator/faults",
                {"kind": "ws_freeze", "channel": "user", "duration_ms": 30_000},
            )
            control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "5"})  # lost
            ws.send("PING")
            silent = recv_until(ws, lambda fs: "PONG" in fs)  # only the PONG comes
            control(emu, "POST", "/emulator/clock", {"advance_ms": 30_001})
            control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "7.575758"})
            after = recv_until(ws, lambda fs: any(e["event_type"] == "trade" for e in events(fs)))
        trades = client.get_trades()

        assert silent == ["PONG"]
        assert rule["id"] >= 1
        seen = [e for e in events(after) if e["event_type"] == "trade"]
        assert [e["maker_orders"][0]["matched_amount"] for e in seen] == ["7.575758"]  # not the lost 5
        updates = [e for e in events(after) if e["event_type"] == "order"]
        assert updates[-1]["size_matched"] == "12.575758"  # the venue's total, lost fill included
        assert sorted(t["size"] for t in trades) == ["5", "7.575758"]  # REST still has both
        assert client.get_order(order_id)["size_matched"] == "12.575758"


@pytest.mark.parametrize("pong", [True, False])
def test_a_frozen_market_feed_while_the_book_changes(pong: bool):
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        with connect(emu.ws_market_url) as ws:
            ws.send(json.dumps({"assets_ids": [m["yes_token"]], "type": "market"}))
            recv_until(ws, lambda fs: any(e["event_type"] == "book" for e in events(fs)))
            rule = control(
                emu,
                "POST",
                "/emulator/faults",
                {"kind": "ws_freeze", "channel": "market", "duration_ms": 90_000, "pong": pong},
            )
            before = client.get_order_book(m["yes_token"])["hash"]
            _bid(client, m["yes_token"], 0.50, 10)  # the book changes; the feed says nothing
            changed = client.get_order_book(m["yes_token"])
            ws.send("PING")
            if pong:
                assert ws.recv(timeout=5) == "PONG"
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.3)  # no data (and without pong, no PONG either)
            control(emu, "DELETE", "/emulator/faults", id=str(rule["id"]))  # switched off
            resumed = recv_until(ws, lambda fs: any(e["event_type"] == "book" for e in events(fs)))

        assert changed["hash"] != before
        [book] = [e for e in events(resumed) if e["event_type"] == "book"]
        assert book["bids"][-1] == {"price": "0.5", "size": "10"}  # a fresh book once the freeze ends


def test_cancels_refused_with_425_until_switched_off():
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        order_id = _bid(client, m["yes_token"])
        rule = control(
            emu,
            "POST",
            "/emulator/faults",
            {"kind": "http_status", "status": 425, "routes": CANCEL_ROUTES, "message": "service restarting"},
        )
        refused = []
        for call in (
            lambda: client.cancel_orders([order_id]),
            client.cancel_all,
            lambda: client.cancel_market_orders(OrderMarketCancelParams(market=m["market"])),
        ):
            with pytest.raises(PolyApiException) as exc:
                call()
            refused.append((exc.value.status_code, exc.value.error_msg))
        still_open = client.get_open_orders()
        listed = control(emu, "GET", "/emulator/faults")
        control(emu, "DELETE", "/emulator/faults", id=str(rule["id"]))
        canceled = client.cancel_all()

        assert refused == [(425, {"error": "service restarting"})] * 3
        assert [o["id"] for o in still_open] == [order_id]
        assert [r["status"] for r in listed if r["id"] == rule["id"]] == [425]
        assert canceled["canceled"] == [order_id]


def test_heartbeat_expiry_on_the_fake_clock_cancels_everything_and_says_so():
    with _emu(heartbeat_timeout_ms=5_000) as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        first, second = _bid(client, m["yes_token"], 0.49), _bid(client, m["no_token"], 0.49)
        with connect(emu.ws_user_url) as ws:
            ws.send(json.dumps({"auth": _auth(client), "markets": [], "type": "user"}))
            ws.send("PING")
            assert ws.recv(timeout=5) == "PONG"
            hb = client.post_heartbeat("")
            control(emu, "POST", "/emulator/clock", {"advance_ms": 5_000})  # exactly the timeout: alive
            alive = len(client.get_open_orders())
            hb = client.post_heartbeat(hb["heartbeat_id"])
            control(emu, "POST", "/emulator/clock", {"advance_ms": 5_001})
            frames = recv_until(ws, lambda fs: sum(e.get("type") == "CANCELLATION" for e in events(fs)) >= 2)
            # A shorter timeout set at run time applies to the next armed switch.
            control(emu, "POST", "/emulator/settings", {"heartbeat_timeout_ms": 1_000})
            third = _bid(client, m["yes_token"], 0.45)
            client.post_heartbeat("")
            control(emu, "POST", "/emulator/clock", {"advance_ms": 1_001})

        assert alive == 2
        assert sorted(e["id"] for e in events(frames) if e.get("type") == "CANCELLATION") == sorted(
            [first, second]
        )
        assert client.get_open_orders() == []
        assert client.get_order(third)["status"] == "CANCELED"
        st = httpx.get(f"{emu.clob_url}/emulator/status", timeout=5).json()
        assert st["users"][client.get_address().lower()]["requests"]["heartbeat_expired"] == 2
