"""Protocol V2 markets next to V1 ones: ids, Gamma, CLOB reads, signatures per protocol, balances,
positions and the legacy heartbeat, driven by ``py_clob_client_v2`` (which signs a ``position_id``
order for ExchangeV3, domain "3") and raw requests. ``test_sdk_e2e.py`` runs the official
``polymarket-client`` through the same paths.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import httpx
import pytest
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import OrderArgsV2, OrderType, PartialCreateOrderOptions
from websockets.sync.client import connect

from adapters.polymarket.parse import AssetMap, decode_market_frame
from adapters.polymarket.rest_book import RestBookClient
from core.markets import MarketInfo
from core.messages import BookSnapshot
from core.units import PX_ONE, QTY_ONE, Outcome
from emulator import Emulator, ManualClock
from emulator.protocol import EXCHANGE_V3, is_v2_position_id
from emulator.scenario import MarketConfig, Scenario, derive_ids, load_scenario
from tests.emulator.conftest import (
    V1_MARKET,
    V2_MARKET,
    V2_NEGRISK,
    control,
    events,
    ids,
    l2_request,
    make_client,
    mixed_scenario,
    recv_until,
    status,
    wait_for,
)


@pytest.fixture
def memu() -> Iterator[Emulator]:
    with Emulator(mixed_scenario(), port=0, clock=ManualClock()) as e:
        yield e


def _signed_body(client: ClobClient, token: str, price: float, size: float, *, v3: bool, tick: str) -> dict:
    """A post-only GTC BUY signed for ExchangeV3 (``v3``, as a ``position_id``) or the CTF exchange."""
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2  # noqa: PLC0415

    args = (
        OrderArgsV2(position_id=token, price=price, size=size, side="BUY")
        if v3
        else OrderArgsV2(token_id=token, price=price, size=size, side="BUY")
    )
    signed = client.create_order(args, PartialCreateOrderOptions(tick_size=tick, neg_risk=False))
    return order_to_json_v2(signed, client.creds.api_key, OrderType.GTC, True, False)


def _post(e: Emulator, client: ClobClient, body: dict) -> httpx.Response:
    return l2_request(e, client, "POST", "/order", body)


# --- ids ---------------------------------------------------------------------------------------------


def test_v2_market_ids_follow_the_position_layout_and_v1_ids_do_not():
    cid, yes, no = derive_ids(MarketConfig(slug="some-v2", version="v2"))
    raw = bytes.fromhex(cid[2:])
    assert len(raw) == 32 and raw[0] == 0x01 and not any(raw[17:])  # module, 16 hash bytes, zeros
    assert (int(yes), int(no)) == (int(cid, 16), int(cid, 16) + 1)  # the structural id + outcome byte
    assert is_v2_position_id(yes) and is_v2_position_id(no)
    neg_cid, _, _ = derive_ids(MarketConfig(slug="some-v2", version="v2", neg_risk=True))
    assert neg_cid.startswith("0x02")
    # A V1 market's ids are what they always were (hashes), outside the V2 namespace.
    v1 = derive_ids(MarketConfig(slug="will-it-rain-in-lisbon-tomorrow"))
    assert v1[0] == "0x" + hashlib.sha256(b"polymm-emulator:will-it-rain-in-lisbon-tomorrow").hexdigest()
    assert not is_v2_position_id(v1[1]) and not is_v2_position_id(v1[2])
    # A configured V2 condition id gives the positions.
    given = "0x02" + "ab" * 16 + "00" * 15
    assert derive_ids(MarketConfig(slug="x", version="v2", condition_id=given))[1:] == (
        str(int(given, 16)),
        str(int(given, 16) + 1),
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"version": "v2", "yes_token": "12345678901234567890123456789"}, "not a Protocol V2 position id"),
        ({"yes_token": str(1 << 248)}, "in the Protocol V2 position namespace"),
        ({"version": "v2", "condition_id": "0x" + "ab" * 32}, "not a Protocol V2 market id"),
        ({"version": "v2", "yes_token": "abc"}, "not a uint256"),
    ],
)
def test_a_market_with_ids_of_the_other_protocol_is_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        MarketConfig(slug="m", **kw)


def test_v2_markets_need_v2_orders():
    with pytest.raises(ValueError, match="order_version: 1 cannot trade Protocol V2"):
        Scenario(markets=(MarketConfig(slug="m", version="v2"),), order_version=1)


def test_the_default_scenario_mixes_protocols_and_keeps_its_v1_markets():
    sc = load_scenario("configs/emulator/default.yaml")
    versions = {m.slug: m.version for m in sc.markets}
    assert list(versions.values())[:3] == ["v1", "v1", "v1"]  # first, so their ids and flow are unchanged
    assert sorted(versions.values()).count("v2") == 2
    assert any(m.neg_risk for m in sc.markets if m.version == "v2")


# --- public reads ------------------------------------------------------------------------------------


def test_gamma_says_each_markets_version_with_the_ids_of_its_protocol(memu: Emulator):
    v1, v2 = ids(memu, V1_MARKET), ids(memu, V2_MARKET)
    listing = {m["slug"]: m for m in httpx.get(f"{memu.gamma_url}/markets").json()}

    assert listing[V1_MARKET]["version"] == "v1"
    assert listing[V1_MARKET]["clobTokenIds"] == f'["{v1["yes_token"]}", "{v1["no_token"]}"]'
    assert "positionIds" not in listing[V1_MARKET]
    assert listing[V2_MARKET]["version"] == "v2"
    assert listing[V2_MARKET]["positionIds"] == [v2["yes_token"], v2["no_token"]]  # a plain array
    assert "clobTokenIds" not in listing[V2_MARKET]
    assert listing[V2_MARKET]["conditionId"] == v2["market"]
    only_v2 = httpx.get(f"{memu.gamma_url}/markets", params={"version": "v2"}).json()
    assert {m["slug"] for m in only_v2} == {V2_MARKET, V2_NEGRISK}
    by_pos = httpx.get(f"{memu.gamma_url}/markets", params={"position_ids": v2["no_token"]}).json()
    assert [m["slug"] for m in by_pos] == [V2_MARKET]
    assert httpx.get(f"{memu.gamma_url}/markets/slug/{V2_MARKET}").json()["id"] == listing[V2_MARKET]["id"]
    assert httpx.get(f"{memu.gamma_url}/markets/slug/{v2['market']}").status_code == 404  # slugs only


def test_gamma_keyset_pages_walk_every_market_once(memu: Emulator):
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    for _ in range(5):
        page = httpx.get(f"{memu.gamma_url}/markets/keyset", params=params).json()
        seen += [m["slug"] for m in page["markets"]]
        if "next_cursor" not in page:
            break
        params["after_cursor"] = page["next_cursor"]

    assert seen == [V1_MARKET, V2_MARKET, V2_NEGRISK]
    assert httpx.get(f"{memu.gamma_url}/markets/keyset", params={"offset": "1"}).status_code == 400
    assert httpx.get(f"{memu.gamma_url}/markets/keyset", params={"after_cursor": "%%"}).status_code == 400


def test_clob_reads_and_the_market_channel_are_keyed_by_position_ids(memu: Emulator):
    v2 = ids(memu, V2_NEGRISK)
    pos = v2["yes_token"]

    assert httpx.get(f"{memu.clob_url}/markets-by-token/{pos}").json() == {"condition_id": v2["market"]}
    info = httpx.get(f"{memu.clob_url}/clob-markets/{v2['market']}").json()
    assert [t["t"] for t in info["t"]] == [v2["yes_token"], v2["no_token"]]
    assert (info["mts"], info["nr"]) == (0.001, True)
    book = httpx.get(f"{memu.clob_url}/book", params={"token_id": pos}).json()
    assert (book["market"], book["asset_id"], book["bids"][-1]["price"]) == (v2["market"], pos, "0.48")
    with connect(memu.ws_market_url) as ws:
        ws.send(f'{{"assets_ids": ["{v2["no_token"]}"], "type": "market"}}')
        (dump,) = events(recv_until(ws, bool))
    assert (dump["event_type"], dump["market"], dump["asset_id"]) == ("book", v2["market"], v2["no_token"])
    assert (dump["bids"][-1]["price"], dump["asks"][-1]["price"]) == ("0.48", "0.52")  # NO: 1 - YES asks/bids


def test_polymms_own_book_readers_take_a_v2_market_by_its_position_ids(memu: Emulator):
    # polymm's side of the same reads: the REST book client (GET /book) and the market channel's
    # decoder, with an AssetMap built from the V2 market's position ids, as the live feed builds it.
    v2 = ids(memu, V2_NEGRISK)
    market = MarketInfo(
        market=v2["market"], yes_token=v2["yes_token"], no_token=v2["no_token"], tick_px=10, version="v2"
    )
    with RestBookClient(memu.clob_url, retries=0) as books:
        rest = books.yes_book(market.market, market.yes_token)
    with connect(memu.ws_market_url) as ws:
        ws.send(json.dumps({"assets_ids": [market.yes_token, market.no_token], "type": "market"}))
        frames = recv_until(ws, lambda got: len(events(got)) >= 2)
    skipped: list[str] = []
    decoded = [
        e for f in frames for e in decode_market_frame(f, AssetMap.from_markets([market]), skipped=skipped)
    ]
    snapshots = {e.outcome: e for e in decoded if isinstance(e, BookSnapshot)}

    lot = 100 * QTY_ONE
    assert (rest.market, rest.outcome) == (market.market, Outcome.YES)
    assert (rest.bids, rest.asks) == (((4800, lot), (4700, lot)), ((5200, lot), (5300, lot)))
    assert skipped == [] and set(snapshots) == {Outcome.YES, Outcome.NO}
    assert {e.market for e in snapshots.values()} == {market.market}
    assert (snapshots[Outcome.YES].bids, snapshots[Outcome.YES].asks) == (rest.bids, rest.asks)
    assert snapshots[Outcome.NO].bids[0] == (PX_ONE - 5200, lot)  # NO bids mirror YES asks


# --- orders per protocol -------------------------------------------------------------------------------


def test_a_v2_order_signed_for_exchange_v3_rests_fills_and_cancels(memu: Emulator):
    client = make_client(memu)
    v2 = ids(memu, V2_MARKET)
    pos = v2["yes_token"]

    placed = _post(memu, client, _signed_body(client, pos, 0.50, 10, v3=True, tick="0.01"))
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderID"]
    assert placed.json()["status"] == "live"
    with connect(memu.ws_user_url) as ws:
        creds = client.creds
        auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}
        ws.send(json.dumps({"auth": auth, "markets": [v2["market"]], "type": "user"}))
        wait_for(lambda: status(memu)["subscriptions"]["user"] == 1)
        control(
            memu,
            "POST",
            "/emulator/take",
            {"market": V2_MARKET, "side": "SELL", "size": "10", "price": "0.50"},
        )
        trade = next(
            e
            for e in events(recv_until(ws, lambda f: any('"trade"' in x for x in f)))
            if e["event_type"] == "trade"
        )
    assert trade["market"] == v2["market"]
    assert trade["maker_orders"][0]["asset_id"] == pos
    balance = l2_request(
        memu, client, "GET", "/balance-allowance", params={"asset_type": "CONDITIONAL-V2", "token_id": pos}
    )
    assert balance.json() == {"balance": str(10 * QTY_ONE), "allowances": {EXCHANGE_V3: str(2**256 - 1)}}
    order = l2_request(memu, client, "GET", f"/data/order/{order_id}").json()
    assert (order["status"], order["size_matched"], order["asset_id"]) == ("MATCHED", "10", pos)
    positions = httpx.get(f"{memu.clob_url}/data-api/v2/positions", params={"user": client.get_address()})
    rows = [(r["token_id"], r["condition_id"], r["current_size"]) for r in positions.json()["data"]]
    assert rows == [(pos, v2["market"], 10.0)]

    second = _post(memu, client, _signed_body(client, pos, 0.49, 10, v3=True, tick="0.01")).json()["orderID"]
    canceled = l2_request(memu, client, "DELETE", "/order", {"orderID": second}).json()
    assert canceled == {"canceled": [second], "not_canceled": {}}
    assert status(memu)["users"][client.get_address().lower()]["open_orders"] == 0


@pytest.mark.parametrize(
    ("slug", "v3", "signed_in", "needed"),
    [
        (V2_MARKET, False, 'domain "2" (CTF Exchange V2', 'domain "3" (ExchangeV3'),
        (V1_MARKET, True, 'domain "3" (ExchangeV3', 'domain "2" (CTF Exchange V2'),
    ],
)
def test_an_order_signed_for_the_wrong_protocol_is_refused_as_the_venue_refuses_it(
    memu: Emulator, slug: str, v3: bool, signed_in: str, needed: str
):
    client = make_client(memu)
    token = ids(memu, slug)["yes_token"]

    refused = _post(memu, client, _signed_body(client, token, 0.50, 10, v3=v3, tick="0.01"))
    right = _post(memu, client, _signed_body(client, token, 0.50, 10, v3=not v3, tick="0.01"))

    assert (refused.status_code, refused.json()) == (400, {"error": "invalid signature"})
    assert right.status_code == 200 and right.json()["status"] == "live"  # the same order, signed right
    record = control(memu, "GET", "/emulator/orders", address=client.get_address())
    (rejected,) = [r for r in record if r["status"] == "REJECTED"]
    assert rejected["reason"].startswith("invalid signature: signed in " + signed_in)
    assert needed in rejected["reason"] and token in rejected["reason"]
    assert status(memu)["users"][client.get_address().lower()]["open_orders"] == 1


def test_balances_are_asked_with_the_asset_type_of_the_tokens_protocol(memu: Emulator):
    client = make_client(memu)
    v1, v2 = ids(memu, V1_MARKET)["yes_token"], ids(memu, V2_MARKET)["yes_token"]

    def ask(asset_type: str, token: str) -> httpx.Response:
        return l2_request(
            memu, client, "GET", "/balance-allowance", params={"asset_type": asset_type, "token_id": token}
        )

    assert ask("CONDITIONAL", v1).json()["balance"] == "0"
    assert ask("CONDITIONAL-V2", v2).json()["balance"] == "0"
    wrong_v2 = ask("CONDITIONAL", v2)
    assert (wrong_v2.status_code, wrong_v2.json()["error"]) == (
        400,
        f"invalid asset_type CONDITIONAL for token id {v2}: a Protocol V2 position uses CONDITIONAL-V2",
    )
    wrong_v1 = ask("CONDITIONAL-V2", v1)
    assert wrong_v1.status_code == 400 and "a V1 (CTF) token uses CONDITIONAL" in wrong_v1.json()["error"]
    assert ask("CONDITIONAL-V2", "").status_code == 400
    collateral = ask("COLLATERAL", "").json()
    assert EXCHANGE_V3 in collateral["allowances"]


# --- heartbeats ----------------------------------------------------------------------------------------


def test_the_legacy_heartbeat_feeds_the_switch_and_restarts_the_v1_chain(memu: Emulator):
    client = make_client(memu)
    pos = ids(memu, V2_MARKET)["yes_token"]
    _post(memu, client, _signed_body(client, pos, 0.45, 10, v3=True, tick="0.01"))

    def beat(hb: str) -> httpx.Response:
        return l2_request(memu, client, "POST", "/v1/heartbeats", {"heartbeat_id": hb})

    first = beat("").json()["heartbeat_id"]
    legacy = l2_request(memu, client, "POST", "/heartbeats")
    stale = beat(first)
    restarted = beat("")
    control(memu, "POST", "/emulator/clock", {"advance_ms": 9_000})
    assert l2_request(memu, client, "POST", "/heartbeats").json() == {"status": "ok"}
    control(memu, "POST", "/emulator/clock", {"advance_ms": 9_000})  # 18 s after the /v1 beat, 9 after legacy
    alive = status(memu)["users"][client.get_address().lower()]
    control(memu, "POST", "/emulator/clock", {"advance_ms": 1_001})  # 10.001 s after the last (legacy) beat
    expired = status(memu)["users"][client.get_address().lower()]

    assert (legacy.status_code, legacy.json()) == (200, {"status": "ok"})
    assert (stale.status_code, stale.json()["error_msg"], stale.json()["heartbeat_id"]) == (
        400,
        "Invalid Heartbeat ID",
        "",
    )
    assert restarted.status_code == 200 and restarted.json()["heartbeat_id"] not in ("", first)
    assert (alive["open_orders"], alive["heartbeat_armed"]) == (1, True)
    assert (expired["open_orders"], expired["heartbeat_armed"], expired["requests"]["heartbeat_expired"]) == (
        0,
        False,
        1,
    )
