"""Our integer orders through the REAL py_clob_client_v2 order builder: exact amounts or a refusal."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_account import Account
from hypothesis import example, given, settings
from hypothesis import strategies as st
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.http_helpers import helpers as clob_http
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderV2
from py_clob_client_v2.signer import Signer

from adapters.polymarket.errors import AmountMismatch, OrderRefused
from adapters.polymarket.orders import (
    TICK_SIZES,
    bench_sign_orders,
    check_signed_amounts,
    expected_amounts,
    order_id_of,
    sign_place,
    to_order_args,
)
from core.messages import Place
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, Outcome, Side

KEY = Account.create().key.hex()  # a throwaway test key: signing is offline
BUILDER = OrderBuilder(Signer(KEY, 137))
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
CENT = ORDER_QTY_STEP  # 0.01 share: every order we place is a whole number of these


def place(side: Side, px: int, qty: int, **kw: Any) -> Place:
    return Place(market="m", client_id="m-1", outcome=Outcome.YES, side=side, px=px, qty=qty, **kw)


@st.composite
def orders(draw: st.DrawFn) -> tuple[Place, int]:
    tick = draw(st.sampled_from(sorted(TICK_SIZES)))
    px = draw(st.integers(1, PX_ONE // tick - 1)) * tick
    qty = draw(st.integers(1, 100_000)) * CENT  # 0.01 .. 1000.00 shares
    side = draw(st.sampled_from(Side))
    return place(side, px, qty), tick


# --- exact amounts ---------------------------------------------------------------------------------


def test_expected_amounts_spec_examples():
    # clob-emulator-spec §3: BUY 10 @ 0.45 and SELL 10.56 @ 0.333.
    assert expected_amounts(Side.BUY, 4500, 10 * QTY_ONE) == (4_500_000, 10_000_000)
    assert expected_amounts(Side.SELL, 3330, 1056 * CENT) == (10_560_000, 3_516_480)


def test_client_float_rounding_loses_a_cent_without_our_conversion():
    # Polymarket/py-clob-client#142, reproduced with the installed client's own amount function.
    rc = ROUNDING_CONFIG["0.01"]

    _, _, naive_taker = BUILDER.get_order_amounts("BUY", 0.29, 0.50, rc)
    args, _ = to_order_args(place(Side.BUY, 5000, 29 * CENT), 100, False, TOKEN)
    _, maker, taker = BUILDER.get_order_amounts("BUY", args.size, args.price, rc)

    assert naive_taker == 280_000  # 0.28 shares: a silently wrong order
    assert (maker, taker) == expected_amounts(Side.BUY, 5000, 29 * CENT) == (145_000, 290_000)


@given(orders())
@settings(max_examples=3_000)
@example((place(Side.BUY, 5000, 29 * CENT), 100))
@example((place(Side.SELL, 3330, 1056 * CENT), 10))
@example((place(Side.BUY, 1, 100_000 * CENT), 1))
@example((place(Side.SELL, 9000, 1 * CENT), 1000))
def test_to_order_args_amounts_are_exact_in_the_client_math(order):
    # The client's amount computation (no signing, so many examples): our floats must land exactly.
    p, tick = order
    args, options = to_order_args(p, tick, False, TOKEN)

    _, maker, taker = BUILDER.get_order_amounts(
        args.side, args.size, args.price, ROUNDING_CONFIG[options.tick_size]
    )

    assert (maker, taker) == expected_amounts(p.side, p.px, p.qty)


@given(orders(), st.booleans())
@settings(max_examples=150, deadline=None)
@example((place(Side.BUY, 5000, 29 * CENT), 100), False)
@example((place(Side.SELL, 9990, 99_999 * CENT), 10), True)
def test_signed_orders_through_the_real_builder_are_exact_or_refused(order, neg_risk):
    p, tick = order

    try:
        signed = sign_place(BUILDER, p, TOKEN, tick, neg_risk)
    except AmountMismatch:
        return  # refused: never sent

    assert (int(signed.makerAmount), int(signed.takerAmount)) == expected_amounts(p.side, p.px, p.qty)
    assert signed.tokenId == TOKEN
    assert int(signed.side) == (0 if p.side is Side.BUY else 1)


class SkewedBuilder:
    """The real builder, but it signs one micro-unit less (a stand-in for any client rounding bug)."""

    def build_order(self, order_args, options, version=2, fee_rate_bps=None):
        signed = BUILDER.build_order(order_args, options, version, fee_rate_bps)
        return dataclasses.replace(signed, takerAmount=str(int(signed.takerAmount) - 1))


@given(orders())
@settings(max_examples=25, deadline=None)
def test_a_builder_that_rounds_wrong_is_always_refused(order):
    p, tick = order

    with pytest.raises(AmountMismatch, match=r"maker/taker .* != ours"):
        sign_place(SkewedBuilder(), p, TOKEN, tick, False)


def test_check_signed_amounts_refuses_the_naive_142_order():
    args, options = to_order_args(place(Side.BUY, 5000, 29 * CENT), 100, False, TOKEN)
    naive = BUILDER.build_order(dataclasses.replace(args, size=0.29), options)

    with pytest.raises(AmountMismatch, match=r"^m-1: maker/taker 140000/280000 != ours 145000/290000"):
        check_signed_amounts(naive, place(Side.BUY, 5000, 29 * CENT))


def test_check_signed_amounts_refuses_a_wrong_side_or_token():
    signed = sign_place(BUILDER, place(Side.BUY, 5000, 100 * CENT), TOKEN, 100, False)

    with pytest.raises(AmountMismatch, match="side BUY != ours SELL"):
        check_signed_amounts(signed, place(Side.SELL, 5000, 100 * CENT))
    with pytest.raises(AmountMismatch, match="token"):
        check_signed_amounts(signed, place(Side.BUY, 5000, 100 * CENT), "999")


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
def test_to_order_args_refuses_what_it_cannot_express(p, tick, match):
    with pytest.raises(OrderRefused, match=match):
        to_order_args(p, tick, False, TOKEN)


@given(cents=st.integers(0, 100_000), odd=st.integers(1, CENT - 1), side=st.sampled_from(Side))
def test_a_size_off_the_cent_grid_is_always_refused(cents, odd, side):
    # Fills may be any 1e-6 size; the orders we sign never are (the client would round them down).
    with pytest.raises(OrderRefused, match=r"not a whole number of 0\.01 shares"):
        to_order_args(place(side, 5000, cents * CENT + odd), 100, False, TOKEN)


def test_to_order_args_gtd_expiration_in_seconds_and_options():
    args, options = to_order_args(
        place(Side.SELL, 500, 100 * CENT, tif="GTD", expire_ns=1_800_000_000_900_000_000), 10, True, TOKEN
    )

    assert args.expiration == 1_800_000_000
    assert args.side == "SELL"
    assert (options.tick_size, options.neg_risk) == ("0.001", True)


# --- venue ids and the no-network guarantee -----------------------------------------------------------


@pytest.mark.parametrize("neg_risk", [False, True])
def test_order_id_of_is_the_sdk_order_hash(neg_risk):
    signed = sign_place(BUILDER, place(Side.BUY, 4500, 1000 * CENT), TOKEN, 100, neg_risk)
    cfg = get_contract_config(137)
    exchange = ExchangeOrderBuilderV2(
        cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2, 137, BUILDER.signer
    )
    fields = dataclasses.asdict(signed)
    fields.pop("signature")

    sdk_hash = exchange.build_order_hash(exchange.build_order_typed_data(OrderV2(**fields)))

    assert order_id_of(signed, neg_risk) == sdk_hash
    assert len(sdk_hash) == 66


def test_signing_with_a_real_client_makes_no_http_request():
    requests: list[str] = []

    def spy(request):
        requests.append(str(request.url))

    client = ClobClient("http://127.0.0.1:9", chain_id=137, key=KEY)
    clob_http._http_client.event_hooks["request"].append(spy)
    try:
        for tick in TICK_SIZES:
            sign_place(
                client.builder,
                place(Side.BUY, 10 * tick if tick < 1000 else 1000, 5 * QTY_ONE),
                TOKEN,
                tick,
                True,
            )
    finally:
        clob_http._http_client.event_hooks["request"].remove(spy)

    assert requests == []


def test_bench_sign_orders_reports_coincurve_and_sub_millisecond_signing():
    result = bench_sign_orders(30)

    assert result["n"] == 30
    assert result["backend"] == "CoinCurveECCBackend"
    # ~350 µs here; a loose bound so a busy CI machine does not flake.
    assert 0 < result["median_us"] < 5_000
    assert result["min_us"] <= result["median_us"] <= result["p90_us"]
