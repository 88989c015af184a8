"""Liquidity-rewards reads through the venue's official client, for live reward tracking (``app.rewards``).

``VenueRewards`` wraps the same ``polymarket.SecureClient`` the gateway uses (its sync client is safe
to share; these calls run on the tracker's thread, never on the gateway's or the market actors'):

* ``resting()``: our open orders in our markets (``list_open_orders``: ``GET /data/orders``), each
  with its venue id, as ``core.inventory.OrderLike`` at its unfilled size;
* ``scoring(ids)``: ``get_orders_scoring`` (``POST /orders-scoring``) in batches of
  ``MAX_SCORING_BATCH`` ids;
* ``books(markets)``: the YES books (``get_order_books``: ``POST /books``), levels in Px and Qty;
* ``earnings(day)``: what the venue reports we earned on a UTC day per market
  (``list_user_earnings_for_day``: ``GET /rewards/user``), in micro-USDC.

None of these endpoints is in the per-signer order and cancel buckets the gateway's rate limiter
models. Every failure is raised as an ``errors.PolymarketError`` (``RateLimited`` for a 429, with the
venue's Retry-After); the tracker logs it and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from adapters.polymarket.clob_port import MAX_PAGES, venue_order_view
from adapters.polymarket.errors import BadResponse, PolymarketError, to_polymarket_error
from adapters.polymarket.parse import AssetMap
from core.inventory import OrderLike
from core.markets import MarketInfo
from core.units import PX_ONE, QTY_ONE, USDC6_ONE, Px, Qty

log = logging.getLogger(__name__)

__all__ = ["MAX_BOOKS_BATCH", "MAX_SCORING_BATCH", "RestingOrder", "VenueRewards"]

#: Ids per ``POST /orders-scoring`` (the venue documents no limit; this stays well inside any).
MAX_SCORING_BATCH: Final = 100
#: Tokens per ``POST /books``.
MAX_BOOKS_BATCH: Final = 100

#: ``(venue order id, market, (outcome, side, own price, unfilled size))``.
RestingOrder = tuple[str, str, OrderLike]
Levels = tuple[tuple[Px, Qty], ...]


class VenueRewards:
    """The reward-tracking reads of one live venue connection (see the module docstring)."""

    def __init__(self, client: Any, markets: Iterable[MarketInfo]) -> None:
        self._client = client
        self._markets = list(markets)
        self._assets = AssetMap.from_markets(self._markets)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PolymarketError:
            raise
        except Exception as exc:
            raise to_polymarket_error(exc) from exc

    def _items(self, listing: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
        pages = iter(self._call(listing, **kwargs))
        end = object()
        for _ in range(MAX_PAGES):
            page = self._call(next, pages, end)
            if page is end:
                return
            yield from page.items
        raise BadResponse(f"more than {MAX_PAGES} pages")

    def resting(self) -> list[RestingOrder]:
        """Our open orders in our markets, at their unfilled size (unreadable rows are left out)."""
        out: list[RestingOrder] = []
        for row in self._items(self._client.list_open_orders):
            o = venue_order_view(row, self._assets)
            if o is None or o.matched_qty < 0 or o.original_qty - o.matched_qty <= 0:
                continue
            out.append((o.order_id, o.market, (o.outcome, o.side, o.px, o.original_qty - o.matched_qty)))
        return out

    def scoring(self, order_ids: Sequence[str]) -> dict[str, bool]:
        """``{id: scoring}`` from the venue, ``MAX_SCORING_BATCH`` ids a request."""
        out: dict[str, bool] = {}
        ids = list(order_ids)
        for i in range(0, len(ids), MAX_SCORING_BATCH):
            reply = self._call(self._client.get_orders_scoring, order_ids=ids[i : i + MAX_SCORING_BATCH])
            out.update({str(k): bool(v) for k, v in dict(reply).items()})
        return out

    def books(self, markets: Sequence[MarketInfo]) -> dict[str, tuple[Levels, Levels]]:
        """Each market's YES book as the venue shows it now: ``{market: (bids, asks)}``, best first."""
        by_token = {m.yes_token: m.market for m in markets}
        tokens = list(by_token)
        out: dict[str, tuple[Levels, Levels]] = {}
        for i in range(0, len(tokens), MAX_BOOKS_BATCH):
            for book in self._call(self._client.get_order_books, token_ids=tokens[i : i + MAX_BOOKS_BATCH]):
                market = by_token.get(str(book.asset_id))
                if market is not None:
                    bids, asks = _levels(book.bids), _levels(book.asks)
                    out[market] = (tuple(sorted(bids, reverse=True)), tuple(sorted(asks)))
        return out

    def earnings(self, day: str) -> dict[str, int]:
        """What the venue reports we earned on ``day`` (``YYYY-MM-DD``, UTC), per market, in micro-USDC."""
        ours = {m.market.lower(): m.market for m in self._markets}
        out: dict[str, int] = {}
        for e in self._items(self._client.list_user_earnings_for_day, date=day):
            market = ours.get(str(e.condition_id).lower())
            if market is not None:
                out[market] = out.get(market, 0) + _usdc6(e.earnings, e.asset_rate)
        return out


def _levels(levels: Iterable[Any]) -> tuple[tuple[Px, Qty], ...]:
    out: list[tuple[Px, Qty]] = []
    for lv in levels:
        try:
            px = int(Decimal(lv.price) * PX_ONE)
            qty = int(Decimal(lv.size) * QTY_ONE)
        except (InvalidOperation, ValueError, TypeError):
            raise BadResponse(f"book level {lv!r} is not a price and a size") from None
        if 0 < px < PX_ONE and qty > 0:
            out.append((px, qty))
    return tuple(out)


def _usdc6(amount: Any, rate: Any) -> int:
    # An amount of the reward asset in micro-USDC (its ``asset_rate``: 1 for pUSD), floored.
    try:
        value = Decimal(amount) * Decimal(1 if rate is None else rate) * USDC6_ONE
    except (InvalidOperation, ValueError, TypeError):
        raise BadResponse(f"earnings {amount!r} is not an amount") from None
    if not value.is_finite():
        raise BadResponse(f"earnings {amount!r} is not an amount")
    return int(value)
