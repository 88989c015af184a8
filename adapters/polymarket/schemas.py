"""Polymarket wire payloads as msgspec Structs: strings as served, no interpretation.

``parse.py`` turns these into ``core.messages`` (market channel) and typed user events. Decoders are
built once at import. Channel messages are tagged on ``event_type``; a tagged Struct decoded on its
own (REST ``GET /book``) accepts a payload without the tag.

Unknown fields are ignored (the venue adds fields over time); missing optional fields default.
"""

from __future__ import annotations

import msgspec

# Venue timestamps: the market channel sends ms as strings; REST and the user channel mix strings and
# ints, seconds and ms. Parsing decides the unit.
WireTs = str | int
# Some numbers (tick sizes from REST, fee rates) come as JSON numbers in one place and strings in another.
WireNum = str | int | float


class WireLevel(msgspec.Struct, frozen=True):
    """One book level as served: decimal strings."""

    price: str
    size: str


# --- market channel ----------------------------------------------------------------------------------


class WireBook(msgspec.Struct, frozen=True, kw_only=True, tag="book", tag_field="event_type"):
    """REST ``GET /book`` and WebSocket ``book``: levels worst→best (the best level is LAST)."""

    asset_id: str
    market: str = ""
    bids: tuple[WireLevel, ...] = ()
    asks: tuple[WireLevel, ...] = ()
    timestamp: WireTs = "0"
    hash: str = ""
    tick_size: WireNum | None = None
    min_order_size: WireNum | None = None
    neg_risk: bool | None = None
    last_trade_price: str | None = None


class WirePriceChangeEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One level of a current-format ``price_change`` (since 2025-09-15); ``size`` is the new total.

    The entry's ``hash``, ``best_bid`` and ``best_ask`` are not decoded: our books are rebuilt from
    the levels (skipping them is on the tick-to-quote path).
    """

    asset_id: str
    price: str
    size: str
    side: str


class WireChange(msgspec.Struct, frozen=True, kw_only=True):
    """One level of a 2024-10…2025-09 ``price_change`` (``changes[]``; the asset is top level)."""

    price: str
    side: str
    size: str


class WirePriceChange(msgspec.Struct, frozen=True, kw_only=True, tag="price_change", tag_field="event_type"):
    """``price_change`` in any of its three formats; ``parse_price_change`` tells them apart.

    * current: ``price_changes[]`` (entries carry their own ``asset_id`` and ``best_bid/best_ask``);
    * 2024-10…2025-09: top-level ``asset_id`` and ``changes[]``;
    * oldest: one flat level, ``asset_id, price, side, size`` at top level.
    """

    market: str = ""
    timestamp: WireTs = "0"
    price_changes: tuple[WirePriceChangeEntry, ...] | None = None
    asset_id: str = ""
    changes: tuple[WireChange, ...] | None = None
    price: str | None = None
    side: str | None = None
    size: str | None = None
    hash: str = ""


class WireLastTradePrice(
    msgspec.Struct, frozen=True, kw_only=True, tag="last_trade_price", tag_field="event_type"
):
    """``last_trade_price``: one trade; ``side`` is the taker's side."""

    asset_id: str
    price: str
    size: str
    side: str
    market: str = ""
    fee_rate_bps: WireNum = "0"
    timestamp: WireTs = "0"
    transaction_hash: str = ""


class WireTickSizeChange(
    msgspec.Struct, frozen=True, kw_only=True, tag="tick_size_change", tag_field="event_type"
):
    """``tick_size_change``: the tick moved (near 0.04/0.96); a new book epoch starts."""

    asset_id: str
    new_tick_size: WireNum
    old_tick_size: WireNum | None = None
    market: str = ""
    timestamp: WireTs = "0"


class WireMarketResolved(
    msgspec.Struct, frozen=True, kw_only=True, tag="market_resolved", tag_field="event_type"
):
    """``market_resolved`` (custom feature)."""

    market: str
    winning_asset_id: str
    assets_ids: tuple[str, ...] = ()
    winning_outcome: str = ""
    timestamp: WireTs = "0"
    id: str = ""


class WireBestBidAsk(msgspec.Struct, frozen=True, kw_only=True, tag="best_bid_ask", tag_field="event_type"):
    """``best_bid_ask`` (custom feature). Decoded so it is recognised; the book already says this."""

    asset_id: str = ""
    market: str = ""
    timestamp: WireTs = "0"


class WireNewMarket(msgspec.Struct, frozen=True, kw_only=True, tag="new_market", tag_field="event_type"):
    """``new_market`` (custom feature). Decoded so it is recognised; discovery is Gamma's job."""

    market: str = ""
    timestamp: WireTs = "0"


WireMarketMsg = (
    WireBook
    | WirePriceChange
    | WireLastTradePrice
    | WireTickSizeChange
    | WireMarketResolved
    | WireBestBidAsk
    | WireNewMarket
)

#: Event types of the market channel that we decode (others are skipped with a reason).
MARKET_EVENT_TYPES = frozenset(
    (
        "book",
        "price_change",
        "last_trade_price",
        "tick_size_change",
        "market_resolved",
        "best_bid_ask",
        "new_market",
    )
)


class WireMarketSubscribe(msgspec.Struct, frozen=True, kw_only=True):
    """First frame on the market channel: which token ids to stream."""

    assets_ids: tuple[str, ...]
    type: str = "market"
    custom_feature_enabled: bool = True


# --- user channel ------------------------------------------------------------------------------------


class WireMakerOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One maker leg of a ``trade``; ``price`` is on the maker's own token (1 − p when complementary)."""

    order_id: str
    asset_id: str
    price: str
    matched_amount: str
    outcome: str = ""
    owner: str = ""
    maker_address: str = ""
    fee_rate_bps: WireNum = "0"
    side: str | None = None  # only on newer messages


class WireOrder(msgspec.Struct, frozen=True, kw_only=True, tag="order", tag_field="event_type"):
    """User-channel ``order``: ``type`` is PLACEMENT, UPDATE (partial fill) or CANCELLATION."""

    id: str
    type: str
    asset_id: str
    side: str
    price: str
    original_size: str
    size_matched: str = "0"
    market: str = ""
    status: str = ""
    outcome: str = ""
    owner: str = ""
    order_owner: str = ""
    maker_address: str = ""
    order_type: str = ""
    associate_trades: tuple[str, ...] | None = None
    created_at: WireTs = "0"
    expiration: WireTs = "0"
    timestamp: WireTs = "0"


class WireTrade(msgspec.Struct, frozen=True, kw_only=True, tag="trade", tag_field="event_type"):
    """User-channel ``trade`` (one per status change: MATCHED → MINED → CONFIRMED, or RETRYING/FAILED).

    The top-level fields describe the taker order as served; ``maker_orders`` lists the maker legs.
    """

    id: str
    taker_order_id: str
    asset_id: str
    side: str
    size: str
    price: str
    status: str
    market: str = ""
    fee_rate_bps: WireNum = "0"
    match_time: WireTs = "0"
    last_update: WireTs = "0"
    timestamp: WireTs = "0"
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    transaction_hash: str = ""
    bucket_index: int | str = 0
    trader_side: str = ""
    type: str = "TRADE"
    maker_orders: tuple[WireMakerOrder, ...] = ()


WireUserMsg = WireOrder | WireTrade


class WireEnvelope(msgspec.Struct, frozen=True):
    """Just the tag of a message, to name what we skipped."""

    event_type: str | None = None


BOOK_DECODER = msgspec.json.Decoder(WireBook)
MARKET_MSG_DECODER = msgspec.json.Decoder(WireMarketMsg)
MARKET_FRAME_DECODER = msgspec.json.Decoder(list[WireMarketMsg] | WireMarketMsg)
#: A frame known to be one ``price_change`` (``parse.decode_market_messages``' fast path): no tag lookahead.
PRICE_CHANGE_DECODER = msgspec.json.Decoder(WirePriceChange)
USER_MSG_DECODER = msgspec.json.Decoder(WireUserMsg)
USER_FRAME_DECODER = msgspec.json.Decoder(list[WireUserMsg] | WireUserMsg)
RAW_DECODER = msgspec.json.Decoder(msgspec.Raw)
RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
ENVELOPE_DECODER = msgspec.json.Decoder(WireEnvelope)
JSON_ENCODER = msgspec.json.Encoder()
