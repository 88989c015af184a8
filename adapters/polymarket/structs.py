"""The msgspec Structs of ``adapters.polymarket.parse`` (the user channel's events), in an uncompiled module.

``adapters.polymarket.parse`` re-exports them (``VenueOrderUpdate``, ``VenueMakerFill``, ``VenueTrade``
and their ``Literal`` types): import them from either. Why they are not defined there:
``core/structs.py``'s docstring (mypyc would drop their class keywords and flatten their annotations).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from core.units import Outcome, Px, Qty, Side

OrderUpdateType = Literal["PLACEMENT", "UPDATE", "CANCELLATION"]
TradeStatus = Literal["MATCHED", "MINED", "CONFIRMED", "RETRYING", "FAILED"]
TraderSide = Literal["TAKER", "MAKER"]


class _UserEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    pass


class VenueOrderUpdate(_UserEvent, frozen=True, kw_only=True, tag="venue_order"):
    """A user-channel ``order`` event in our units. ``order_id`` is the venue's id, not our client id.

    ``status`` is as served (``LIVE``, ``MATCHED``, ``CANCELED``, or a longer ``CANCELED_…`` reason for
    killed FOK orders). ``expire_ns`` is 0 for orders without expiry.
    """

    type: OrderUpdateType
    order_id: str
    market: str
    outcome: Outcome
    side: Side
    px: Px
    original_qty: Qty
    matched_qty: Qty
    status: str
    order_type: str
    owner: str
    ts_ns: int
    created_ns: int
    expire_ns: int
    trade_ids: tuple[str, ...]


class VenueMakerFill(msgspec.Struct, frozen=True, kw_only=True):
    """One maker leg of a trade, on the maker's own token.

    ``complementary`` means the maker's token is the other token of the market (a mint or merge
    match): the maker's ``px`` then corresponds to ``1 − p`` on the taker's token and both sides trade
    in the same direction (BUY with BUY, SELL with SELL).
    """

    order_id: str
    owner: str
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    fee_rate_bps: int
    complementary: bool


class VenueTrade(_UserEvent, frozen=True, kw_only=True, tag="venue_trade"):
    """A user-channel ``trade`` event in our units (one per status change).

    ``outcome/side/px/qty`` are the top-level fields as served (the taker order; for ``MAKER``
    messages the venue may name the maker's token there): use ``maker_fills`` for maker legs.
    ``ts_ns`` is the message time, ``match_ns`` the match time.
    """

    trade_id: str
    status: TradeStatus
    trader_side: TraderSide
    market: str
    taker_order_id: str
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    fee_rate_bps: int
    owner: str
    ts_ns: int
    match_ns: int
    transaction_hash: str
    bucket_index: int
    maker_fills: tuple[VenueMakerFill, ...]
