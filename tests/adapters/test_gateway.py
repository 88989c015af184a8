"""OrderGatewayActor over PolymarketVenue over a fake ClobLike (real signing, fake HTTP).

The fake keeps an order book of "open orders" like the venue's ``/data/orders`` and trade rows like
``/data/trades``, answers like the client does (dicts, or ``PolyApiException`` built from an httpx
response so Retry-After and the rate-limit headers flow through the probe), and records every call.
Timers are fired by hand (the clock moves to the latest of them); tests synchronise with
``ask(GetGatewayStatus())``, which flushes pending work first. The gateway's rules themselves are
tested against a venue model in ``tests/actors/test_gateway.py``.
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
from eth_account import Account
from py_clob_client_v2.exceptions import PolyApiException
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.signer import Signer

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
from adapters.polymarket.clob_port import (
    ClobExchangePort,
    DataApiPositions,
    PolymarketVenue,
    UserChannelBridge,
    positions_from_rows,
    trades_from_rows,
    user_event_messages,
)
from adapters.polymarket.errors import BadResponse, RetryAfterProbe
from adapters.polymarket.orders import order_id_of
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
KEY = Account.create().key.hex()
BUILDER = OrderBuilder(Signer(KEY, 137))
M1 = MarketInfo(market="0xm1", yes_token="111", no_token="112", tick_px=100)
M2 = MarketInfo(market="0xm2", yes_token="221", no_token="222", tick_px=10, neg_risk=True)
# The cross-asset trade fixture: our maker order is the BUY YES leg at 0.513.
CROSS = msgspec.json.decode((FIX / "trade_maker_cross_asset_2025-11_edited.json").read_bytes())
M3 = MarketInfo(
    market=CROSS["market"], yes_token=CROSS["maker_orders"][0]["asset_id"], no_token="999", tick_px=10
)
MARKETS = [M1, M2, M3]


class FakeClob:
    """A fake and a spy of ``py_clob_client_v2.ClobClient`` (see the module docstring)."""

    def __init__(
        self, markets: list[MarketInfo], probe: RetryAfterProbe | None = None, builder: Any = BUILDER
    ):
        self.builder = builder
        self.neg_risk = {t: m.neg_risk for m in markets for t in (m.yes_token, m.no_token)}
        self.market_of = {t: m.market for m in markets for t in (m.yes_token, m.no_token)}
        self.calls: list[tuple[str, Any]] = []
        self.open: dict[str, dict[str, Any]] = {}
        self.item_replies: list[dict[str, Any] | None] = []  # per posted order; None: accept
        self.failures: dict[str, list[tuple[int | None, dict[str, Any], bool]]] = defaultdict(list)
        self.hb = 0
        self.trade_rows: list[dict[str, Any]] = []
        self.closed: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.http = httpx.Client(transport=httpx.MockTransport(self._respond))
        if probe is not None:
            probe.install(self.http)

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
        spec = {"body": body or {"error": "scripted"}, "retry_after": retry_after, "headers": headers or {}}
        self.failures[method].append((status, spec, applied))

    def called(self, method: str) -> list[Any]:
        return [args for m, args in self.calls if m == method]

    def _respond(self, request: httpx.Request) -> httpx.Response:
        spec = json.loads(request.headers["x-spec"])
        headers = {"Retry-After": spec["retry_after"]} if spec["retry_after"] else {}
        headers.update(spec.get("headers") or {})
        return httpx.Response(int(request.headers["x-status"]), headers=headers, json=spec["body"])

    def _run(self, method: str, effect: Callable[[], Any]) -> Any:
        if self.failures[method]:
            status, spec, applied = self.failures[method].pop(0)
            if applied:
                effect()  # the venue did it, but the reply is lost
            if status is None:
                raise PolyApiException(error_msg="Request exception!")
            resp = self.http.get(
                "http://venue.test/", headers={"x-status": str(status), "x-spec": json.dumps(spec)}
            )
            raise PolyApiException(resp)
        return effect()

    # the ClobLike surface
    def post_orders(self, args: list[Any], post_only: bool = False, defer_exec: bool = False) -> Any:
        self.calls.append(("post_orders", [(a.order, a.orderType) for a in args]))
        assert post_only and not defer_exec

        def effect() -> list[dict[str, Any]]:
            out = []
            for a in args:
                scripted = self.item_replies.pop(0) if self.item_replies else None
                if scripted is not None:
                    out.append(scripted)
                    continue
                o = a.order
                oid = order_id_of(o, self.neg_risk[o.tokenId])
                buy = int(o.side) == 0
                maker, taker = int(o.makerAmount), int(o.takerAmount)
                qty = taker if buy else maker  # the share amount is a Qty (1e-6 shares)
                px = (maker if buy else taker) * PX_ONE // qty
                with self.lock:
                    self.open[oid] = {
                        "id": oid,
                        "asset_id": o.tokenId,
                        "market": self.market_of[o.tokenId],
                        "side": "BUY" if buy else "SELL",
                        "price": format_px(px),
                        "original_size": format_qty(qty),
                        "size_matched": "0",
                        "associate_trades": [],
                    }
                out.append({"success": True, "orderID": oid, "status": "live", "errorMsg": ""})
            return out

        return self._run("post_orders", effect)

    def cancel_orders(self, order_hashes: list[str]) -> Any:
        self.calls.append(("cancel_orders", list(order_hashes)))

        def effect() -> dict[str, Any]:
            with self.lock:
                done = [i for i in order_hashes if i in self.open]
                for i in done:
                    self.closed[i] = dict(self.open.pop(i), status="CANCELED")
            return {
                "canceled": done,
                "not_canceled": {i: "order not found" for i in order_hashes if i not in done},
            }

        return self._run("cancel_orders", effect)

    def cancel_market_orders(self, payload: Any) -> Any:
        self.calls.append(("cancel_market_orders", payload.market))

        def effect() -> dict[str, Any]:
            with self.lock:
                done = [i for i, o in self.open.items() if o["market"] == payload.market]
                for i in done:
                    del self.open[i]
            return {"canceled": done, "not_canceled": {}}

        return self._run("cancel_market_orders", effect)

    def post_heartbeat(self, heartbeat_id: str = "") -> Any:
        self.calls.append(("post_heartbeat", heartbeat_id))

        def effect() -> dict[str, Any]:
            self.hb += 1
            return {"heartbeat_id": f"hb-{self.hb}"}

        return self._run("post_heartbeat", effect)

    def get_open_orders(
        self, params: Any = None, only_first_page: bool = False, next_cursor: str | None = None
    ) -> Any:
        self.calls.append(("get_open_orders", None))
        with self.lock:
            rows = [dict(o) for o in self.open.values()]
        return self._run("get_open_orders", lambda: rows)

    def get_trades(
        self, params: Any = None, only_first_page: bool = False, next_cursor: str | None = None
    ) -> Any:
        self.calls.append(("get_trades", params.after if params is not None else None))
        with self.lock:
            rows = [dict(t) for t in self.trade_rows]
        return self._run("get_trades", lambda: rows)

    def get_order(self, order_id: str) -> Any:
        self.calls.append(("get_order", order_id))
        with self.lock:
            row = self.open.get(order_id) or self.closed.get(order_id)
        if row is None:
            self.fail_next("get_order", 404, {"error": "order not found"})
        return self._run("get_order", lambda: dict(row or {}, status=(row or {}).get("status", "LIVE")))


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
    clob: FakeClob
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


def make_rig(clob: FakeClob | None = None, probe: RetryAfterProbe | None = None, **cfg: Any) -> Rig:
    probe = probe or RetryAfterProbe()
    clob = clob or FakeClob(MARKETS, probe)
    clock = MutableClock()
    routed, schedule, waits = Routed(), ManualSchedule(clock), []
    config = GatewayConfig(**{"heartbeat_interval_s": None, "reconcile_interval_s": None, **cfg})
    ref, port, bridge = start_gateway(
        clob,
        MARKETS,
        routed,
        clock,
        config=config,
        schedule=schedule,
        wait=waits.append,
        retry_after=probe,
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
    neg = [o for o, _ in rig.clob.called("post_orders")[0] if o.tokenId == M2.yes_token]
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


class SkewedBuilder:
    """Signs one micro-unit short: the gateway must refuse to send it."""

    def build_order(self, order_args, options, version=2, fee_rate_bps=None):
        signed = BUILDER.build_order(order_args, options, version, fee_rate_bps)
        return dataclasses.replace(signed, makerAmount=str(int(signed.makerAmount) - 1))


def test_signed_amount_mismatch_is_rejected_and_never_sent():
    r = make_rig(clob=FakeClob(MARKETS, builder=SkewedBuilder()))

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


def test_heartbeats_chain_the_returned_id_and_resync_a_stale_one():
    clob = FakeClob(MARKETS)
    venue = PolymarketVenue(clob, AssetMap.from_markets(MARKETS))
    hb = HeartbeatLoop(venue, MutableClock(), lambda *_: None, interval_s=5.0)
    hb.beat()
    hb.beat()
    clob.fail_next("post_heartbeat", 400, {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": "hb-current"})

    delay = hb.beat()

    assert clob.called("post_heartbeat") == ["", "hb-1", "hb-2", "hb-current"]
    assert hb.status().heartbeat_id == "hb-3" and delay == 5.0


def test_a_failed_heartbeat_is_retried_soon():
    clob = FakeClob(MARKETS)
    clob.fail_next("post_heartbeat", None)
    hb = HeartbeatLoop(PolymarketVenue(clob, AssetMap.from_markets(MARKETS)), MutableClock(), lambda *_: None)

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


def test_data_api_positions_follow_pages_and_a_404_means_no_listing():
    pages = {
        "": {"data": [{"token_id": M1.yes_token, "current_size": "5", "avg_price": "0.5"}],
             "pagination": {"has_more": True, "next_cursor": "c2"}},
        "c2": {"data": [{"token_id": M1.no_token, "current_size": "2.25", "avg_price": "0.4"}],
               "pagination": {"has_more": False, "next_cursor": None}},
    }  # fmt: skip
    seen: list[dict[str, str]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        if request.url.path != "/data-api/v2/positions":
            return httpx.Response(404, json={"error": "no route"})
        return httpx.Response(200, json=pages[request.url.params.get("cursor", "")])

    http = httpx.Client(transport=httpx.MockTransport(respond))
    src = DataApiPositions("http://venue.test/data-api", "0xWALLET", http=http)
    venue = PolymarketVenue(FakeClob(MARKETS), AssetMap.from_markets(MARKETS), positions=src)

    got = venue.positions()

    assert [(p.outcome, p.qty) for p in got or []] == [(Outcome.YES, 5 * QTY_ONE), (Outcome.NO, 2_250_000)]
    assert [q.get("user") for q in seen] == ["0xWALLET", "0xWALLET"] and seen[1]["cursor"] == "c2"
    missing = DataApiPositions("http://venue.test/elsewhere", "0xWALLET", http=http)
    assert (
        PolymarketVenue(FakeClob(MARKETS), AssetMap.from_markets(MARKETS), positions=missing).positions()
        is None
    )


def test_rate_limit_headers_are_read_from_every_reply_and_a_404_order_is_not_found():
    probe = RetryAfterProbe()
    clob = FakeClob(MARKETS, probe)
    venue = PolymarketVenue(clob, AssetMap.from_markets(MARKETS), retry_after=probe)
    headers = {
        "Poly-RateLimit-Remaining": "0",
        "Poly-RateLimit-Tier": "Copper",
        "Poly-RateLimit-Reset": "1800000010.5",
        "Poly-RateLimit-Warning": "true",
    }
    clob.fail_next("post_orders", 429, {"error": "slow down"}, retry_after="3", headers=headers)

    with pytest.raises(Exception) as caught:
        venue.post([], True)
    failure = venue.describe_failure(caught.value)
    info = venue.rate_limit()

    assert failure.rate_limited and failure.retry and not failure.ambiguous and failure.retry_after_s == 3.0
    assert info == RateLimitInfo(remaining=0, reset_s=1800000010.5, tier="Copper", warning=True)
    assert venue.rate_limit() is None  # taken once
    assert venue.order("0xnever") is None


def test_open_order_rows_with_six_decimal_sizes_are_exact():
    # A /data/orders row of ours after a $5 market BUY at 0.66 took 7.575758 of its 10 shares.
    clob = FakeClob(MARKETS)
    clob.open["0xpartly"] = {
        "id": "0xpartly", "asset_id": M1.no_token, "market": M1.market, "side": "SELL", "price": "0.66",
        "original_size": "10", "size_matched": "7.575758", "associate_trades": ["t-1"],
    }  # fmt: skip
    venue = PolymarketVenue(clob, AssetMap.from_markets(MARKETS))

    (row,) = venue.open_orders()

    assert (row.order_id, row.outcome, row.side, row.px) == ("0xpartly", Outcome.NO, Side.SELL, 6600)
    assert (row.original_qty, row.matched_qty) == (10 * QTY_ONE, 7_575_758)


def test_an_open_orders_page_with_one_bad_row_keeps_the_other_rows(caplog):
    # A /data/orders page made of the recorded order (three copies, one size_matched edited to 7
    # decimals) and a row that is not an object: only the bad rows are spoiled.
    rec = msgspec.json.decode((FIX / "order_placement_2024-09.json").read_bytes())
    market = MarketInfo(market=rec["market"], yes_token=rec["asset_id"], no_token="48331", tick_px=10)
    rows = [
        dict(rec, id="0xa", size_matched="1.5"),
        dict(rec, id="0xb", size_matched="1.0000001"),
        dict(rec, id="0xc", original_size="7.575758", side="SELL"),
    ]
    clob = FakeClob([market])
    clob.get_open_orders = lambda *a, **k: [rows[0], "junk", rows[1], rows[2]]  # type: ignore[method-assign]
    venue = PolymarketVenue(clob, AssetMap.from_markets([market]))

    with caplog.at_level("WARNING"):
        got = venue.open_orders()

    assert [(o.order_id, o.side, o.px, o.original_qty, o.matched_qty) for o in got] == [
        ("0xa", Side.BUY, 5130, 5 * QTY_ONE, 1_500_000),
        ("0xb", Side.BUY, 0, 0, -1),  # still listed (so not declared gone), its sizes unusable
        ("0xc", Side.SELL, 5130, 7_575_758, 0),
    ]
    warnings = [r.getMessage() for r in caplog.records]
    assert any("not an object" in w for w in warnings)
    assert any(
        "order 0xb" in w and "size_matched: '1.0000001' has more than 6 decimals" in w for w in warnings
    )


def test_user_channel_fills_with_six_decimal_sizes_reach_the_gateway_exactly():
    frame = dict(CROSS, maker_orders=[dict(CROSS["maker_orders"][0], matched_amount="7.575758")])

    (trade,) = decode_user_frame(json.dumps(frame), AssetMap.from_markets(MARKETS))
    (msg,) = user_event_messages(trade)

    assert isinstance(msg, VenueTrade)
    (leg,) = msg.legs
    assert (leg.liquidity, leg.px, leg.qty) == ("maker", 5130, 7_575_758)


def test_startup_adopts_our_leftovers_and_cancels_those_of_markets_we_do_not_trade():
    clob = FakeClob(MARKETS)
    clob.open["0xleft"] = {
        "id": "0xleft", "asset_id": M1.yes_token, "market": M1.market, "side": "BUY", "price": "0.4",
        "original_size": "5", "size_matched": "0", "associate_trades": [],
    }  # fmt: skip
    clob.open["0xother"] = {**clob.open["0xleft"], "id": "0xother", "asset_id": "not-ours"}

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
    assert rig.clob.called("get_open_orders") == [None, None]  # startup + manual


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
