"""The live exchange port: ``ClobExchangePort`` → ``OrderGatewayActor`` → ``PolymarketVenue`` → client.

* ``ClobExchangePort`` implements ``core.ports.ExchangePort`` for market actors: ``submit`` only
  tells the gateway (never blocks on the network).
* ``PolymarketVenue`` implements the gateway's ``Venue`` protocol over a ``ClobLike`` (the real
  ``py_clob_client_v2.ClobClient``, or a fake in tests): signing with our per-market tick and
  neg-risk flag (``orders.sign_place``: no tick/neg-risk/version lookups), ``POST /orders`` batches,
  ``DELETE /orders``, ``DELETE /cancel-market-orders``, ``POST /v1/heartbeats`` with the id chained
  (a stale id is replaced by the one the venue returns) and ``GET /data/orders``. Replies go
  through ``errors.check_*``; exceptions are mapped onto ``errors`` and classified for the gateway.
* ``UserChannelBridge`` turns parsed user-channel events (``parse.VenueTrade``/``VenueOrderUpdate``)
  into gateway messages, and a reconnect into a ``Reconcile``.
* ``start_gateway`` wires the three (the composition root calls it).

Blocking calls happen only on the gateway's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Protocol

import msgspec
import pykka
from py_clob_client_v2.clob_types import OrderMarketCancelParams, PostOrdersV2Args
from py_clob_client_v2.http_helpers import helpers as clob_http

from actors.gateway import (
    CancelResult,
    Failure,
    GatewayConfig,
    OrderGatewayActor,
    PlaceResult,
    PreparedOrder,
    Reconcile,
    Route,
    Schedule,
    Submit,
    UserFill,
    UserOrderUpdate,
    VenueOrder,
)
from adapters.polymarket.errors import (
    PolymarketError,
    RetryAfterProbe,
    check_batch_response,
    check_cancel_response,
    check_response,
    error_message,
    is_ambiguous,
    should_retry,
    to_polymarket_error,
)
from adapters.polymarket.orders import POLYGON, OrderBuilderLike, order_id_of, sign_place
from adapters.polymarket.parse import (
    AssetMap,
    PayloadError,
    UserEvent,
    VenueOrderUpdate,
    VenueTrade,
    parse_side,
)
from core.markets import MarketInfo
from core.messages import CancelAll, Command, Place
from core.ports import Clock
from core.units import Outcome, Px, Side, UnitError, parse_px, parse_qty

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_CANCEL_BATCH",
    "MAX_POST_BATCH",
    "ClobExchangePort",
    "ClobLike",
    "PolymarketVenue",
    "UserChannelBridge",
    "sdk_retry_after_probe",
    "start_gateway",
    "user_event_messages",
]

#: ``POST /orders`` takes at most 15 orders (raised from 5 on 2025-08-21).
MAX_POST_BATCH: Final = 15
#: ``DELETE /orders`` takes at most 1000 ids (since 2026-06-15).
MAX_CANCEL_BATCH: Final = 1000


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
    ) -> None:
        """Wrap ``clob``; ``assets`` maps token ids of the markets we trade.

        Args:
            clob: The client (its ``builder`` signs; its HTTP methods are called on the gateway thread).
            assets: Token id → (market, outcome), to read ``GET /data/orders``.
            chain_id: Signing domain (137: Polygon).
            retry_after: Reads Retry-After of failed replies (``sdk_retry_after_probe()`` for the real
                client); None: Retry-After is not available.
            now_s: Wall clock for HTTP-date Retry-After values.
        """
        self._clob = clob
        self._assets = assets
        self._chain_id = chain_id
        self._probe = retry_after
        self._now_s = now_s

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
                client_id=p.client_id, order_id=r.order_id if r.ok else "", error=r.error, unknown=r.unknown
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

    def open_orders(self) -> list[VenueOrder]:
        """Every open order of this API key in the markets of ``assets``."""
        rows = self._call(self._clob.get_open_orders)
        if not isinstance(rows, list):
            check_response(rows)
            raise PolymarketError(f"GET /data/orders: expected a list, got {type(rows).__name__}")
        out: list[VenueOrder] = []
        for row in rows:
            order = _venue_order(row, self._assets)
            if order is not None:
                out.append(order)
        return out

    def describe_failure(self, exc: Exception) -> Failure:
        """Retry on 429/425/5xx/no reply; ambiguous when no reply or 5xx."""
        err = self._error(exc)
        return Failure(
            reason=f"{type(err).__name__}: {err}",
            retry=should_retry(err),
            ambiguous=is_ambiguous(err),
            retry_after_s=getattr(err, "retry_after_s", None),
        )

    # --- helpers -----------------------------------------------------------------------------------

    def _error(self, exc: BaseException) -> PolymarketError:
        retry_after = self._probe.take(self._now_s()) if self._probe is not None else None
        return to_polymarket_error(exc, retry_after)

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
        if isinstance(current, str) and current and "heartbeat" in error_message(body).lower():
            return current
    return None


def _venue_order(row: object, assets: AssetMap) -> VenueOrder | None:
    if not isinstance(row, dict):
        logger.warning("GET /data/orders: skipped a row that is not an object")
        return None
    key = assets.get(str(row.get("asset_id", "")))
    order_id = str(row.get("id") or "")
    if key is None or not order_id:
        return None  # another market's order, or no id: not ours to manage
    try:
        side = parse_side(str(row.get("side", "")))
        px = _row_value(parse_px, row, "price", "")
        original = _row_value(parse_qty, row, "original_size", "")
        matched = _row_value(parse_qty, row, "size_matched", "0")
    except PayloadError as exc:
        logger.warning("GET /data/orders: order %s has unusable fields: %s", order_id, exc)
        return _unusable(order_id, key)
    trades = row.get("associate_trades") or []
    return VenueOrder(
        order_id=order_id,
        market=key[0],
        outcome=key[1],
        side=side,
        px=px,
        original_qty=original,
        matched_qty=matched,
        trade_ids=tuple(str(t) for t in trades) if isinstance(trades, list) else (),
    )


def _row_value(parse: Callable[[str], int], row: dict[Any, Any], field: str, default: str) -> int:
    value = row.get(field)
    try:
        return parse(default if value is None or value == "" else str(value))
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None


def _unusable(order_id: str, key: tuple[str, Outcome]) -> VenueOrder:
    # A bad row spoils only itself: it is still listed (an open order is never declared gone because
    # one of its fields is unreadable), with matched_qty=-1 saying its sizes cannot be used.
    return VenueOrder(
        order_id=order_id,
        market=key[0],
        outcome=key[1],
        side=Side.BUY,
        px=0,
        original_qty=0,
        matched_qty=-1,
    )


# --- user channel → gateway ----------------------------------------------------------------------------


def user_event_messages(ev: UserEvent) -> list[UserFill | UserOrderUpdate]:
    """Gateway messages for one user-channel event.

    A trade gives one ``UserFill`` per maker leg (on the maker's own token; a maker fill of ours may
    sit on the complementary token of the taker's at 1 − p) and, for our taker trades, one for the
    taker order. The gateway keeps the legs whose order ids are ours.
    """
    match ev:
        case VenueTrade():
            legs = [
                UserFill(
                    trade_id=ev.trade_id,
                    status=ev.status,
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
                    UserFill(
                        trade_id=ev.trade_id,
                        status=ev.status,
                        order_id=ev.taker_order_id,
                        outcome=ev.outcome,
                        side=ev.side,
                        px=ev.px,
                        qty=ev.qty,
                        liquidity="taker",
                        fee_rate_bps=ev.fee_rate_bps,
                    )
                )
            return list(legs)
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


def start_gateway(
    clob: ClobLike,
    markets: Iterable[MarketInfo],
    route: Route,
    clock: Clock,
    *,
    config: GatewayConfig | None = None,
    schedule: Schedule | None = None,
    wait: Callable[[float], object] | None = None,
    retry_after: RetryAfterProbe | None = None,
    chain_id: int = POLYGON,
) -> tuple[pykka.ActorRef[Any], ClobExchangePort, UserChannelBridge]:
    """Start the gateway over ``clob`` for ``markets``.

    Returns:
        The gateway's ref (``ask(Shutdown())`` / ``stop()`` cancels everything), the port to give
        every market session, and the bridge whose ``on_event``/``on_reconnect`` go to ``UserWsClient``.
    """
    markets = list(markets)
    venue = PolymarketVenue(clob, AssetMap.from_markets(markets), chain_id=chain_id, retry_after=retry_after)
    ref = OrderGatewayActor.start(venue, markets, route, clock, config=config, schedule=schedule, wait=wait)
    return ref, ClobExchangePort(ref), UserChannelBridge(ref)
