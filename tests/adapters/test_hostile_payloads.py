"""Malformed or hostile venue payloads are clear errors that never kill the process.

Deeply nested JSON, 10 MB strings, numbers with thousands of digits and wrong types, on the market and
user channels (``parse.decode_*_frame``), REST books (``decode_book``/``parse_book``), the CLOB's
replies as ``clob_port``/``errors`` read them, and Gamma (``adapters.gamma``). Each is skipped or
refused with a short reason; what is good next to it still goes through.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest
from polymarket._internal.actions.orders.post import parse_order_responses
from websockets.asyncio.server import serve

from adapters.gamma import GammaClient, GammaError
from adapters.market_cache import CacheEntry, MarketCacheError, read_markets_file, write_markets_file
from adapters.polymarket import sdk
from adapters.polymarket.clob_port import PolymarketVenue
from adapters.polymarket.errors import BadResponse, PolymarketError, error_message, place_replies
from adapters.polymarket.orders import OrderSigner
from adapters.polymarket.parse import (
    MAX_REASON_CHARS,
    AssetMap,
    PayloadError,
    decode_book,
    decode_market_frame,
    decode_user_frame,
    parse_book,
)
from adapters.polymarket.ws_market import MarketWsClient, MarketWsConfig
from app.process import restore_default_recursion_limit
from core.markets import MarketInfo
from core.messages import BookDelta, BookSnapshot
from core.units import Outcome
from tests.adapters.sdk_offline import offline_client

MARKET = "0xmarket"
YES, NO = str((7 << 96) + 111), str((7 << 96) + 222)  # V1 token ids
ASSETS = AssetMap({YES: (MARKET, Outcome.YES), NO: (MARKET, Outcome.NO)})


@pytest.fixture(autouse=True)
def default_recursion_limit() -> Iterator[None]:
    """Run as the trading process runs: at Python's default recursion limit (``app.process``).

    This test process imported the venue SDK, whose py_ecc raised the limit to 100,000: at that
    limit the deep payloads below overflow the C stack and kill the process, the very crash fixed.
    """
    before = sys.getrecursionlimit()
    restore_default_recursion_limit()
    yield
    sys.setrecursionlimit(before)


DEEP = "[" * 100_000 + "]" * 100_000  # 200 kB: the crash was a 198 kB reply like this
HUGE = "A" * 10_000_000  # 10 MB
DIGITS = "9" * 5_000  # past Python's 4,300-digit int() limit


def price_change(**entry: Any) -> dict[str, Any]:
    e = {"asset_id": YES, "price": "0.5", "size": "10", "side": "BUY"} | entry
    return {
        "event_type": "price_change",
        "market": MARKET,
        "timestamp": "1700000000000",
        "price_changes": [e],
    }


def book(**fields: Any) -> dict[str, Any]:
    return {
        "event_type": "book",
        "asset_id": YES,
        "market": MARKET,
        "timestamp": "1700000000000",
        "bids": [{"price": "0.48", "size": "10"}],
        "asks": [{"price": "0.52", "size": "10"}],
    } | fields


def trade(**fields: Any) -> dict[str, Any]:
    return {
        "event_type": "trade",
        "id": "t-1",
        "taker_order_id": "o-1",
        "asset_id": YES,
        "side": "BUY",
        "size": "10",
        "price": "0.5",
        "status": "MATCHED",
        "trader_side": "TAKER",
        "timestamp": "1700000000",
    } | fields


def order(**fields: Any) -> dict[str, Any]:
    return {
        "event_type": "order",
        "id": "o-1",
        "type": "PLACEMENT",
        "asset_id": YES,
        "side": "BUY",
        "price": "0.5",
        "original_size": "10",
        "timestamp": "1700000000",
    } | fields


def encode(obj: Any) -> bytes:
    return msgspec.json.encode(obj)


def with_raw(obj: dict[str, Any], field: str, raw_json: str) -> bytes:
    """``obj`` as JSON with ``field``'s value written as ``raw_json`` (a number JSON libraries refuse)."""
    text = encode({**obj, field: "@@"}).decode()
    return text.replace('"@@"', raw_json).encode()


MARKET_FRAMES = {
    "deep frame": DEEP,
    "deep field": '{"event_type": "book", "asset_id": "111", "bids": ' + DEEP + "}",
    "deep element": "[" + DEEP + "]",
    "size of 5000 digits": encode(price_change(size=DIGITS)),
    "price of 5000 digits": encode(price_change(price="0." + DIGITS)),
    "size as a 5000-digit JSON number": with_raw(price_change(), "timestamp", DIGITS),
    "timestamp of 5000 digits": encode(book(timestamp=DIGITS)),
    "tick of 5000 digits": encode(book(tick_size=DIGITS)),
    "tick change of 5000 digits": encode(
        {"event_type": "tick_size_change", "asset_id": YES, "new_tick_size": "0." + DIGITS}
    ),
    "side of 10 MB": encode(price_change(side=HUGE)),
    "asset id of 10 MB": encode(price_change(asset_id=HUGE)),
    "event type of 10 MB": encode({"event_type": HUGE, "asset_id": YES}),
    "asset id a number": encode(book(asset_id=111)),
    "bids a string": encode(book(bids="none")),
    "levels of wrong types": encode(book(bids=[[1, 2]], asks=[{"price": None, "size": []}])),
    "binary": bytes(range(256)) * 10,
    "a bare number": b"1e999999",
}


@pytest.mark.parametrize("frame", MARKET_FRAMES.values(), ids=MARKET_FRAMES.keys())
def test_market_channel_skips_a_hostile_frame_with_a_short_reason(frame):
    skipped: list[str] = []

    events = decode_market_frame(frame, ASSETS, skipped=skipped)

    assert events == []
    assert skipped and all(len(r) <= MAX_REASON_CHARS for r in skipped), skipped


@pytest.mark.parametrize(
    "hostile",
    [price_change(size=DIGITS), price_change(side=HUGE), book(timestamp=DIGITS), {"event_type": HUGE}],
    ids=["digits", "10MB", "timestamp", "type"],
)
def test_a_hostile_message_does_not_spoil_the_good_one_next_to_it(hostile):
    skipped: list[str] = []

    events = decode_market_frame(encode([hostile, price_change(price="0.47")]), ASSETS, skipped=skipped)

    assert [(type(e), e.px) for e in events] == [(BookDelta, 4700)]
    assert len(skipped) == 1 and len(skipped[0]) <= MAX_REASON_CHARS


USER_FRAMES = {
    "deep frame": DEEP,
    "deep maker orders": '{"event_type": "trade", "id": "t", "maker_orders": ' + DEEP + "}",
    "trade size of 5000 digits": encode(trade(size=DIGITS)),
    "fee rate of 5000 digits": encode(trade(fee_rate_bps=DIGITS)),
    "bucket index of 5000 digits": encode(trade(bucket_index=DIGITS)),
    "match time of 5000 digits": encode(trade(match_time=DIGITS)),
    "status of 10 MB": encode(trade(status=HUGE)),
    "order type of 10 MB": encode(order(type=HUGE)),
    "order size of 5000 digits": encode(order(original_size=DIGITS)),
    "order expiration of 5000 digits": encode(order(expiration=DIGITS)),
    "maker orders a string": encode(trade(maker_orders="all")),
    "id a number": encode(trade(id=7)),
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("frame", USER_FRAMES.values(), ids=USER_FRAMES.keys())
def test_user_channel_skips_a_hostile_frame_with_a_short_reason(frame):
    skipped: list[str] = []

    events = decode_user_frame(frame, ASSETS, skipped=skipped)

    assert events == []
    assert skipped and all(len(r) <= MAX_REASON_CHARS for r in skipped), skipped


def test_a_trade_keeps_its_good_maker_legs_when_one_is_hostile():
    legs = [
        {"order_id": "m-1", "asset_id": YES, "price": "0.5", "matched_amount": DIGITS, "side": "SELL"},
        {"order_id": "m-2", "asset_id": YES, "price": "0.5", "matched_amount": "4", "side": HUGE},
        {"order_id": "m-3", "asset_id": YES, "price": "0.5", "matched_amount": "6", "side": "SELL"},
    ]
    skipped: list[str] = []

    (ev,) = decode_user_frame(encode(trade(maker_orders=legs)), ASSETS, skipped=skipped)

    assert [m.order_id for m in ev.maker_fills] == ["m-3"]  # type: ignore[union-attr]
    assert len(skipped) == 2 and all(len(r) <= MAX_REASON_CHARS for r in skipped)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (DEEP, "book: Expected `object`, got `array`"),
        ('{"asset_id": "1", "unknown_field": ' + DEEP + "}", "book: nested too deeply"),
        (encode(book(timestamp=DIGITS)), "timestamp: a number of 5000 characters"),
        (encode(book(tick_size="0.0003")), "tick_size: tick size '0.0003' is not one the venue uses"),
        (encode(book(bids=[{"price": "0.5", "size": DIGITS}], asks=[])), "bids[0].size: a number of 5000"),
        (encode(book(min_order_size=HUGE)), "min_order_size: a number of 10000000 characters"),
        (b"<html>502 Bad Gateway</html>", "book: JSON is malformed"),
    ],
    ids=["deep", "deep-field", "timestamp", "tick", "size", "min size", "html"],
)
def test_a_rest_book_reply_is_a_payload_error_naming_the_field(payload, reason):
    with pytest.raises(PayloadError) as err:
        parse_book(decode_book(payload), MARKET, Outcome.YES)

    assert str(err.value).startswith(reason), err.value
    assert len(str(err.value)) <= MAX_REASON_CHARS


def test_a_good_rest_book_still_parses():
    snap = parse_book(decode_book(encode(book(tick_size="0.001"))), MARKET, Outcome.YES)

    assert isinstance(snap, BookSnapshot) and snap.tick_px == 10 and snap.bids == ((4800, 10_000_000),)


# --- CLOB REST replies (clob_port / errors) ----------------------------------------------------------


class HostileVenue:
    """A loopback HTTP server answering every request with one scripted body (JSON or text)."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b"[]"
        self.content_type = "application/json"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.send_response(owner.status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, body: Any, *, status: int = 200) -> None:
        """Serve ``body``: bytes as raw JSON, a str as HTML, anything else JSON-encoded."""
        self.status = status
        if isinstance(body, bytes):
            self.body, self.content_type = body, "application/json"
        elif isinstance(body, str):
            self.body, self.content_type = body.encode(), "text/html"
        else:
            self.body, self.content_type = json.dumps(body).encode(), "application/json"


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[HostileVenue, PolymarketVenue]]:
    """The real SDK client (its HTTP, its parsers) against ``HostileVenue``, under our venue adapter."""
    server = HostileVenue()
    key = "0x" + "77" * 32
    env = sdk.environment_for(server.url)
    client = offline_client(key, env)
    info = MarketInfo(market=MARKET, yes_token=YES, no_token=NO)
    yield server, PolymarketVenue(client, OrderSigner(key, sdk.contracts(env)), [info])
    client.close()
    server.server.shutdown()


def row(**fields: Any) -> dict[str, Any]:
    return {
        "id": "0xo1", "market": MARKET, "asset_id": YES, "side": "BUY", "price": "0.5", "original_size": "10",
        "size_matched": "0", "owner": "k", "maker_address": "0xme", "outcome": "Yes", "order_type": "GTC",
        "status": "LIVE", "created_at": "1725842520",
    } | fields  # fmt: skip


def page(*rows: Any) -> dict[str, Any]:
    return {"data": list(rows), "next_cursor": "LTE=", "limit": 100, "count": len(rows)}


@pytest.mark.parametrize(
    "bad",
    [
        row(price="0." + DIGITS),
        row(original_size=DIGITS),
        row(size_matched="1e999999999"),
        row(price="-0.5"),
        row(original_size="1e-999999999"),
    ],
    ids=["price-digits", "size-digits", "matched-exponent", "negative-price", "tiny-exponent"],
)
def test_an_open_order_row_the_sdk_reads_but_we_cannot_use_stays_listed_as_unusable(hostile, bad):
    server, venue = hostile
    server.reply(page(bad, row(id="0xo2")))

    listed = venue.open_orders()

    assert [(o.order_id, o.matched_qty) for o in listed] == [("0xo1", -1), ("0xo2", 0)]


@pytest.mark.parametrize(
    "bad",
    [row(side=HUGE), row(price=[1, 2]), row(size_matched={"a": 1}), "not an object"],
    ids=["side-10MB", "price-list", "matched-object", "not-an-object"],
)
def test_an_open_orders_page_the_sdk_cannot_read_is_a_short_bad_response(hostile, bad):
    server, venue = hostile
    server.reply(page(bad, row(id="0xo2")))

    with pytest.raises(BadResponse) as err:
        venue.open_orders()

    assert len(str(err.value)) <= 300


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (DEEP.encode(), 200),
        (json.dumps(page(row())).replace('"0.5"', DIGITS).encode(), 200),  # a 5,000-digit number
        ({"error": HUGE}, 200),
        ({"error": HUGE}, 400),
        ("<html>" + HUGE, 200),
        ("<html>" + HUGE, 502),
        (42, 200),
    ],
    ids=["deep", "digits", "error-10MB", "400-10MB", "text-10MB", "502-html", "number"],
)
def test_a_hostile_open_orders_reply_is_a_polymarket_error_with_a_short_message(hostile, reply, status):
    server, venue = hostile
    server.reply(reply, status=status)

    with pytest.raises(PolymarketError) as err:
        venue.open_orders()

    assert len(str(err.value)) <= 400


def test_batch_replies_with_hostile_items_are_rejections_with_short_reasons():
    base = {"makingAmount": "", "takingAmount": "", "orderID": "", "status": ""}
    items = parse_order_responses(
        [base | {"success": False, "errorMsg": HUGE}, base | {"success": True, "errorMsg": HUGE}]
    )

    replies = place_replies(items, 4)

    assert [r.ok for r in replies] == [False, False, False, False]
    assert [r.unknown for r in replies] == [False, False, True, True]
    assert all(len(r.error) <= 300 for r in replies)


def test_error_messages_are_bounded():
    assert len(error_message({"error": HUGE})) <= 300
    assert len(error_message(HUGE)) <= 300
    assert len(error_message(ValueError(HUGE))) <= 300


# --- Gamma ---------------------------------------------------------------------------------------------


def gamma_market(market_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": market_id,
        "conditionId": f"0xc{market_id}",
        "question": "Will it?",
        "outcomes": '["Yes", "No"]',
        "clobTokenIds": f'["{market_id}1", "{market_id}2"]',
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "active": True,
        "closed": False,
        "acceptingOrders": True,
        "enableOrderBook": True,
        "volume24hr": 1000,
    } | fields


def gamma_client(body: bytes) -> GammaClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/events":
            return httpx.Response(200, content=b"[]")
        return httpx.Response(200, content=body)

    return GammaClient("http://gamma.test", transport=httpx.MockTransport(handler), retries=0)


@pytest.mark.parametrize(
    ("body", "reason"),
    [(DEEP.encode(), "nested too deeply"), (b"{" * 10 + HUGE.encode(), "not JSON")],
    ids=["deep", "garbage"],
)
def test_a_hostile_gamma_page_is_one_gamma_error(body, reason):
    with gamma_client(body) as client, pytest.raises(GammaError) as err:
        client.fetch_markets({}, limit=10)

    assert reason in str(err.value) and len(str(err.value)) <= 300


@pytest.mark.parametrize(
    "fields",
    [
        {"clobTokenIds": DEEP},
        {"clobTokenIds": HUGE},
        {"volume24hr": "1e999"},
        {"volume24hr": "nan"},
        {"orderMinSize": DIGITS},
        {"orderPriceMinTickSize": "0.0003"},
        {"orderPriceMinTickSize": 0.0003},
        {"rewardsMaxSpread": DIGITS},
        {"endDate": HUGE},
        {"negRisk": HUGE},
        {"feeSchedule": {"rate": DIGITS}},
    ],
    ids=lambda f: "-".join(f)[:20],
)
def test_a_hostile_gamma_market_is_skipped_and_its_neighbours_kept(fields):
    page = encode([gamma_market("1", **fields), gamma_market("2")])

    with gamma_client(page) as client:
        result = client.fetch_markets({}, limit=10)

    assert [r.market_id for r in result.records] == ["2"]
    assert [s.market_id for s in result.skipped] == ["1"]
    assert len(result.skipped[0].reason) <= 300


# --- a tick the venue does not use, on every path a tick comes in by --------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        encode(book(tick_size="0.0003")),
        with_raw(book(), "tick_size", "0.0003"),
        encode({"event_type": "tick_size_change", "asset_id": YES, "new_tick_size": "0.0003"}),
        with_raw({"event_type": "tick_size_change", "asset_id": YES}, "new_tick_size", "0.0003"),
        with_raw({"event_type": "tick_size_change", "asset_id": YES}, "new_tick_size", "3e-4"),
    ],
    ids=["book", "book-number", "change", "change-number", "change-exponent"],
)
def test_a_tick_the_venue_does_not_use_is_refused_from_the_feed(frame):
    skipped: list[str] = []

    assert decode_market_frame(frame, ASSETS, skipped=skipped) == []
    assert len(skipped) == 1 and "is not one the venue uses" in skipped[0], skipped


def test_a_tick_the_venue_does_not_use_is_refused_from_a_markets_file(tmp_path):
    good = gamma_market("1")
    with gamma_client(encode([good])) as client:
        (record,) = client.fetch_markets({}, limit=1).records
    path = tmp_path / "selected.json"
    write_markets_file(
        path,
        kind="selected_markets",
        entries=[CacheEntry(market=msgspec.structs.replace(record, tick_px=3))],
        generated_at="2026-01-01T00:00:00Z",
    )

    with pytest.raises(MarketCacheError, match=r"markets\[0\] \(1\): tick_px 3 is not a tick the venue uses"):
        read_markets_file(path)


# --- over a real WebSocket: the market client keeps its connection -------------------------------------


def test_the_market_client_skips_hostile_frames_without_dropping_the_connection():
    # Before, the deep frame raised RecursionError and the 5,000-digit size int()'s ValueError out of
    # the frame handler: the session ended and the client reconnected (or, at py_ecc's recursion
    # limit, the process died).
    events: list[Any] = []
    got_last = threading.Event()

    def on_event(ev: Any) -> None:
        events.append(ev)
        if isinstance(ev, BookDelta) and ev.px == 4700:
            got_last.set()

    frames = [
        encode(book()),
        DEEP,
        encode(price_change(size=DIGITS)),
        encode(price_change(side=HUGE)),
        with_raw(book(), "timestamp", DIGITS),
        encode(price_change(price="0.47")),
    ]

    async def handler(ws: Any) -> None:
        await ws.recv()  # the subscription
        for frame in frames:
            await ws.send(frame)
        async for msg in ws:
            if msg == "PING":
                await ws.send("PONG")

    ready, stop, port = threading.Event(), threading.Event(), []

    async def serve_forever() -> None:
        async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            await asyncio.to_thread(stop.wait)

    server_thread = threading.Thread(target=asyncio.run, args=(serve_forever(),), daemon=True)
    server_thread.start()
    try:
        assert ready.wait(10)
        config = MarketWsConfig(url=f"ws://127.0.0.1:{port[0]}", clob_url="http://clob.test", proxy=None,
                                snapshot_timeout_s=None)  # fmt: skip
        client = MarketWsClient(ASSETS, on_event, config=config)
        client.start_in_thread()
        try:
            assert got_last.wait(20), events
            status = client.status()
        finally:
            client.stop()
    finally:
        stop.set()
        server_thread.join(10)

    assert status.connects == 1 and status.skipped == 4, status
    assert [type(e).__name__ for e in events] == ["BookSnapshot", "BookDelta"]
