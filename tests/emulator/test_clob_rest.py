"""The emulator's CLOB REST API driven by the real ``py_clob_client_v2.ClobClient``."""

from __future__ import annotations

import base64
import dataclasses
import time

import httpx
import pytest
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    CreateOrderOptions,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderType,
    PartialCreateOrderOptions,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException

from emulator import Emulator, ManualClock
from emulator.auth import l2_signature
from tests.emulator.conftest import (
    BUSY,
    KEY_A,
    KEY_B,
    NEGRISK,
    QUIET,
    ids,
    make_client,
    make_scenario,
    status,
)

POST_ONLY = {"order_type": OrderType.GTC, "post_only": True}


def _buy(token: str, price: float, size: float) -> OrderArgsV2:
    return OrderArgsV2(token_id=token, price=price, size=size, side="BUY")


def test_api_creds_create_then_derive_give_the_same_key(emu: Emulator):
    c = ClobClient(emu.clob_url, 137, key=KEY_A)

    first = c.create_or_derive_api_key()
    second = c.create_or_derive_api_key()  # POST answers 400 now, the client falls back to derive

    assert first == second
    assert base64.urlsafe_b64decode(first.api_secret)  # padded url-safe base64, as the client needs
    with pytest.raises(PolyApiException) as exc:
        c.create_api_key()
    assert exc.value.status_code == 400
    assert ClobClient(emu.clob_url, 137, key=KEY_B).create_or_derive_api_key().api_key != first.api_key


def test_post_only_gtc_rests_then_cancels(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)

    resp = client.create_and_post_order(_buy(m["yes_token"], 0.45, 10), **POST_ONLY)
    orders = client.get_open_orders(OpenOrderParams(market=m["market"]))
    canceled = client.cancel_order(OrderPayload(orderID=resp["orderID"]))
    again = client.cancel_order(OrderPayload(orderID=resp["orderID"]))

    assert resp["success"] is True
    assert resp["status"] == "live"
    assert resp["orderID"].startswith("0x")
    assert len(resp["orderID"]) == 66
    [o] = orders
    assert o["id"] == resp["orderID"]
    assert (o["status"], o["side"], o["price"], o["original_size"], o["size_matched"]) == (
        "LIVE",
        "BUY",
        "0.45",
        "10",
        "0",
    )
    assert (o["asset_id"], o["outcome"], o["owner"]) == (m["yes_token"], "Yes", client.creds.api_key)
    assert canceled == {"canceled": [resp["orderID"]], "not_canceled": {}}
    assert again["canceled"] == []
    assert again["not_canceled"] == {resp["orderID"]: "already canceled or matched"}
    assert client.get_open_orders() == []
    assert client.get_order(resp["orderID"])["status"] == "CANCELED"


def test_post_only_order_that_crosses_is_rejected_with_the_venue_message(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)

    resp = client.create_and_post_order(_buy(m["yes_token"], 0.52, 10), **POST_ONLY)

    assert resp["success"] is False
    assert resp["errorMsg"] == "invalid post-only order: order crosses book"
    assert client.get_open_orders() == []


def test_order_off_the_tick_grid_is_rejected(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    # The client refuses a finer tick than the market's, so sign with its builder directly (a stale
    # tick cache does the same thing in production).
    signed = client.builder.build_order(
        _buy(m["yes_token"], 0.455, 10), CreateOrderOptions(tick_size="0.001", neg_risk=False)
    )

    with pytest.raises(PolyApiException) as exc:
        client.post_order(signed, OrderType.GTC, post_only=True)

    assert exc.value.status_code == 400
    assert "breaks minimum tick size rule: 0.01" in exc.value.error_msg["error"]


def test_order_below_the_minimum_size_is_rejected(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)

    with pytest.raises(PolyApiException) as exc:
        client.create_and_post_order(_buy(m["yes_token"], 0.45, 2), **POST_ONLY)

    assert exc.value.status_code == 400
    assert "Size (2) lower than the minimum: 5" in exc.value.error_msg["error"]


def test_orders_beyond_the_balance_are_rejected(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)

    with pytest.raises(PolyApiException) as buy:
        client.create_and_post_order(_buy(m["yes_token"], 0.45, 30_000), **POST_ONLY)  # 13,500 > 10,000 USDC
    with pytest.raises(PolyApiException) as sell:
        client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.6, size=10, side="SELL"), **POST_ONLY
        )

    assert buy.value.status_code == sell.value.status_code == 400
    assert buy.value.error_msg == sell.value.error_msg == {"error": "not enough balance / allowance"}


def test_batch_of_15_is_placed_and_16_are_refused(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    opts = PartialCreateOrderOptions(tick_size="0.01", neg_risk=False)
    batch = [
        PostOrdersV2Args(
            order=client.create_order(_buy(m["yes_token"], 0.30 + i / 100, 5 + i), opts),
            orderType=OrderType.GTC,
        )
        for i in range(16)
    ]

    replies = client.post_orders(batch[:15], post_only=True)
    with pytest.raises(PolyApiException) as exc:
        client.post_orders(batch, post_only=True)

    assert [r["success"] for r in replies] == [True] * 15
    assert len({r["orderID"] for r in replies}) == 15
    assert len(client.get_open_orders()) == 15
    assert exc.value.status_code == 400
    assert "max allowed: 15" in exc.value.error_msg["error"]


def test_batch_reports_each_order_on_its_own(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    opts = PartialCreateOrderOptions(tick_size="0.01", neg_risk=False)
    good = client.create_order(_buy(m["yes_token"], 0.40, 10), opts)
    crossing = client.create_order(_buy(m["yes_token"], 0.55, 10), opts)
    tiny = client.create_order(_buy(m["yes_token"], 0.40, 1), opts)

    replies = client.post_orders(
        [PostOrdersV2Args(order=o, orderType=OrderType.GTC) for o in (good, crossing, tiny)], post_only=True
    )

    assert [r["success"] for r in replies] == [True, False, False]
    assert replies[1]["errorMsg"] == "invalid post-only order: order crosses book"
    assert "lower than the minimum" in replies[2]["errorMsg"]


def test_cancel_market_orders_then_cancel_all(emu: Emulator, client: ClobClient):
    q, n = ids(emu, QUIET), ids(emu, NEGRISK)
    a = client.create_and_post_order(_buy(q["yes_token"], 0.40, 10), **POST_ONLY)
    b = client.create_and_post_order(_buy(q["no_token"], 0.40, 10), **POST_ONLY)
    c = client.create_and_post_order(_buy(n["yes_token"], 0.401, 10), **POST_ONLY)  # neg-risk exchange domain

    by_asset = client.cancel_market_orders(OrderMarketCancelParams(asset_id=q["no_token"]))
    by_market = client.cancel_market_orders(OrderMarketCancelParams(market=q["market"]))
    left = client.get_open_orders()
    everything = client.cancel_all()

    assert by_asset["canceled"] == [b["orderID"]]
    assert by_market["canceled"] == [a["orderID"]]
    assert [o["id"] for o in left] == [c["orderID"]]
    assert everything["canceled"] == [c["orderID"]]
    assert client.get_open_orders() == []
    assert status(emu)["users"][client.get_address().lower()]["open_orders"] == 0


def test_open_orders_pages_end_with_lte(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    placed = [
        client.create_and_post_order(_buy(m["yes_token"], 0.30 + i / 100, 5), **POST_ONLY)["orderID"]
        for i in range(7)
    ]
    creds = client.creds
    cursors = []
    cursor = "MA=="

    while cursor != "LTE=":
        ts = str(int(time.time()))
        headers = {
            "POLY_ADDRESS": client.get_address(),
            "POLY_API_KEY": creds.api_key,
            "POLY_PASSPHRASE": creds.api_passphrase,
            "POLY_TIMESTAMP": ts,
            "POLY_SIGNATURE": l2_signature(creds.api_secret, ts, "GET", "/data/orders"),
        }
        page = httpx.get(
            f"{emu.clob_url}/data/orders", params={"next_cursor": cursor}, headers=headers
        ).json()
        cursor = page["next_cursor"]
        cursors.append((page["count"], cursor))

    assert cursors == [(3, "Mw=="), (3, "Ng=="), (1, "LTE=")]
    assert [o["id"] for o in client.get_open_orders()] == placed
    assert len(client.get_open_orders(only_first_page=True)) == 3


def test_wrong_hmac_secret_is_401(emu: Emulator, client: ClobClient):
    wrong = base64.urlsafe_b64encode(b"\x01" * 32).decode()
    bad = ClobClient(
        emu.clob_url, 137, key=KEY_A, creds=ApiCreds(client.creds.api_key, wrong, client.creds.api_passphrase)
    )

    with pytest.raises(PolyApiException) as exc:
        bad.get_open_orders()

    assert exc.value.status_code == 401
    assert exc.value.error_msg == {"error": "Unauthorized/Invalid api key"}


def test_tampered_order_signature_is_rejected(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    signed = client.create_order(_buy(m["yes_token"], 0.45, 10))
    # Ask for twice the shares at the same signature.
    tampered = dataclasses.replace(signed, takerAmount=str(int(signed.takerAmount) * 2))

    with pytest.raises(PolyApiException) as exc:
        client.post_order(tampered, OrderType.GTC, post_only=True)

    assert exc.value.status_code == 400
    assert exc.value.error_msg == {"error": "invalid signature"}
    assert client.get_open_orders() == []


def test_order_of_the_wrong_version_is_refused():
    v1_server = make_scenario(order_version=1)
    with Emulator(make_scenario(), port=0) as emu2, Emulator(v1_server, port=0) as emu1:
        for e, ok in ((emu2, False), (emu1, True)):
            c = make_client(e)
            m = ids(e, QUIET)
            args = _buy(m["yes_token"], 0.45, 10)
            opts = PartialCreateOrderOptions(version=1, neg_risk=False)

            if ok:
                assert c.post_order(c.create_order(args, opts), OrderType.GTC)["status"] == "live"
            else:
                with pytest.raises(PolyApiException) as exc:
                    c.post_order(c.create_order(args, opts), OrderType.GTC)
                assert "order_version_mismatch" in exc.value.error_msg["error"]


def test_heartbeats_that_stop_cancel_the_users_orders():
    clock = ManualClock()
    with Emulator(make_scenario(heartbeat_timeout_ms=300), port=0, clock=clock) as emu:
        client = make_client(emu)
        m = ids(emu, QUIET)
        client.create_and_post_order(_buy(m["yes_token"], 0.45, 10), **POST_ONLY)
        clock.advance(400 * 1_000_000)
        emu.venue.step()
        assert len(client.get_open_orders()) == 1  # not armed yet: no heartbeat was ever sent

        first = client.post_heartbeat("")
        second = client.post_heartbeat(first["heartbeat_id"])
        with pytest.raises(PolyApiException) as stale:
            client.post_heartbeat(first["heartbeat_id"])
        clock.advance(301 * 1_000_000)
        emu.venue.step()

        assert client.get_open_orders() == []
        assert second["heartbeat_id"] != first["heartbeat_id"]
        assert stale.value.status_code == 400
        assert stale.value.error_msg["heartbeat_id"] == second["heartbeat_id"]
        mine = status(emu)["users"][client.get_address().lower()]
        assert mine["requests"]["heartbeat_expired"] == 1
        assert mine["heartbeats"] == 2  # accepted ones: the stale id was refused


def test_balance_allowance_follows_fills(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    collateral = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
    shares = BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=m["yes_token"])

    before = client.get_balance_allowance(collateral)
    resp = client.create_and_post_order(
        _buy(m["yes_token"], 0.52, 10), order_type=OrderType.GTC
    )  # takes 0.52
    after = client.get_balance_allowance(collateral)
    held = client.get_balance_allowance(shares)

    assert before["balance"] == "10000000000"
    assert set(before["allowances"]) >= {"0xE111180000d2663C0091e4f400237545B87B996B"}
    assert resp["status"] == "matched"
    assert (resp["makingAmount"], resp["takingAmount"]) == ("5.2", "10")
    assert resp["transactionsHashes"]  # filled, so the client does not poll /data/trades
    assert after["balance"] == str(10_000_000_000 - 5_200_000)
    assert held["balance"] == "10000000"
    [trade] = client.get_trades(TradeParams(id=resp["tradeIDs"][0]))
    assert (trade["trader_side"], trade["side"], trade["price"], trade["size"]) == (
        "TAKER",
        "BUY",
        "0.52",
        "10",
    )
    assert trade["maker_orders"][0]["price"] == "0.48"  # the seed's BUY NO at 0.48 (a mint)


def test_taker_fee_is_charged_on_fee_markets(emu: Emulator, client: ClobClient):
    m = ids(emu, BUSY)
    collateral = BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)

    client.create_and_post_order(_buy(m["yes_token"], 0.52, 100), order_type=OrderType.FAK)
    after = int(client.get_balance_allowance(collateral)["balance"])

    # 100 shares at 0.52 plus 4% * 100 * 0.52 * 0.48 = 0.9984 USDC of fee.
    assert after == 10_000_000_000 - 52_000_000 - 998_400


def test_public_market_data(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    tok = m["yes_token"]

    book = client.get_order_book(tok)

    assert [lv["price"] for lv in book["bids"]] == ["0.47", "0.48"]  # best last
    assert [lv["price"] for lv in book["asks"]] == ["0.53", "0.52"]
    assert (book["tick_size"], book["min_order_size"], book["neg_risk"]) == ("0.01", "5", False)
    assert client.get_order_book_hash(dict(book)) == book["hash"]
    assert client.get_midpoint(tok) == {"mid": "0.5"}
    assert client.get_price(tok, "BUY") == {"price": "0.48"}
    assert client.get_price(tok, "SELL") == {"price": "0.52"}
    assert client.get_spread(tok) == {"spread": "0.04"}
    assert client.get_tick_size(tok) == "0.01"
    assert client.get_neg_risk(ids(emu, NEGRISK)["yes_token"]) is True
    no_book = client.get_order_book(m["no_token"])
    assert no_book["bids"][-1]["price"] == "0.48"  # the mirror of the YES asks
    assert client.get_clob_market_info(m["market"])["t"][0]["t"] == tok
    assert client.get_market(m["market"])["tokens"][1]["token_id"] == m["no_token"]
    assert client.get_markets()["next_cursor"] == "LTE="
    with pytest.raises(PolyApiException) as exc:
        client.get_order_book("123")
    assert exc.value.status_code == 404


def test_status_counts_order_requests_per_user(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    me = client.get_address().lower()
    assert status(emu)["users"][me]["requests"] == {}  # key creation, books and reads are not counted

    resp = client.create_and_post_order(_buy(m["yes_token"], 0.45, 10), **POST_ONLY)
    client.cancel_orders([resp["orderID"]])
    client.cancel_all()
    st = status(emu)["users"][me]

    assert st["requests"] == {"post_order": 1, "orders": 1, "cancel_orders": 1, "cancel_all": 1, "total": 3}
    assert st["open_orders"] == 0
    assert st["api_keys"] == [client.creds.api_key]


def test_gtd_expiration_and_fok_kill(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    now = int(time.time())

    with pytest.raises(PolyApiException) as too_soon:
        client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.45, size=10, side="BUY", expiration=now + 30),
            order_type=OrderType.GTD,
        )
    gtd = client.create_and_post_order(
        OrderArgsV2(token_id=m["yes_token"], price=0.45, size=10, side="BUY", expiration=now + 120),
        order_type=OrderType.GTD,
    )
    fok = client.create_and_post_order(_buy(m["yes_token"], 0.52, 150), order_type=OrderType.FOK)

    assert too_soon.value.error_msg == {"error": "invalid expiration"}
    [o] = client.get_open_orders()
    assert (o["id"], o["order_type"], o["expiration"]) == (gtd["orderID"], "GTD", str(now + 120))
    assert fok["success"] is False
    assert fok["errorMsg"] == "order couldn't be fully filled. FOK orders are fully filled or killed."
