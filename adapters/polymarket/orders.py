"""Our integer orders → the client's float order arguments, and the signed-amount cross-check.

``to_order_args`` is the ONE place where an integer price or size becomes a float (style rule 16).
The client (``py_clob_client_v2``) rounds with floats: ``round_down(size, 2)`` is
``floor(size * 100) / 100``, so ``0.29`` shares become ``0.28`` (Polymarket/py-clob-client#142,
still open; about 4.6 % of sizes lose a cent). Our orders are sized on the client's 0.01-share grid
(``ORDER_QTY_STEP``; a size off it is refused), and two defences keep the signed size exact:

1. We hand the client the *midpoint* of the target cent, ``(qty + ORDER_QTY_STEP / 2) / QTY_ONE``:
   its floor lands on ``qty`` whatever the binary representation error (it is ~1e-9 here, the margin
   is 0.5 cent).
2. After signing, ``check_signed_amounts`` compares the signed ``makerAmount``/``takerAmount`` with
   ``expected_amounts`` (exact integers: a 0.01-share size at a 1e-4 price is a whole micro-USDC)
   and raises ``AmountMismatch``; the gateway then rejects the order instead of sending it.

Amounts are 6-decimal fixed point (spec §3), the token's base unit, so a share amount *is* our
``Qty``: a BUY gives USDC and takes shares, so ``makerAmount`` is ``notional_usdc6(px, qty)`` and
``takerAmount`` is ``qty``; a SELL is the other way round.

``sign_place`` signs with the client's own ``OrderBuilder`` (no network: tick size and neg-risk are
ours, per market, not the client's caches) and ``order_id_of`` computes the id the venue will give
the order (its EIP-712 digest) before it is sent.
"""

from __future__ import annotations

import statistics
import time
from functools import cache
from typing import Any, Final, Protocol

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_keys.backends import get_backend
from eth_utils.crypto import keccak
from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import (
    CTF_EXCHANGE_NAME_HASH,
    DOMAIN_TYPE_HASH,
    ORDER_TYPE_HASH,
)
from py_clob_client_v2.order_utils.model.order_data_v2 import SignedOrderV2
from py_clob_client_v2.order_utils.model.side import Side as ClobSide
from py_clob_client_v2.signer import Signer

from adapters.polymarket.errors import AmountMismatch, OrderRefused
from core.messages import Place
from core.units import (
    NS_PER_S,
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_ONE,
    TICKS_PX,
    Outcome,
    Px,
    Qty,
    Side,
    Usdc6,
    notional_usdc6,
)

__all__ = [
    "POLYGON",
    "TICK_SIZES",
    "OrderBuilderLike",
    "bench_sign_orders",
    "check_signed_amounts",
    "expected_amounts",
    "order_id_of",
    "sign_place",
    "tick_size_text",
    "to_order_args",
]

POLYGON: Final = 137
#: The client's tick literals (``TickSize``), by tick in Px. 0.005 and 0.0025 arrived in 2026-07.
TICK_SIZES: Final[dict[Px, str]] = {
    1000: "0.1",
    100: "0.01",
    50: "0.005",
    25: "0.0025",
    10: "0.001",
    1: "0.0001",
}
_VERSION: Final = 2  # CLOB V2 orders (domain version "2"); V1 orders are refused in production


class OrderBuilderLike(Protocol):
    """The part of ``py_clob_client_v2.order_builder.builder.OrderBuilder`` we use."""

    def build_order(
        self, order_args: Any, options: Any, version: int = 2, fee_rate_bps: int | None = None
    ) -> Any:
        """Create and sign a limit order."""
        ...


def tick_size_text(tick_px: Px) -> str:
    """The client's tick literal for a tick in Px (``100 -> "0.01"``); ``OrderRefused`` if it has none."""
    try:
        return TICK_SIZES[tick_px]
    except KeyError:
        raise OrderRefused(f"tick {tick_px} (1e-4 units) is not a venue tick size") from None


def expected_amounts(side: Side, px: Px, qty: Qty) -> tuple[int, int]:
    """``(makerAmount, takerAmount)`` of a limit order in 6-decimal units, exactly.

    BUY: the maker gives ``notional_usdc6(px, qty)`` micro-USDC and takes ``qty`` shares (the token's
    6-decimal amount is the Qty itself). SELL: the maker gives the shares and takes the USDC. Exact
    for every size on the ``ORDER_QTY_STEP`` grid (``to_order_args`` refuses any other).
    """
    usdc6: Usdc6 = notional_usdc6(px, qty)
    return (usdc6, qty) if side is Side.BUY else (qty, usdc6)


def to_order_args(
    place: Place, tick_px: Px, neg_risk: bool, token_id: str
) -> tuple[OrderArgsV2, CreateOrderOptions]:
    """The client's order arguments for ``place``: the one int → float conversion.

    Args:
        place: Our order (integer price, and a size on the ``ORDER_QTY_STEP`` grid).
        tick_px: The market's current tick in Px; the price must lie on it, within [tick, 1 - tick].
        neg_risk: Whether the market trades on the neg-risk exchange (a different signing domain).
        token_id: The token of ``place.outcome``.

    Returns:
        ``OrderArgsV2`` (floats) and ``CreateOrderOptions`` (tick literal and neg-risk flag).

    Raises:
        OrderRefused: The order cannot be expressed exactly (off the tick, a size that is not a
            positive whole number of 0.01 shares, or a TIF that does not rest).
    """
    tick = tick_size_text(tick_px)
    if place.px % tick_px or not tick_px <= place.px <= PX_ONE - tick_px:
        raise OrderRefused(f"price {place.px} is not on tick {tick_px} within [tick, 1 - tick]")
    if place.qty <= 0:
        raise OrderRefused(f"size {place.qty} is not positive")
    if place.qty % ORDER_QTY_STEP:
        raise OrderRefused(f"size {place.qty} (1e-6 shares) is not a whole number of 0.01 shares")
    if place.tif not in ("GTC", "GTD"):
        raise OrderRefused(f"time in force {place.tif} is not a resting order")
    expiration = 0
    if place.tif == "GTD":
        if place.expire_ns <= 0:
            raise OrderRefused("GTD order without expire_ns")
        expiration = place.expire_ns // NS_PER_S
    args = OrderArgsV2(
        token_id=token_id,
        # px is on a tick with at most 4 decimals, so round(price * 10**d) in the client is exact.
        price=place.px / PX_ONE,
        # The midpoint of the target cent: floor(size * 100) is qty however the float rounds (#142).
        size=(place.qty + ORDER_QTY_STEP // 2) / QTY_ONE,
        side="BUY" if place.side is Side.BUY else "SELL",
        expiration=expiration,
    )
    return args, CreateOrderOptions(tick_size=tick, neg_risk=neg_risk)


def check_signed_amounts(signed: Any, place: Place, token_id: str | None = None) -> None:
    """Refuse a signed order whose side, token or amounts differ from our integers.

    Raises:
        AmountMismatch: With both computations in the message (the caller logs and rejects).
    """
    want_maker, want_taker = expected_amounts(place.side, place.px, place.qty)
    want_side = ClobSide.BUY if place.side is Side.BUY else ClobSide.SELL
    try:
        got_maker, got_taker = int(signed.makerAmount), int(signed.takerAmount)
        got_side = ClobSide(int(signed.side))
    except (AttributeError, TypeError, ValueError) as exc:
        raise AmountMismatch(f"{place.client_id}: signed order unreadable: {exc}") from None
    problems = []
    if (got_maker, got_taker) != (want_maker, want_taker):
        problems.append(f"maker/taker {got_maker}/{got_taker} != ours {want_maker}/{want_taker}")
    if got_side is not want_side:
        problems.append(f"side {got_side.name} != ours {want_side.name}")
    if token_id is not None and str(signed.tokenId) != token_id:
        problems.append(f"token {signed.tokenId} != ours {token_id}")
    if problems:
        raise AmountMismatch(
            f"{place.client_id}: {'; '.join(problems)} (side {place.side.name} px {place.px} qty {place.qty})"
        )


def sign_place(
    builder: OrderBuilderLike, place: Place, token_id: str, tick_px: Px, neg_risk: bool
) -> SignedOrderV2:
    """Sign ``place`` with the client's order builder and check the amounts; no network.

    Calls ``OrderBuilder.build_order`` directly rather than ``ClobClient.create_order``: the latter
    fetches ``/tick-size`` and ``/version`` on first use, caches the tick forever (so a finer tick
    after a ``tick_size_change`` would be refused) and may fetch ``/neg-risk``.
    """
    args, options = to_order_args(place, tick_px, neg_risk, token_id)
    signed: SignedOrderV2 = builder.build_order(args, options, version=_VERSION)
    check_signed_amounts(signed, place, token_id)
    return signed


@cache
def _domain_separator(neg_risk: bool, chain_id: int) -> bytes:
    cfg = get_contract_config(chain_id)
    exchange = cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPE_HASH, CTF_EXCHANGE_NAME_HASH, keccak(text=str(_VERSION)), chain_id, exchange],
        )
    )


def _bytes32(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x").zfill(64))


def order_id_of(signed: Any, neg_risk: bool, chain_id: int = POLYGON) -> str:
    """The venue's id of a signed V2 order: its EIP-712 digest, ``"0x" + 64 hex``.

    Knowing the id before sending lets the gateway resolve a post whose reply was lost (timeout, 5xx)
    by asking the venue for its open orders.
    """
    struct_hash = keccak(
        abi_encode(
            [
                "bytes32",
                "uint256",
                "address",
                "address",
                "uint256",
                "uint256",
                "uint256",
                "uint8",
                "uint8",
                "uint256",
                "bytes32",
                "bytes32",
            ],
            [
                ORDER_TYPE_HASH,
                int(signed.salt),
                signed.maker,
                signed.signer,
                int(signed.tokenId),
                int(signed.makerAmount),
                int(signed.takerAmount),
                int(signed.side),
                int(signed.signatureType),
                int(signed.timestamp),
                _bytes32(signed.metadata),
                _bytes32(signed.builder),
            ],
        )
    )
    return "0x" + keccak(b"\x19\x01" + _domain_separator(neg_risk, chain_id) + struct_hash).hex()


def bench_sign_orders(n: int = 500, *, builder: OrderBuilderLike | None = None) -> dict[str, Any]:
    """Sign ``n`` orders with a throwaway key (offline) and time each one.

    Returns:
        ``{"n", "median_us", "p90_us", "min_us", "id_median_us", "backend"}``: per-order time of
        ``sign_place`` (build, sign, amount check) and of ``order_id_of``, and the eth-keys backend
        (``CoinCurveECCBackend`` when coincurve is installed; the pure-Python one is ~10x slower).
    """
    if builder is None:
        builder = OrderBuilder(Signer(Account.create().key.hex(), POLYGON))
    sign_us: list[float] = []
    id_us: list[float] = []
    for i in range(n):
        place = Place(
            market="bench",
            client_id=f"bench-{i}",
            outcome=Outcome.YES,
            side=Side.BUY if i % 2 else Side.SELL,
            px=100 + (i * 100) % 9_800,
            qty=5 * QTY_ONE + i * ORDER_QTY_STEP,
        )
        t0 = time.perf_counter()
        signed = sign_place(builder, place, "123456789", 100, neg_risk=bool(i % 3 == 0))
        t1 = time.perf_counter()
        order_id_of(signed, neg_risk=bool(i % 3 == 0))
        t2 = time.perf_counter()
        sign_us.append((t1 - t0) * 1e6)
        id_us.append((t2 - t1) * 1e6)
    sign_us.sort()
    return {
        "n": n,
        "median_us": statistics.median(sign_us),
        "p90_us": sign_us[int(0.9 * (n - 1))],
        "min_us": sign_us[0],
        "id_median_us": statistics.median(id_us),
        "backend": type(get_backend()).__name__,
    }


# The client's rounding table must cover every tick we can name, or signing raises a KeyError.
assert set(TICK_SIZES.values()) <= set(ROUNDING_CONFIG), "py_clob_client_v2 lacks a tick size we use"
assert set(TICK_SIZES) == set(TICKS_PX), "TICK_SIZES must name every venue tick (core.units.TICKS_PX)"
