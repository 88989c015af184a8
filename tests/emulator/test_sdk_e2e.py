"""The official client, ``polymarket-client`` (0.14.0), end to end against the emulator on loopback.

Every call polymm makes through it, on a V1 market and on Protocol V2 markets: limit orders built,
signed (domain "2" for a CTF token, "3" for a V2 position, chosen by the SDK from the id alone),
posted, resting, filled by the emulator's flow and cancelled; orders, trades, balances (``CONDITIONAL``
and ``CONDITIONAL-V2``) and Data API positions read back; an order signed for the wrong protocol
refused as the venue refuses it; the heartbeat chain with its mismatch resync; the rate-limit
listener; Gamma's ``version`` and ids. Time that matters (the dead-man switch) moves on the
emulator's ``ManualClock``, never by sleeping.

Skipped where ``polymarket-client`` is not installed (it is not yet a dependency on main).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

pytest.importorskip("polymarket", reason="polymarket-client is not installed")

from eth_account import Account
from polymarket import (
    OrderHeartbeatMismatchError,
    PublicClient,
    RateLimitError,
    RateLimitUpdate,
    RequestRejectedError,
    SecureClient,
)
from polymarket.models.clob.orders import SignedOrder

from emulator import Emulator, ManualClock
from emulator.auth import l2_signature
from emulator.orders import EXCHANGES
from emulator.protocol import EXCHANGE_V3
from emulator.scenario import RateLimitConfig, TierConfig
from tests.emulator.conftest import (
    KEY_A,
    V1_MARKET,
    V2_MARKET,
    V2_NEGRISK,
    control,
    ids,
    mixed_scenario,
    status,
)
from tests.emulator.sdk_env import local_environment

ADDRESS_A = Account.from_key(KEY_A).address

#: (market, asset type of its outcome tokens, a bid that rests below the 0.52 ask, the tick's next bid)
MARKETS = [
    pytest.param(V1_MARKET, "CONDITIONAL", "0.5", "0.49", id="v1"),
    pytest.param(V2_MARKET, "CONDITIONAL-V2", "0.5", "0.49", id="v2"),
    pytest.param(V2_NEGRISK, "CONDITIONAL-V2", "0.495", "0.494", id="v2-negrisk-tick-0.001"),
]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(mixed_scenario(), port=0, clock=ManualClock()) as e:
        yield e


def _client(e: Emulator, **kw: Any) -> SecureClient:
    return SecureClient.create(
        private_key=KEY_A, wallet=ADDRESS_A, environment=local_environment(e.clob_url), **kw
    )


@pytest.fixture
def sdk(emu: Emulator) -> Iterator[SecureClient]:
    client = _client(emu)
    yield client
    client.close()


def _open_orders(e: Emulator) -> int:
    return int(status(e)["users"][ADDRESS_A.lower()]["open_orders"])


@pytest.mark.parametrize(("slug", "asset_type", "bid", "next_bid"), MARKETS)
def test_a_limit_order_rests_fills_and_a_second_one_cancels(
    emu: Emulator, sdk: SecureClient, slug: str, asset_type: str, bid: str, next_bid: str
):
    m = ids(emu, slug)
    token = m["yes_token"]

    book = sdk.get_order_book(token_id=token)
    signed = sdk.create_limit_order(token_id=token, price=bid, size="10", side="BUY", post_only=True)
    accepted = sdk.post_order(signed)
    resting = [o.id for o in sdk.list_open_orders(market=m["market"]).first_page().items]
    control(emu, "POST", "/emulator/take", {"market": slug, "side": "SELL", "size": "10", "price": bid})
    filled = sdk.get_order(order_id=accepted.order_id)
    balance = sdk.get_balance_allowance(asset_type=asset_type, token_id=token)
    (position,) = sdk.list_positions(user=ADDRESS_A, condition_id=[m["market"]]).first_page().items
    (trade,) = sdk.list_account_trades(market=m["market"]).first_page().items
    second = sdk.post_order(
        sdk.create_limit_order(token_id=token, price=next_bid, size="10", side="BUY", post_only=True)
    )
    canceled = sdk.cancel_order(order_id=second.order_id)
    again = sdk.cancel_order(order_id=second.order_id)

    assert (book.asset_id, book.market) == (token, m["market"])
    assert accepted.ok and accepted.status == "live"
    assert resting == [accepted.order_id]
    assert (filled.status, filled.size_matched, filled.asset_id) == ("MATCHED", Decimal(10), token)
    assert balance.balance == 10_000_000  # shares in 1e-6 units
    expected_spender = EXCHANGE_V3 if asset_type == "CONDITIONAL-V2" else EXCHANGES[(2, False)]
    assert expected_spender in balance.allowances
    assert (position.asset_id, position.condition_id, position.current_size) == (token, m["market"], 10)
    assert (trade.trader_side, trade.maker_orders[0].asset_id) == ("MAKER", token)
    assert (canceled.canceled, canceled.not_canceled) == ((second.order_id,), {})
    assert (again.canceled, again.not_canceled) == ((), {second.order_id: "already canceled or matched"})
    assert _open_orders(emu) == 0


def _signature_in(signed: SignedOrder, version: str, contract: str) -> str:
    """``signed``'s order signed again by KEY_A in another EIP-712 domain."""
    typed = {
        "primaryType": "Order",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Order": [
                {"name": "salt", "type": "uint256"},
                {"name": "maker", "type": "address"},
                {"name": "signer", "type": "address"},
                {"name": "tokenId", "type": "uint256"},
                {"name": "makerAmount", "type": "uint256"},
                {"name": "takerAmount", "type": "uint256"},
                {"name": "side", "type": "uint8"},
                {"name": "signatureType", "type": "uint8"},
                {"name": "timestamp", "type": "uint256"},
                {"name": "metadata", "type": "bytes32"},
                {"name": "builder", "type": "bytes32"},
            ],
        },
        "domain": {
            "name": "Polymarket CTF Exchange",
            "version": version,
            "chainId": 137,
            "verifyingContract": contract,
        },
        "message": {
            "salt": signed.salt,
            "maker": signed.maker,
            "signer": signed.signer,
            "tokenId": int(signed.token_id),
            "makerAmount": signed.maker_amount,
            "takerAmount": signed.taker_amount,
            "side": 0 if signed.side == "BUY" else 1,
            "signatureType": signed.signature_type,
            "timestamp": signed.timestamp,
            "metadata": bytes.fromhex(signed.metadata.removeprefix("0x")),
            "builder": bytes.fromhex(signed.builder.removeprefix("0x")),
        },
    }
    return "0x" + Account.sign_typed_data(KEY_A, full_message=typed).signature.hex().removeprefix("0x")


@pytest.mark.parametrize(
    ("slug", "wrong_version", "wrong_contract"),
    [
        pytest.param(V2_MARKET, "2", EXCHANGES[(2, False)], id="v2-position-signed-for-the-ctf-exchange"),
        pytest.param(V1_MARKET, "3", EXCHANGE_V3, id="v1-token-signed-for-exchange-v3"),
    ],
)
def test_an_order_signed_for_the_wrong_protocol_is_refused(
    emu: Emulator, sdk: SecureClient, slug: str, wrong_version: str, wrong_contract: str
):
    token = ids(emu, slug)["yes_token"]
    signed = sdk.create_limit_order(token_id=token, price="0.5", size="10", side="BUY", post_only=True)
    wrong = dataclasses.replace(signed, signature=_signature_in(signed, wrong_version, wrong_contract))
    # The re-signing is right: the same order in its own domain signs to what the SDK signed.
    own = ("3", EXCHANGE_V3) if slug == V2_MARKET else ("2", EXCHANGES[(2, False)])
    assert _signature_in(signed, *own) == signed.signature

    with pytest.raises(RequestRejectedError) as refused:
        sdk.post_order(wrong)
    assert (refused.value.status, str(refused.value)) == (400, "invalid signature")
    assert _open_orders(emu) == 0
    assert sdk.post_order(signed).status == "live"  # the order itself, as the SDK signed it, is fine


def _legacy_heartbeat(e: Emulator, sdk: SecureClient) -> httpx.Response:
    # POST /heartbeats is not in the SDK: one raw L2 request with the client's credentials.
    creds = sdk.credentials
    ts = str(e.clock.now_ns() // 1_000_000_000)
    headers = {
        "POLY_ADDRESS": ADDRESS_A,
        "POLY_API_KEY": creds.key,
        "POLY_PASSPHRASE": creds.passphrase,
        "POLY_TIMESTAMP": ts,
        "POLY_SIGNATURE": l2_signature(creds.secret, ts, "POST", "/heartbeats", ""),
    }
    return httpx.post(f"{e.clob_url}/heartbeats", headers=headers, timeout=5)


def test_heartbeats_chain_resync_from_the_mismatch_and_expire_on_the_fake_clock(
    emu: Emulator, sdk: SecureClient
):
    token = ids(emu, V2_MARKET)["yes_token"]
    order = sdk.post_order(
        sdk.create_limit_order(token_id=token, price="0.45", size="10", side="BUY", post_only=True)
    )

    first = sdk.send_order_heartbeat(heartbeat_id="").heartbeat_id
    second = sdk.send_order_heartbeat(heartbeat_id=first).heartbeat_id
    with pytest.raises(OrderHeartbeatMismatchError) as stale:
        sdk.send_order_heartbeat(heartbeat_id=first)
    resynced = sdk.send_order_heartbeat(heartbeat_id=stale.value.heartbeat_id).heartbeat_id
    legacy = _legacy_heartbeat(emu, sdk)
    with pytest.raises(OrderHeartbeatMismatchError) as after_legacy:
        sdk.send_order_heartbeat(heartbeat_id=resynced)
    restarted = sdk.send_order_heartbeat(heartbeat_id=after_legacy.value.heartbeat_id).heartbeat_id
    control(emu, "POST", "/emulator/clock", {"advance_ms": 10_000})  # exactly the timeout: still alive
    alive = sdk.get_order(order_id=order.order_id).status
    control(emu, "POST", "/emulator/clock", {"advance_ms": 1})
    expired = sdk.get_order(order_id=order.order_id).status

    assert len({first, second, resynced, restarted}) == 4 and "" not in {first, second, resynced, restarted}
    assert (stale.value.status, stale.value.heartbeat_id) == (400, second)
    assert (legacy.status_code, legacy.json()) == (200, {"status": "ok"})
    assert after_legacy.value.heartbeat_id == ""  # the chain restarts after a legacy beat
    assert (alive, expired) == ("LIVE", "CANCELED")
    assert _open_orders(emu) == 0


def test_the_rate_limit_listener_sees_the_venues_headers_and_a_definite_429():
    tier = TierConfig(orders_per_s=1, order_burst=2, cancels_per_s=1, cancel_burst=2)
    limits = RateLimitConfig(enabled=True, default_tier="tiny", custom_tiers={"tiny": tier}, retry_after_s=30)
    updates: list[RateLimitUpdate] = []
    with Emulator(mixed_scenario(rate_limits=limits), port=0, clock=ManualClock()) as emu:
        sdk = _client(emu, on_rate_limit_update=updates.append)
        token = ids(emu, V1_MARKET)["yes_token"]
        orders = [
            sdk.create_limit_order(token_id=token, price=px, size="5", side="BUY", post_only=True)
            for px in ("0.40", "0.41", "0.42")
        ]
        first = sdk.post_order(orders[0])
        after_first = list(updates)
        sdk.post_order(orders[1])
        with pytest.raises(RateLimitError) as limited:
            sdk.post_order(orders[2])
        sdk.close()

    assert first.ok
    assert [(u.remaining, u.tier, u.warning) for u in after_first] == [(1.0, "tiny", False)]
    assert after_first[0].reset is not None
    assert [u.remaining for u in updates] == [1.0, 0.0, 0.0]  # the refused request reports too
    # Rate-limit headers on the 429: a definite refusal (the CDN's 429 has none), with Retry-After.
    assert limited.value.rate_limit is not None and limited.value.rate_limit.tier == "tiny"
    assert limited.value.retry_after == 30


def test_gamma_gives_the_sdk_each_markets_version_and_ids(emu: Emulator):
    v1, v2 = ids(emu, V1_MARKET), ids(emu, V2_MARKET)
    gamma = PublicClient(environment=local_environment(emu.clob_url))
    try:
        m1 = gamma.get_market(slug=V1_MARKET)
        m2 = gamma.get_market(slug=V2_MARKET)
        listed = [(m.slug, m.version) for m in gamma.list_markets(page_size=1).iter_items()]
        only_v2 = [m.slug for m in gamma.list_markets(version="v2").iter_items()]
    finally:
        gamma.close()

    assert (m1.version, m1.condition_id, m1.outcomes.yes.token_id, m1.outcomes.no.token_id) == (
        "v1",
        v1["market"],
        v1["yes_token"],
        v1["no_token"],
    )
    assert (m2.version, m2.condition_id, m2.outcomes.yes.position_id, m2.outcomes.no.position_id) == (
        "v2",
        v2["market"],
        v2["yes_token"],
        v2["no_token"],
    )
    assert listed == [(V1_MARKET, "v1"), (V2_MARKET, "v2"), (V2_NEGRISK, "v2")]
    assert only_v2 == [V2_MARKET, V2_NEGRISK]


def test_the_sdk_decides_the_protocol_from_the_emulators_ids_as_the_emulator_does(emu: Emulator):
    from polymarket._internal.protocol import is_v2_position_id as sdk_is_v2  # noqa: PLC0415

    for m in emu.venue.market_ids():
        assert sdk_is_v2(m["yes_token"]) == sdk_is_v2(m["no_token"]) == (m["version"] == "v2"), m
    assert ids(emu, V2_MARKET)["market"].startswith("0x01") and ids(emu, V2_NEGRISK)["market"].startswith(
        "0x02"
    )


@pytest.mark.parametrize(
    ("fault", "restriction"),
    [
        pytest.param({"status": 425}, "restarting", id="425-restarting"),
        pytest.param(
            {"status": 503, "message": "post-only mode", "code": "post_only_mode"},
            "post_only",
            id="503-post-only",
        ),
        pytest.param(
            {"status": 503, "message": "Trading is in cancel-only mode"}, "cancel_only", id="503-cancel-only"
        ),
    ],
)
def test_trading_restrictions_reach_the_sdk_as_the_venue_sends_them(
    emu: Emulator, sdk: SecureClient, fault: dict[str, Any], restriction: str
):
    token = ids(emu, V1_MARKET)["yes_token"]
    signed = sdk.create_limit_order(token_id=token, price="0.45", size="10", side="BUY", post_only=True)
    control(
        emu,
        "POST",
        "/emulator/faults",
        {"kind": "http_status", "routes": ["POST /order"], "max_count": 1, **fault},
    )

    with pytest.raises(RequestRejectedError) as refused:
        sdk.post_order(signed)

    assert (refused.value.status, refused.value.restriction) == (fault["status"], restriction)
    assert sdk.post_order(signed).status == "live"  # once the window is over
