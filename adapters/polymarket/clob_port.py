"""The live exchange port: ``ClobExchangePort`` → ``OrderGatewayActor`` → ``PolymarketVenue`` → client.

* ``ClobExchangePort`` implements ``core.ports.ExchangePort`` for market actors: ``submit`` only
  tells the gateway (never blocks on the network).
* ``PolymarketVenue`` implements the gateway's ``Venue`` protocol over a ``ClobLike`` (the real
  ``py_clob_client_v2.ClobClient``, or a fake in tests): signing with our per-market tick and
  neg-risk flag (``orders.sign_place``: no tick/neg-risk/version lookups), ``POST /orders`` batches,
  ``DELETE /orders``, ``DELETE /cancel-market-orders``, ``POST /v1/heartbeats`` with the id chained
  (a stale id is replaced by the one the venue returns), ``GET /data/orders`` (every market),
  ``GET /data/trades`` (backfills), ``GET /data/order/{id}`` and the Data API's ``/v2/positions``
  (``DataApiPositions``, over httpx). Replies go through ``errors.check_*``; exceptions are mapped
  onto ``errors`` and classified for the gateway; the ``Poly-RateLimit-*`` headers of every reply are
  read by the ``RetryAfterProbe`` hook and handed to the gateway's rate limiter.
* ``UserChannelBridge`` turns parsed user-channel events into gateway messages (a trade becomes the
  ledger's ``VenueTrade``), and every (re)subscription into a ``Reconcile``.
* ``app.gateway.start_gateway`` wires the three with the gateway actor (the composition root's part:
  this module implements the gateway's ports and never imports ``actors``).

Only this module and ``orders``/``errors``/``secrets`` know the client library: moving to another
client changes them, not the gateway or the ledger. Blocking calls happen on the gateway's thread
(and ``heartbeat`` on the heartbeat thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final, Protocol

import httpx
import msgspec
import pykka
from py_clob_client_v2.clob_types import OrderMarketCancelParams, PostOrdersV2Args, TradeParams
from py_clob_client_v2.http_helpers import helpers as clob_http

from adapters.polymarket.errors import (
    BadResponse,
    PolymarketError,
    RateLimited,
    RequestRejected,
    RetryAfterProbe,
    TransportFailed,
    check_batch_response,
    check_cancel_response,
    check_response,
    error_message,
    is_ambiguous,
    parse_retry_after,
    should_retry,
    to_polymarket_error,
)
from adapters.polymarket.orders import POLYGON, OrderBuilderLike, order_id_of, sign_place
from adapters.polymarket.parse import (
    AssetMap,
    PayloadError,
    UserEvent,
    VenueOrderUpdate,
    parse_side,
    parse_trade,
)
from adapters.polymarket.parse import VenueTrade as ParsedTrade
from adapters.polymarket.schemas import WireTrade
from core.ledger import TradeLeg, VenueOrderView, VenuePosition, VenueTrade
from core.markets import MarketInfo
from core.messages import CancelAll, Command, Place, Reconcile, Submit, UserOrderUpdate
from core.ports import (
    CancelResult,
    Failure,
    PlaceResult,
    PreparedOrder,
    RateLimitInfo,
    VenueOrderStatus,
)
from core.units import NS_PER_S, PX_ONE, QTY_ONE, Outcome, Px, Side, UnitError, parse_px, parse_qty

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_CANCEL_BATCH",
    "MAX_POST_BATCH",
    "ClobExchangePort",
    "ClobLike",
    "DataApiPositions",
    "PolymarketVenue",
    "PositionsSource",
    "UserChannelBridge",
    "ledger_trade",
    "positions_from_rows",
    "sdk_retry_after_probe",
    "trades_from_rows",
    "user_event_messages",
]

#: ``POST /orders`` takes at most 15 orders (raised from 5 on 2025-08-21).
MAX_POST_BATCH: Final = 15
#: ``DELETE /orders`` takes at most 1000 ids (since 2026-06-15).
MAX_CANCEL_BATCH: Final = 1000
STATUS_NOT_FOUND: Final = 404


class ClobLike(Protocol):
    """The part of ``py_clob_client_v2.ClobClient`` the gateway uses (L2 auth already set)."""

    builder: OrderBuilderLike

    def post_orders(self, args: list[Any], post_only: bool = False, defer_exec: bool = False) -> Any:
        """``POST /orders``: one reply per order."""
        ...

    def cancel_orders(self, order_hashes: list[str]) -> Any:
        """``DELETE /orders``."""
        ...

    def cancel_market_orders(self, payload: Any) -> Any:
        """``DELETE /cancel-market-orders``."""
        ...

    def post_heartbeat(self, heartbeat_id: str = "") -> Any:
        """``POST /v1/heartbeats``."""
        ...

    def get_open_orders(
        self, params: Any = None, only_first_page: bool = False, next_cursor: str | None = None
    ) -> Any:
        """``GET /data/orders``, every page."""
        ...

    def get_trades(
        self, params: Any = None, only_first_page: bool = False, next_cursor: str | None = None
    ) -> Any:
        """``GET /data/trades``, every page."""
        ...

    def get_order(self, order_id: str) -> Any:
        """``GET /data/order/{id}``."""
        ...


class PositionsSource(Protocol):
    """Where the wallet's positions are listed (the Data API: ``DataApiPositions``)."""

    def rows(self) -> list[Any]:
        """Every position row (raises ``PolymarketError``)."""
        ...


class _Signed(msgspec.Struct, frozen=True):
    # What PreparedOrder.payload carries: the client's signed order and its order type.
    order: Any
    order_type: str


class PolymarketVenue:
    """The gateway's ``Venue`` over a ``ClobLike``; see the module docstring."""

    max_batch = MAX_POST_BATCH
    max_cancel_batch = MAX_CANCEL_BATCH

    def __init__(
        self,
        clob: ClobLike,
        assets: AssetMap,
        *,
        chain_id: int = POLYGON,
        retry_after: RetryAfterProbe | None = None,
        now_s: Callable[[], float] = time.time,
        positions: PositionsSource | None = None,
    ) -> None:
        """Wrap ``clob``; ``assets`` maps token ids of the markets we trade.

        Args:
            clob: The client (its ``builder`` signs; its HTTP methods are called on the gateway thread).
            assets: Token id → (market, outcome), to read listings and trades.
            chain_id: Signing domain (137: Polygon).
            retry_after: Reads Retry-After and the rate-limit headers of replies
                (``sdk_retry_after_probe()`` for the real client); None: not available.
            now_s: Wall clock for HTTP-date Retry-After values.
            positions: The wallet's positions (Data API); None: the venue offers no listing.
        """
        self._clob = clob
        self._assets = assets
        self._chain_id = chain_id
        self._probe = retry_after
        self._now_s = now_s
        self._positions = positions

    def add_market(self, info: MarketInfo) -> None:
        """Follow the tokens of one more market."""
        self._assets = AssetMap({**dict(self._assets.items()), **dict(AssetMap.from_markets([info]).items())})

    # --- Venue -------------------------------------------------------------------------------------

    def prepare(self, place: Place, info: MarketInfo, tick_px: Px) -> PreparedOrder:
        """Sign locally and compute the venue id; raises ``OrderRefused`` (e.g. ``AmountMismatch``)."""
        token = info.token(place.outcome)
        signed = sign_place(self._clob.builder, place, token, tick_px, info.neg_risk)
        return PreparedOrder(
            client_id=place.client_id,
            order_id=order_id_of(signed, info.neg_risk, self._chain_id),
            payload=_Signed(signed, place.tif),
        )

    def post(self, orders: Sequence[PreparedOrder], post_only: bool) -> list[PlaceResult]:
        """One ``POST /orders``; ``success: true`` with an empty ``orderID`` is a rejection."""
        args = [PostOrdersV2Args(order=p.payload.order, orderType=p.payload.order_type) for p in orders]
        # defer_exec=False: post-only orders never trade on arrival, so the client never polls trades.
        resp = self._call(self._clob.post_orders, args, post_only)
        replies = check_batch_response(resp, len(orders))
        return [
            PlaceResult(
                client_id=p.client_id,
                order_id=r.order_id if r.ok else "",
                error=r.error,
                unknown=r.unknown,
                status=r.status or "live",
            )
            for p, r in zip(orders, replies, strict=True)
        ]

    def cancel(self, order_ids: Sequence[str]) -> CancelResult:
        """One ``DELETE /orders``."""
        return _cancel_result(self._call(self._clob.cancel_orders, list(order_ids)))

    def cancel_market(self, market: str) -> CancelResult:
        """``DELETE /cancel-market-orders`` for one condition id."""
        return _cancel_result(
            self._call(self._clob.cancel_market_orders, OrderMarketCancelParams(market=market))
        )

    def heartbeat(self, heartbeat_id: str) -> str:
        """Post a heartbeat chained on ``heartbeat_id``; a stale id is replaced by the venue's current one."""
        try:
            resp = self._clob.post_heartbeat(heartbeat_id)
        except Exception as exc:
            current = _current_heartbeat_id(exc)
            if current is None or current == heartbeat_id:
                raise self._error(exc) from None
            logger.info("heartbeat id was stale; continuing the venue's chain")
            resp = self._call(self._clob.post_heartbeat, current)
        return str(check_response(resp).get("heartbeat_id") or "")

    def open_orders(self) -> list[VenueOrderView]:
        """Every open order of this API key, on any market (ours to manage even where we do not trade)."""
        rows = self._call(self._clob.get_open_orders)
        if not isinstance(rows, list):
            check_response(rows)
            raise BadResponse(f"GET /data/orders: expected a list, got {type(rows).__name__}")
        out: list[VenueOrderView] = []
        for row in rows:
            order = _venue_order(row, self._assets)
            if order is not None:
                out.append(order)
        return out

    def trades(self, after_ns: int) -> list[VenueTrade]:
        """``GET /data/trades`` matched from ``after_ns`` on (whole seconds, one second early), every page."""
        params = TradeParams(after=max(after_ns // NS_PER_S - 1, 0)) if after_ns > 0 else None
        rows = self._call(self._clob.get_trades, params)
        if not isinstance(rows, list):
            check_response(rows)
            raise BadResponse(f"GET /data/trades: expected a list, got {type(rows).__name__}")
        return trades_from_rows(rows, self._assets)

    def order(self, order_id: str) -> VenueOrderStatus | None:
        """``GET /data/order/{id}``; None when the venue says it has no such order (404 or an empty reply)."""
        try:
            row = self._call(self._clob.get_order, order_id)
        except RequestRejected as exc:
            if exc.status_code == STATUS_NOT_FOUND:
                return None
            raise
        if not row:
            return None
        body = check_response(row)
        return VenueOrderStatus(
            order_id=str(body.get("id") or order_id), status=str(body.get("status") or "")
        )

    def positions(self) -> list[VenuePosition] | None:
        """The wallet's positions in our markets (Data API); None when there is no listing (404)."""
        if self._positions is None:
            return None
        try:
            rows = self._positions.rows()
        except RequestRejected as exc:
            if exc.status_code == STATUS_NOT_FOUND:
                logger.warning("the Data API has no positions endpoint (404): %s", exc)
                return None
            raise
        return positions_from_rows(rows, self._assets)

    def rate_limit(self) -> RateLimitInfo | None:
        """The ``Poly-RateLimit-*`` headers of the last reply on this thread (then forgotten)."""
        h = self._probe.take_rate_limit() if self._probe is not None else None
        if h is None:
            return None
        return RateLimitInfo(remaining=h.remaining, reset_s=h.reset_s, tier=h.tier, warning=h.warning)

    def describe_failure(self, exc: Exception) -> Failure:
        """Retry on 429/425/5xx/no reply; ambiguous: no reply, a 5xx, or a 429 without the venue's headers."""
        err = self._error(exc)
        limited = isinstance(err, RateLimited)
        return Failure(
            reason=f"{type(err).__name__}: {err}",
            retry=should_retry(err),
            ambiguous=is_ambiguous(err) or (limited and not getattr(err, "definite", True)),
            retry_after_s=getattr(err, "retry_after_s", None),
            rate_limited=limited,
            not_found=getattr(err, "status_code", None) == STATUS_NOT_FOUND,
        )

    # --- helpers -----------------------------------------------------------------------------------

    def _error(self, exc: BaseException) -> PolymarketError:
        if isinstance(exc, PolymarketError):
            return exc
        retry_after = self._probe.take(self._now_s()) if self._probe is not None else None
        err = to_polymarket_error(exc, retry_after)
        if isinstance(err, RateLimited):
            # Classified now, while the probe still holds this reply's headers.
            err.definite = self._probe is not None and self._probe.peek_rate_limit() is not None
        return err

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except PolymarketError:
            raise
        except Exception as exc:
            raise self._error(exc) from exc


def _cancel_result(resp: object) -> CancelResult:
    r = check_cancel_response(resp)
    return CancelResult(canceled=r.canceled, not_canceled=r.not_canceled)


def _current_heartbeat_id(exc: BaseException) -> str | None:
    # A stale id: 400 {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "<current>"}.
    body = getattr(exc, "error_msg", None)
    if getattr(exc, "status_code", None) == 400 and isinstance(body, dict):
        current = body.get("heartbeat_id")
        if isinstance(current, str) and "heartbeat" in error_message(body).lower():
            return current
    return None


def _venue_order(row: object, assets: AssetMap) -> VenueOrderView | None:
    if not isinstance(row, dict):
        logger.warning("GET /data/orders: skipped a row that is not an object")
        return None
    order_id = str(row.get("id") or "")
    if not order_id:
        return None  # no id: nothing we could cancel
    asset = str(row.get("asset_id", ""))
    key = assets.get(asset)
    if key is None:
        # A token we do not trade: still our order, so it is listed (and cancelled), under a market
        # name that can never be one we trade.
        return _unusable(order_id, (f"{row.get('market') or '?'} (token {asset[:16]})", Outcome.YES))
    try:
        side = parse_side(str(row.get("side", "")))
        px = _row_value(parse_px, row, "price", "")
        original = _row_value(parse_qty, row, "original_size", "")
        matched = _row_value(parse_qty, row, "size_matched", "0")
    except PayloadError as exc:
        logger.warning("GET /data/orders: order %s has unusable fields: %s", order_id, exc)
        return _unusable(order_id, key)
    return VenueOrderView(
        order_id=order_id,
        market=key[0],
        outcome=key[1],
        side=side,
        px=px,
        original_qty=original,
        matched_qty=matched,
    )


def _row_value(parse: Callable[[str], int], row: dict[Any, Any], field: str, default: str) -> int:
    value = row.get(field)
    try:
        return parse(default if value is None or value == "" else str(value))
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None


def _unusable(order_id: str, key: tuple[str, Outcome]) -> VenueOrderView:
    # A bad row spoils only itself: it is still listed (an open order is never declared gone because
    # one of its fields is unreadable), with matched_qty=-1 saying its sizes cannot be used.
    return VenueOrderView(
        order_id=order_id,
        market=key[0],
        outcome=key[1],
        side=Side.BUY,
        px=0,
        original_qty=0,
        matched_qty=-1,
    )


# --- trades and positions ------------------------------------------------------------------------------


def ledger_trade(ev: ParsedTrade) -> VenueTrade:
    """A parsed venue trade as the ledger takes it: the legs that may be ours, each on its own token.

    Every maker leg (the ledger keeps those whose order ids are ours), and the taker order's when we
    were the taker. The trade's time is its match time (backfills ask for trades by it).
    """
    legs = [
        TradeLeg(
            order_id=m.order_id,
            outcome=m.outcome,
            side=m.side,
            px=m.px,
            qty=m.qty,
            liquidity="maker",
            fee_rate_bps=m.fee_rate_bps,
        )
        for m in ev.maker_fills
    ]
    if ev.trader_side == "TAKER":
        legs.append(
            TradeLeg(
                order_id=ev.taker_order_id,
                outcome=ev.outcome,
                side=ev.side,
                px=ev.px,
                qty=ev.qty,
                liquidity="taker",
                fee_rate_bps=ev.fee_rate_bps,
            )
        )
    return VenueTrade(
        trade_id=ev.trade_id,
        market=ev.market,
        status=ev.status,
        ts_ns=ev.match_ns or ev.ts_ns,
        legs=tuple(legs),
    )


def trades_from_rows(rows: Sequence[object], assets: AssetMap) -> list[VenueTrade]:
    """``GET /data/trades`` rows (the user channel's ``trade`` shape) in our markets, as ledger trades.

    A row that cannot be read is skipped and logged: the periodic position comparison shows what it
    would have changed.
    """
    out: list[VenueTrade] = []
    for row in rows:
        if not isinstance(row, dict):
            logger.warning("GET /data/trades: skipped a row that is not an object")
            continue
        try:
            raw = msgspec.convert({**row, "event_type": "trade"}, WireTrade, strict=False)
            ev = parse_trade(raw, assets)
        except (msgspec.ValidationError, PayloadError) as exc:
            logger.warning("GET /data/trades: skipped trade %s: %s", str(row.get("id", "?"))[:80], exc)
            continue
        if ev is not None:
            out.append(ledger_trade(ev))
    return out


_QTY_QUANTUM: Final = Decimal("0.000001")
_PX_QUANTUM: Final = Decimal("0.0001")


def positions_from_rows(rows: Sequence[object], assets: AssetMap) -> list[VenuePosition]:
    """Data API ``/v2/positions`` rows of our markets as ``VenuePosition``s (other markets are left out).

    Sizes are exact to the 1e-6 share; the average price is rounded to 1e-4 (it is a cost basis, not
    an order price). A row of one of our markets that cannot be read raises ``BadResponse``: a
    position believed zero is exactly the error this listing exists to prevent.
    """
    out: list[VenuePosition] = []
    for row in rows:
        if not isinstance(row, dict):
            raise BadResponse("positions: a row is not an object")
        token = str(row.get("token_id") or row.get("asset") or row.get("asset_id") or "")
        key = assets.get(token)
        if key is None:
            continue
        size = row.get("current_size", row.get("size"))
        avg = row.get("avg_price", row.get("avgPrice", "0"))
        try:
            qty_d = Decimal(str(size)).quantize(_QTY_QUANTUM, rounding=ROUND_HALF_EVEN)
            px_d = Decimal(str(avg if avg is not None else "0")).quantize(
                _PX_QUANTUM, rounding=ROUND_HALF_EVEN
            )
            if not qty_d.is_finite() or not px_d.is_finite() or abs(qty_d) > _MAX_SHARES:
                raise InvalidOperation
        except (InvalidOperation, ValueError) as exc:
            raise BadResponse(
                f"positions: token {token[:20]}: unusable size {size!r} or price {avg!r}"
            ) from exc
        qty = int(qty_d * QTY_ONE)
        px = min(max(int(px_d * PX_ONE), 0), PX_ONE)
        out.append(VenuePosition(market=key[0], outcome=key[1], qty=max(qty, 0), avg_px=px))
    return out


_MAX_SHARES: Final = Decimal(10) ** 15


class DataApiPositions:
    """The wallet's positions from the Data API: ``GET {url}/v2/positions?user=`` (keyset pages)."""

    def __init__(
        self,
        url: str,
        wallet: str,
        *,
        http: httpx.Client | None = None,
        page_size: int = 500,
        max_pages: int = 200,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        """``url``: the Data API base (``https://data-api.polymarket.com``, the emulator's ``/data-api``)."""
        self.url = url.rstrip("/")
        self.wallet = wallet
        self._http = http or httpx.Client(timeout=10.0)
        self._page_size = page_size
        self._max_pages = max_pages
        self._now_s = now_s

    def rows(self) -> list[Any]:
        """Every row, following ``pagination.next_cursor``."""
        out: list[Any] = []
        cursor: str | None = None
        for _ in range(self._max_pages):
            params: dict[str, str | int] = {"user": self.wallet, "limit": self._page_size}
            if cursor:
                params["cursor"] = cursor
            try:
                resp = self._http.get(f"{self.url}/v2/positions", params=params)
            except httpx.HTTPError as exc:
                raise TransportFailed(f"{type(exc).__name__}: {exc}") from None
            if resp.status_code != 200:
                retry = parse_retry_after(resp.headers.get("retry-after"), self._now_s())
                raise to_polymarket_error(_HttpStatus(resp.status_code, resp.text[:300]), retry)
            try:
                body = resp.json()
            except ValueError:
                raise BadResponse(f"positions: not JSON: {resp.text[:200]!r}") from None
            if isinstance(body, list):
                return out + body  # an unpaged listing
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise BadResponse(f"positions: expected {{data, pagination}}, got {str(body)[:200]}")
            out += body["data"]
            page = body.get("pagination")
            cursor = page.get("next_cursor") if isinstance(page, dict) and page.get("has_more") else None
            if not cursor:
                return out
        raise BadResponse(f"positions: more than {self._max_pages} pages")


class _HttpStatus(Exception):
    # A non-200 reply in the shape ``to_polymarket_error`` reads (status_code, error_msg).
    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(body)
        self.status_code = status_code
        self.error_msg = body


# --- user channel → gateway ----------------------------------------------------------------------------


def user_event_messages(ev: UserEvent) -> list[VenueTrade | UserOrderUpdate]:
    """Gateway messages for one user-channel event: a ledger trade, or an order update."""
    match ev:
        case ParsedTrade():
            return [ledger_trade(ev)]
        case VenueOrderUpdate():
            return [
                UserOrderUpdate(
                    order_id=ev.order_id, kind=ev.type, status=ev.status, matched_qty=ev.matched_qty
                )
            ]
        case _:
            return []


class UserChannelBridge:
    """``UserWsClient`` callbacks that tell the gateway (thread-safe: ``tell`` only)."""

    def __init__(self, gateway: pykka.ActorRef[Any]) -> None:
        """Tell ``gateway`` what the user channel says."""
        self._gateway = gateway

    def on_event(self, ev: UserEvent) -> None:
        """One parsed user-channel event."""
        for msg in user_event_messages(ev):
            self._gateway.tell(msg)

    def on_reconnect(self) -> None:
        """Events during the outage are lost: ask for a REST reconcile."""
        self._gateway.tell(Reconcile("user channel reconnected"))

    def on_subscribed(self) -> None:
        """Every subscription (the first too): what happened before it was not heard, so reconcile."""
        self._gateway.tell(Reconcile("user channel subscribed"))


# --- the port --------------------------------------------------------------------------------------------


class ClobExchangePort:
    """``ExchangePort`` for the live venue: hands commands to the gateway and returns at once."""

    def __init__(self, gateway: pykka.ActorRef[Any]) -> None:
        """Send to ``gateway`` (an ``OrderGatewayActor``)."""
        self._gateway = gateway

    def submit(self, commands: Sequence[Command]) -> None:
        """Tell the gateway; never blocks on the network."""
        if commands:
            self._gateway.tell(Submit(tuple(commands)))

    def cancel_all(self, market: str) -> None:
        """Best effort (the gateway may be gone when an actor fails during shutdown)."""
        try:
            self._gateway.tell(Submit((CancelAll(market=market),)))
        except pykka.ActorDeadError:
            logger.warning("%s: cancel_all after the gateway stopped", market)


_SDK_PROBE = RetryAfterProbe()


def sdk_retry_after_probe() -> RetryAfterProbe:
    """The probe installed on the client's module-level httpx client (shared by every ``ClobClient``)."""
    _SDK_PROBE.install(clob_http._http_client)
    return _SDK_PROBE
