"""Integer units for prices, sizes and money, and exact conversion from venue strings.

Pure: no I/O, clock or randomness. Every venue-expressible value is an exact integer:

* ``Px``: price in 1e-4 USDC per share, 0..10_000 (the finest Polymarket tick is 0.0001).
* ``Qty``: size in 1e-6 shares, the conditional token's own base unit (the on-chain unit of an
  order's ``makerAmount``/``takerAmount``). Fills come in any 6-decimal size (a market BUY of $5 at
  0.66 fills 7.575758 shares); the orders *we* place are whole multiples of ``ORDER_QTY_STEP``
  (0.01 share, the venue's order-size precision at every tick).
* ``Usdc6``: money in micro-USDC (pUSD has 6 decimals). One ``Qty`` settling at 1.0 pays exactly
  one ``Usdc6``.
* ``Usdc10``: ``px * qty``, exact, in 1e-10 USDC. Exposure and caps are compared in it, so no
  rounding enters a risk check.

**Price x size, once.** ``px * qty`` is exact in ``Usdc10``; cash moves in ``Usdc6``, so a fill's
cash is ``notional_usdc6(px, qty) = floor(px * qty / 10_000)``. This is how the venue's exchange
contract computes a fill's counter amount: ``taking = making * takerAmount / makerAmount`` in
integer arithmetic, which for ``q`` shares at ``p`` is ``floor(q * p)`` micro-USDC (checked on the
real on-chain fills in ``tests/fixtures/polymarket/onchain``: the makers of a $5 market BUY at 0.66
sell 7.575758 shares and receive floor(5.00000028) = 5 USDC). For any order we place the product
is exact anyway (0.01-share sizes times a 1e-4 price is a whole micro-USDC); only odd fill sizes
round, by less than one micro-USDC, in the venue's favour. The other leg of a mint or merge gets
the remainder (``qty - notional_usdc6(px, qty)``), so a YES and a NO share still add up to exactly
one USDC.

The tick is a ``Px`` (100 for 0.01, 25 for 0.0025) and may change at run time; bids round down to
it, asks round up. ``TICKS_PX`` lists every tick the venue uses.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Final

Px = int
Qty = int
Usdc6 = int
Usdc10 = int

PX_DECIMALS: Final = 4
QTY_DECIMALS: Final = 6
USDC6_DECIMALS: Final = 6
PX_ONE: Final = 10_000  # price 1.0
QTY_ONE: Final = 1_000_000  # one share
USDC6_ONE: Final = 1_000_000  # one USDC
#: One Qty unit (1e-6 share) settling at 1.0 pays this many Usdc6.
SETTLE_PER_QTY_USDC6: Final = 1
#: ``px * qty`` (Usdc10) per Usdc6.
USDC10_PER_USDC6: Final = PX_ONE
#: Orders we place are sized in whole 0.01 shares: the venue's order-size precision at every tick
#: (py-clob-client ``ROUNDING_CONFIG`` ``size=2``), which also makes every order's amounts exact.
ORDER_QTY_STEP: Final = 10_000
#: Every tick the venue uses (0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001), in Px, coarsest first.
TICKS_PX: Final = (1000, 100, 50, 25, 10, 1)
NS_PER_S: Final = 1_000_000_000
NS_PER_MS: Final = 1_000_000
#: A time no event reaches (ns): the sentinel of every "nothing due". The largest int mypyc keeps
#: unboxed (a short int is 63 bits, tagged: ``1 << 62`` is not one), so the compiled build compares
#: times against it in machine ints.
NEVER_NS: Final = (1 << 62) - 1


class Side(IntEnum):
    """Order side; the sign makes position arithmetic branch-free (``pos += side * qty``)."""

    BUY = 1
    SELL = -1


_OPPOSITE: Final = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}


def opposite(side: Side) -> Side:
    """The other side: a table lookup (``Side(-side)`` goes through the enum's lookup, ~1 us, and so
    does each ``Side.BUY`` read in pure Python, ~50 ns), on the feed's and the venue's hot paths."""
    return _OPPOSITE[side]


class Outcome(IntEnum):
    """Which token of a binary market."""

    YES = 0
    NO = 1


#: The longest decimal text ``decimal_to_int`` reads (a venue number is a few dozen characters).
_MAX_NUMBER_CHARS: Final = 100


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
    if len(s) > _MAX_NUMBER_CHARS:
        # No price, size or amount is this long; int() of thousands of digits is slow, then refused.
        raise UnitError(f"not a number of at most {_MAX_NUMBER_CHARS} characters: {s[:20]!r}… ({len(s)})")
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
    """Parse a venue size string (``"7.575758"``) into Qty (1e-6 shares); it must be >= 0."""
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
    """Format Qty as a venue size string (``192_300_000 -> "192.3"``)."""
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


def parse_tick(text: str) -> Px:
    """Parse a venue tick size (``"0.0025"``) into Px; a tick the venue does not use is refused."""
    tick = decimal_to_int(text, PX_DECIMALS)
    if tick not in TICKS_PX:
        raise UnitError(
            f"tick size {text!r} is not one the venue uses (0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001)"
        )
    return tick


def notional_usdc10(px: Px, qty: Qty) -> Usdc10:
    """``qty`` at ``px`` exactly, in 1e-10 USDC (what exposure checks compare)."""
    return px * qty


def notional_usdc6(px: Px, qty: Qty) -> Usdc6:
    """Cash for ``qty`` shares at ``px``: ``floor(px * qty / 10_000)`` micro-USDC (see the module doc).

    Exact for every order size on the 0.01-share grid; an odd fill size rounds down by less than one
    micro-USDC, as the venue's exchange contract does.
    """
    return px * qty // USDC10_PER_USDC6


def complement_notional_usdc6(px: Px, qty: Qty) -> Usdc6:
    """Cash of the other leg of a mint or merge: the two legs of ``qty`` pairs add up to ``qty`` Usdc6."""
    return qty * SETTLE_PER_QTY_USDC6 - notional_usdc6(px, qty)


def usdc10_to_usdc6_ceil(amount_usdc10: Usdc10) -> Usdc6:
    """A loss in Usdc10 reported in Usdc6, rounded up (never understate a risk)."""
    return -((-amount_usdc10) // USDC10_PER_USDC6)


def taker_fee_usdc6(px: Px, qty: Qty, rate_ppm: int) -> Usdc6:
    """Polymarket taker fee ``shares * rate * p * (1 - p)``, floored to 1e-5 USDC.

    Computed from the exact shares (1e-6 units), as the venue does: it matches all 21 real on-chain
    fills in ``tests/fixtures/polymarket/onchain`` to the last unit.

    Args:
        px: Execution price in Px.
        qty: Shares traded in Qty (1e-6 shares).
        rate_ppm: Fee rate in millionths (0.04 -> 40_000).

    Returns:
        The fee in Usdc6, a multiple of 10 (the venue floors to 5 decimals).
    """
    # shares*rate*p*(1-p) in USDC = qty/1e6 * rate_ppm/1e6 * px/1e4 * (1e4-px)/1e4
    # in 1e-5 units: qty*rate_ppm*px*(1e4-px) / 1e20 * 1e5 = / 1e15
    units_1e5 = (qty * rate_ppm * px * (PX_ONE - px)) // 10**15
    return units_1e5 * 10


def maker_rebate_usdc6(px: Px, qty: Qty, rate_ppm: int, rebate_ppm: int) -> Usdc6:
    """Upper bound of the maker rebate a fill earns: ``rebateRate`` of the fee it would have paid.

    The venue pays a market's makers ``rebateRate`` of its taker fees daily, pro rata to each maker's
    fee-equivalent ``shares * rate * p * (1 - p)``; this is that fee-equivalent times the rate, floored
    to 1e-6 USDC. It is an upper bound because the pool is shared and paid only above $1
    (``docs/simulation.md``).
    """
    # qty/1e6 * rate_ppm/1e6 * px/1e4 * (1e4-px)/1e4 * rebate_ppm/1e6 USDC, in 1e-6 USDC: / 1e20
    return qty * rate_ppm * px * (PX_ONE - px) * rebate_ppm // 10**20


# --- what the integers mean, for every JSON a person reads ------------------------------------------


def _scale(decimals: int) -> str:
    # 10**-decimals as an exact decimal string ("0.0001"), never a float.
    return "0." + "0" * (decimals - 1) + "1" if decimals > 0 else "1"


#: The integer units of polymm's JSON outputs: ``value * scale`` is the amount in ``unit``; a field
#: named like one of ``applies_to`` (``*`` matches any prefix) is in that unit.
UNITS: Final[dict[str, dict[str, Any]]] = {
    "px": {"scale": _scale(PX_DECIMALS), "unit": "USDC per share", "applies_to": ["px", "*_px"]},
    "qty": {"scale": _scale(QTY_DECIMALS), "unit": "share", "applies_to": ["qty", "*_qty"]},
    "usdc6": {"scale": _scale(USDC6_DECIMALS), "unit": "USDC", "applies_to": ["*_usdc6"]},
    "ns": {
        "scale": _scale(9),
        "unit": "second (ts_ns: since the Unix epoch; expire_ns 0: none)",
        "applies_to": ["ts_ns", "*_ns"],
    },
    "permille": {"scale": "0.001", "unit": "fraction", "applies_to": ["*_permille"]},
    "pct": {"scale": "0.01", "unit": "fraction", "applies_to": ["*_pct"]},
}
#: Lists of ``[px, qty]`` pairs (a ``book``'s levels).
PAIRS: Final[dict[str, list[str]]] = {"bids": ["px", "qty"], "asks": ["px", "qty"]}
#: Coded fields: ``side``, ``aggressor`` (a trade's taker side) and ``outcome`` values.
CODES: Final[dict[str, dict[str, str]]] = {
    "side": {str(s.value): s.name for s in Side},
    "aggressor": {str(s.value): s.name for s in Side},
    "outcome": {str(o.value): o.name for o in Outcome},
}


def units_header(mode: str) -> dict[str, Any]:
    """The ``units`` description every output carries (the first record of an event log, for ``mode``)."""
    return {"mode": mode, "units": UNITS, "pairs": PAIRS, "codes": CODES}
