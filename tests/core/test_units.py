import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.units import (
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_ONE,
    TICKS_PX,
    USDC10_PER_USDC6,
    Side,
    UnitError,
    ceil_to_tick,
    complement_notional_usdc6,
    complement_px,
    decimal_to_int,
    floor_to_tick,
    format_px,
    format_qty,
    int_to_decimal,
    maker_rebate_usdc6,
    notional_usdc6,
    opposite,
    parse_px,
    parse_qty,
    parse_tick,
    taker_fee_usdc6,
)


def test_opposite_is_the_other_side():
    assert [opposite(s) for s in Side] == [Side(-s) for s in Side] == [Side.SELL, Side.BUY]


@given(st.integers(0, PX_ONE))
def test_px_format_parse_round_trip(px):
    assert parse_px(format_px(px)) == px


@given(st.integers(0, 10**12))
def test_qty_format_parse_round_trip(qty):
    assert parse_qty(format_qty(qty)) == qty


@given(st.integers(-(10**15), 10**15), st.integers(0, 8))
def test_decimal_round_trip_any_scale(value, decimals):
    assert decimal_to_int(int_to_decimal(value, decimals), decimals) == value


@given(st.integers(0, 10**9), st.integers(0, 6), st.integers(-6, 6))
def test_scientific_notation_is_exact_or_refused(mantissa, decimals, exp):
    text = f"{mantissa}e{exp}"
    exact = mantissa * 10 ** (decimals + exp) if decimals + exp >= 0 else None
    if exact is not None:
        assert decimal_to_int(text, decimals) == exact
    elif mantissa % 10 ** -(decimals + exp) == 0:
        assert decimal_to_int(text, decimals) == mantissa // 10 ** -(decimals + exp)
    else:
        with pytest.raises(UnitError):
            decimal_to_int(text, decimals)


@pytest.mark.parametrize(
    ("text", "expected"), [("0.47", 4700), (".5", 5000), ("1", 10_000), ("0", 0), ("0.0001", 1), ("1e-3", 10)]
)
def test_parse_px_venue_strings_exact(text, expected):
    assert parse_px(text) == expected


@pytest.mark.parametrize("text", ["0.00001", "1.5", "-0.1", "abc", "", "0.4.7", "."])
def test_parse_px_bad_values_raise_never_round(text):
    with pytest.raises(UnitError):
        parse_px(text)


def test_parse_qty_six_decimals_exact_seven_refused():
    assert parse_qty("7.575758") == 7_575_758  # a real maker fill of a $5 market BUY at 0.66
    assert parse_qty("192.3") == 192_300_000
    with pytest.raises(UnitError, match="more than 6 decimals"):
        parse_qty("7.5757581")


@pytest.mark.parametrize(
    ("text", "tick"),
    [("0.1", 1000), ("0.01", 100), ("0.005", 50), ("0.0025", 25), ("0.001", 10), ("0.0001", 1)],
)
def test_parse_tick_accepts_every_venue_tick(text, tick):
    assert parse_tick(text) == tick
    assert tick in TICKS_PX


@pytest.mark.parametrize("text", ["0.0003", "0.02", "0", "1", "0.00001"])
def test_parse_tick_refuses_ticks_the_venue_does_not_use(text):
    with pytest.raises(UnitError):
        parse_tick(text)


ONCHAIN = json.loads(
    (
        Path(__file__).parents[1] / "fixtures/polymarket/onchain/order_filled_taker_fees_2026-09.json"
    ).read_text()
)


@pytest.mark.parametrize("fill", ONCHAIN, ids=range(len(ONCHAIN)))
def test_fee_and_cash_match_every_real_onchain_fill_to_the_last_unit(fill):
    # Each row is a taker leg of a CTF Exchange V2 OrderFilled event: amounts are 6-decimal mantissas.
    buy = fill["side"] == "BUY"
    shares = int(fill["taker_amount_filled"] if buy else fill["maker_amount_filled"])
    usdc = int(fill["maker_amount_filled"] if buy else fill["taker_amount_filled"])
    px = parse_px(fill["price"])
    rate_ppm = decimal_to_int(fill["fee_rate"], 6)

    assert taker_fee_usdc6(px, shares, rate_ppm) == int(fill["fee"])
    assert notional_usdc6(px, shares) == usdc  # floor(shares * price): the venue's own rounding


def test_onchain_fixture_has_six_decimal_fills():
    shares = [int(f["taker_amount_filled" if f["side"] == "BUY" else "maker_amount_filled"]) for f in ONCHAIN]
    assert len(shares) == 21
    assert sum(1 for q in shares if q % 10) == 8  # the fee test above covers fills with all 6 decimals
    assert sum(1 for q in shares if q % ORDER_QTY_STEP) == 9  # finer than any order size we place


@given(st.integers(0, PX_ONE), st.integers(0, 10**12))
def test_notional_floors_and_complement_legs_sum_to_one_per_share(px, qty):
    cash = notional_usdc6(px, qty)
    assert cash * USDC10_PER_USDC6 <= px * qty < (cash + 1) * USDC10_PER_USDC6
    assert cash + complement_notional_usdc6(px, qty) == qty  # a YES and a NO share make one USDC
    if qty % ORDER_QTY_STEP == 0:
        assert cash * USDC10_PER_USDC6 == px * qty  # every order size we place is exact


@given(st.integers(0, PX_ONE), st.sampled_from([1, 10, 25, 50, 100, 1000]))
def test_tick_rounding_bids_down_asks_up(px, tick):
    lo, hi = floor_to_tick(px, tick), ceil_to_tick(px, tick)
    assert lo % tick == 0 and hi % tick == 0
    assert lo <= px <= hi
    assert hi - lo in (0, tick)
    assert (lo == hi) == (px % tick == 0)


@given(st.integers(0, PX_ONE))
def test_complement_is_an_involution(px):
    assert complement_px(complement_px(px)) == px


def test_taker_fee_matches_polymarket_formula():
    # 100 shares at 0.50 with rate 0.04: 100 * 0.04 * 0.5 * 0.5 = 1.00 USDC
    assert taker_fee_usdc6(5000, 100 * QTY_ONE, 40_000) == 1_000_000
    # 1.23 shares at 0.37 with rate 0.07: 0.02006991 floored to 5 decimals = 0.02006
    assert taker_fee_usdc6(3700, 1_230_000, 70_000) == 20_060


@given(st.integers(0, PX_ONE), st.integers(0, 10**12), st.integers(0, 200_000))
def test_taker_fee_is_floored_to_five_decimals_and_bounded(px, qty, rate):
    fee = taker_fee_usdc6(px, qty, rate)
    assert fee % 10 == 0
    exact_1e20 = qty * rate * px * (PX_ONE - px)  # the fee in 1e-20 USDC
    assert fee * 10**14 <= exact_1e20 < fee * 10**14 + 10**15


@given(st.integers(0, PX_ONE), st.integers(0, 10**12), st.integers(0, 200_000), st.integers(0, 1_000_000))
def test_maker_rebate_is_the_rebate_share_of_the_fee_equivalent(px, qty, rate, rebate):
    credit = maker_rebate_usdc6(px, qty, rate, rebate)
    exact_1e20 = qty * rate * px * (PX_ONE - px) * rebate  # the rebate in 1e-26 USDC = 1e-20 Usdc6
    assert credit * 10**20 <= exact_1e20 < (credit + 1) * 10**20
    assert credit <= taker_fee_usdc6(px, qty, rate) + 10  # never more than the fee it stands for


def test_maker_rebate_example():
    # 100 shares at 0.50, fee rate 0.04 (fee-equivalent 1.00 USDC), 25% rebate: 0.25 USDC.
    assert maker_rebate_usdc6(5_000, 100 * QTY_ONE, 40_000, 250_000) == 250_000


@given(st.text(alphabet="0123456789.eE+-", max_size=12))
@example("0E5000")
@example("1e-5000")
def test_decimal_to_int_raises_only_unit_error(text):
    # Venue payloads are parsed with this: anything it cannot use must be a UnitError, never a crash.
    with contextlib.suppress(UnitError):
        decimal_to_int(text, 2)
