import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.units import (
    PX_ONE,
    UnitError,
    ceil_to_tick,
    complement_px,
    decimal_to_int,
    floor_to_tick,
    format_px,
    format_qty,
    int_to_decimal,
    parse_px,
    parse_qty,
    taker_fee_usdc6,
)


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


def test_parse_qty_more_than_two_decimals_raises():
    with pytest.raises(UnitError, match="more than 2 decimals"):
        parse_qty("192.305")


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
    assert taker_fee_usdc6(5000, 10_000, 40_000) == 1_000_000
    # 1.23 shares at 0.37 with rate 0.07: 0.02006991 floored to 5 decimals = 0.02006
    assert taker_fee_usdc6(3700, 123, 70_000) == 20_060


@given(st.integers(0, PX_ONE), st.integers(0, 10**8), st.integers(0, 200_000))
def test_taker_fee_is_floored_to_five_decimals_and_bounded(px, qty, rate):
    fee = taker_fee_usdc6(px, qty, rate)
    assert fee % 10 == 0
    exact_1e11 = qty * rate * px * (PX_ONE - px)  # the fee in 1e-16 USDC
    assert fee * 10**10 <= exact_1e11 < fee * 10**10 + 10**11


@given(st.text(alphabet="0123456789.eE+-", max_size=12))
@example("0E5000")
@example("1e-5000")
def test_decimal_to_int_raises_only_unit_error(text):
    # Venue payloads are parsed with this: anything it cannot use must be a UnitError, never a crash.
    with contextlib.suppress(UnitError):
        decimal_to_int(text, 2)
