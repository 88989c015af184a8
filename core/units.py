"""Integer units for prices, sizes and money, and exact conversion from venue strings.

Pure: no I/O, clock or randomness. Every venue-expressible value is an exact integer:

* ``Px``: price in 1e-4 USDC per share, 0..10_000 (the finest Polymarket tick is 0.0001).
* ``Qty``: size in 0.01 shares (Polymarket sizes carry 2 decimals at every tick).
* ``Usdc6``: money in micro-USDC (pUSD has 6 decimals); ``px * qty`` is exactly Usdc6.

The tick is a ``Px`` (100 for 0.01, 10 for 0.001) and may change at run time; bids round down to it,
asks round up.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

Px = int
Qty = int
Usdc6 = int

PX_DECIMALS: Final = 4
QTY_DECIMALS: Final = 2
USDC6_DECIMALS: Final = 6
PX_ONE: Final = 10_000  # price 1.0
QTY_ONE: Final = 100  # one share
USDC6_ONE: Final = 1_000_000  # one USDC
#: Value of one Qty unit (0.01 share) settling at 1.0, in Usdc6: PX_ONE * 1.
SETTLE_PER_QTY_USDC6: Final = PX_ONE
NS_PER_S: Final = 1_000_000_000
NS_PER_MS: Final = 1_000_000


class Side(IntEnum):
    """Order side; the sign makes position arithmetic branch-free (``pos += side * qty``)."""

    BUY = 1
    SELL = -1


class Outcome(IntEnum):
    """Which token of a binary market."""

    YES = 0
    NO = 1


class UnitError(ValueError):
    """A value that does not fit its integer unit exactly."""


_DIGITS = frozenset("0123456789")
_MAX_EXP = 100


def decimal_to_int(text: str, decimals: int) -> int:
    """Convert a decimal string to an integer count of ``10**-decimals`` units, exactly.

    Args:
        text: A plain decimal such as ``"0.47"``, ``"192.3"``, ``".5"`` or ``"1e-3"``.
        decimals: Number of decimal places of the target unit.

    Returns:
        The exact integer; raises ``UnitError`` if the value has more precision than the unit.
    """
    s = text.strip()
    if not s:
        raise UnitError("empty number")
    if "e" in s or "E" in s:
        return _scientific_to_int(s, decimals)
    negative = s[0] == "-"
    if s[0] in "+-":
        s = s[1:]
    whole, dot, frac = s.partition(".")
    if (not whole and not frac) or not set(whole) <= _DIGITS or not set(frac) <= _DIGITS:
        raise UnitError(f"not a decimal number: {text!r}")
    if dot and not frac and not whole:
        raise UnitError(f"not a decimal number: {text!r}")
    extra = frac[decimals:]
    if extra.strip("0"):
        raise UnitError(f"{text!r} has more than {decimals} decimals")
    frac = frac[:decimals].ljust(decimals, "0")
    value: int = int(whole or "0") * int(10**decimals) + int(frac or "0")
    return -value if negative else value


def _scientific_to_int(s: str, decimals: int) -> int:
    mantissa, _, exp_text = s.lower().partition("e")
    try:
        exp = int(exp_text)
    except ValueError as exc:
        raise UnitError(f"not a decimal number: {s!r}") from exc
    if not -_MAX_EXP <= exp <= _MAX_EXP:
        raise UnitError(f"exponent out of range: {s!r}")  # no price or size needs it; int() would choke
    # Shifting the decimal point of the mantissa is exact: no float is involved.
    return _shift(mantissa, decimals, exp)


def _shift(mantissa: str, decimals: int, exp: int) -> int:
    # value = mantissa * 10**exp; in units of 10**-decimals that is mantissa in 10**-(decimals+exp) units.
    target = decimals + exp
    if target >= 0:
        return decimal_to_int(mantissa, target)
    scaled = decimal_to_int(mantissa, 0)
    factor: int = int(10**-target)
    if scaled % factor:
        raise UnitError(f"{mantissa}e{exp} has more than {decimals} decimals")
    return scaled // factor


def int_to_decimal(value: int, decimals: int) -> str:
    """Format an integer count of ``10**-decimals`` units as the shortest exact decimal string."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


def parse_px(text: str) -> Px:
    """Parse a venue price string (``"0.47"``) into Px; it must lie in [0, 1]."""
    px = decimal_to_int(text, PX_DECIMALS)
    if not 0 <= px <= PX_ONE:
        raise UnitError(f"price {text!r} outside [0, 1]")
    return px


def parse_qty(text: str) -> Qty:
    """Parse a venue size string (``"192.3"``) into Qty; it must be >= 0."""
    qty = decimal_to_int(text, QTY_DECIMALS)
    if qty < 0:
        raise UnitError(f"negative size {text!r}")
    return qty


def parse_usdc6(text: str) -> Usdc6:
    """Parse a USDC amount string into micro-USDC."""
    return decimal_to_int(text, USDC6_DECIMALS)


def format_px(px: Px) -> str:
    """Format Px as a venue price string (``4700 -> "0.47"``)."""
    return int_to_decimal(px, PX_DECIMALS)


def format_qty(qty: Qty) -> str:
    """Format Qty as a venue size string (``19230 -> "192.3"``)."""
    return int_to_decimal(qty, QTY_DECIMALS)


def format_usdc6(amount: Usdc6) -> str:
    """Format micro-USDC as a decimal string."""
    return int_to_decimal(amount, USDC6_DECIMALS)


def floor_to_tick(px: Px, tick_px: Px) -> Px:
    """Round a price down to the tick grid (used for bids)."""
    return px - px % tick_px


def ceil_to_tick(px: Px, tick_px: Px) -> Px:
    """Round a price up to the tick grid (used for asks)."""
    return -((-px) // tick_px) * tick_px


def complement_px(px: Px) -> Px:
    """Price of the other token of a binary market: a NO at ``1 - p`` mirrors a YES at ``p``."""
    return PX_ONE - px


def notional_usdc6(px: Px, qty: Qty) -> Usdc6:
    """Cost of ``qty`` at ``px``; exact because 1e-4 * 1e-2 = 1e-6."""
    return px * qty


def taker_fee_usdc6(px: Px, qty: Qty, rate_ppm: int) -> Usdc6:
    """Polymarket taker fee ``shares * rate * p * (1 - p)``, floored to 1e-5 USDC.

    Args:
        px: Execution price in Px.
        qty: Shares traded in Qty.
        rate_ppm: Fee rate in millionths (0.04 -> 40_000).

    Returns:
        The fee in Usdc6, a multiple of 10 (the venue floors to 5 decimals).
    """
    # shares*rate*p*(1-p) in USDC = qty/1e2 * rate_ppm/1e6 * px/1e4 * (1e4-px)/1e4
    # in 1e-5 units: qty*rate_ppm*px*(1e4-px) / 1e2/1e6/1e8 * 1e5 = / 1e11
    units_1e5 = (qty * rate_ppm * px * (PX_ONE - px)) // 10**11
    return units_1e5 * 10
