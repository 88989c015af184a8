"""Gamma-shaped market and event objects for the emulator's own markets.

Served under ``/gamma`` (``GET /gamma/markets``, ``GET /gamma/events``) so that ``refresh-markets
--gamma-url http://HOST:PORT/gamma`` runs against the emulator. As the real Gamma serves them,
``outcomes``, ``outcomePrices`` and ``clobTokenIds`` are JSON-encoded strings, ``volume`` and
``liquidity`` are strings with numeric twins, and ``orderPriceMinTickSize`` is a number. A neg-risk
market carries its event's ``negRiskMarketID``; the markets of one neg-risk event share one event.
Every market says its protocol in ``version``: a ``"v1"`` market lists its CTF token ids in
``clobTokenIds``, a ``"v2"`` market its position ids in ``positionIds`` (a plain array of decimal
strings) and has no ``clobTokenIds``.

Besides ``GET /markets`` (offset pages), the official client's paths are served: ``GET
/markets/keyset`` (``{"markets", "next_cursor"}``, cursor ``after_cursor``) and ``GET
/markets/slug/<slug>``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from core.units import PX_ONE, Px, Qty, format_px, format_qty

__all__ = [
    "GammaMarket",
    "event_json",
    "events_json",
    "filter_markets",
    "iso_utc",
    "keyset_page",
    "market_json",
]

_DEFAULT_PAGE: Final = 100
_KEYSET_MAX: Final = 1000


class GammaMarket(msgspec.Struct, frozen=True, kw_only=True):
    """What Gamma says about one emulated market (prices in Px, sizes in Qty)."""

    gamma_id: str
    event_id: str
    version: str
    slug: str
    question: str
    condition_id: str
    token_ids: tuple[str, str]
    outcomes: tuple[str, str]
    tick_px: Px
    min_qty: Qty
    neg_risk: bool
    neg_risk_market_id: str
    fee_rate_ppm: int
    maker_rebate_ppm: int
    best_bid_px: Px | None
    best_ask_px: Px | None
    last_trade_px: Px | None
    liquidity_usdc: float
    volume_24h: float
    start_ns: int
    end_ns: int
    tags: tuple[str, ...]
    category: str
    rewards_min_qty: Qty
    rewards_max_spread_px: Px
    rewards_daily_usdc6: int
    closed: bool = False


def iso_utc(ns: int) -> str:
    """Unix ns as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1_000)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def _num(px: Px) -> float:
    return float(format_px(px))


def _tag_list(m: GammaMarket) -> list[dict[str, Any]]:
    return [
        {"id": str(1000 + i), "label": t.replace("-", " ").title(), "slug": t} for i, t in enumerate(m.tags)
    ]


def event_json(markets: Sequence[GammaMarket]) -> dict[str, Any]:
    """The event of ``markets`` (one event id: a market of its own, or the markets of a neg-risk event).

    The event takes its slug, title and tags from its first market.
    """
    m = markets[0]
    out: dict[str, Any] = {
        "id": m.event_id,
        "ticker": m.slug,
        "slug": m.slug,
        "title": m.question,
        "active": True,
        "closed": all(x.closed for x in markets),
        "archived": False,
        "negRisk": m.neg_risk,
        "tags": _tag_list(m),
        "category": m.category,
        "markets": [{"id": x.gamma_id, "conditionId": x.condition_id, "slug": x.slug} for x in markets],
    }
    if m.neg_risk_market_id:
        out["negRiskMarketID"] = m.neg_risk_market_id
    return out


def events_json(markets: Sequence[GammaMarket]) -> list[dict[str, Any]]:
    """Every event of ``markets``, in the order of their first market."""
    groups: dict[str, list[GammaMarket]] = {}
    for m in markets:
        groups.setdefault(m.event_id, []).append(m)
    return [event_json(g) for g in groups.values()]


def market_json(m: GammaMarket) -> dict[str, Any]:
    """One Gamma ``/markets`` object."""
    mid: float | None = None
    if m.best_bid_px is not None and m.best_ask_px is not None:
        mid = (m.best_bid_px + m.best_ask_px) / 2 / PX_ONE
    yes_px = mid if mid is not None else (m.last_trade_px or PX_ONE // 2) / PX_ONE
    prices = [f"{yes_px:.4f}".rstrip("0").rstrip("."), f"{1 - yes_px:.4f}".rstrip("0").rstrip(".")]
    obj: dict[str, Any] = {
        "id": m.gamma_id,
        "version": m.version,
        "question": m.question,
        "conditionId": m.condition_id,
        "questionID": "0x" + m.condition_id[2:][::-1],
        "slug": m.slug,
        "description": f"Emulated market {m.slug}.",
        "outcomes": json.dumps(list(m.outcomes)),
        "outcomePrices": json.dumps(prices),
        "active": True,
        "closed": m.closed,
        "archived": False,
        "acceptingOrders": not m.closed,
        "acceptingOrdersTimestamp": iso_utc(m.start_ns),
        "enableOrderBook": True,
        "orderPriceMinTickSize": _num(m.tick_px),
        "orderMinSize": float(format_qty(m.min_qty)),
        "negRisk": m.neg_risk,
        "negRiskMarketID": m.neg_risk_market_id,
        "volume": f"{m.volume_24h * 7:.2f}",
        "volumeNum": m.volume_24h * 7,
        "volume24hr": m.volume_24h,
        "volume24hrClob": m.volume_24h,
        "volume1wk": m.volume_24h * 7,
        "liquidity": f"{m.liquidity_usdc:.2f}",
        "liquidityNum": m.liquidity_usdc,
        "liquidityClob": m.liquidity_usdc,
        "startDate": iso_utc(m.start_ns),
        "endDate": iso_utc(m.end_ns),
        "endDateIso": iso_utc(m.end_ns)[:10],
        "rewardsMinSize": float(format_qty(m.rewards_min_qty)),
        "rewardsMaxSpread": m.rewards_max_spread_px / 100,
        "clobRewards": (
            [
                {
                    "id": m.gamma_id,
                    "conditionId": m.condition_id,
                    "assetAddress": "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB",
                    "rewardsAmount": 0,
                    "rewardsDailyRate": m.rewards_daily_usdc6 / 1_000_000,
                    "startDate": iso_utc(m.start_ns)[:10],
                    "endDate": "2500-12-31",
                }
            ]
            if m.rewards_daily_usdc6
            else []
        ),
        "feesEnabled": m.fee_rate_ppm > 0,
        "makerBaseFee": 1000 if m.fee_rate_ppm else 0,
        "takerBaseFee": 1000 if m.fee_rate_ppm else 0,
        "category": m.category,
        "tags": _tag_list(m),
        "events": [{"id": m.event_id, "ticker": m.slug, "slug": m.slug, "title": m.question}],
    }
    if m.version == "v2":
        obj["positionIds"] = list(m.token_ids)
    else:
        obj["clobTokenIds"] = json.dumps(list(m.token_ids))
    if m.fee_rate_ppm:
        obj["feeType"] = "emulator_fees"
        obj["feeSchedule"] = {
            "rate": m.fee_rate_ppm / 1_000_000,
            "exponent": 1,
            "takerOnly": True,
            "rebateRate": m.maker_rebate_ppm / 1_000_000,
        }
    if m.best_bid_px is not None:
        obj["bestBid"] = _num(m.best_bid_px)
    if m.best_ask_px is not None:
        obj["bestAsk"] = _num(m.best_ask_px)
    if m.best_bid_px is not None and m.best_ask_px is not None:
        obj["spread"] = _num(m.best_ask_px - m.best_bid_px)
    if m.last_trade_px is not None:
        obj["lastTradePrice"] = _num(m.last_trade_px)
    return obj


def _truthy(values: Sequence[str]) -> bool | None:
    if not values:
        return None
    return values[-1].lower() == "true"


def _select(markets: Sequence[GammaMarket], query: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    # The filters and order shared by both listings.
    out = [market_json(m) for m in markets]
    closed = _truthy(query.get("closed", ()))
    closed = False if closed is None else closed
    out = [o for o in out if o["closed"] == closed]
    if _truthy(query.get("archived", ())) is True or _truthy(query.get("active", ())) is False:
        out = []
    for key, field in (
        ("id", "id"),
        ("slug", "slug"),
        ("condition_ids", "conditionId"),
        ("version", "version"),
    ):
        wanted = set(query.get(key, ()))
        if wanted:
            out = [o for o in out if o[field] in wanted]
    for key in ("clob_token_ids", "position_ids"):
        tokens = set(query.get(key, ()))
        if tokens:
            out = [o for o in out if tokens & set(_asset_ids(o))]
    order = (query.get("order") or [""])[-1]
    if order:
        asc = _truthy(query.get("ascending", ())) is True
        present = sorted(
            (o for o in out if o.get(order) is not None), key=lambda o: o[order], reverse=not asc
        )
        out = present + [o for o in out if o.get(order) is None]
    return out


def _asset_ids(obj: Mapping[str, Any]) -> list[str]:
    if "positionIds" in obj:
        return list(obj["positionIds"])
    return list(json.loads(obj["clobTokenIds"]))


def _limit(query: Mapping[str, Sequence[str]], cap: int) -> int:
    try:
        return max(min(int((query.get("limit") or [str(_DEFAULT_PAGE)])[-1]), cap), 0)
    except ValueError:
        return _DEFAULT_PAGE


def filter_markets(
    markets: Sequence[GammaMarket], query: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]] | None:
    """``GET /markets`` over the emulated markets: filters, order, ``limit``/``offset``.

    Supports ``active``, ``closed``, ``archived``, ``id``, ``slug``, ``condition_ids``, ``clob_token_ids``,
    ``position_ids``, ``version``, ``order`` (``volume24hr``, ``liquidity``, ...), ``ascending``,
    ``limit`` (capped at 100) and ``offset``. Returns None (HTTP 422, as Gamma does) when ``offset`` is
    past the end.
    """
    out = _select(markets, query)
    limit = _limit(query, _DEFAULT_PAGE)
    try:
        offset = int((query.get("offset") or ["0"])[-1])
    except ValueError:
        limit, offset = _DEFAULT_PAGE, 0
    if offset and offset >= len(out):
        return None
    return out[offset : offset + limit]


def keyset_page(markets: Sequence[GammaMarket], query: Mapping[str, Sequence[str]]) -> dict[str, Any] | None:
    """``GET /markets/keyset``: the same filters, ``limit`` (up to 1000) and ``after_cursor``.

    Returns ``{"markets": [...], "next_cursor": <opaque>}`` with ``next_cursor`` absent on the last
    page, or None (HTTP 400) for ``offset`` or a cursor this API did not give.
    """
    if query.get("offset"):
        return None
    out = _select(markets, query)
    cursor = (query.get("after_cursor") or [""])[-1]
    start = 0
    if cursor:
        try:
            start = int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("offset:"))
        except ValueError:
            return None
        if start < 0:
            return None
    limit = _limit(query, _KEYSET_MAX)
    page: dict[str, Any] = {"markets": out[start : start + limit]}
    if start + limit < len(out):
        page["next_cursor"] = base64.urlsafe_b64encode(f"offset:{start + limit}".encode()).decode()
    return page
