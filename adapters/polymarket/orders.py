"""Our integer orders signed for the venue: EIP-712 digest, coincurve signature, the SDK's ``SignedOrder``.

The venue's order is the same 11-field struct for both protocols; what differs is the EIP-712 domain
("Polymarket CTF Exchange"):

* **V1** (CTF token ids): version "2", verifying contract the standard exchange, or the neg-risk
  exchange for a neg-risk market;
* **Protocol V2** (position ids): version "3", verifying contract ExchangeV3 (neg-risk or not).

``OrderSigner.sign`` builds the struct from our integers, hashes it (the order's digest *is* the venue
order id, so it is known before sending), signs the digest with coincurve's recoverable signature and
wraps everything in the SDK's public ``SignedOrder``, which ``SecureClient.post_orders`` posts. The
signature is byte-identical to the SDK's own ``create_limit_order`` for the same salt and timestamp
(``tests/adapters/test_orders.py`` checks V1, neg-risk V1 and V2); it costs ~50 us per order instead
of ~430 us (``bench/bench.py --only sign``, README) and makes no network call (``create_limit_order``
fetches and caches each market's tick and neg-risk flag, for 10 minutes, in the order path).

Amounts are 6-decimal fixed point, the token's base unit, so a share amount *is* our ``Qty``: a BUY
gives USDC and takes shares, so ``makerAmount`` is ``notional_usdc6(px, qty)`` and ``takerAmount``
is ``qty``; a SELL is the other way round. Sizes are on the venue's 0.01-share grid and prices on the
market's tick, so the amounts are exact integers and equal what the SDK's own rounding gives
(``taker = floor(size, 2 dp)``, ``maker = taker * price``; checked against ``create_limit_order`` on
every tick). ``check_signed_amounts`` compares the finished order with ``expected_amounts`` before it
is sent and raises ``AmountMismatch``; the gateway then rejects the order instead of sending it.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal

import coincurve
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

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

if TYPE_CHECKING:
    from polymarket import SignedOrder

    from adapters.polymarket.sdk import Contracts

__all__ = [
    "POLYGON",
    "TICK_SIZES",
    "OrderSigner",
    "Protocol",
    "SignedPlace",
    "bench_sign_orders",
    "check_signed_amounts",
    "expected_amounts",
    "tick_size_text",
    "validate_place",
]

POLYGON: Final = 137
#: The venue's tick literals, by tick in Px (what the SDK's ``TickSize`` names). 0.005 and 0.0025 are
#: from 2026-07.
TICK_SIZES: Final[dict[Px, str]] = {
    1000: "0.1",
    100: "0.01",
    50: "0.005",
    25: "0.0025",
    10: "0.001",
    1: "0.0001",
}
#: ``"v1"``: CTF token ids, domain "2"; ``"v2"``: Protocol V2 position ids, domain "3" (Gamma's ``version``).
Protocol = Literal["v1", "v2"]

_EXCHANGE_NAME: Final = "Polymarket CTF Exchange"
_DOMAIN_VERSION: Final[dict[str, str]] = {"v1": "2", "v2": "3"}
_ORDER_TYPE_HASH: Final = keccak(
    text="Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
_DOMAIN_TYPE_HASH: Final = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_ZERO32: Final = b"\x00" * 32
_ZERO32_HEX: Final = "0x" + "00" * 32
_EOA_SIGNATURE_TYPE: Final = 0  # signed by the wallet's own key (no proxy, Safe or deposit wallet)
_SALT_BITS: Final = 53  # what the SDK draws (orders.py: secrets.randbits(53))
_UINT256_MAX: Final = (1 << 256) - 1


def tick_size_text(tick_px: Px) -> str:
    """The venue's tick literal for a tick in Px (``100 -> "0.01"``); ``OrderRefused`` if it has none."""
    try:
        return TICK_SIZES[tick_px]
    except KeyError:
        raise OrderRefused(f"tick {tick_px} (1e-4 units) is not a venue tick size") from None


def expected_amounts(side: Side, px: Px, qty: Qty) -> tuple[int, int]:
    """``(makerAmount, takerAmount)`` of a limit order in 6-decimal units, exactly.

    BUY: the maker gives ``notional_usdc6(px, qty)`` micro-USDC and takes ``qty`` shares (the token's
    6-decimal amount is the Qty itself). SELL: the maker gives the shares and takes the USDC. Exact
    for every size on the ``ORDER_QTY_STEP`` grid (``validate_place`` refuses any other).
    """
    usdc6: Usdc6 = notional_usdc6(px, qty)
    return (usdc6, qty) if side is Side.BUY else (qty, usdc6)


def validate_place(place: Place, tick_px: Px) -> None:
    """Refuse an order the venue could not take exactly as we mean it.

    Raises:
        OrderRefused: a tick the venue does not use; a price off the tick or outside
            [tick, 1 - tick]; a size that is not a positive whole number of 0.01 shares; a TIF that
            does not rest; a GTD order without an expiry.
    """
    tick_size_text(tick_px)
    if place.px % tick_px or not tick_px <= place.px <= PX_ONE - tick_px:
        raise OrderRefused(f"price {place.px} is not on tick {tick_px} within [tick, 1 - tick]")
    if place.qty <= 0:
        raise OrderRefused(f"size {place.qty} is not positive")
    if place.qty % ORDER_QTY_STEP:
        raise OrderRefused(f"size {place.qty} (1e-6 shares) is not a whole number of 0.01 shares")
    if place.tif not in ("GTC", "GTD"):
        raise OrderRefused(f"time in force {place.tif} is not a resting order")
    if place.tif == "GTD" and place.expire_ns <= 0:
        raise OrderRefused("GTD order without expire_ns")


def check_signed_amounts(signed: Any, place: Place, token_id: str | None = None) -> None:
    """Refuse a signed order whose side, token or amounts differ from our integers.

    Raises:
        AmountMismatch: With both computations in the message (the caller logs and rejects).
    """
    want_maker, want_taker = expected_amounts(place.side, place.px, place.qty)
    want_side = "BUY" if place.side is Side.BUY else "SELL"
    try:
        got_maker, got_taker = int(signed.maker_amount), int(signed.taker_amount)
        got_side, got_token = str(signed.side), str(signed.token_id)
    except (AttributeError, TypeError, ValueError) as exc:
        raise AmountMismatch(f"{place.client_id}: signed order unreadable: {exc}") from None
    problems = []
    if (got_maker, got_taker) != (want_maker, want_taker):
        problems.append(f"maker/taker {got_maker}/{got_taker} != ours {want_maker}/{want_taker}")
    if got_side != want_side:
        problems.append(f"side {got_side} != ours {want_side}")
    if token_id is not None and got_token != token_id:
        problems.append(f"token {got_token} != ours {token_id}")
    if problems:
        raise AmountMismatch(
            f"{place.client_id}: {'; '.join(problems)} (side {place.side.name} px {place.px} qty {place.qty})"
        )


class SignedPlace:
    """A signed order ready to post, and the venue's id for it (its EIP-712 digest, ``0x`` + 64 hex)."""

    __slots__ = ("order", "order_id")

    def __init__(self, order: SignedOrder, order_id: str) -> None:
        self.order = order
        self.order_id = order_id


def _word(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


def domain_separator(version: str, chain_id: int, exchange: str) -> bytes:
    """The EIP-712 domain separator of "Polymarket CTF Exchange" ``version`` at ``exchange``."""
    return keccak(
        _DOMAIN_TYPE_HASH
        + keccak(text=_EXCHANGE_NAME)
        + keccak(text=version)
        + _word(chain_id)
        + _address_word(exchange)
    )


class OrderSigner:
    """Signs our orders as the wallet's own key (EOA, signature type 0): maker = signer = the address.

    Args:
        private_key: 32-byte hex key (``0x`` optional); kept as a coincurve key only.
        contracts: Chain id and exchanges (``sdk.contracts(environment)``).
        now_ms: Wall clock in ms for the order's ``timestamp`` (the SDK's ``int(time.time() * 1000)``).
        salt: Draws the 53-bit salt (the SDK's ``secrets.randbits(53)``); tests fix it.
    """

    def __init__(
        self,
        private_key: str,
        contracts: Contracts,
        *,
        now_ms: Callable[[], int] | None = None,
        salt: Callable[[], int] | None = None,
    ) -> None:
        self._key = coincurve.PrivateKey(bytes.fromhex(private_key.strip().removeprefix("0x")))
        public = self._key.public_key.format(compressed=False)[1:]
        self.address: str = to_checksum_address(keccak(public)[-20:])
        self.contracts = contracts
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._salt = salt or (lambda: secrets.randbits(_SALT_BITS))
        self._maker_word = _address_word(self.address)
        chain = contracts.chain_id
        self._domains: dict[tuple[Protocol, bool], bytes] = {
            ("v1", False): domain_separator("2", chain, contracts.standard_exchange),
            ("v1", True): domain_separator("2", chain, contracts.neg_risk_exchange),
            ("v2", False): domain_separator("3", chain, contracts.exchange_v3),
            ("v2", True): domain_separator("3", chain, contracts.exchange_v3),
        }

    def __repr__(self) -> str:
        return f"OrderSigner(address={self.address!r})"

    def __reduce__(self) -> Any:
        raise TypeError("an order signer holds a private key and is not picklable")

    def sign(
        self, place: Place, token_id: str, tick_px: Px, *, neg_risk: bool, protocol: Protocol
    ) -> SignedPlace:
        """Sign ``place`` for ``token_id`` (a V1 token or a V2 position id, as ``protocol`` says).

        Raises:
            OrderRefused: ``validate_place`` refused it, or the token id is not a uint256.
            AmountMismatch: the finished order differs from our integers (never expected).
        """
        from polymarket import SignedOrder  # noqa: PLC0415  (imported by the live path already)

        validate_place(place, tick_px)
        try:
            token = int(token_id)
        except ValueError:
            raise OrderRefused(f"token id {token_id[:80]!r} is not a number") from None
        if not 0 <= token <= _UINT256_MAX:
            raise OrderRefused(f"token id {token_id[:80]} is not a uint256")
        maker_amount, taker_amount = self._amounts(place)
        side = 0 if place.side is Side.BUY else 1
        expiration = place.expire_ns // NS_PER_S if place.tif == "GTD" else 0
        salt = self._salt()
        timestamp = self._now_ms()
        digest = self._digest(
            self._domains[(protocol, neg_risk)], salt, token, maker_amount, taker_amount, side, timestamp
        )
        rs_v = self._key.sign_recoverable(digest, hasher=None)  # r(32) s(32) v(1: 0 or 1)
        signature = "0x" + rs_v[:64].hex() + f"{rs_v[64] + 27:02x}"
        # The SDK's address, hex and id types are NewTypes of str: the values are what they say.
        order = SignedOrder(
            builder=_ZERO32_HEX,  # type: ignore[arg-type]
            expiration=expiration,
            maker=self.address,  # type: ignore[arg-type]
            maker_amount=maker_amount,
            metadata=_ZERO32_HEX,  # type: ignore[arg-type]
            order_type=place.tif,
            salt=salt,
            side="BUY" if side == 0 else "SELL",
            signature=signature,  # type: ignore[arg-type]
            signature_type=_EOA_SIGNATURE_TYPE,
            signer=self.address,  # type: ignore[arg-type]
            taker_amount=taker_amount,
            timestamp=timestamp,
            token_id=token_id,  # type: ignore[arg-type]
            post_only=place.post_only,
        )
        check_signed_amounts(order, place, token_id)
        return SignedPlace(order, "0x" + digest.hex())

    def _amounts(self, place: Place) -> tuple[int, int]:
        # What goes into the struct; ``check_signed_amounts`` reads the finished order back.
        return expected_amounts(place.side, place.px, place.qty)

    def order_id(self, order: SignedOrder, *, neg_risk: bool, protocol: Protocol) -> str:
        """The venue id (EIP-712 digest) of any EOA-signed order of this shape."""
        return "0x" + (
            self._digest(
                self._domains[(protocol, neg_risk)],
                int(order.salt),
                int(order.token_id),
                int(order.maker_amount),
                int(order.taker_amount),
                0 if order.side == "BUY" else 1,
                int(order.timestamp),
                maker=_address_word(order.maker),
                signature_type=int(order.signature_type),
                metadata=bytes.fromhex(order.metadata.removeprefix("0x")),
                builder=bytes.fromhex(order.builder.removeprefix("0x")),
            ).hex()
        )

    def _digest(
        self,
        domain: bytes,
        salt: int,
        token: int,
        maker_amount: int,
        taker_amount: int,
        side: int,
        timestamp: int,
        *,
        maker: bytes | None = None,
        signature_type: int = _EOA_SIGNATURE_TYPE,
        metadata: bytes = _ZERO32,
        builder: bytes = _ZERO32,
    ) -> bytes:
        maker = maker or self._maker_word
        struct_hash = keccak(
            _ORDER_TYPE_HASH
            + _word(salt)
            + maker
            + maker  # signer: the same EOA
            + _word(token)
            + _word(maker_amount)
            + _word(taker_amount)
            + _word(side)
            + _word(signature_type)
            + _word(timestamp)
            + metadata
            + builder
        )
        return keccak(b"\x19\x01" + domain + struct_hash)


def bench_sign_orders(n: int = 2000, *, signer: OrderSigner | None = None) -> dict[str, Any]:
    """Sign ``n`` orders with a throwaway key (offline) and time each one.

    Returns:
        ``{"n", "median_us", "p90_us", "min_us", "path"}``: per-order time of ``OrderSigner.sign``
        (validation, amounts, digest, coincurve signature, the SDK's ``SignedOrder``, amount check),
        alternating V1, neg-risk V1 and V2.
    """
    from adapters.polymarket import sdk  # noqa: PLC0415

    if signer is None:
        from polymarket import PRODUCTION  # noqa: PLC0415

        signer = OrderSigner("0x" + secrets.token_hex(32), sdk.contracts(PRODUCTION))
    v1_token = str(int("9d" * 32, 16))  # any id with bits 40..103 set is a V1 token
    v2_position = str(int("01" + "ab" * 16 + "00" * 14 + "00", 16))
    sign_us: list[float] = []
    for i in range(n):
        place = Place(
            market="bench",
            client_id=f"bench-{i}",
            outcome=Outcome.YES,
            side=Side.BUY if i % 2 else Side.SELL,
            px=100 + (i * 100) % 9_800,
            qty=5 * QTY_ONE + i * ORDER_QTY_STEP,
        )
        kind = i % 3
        token = v2_position if kind == 2 else v1_token
        t0 = time.perf_counter()
        signer.sign(place, token, 100, neg_risk=kind == 1, protocol="v2" if kind == 2 else "v1")
        sign_us.append((time.perf_counter() - t0) * 1e6)
    sign_us.sort()
    return {
        "n": n,
        "median_us": round(statistics.median(sign_us), 1),
        "p90_us": round(sign_us[int(0.9 * (n - 1))], 1),
        "min_us": round(sign_us[0], 1),
        "path": "own EIP-712 digest + coincurve sign_recoverable -> polymarket SignedOrder",
    }


assert set(TICK_SIZES) == set(TICKS_PX), "TICK_SIZES must name every venue tick (core.units.TICKS_PX)"
