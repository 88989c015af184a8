"""Signed CLOB orders on the wire: decode, verify the EIP-712 signature, and convert to our units.

Both order versions are understood (a V2 order carries ``timestamp``):

* V2 signs ``Order(salt, maker, signer, tokenId, makerAmount, takerAmount, side, signatureType,
  timestamp, metadata, builder)`` in domain ``Polymarket CTF Exchange`` version ``"2"``;
  ``expiration`` travels in the JSON but is not signed.
* V1 signs ``Order(salt, maker, signer, taker, tokenId, makerAmount, takerAmount, expiration, nonce,
  feeRateBps, side, signatureType)`` in version ``"1"``.

The verifying contract is the exchange or, for neg-risk markets, the neg-risk exchange; a Protocol V2
market's orders (V2 struct) are signed for ExchangeV3 with domain version ``"3"`` instead
(``emulator.protocol``). The server decides the domain from its own market, so an order signed for the
wrong exchange or protocol fails to recover (``invalid signature``, as the venue answers). The order
id is the EIP-712 digest. Amounts are 6-decimal integers: a BUY pays ``makerAmount`` USDC for
``takerAmount`` shares, a SELL the reverse. A share amount is a ``Qty`` as it stands (both are 1e-6
shares); the price must land exactly on the 1e-4 grid and the size on the venue's 0.01-share grid
(``ORDER_QTY_STEP``), as limit orders must.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, Px, Qty, Side
from emulator.protocol import EXCHANGE_V3, ProtocolVersion

__all__ = [
    "EXCHANGES",
    "Domain",
    "OrderError",
    "PostOrder",
    "SignedOrder",
    "decode_post_order",
    "domain_of",
    "order_digest",
    "order_to_px_qty",
    "verify_signature",
    "wrong_domain_hint",
]

#: Verifying contracts by (order version, neg risk) on Polygon (chain 137).
EXCHANGES: Final = {
    (1, False): "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E",
    (1, True): "0xC5d563A36AE78145C45a50134d48A1215220f80a",
    (2, False): "0xE111180000d2663C0091e4f400237545B87B996B",
    (2, True): "0xe2222d279d744050d28e00520010520000310F59",
}
_CHAIN_ID: Final = 137
_DOMAIN_NAME: Final = "Polymarket CTF Exchange"
_SIG_EOA: Final = 0
_SIG_POLY_1271: Final = 3

_DOMAIN_FIELDS: Final = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_V1_FIELDS: Final = [
    {"name": "salt", "type": "uint256"},
    {"name": "maker", "type": "address"},
    {"name": "signer", "type": "address"},
    {"name": "taker", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "makerAmount", "type": "uint256"},
    {"name": "takerAmount", "type": "uint256"},
    {"name": "expiration", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "feeRateBps", "type": "uint256"},
    {"name": "side", "type": "uint8"},
    {"name": "signatureType", "type": "uint8"},
]
_V2_FIELDS: Final = [
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
]
# ERC-1271 deposit-wallet signatures (signature type 3) wrap the order hash in a Solady
# ``TypedDataSign`` envelope (py_clob_client_v2 ``exchange_order_builder_v2``).
_V2_TYPE_STRING: Final = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
_SOLADY_TYPE_HASH: Final = keccak(
    text="TypedDataSign(Order contents,string name,string version,uint256 chainId,address verifyingContract,"
    "bytes32 salt)" + _V2_TYPE_STRING
)
_DEPOSIT_WALLET_NAME_HASH: Final = keccak(text="DepositWallet")
_DEPOSIT_WALLET_VERSION_HASH: Final = keccak(text="1")

OrderType = Literal["GTC", "GTD", "FOK", "FAK"]


class OrderError(Exception):
    """An order the venue refuses before matching; ``str(err)`` is the venue's message."""


class Domain(msgspec.Struct, frozen=True):
    """The EIP-712 domain an order is signed in: its version and verifying contract (chain 137)."""

    version: str
    contract: str

    def describe(self) -> str:
        """``domain "3" (ExchangeV3 0xe333…)``-style text for messages."""
        name = {
            EXCHANGE_V3: "ExchangeV3",
            EXCHANGES[(2, False)]: "CTF Exchange V2",
            EXCHANGES[(2, True)]: "Neg Risk CTF Exchange V2",
        }.get(self.contract, "exchange")
        return f'domain "{self.version}" ({name} {self.contract})'


def domain_of(order_version: int, *, neg_risk: bool, protocol: ProtocolVersion) -> Domain:
    """The domain the venue verifies an order in: ExchangeV3 "3" for Protocol V2 markets, else the
    (neg-risk) CTF exchange of the order's struct version."""
    if protocol == "v2":
        return Domain("3", EXCHANGE_V3)
    return Domain(str(order_version), EXCHANGES[(order_version, neg_risk)])


class SignedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded order in exact integers; ``fields`` are the signed struct values."""

    version: int
    maker: str
    signer: str
    token_id: str
    side: Side
    maker_amount: int
    taker_amount: int
    expiration_s: int
    signature_type: int
    signature: str
    fields: dict[str, Any]


class PostOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One ``POST /order`` body (or one element of ``POST /orders``)."""

    order: SignedOrder
    owner: str
    order_type: OrderType
    post_only: bool
    defer_exec: bool


def _uint(raw: Any, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise OrderError(f"invalid order: {field} must be an integer or an integer string")
    try:
        value = int(raw)
    except ValueError:
        raise OrderError(f"invalid order: {field} is not an integer: {raw!r}") from None
    if value < 0:
        raise OrderError(f"invalid order: {field} is negative")
    return value


def _address(raw: Any, field: str) -> str:
    if not isinstance(raw, str):
        raise OrderError(f"invalid order: {field} is not an address")
    try:
        return to_checksum_address(raw)
    except ValueError:
        raise OrderError(f"invalid order: {field} is not an address: {raw!r}") from None


def _bytes32(raw: Any, field: str) -> bytes:
    if not isinstance(raw, str):
        raise OrderError(f"invalid order: {field} is not bytes32")
    try:
        data = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise OrderError(f"invalid order: {field} is not hex") from None
    if len(data) > 32:
        raise OrderError(f"invalid order: {field} is longer than 32 bytes")
    return data.rjust(32, b"\x00")


def _side(raw: Any) -> Side:
    match raw:
        case "BUY" | 0:
            return Side.BUY
        case "SELL" | 1:
            return Side.SELL
        case _:
            raise OrderError(f"invalid order: side must be BUY or SELL, got {raw!r}")


def _signed_order(raw: Any) -> SignedOrder:
    if not isinstance(raw, dict):
        raise OrderError("invalid order: `order` must be an object")
    for field in ("maker", "signer", "tokenId", "makerAmount", "takerAmount", "side", "signature"):
        if field not in raw:
            raise OrderError(f"invalid order: missing {field}")
    version = 2 if "timestamp" in raw else 1
    side = _side(raw["side"])
    maker, signer = _address(raw["maker"], "maker"), _address(raw["signer"], "signer")
    sig_type = _uint(raw.get("signatureType", 0), "signatureType")
    fields: dict[str, Any] = {
        "salt": _uint(raw.get("salt", 0), "salt"),
        "maker": maker,
        "signer": signer,
        "tokenId": _uint(raw["tokenId"], "tokenId"),
        "makerAmount": _uint(raw["makerAmount"], "makerAmount"),
        "takerAmount": _uint(raw["takerAmount"], "takerAmount"),
        "side": 0 if side is Side.BUY else 1,
        "signatureType": sig_type,
    }
    if version == 2:
        fields["timestamp"] = _uint(raw["timestamp"], "timestamp")
        fields["metadata"] = _bytes32(raw.get("metadata", "0x"), "metadata")
        fields["builder"] = _bytes32(raw.get("builder", "0x"), "builder")
    else:
        fields["taker"] = _address(raw.get("taker", "0x" + "00" * 20), "taker")
        fields["expiration"] = _uint(raw.get("expiration", 0), "expiration")
        fields["nonce"] = _uint(raw.get("nonce", 0), "nonce")
        fields["feeRateBps"] = _uint(raw.get("feeRateBps", 0), "feeRateBps")
    signature = raw["signature"]
    if not isinstance(signature, str):
        raise OrderError("invalid order: signature must be a hex string")
    return SignedOrder(
        version=version,
        maker=maker,
        signer=signer,
        token_id=str(fields["tokenId"]),
        side=side,
        maker_amount=fields["makerAmount"],
        taker_amount=fields["takerAmount"],
        expiration_s=_uint(raw.get("expiration", 0), "expiration"),
        signature_type=sig_type,
        signature=signature,
        fields=fields,
    )


def decode_post_order(raw: Any) -> PostOrder:
    """One decoded ``POST /order`` JSON value as a ``PostOrder``.

    Raises:
        OrderError: A missing or malformed field (the message names it).
    """
    if not isinstance(raw, dict):
        raise OrderError("invalid payload: expected an object with `order`, `owner` and `orderType`")
    order_type = raw.get("orderType", "GTC")
    if order_type not in ("GTC", "GTD", "FOK", "FAK"):
        raise OrderError(f"invalid order type {order_type!r}")
    owner = raw.get("owner", "")
    post_only = raw.get("postOnly", False)
    defer_exec = raw.get("deferExec", False)
    if not isinstance(owner, str) or not isinstance(post_only, bool) or not isinstance(defer_exec, bool):
        raise OrderError("invalid payload: owner must be a string, postOnly and deferExec booleans")
    return PostOrder(
        order=_signed_order(raw.get("order")),
        owner=owner,
        order_type=order_type,
        post_only=post_only,
        defer_exec=defer_exec,
    )


def _typed_data(order: SignedOrder, domain: Domain) -> dict[str, Any]:
    return {
        "primaryType": "Order",
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "Order": _V2_FIELDS if order.version == 2 else _V1_FIELDS},
        "domain": {
            "name": _DOMAIN_NAME,
            "version": domain.version,
            "chainId": _CHAIN_ID,
            "verifyingContract": domain.contract,
        },
        "message": order.fields,
    }


def _poly_1271_signer(order: SignedOrder, domain: Domain, order_hash: bytes) -> str:
    # signature = inner ECDSA (65) ‖ app domain separator (32) ‖ contents hash (32) ‖ type ‖ len (2).
    sig = bytes.fromhex(order.signature.removeprefix("0x"))
    if len(sig) < 65 + 64 + 2:
        raise OrderError("invalid signature")
    domain_sep, contents = sig[65:97], sig[97:129]
    contents_len = int.from_bytes(sig[-2:], "big")
    if sig[129 : 129 + contents_len] != _V2_TYPE_STRING.encode() or 129 + contents_len + 2 != len(sig):
        raise OrderError("invalid signature")
    expected_sep = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(
                    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                ),
                keccak(text=_DOMAIN_NAME),
                keccak(text=domain.version),
                _CHAIN_ID,
                domain.contract,
            ],
        )
    )
    # The order digest is keccak(0x1901 ‖ domain separator ‖ contents); both must be the order's own.
    if domain_sep != expected_sep or keccak(b"\x19\x01" + domain_sep + contents) != order_hash:
        raise OrderError("invalid signature")
    envelope = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "bytes32", "uint256", "address", "bytes32"],
            [
                _SOLADY_TYPE_HASH,
                contents,
                _DEPOSIT_WALLET_NAME_HASH,
                _DEPOSIT_WALLET_VERSION_HASH,
                _CHAIN_ID,
                order.signer,
                b"\x00" * 32,
            ],
        )
    )
    digest = keccak(b"\x19\x01" + domain_sep + envelope)
    return str(Account._recover_hash(digest, signature=sig[:65]))


def _digest(order: SignedOrder, domain: Domain) -> tuple[Any, bytes]:
    try:
        encoded = encode_typed_data(full_message=_typed_data(order, domain))
    except Exception:
        raise OrderError("invalid order: a field does not fit its EIP-712 type") from None
    return encoded, keccak(b"\x19" + encoded.version + encoded.header + encoded.body)


def order_digest(order: SignedOrder, domain: Domain) -> str:
    """The order's id in ``domain``: its EIP-712 digest, ``0x`` + 64 hex."""
    return "0x" + _digest(order, domain)[1].hex()


def _recovered(order: SignedOrder, domain: Domain) -> str:
    # The address the signature recovers to in ``domain`` ("" when it recovers to nothing).
    encoded, digest = _digest(order, domain)
    try:
        if order.signature_type == _SIG_POLY_1271 and order.version == 2:
            return _poly_1271_signer(order, domain, digest)
        return str(Account.recover_message(encoded, signature=order.signature))
    except Exception:
        return ""


def verify_signature(order: SignedOrder, *, domain: Domain, owner_address: str) -> str:
    """Check the order's signature in ``domain``; return the order id (the EIP-712 digest, ``0x`` + 64 hex).

    EOA, proxy and Safe orders (types 0-2) must be signed by ``signer``, which must be the API key's
    address; a type-0 order's maker is its signer. Deposit-wallet orders (type 3) carry an ERC-1271
    envelope whose inner signature must be the API key's address.

    Raises:
        OrderError: ``invalid signature`` (the venue's words) or a maker/signer mismatch.
    """
    _, digest = _digest(order, domain)
    order_id = "0x" + digest.hex()
    if not (order.signature_type == _SIG_POLY_1271 and order.version == 2):
        if order.signature_type > _SIG_POLY_1271:
            raise OrderError(f"invalid signature type {order.signature_type}")
        if order.signer.lower() != owner_address.lower():
            raise OrderError("invalid order: the signer is not the API key's address")
        if order.signature_type == _SIG_EOA and order.maker != order.signer:
            raise OrderError("invalid order: an EOA order's maker must be its signer")
        owner_address = order.signer
    if _recovered(order, domain).lower() != owner_address.lower():
        raise OrderError("invalid signature")
    return order_id


def wrong_domain_hint(order: SignedOrder, expected: Domain, owner_address: str) -> str:
    """Why an order that failed ``verify_signature`` in ``expected`` failed, when it is a wrong domain.

    Tries the other domains the venue knows (both protocols, both CTF exchanges); when the signature
    recovers to the order's signer in one of them, says which one it was made for and which one the
    market needs. "" when none fits (a plain bad signature).
    """
    if order.version != 2:
        return ""
    for other in (
        Domain("3", EXCHANGE_V3),
        Domain("2", EXCHANGES[(2, False)]),
        Domain("2", EXCHANGES[(2, True)]),
    ):
        if other == expected:
            continue
        try:
            signer = _recovered(order, other)
        except OrderError:
            continue
        if signer and signer.lower() == owner_address.lower():
            return f"signed in {other.describe()}, but token {order.token_id} needs {expected.describe()}"
    return ""


def order_to_px_qty(order: SignedOrder) -> tuple[Px, Qty]:
    """Exact price (Px) and size (Qty) of a limit order from its amounts.

    BUY: ``takerAmount`` shares for ``makerAmount`` USDC; SELL: the reverse.

    Raises:
        OrderError: A size finer than 0.01 share, a price finer than 0.0001, or a zero amount.
    """
    if order.side is Side.BUY:
        usdc, shares = order.maker_amount, order.taker_amount
    else:
        shares, usdc = order.maker_amount, order.taker_amount
    if shares <= 0 or usdc <= 0:
        raise OrderError("invalid order: amounts must be positive")
    if shares % ORDER_QTY_STEP:
        raise OrderError(f"invalid order size: {shares / QTY_ONE} shares has more than 2 decimals")
    qty: Qty = shares
    px, rem = divmod(usdc * PX_ONE, shares)
    if rem:
        raise OrderError("invalid order price: the amounts do not give a price on the 0.0001 grid")
    if not 0 < px < PX_ONE:
        raise OrderError("invalid order price: outside (0, 1)")
    return px, qty
