"""Trades that end FAILED, market BUYs by pUSD amount, positions, order lookups and the emulator's record."""

from __future__ import annotations

import json

import httpx
import pytest
from py_clob_client_v2.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    MarketOrderArgsV2,
    OrderArgsV2,
    OrderType,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException
from websockets.sync.client import connect

from emulator import Emulator, ManualClock
from emulator.scenario import AccountConfig
from tests.emulator.conftest import (
    KEY_B,
    QUIET,
    control,
    events,
    ids,
    make_client,
    make_scenario,
    recv_until,
)

POST_ONLY = {"order_type": OrderType.GTC, "post_only": True}
#: The official SDK's ``Position`` model fields (polymarket-client 0.14.0, Data API v2).
V2_POSITION_FIELDS = {
    "proxy_wallet", "token_id", "condition_id", "current_size", "avg_price", "entry_cost_usdc",
    "entry_fees_usdc", "total_cost_usdc", "current_price", "current_value", "total_size", "realized_pnl",
    "unrealized_pnl", "total_pnl", "percent_pnl", "percent_realized_pnl", "status", "redeemable",
    "mergeable", "negative_risk", "archived", "verified", "title", "slug", "icon", "event_slug",
    "outcome", "opposite_outcome", "name", "profile_image", "event_id", "outcome_index",
    "opposite_token_id", "end_date", "last_event_at", "first_entry_at",
}  # fmt: skip


def _emu(**overrides: object) -> Emulator:
    return Emulator(make_scenario(**overrides), port=0, clock=ManualClock())


def _auth(client) -> dict[str, str]:
    c = client.creds
    return {"apiKey": c.api_key, "secret": c.api_secret, "passphrase": c.api_passphrase}


def _positions(emu: Emulator, user: str) -> list[dict]:
    r = httpx.get(f"{emu.clob_url}/data-api/v2/positions", params={"user": user}, timeout=5)
    assert r.status_code == 200
    return r.json()["data"]


def test_a_trade_chosen_to_fail_ends_failed_and_gives_the_balances_back():
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        cash = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
        shares = BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=m["yes_token"])
        with connect(emu.ws_user_url) as ws:
            ws.send(json.dumps({"auth": _auth(client), "markets": [], "type": "user"}))
            ws.send("PING")
            assert ws.recv(timeout=5) == "PONG"
            order = client.create_and_post_order(
                OrderArgsV2(token_id=m["yes_token"], price=0.49, size=15, side="BUY"), **POST_ONLY
            )
            control(emu, "POST", "/emulator/fail-trades", {"next": 1})
            control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "10"})
            filled_cash = int(client.get_balance_allowance(cash)["balance"])
            control(emu, "POST", "/emulator/clock", {"advance_ms": 60})  # past trade_mined_ms
            frames = recv_until(ws, lambda fs: any(e.get("status") == "FAILED" for e in events(fs)))
            # The next trade settles as usual (the order's last 5 shares).
            control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "5"})

        trades = [e for e in events(frames) if e["event_type"] == "trade"]
        [failed] = client.get_trades(TradeParams(id=trades[0]["id"]))
        assert [t["status"] for t in trades] == ["MATCHED", "FAILED"]
        assert filled_cash == 10_000_000_000 - 4_900_000
        assert client.get_balance_allowance(cash)["balance"] == str(10_000_000_000 - 2_450_000)
        assert client.get_balance_allowance(shares)["balance"] == "5000000"  # the failed 10 are given back
        assert failed["status"] == "FAILED"
        view = client.get_order(order["orderID"])
        assert (view["status"], view["size_matched"]) == ("MATCHED", "15")  # the order is not put back
        legs = control(emu, "GET", "/emulator/trades", address=client.get_address())
        assert [(x["status"], x["size"]) for x in legs] == [("FAILED", "10"), ("MATCHED", "5")]
        [row] = _positions(emu, client.get_address())
        assert (row["outcome"], row["current_size"], row["avg_price"]) == ("Yes", 5.0, 0.49)


def test_a_market_buy_by_amount_fills_a_maker_in_six_decimals():
    with _emu(account=AccountConfig(cash_usdc6=10_000_000_000, shares_qty=100_000_000)) as emu:
        maker = make_client(emu)
        taker = make_client(emu, KEY_B)
        m = ids(emu, QUIET)
        ask = maker.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.51, size=20, side="SELL"), **POST_ONLY
        )

        by_hand = control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "BUY", "amount": "5"})
        market_buy = taker.create_market_order(
            MarketOrderArgsV2(
                token_id=m["yes_token"], amount=5, side="BUY", price=0.51, order_type=OrderType.FAK
            )
        )
        reply = taker.post_order(market_buy, OrderType.FAK)
        fok = taker.create_market_order(
            MarketOrderArgsV2(
                token_id=m["yes_token"], amount=500, side="BUY", price=0.51, order_type=OrderType.FOK
            )
        )
        killed = taker.post_order(fok, OrderType.FOK)  # $500 cannot be spent at 0.51 or better
        view = maker.get_order(ask["orderID"])

        assert by_hand["filled_size"] == "9.803922"  # $5 / 0.51, to the nearest 1e-6 share
        assert (reply["status"], reply["takingAmount"], reply["makingAmount"]) == ("matched", "9.803922", "5")
        assert killed["success"] is False and "FOK" in killed["errorMsg"]
        assert view["size_matched"] == "19.607844"
        rows = {p["token_id"]: p for p in _positions(emu, maker.get_address())}
        assert rows[m["yes_token"]]["current_size"] == 80.392156  # 100 - 19.607844
        assert rows[m["no_token"]]["mergeable"] is True
        fak, fok_record = control(emu, "GET", "/emulator/orders", address=taker.get_address())
        assert (fak["order_type"], fak["budget_usdc"], fak["size_matched"], fak["status"]) == (
            "FAK",
            "5",
            "9.803922",
            "MATCHED",
        )
        assert fok_record["status"] == "REJECTED"


def test_positions_in_the_data_api_v2_shape_from_balances_and_cost():
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.49, size=10, side="BUY"), **POST_ONLY
        )
        control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "10"})
        page = httpx.get(
            f"{emu.clob_url}/data-api/v2/positions",
            params={"user": client.get_address(), "limit": "1"},
            timeout=5,
        ).json()
        nobody = _positions(emu, "0x" + "00" * 20)
        missing_user = httpx.get(f"{emu.clob_url}/data-api/v2/positions", timeout=5)

        [row] = page["data"]
        assert set(row) == V2_POSITION_FIELDS
        assert page["pagination"] == {"has_more": False, "next_cursor": None}
        assert (row["token_id"], row["condition_id"], row["outcome"], row["outcome_index"]) == (
            m["yes_token"],
            m["market"],
            "Yes",
            0,
        )
        assert (row["current_size"], row["avg_price"], row["entry_cost_usdc"]) == (10.0, 0.49, 4.9)
        assert row["current_price"] == 0.5  # the mid of 0.48 / 0.52
        assert (row["status"], row["opposite_token_id"], row["proxy_wallet"]) == (
            "OPEN",
            m["no_token"],
            client.get_address(),
        )
        assert nobody == []
        assert missing_user.status_code == 400


def test_single_order_lookup_by_status_and_404_for_an_order_never_received():
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        live = client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.49, size=10, side="BUY"), **POST_ONLY
        )
        gone = client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.40, size=10, side="BUY"), **POST_ONLY
        )
        client.cancel_orders([gone["orderID"]])
        control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "4"})
        taken = client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.52, size=10, side="BUY"), order_type=OrderType.FAK
        )

        views = {
            k: client.get_order(r["orderID"]) for k, r in (("live", live), ("gone", gone), ("taken", taken))
        }
        with pytest.raises(PolyApiException) as missing:
            client.get_order("0x" + "ab" * 32)
        assert missing.value.status_code == 404
        assert (views["live"]["status"], views["live"]["size_matched"]) == ("LIVE", "4")
        assert len(views["live"]["associate_trades"]) == 1
        assert (views["gone"]["status"], views["gone"]["size_matched"]) == ("CANCELED", "0")
        assert (views["taken"]["status"], views["taken"]["size_matched"]) == ("MATCHED", "10")


def test_the_emulators_record_of_an_accounts_orders_and_trades():
    with _emu() as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        resting = client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.49, size=10, side="BUY"), **POST_ONLY
        )
        crossing = client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.55, size=10, side="BUY"), **POST_ONLY
        )
        control(emu, "POST", "/emulator/take", {"market": QUIET, "side": "SELL", "size": "10"})
        orders = control(emu, "GET", "/emulator/orders", address=client.get_address())
        trades = control(emu, "GET", "/emulator/trades", address=client.get_address())

        assert crossing["success"] is False
        assert [(o["id"], o["status"]) for o in orders][:1] == [(resting["orderID"], "MATCHED")]
        assert orders[1]["status"] == "REJECTED"
        assert orders[1]["reason"] == "invalid post-only order: order crosses book"
        [leg] = trades
        assert (leg["order_id"], leg["role"], leg["side"], leg["price"], leg["size"], leg["fee_usdc"]) == (
            resting["orderID"],
            "MAKER",
            "BUY",
            "0.49",
            "10",
            "0",
        )
        assert leg["trade_id"] == orders[0]["associate_trades"][0]
        assert control(emu, "GET", "/emulator/orders", address="0x" + "00" * 20) == []
