"""OrderGatewayActor over PolymarketVenue over a fake SDK client (real signing, fake HTTP).

The fake keeps an order book of "open orders" like the venue's ``/data/orders`` and trade rows like
``/data/trades``, and answers like ``polymarket.SecureClient`` does: the venue's wire shapes parsed by
the SDK's own models (``OpenOrder``, ``ClobTrade``, ``AcceptedOrder``/``RejectedOrder``...), failures
raised by the SDK's own transport code from a crafted HTTP reply (so Retry-After, trading restrictions
and the ``Poly-RateLimit-*`` headers flow exactly as they would), listings through the SDK's
``Paginator``; it records every call. Timers are fired by hand (the clock moves to the latest of
them); tests synchronise with ``ask(GetGatewayStatus())``, which flushes pending work first. The
gateway's rules themselves are tested against a venue model in ``tests/actors/test_gateway.py``.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from polymarket import (
    PRODUCTION,
    CancelOrdersResponse,
    ClobTrade,
    OpenOrder,
    OrderHeartbeat,
    Page,
    Paginator,
    Position,
)
from polymarket._internal.actions.orders.post import parse_order_responses
from polymarket.clients._transport import _notify_rate_limit_update, _raise_for_response_status
from polymarket.errors import TransportError

from actors.gateway import (
    GatewayConfig,
    GetGatewayStatus,
    HeartbeatLoop,
    RateLimitInfo,
    Reconcile,
    SetSink,
    Shutdown,
    ShutdownReport,
    Startup,
    UserOrderUpdate,
)
from adapters.polymarket import sdk
from adapters.polymarket.clob_port import (
    ClobExchangePort,
    PolymarketVenue,
    UserChannelBridge,
    positions_from_rows,
    trade_row,
    trades_from_rows,
    user_event_messages,
)
from adapters.polymarket.errors import BadResponse, OrderRefused, RateLimitListener
from adapters.polymarket.orders import OrderSigner
from adapters.polymarket.parse import AssetMap, decode_user_frame
from app.gateway import start_gateway
from core.ledger import TradeLeg, VenueTrade
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Adopted,
    Cancel,
    CancelAll,
    Canceled,
    Filled,
    Place,
    Rejected,
    TickSizeChanged,
)
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, Outcome, Side, format_px, format_qty
from tests.actors.venue_fake import MutableClock
from tests.fakes import ListSink

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"
KEY = "0x" + "3c" * 32
SIGNER = OrderSigner(KEY, sdk.contracts(PRODUCTION))
WALLET = SIGNER.address


def token(n: int) -> str:
    """A V1 (CTF) token id: bits 40..103 set, as every real one (a small number is a V2 position id)."""
    return str((0x5EED << 96) + n)


def position(n: int, outcome: int) -> str:
    """A Protocol V2 position id: module 01, 16 hash bytes, 14 zero bytes, the outcome byte."""
    return str(int("01" + f"{n:032x}" + "00" * 14 + f"{outcome:02x}", 16))


M1 = MarketInfo(market="0xm1", yes_token=token(111), no_token=token(112), tick_px=100)
M2 = MarketInfo(market="0xm2", yes_token=token(221), no_token=token(222), tick_px=10, neg_risk=True)
# The cross-asset trade fixture: our maker order is the BUY YES leg at 0.513.
CROSS = msgspec.json.decode((FIX / "trade_maker_cross_asset_2025-11_edited.json").read_bytes())
M3 = MarketInfo(
    market=CROSS["market"], yes_token=CROSS["maker_orders"][0]["asset_id"], no_token=token(999), tick_px=10
)
M4 = MarketInfo(market="0xm4", yes_token=position(4, 0), no_token=position(4, 1), tick_px=100, version="v2")
MARKETS = [M1, M2, M3, M4]


def sdk_error(method: str, status: int, body: Any, headers: dict[str, str], listener: Any) -> Exception:
    """What the SDK's transport raises (after telling its rate-limit listener) for this reply."""
    path = {"send_order_heartbeat": "/v1/heartbeats", "post_orders": "/orders"}.get(method, f"/{method}")
    request = httpx.Request("POST", "http://venue.test" + path)
    response = httpx.Response(status, headers=headers, json=body, request=request)
    _notify_rate_limit_update(listener, None, response)
    try:
        _raise_for_response_status(response, path=path)
    except Exception as exc:
        return exc
    raise AssertionError(f"status {status} raised nothing")


def pages(items: list[Any], per_page: int = 2) -> Paginator[Any]:
    """The SDK's own paginator over ``items`` (``per_page`` a page, like a venue that pages)."""

    def fetch(cursor: str | None) -> Page[Any]:
        start = int(cursor or 0)
        chunk = tuple(items[start : start + per_page])
        more = start + per_page < len(items)
        return Page(items=chunk, has_more=more, next_cursor=str(start + per_page) if more else None)

    return Paginator(fetch=fetch)


OPEN_ROW_DEFAULTS = {
    "owner": "k",
    "maker_address": "0xme",
    "outcome": "Yes",
    "order_type": "GTC",
    "status": "LIVE",
    "created_at": 1_800_000_000,
    "associate_trades": [],
}


class FakeSdk:
    """A fake and a spy of ``polymarket.SecureClient`` (see the module docstring)."""

    def __init__(self, markets: list[MarketInfo], listener: RateLimitListener | None = None):
        self.listener = listener
        self.info = {t: m for m in markets for t in (m.yes_token, m.no_token)}
        self.calls: list[tuple[str, Any]] = []
        self.open: dict[str, dict[str, Any]] = {}
        self.item_replies: list[dict[str, Any] | None] = []  # per posted order; None: accept
        self.failures: dict[str, list[tuple[int | None, dict[str, Any], bool]]] = defaultdict(list)
        self.hb = 0
        self.trade_rows: list[dict[str, Any]] = []
        self.position_rows: list[dict[str, Any]] = []
        self.closed: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    # scripting
    def fail_next(
        self,
        method: str,
        status: int | None,
        body: Any = None,
        *,
        retry_after: str = "",
        applied: bool = False,
        headers: dict[str, str] | None = None,
    ):
        headers = dict(headers or {})
        if retry_after:
            headers["Retry-After"] = retry_after
        spec = {"body": body or {"error": "scripted"}, "headers": headers}
        self.failures[method].append((status, spec, applied))

    def called(self, method: str) -> list[Any]:
        return [args for m, args in self.calls if m == method]

    def _run(self, method: str, effect: Callable[[], Any]) -> Any:
        if self.failures[method]:
            status, spec, applied = self.failures[method].pop(0)
            if applied:
                effect()  # the venue did it, but the reply is lost
            if status is None:
                raise TransportError("timed out")
            raise sdk_error(method, status, spec["body"], spec["headers"], self.listener)
        return effect()

    def _open_order(self, row: dict[str, Any]) -> OpenOrder:
        return OpenOrder.parse_response(OPEN_ROW_DEFAULTS | row)

    # the SecureClient surface
    def post_orders(self, signed_orders: list[Any]) -> Any:
        self.calls.append(("post_orders", [(o, o.order_type) for o in signed_orders]))
        assert all(o.post_only for o in signed_orders)

        def effect() -> Any:
            out = []
            for o in signed_orders:
                scripted = self.item_replies.pop(0) if self.item_replies else None
                if scripted is not None:
                    out.append(
                        {"errorMsg": "", "makingAmount": "", "takingAmount": "", "status": "", "orderID": ""}
                        | scripted
                    )
                    continue
                info = self.info[o.token_id]
                oid = SIGNER.order_id(o, neg_risk=info.neg_risk, protocol=info.version)
                buy = o.side == "BUY"
                qty = o.taker_amount if buy else o.maker_amount  # the share amount is a Qty (1e-6 shares)
                px = (o.maker_amount if buy else o.taker_amount) * PX_ONE // qty
                with self.lock:
                    self.open[oid] = {
                        "id": oid,
                        "asset_id": o.token_id,
                        "market": info.market,
                        "side": o.side,
                        "price": format_px(px),
                        "original_size": format_qty(qty),
                        "size_matched": "0",
                    }
                out.append(
                    {"success": True, "orderID": oid, "status": "live", "errorMsg": "",
                     "makingAmount": "0", "takingAmount": "0"}
                )  # fmt: skip
            return parse_order_responses(out)

        return self._run("post_orders", effect)

    def cancel_orders(self, *, order_ids: list[str]) -> Any:
        self.calls.append(("cancel_orders", list(order_ids)))

        def effect() -> Any:
            with self.lock:
                done = [i for i in order_ids if i in self.open]
                for i in done:
                    self.closed[i] = dict(self.open.pop(i), status="CANCELED")
            return CancelOrdersResponse.parse_response(
                {"canceled": done, "not_canceled": {i: "order not found" for i in order_ids if i not in done}}
            )

        return self._run("cancel_orders", effect)

    def cancel_market_orders(self, *, market: str | None = None) -> Any:
        self.calls.append(("cancel_market_orders", market))

        def effect() -> Any:
            with self.lock:
                done = [i for i, o in self.open.items() if o["market"] == market]
                for i in done:
                    del self.open[i]
            return CancelOrdersResponse.parse_response({"canceled": done, "not_canceled": {}})

        return self._run("cancel_market_orders", effect)

    def cancel_all(self) -> Any:
        self.calls.append(("cancel_all", None))
        with self.lock:
            done, self.open = list(self.open), {}
        return CancelOrdersResponse.parse_response({"canceled": done, "not_canceled": {}})

    def send_order_heartbeat(self, *, heartbeat_id: str = "") -> Any:
        self.calls.append(("send_order_heartbeat", heartbeat_id))

        def effect() -> Any:
            self.hb += 1
            return OrderHeartbeat.parse_response({"heartbeat_id": f"hb-{self.hb}"})

        return self._run("send_order_heartbeat", effect)

    def list_open_orders(self) -> Any:
        self.calls.append(("list_open_orders", None))

        def fetch(cursor: str | None) -> Any:
            with self.lock:
                rows = [dict(o) for o in self.open.values()]
            return self._run("list_open_orders", lambda: [self._open_order(r) for r in rows])

        return pages_of(fetch)

    def list_account_trades(self, *, after: str | None = None) -> Any:
        self.calls.append(("list_account_trades", after))
        with self.lock:
            rows = [dict(t) for t in self.trade_rows]
        return pages(self._run("list_account_trades", lambda: [ClobTrade.parse_response(r) for r in rows]))

    def get_order(self, *, order_id: str) -> Any:
        self.calls.append(("get_order", order_id))
        with self.lock:
            row = self.open.get(order_id) or self.closed.get(order_id)
        if row is None:
            self.fail_next("get_order", 404, {"error": "order not found"})
        return self._run("get_order", lambda: self._open_order(dict(row or {})))

    def list_positions(self, *, page_size: int = 100) -> Any:
        self.calls.append(("list_positions", page_size))
        return pages(
            self._run("list_positions", lambda: [Position.parse_response(r) for r in self.position_rows])
        )

    def get_balance_allowance(self, *, asset_type: Any, token_id: str | None = None) -> Any:
        self.calls.append(("get_balance_allowance", (asset_type, token_id)))
        return type("BalanceAllowance", (), {"balance": 7_000_000, "allowances": {}})()


def pages_of(fetch_all: Callable[[str | None], list[Any]], per_page: int = 2) -> Paginator[Any]:
    """A paginator whose every page fetch asks ``fetch_all`` (so a scripted failure hits mid-listing)."""

    def fetch(cursor: str | None) -> Page[Any]:
        items = fetch_all(cursor)
        start = int(cursor or 0)
        chunk = tuple(items[start : start + per_page])
        more = start + per_page < len(items)
        return Page(items=chunk, has_more=more, next_cursor=str(start + per_page) if more else None)

    return Paginator(fetch=fetch)


class Routed:
    """The route callable: records (market, event)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def __call__(self, market: str, ev: Any) -> None:
        self.events.append((market, ev))

    def of(self, kind: type) -> list[Any]:
        return [ev for _, ev in self.events if isinstance(ev, kind)]


class ManualSchedule:
    """Timers recorded, fired by the test: the clock moves to the latest of them first."""

    def __init__(self, clock: MutableClock) -> None:
        self.pending: list[tuple[float, Callable[[], None]]] = []
        self.clock = clock

    def __call__(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.pending.append((delay_s, fn))

    def fire_all(self) -> None:
        pending, self.pending = self.pending, []
        self.clock.advance(max((d for d, _ in pending), default=0.0))
        for _, fn in pending:
            fn()


@dataclasses.dataclass
class Rig:
    clob: FakeSdk
    routed: Routed
    schedule: ManualSchedule
    ref: Any
    port: ClobExchangePort
    bridge: UserChannelBridge
    waits: list[float]

    def sync(self) -> Any:
        return self.ref.ask(GetGatewayStatus(), timeout=5)

    def place(self, n: int = 1, market: MarketInfo = M1, start: int = 0, **kw: Any) -> list[Place]:
        out = []
        for i in range(start, start + n):
            px = kw.pop("px", None) or (
                4000 + 100 * (i % 10) if market.tick_px == 100 else 4010 + 10 * (i % 10)
            )
            out.append(
                Place(
                    market=market.market,
                    client_id=f"{market.market}-{i}",
                    outcome=kw.get("outcome", Outcome.YES),
                    side=kw.get("side", Side.BUY),
                    px=px,
                    qty=kw.get("qty", 5 * QTY_ONE + i * ORDER_QTY_STEP),
                    post_only=kw.get("post_only", True),
                )
            )
        return out


def make_rig(clob: FakeSdk | None = None, signer: OrderSigner = SIGNER, **cfg: Any) -> Rig:
    listener = clob.listener if clob is not None and clob.listener is not None else RateLimitListener()
    clob = clob or FakeSdk(MARKETS, listener)
    clock = MutableClock()
    routed, schedule, waits = Routed(), ManualSchedule(clock), []
    config = GatewayConfig(**{"heartbeat_interval_s": None, "reconcile_interval_s": None, **cfg})
    ref, port, bridge = start_gateway(
        clob,
        signer,
        MARKETS,
        routed,
        clock,
        config=config,
        schedule=schedule,
        wait=waits.append,
        rate_limits=listener,
    )
    ref.ask(Startup(), timeout=5)
    return Rig(clob, routed, schedule, ref, port, bridge, waits)


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = make_rig()
    r.sync()
    yield r
    r.ref.stop()


# --- batching and ids ----------------------------------------------------------------------------------


def test_sixteen_places_go_out_in_two_posts_and_map_ids(rig):
    places = rig.place(16)

    rig.port.submit(places)
    status = rig.sync()

    posts = rig.clob.called("post_orders")
    assert [len(p) for p in posts] == [15, 1]
    accepted = rig.routed.of(Accepted)
    assert [a.client_id for a in accepted] == [p.client_id for p in places]
    assert {a.order_id for a in accepted} == set(rig.clob.open)
    assert status.open_orders == 16
    assert status.post_requests == 2


def test_places_from_several_markets_share_a_batch(rig):
    rig.port.submit(rig.place(3, M1))
    rig.port.submit(rig.place(3, M2))
    rig.sync()

    assert [len(p) for p in rig.clob.called("post_orders")] == [6]
    neg = [o for o, _ in rig.clob.called("post_orders")[0] if o.token_id == M2.yes_token]
    assert len(neg) == 3  # signed for the neg-risk exchange: the fake's ids (neg-risk domain) match ours
    assert len(rig.routed.of(Accepted)) == 6


def test_cancel_uses_the_venue_id_and_reports_canceled(rig):
    (p,) = rig.place(1)
    rig.port.submit([p])
    rig.sync()
    (acc,) = rig.routed.of(Accepted)

    rig.port.submit([Cancel(market=p.market, client_id=p.client_id)])
    rig.sync()

    assert rig.clob.called("cancel_orders") == [[acc.order_id]]
    (c,) = rig.routed.of(Canceled)
    assert (c.client_id, c.reason) == (p.client_id, "canceled")
    assert rig.clob.open == {}


def test_cancel_before_sending_never_reaches_the_venue(rig):
    (p,) = rig.place(1)

    rig.port.submit([p, Cancel(market=p.market, client_id=p.client_id)])
    rig.sync()

    assert rig.clob.called("post_orders") == []
    assert [c.reason for c in rig.routed.of(Canceled)] == ["canceled before it was sent"]


def test_cancel_all_uses_cancel_market_orders(rig):
    rig.port.submit(rig.place(2, M1) + rig.place(1, M2))
    rig.sync()

    rig.port.cancel_all(M1.market)
    rig.sync()

    assert rig.clob.called("cancel_market_orders") == [M1.market]
    assert sorted(c.client_id for c in rig.routed.of(Canceled)) == [f"{M1.market}-0", f"{M1.market}-1"]
    assert len(rig.clob.open) == 1


# --- rejections ----------------------------------------------------------------------------------------


def test_batch_reply_rejections_including_success_with_empty_order_id(rig):
    rig.clob.item_replies = [
        {"success": False, "errorMsg": "invalid post-only order: order crosses book", "orderID": ""},
        {"success": True, "orderID": "", "errorMsg": "not enough balance / allowance"},
        None,
    ]

    rig.port.submit(rig.place(3))
    status = rig.sync()

    rejected = rig.routed.of(Rejected)
    assert [(r.client_id, r.reason) for r in rejected] == [
        (f"{M1.market}-0", "invalid post-only order: order crosses book"),
        (f"{M1.market}-1", "not enough balance / allowance"),
    ]
    assert [a.client_id for a in rig.routed.of(Accepted)] == [f"{M1.market}-2"]
    assert status.rejects == 2


def test_a_400_rejects_the_whole_batch_without_retry(rig):
    rig.clob.fail_next("post_orders", 400, {"error": "invalid signature"})

    rig.port.submit(rig.place(2))
    status = rig.sync()

    assert [r.reason for r in rig.routed.of(Rejected)] == ["RequestRejected: invalid signature"] * 2
    assert len(rig.clob.called("post_orders")) == 1
    assert rig.schedule.pending == []
    assert not status.paused


def test_non_post_only_unknown_market_and_duplicates_are_rejected_locally(rig):
    (a,) = rig.place(1, post_only=False)
    b = Place(market="0xnope", client_id="x-1", outcome=Outcome.YES, side=Side.BUY, px=5000, qty=5 * QTY_ONE)
    (c,) = rig.place(1, start=5)

    rig.port.submit([a, b, c, c])
    rig.sync()

    reasons = {r.client_id: r.reason for r in rig.routed.of(Rejected)}
    assert reasons[a.client_id] == "the live gateway sends post-only GTC/GTD orders only"
    assert reasons["x-1"] == "unknown market"
    assert reasons[c.client_id] == "duplicate client id"
    assert [len(p) for p in rig.clob.called("post_orders")] == [1]


class SkewedSigner(OrderSigner):
    """Puts one micro-unit less into the order it signs: the gateway must refuse to send it."""

    def _amounts(self, place: Place) -> tuple[int, int]:
        maker, taker = super()._amounts(place)
        return maker - 1, taker


def test_signed_amount_mismatch_is_rejected_and_never_sent():
    r = make_rig(signer=SkewedSigner(KEY, sdk.contracts(PRODUCTION)))

    r.port.submit(r.place(2))
    r.sync()

    assert r.clob.called("post_orders") == []
    reasons = [x.reason for x in r.routed.of(Rejected)]
    assert len(reasons) == 2
    assert all(x.startswith("refused: ") and "!= ours" in x for x in reasons)


def test_a_price_on_a_finer_tick_than_known_is_signed_with_that_tick(rig):
    (p,) = rig.place(1, px=9650)  # M1 is on 0.01; the market actor already moved to 0.001

    rig.port.submit([p])
    rig.sync()
    rig.ref.tell(TickSizeChanged(market=M1.market, outcome=Outcome.YES, ts_ns=0, tick_px=10))
    (q,) = rig.place(1, px=9660, start=1)
    rig.port.submit([q])
    rig.sync()

    assert len(rig.routed.of(Accepted)) == 2
    (row,) = [o for o in rig.clob.open.values() if o["price"] == "0.965"]
    assert row["original_size"] == "5"


# --- retries -------------------------------------------------------------------------------------------


RATE_HEADERS = {"Poly-RateLimit-Remaining": "0", "Poly-RateLimit-Tier": "Standard"}


def test_429_pauses_for_retry_after_then_resends_the_same_signed_orders(rig):
    # The venue's own 429 (its rate-limit headers came with it): the orders were definitely refused.
    rig.clob.fail_next(
        "post_orders", 429, {"error": "Too Many Requests"}, retry_after="7", headers=RATE_HEADERS
    )

    rig.port.submit(rig.place(2))
    status = rig.sync()

    assert status.paused and status.in_doubt == 0
    assert rig.routed.of(Accepted) == []
    assert [d for d, _ in rig.schedule.pending] == [7.0]

    rig.schedule.fire_all()
    status = rig.sync()

    first, second = rig.clob.called("post_orders")
    assert [o.salt for o, _ in first] == [o.salt for o, _ in second]  # not signed again
    assert len(rig.routed.of(Accepted)) == 2
    assert not status.paused
    assert status.rate_limited == 1
    assert rig.clob.called("get_order") == []  # no doubt: nothing to ask


def test_a_429_without_rate_limit_headers_leaves_the_outcome_to_the_venue(rig):
    # A CDN's 429: whether the orders arrived is unknown; the venue is asked before sending again.
    rig.clob.fail_next("post_orders", 429, {"error": "Too Many Requests"}, retry_after="2", applied=True)

    rig.port.submit(rig.place(2))
    rig.sync()
    rig.schedule.fire_all()
    rig.sync()

    assert len(rig.clob.called("post_orders")) == 1  # they had arrived: listed, never sent again
    assert len(rig.routed.of(Accepted)) == 2


def test_backoff_grows_without_retry_after(rig, caplog):
    for _ in range(3):
        rig.clob.fail_next("post_orders", 503, {"error": "Trading is currently disabled"})
    rig.clob.fail_next("post_orders", 425, {"error": "too early"})

    with caplog.at_level("WARNING"):
        rig.port.submit(rig.place(1))
        rig.sync()
        for _ in range(4):
            rig.schedule.fire_all()
            rig.sync()

    pauses = [r.getMessage().rsplit("pausing ", 1)[1] for r in caplog.records if "pausing" in r.getMessage()]
    assert pauses == ["0.50 s", "1.00 s", "2.00 s", "4.00 s"]
    assert len(rig.routed.of(Accepted)) == 1
    assert len(rig.clob.open) == 1  # sent five times (a 503's outcome is asked first), rests once


def test_a_lost_reply_is_resolved_by_reconcile_not_by_sending_twice(rig):
    rig.clob.fail_next("post_orders", None, applied=True)  # the venue took them; the reply was lost

    rig.port.submit(rig.place(2))
    status = rig.sync()
    assert status.in_doubt == 2
    rig.schedule.fire_all()
    rig.sync()

    assert len(rig.clob.called("post_orders")) == 1
    assert len(rig.routed.of(Accepted)) == 2
    assert len(rig.clob.open) == 2


def test_a_post_that_never_arrived_is_sent_again_after_reconcile(rig):
    rig.clob.fail_next("post_orders", None, applied=False)

    rig.port.submit(rig.place(2))
    rig.sync()
    rig.schedule.fire_all()
    rig.sync()

    first, second = rig.clob.called("post_orders")
    assert [o.salt for o, _ in first] == [o.salt for o, _ in second]
    assert len(rig.routed.of(Accepted)) == 2
    assert rig.routed.of(Rejected) == []


# --- heartbeats ----------------------------------------------------------------------------------------


def venue(clob: FakeSdk | None = None, **kw: Any) -> PolymarketVenue:
    clob = clob or FakeSdk(MARKETS)
    return PolymarketVenue(clob, SIGNER, MARKETS, rate_limits=clob.listener, **kw)


def test_heartbeats_chain_the_returned_id_and_resync_a_stale_one():
    clob = FakeSdk(MARKETS)
    hb = HeartbeatLoop(venue(clob), MutableClock(), lambda *_: None, interval_s=5.0)
    hb.beat()
    hb.beat()
    # The venue's 400 names the id it expects: the SDK raises OrderHeartbeatMismatchError with it.
    clob.fail_next(
        "send_order_heartbeat", 400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-current"}
    )

    delay = hb.beat()

    assert clob.called("send_order_heartbeat") == ["", "hb-1", "hb-2", "hb-current"]
    assert hb.status().heartbeat_id == "hb-3" and delay == 5.0


def test_a_stale_heartbeat_resyncs_to_an_empty_id_after_a_legacy_beat():
    clob = FakeSdk(MARKETS)
    hb = HeartbeatLoop(venue(clob), MutableClock(), lambda *_: None)
    hb.beat()
    clob.fail_next("send_order_heartbeat", 400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": ""})

    hb.beat()

    assert clob.called("send_order_heartbeat") == ["", "hb-1", ""]
    assert hb.status().heartbeat_id == "hb-2" and hb.status().failures == 0


def test_a_heartbeat_refused_for_the_id_it_sent_is_a_failure_not_a_loop():
    clob = FakeSdk(MARKETS)
    hb = HeartbeatLoop(venue(clob), MutableClock(), lambda *_: None)
    hb.beat()
    clob.fail_next("send_order_heartbeat", 400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-1"})

    assert hb.beat() == 1.0

    assert clob.called("send_order_heartbeat") == ["", "hb-1"]
    assert hb.status().failures == 1 and "Invalid Heartbeat ID" in hb.last_error


def test_a_failed_heartbeat_is_retried_soon():
    clob = FakeSdk(MARKETS)
    clob.fail_next("send_order_heartbeat", None)
    hb = HeartbeatLoop(venue(clob), MutableClock(), lambda *_: None)

    assert hb.beat() == 1.0
    assert hb.status().failures == 1


# --- reconcile -----------------------------------------------------------------------------------------


def maker_trade_row(
    trade_id: str, order_id: str, p: Place, qty: int, status: str = "MATCHED"
) -> dict[str, Any]:
    """A ``/data/trades`` row in which our order ``p`` was the maker (the venue's shape)."""
    info = next(m for m in MARKETS if m.market == p.market)
    token = info.token(p.outcome)
    taker_side = "SELL" if p.side is Side.BUY else "BUY"
    return {
        "id": trade_id, "taker_order_id": "0xtaker", "market": p.market, "asset_id": token,
        "side": taker_side, "size": format_qty(qty), "fee_rate_bps": "0", "price": format_px(p.px),
        "status": status, "match_time": "1800000000", "last_update": "1800000000", "outcome": "Yes",
        "bucket_index": 0, "owner": "k", "maker_address": "0xme", "trader_side": "MAKER",
        "transaction_hash": "0xtx",
        "maker_orders": [{
            "order_id": order_id, "owner": "k", "maker_address": "0xme", "matched_amount": format_qty(qty),
            "price": format_px(p.px), "fee_rate_bps": "0", "asset_id": token, "outcome": "Yes",
            "side": "BUY" if p.side is Side.BUY else "SELL",
        }],
    }  # fmt: skip


def test_reconcile_resolves_vanished_orders_from_trades_and_cancels_unknown_ones():
    r = make_rig(reconcile_grace_s=0.0)
    places = r.place(3)
    r.port.submit(places)
    r.sync()
    ids = {a.client_id: a.order_id for a in r.routed.of(Accepted)}
    # While the user channel was down: one order was cancelled by the venue, one matched 2 shares and
    # one filled in full (both shown by /data/trades), and an order we never placed appeared.
    del r.clob.open[ids[places[0].client_id]]
    r.clob.open[ids[places[1].client_id]].update(size_matched="2", associate_trades=["t-9"])
    r.clob.trade_rows.append(maker_trade_row("t-9", ids[places[1].client_id], places[1], 2 * QTY_ONE))
    full = dict(r.clob.open.pop(ids[places[2].client_id]))
    r.clob.trade_rows.append(maker_trade_row("t-10", ids[places[2].client_id], places[2], places[2].qty))
    r.clob.open["0xstranger"] = {**full, "id": "0xstranger"}

    r.bridge.on_reconnect()
    status = r.sync()

    (gone,) = r.routed.of(Canceled)
    assert gone.client_id == places[0].client_id
    assert gone.reason == "not open on the venue (reconcile)"
    fills = {f.client_id: f for f in r.routed.of(Filled)}
    assert (fills[places[1].client_id].qty, fills[places[1].client_id].px) == (2 * QTY_ONE, places[1].px)
    assert fills[places[1].client_id].leaves_qty == places[1].qty - 2 * QTY_ONE
    assert fills[places[2].client_id].leaves_qty == 0  # filled, never taken for cancelled
    assert r.clob.called("cancel_orders") == [["0xstranger"]]
    assert status.unknown_cancelled == 1

    # The lost trade's late user-channel message is not counted again.
    for ev in decode_user_frame(
        json.dumps(
            dict(maker_trade_row("t-9", ids[places[1].client_id], places[1], 2 * QTY_ONE), event_type="trade")
        ),
        AssetMap.from_markets(MARKETS),
    ):
        r.bridge.on_event(ev)
    r.sync()
    assert len(r.routed.of(Filled)) == 2


def test_trade_rows_and_position_rows_are_read_exactly():
    p = Place(market=M1.market, client_id="x", outcome=Outcome.YES, side=Side.BUY, px=6600, qty=10 * QTY_ONE)
    rows = [maker_trade_row("t-1", "0xo", p, 7_575_758), {"id": "junk"}, "not an object"]

    (t,) = trades_from_rows(rows, AssetMap.from_markets(MARKETS))
    (leg,) = t.legs
    assert (t.trade_id, t.status, t.ts_ns) == ("t-1", "MATCHED", 1_800_000_000 * 10**9)
    assert (leg.order_id, leg.px, leg.qty, leg.liquidity, leg.side) == (
        "0xo",
        6600,
        7_575_758,
        "maker",
        Side.BUY,
    )

    positions = positions_from_rows(
        [
            {"token_id": M1.yes_token, "current_size": "154.575758", "avg_price": "0.48333333"},
            {"token_id": M2.no_token, "current_size": 7.5, "avg_price": 0.3},
            {"token_id": "not ours", "current_size": "1", "avg_price": "0.5"},
        ],
        AssetMap.from_markets(MARKETS),
    )
    assert [(x.market, x.outcome, x.qty, x.avg_px) for x in positions] == [
        (M1.market, Outcome.YES, 154_575_758, 4833),
        (M2.market, Outcome.NO, 7_500_000, 3000),
    ]
    with pytest.raises(BadResponse, match="unusable size"):
        positions_from_rows(
            [{"token_id": M1.yes_token, "current_size": "1e999999", "avg_price": "0.5"}],
            AssetMap.from_markets(MARKETS),
        )


def position_row(token_id: str, size: Any, avg: Any) -> dict[str, Any]:
    """A Data API ``/v2/positions`` row (every field the SDK's ``Position`` requires)."""
    return {
        "proxy_wallet": WALLET, "token_id": token_id, "condition_id": "0x" + "ab" * 32,
        "current_size": size, "avg_price": avg, "entry_cost_usdc": 0, "entry_fees_usdc": 0,
        "total_cost_usdc": 0, "current_price": 0.5, "current_value": 0, "total_size": size,
        "realized_pnl": 0, "unrealized_pnl": 0, "total_pnl": 0, "percent_pnl": 0,
        "percent_realized_pnl": 0, "status": "OPEN", "redeemable": False, "mergeable": False,
        "negative_risk": False, "archived": False, "verified": False,
    }  # fmt: skip


def test_positions_come_from_every_page_of_the_sdks_listing_for_both_protocols():
    clob = FakeSdk(MARKETS)
    clob.position_rows = [
        position_row(M1.yes_token, "5", "0.5"),
        position_row(token(5555), "9", "0.5"),  # a market we do not trade
        position_row(M1.no_token, "2.25", "0.4"),
        position_row(M4.no_token, "7.575758", "0.33"),  # a Protocol V2 position
    ]

    got = venue(clob).positions()

    assert [(p.market, p.outcome, p.qty, p.avg_px) for p in got or []] == [
        (M1.market, Outcome.YES, 5 * QTY_ONE, 5000),
        (M1.market, Outcome.NO, 2_250_000, 4000),
        (M4.market, Outcome.NO, 7_575_758, 3300),
    ]
    assert clob.called("list_positions") == [500]


def test_a_404_positions_listing_means_none_and_no_source_means_none():
    clob = FakeSdk(MARKETS)
    clob.fail_next("list_positions", 404, {"error": "no route for GET /v2/positions"})

    assert venue(clob).positions() is None
    assert venue(positions=False).positions() is None


def test_balances_use_the_asset_type_of_the_markets_protocol():
    clob = FakeSdk(MARKETS)
    v = venue(clob)

    assert v.balance_qty(M1, Outcome.NO) == 7 * QTY_ONE
    assert v.balance_qty(M4, Outcome.YES) == 7 * QTY_ONE
    assert clob.called("get_balance_allowance") == [
        ("CONDITIONAL", M1.no_token),
        ("CONDITIONAL-V2", M4.yes_token),
    ]


def test_rate_limit_headers_are_read_from_every_reply_and_a_404_order_is_not_found():
    clob = FakeSdk(MARKETS, RateLimitListener())
    v = venue(clob)
    headers = {
        "Poly-RateLimit-Remaining": "0",
        "Poly-RateLimit-Tier": "Copper",
        "Poly-RateLimit-Reset": "1800000010.5",
        "Poly-RateLimit-Warning": "true",
    }
    clob.fail_next("post_orders", 429, {"error": "slow down"}, retry_after="3", headers=headers)

    with pytest.raises(Exception) as caught:
        v.post([], True)
    failure = v.describe_failure(caught.value)
    info = v.rate_limit()

    assert failure.rate_limited and failure.retry and not failure.ambiguous and failure.retry_after_s == 3.0
    assert info == RateLimitInfo(remaining=0, reset_s=1800000010.5, tier="Copper", warning=True)
    assert v.rate_limit() is None  # taken once
    assert v.order("0xnever") is None


def test_a_post_reply_the_sdk_cannot_read_leaves_the_whole_batch_unknown():
    clob = FakeSdk(MARKETS)
    clob.item_replies = [{"success": True, "orderID": "0x1", "status": "live", "makingAmount": None}]
    v = venue(clob)
    bids = [
        Place(
            market=M1.market, client_id=f"b{i}", outcome=Outcome.YES, side=Side.BUY, px=4000, qty=5 * QTY_ONE
        )
        for i in range(2)
    ]
    prepared = [v.prepare(p, M1, 100) for p in bids]

    results = v.post(prepared, True)

    assert [(r.unknown, r.order_id) for r in results] == [(True, ""), (True, "")]


def test_an_empty_order_lookup_is_not_found():
    # GET /data/order/{id} answers only for open orders: an empty reply for the rest, which the SDK
    # cannot read as an order.
    clob = FakeSdk(MARKETS)
    clob.get_order = lambda *, order_id: OpenOrder.parse_response("")  # type: ignore[method-assign]

    assert venue(clob).order("0xgone") is None


def test_a_cancel_reply_naming_neither_list_leaves_the_id_to_a_reconcile(rig):
    # The SDK reads ``not_canceled`` only: a ``notCanceled`` key is dropped, so the id is in neither.
    (p,) = rig.place(1)
    rig.port.submit([p])
    rig.sync()
    (acc,) = rig.routed.of(Accepted)
    original = rig.clob.cancel_orders

    def drops(*, order_ids: list[str]) -> Any:
        rig.clob.calls.append(("cancel_orders", list(order_ids)))
        return CancelOrdersResponse.parse_response({"canceled": [], "notCanceled": {order_ids[0]: "busy"}})

    rig.clob.cancel_orders = drops  # type: ignore[method-assign]
    rig.port.submit([Cancel(market=p.market, client_id=p.client_id)])
    rig.sync()  # the cancel goes out, and asks for a reconcile
    status = rig.sync()
    rig.clob.cancel_orders = original  # type: ignore[method-assign]

    assert rig.clob.called("cancel_orders") == [[acc.order_id]]
    assert rig.routed.of(Canceled) == []  # not taken for cancelled...
    assert status.reconciles == 1  # ...the venue's listing was asked instead (it still lists it)


def test_unmatched_is_in_doubt_and_the_listing_finds_it_resting(rig):
    # "unmatched": the taker delay is over and the order rests. The SDK drops the id; our digest is
    # the id, and the reconcile finds it listed.
    rig.clob.item_replies = [{"success": True, "orderID": "", "status": "unmatched"}]
    (p,) = rig.place(1)

    def post_and_rest(signed_orders: list[Any]) -> Any:
        reply = FakeSdk.post_orders(rig.clob, signed_orders)  # scripted: "unmatched", nothing listed
        o = signed_orders[0]
        oid = SIGNER.order_id(o, neg_risk=False, protocol="v1")
        rig.clob.open[oid] = {
            "id": oid, "asset_id": o.token_id, "market": M1.market, "side": "BUY",
            "price": format_px(p.px), "original_size": format_qty(p.qty), "size_matched": "0",
        }  # fmt: skip
        return reply

    rig.clob.post_orders = post_and_rest  # type: ignore[method-assign]
    rig.port.submit([p])
    rig.sync()  # posted: in doubt, a reconcile asked for
    status = rig.sync()

    (acc,) = rig.routed.of(Accepted)
    assert acc.client_id == p.client_id and acc.order_id in rig.clob.open
    assert rig.routed.of(Rejected) == [] and status.reconciles == 1 and status.in_doubt == 0


def test_open_order_rows_with_six_decimal_sizes_are_exact():
    # A /data/orders row of ours after a $5 market BUY at 0.66 took 7.575758 of its 10 shares.
    clob = FakeSdk(MARKETS)
    clob.open["0xpartly"] = {
        "id": "0xpartly", "asset_id": M1.no_token, "market": M1.market, "side": "SELL", "price": "0.66",
        "original_size": "10", "size_matched": "7.575758", "associate_trades": ["t-1"],
    }  # fmt: skip

    (row,) = venue(clob).open_orders()

    assert (row.order_id, row.outcome, row.side, row.px) == ("0xpartly", Outcome.NO, Side.SELL, 6600)
    assert (row.original_qty, row.matched_qty) == (10 * QTY_ONE, 7_575_758)


def test_open_orders_are_read_from_every_page_and_a_bad_row_spoils_only_itself(caplog):
    # The recorded order (three copies, one size_matched edited to 7 decimals) over two pages: the
    # SDK reads them all; the row whose size we cannot take exactly is listed but unusable.
    rec = msgspec.json.decode((FIX / "order_placement_2024-09.json").read_bytes())
    market = MarketInfo(market=rec["market"], yes_token=rec["asset_id"], no_token=token(48331), tick_px=10)
    clob = FakeSdk([market])
    rec = dict(rec, associate_trades=[])  # a user-channel order; the REST listing serves a list here
    for row in (
        dict(rec, id="0xa", size_matched="1.5"),
        dict(rec, id="0xb", size_matched="1.0000001"),
        dict(rec, id="0xc", original_size="7.575758", side="SELL"),
    ):
        clob.open[row["id"]] = row

    with caplog.at_level("WARNING"):
        got = PolymarketVenue(clob, SIGNER, [market]).open_orders()

    assert [(o.order_id, o.side, o.px, o.original_qty, o.matched_qty) for o in got] == [
        ("0xa", Side.BUY, 5130, 5 * QTY_ONE, 1_500_000),
        ("0xb", Side.BUY, 0, 0, -1),  # still listed (so not declared gone), its sizes unusable
        ("0xc", Side.SELL, 5130, 7_575_758, 0),
    ]
    assert any(
        "order 0xb" in r.getMessage()
        and "size_matched: '1.0000001' has more than 6 decimals" in r.getMessage()
        for r in caplog.records
    )


def test_a_page_the_sdk_cannot_read_fails_the_listing_as_a_bad_response():
    clob = FakeSdk(MARKETS)
    clob.open["0xa"] = {"id": "0xa", "asset_id": M1.yes_token, "market": M1.market}  # no side, price...

    with pytest.raises(BadResponse):
        venue(clob).open_orders()


def test_sdk_trades_read_back_exactly_as_the_wire_rows_they_came_from():
    p = Place(market=M1.market, client_id="x", outcome=Outcome.YES, side=Side.BUY, px=6600, qty=10 * QTY_ONE)
    wire = [maker_trade_row("t-1", "0xo", p, 7_575_758), dict(CROSS, match_time="1800000000123")]
    assets = AssetMap.from_markets(MARKETS)

    via_sdk = trades_from_rows([trade_row(ClobTrade.parse_response(w)) for w in wire], assets)

    assert via_sdk == trades_from_rows(wire, assets)
    assert [t.ts_ns for t in via_sdk] == [1_800_000_000 * 10**9, 1_800_000_000_123 * 10**6]


def test_trades_are_asked_from_one_second_before_the_cursor():
    clob = FakeSdk(MARKETS)
    v = venue(clob)

    v.trades(1_800_000_000_700_000_000)
    v.trades(0)

    assert clob.called("list_account_trades") == ["1799999999", None]


def test_user_channel_fills_with_six_decimal_sizes_reach_the_gateway_exactly():
    frame = dict(CROSS, maker_orders=[dict(CROSS["maker_orders"][0], matched_amount="7.575758")])

    (trade,) = decode_user_frame(json.dumps(frame), AssetMap.from_markets(MARKETS))
    (msg,) = user_event_messages(trade)

    assert isinstance(msg, VenueTrade)
    (leg,) = msg.legs
    assert (leg.liquidity, leg.px, leg.qty) == ("maker", 5130, 7_575_758)


def test_startup_adopts_our_leftovers_and_cancels_those_of_markets_we_do_not_trade():
    clob = FakeSdk(MARKETS, RateLimitListener())
    clob.open["0xleft"] = {
        "id": "0xleft", "asset_id": M1.yes_token, "market": M1.market, "side": "BUY", "price": "0.4",
        "original_size": "5", "size_matched": "0", "associate_trades": [],
    }  # fmt: skip
    clob.open["0xother"] = {**clob.open["0xleft"], "id": "0xother", "asset_id": token(5555)}

    r = make_rig(clob=clob)
    r.sync()

    assert r.clob.called("cancel_orders") == [["0xother"]]  # nothing of ours stays open elsewhere
    assert list(r.clob.open) == ["0xleft"]  # kept with its queue place
    (adopted,) = r.routed.of(Adopted)
    assert (adopted.order_id, adopted.px, adopted.qty) == ("0xleft", 4000, 5 * QTY_ONE)


# --- fills from the user channel -----------------------------------------------------------------------


def _fill_leg(trade_id: str, order_id: str, p: Place, status: str, qty: int) -> Any:
    leg = TradeLeg(order_id=order_id, outcome=p.outcome, side=p.side, px=p.px, qty=qty, liquidity="maker")
    return VenueTrade(trade_id=trade_id, market=p.market, status=status, ts_ns=1, legs=(leg,))


def test_maker_fill_on_the_complementary_token_is_counted_once_and_failed_reverses_it(rig):
    p = Place(
        market=M3.market, client_id="m3-1", outcome=Outcome.YES, side=Side.BUY, px=5130, qty=10 * QTY_ONE
    )
    rig.port.submit([p])
    rig.sync()
    (acc,) = rig.routed.of(Accepted)
    assets = AssetMap.from_markets(MARKETS)
    frame = dict(CROSS, maker_orders=[dict(CROSS["maker_orders"][0], order_id=acc.order_id)])

    for status in ("MATCHED", "MINED", "CONFIRMED"):
        for ev in decode_user_frame(json.dumps(dict(frame, status=status)), assets):
            rig.bridge.on_event(ev)
    rig.sync()

    (fill,) = rig.routed.of(Filled)
    assert (fill.outcome, fill.side, fill.px, fill.qty) == (Outcome.YES, Side.BUY, 5130, 5 * QTY_ONE)
    assert (fill.liquidity, fill.fee_usdc6, fill.leaves_qty, fill.trade_id) == (
        "maker",
        0,
        5 * QTY_ONE,
        CROSS["id"],
    )

    for ev in decode_user_frame(json.dumps(dict(frame, status="FAILED")), assets):
        rig.bridge.on_event(ev)
    status = rig.sync()

    reversal = rig.routed.of(Filled)[-1]
    assert (reversal.side, reversal.qty, reversal.leaves_qty) == (Side.SELL, 5 * QTY_ONE, 10 * QTY_ONE)
    assert reversal.trade_id == f"{CROSS['id']}:failed"
    assert status.reversals == 1


def test_the_event_log_has_each_fill_with_its_venue_ids_and_every_status_change(rig):
    # What the run's audit log needs to reconcile with the venue's trades, leg by leg.
    sink = ListSink()
    rig.ref.ask(SetSink(sink), timeout=5)
    (p,) = rig.place(1, qty=10 * QTY_ONE)
    rig.port.submit([p])
    rig.sync()
    (acc,) = rig.routed.of(Accepted)

    for status in ("MATCHED", "MINED", "CONFIRMED"):
        rig.ref.tell(_fill_leg("t-1", acc.order_id, p, status, 7_575_758))
    rig.ref.tell(_fill_leg("t-2", acc.order_id, p, "MATCHED", 1_000_000))
    rig.ref.tell(_fill_leg("t-2", acc.order_id, p, "FAILED", 1_000_000))
    rig.sync()

    sent = [d for k, _, _, d in sink.records if k == "order_sent"]
    assert [(d["client_id"], d["order_id"]) for d in sent] == [(p.client_id, acc.order_id)]
    assert [a.order_id for a in sink.kinds("accepted")] == [acc.order_id]
    ledger = [d for k, _, _, d in sink.records if k == "ledger"]
    fills = [d for d in ledger if d["event"] == "fill"]
    assert [
        (f["trade_id"], f["order_id"], f["client_id"], f["status"], f["qty"], f["px"]) for f in fills
    ] == [
        ("t-1", acc.order_id, p.client_id, "MATCHED", 7_575_758, p.px),
        ("t-2", acc.order_id, p.client_id, "MATCHED", 1_000_000, p.px),
    ]
    assert (fills[0]["liquidity"], fills[0]["fee_usdc6"], fills[0]["leaves_qty"]) == ("maker", 0, 2_424_242)
    assert [(d["trade_id"], d["status"]) for d in ledger if d["event"] == "trade_status"] == [
        ("t-1", "MINED"),
        ("t-1", "CONFIRMED"),
    ]
    assert [(d["trade_id"], d["order_id"], d["qty"]) for d in ledger if d["event"] == "trade_failed"] == [
        ("t-2", acc.order_id, 1_000_000)
    ]


def test_a_full_fill_is_terminal_and_a_later_cancel_is_not_reported(rig):
    (p,) = rig.place(1, qty=5 * QTY_ONE)
    rig.port.submit([p])
    rig.sync()
    (acc,) = rig.routed.of(Accepted)

    rig.ref.tell(_fill_leg("t-1", acc.order_id, p, "MATCHED", 5 * QTY_ONE))
    rig.port.submit([Cancel(market=p.market, client_id=p.client_id)])
    rig.sync()

    (fill,) = rig.routed.of(Filled)
    assert fill.leaves_qty == 0
    assert rig.routed.of(Canceled) == []
    assert rig.clob.called("cancel_orders") == []


def test_a_venue_cancellation_event_reports_canceled(rig):
    (p,) = rig.place(1)
    rig.port.submit([p])
    rig.sync()
    (acc,) = rig.routed.of(Accepted)

    rig.ref.tell(UserOrderUpdate(order_id=acc.order_id, kind="CANCELLATION", status="CANCELED"))
    rig.sync()

    assert [c.reason for c in rig.routed.of(Canceled)] == ["canceled"]


# --- shutdown ------------------------------------------------------------------------------------------


def test_shutdown_cancels_everything_it_placed_and_confirms(rig):
    rig.port.submit(rig.place(3, M1) + rig.place(2, M2))
    rig.sync()

    report = rig.ref.ask(Shutdown(), timeout=5)

    assert report == ShutdownReport(canceled=5, remaining=(), confirmed=True)
    assert sorted(rig.clob.called("cancel_orders")[-1]) == sorted(a.order_id for a in rig.routed.of(Accepted))
    assert rig.clob.open == {}
    assert len(rig.routed.of(Canceled)) == 5


def test_stop_cancels_everything_and_retries_a_failed_cancel():
    r = make_rig()
    r.port.submit(r.place(2))
    r.sync()
    r.clob.fail_next("cancel_orders", 500, {"error": "boom"})

    r.ref.stop(timeout=5)

    assert len(r.clob.called("cancel_orders")) == 2
    assert r.clob.open == {}
    assert r.waits == [0.5]  # one bounded wait between the attempts
    assert len(r.routed.of(Canceled)) == 2


def test_reconcile_message_is_accepted(rig):
    rig.ref.tell(Reconcile("manual"))

    status = rig.sync()

    assert status.reconciles == 1
    assert rig.clob.called("list_open_orders") == [None, None]  # startup + manual


def test_cancel_all_on_a_stopped_gateway_does_not_raise(rig):
    rig.ref.stop()

    rig.port.cancel_all(M1.market)  # an actor failing during shutdown


def test_submit_tells_only(rig):
    # ExchangePort.submit must return without waiting for the venue: the gateway is blocked here.
    gate = threading.Event()
    original = rig.clob.post_orders

    def slow(*args: Any, **kw: Any) -> Any:
        gate.wait(5)
        return original(*args, **kw)

    rig.clob.post_orders = slow  # type: ignore[method-assign]
    rig.port.submit(rig.place(1))
    rig.port.submit([CancelAll(market=M2.market)])  # returns at once while the post is stuck
    gate.set()
    rig.sync()

    assert len(rig.routed.of(Accepted)) == 1


def test_a_venue_id_other_than_the_digest_is_adopted_for_later_cancels(rig):
    rig.clob.item_replies = [{"success": True, "orderID": "0xvenue-said", "status": "live"}]
    (p,) = rig.place(1)

    rig.port.submit([p])
    rig.sync()
    rig.port.submit([Cancel(market=p.market, client_id=p.client_id)])
    rig.sync()

    assert [a.order_id for a in rig.routed.of(Accepted)] == ["0xvenue-said"]
    assert rig.clob.called("cancel_orders") == [["0xvenue-said"]]


# --- protocol versions ---------------------------------------------------------------------------------


def test_v2_orders_are_signed_for_exchange_v3_and_v1_orders_for_their_exchange(rig):
    p1, p4 = rig.place(1, M1)[0], rig.place(1, M4)[0]

    rig.port.submit([p1, p4])
    rig.sync()

    posted = {o.token_id: o for o, _ in rig.clob.called("post_orders")[0]}
    v2 = posted[M4.yes_token]
    ids = {a.client_id: a.order_id for a in rig.routed.of(Accepted)}
    assert ids[p4.client_id] == SIGNER.order_id(v2, neg_risk=False, protocol="v2")
    assert ids[p4.client_id] != SIGNER.order_id(v2, neg_risk=False, protocol="v1")
    assert ids[p1.client_id] == SIGNER.order_id(posted[M1.yes_token], neg_risk=False, protocol="v1")


@pytest.mark.parametrize(
    ("market", "says"),
    [
        (msgspec.structs.replace(M1, version="v2"), "v2"),
        (msgspec.structs.replace(M4, version="v1"), "v1"),
    ],
    ids=["v2-with-token-ids", "v1-with-position-ids"],
)
def test_a_market_whose_ids_disagree_with_its_version_is_refused_before_signing(market, says):
    v = PolymarketVenue(FakeSdk([market]), SIGNER, [market])
    place = Place(
        market=market.market, client_id="c", outcome=Outcome.YES, side=Side.BUY, px=4000, qty=5 * QTY_ONE
    )

    with pytest.raises(OrderRefused, match=f"Gamma says version {says} but its YES id"):
        v.prepare(place, market, 100)

    assert v.refused()[market.market].endswith("not traded")
    v.add_market(msgspec.structs.replace(market, version="v1" if says == "v2" else "v2"))  # Gamma corrected
    assert v.prepare(place, market, 100).order_id.startswith("0x")
