"""Our own order signing against the venue SDK's: byte-identical orders, exact amounts, or a refusal."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polymarket import PRODUCTION
from polymarket._internal.actions.orders.typed_data import build_order_typed_data
from polymarket._internal.actions.orders.types import UnsignedOrder

from adapters.polymarket import sdk
from adapters.polymarket.errors import AmountMismatch, OrderRefused
from adapters.polymarket.orders import (
    TICK_SIZES,
    OrderSigner,
    bench_sign_orders,
    check_signed_amounts,
    expected_amounts,
    validate_place,
)
from core.messages import Place
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, Outcome, Side
from tests.adapters.sdk_offline import fixed_salt_and_time, offline_client, seed_market

KEY = "0x" + "5a" * 32  # a throwaway test key: signing is offline
ADDRESS = Account.from_key(KEY).address
CONTRACTS = sdk.contracts(PRODUCTION)
SALT, NOW_MS = 2**52 + 12_345, 1_800_000_000_123
SIGNER = OrderSigner(KEY, CONTRACTS, now_ms=lambda: NOW_MS, salt=lambda: SALT)
#: A V1 (CTF) token id, and a Protocol V2 position id (module byte 01, 16 hash bytes, 14 zero bytes,
#: outcome 00): the SDK signs the first for the CTF exchanges, the second for ExchangeV3.
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NEG_TOKEN = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
POSITION = str(int("01" + "c3" * 16 + "00" * 14 + "00", 16))
CENT = ORDER_QTY_STEP  # 0.01 share: every order we place is a whole number of these

SDK_CLIENT = offline_client(KEY)
for tick in TICK_SIZES:
    # One id per (protocol, neg-risk, tick): the SDK caches a tick per token.
    seed_market(SDK_CLIENT, str(int(TOKEN) + tick), tick_px=tick, neg_risk=False)
    seed_market(SDK_CLIENT, str(int(NEG_TOKEN) + tick), tick_px=tick, neg_risk=True)
    seed_market(SDK_CLIENT, str(int(POSITION) + tick * 2**8), tick_px=tick, neg_risk=False)


def token_for(kind: str, tick: int) -> str:
    """The seeded id of ``kind`` (v1, neg, v2) on ``tick``."""
    if kind == "v1":
        return str(int(TOKEN) + tick)
    if kind == "neg":
        return str(int(NEG_TOKEN) + tick)
    return str(int(POSITION) + tick * 2**8)  # the outcome byte stays 00: still a V2 YES position


def place(side: Side, px: int, qty: int, **kw: Any) -> Place:
    return Place(market="m", client_id="m-1", outcome=Outcome.YES, side=side, px=px, qty=qty, **kw)


def ours(p: Place, kind: str, tick: int) -> Any:
    return SIGNER.sign(
        p, token_for(kind, tick), tick, neg_risk=kind == "neg", protocol="v2" if kind == "v2" else "v1"
    )


def sdks(p: Place, kind: str, tick: int) -> Any:
    """The SDK's ``create_limit_order`` for the same order, salt and timestamp."""
    expiration = p.expire_ns // 10**9 if p.tif == "GTD" else None
    with fixed_salt_and_time(SALT, NOW_MS):
        return SDK_CLIENT.create_limit_order(
            token_id=token_for(kind, tick),
            price=f"{p.px / PX_ONE:.4f}",
            size=f"{p.qty / QTY_ONE:.2f}",
            side="BUY" if p.side is Side.BUY else "SELL",
            post_only=p.post_only,
            expiration=expiration,
        )


@st.composite
def orders(draw: st.DrawFn) -> tuple[Place, int]:
    tick = draw(st.sampled_from(sorted(TICK_SIZES)))
    px = draw(st.integers(1, PX_ONE // tick - 1)) * tick
    qty = draw(st.integers(1, 100_000)) * CENT  # 0.01 .. 1000.00 shares
    side = draw(st.sampled_from(Side))
    return place(side, px, qty), tick


# --- the SDK's order, byte for byte ------------------------------------------------------------------


def test_the_ids_are_what_the_sdk_says_they_are():
    assert not sdk.is_v2_position_id(TOKEN) and not sdk.is_v2_position_id(NEG_TOKEN)
    assert sdk.is_v2_position_id(POSITION) and sdk.is_v2_position_id(token_for("v2", 1000))


@pytest.mark.parametrize("kind", ["v1", "neg", "v2"], ids=["V1", "neg-risk V1", "Protocol V2"])
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_the_signed_order_is_byte_identical_to_the_sdks_create_limit_order(kind, side):
    p = place(side, 4510, 1001 * CENT)

    mine, theirs = ours(p, kind, 10), sdks(p, kind, 10)

    assert mine.order == theirs  # every field: amounts, salt, timestamp, signature, post-only...
    assert mine.order.signature == theirs.signature and len(theirs.signature) == 132


def test_the_offline_reference_still_signs_after_the_sdks_ten_minute_metadata_expiry():
    # A slow run (the compiled check, a loaded machine) reaches these tests more than 10 minutes after
    # the module seeded the SDK's market cache: the reference must not then ask the network.
    cache = SDK_CLIENT._ctx.order_metadata._markets
    saved = cache._clock
    cache._clock = lambda: saved() + 3600.0
    try:
        p = place(Side.BUY, 4510, 1001 * CENT)
        assert ours(p, "v1", 10).order == sdks(p, "v1", 10)
    finally:
        cache._clock = saved


@pytest.mark.parametrize(
    ("kind", "version", "exchange"),
    [
        ("v1", "2", CONTRACTS.standard_exchange),
        ("neg", "2", CONTRACTS.neg_risk_exchange),
        ("v2", "3", CONTRACTS.exchange_v3),
    ],
)
def test_the_order_id_is_the_eip712_digest_and_recovers_the_signer_only_in_its_domain(
    kind, version, exchange
):
    signed = ours(place(Side.BUY, 4500, 10 * QTY_ONE), kind, 100)
    # The SDK's own EIP-712 typed data for this order in each domain, hashed by eth_account.
    message = encode_typed_data(
        full_message=build_order_typed_data(_unsigned(signed.order, exchange, version))
    )

    assert "0x" + _hash(message).hex() == signed.order_id
    assert Account.recover_message(message, signature=signed.order.signature) == ADDRESS
    for other_version, other_exchange in (
        ("2", CONTRACTS.standard_exchange),
        ("2", CONTRACTS.neg_risk_exchange),
        ("3", CONTRACTS.exchange_v3),
    ):
        if (other_version, other_exchange) == (version, exchange):
            continue
        typed = build_order_typed_data(_unsigned(signed.order, other_exchange, other_version))
        wrong = encode_typed_data(full_message=typed)
        assert Account.recover_message(wrong, signature=signed.order.signature) != ADDRESS


def _unsigned(order: Any, exchange: str, version: str) -> Any:
    return UnsignedOrder(
        builder=order.builder,
        chain_id=CONTRACTS.chain_id,
        exchange_address=exchange,
        expiration=order.expiration,
        maker=order.maker,
        maker_amount=order.maker_amount,
        metadata=order.metadata,
        order_type=order.order_type,
        salt=order.salt,
        side=order.side,
        signature_type=order.signature_type,
        signer=order.signer,
        taker_amount=order.taker_amount,
        timestamp=order.timestamp,
        token_id=order.token_id,
        protocol_version=version,
    )


def _hash(message: Any) -> bytes:
    return keccak(b"\x19" + message.version + message.header + message.body)


@given(orders(), st.sampled_from(["v1", "neg", "v2"]))
@settings(max_examples=300, deadline=None)
@example((place(Side.BUY, 5000, 29 * CENT), 100), "v1")  # py-clob-client #142: 0.29 shares stay 0.29
@example((place(Side.SELL, 3330, 1056 * CENT), 10), "neg")
@example((place(Side.BUY, 1, 100_000 * CENT), 1), "v2")
@example((place(Side.SELL, 9000, 1 * CENT), 1000), "v1")
@example((place(Side.BUY, 9975, 7 * CENT), 25), "v2")
def test_our_amounts_equal_the_sdks_on_every_tick(order, kind):
    # The SDK's own amount rounding (floor size to 0.01, maker = size x price on the tick's decimals)
    # gives exactly our integers, so the whole signed order is the same.
    p, tick = order

    mine, theirs = ours(p, kind, tick), sdks(p, kind, tick)

    assert (theirs.maker_amount, theirs.taker_amount) == expected_amounts(p.side, p.px, p.qty)
    assert mine.order == theirs


def test_a_gtd_order_carries_its_expiry_in_seconds_like_the_sdks():
    expire_ns = (NOW_MS // 1000 + 3600) * 10**9 + 900_000_000
    p = place(Side.SELL, 4500, 10 * QTY_ONE, tif="GTD", expire_ns=expire_ns)

    mine, theirs = ours(p, "v1", 100), sdks(p, "v1", 100)

    assert mine.order.expiration == expire_ns // 10**9 and mine.order.order_type == "GTD"
    assert mine.order == theirs


def test_expected_amounts_spec_examples():
    # clob-emulator-spec §3: BUY 10 @ 0.45 and SELL 10.56 @ 0.333.
    assert expected_amounts(Side.BUY, 4500, 10 * QTY_ONE) == (4_500_000, 10_000_000)
    assert expected_amounts(Side.SELL, 3330, 1056 * CENT) == (10_560_000, 3_516_480)


def test_order_id_recomputes_the_digest_of_a_signed_order():
    signed = ours(place(Side.BUY, 4500, 10 * QTY_ONE), "neg", 100)
    fresh = OrderSigner(KEY, CONTRACTS)  # another instance: nothing cached but the key

    assert fresh.order_id(signed.order, neg_risk=True, protocol="v1") == signed.order_id
    assert fresh.order_id(signed.order, neg_risk=False, protocol="v1") != signed.order_id
    assert fresh.address == ADDRESS


# --- the amount check ----------------------------------------------------------------------------------


def test_check_signed_amounts_refuses_a_wrong_amount_side_or_token():
    p = place(Side.BUY, 5000, 29 * CENT)
    signed = ours(p, "v1", 100).order

    with pytest.raises(AmountMismatch, match=r"^m-1: maker/taker 140000/280000 != ours 145000/290000"):
        check_signed_amounts(dataclasses.replace(signed, maker_amount=140_000, taker_amount=280_000), p)
    with pytest.raises(AmountMismatch, match="side BUY != ours SELL"):
        check_signed_amounts(signed, place(Side.SELL, 5000, 29 * CENT))
    with pytest.raises(AmountMismatch, match="token"):
        check_signed_amounts(signed, p, "999")
    with pytest.raises(AmountMismatch, match="unreadable"):
        check_signed_amounts(object(), p)


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "tick", "match"),
    [
        (place(Side.BUY, 4550, 100 * CENT), 100, "not on tick"),
        (place(Side.BUY, 0, 100 * CENT), 100, "not on tick"),
        (place(Side.SELL, PX_ONE, 100 * CENT), 100, "not on tick"),
        (place(Side.BUY, 9950, 100 * CENT), 100, "not on tick"),
        (place(Side.BUY, 5000, 0), 100, "not positive"),
        (place(Side.BUY, 5000, 7_575_758), 100, r"not a whole number of 0\.01 shares"),
        (place(Side.SELL, 5000, CENT - 1), 100, r"not a whole number of 0\.01 shares"),
        (place(Side.SELL, 5000, 5 * QTY_ONE + 1), 100, r"not a whole number of 0\.01 shares"),
        (place(Side.BUY, 5000, 100 * CENT, tif="FOK"), 100, "not a resting order"),
        (place(Side.BUY, 5000, 100 * CENT, tif="GTD"), 100, "GTD order without expire_ns"),
        (place(Side.BUY, 5000, 100 * CENT), 7, "not a venue tick size"),
    ],
)
def test_orders_we_cannot_express_exactly_are_refused(p, tick, match):
    with pytest.raises(OrderRefused, match=match):
        validate_place(p, tick)
    with pytest.raises(OrderRefused, match=match):
        SIGNER.sign(p, TOKEN, tick, neg_risk=False, protocol="v1")


@given(cents=st.integers(0, 100_000), odd=st.integers(1, CENT - 1), side=st.sampled_from(Side))
def test_a_size_off_the_cent_grid_is_always_refused(cents, odd, side):
    # Fills may be any 1e-6 size; the orders we sign never are (the SDK would floor them silently,
    # down to a zero-amount order for 0.005 shares).
    with pytest.raises(OrderRefused, match=r"not a whole number of 0\.01 shares"):
        validate_place(place(side, 5000, cents * CENT + odd), 100)


@pytest.mark.parametrize("token", ["abc", "-1", str(2**256)])
def test_a_token_id_that_is_not_a_uint256_is_refused(token):
    with pytest.raises(OrderRefused, match="token id"):
        SIGNER.sign(place(Side.BUY, 5000, 5 * QTY_ONE), token, 100, neg_risk=False, protocol="v1")


def test_the_signer_never_prints_or_pickles_its_key():
    assert KEY.removeprefix("0x") not in repr(SIGNER) and ADDRESS in repr(SIGNER)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(SIGNER)


def test_bench_sign_orders_reports_sub_millisecond_signing():
    result = bench_sign_orders(30)

    assert result["n"] == 30
    # ~80 us here; a loose bound so a busy CI machine does not flake.
    assert 0 < result["median_us"] < 5_000
    assert result["min_us"] <= result["median_us"] <= result["p90_us"]
