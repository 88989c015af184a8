"""The venue's wire format: the JSON shapes of books, orders, trades, markets, pages and rejections.

Pure functions of the venue's records (``emulator.state``); shapes follow
``shared/docs/clob-emulator-spec.md`` §3-4 and §8.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from core.units import (
    NS_PER_S,
    PX_ONE,
    Outcome,
    Side,
    format_px,
    format_qty,
    format_usdc6,
)
from emulator.gamma import iso_utc
from emulator.state import (
    END_CURSOR,
    FIRST_CURSOR,
    SIDE_NAME,
    MarketState,
    OrderRecord,
    PlaceResult,
    TradeRecord,
    VenueError,
)

__all__ = [
    "book_hash",
    "book_json",
    "clob_market_json",
    "order_json",
    "page",
    "participant",
    "reject_reply",
    "trade_json",
]

ENCODER: Final = msgspec.json.Encoder()


def book_hash(payload: Mapping[str, Any]) -> str:
    """The venue's book hash: sha1 of compact JSON in the venue's key order with ``hash`` empty."""
    keys = (
        "market",
        "asset_id",
        "timestamp",
        "hash",
        "bids",
        "asks",
        "min_order_size",
        "tick_size",
        "neg_risk",
        "last_trade_price",
    )
    body = {k: ("" if k == "hash" else payload[k]) for k in keys}
    return hashlib.sha1(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()  # noqa: S324 - the venue's own (non-security) hash


def cursor_of(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def offset_of(cursor: str) -> int:
    if not cursor or cursor == FIRST_CURSOR:
        return 0
    try:
        return max(int(base64.b64decode(cursor).decode()), 0)
    except ValueError:
        raise VenueError(400, f"invalid next_cursor {cursor!r}") from None


def participant(owner: str) -> tuple[str, str]:
    # A stable pseudo api key and address for the emulator's own participants.
    digest = hashlib.sha256(f"participant:{owner}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4)), "0x" + digest[12:32].hex()


def book_json(m: MarketState, outcome: Outcome, ts_ms: int) -> dict[str, Any]:
    """One token's book as ``GET /book`` and the ``book`` event carry it (best levels last)."""
    eng = m.engine
    bids = eng.depth(outcome, Side.BUY)
    asks = eng.depth(outcome, Side.SELL)
    book: dict[str, Any] = {
        "market": m.market,
        "asset_id": m.token(outcome),
        "timestamp": str(ts_ms),
        "hash": "",
        # Worst to best: the best level is last, as the venue serves it.
        "bids": [{"price": format_px(p), "size": format_qty(q)} for p, q in reversed(bids)],
        "asks": [{"price": format_px(p), "size": format_qty(q)} for p, q in reversed(asks)],
        "min_order_size": format_qty(eng.min_qty),
        "tick_size": format_px(eng.tick_px),
        "neg_risk": m.cfg.neg_risk,
        "last_trade_price": last_px_text(m, outcome),
    }
    book["hash"] = book_hash(book)
    return book


def last_px_text(m: MarketState, outcome: Outcome) -> str:
    """The last trade price on ``outcome``'s token ("" before the first trade)."""
    if m.last_trade is None:
        return ""
    px = m.last_trade[0]
    return format_px(px if outcome is Outcome.YES else PX_ONE - px)


def clob_market_json(m: MarketState) -> dict[str, Any]:
    """A market as the CLOB's ``GET /markets`` lists it."""
    bid = m.engine.best_bid(Outcome.YES)
    ask = m.engine.best_ask(Outcome.YES)
    yes_px = (bid + ask) / 2 / PX_ONE if bid is not None and ask is not None else 0.5
    end_ns = m.start_ns + int(m.cfg.end_in_days * 86_400) * NS_PER_S
    return {
        "enable_order_book": True,
        "active": True,
        "closed": False,
        "archived": False,
        "accepting_orders": True,
        "accepting_order_timestamp": iso_utc(m.start_ns),
        "minimum_order_size": float(format_qty(m.engine.min_qty)),
        "minimum_tick_size": float(format_px(m.engine.tick_px)),
        "condition_id": m.market,
        "question_id": "0x" + m.market[2:][::-1],
        "question": m.cfg.question or m.cfg.slug,
        "description": f"Emulated market {m.cfg.slug}.",
        "market_slug": m.cfg.slug,
        "end_date_iso": iso_utc(end_ns),
        "game_start_time": None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": 1000 if m.cfg.fee_rate_ppm else 0,
        "taker_base_fee": 1000 if m.cfg.fee_rate_ppm else 0,
        "notifications_enabled": False,
        "neg_risk": m.cfg.neg_risk,
        "neg_risk_market_id": m.neg_risk_market_id,
        "neg_risk_request_id": "",
        "icon": "",
        "image": "",
        "rewards": {
            "rates": None,
            "min_size": float(format_qty(m.cfg.rewards_min_qty)),
            "max_spread": m.cfg.rewards_max_spread_px / 100,
        },
        "is_50_50_outcome": False,
        "tokens": [
            {"token_id": m.yes, "outcome": m.cfg.outcomes[0], "price": round(yes_px, 4), "winner": False},
            {
                "token_id": m.no,
                "outcome": m.cfg.outcomes[1],
                "price": round(1 - yes_px, 4),
                "winner": False,
            },
        ],
        "tags": list(m.cfg.tags),
    }


def reject_reply(message: str, http_status: int) -> PlaceResult:
    """An order refused with ``message``: ``success: false``, or ``{"error"}`` when ``http_status`` is 400."""
    status = http_status
    return PlaceResult(
        reply={
            "success": False,
            "errorMsg": message,
            "orderID": "",
            "status": "",
            "makingAmount": "",
            "takingAmount": "",
            "transactionsHashes": [],
            "tradeIDs": [],
        },
        http_status=status,
    )


def order_json(rec: OrderRecord) -> dict[str, Any]:
    """An order as ``/data/orders`` and the user channel's ``order`` event carry it."""
    m = rec.market
    return {
        "id": rec.id,
        "status": rec.status,
        "owner": rec.api_key,
        "maker_address": rec.maker_address,
        "market": m.market,
        "asset_id": m.token(rec.outcome),
        "side": SIDE_NAME[rec.side],
        "original_size": format_usdc6(rec.budget_usdc6) if rec.budget_usdc6 else format_qty(rec.orig_qty),
        "size_matched": format_qty(rec.matched_qty),
        "price": format_px(rec.px),
        "outcome": m.cfg.outcomes[rec.outcome],
        "expiration": str(rec.expiration_s),
        "order_type": rec.order_type,
        "associate_trades": list(rec.trade_ids),
        "created_at": rec.created_s,
    }


def page(items: list[dict[str, Any]], cursor: str, size: int) -> dict[str, Any]:
    """One cursor page of ``items`` (the last page's ``next_cursor`` is ``LTE=``)."""
    start = offset_of(cursor)
    page = items[start : start + size]
    end = start + len(page)
    return {
        "data": page,
        "next_cursor": END_CURSOR if end >= len(items) else cursor_of(end),
        "limit": size,
        "count": len(page),
    }


def trade_json(
    t: TradeRecord, address: str, role: str, party_key: Callable[[str, str], tuple[str, str]]
) -> dict[str, Any]:
    """A trade as ``address`` sees it (``role`` TAKER or MAKER); ``party_key(owner, order_id)`` gives
    the api key and address of an order's owner."""
    m = t.market
    first = t.legs[0]
    taker_key, taker_addr = party_key(first.taker_owner, first.taker_client_id)
    legs = t.legs if role == "TAKER" else tuple(x for x in t.legs if x.maker_owner.lower() == address.lower())
    maker_orders = []
    for leg in legs:
        key, addr = party_key(leg.maker_owner, leg.maker_client_id)
        maker_orders.append(
            {
                "order_id": leg.maker_client_id,
                "owner": key,
                "maker_address": addr,
                "matched_amount": format_qty(leg.qty),
                "price": format_px(leg.maker_px),
                "fee_rate_bps": "0",
                "asset_id": m.token(leg.maker_outcome),
                "outcome": m.cfg.outcomes[leg.maker_outcome],
                "side": SIDE_NAME[leg.maker_side],
            }
        )
    owner_key = taker_key if role == "TAKER" else (maker_orders[0]["owner"] if maker_orders else "")
    match_s = str(t.match_ns // NS_PER_S)
    return {
        "id": t.id,
        "taker_order_id": first.taker_client_id,
        "market": m.market,
        "asset_id": m.token(first.taker_outcome),
        "side": SIDE_NAME[first.taker_side],
        "size": format_qty(t.qty),
        "fee_rate_bps": str(m.cfg.fee_rate_ppm // 100),
        "price": format_px(first.taker_px),
        "status": t.status,
        "match_time": match_s,
        "last_update": str(t.last_update_s),
        "outcome": m.cfg.outcomes[first.taker_outcome],
        "bucket_index": 0,
        "owner": owner_key,
        "trade_owner": owner_key,
        "maker_address": taker_addr
        if role == "TAKER"
        else (maker_orders[0]["maker_address"] if maker_orders else address),
        "transaction_hash": t.tx_hash,
        "trader_side": role,
        "maker_orders": maker_orders,
    }
