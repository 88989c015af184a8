"""The live exchange port: ``ClobExchangePort`` → ``OrderGatewayActor`` → ``PolymarketVenue`` → the SDK.

* ``ClobExchangePort`` implements ``core.ports.ExchangePort`` for market actors: ``submit`` only
  tells the gateway (never blocks on the network).
* ``PolymarketVenue`` implements the gateway's ``Venue`` protocol over a ``ClobLike``: the venue's
  official SDK's sync ``polymarket.SecureClient`` (or a fake in tests). Orders are signed here
  (``orders.OrderSigner``: V1 markets for the CTF exchanges, domain "2"; Protocol V2 markets for
  ExchangeV3, domain "3"; no network) and posted with ``post_orders`` (``POST /orders``, never
  ``place_limit_order``, whose allowance recovery sends on-chain approvals). Cancels go by id
  (``cancel_orders``) or by market (``cancel_market_orders``); heartbeats by
  ``send_order_heartbeat`` (``POST /v1/heartbeats``, the id chained; a stale id is replaced by the
  one the venue's refusal names); the reconcile reads ``list_open_orders`` (every market),
  ``list_account_trades`` (backfills), ``get_order`` and the Data API's ``list_positions``. SDK errors
  are mapped onto ``errors`` and classified for the gateway; the ``Poly-RateLimit-*`` state of every
  reply comes through the SDK's ``on_rate_limit_update`` (``errors.RateLimitListener``) and is handed
  to the gateway's rate limiter.
* ``UserChannelBridge`` turns parsed user-channel events into gateway messages (a trade becomes the
  ledger's ``VenueTrade``), and every (re)subscription into a ``Reconcile``.
* ``app.gateway.start_gateway`` wires the three with the gateway actor (the composition root's part:
  this module implements the gateway's ports and never imports ``actors``).

Each market trades by the ids of its protocol (``MarketInfo.version``: Gamma's ``version``); a
market whose ids the SDK's ``is_v2_position_id`` does not classify the same way is refused (every
order on it is rejected before signing, with one line saying why).

Only this module and ``orders``/``errors``/``secrets``/``sdk`` know the client library: moving to
another client changes them, not the gateway or the ledger. Blocking calls happen on the gateway's
thread (``heartbeat`` on the heartbeat thread, ``positions`` and ``merge`` on threads of their own:
the SDK retries a Data API 429 by sleeping on the calling thread); the SDK's sync client is safe to
share, and the rate-limit listener keeps each thread's headers apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final, NamedTuple, Protocol

import msgspec
import pykka
from polymarket import OrderHeartbeatMismatchError

from adapters.polymarket import sdk
from adapters.polymarket.errors import (
    BadResponse,
    OrderRefused,
    PolymarketError,
    RateLimited,
    RateLimitListener,
    RequestRejected,
    is_ambiguous,
    place_replies,
    should_retry,
    to_polymarket_error,
)
from adapters.polymarket.orders import OrderSigner
from adapters.polymarket.orders import Protocol as OrderProtocol
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
from adapters.polymarket.secrets import ApiCredentials, Secret, build_clob_client
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
from core.units import NS_PER_S, PX_ONE, QTY_ONE, Outcome, Px, Qty, Side, UnitError, parse_px, parse_qty

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_CANCEL_BATCH",
    "MAX_POST_BATCH",
    "ClobExchangePort",
    "ClobLike",
    "MergeUnknown",
    "PolymarketVenue",
    "UserChannelBridge",
    "VenueConnection",
    "connect_venue",
    "ledger_trade",
    "market_protocol_problem",
    "positions_from_rows",
    "trade_row",
    "trades_from_rows",
    "user_event_messages",
    "venue_order_view",
]

#: ``POST /orders`` takes at most 15 orders (raised from 5 on 2025-08-21; the SDK refuses more).
MAX_POST_BATCH: Final = 15
#: ``DELETE /orders`` takes at most 1000 ids (since 2026-06-15; the SDK's own cap is 3000).
MAX_CANCEL_BATCH: Final = 1000
#: Pages read from one listing before giving up (a venue that never ends a listing).
MAX_PAGES: Final = 200
POSITIONS_PAGE_SIZE: Final = 500
STATUS_NOT_FOUND: Final = 404


class ClobLike(Protocol):
    """The part of ``polymarket.SecureClient`` the gateway uses (credentials already in place)."""

    def post_orders(self, signed_orders: Sequence[Any]) -> Sequence[Any]:
        """``POST /orders``: one ``AcceptedOrder``/``RejectedOrder`` per order."""
        ...

    def cancel_orders(self, *, order_ids: Sequence[str]) -> Any:
        """``DELETE /orders``: ``CancelOrdersResponse``."""
        ...

    def cancel_market_orders(self, *, market: str | None = None) -> Any:
        """``DELETE /cancel-market-orders``: ``CancelOrdersResponse``."""
        ...

    def cancel_all(self) -> Any:
        """``DELETE /cancel-all``."""
        ...

    def send_order_heartbeat(self, *, heartbeat_id: str = "") -> Any:
        """``POST /v1/heartbeats``: ``OrderHeartbeat(heartbeat_id)``."""
        ...

    def list_open_orders(self) -> Iterable[Any]:
        """``GET /data/orders``: pages of ``OpenOrder``."""
        ...

    def list_account_trades(self, *, after: str | None = None) -> Iterable[Any]:
        """``GET /data/trades``: pages of ``ClobTrade``."""
        ...

    def get_order(self, *, order_id: str) -> Any:
        """``GET /data/order/{id}``: ``OpenOrder``."""
        ...

    def list_positions(self, *, page_size: int = 100) -> Iterable[Any]:
        """Data API ``GET /v2/positions?user=<wallet>``: pages of ``Position``."""
        ...

    def get_balance_allowance(self, *, asset_type: Any, token_id: str | None = None) -> Any:
        """``GET /balance-allowance``: ``BalanceAllowance(balance, allowances)``."""
        ...

    def merge_positions(self, *, condition_id: str | None = None, amount: int | str) -> Any:
        """Merge YES+NO pairs into collateral: a transaction handle (``wait()``, ``transaction_hash``)."""
        ...


def market_protocol_problem(info: MarketInfo) -> str | None:
    """Why ``info`` cannot be traded as its ``version`` says (one line), or None when its ids agree.

    Gamma's ``version`` chooses the ids (``clobTokenIds`` for v1, ``positionIds`` for v2); the SDK's
    ``is_v2_position_id`` decides how an id is signed. They must agree on both tokens.
    """
    want_v2 = info.version == "v2"
    for outcome, token in (("YES", info.yes_token), ("NO", info.no_token)):
        if sdk.is_v2_position_id(token) != want_v2:
            kind = "a Protocol V2 position id" if not want_v2 else "not a Protocol V2 position id"
            return (
                f"market {info.market}: Gamma says version {info.version} but its {outcome} id "
                f"{token[:24]}… is {kind} (the SDK would sign it for the other exchange): not traded"
            )
    return None


class PolymarketVenue:
    """The gateway's ``Venue`` over a ``ClobLike``; see the module docstring."""

    max_batch = MAX_POST_BATCH
    max_cancel_batch = MAX_CANCEL_BATCH

    def __init__(
        self,
        clob: ClobLike,
        signer: OrderSigner,
        markets: Iterable[MarketInfo],
        *,
        rate_limits: RateLimitListener | None = None,
        positions: bool = True,
    ) -> None:
        """Wrap ``clob``; ``markets`` are the markets we trade (their ids, version, neg-risk flag).

        Args:
            clob: The SDK client (its HTTP methods are called on the gateway thread).
            signer: Signs our orders (the same key as the client's).
            markets: Markets we trade; more via ``add_market``.
            rate_limits: The listener given to the client as ``on_rate_limit_update``; None: the
                venue's rate-limit headers are not read.
            positions: Whether the venue lists positions (the Data API); False: ``positions()`` is None.
        """
        self._clob = clob
        self._signer = signer
        self._assets = AssetMap()
        self._protocols: dict[str, OrderProtocol] = {}
        self._refused: dict[str, str] = {}
        self._listener = rate_limits
        self._positions = positions
        for info in markets:
            self.add_market(info)

    def add_market(self, info: MarketInfo) -> None:
        """Follow the ids of one more market; one whose ids disagree with its version is refused."""
        problem = market_protocol_problem(info)
        if problem is not None:
            logger.error("%s", problem)
            self._refused[info.market] = problem
        else:
            self._refused.pop(info.market, None)
            self._protocols[info.market] = "v2" if info.version == "v2" else "v1"
        self._assets = AssetMap({**dict(self._assets.items()), **dict(AssetMap.from_markets([info]).items())})

    def refused(self) -> dict[str, str]:
        """Markets refused (condition id → the one-line reason)."""
        return dict(self._refused)

    # --- Venue -------------------------------------------------------------------------------------

    def prepare(self, place: Place, info: MarketInfo, tick_px: Px) -> PreparedOrder:
        """Sign locally (the venue id is the order digest); raises ``OrderRefused`` or ``AmountMismatch``."""
        protocol = self._protocols.get(info.market)
        if protocol is None:
            raise OrderRefused(self._refused.get(info.market) or f"market {info.market} is not followed")
        signed = self._signer.sign(
            place, info.token(place.outcome), tick_px, neg_risk=info.neg_risk, protocol=protocol
        )
        return PreparedOrder(client_id=place.client_id, order_id=signed.order_id, payload=signed.order)

    def post(self, orders: Sequence[PreparedOrder], post_only: bool) -> list[PlaceResult]:
        """One ``POST /orders`` (post-only is part of each signed order).

        A reply the SDK cannot read leaves every order of the batch unknown (the venue is asked).
        """
        try:
            responses = self._call(self._clob.post_orders, [p.payload for p in orders])
        except BadResponse as exc:
            logger.warning("POST /orders: unreadable reply (%s); asking the venue what rests", exc)
            return [PlaceResult(client_id=p.client_id, error=str(exc), unknown=True) for p in orders]
        replies = place_replies(list(responses), len(orders))
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
        """One ``DELETE /orders``; an id in neither list of the reply is left to a reconcile."""
        return _cancel_result(self._call(self._clob.cancel_orders, order_ids=list(order_ids)))

    def cancel_market(self, market: str) -> CancelResult:
        """``DELETE /cancel-market-orders`` for one condition id."""
        return _cancel_result(self._call(self._clob.cancel_market_orders, market=market))

    def heartbeat(self, heartbeat_id: str) -> str:
        """Post a heartbeat chained on ``heartbeat_id``; a stale id is replaced by the venue's current one."""
        try:
            reply = self._call(self._clob.send_order_heartbeat, heartbeat_id=heartbeat_id)
        except _StaleHeartbeat as stale:
            if stale.current == heartbeat_id:
                raise self._error(stale.cause) from None
            logger.info("heartbeat id was stale; continuing the venue's chain")
            try:
                reply = self._call(self._clob.send_order_heartbeat, heartbeat_id=stale.current)
            except _StaleHeartbeat as again:
                raise self._error(again.cause) from None
        return str(getattr(reply, "heartbeat_id", "") or "")

    def open_orders(self) -> list[VenueOrderView]:
        """Every open order of this API key, on any market (ours to manage even where we do not trade)."""
        out: list[VenueOrderView] = []
        for row in self._items(self._clob.list_open_orders, "GET /data/orders"):
            order = _venue_order(_open_order_row(row), self._assets)
            if order is not None:
                out.append(order)
        return out

    def trades(self, after_ns: int) -> list[VenueTrade]:
        """``GET /data/trades`` matched from ``after_ns`` on (whole seconds, one second early), every page."""
        after = str(max(after_ns // NS_PER_S - 1, 0)) if after_ns > 0 else None
        rows = [
            trade_row(t) for t in self._items(self._clob.list_account_trades, "GET /data/trades", after=after)
        ]
        return trades_from_rows(rows, self._assets)

    def order(self, order_id: str) -> VenueOrderStatus | None:
        """``GET /data/order/{id}``; None when the venue does not have it (404, or an empty reply).

        The venue answers only for orders still open (a filled or cancelled one is an empty reply),
        which the SDK cannot read as an order: an unreadable reply means the same here.
        """
        try:
            row = self._call(self._clob.get_order, order_id=order_id)
        except RequestRejected as exc:
            if exc.status_code == STATUS_NOT_FOUND:
                return None
            raise
        except BadResponse as exc:
            logger.info("GET /data/order/%s: no order in the reply (%s)", order_id[:80], exc)
            return None
        return VenueOrderStatus(
            order_id=str(getattr(row, "id", "") or order_id), status=str(getattr(row, "status", "") or "")
        )

    def positions(self) -> list[VenuePosition] | None:
        """The wallet's positions in our markets (Data API); None when there is no listing (404)."""
        if not self._positions:
            return None
        try:
            rows = [
                {"token_id": p.asset_id, "current_size": p.current_size, "avg_price": p.avg_price}
                for p in self._items(self._clob.list_positions, "positions", page_size=POSITIONS_PAGE_SIZE)
            ]
        except RequestRejected as exc:
            if exc.status_code == STATUS_NOT_FOUND:
                logger.warning("the Data API has no positions endpoint (404): %s", exc)
                return None
            raise
        return positions_from_rows(rows, self._assets)

    def balance_qty(self, info: MarketInfo, outcome: Outcome) -> Qty:
        """Shares of ``outcome`` the wallet holds, from ``/balance-allowance``.

        The asset type is ``CONDITIONAL`` for a V1 token and ``CONDITIONAL-V2`` for a Protocol V2
        position; balances come in the token's 6-decimal base unit, i.e. a ``Qty``.
        """
        asset_type = "CONDITIONAL-V2" if info.version == "v2" else "CONDITIONAL"
        reply = self._call(
            self._clob.get_balance_allowance, asset_type=asset_type, token_id=info.token(outcome)
        )
        try:
            return int(reply.balance)
        except (AttributeError, TypeError, ValueError):
            raise BadResponse(f"balance of {info.token(outcome)[:24]}: unreadable reply") from None

    def merge(self, info: MarketInfo, qty: Qty) -> str:
        """Merge ``qty`` pairs of ``info`` through the SDK's ``merge_positions``; the transaction hash.

        The SDK resolves the market on Gamma (``version`` picks the V1 collateral adapter's
        ``mergePositions`` or the V2 Router's ``merge``), reads the balances on-chain, and sends the
        transaction: signed here and broadcast to the RPC for an EOA wallet (gas in POL), through the
        relayer for the others (gasless). Then it waits for the receipt (``wait()``). A failure once
        the transaction may have been sent (no receipt in time, no reply) is ``MergeUnknown``.
        """
        if info.market in self._refused:
            raise OrderRefused(self._refused[info.market])
        handle = self._call(self._clob.merge_positions, condition_id=info.market, amount=qty)
        tx = str(getattr(handle, "transaction_hash", "") or "")
        try:
            outcome = self._call(handle.wait)
        except RequestRejected:
            raise
        except PolymarketError as exc:
            if str(exc).startswith("TransactionFailedError"):
                raise  # reverted (or failed at the relayer): nothing merged
            raise MergeUnknown(f"transaction {tx or '?'} sent, no receipt: {exc}") from None
        return str(getattr(outcome, "transaction_hash", "") or tx)

    def rate_limit(self) -> RateLimitInfo | None:
        """The ``Poly-RateLimit-*`` state of the last reply on this thread (then forgotten)."""
        h = self._listener.take_rate_limit() if self._listener is not None else None
        if h is None:
            return None
        return RateLimitInfo(remaining=h.remaining, reset_s=h.reset_s, tier=h.tier, warning=h.warning)

    def describe_failure(self, exc: Exception) -> Failure:
        """Retry on 429/425/5xx/no reply; ambiguous: no reply, a 5xx, or a 429 without the venue's headers."""
        err = self._error(exc)
        return Failure(
            reason=f"{type(err).__name__}: {err}",
            retry=should_retry(err),
            ambiguous=is_ambiguous(err) or isinstance(err, MergeUnknown),
            retry_after_s=getattr(err, "retry_after_s", None),
            rate_limited=isinstance(err, RateLimited),
            not_found=getattr(err, "status_code", None) == STATUS_NOT_FOUND,
        )

    # --- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _error(exc: BaseException) -> PolymarketError:
        return to_polymarket_error(exc)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._listener is not None:
            self._listener.clear()  # only this call's reply may set it
        try:
            return fn(*args, **kwargs)
        except PolymarketError:
            raise
        except OrderHeartbeatMismatchError as exc:
            raise _StaleHeartbeat(exc) from None
        except Exception as exc:
            raise to_polymarket_error(exc) from exc

    def _items(self, listing: Callable[..., Iterable[Any]], what: str, **kwargs: Any) -> Iterator[Any]:
        pages = iter(self._call(listing, **kwargs))  # a paginator: each page is fetched by ``next``
        for _ in range(MAX_PAGES):
            page = self._call(next, pages, _END)
            if page is _END:
                return
            yield from page.items
        raise BadResponse(f"{what}: more than {MAX_PAGES} pages")


_END: Final = object()


class MergeUnknown(PolymarketError):
    """A merge's transaction may have been sent, but no receipt was seen: its outcome is unknown."""


class _StaleHeartbeat(PolymarketError):
    # The SDK's OrderHeartbeatMismatchError, carried out of ``_call``: ``current`` is the venue's id.
    def __init__(self, cause: OrderHeartbeatMismatchError) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.current = str(cause.heartbeat_id or "")


def _cancel_result(resp: object) -> CancelResult:
    # The SDK reads ``canceled`` and ``not_canceled`` (a ``notCanceled`` key is dropped): an id in
    # neither list is unknown, and the gateway reconciles it.
    canceled = getattr(resp, "canceled", None)
    not_canceled = getattr(resp, "not_canceled", None)
    if not isinstance(canceled, (tuple, list)) or not isinstance(not_canceled, dict):
        raise BadResponse(f"unusable cancel reply: {type(resp).__name__}")
    return CancelResult(
        canceled=tuple(str(i) for i in canceled),
        not_canceled=tuple((str(k), str(v)[:300]) for k, v in not_canceled.items()),
    )


_MAX_EXPONENT: Final = 40


def _text(value: object) -> str:
    # An SDK Decimal as plain digits, exactly (``format(..., "f")`` never rounds and never writes an
    # exponent; ``normalize`` would round to 28 digits), trailing fractional zeros dropped.
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value.adjusted()) > _MAX_EXPONENT:
            return str(value)  # exponent notation: refused by our parsers, never expanded to gigabytes
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return "" if value is None else str(value)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _ns_text(value: object) -> str:
    if not isinstance(value, datetime):
        return _text(value) or "0"
    dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return str((dt - _EPOCH) // timedelta(microseconds=1) * 1_000)


def _open_order_row(o: Any) -> dict[str, Any]:
    # An SDK ``OpenOrder`` in the ``/data/orders`` row shape ``_venue_order`` reads.
    return {
        "id": str(getattr(o, "id", "") or ""),
        "asset_id": str(getattr(o, "asset_id", "") or ""),
        "market": str(getattr(o, "market", "") or ""),
        "side": str(getattr(o, "side", "") or ""),
        "price": _text(getattr(o, "price", None)),
        "original_size": _text(getattr(o, "original_size", None)),
        "size_matched": _text(getattr(o, "size_matched", None)),
    }


def trade_row(t: Any) -> dict[str, Any]:
    """An SDK ``ClobTrade`` in the user channel's ``trade`` shape, so one parser reads both."""
    return {
        "id": str(t.id),
        "taker_order_id": str(t.taker_order_id),
        "market": str(t.market),
        "asset_id": str(t.asset_id),
        "side": str(t.side),
        "size": _text(t.size),
        "price": _text(t.price),
        "status": str(t.status),
        "fee_rate_bps": _text(t.fee_rate_bps) or "0",
        "match_time": _ns_text(t.matched_at),
        "last_update": _ns_text(t.updated_at),
        "outcome": str(t.outcome),
        "owner": str(t.owner),
        "maker_address": str(t.maker_address),
        "transaction_hash": str(t.transaction_hash or ""),
        "bucket_index": int(t.bucket_index),
        "trader_side": str(t.trader_side),
        "maker_orders": [
            {
                "order_id": str(m.order_id),
                "asset_id": str(m.asset_id),
                "maker_address": str(m.maker_address),
                "owner": str(m.owner),
                "side": str(m.side),
                "price": _text(m.price),
                "matched_amount": _text(m.matched_amount),
                "outcome": str(m.outcome),
                "fee_rate_bps": _text(m.fee_rate_bps) or "0",
            }
            for m in t.maker_orders
        ],
    }


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


def venue_order_view(order: Any, assets: AssetMap) -> VenueOrderView | None:
    """An SDK ``OpenOrder`` (``list_open_orders``) as a ``VenueOrderView``; None without an id.

    A token we do not trade, or unreadable sizes, give ``matched_qty`` -1 (see ``open_orders``).
    """
    return _venue_order(_open_order_row(order), assets)


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


class VenueConnection(NamedTuple):
    """A live venue connection: the SDK client, the order signer, the credentials, the rate-limit listener."""

    client: Any  # polymarket.SecureClient
    signer: OrderSigner
    creds: ApiCredentials
    rate_limits: RateLimitListener


def connect_venue(environment: Any, key: Secret, creds: ApiCredentials | None = None) -> VenueConnection:
    """The SDK client for ``key``'s own address on ``environment`` (credentials verified or derived).

    Raises:
        AuthFailed: The venue refused the credentials.
        PolymarketError: The venue could not be reached or answered something unusable.
    """
    rate_limits = RateLimitListener()
    client, creds = build_clob_client(environment, key, creds, rate_limits=rate_limits)
    return VenueConnection(client, OrderSigner(key.reveal(), sdk.contracts(environment)), creds, rate_limits)
