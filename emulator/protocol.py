"""The venue's two market protocols: V1 (CTF token ids) and Protocol V2 (PositionManager position ids).

A Protocol V2 market's structural id is 31 bytes: a module byte (``01`` binary, ``02`` neg-risk), 16
hash bytes and 14 zero bytes. Its outcome positions are that id followed by the outcome byte (``00``
YES, ``01`` NO) read as a uint256, and its market condition id (the CLOB ``market``, the user
channel's key, Gamma's ``conditionId``) is the structural id padded with ``00`` to 32 bytes, as the
official client's ``to_market_condition_id`` pads it. The 14 zero bytes are what the official client
tests (``is_v2_position_id``: bits 40..103 of the uint256 clear) to sign an order for ExchangeV3 with
EIP-712 domain version ``"3"``; every other id is signed for the CTF exchanges with version ``"2"``.
A V1 token id (a hash) has those bits clear with odds of 2^-64, so the two namespaces never meet.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

__all__ = [
    "EXCHANGE_V3",
    "V2_ASSET_TYPE",
    "V2_RESERVED_MASK",
    "ProtocolVersion",
    "is_v2_position_id",
    "v2_market_ids",
]

ProtocolVersion = Literal["v1", "v2"]

#: Protocol V2 orders settle through ExchangeV3 (Polygon), whatever the market's neg-risk flag.
EXCHANGE_V3: Final = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
#: ``/balance-allowance`` asset type of a Protocol V2 position.
V2_ASSET_TYPE: Final = "CONDITIONAL-V2"
#: The bits of a uint256 a V2 position id keeps clear (its 14 zero bytes, after the outcome byte).
V2_RESERVED_MASK: Final = ((1 << 64) - 1) << 40

_MODULE_BINARY: Final = 0x01
_MODULE_NEG_RISK: Final = 0x02


def is_v2_position_id(token_id: str) -> bool:
    """Whether a decimal uint256 id is a Protocol V2 position id (as the official client decides)."""
    try:
        value = int(token_id)
    except ValueError:
        return False
    return 0 <= value < 1 << 256 and not value & V2_RESERVED_MASK


def v2_market_ids(seed_text: str, *, neg_risk: bool) -> tuple[str, str, str]:
    """``(condition_id, yes_position, no_position)`` of a Protocol V2 market derived from ``seed_text``.

    The 16 hash bytes come from ``seed_text``; the condition id is ``0x`` + 64 hex digits (the 31-byte
    structural id and a ``00`` byte); the positions are uint256 decimal strings.
    """
    module = _MODULE_NEG_RISK if neg_risk else _MODULE_BINARY
    structural = bytes([module]) + hashlib.sha256(seed_text.encode()).digest()[:16] + bytes(14)
    yes = int.from_bytes(structural + b"\x00", "big")
    no = int.from_bytes(structural + b"\x01", "big")
    return "0x" + (structural + b"\x00").hex(), str(yes), str(no)
