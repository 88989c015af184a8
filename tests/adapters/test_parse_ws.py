"""Market- and user-channel parsers on recorded payloads, book maintenance, and parser properties."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from adapters.polymarket.book_feed import BookFeed, apply_book_event
from adapters.polymarket.parse import (
    AssetMap,
    PayloadError,
    VenueOrderUpdate,
    VenueTrade,
    decode_book,
    decode_market_frame,
    decode_market_messages,
    decode_user_frame,
    fast_qty,
    ms_to_ns,
    parse_book,
    parse_price_change,
    parse_trade,
    venue_ts_to_ns,
)
from adapters.polymarket.schemas import WirePriceChange, WireTrade
from core.book import L2Book
from core.markets import MarketInfo
from core.messages import (
    BookDelta,
    BookSnapshot,
    MarketResolved,
    TickSizeChanged,
    TradePrint,
)
from core.units import (
    PX_ONE,
    QTY_DECIMALS,
    QTY_ONE,
    Outcome,
    Side,
    UnitError,
    decimal_to_int,
    format_px,
    format_qty,
    parse_qty,
)

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"

# The recorded burst: one market, token A (book and deltas) and its complement B (deltas only).
BURST_MARKET = "0x285746de0e4f751fd4dc8f9dc2cecd0101ba9ad0096a43145ed9643b09514f01"
BURST_A = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
BURST_B = "54179564009642723353355316176091991063553046330768303687769988635499280029688"
BURST = AssetMap({BURST_A: (BURST_MARKET, Outcome.YES), BURST_B: (BURST_MARKET, Outcome.NO)})

# The 2024 user-channel market (trades and orders) and its two tokens.
USER_MARKET = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
USER_YES = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
USER_NO = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
USER = AssetMap.from_markets([MarketInfo(market=USER_MARKET, yes_token=USER_YES, no_token=USER_NO)])

#: 0.01 share in Qty: the recorded sizes below have at most two decimals (``"1304.72"`` is 130_472 * CENT).
CENT = QTY_ONE // 100


def load(name: str) -> bytes:
    return (FIX / name).read_bytes()


def single_asset(name: str, outcome: Outcome = Outcome.YES) -> AssetMap:
    raw = msgspec.json.decode(load(name))
    return AssetMap({raw["asset_id"]: ("mkt", outcome)})


# --- market channel: recorded payloads -----------------------------------------------------------


def test_book_2024_ws_levels_best_first_and_exact():
    assets = single_asset("book_2024-10.json")

    events = decode_market_frame(load("book_2024-10.json"), assets)

    assert len(events) == 1
    snap = events[0]
    assert isinstance(snap, BookSnapshot)
    assert snap.market == "mkt" and snap.outcome is Outcome.YES
    assert snap.ts_ns == 1728799418260 * 1_000_000
    assert (len(snap.bids), len(snap.asks)) == (76, 86)
    assert snap.bids[0] == (5110, 130_472 * CENT)  # the venue's LAST bid, "0.511" x "1304.72"
    assert snap.asks[0] == (5140, 2_023_087 * CENT)
    assert [px for px, _ in snap.bids] == sorted((px for px, _ in snap.bids), reverse=True)
    assert [px for px, _ in snap.asks] == sorted(px for px, _ in snap.asks)
    assert snap.tick_px == 0  # the 2024 format has no tick_size


def test_book_2026_captured_carries_tick():
    assets = single_asset("book_2026-08_captured.json")

    (snap,) = decode_market_frame(load("book_2026-08_captured.json"), assets)

    assert isinstance(snap, BookSnapshot)
    assert snap.tick_px == 100
    assert snap.bids[0] == (700, 18_252_855 * CENT)
    assert snap.asks[0] == (800, 22_819_828 * CENT)


def test_rest_book_decode_and_parse_still_work():
    raw = decode_book(load("book_2026-08_empty_ask_negrisk.json"))

    snap = parse_book(raw, "m", Outcome.NO)

    assert snap.asks == ()
    assert snap.bids and snap.tick_px == 10 and snap.min_qty > 0


def test_price_change_format1_flat_is_one_delta():
    assets = single_asset("price_change_format1_flat_2024-08.json")

    events = decode_market_frame(load("price_change_format1_flat_2024-08.json"), assets)

    assert events == [
        BookDelta(
            market="mkt",
            outcome=Outcome.YES,
            ts_ns=1723967931411 * 1_000_000,
            side=Side.SELL,
            px=5140,
            qty=2_157_408 * CENT,
        )
    ]


def test_price_change_format2_changes_keeps_order():
    assets = single_asset("price_change_format2_changes_2024-10.json", Outcome.NO)

    events = decode_market_frame(load("price_change_format2_changes_2024-10.json"), assets)

    assert [(e.side, e.px, e.qty) for e in events if isinstance(e, BookDelta)] == [
        (Side.BUY, 6000, 3_300 * QTY_ONE),
        (Side.BUY, 5000, 3_400 * QTY_ONE),
        (Side.BUY, 7000, 3_400 * QTY_ONE),
    ]
    assert all(e.outcome is Outcome.NO for e in events)


def test_price_change_current_format_maps_both_tokens():
    stream = msgspec.json.decode(load("stream_book_price_change_burst_2026-09.json"))
    msg = msgspec.json.encode(stream[1])

    events = decode_market_frame(msg, BURST)

    assert [(e.outcome, e.side, e.px, e.qty) for e in events if isinstance(e, BookDelta)] == [
        (Outcome.YES, Side.BUY, 3010, 1_000 * QTY_ONE),
        (Outcome.NO, Side.SELL, 6990, 1_000 * QTY_ONE),
    ]


def test_price_change_level_with_six_decimals_is_exact():
    # The recorded burst message with its first level edited to a 6-decimal size (a resting order
    # partly filled by a market order leaves such a remainder).
    stream = msgspec.json.decode(load("stream_book_price_change_burst_2026-09.json"))
    msg = stream[1]
    msg["price_changes"][0]["size"] = "45.123456"

    events = decode_market_frame(msgspec.json.encode(msg), BURST)

    assert [(e.outcome, e.side, e.px, e.qty) for e in events if isinstance(e, BookDelta)] == [
        (Outcome.YES, Side.BUY, 3010, 45_123_456),
        (Outcome.NO, Side.SELL, 6990, 1_000 * QTY_ONE),
    ]


@pytest.mark.parametrize(("text", "tick_px"), [("0.1", 1000), ("0.005", 50), ("0.0025", 25), ("0.0001", 1)])
def test_tick_size_change_to_every_venue_tick(text, tick_px):
    raw = msgspec.json.decode(load("tick_size_change_2025-02.json"))
    raw["new_tick_size"] = text

    (tick,) = decode_market_frame(msgspec.json.encode(raw), single_asset("tick_size_change_2025-02.json"))

    assert isinstance(tick, TickSizeChanged)
    assert tick.tick_px == tick_px


@pytest.mark.parametrize("text", ["0.0003", "0.02", "0.00001"])
def test_a_tick_the_venue_does_not_use_is_skipped(text):
    raw = msgspec.json.decode(load("tick_size_change_2025-02.json"))
    raw["new_tick_size"] = text
    skipped: list[str] = []

    events = decode_market_frame(
        msgspec.json.encode(raw), single_asset("tick_size_change_2025-02.json"), skipped=skipped
    )

    assert events == []
    assert len(skipped) == 1 and "new_tick_size" in skipped[0]


def test_book_with_a_quarter_tick_and_six_decimal_levels():
    raw = msgspec.json.decode(load("book_2026-08_captured.json"))
    raw["tick_size"] = "0.0025"
    raw["bids"][-1]["size"] = "7.575758"

    (snap,) = decode_market_frame(msgspec.json.encode(raw), single_asset("book_2026-08_captured.json"))

    assert isinstance(snap, BookSnapshot)
    assert snap.tick_px == 25
    assert snap.bids[0] == (700, 7_575_758)


def test_price_change_entries_for_unknown_tokens_are_dropped():
    stream = msgspec.json.decode(load("stream_book_price_change_burst_2026-09.json"))
    only_b = AssetMap({BURST_B: ("m", Outcome.NO)})

    events = decode_market_frame(msgspec.json.encode(stream[1]), only_b)

    assert [(e.outcome, e.px) for e in events if isinstance(e, BookDelta)] == [(Outcome.NO, 6990)]


def test_last_trade_price_is_trade_print_with_aggressor():
    assets = single_asset("last_trade_price_2024-08.json")

    (trade,) = decode_market_frame(load("last_trade_price_2024-08.json"), assets)

    assert trade == TradePrint(
        market="mkt",
        outcome=Outcome.YES,
        ts_ns=1724564136087 * 1_000_000,
        px=4910,
        qty=8_536 * CENT,
        aggressor=Side.SELL,
    )


def test_tick_size_change_is_new_tick():
    assets = single_asset("tick_size_change_2025-02.json")

    (tick,) = decode_market_frame(load("tick_size_change_2025-02.json"), assets)

    assert isinstance(tick, TickSizeChanged)
    assert tick.tick_px == 10


@pytest.mark.parametrize(("yes_index", "yes_won"), [(0, True), (1, False)])
def test_market_resolved_names_winner(yes_index, yes_won):
    raw = msgspec.json.decode(load("market_resolved_2025-12.json"))
    yes, no = raw["assets_ids"][yes_index], raw["assets_ids"][1 - yes_index]
    assets = AssetMap({yes: ("mkt", Outcome.YES), no: ("mkt", Outcome.NO)})

    events = decode_market_frame(load("market_resolved_2025-12.json"), assets)

    assert events == [MarketResolved(market="mkt", ts_ns=1766790415550 * 1_000_000, yes_won=yes_won)]


def test_market_resolved_for_unknown_market_is_dropped():
    assert decode_market_frame(load("market_resolved_2025-12.json"), BURST) == []


@pytest.mark.parametrize("name", ["best_bid_ask_2025-12.json", "new_market_2025-12.json"])
def test_custom_feature_messages_are_ignored_quietly(name):
    skipped: list[str] = []

    events = decode_market_frame(load(name), single_asset("best_bid_ask_2025-12.json"), skipped=skipped)

    assert events == []
    assert skipped == []


def test_unknown_event_type_is_skipped_and_the_rest_of_the_array_kept():
    stream = msgspec.json.decode(load("stream_book_price_change_burst_2026-09.json"))
    frame = msgspec.json.encode([{"event_type": "future_thing", "x": 1}, stream[1]])
    skipped: list[str] = []

    events = decode_market_frame(frame, BURST, skipped=skipped)

    assert len(events) == 2
    assert skipped == ["unknown event_type 'future_thing'"]


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        (b"not json", "malformed JSON"),
        (b"[1]", "malformed"),
        (b'{"event_type": "book"}', "asset_id"),
        (b'{"no_type": 1}', "no event_type"),
        (
            b'{"event_type": "price_change", "market": "m", "timestamp": "1", "price_changes": '
            b'[{"asset_id": "A", "price": "0.5x", "size": "1", "side": "BUY"}]}',
            "price_changes[0].price",
        ),
        (
            b'{"event_type": "price_change", "market": "m", "timestamp": "1", "price_changes": '
            b'[{"asset_id": "A", "price": "0.5", "size": "1", "side": "HOLD"}]}',
            "price_changes[0].side",
        ),
        (b'{"event_type": "price_change", "asset_id": "A", "timestamp": "1"}', "none of price_changes"),
        (
            b'{"event_type": "last_trade_price", "asset_id": "A", '
            b'"price": "1.5", "size": "1", "side": "BUY"}',
            "price",
        ),
        (b'{"event_type": "tick_size_change", "asset_id": "A", "new_tick_size": "0"}', "new_tick_size"),
        (b'{"event_type": "book", "asset_id": "A", "timestamp": "12:00"}', "timestamp"),
    ],
)
def test_malformed_frames_are_skipped_with_a_reason_naming_the_field(frame, needle):
    skipped: list[str] = []

    events = decode_market_frame(frame, AssetMap({"A": ("m", Outcome.YES)}), skipped=skipped)

    assert events == []
    assert len(skipped) == 1
    assert needle in skipped[0]


def test_parse_price_change_raises_payload_error_naming_the_size():
    msg = WirePriceChange(asset_id="A", timestamp="1", price="0.5", side="BUY", size="1.0000001")

    with pytest.raises(PayloadError, match=r"^size: "):
        parse_price_change(msg, AssetMap({"A": ("m", Outcome.YES)}))


def test_events_for_unknown_assets_are_dropped_silently():
    skipped: list[str] = []

    assert decode_market_frame(load("book_2024-10.json"), BURST, skipped=skipped) == []
    assert skipped == []


def test_whole_recorded_stream_as_one_array_frame():
    skipped: list[str] = []

    events = decode_market_frame(load("stream_book_price_change_burst_2026-09.json"), BURST, skipped=skipped)

    assert skipped == []
    assert [type(e).__name__ for e in events].count("BookSnapshot") == 2
    assert sum(isinstance(e, BookDelta) for e in events) == 98


# --- user channel ---------------------------------------------------------------------------------


def test_order_placement_in_our_units():
    (event,) = decode_user_frame(load("order_placement_2024-09.json"), USER)

    assert event == VenueOrderUpdate(
        type="PLACEMENT",
        order_id="0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78",
        market=USER_MARKET,
        outcome=Outcome.YES,
        side=Side.BUY,
        px=5130,
        original_qty=5 * QTY_ONE,
        matched_qty=0,
        status="LIVE",
        order_type="GTC",
        owner="3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe",
        ts_ns=1725842520990 * 1_000_000,
        created_ns=1725842520 * 10**9,
        expire_ns=0,
        trade_ids=(),
    )


def test_order_cancellation():
    (event,) = decode_user_frame(load("order_cancellation_2024-09.json"), USER)

    assert isinstance(event, VenueOrderUpdate)
    assert (event.type, event.status, event.side, event.matched_qty) == (
        "CANCELLATION",
        "CANCELED",
        Side.SELL,
        5 * QTY_ONE,
    )


def test_trade_matched_taker():
    (trade,) = decode_user_frame(load("trade_matched_2024-09.json"), USER)

    assert isinstance(trade, VenueTrade)
    assert (trade.status, trade.trader_side, trade.side, trade.px, trade.qty) == (
        "MATCHED",
        "TAKER",
        Side.BUY,
        5200,
        5 * QTY_ONE,
    )
    assert trade.match_ns == 1725958681 * 10**9
    (maker,) = trade.maker_fills
    assert (maker.outcome, maker.side, maker.px, maker.qty, maker.complementary) == (
        Outcome.YES,
        Side.SELL,
        5200,
        5 * QTY_ONE,
        False,
    )


def test_order_update_with_a_six_decimal_matched_size_is_exact():
    # The recorded placement edited into the UPDATE a market BUY of $5 at 0.66 makes of it.
    raw = msgspec.json.decode(load("order_placement_2024-09.json"))
    raw.update(type="UPDATE", original_size="10", size_matched="7.575758", associate_trades=["t1"])

    (event,) = decode_user_frame(msgspec.json.encode(raw), USER)

    assert isinstance(event, VenueOrderUpdate)
    assert (event.type, event.original_qty, event.matched_qty, event.trade_ids) == (
        "UPDATE",
        10 * QTY_ONE,
        7_575_758,
        ("t1",),
    )


def test_trade_with_a_six_decimal_matched_amount_is_exact():
    # The recorded taker trade edited to the size of a $5 market BUY at 0.66: 7.575758 shares.
    raw = msgspec.json.decode(load("trade_matched_2024-09.json"))
    raw["size"] = "7.575758"
    raw["maker_orders"][0]["matched_amount"] = "7.575758"

    (trade,) = decode_user_frame(msgspec.json.encode(raw), USER)

    assert isinstance(trade, VenueTrade)
    assert trade.qty == 7_575_758
    (maker,) = trade.maker_fills
    assert (maker.px, maker.qty) == (5200, 7_575_758)


def test_trade_multi_fill_complementary_maker_at_one_minus_p():
    (trade,) = decode_user_frame(load("trade_maker_multi_fill_mined_2024-09.json"), USER)

    assert isinstance(trade, VenueTrade)
    assert trade.status == "MINED" and trade.trader_side == "MAKER"
    assert len(trade.maker_fills) == 6
    no_leg = trade.maker_fills[0]
    assert no_leg.outcome is Outcome.NO and no_leg.complementary
    assert no_leg.side is Side.BUY  # a YES buyer matched with a NO buyer: a mint
    assert no_leg.px == PX_ONE - trade.px
    same_token = trade.maker_fills[1:]
    assert all(f.side is Side.SELL and not f.complementary and f.px == trade.px for f in same_token)
    assert sum(f.qty for f in trade.maker_fills) == trade.qty


def test_trade_maker_cross_asset_uses_the_served_maker_side():
    (trade,) = decode_user_frame(load("trade_maker_cross_asset_2025-11_edited.json"), USER)

    assert isinstance(trade, VenueTrade)
    assert trade.ts_ns == 1762776436 * 10**9  # this message has seconds
    (maker,) = trade.maker_fills
    assert maker.side is Side.BUY and maker.complementary
    assert maker.order_id.startswith("0x3ad09f")


def test_trade_unknown_status_raises_naming_status():
    raw = msgspec.json.decode(load("trade_matched_2024-09.json"), type=WireTrade)
    bad = msgspec.structs.replace(raw, status="EXPLODED")

    with pytest.raises(PayloadError, match=r"^status: "):
        parse_trade(bad, USER)


def test_user_frame_array_skips_the_bad_element():
    order = msgspec.json.decode(load("order_placement_2024-09.json"))
    bad = {**order, "price": "abc"}
    skipped: list[str] = []

    events = decode_user_frame(
        msgspec.json.encode([bad, order, {"event_type": "other"}]), USER, skipped=skipped
    )

    assert len(events) == 1
    assert len(skipped) == 2
    assert any("price" in r for r in skipped)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1725841741", 1725841741 * 10**9),
        ("1725841743272", 1725841743272 * 10**6),
        (0, 0),
        ("1725841743272000", 1725841743272 * 10**6),
    ],
)
def test_venue_ts_to_ns_tells_units_by_magnitude(text, ns):
    assert venue_ts_to_ns(text) == ns


# --- book maintenance ------------------------------------------------------------------------------


def test_recorded_stream_rebuilds_the_final_book_exactly():
    events = decode_market_frame(load("stream_book_price_change_burst_2026-09.json"), BURST)
    first, final = events[0], events[-1]
    assert isinstance(first, BookSnapshot) and isinstance(final, BookSnapshot)
    book = L2Book()
    valid = False
    crossed = 0

    for event in events[:-1]:
        if isinstance(event, BookSnapshot | BookDelta) and event.outcome is Outcome.YES:
            valid = apply_book_event(book, valid, event)
            bid, ask = book.best_bid(), book.best_ask()
            crossed += bool(bid and ask and bid[0] >= ask[0])

    assert valid
    assert crossed > 0  # the venue shows the crossing level before removing the crossed ones
    assert book.levels(Side.BUY) == final.bids
    assert book.levels(Side.SELL) == final.asks


def test_book_feed_on_recorded_stream_holds_back_deltas_without_snapshot():
    events = decode_market_frame(load("stream_book_price_change_burst_2026-09.json"), BURST)
    feed = BookFeed()

    passed = [e for e in events if feed.apply(e)]

    yes = feed.book(BURST_MARKET, Outcome.YES)
    assert yes is not None
    assert yes.levels(Side.BUY) == events[-1].bids  # type: ignore[union-attr]
    assert feed.book(BURST_MARKET, Outcome.NO) is None  # token B never got a snapshot
    assert feed.dropped_deltas == 49
    assert all(e.outcome is Outcome.YES for e in passed if isinstance(e, BookDelta))


def test_book_feed_tick_change_starts_epoch_until_next_snapshot():
    feed = BookFeed()
    snap = BookSnapshot(
        market="m", outcome=Outcome.YES, ts_ns=1, bids=((4000, 100),), asks=((4100, 100),), tick_px=100
    )
    delta = BookDelta(market="m", outcome=Outcome.YES, ts_ns=3, side=Side.BUY, px=4050, qty=500)
    tick = TickSizeChanged(market="m", outcome=Outcome.YES, ts_ns=2, tick_px=10)

    assert feed.apply(snap)
    assert feed.apply(tick)
    dropped = feed.apply(delta)
    assert not dropped
    assert feed.book("m", Outcome.YES) is None
    assert feed.apply(msgspec.structs.replace(snap, ts_ns=4, tick_px=0))
    assert feed.apply(delta)

    book = feed.book("m", Outcome.YES)
    assert book is not None
    assert book.tick_px == 10
    assert book.levels(Side.BUY) == ((4050, 500), (4000, 100))


def test_book_feed_invalidate_all_returns_the_books_that_were_valid():
    feed = BookFeed()
    feed.apply(BookSnapshot(market="m", outcome=Outcome.NO, ts_ns=1, bids=((100, 1),), asks=()))

    assert feed.invalidate_all() == [("m", Outcome.NO)]
    assert feed.book("m", Outcome.NO) is None
    assert not feed.apply(BookDelta(market="m", outcome=Outcome.NO, ts_ns=2, side=Side.BUY, px=100, qty=0))


# --- properties -------------------------------------------------------------------------------------


@st.composite
def books(draw: st.DrawFn) -> tuple[dict[int, int], dict[int, int]]:
    prices = st.integers(0, PX_ONE)
    sizes = st.integers(1, 10**7 * QTY_ONE)  # any 1e-6 size up to 10 million shares
    return draw(st.dictionaries(prices, sizes, max_size=30)), draw(
        st.dictionaries(prices, sizes, max_size=30)
    )


def wire_book(asset: str, bids: dict[int, int], asks: dict[int, int], ts_ms: int) -> bytes:
    # As served: strings, bids ascending and asks descending (best LAST).
    return msgspec.json.encode(
        {
            "event_type": "book",
            "market": "m",
            "asset_id": asset,
            "timestamp": str(ts_ms),
            "bids": [{"price": format_px(p), "size": format_qty(q)} for p, q in sorted(bids.items())],
            "asks": [
                {"price": format_px(p), "size": format_qty(q)} for p, q in sorted(asks.items(), reverse=True)
            ],
        }
    )


@given(book=books(), ts_ms=st.integers(0, 2**42))
def test_property_wire_book_round_trips_to_snapshot_best_first(book, ts_ms):
    bids, asks = book

    (snap,) = decode_market_frame(wire_book("A", bids, asks, ts_ms), AssetMap({"A": ("m", Outcome.YES)}))

    assert isinstance(snap, BookSnapshot)
    assert snap.bids == tuple(sorted(bids.items(), reverse=True))
    assert snap.asks == tuple(sorted(asks.items()))
    assert snap.ts_ns == ts_ms * 1_000_000


@given(
    px=st.integers(0, PX_ONE),
    qty=st.integers(0, 10**7 * QTY_ONE),
    zeros=st.integers(0, 3),
    side=st.sampled_from(Side),
)
@example(px=PX_ONE, qty=0, zeros=2, side=Side.SELL)
def test_property_price_and_size_strings_round_trip(px, qty, zeros, side):
    price = format_px(px)
    padded = price + ("." if "." not in price and zeros else "") + "0" * zeros
    msg = {
        "event_type": "price_change",
        "market": "m",
        "timestamp": "5",
        "price_changes": [{"asset_id": "A", "price": padded, "size": format_qty(qty), "side": side.name}],
    }

    events = decode_market_frame(msgspec.json.encode(msg), AssetMap({"A": ("m", Outcome.YES)}))

    assert events == [BookDelta(market="m", outcome=Outcome.YES, ts_ns=5_000_000, side=side, px=px, qty=qty)]


@given(
    book=books(),
    deltas=st.lists(
        st.tuples(st.sampled_from(Side), st.integers(0, PX_ONE), st.integers(0, 10**7 * QTY_ONE)), max_size=40
    ),
)
def test_property_book_feed_matches_dict_model(book, deltas):
    bids, asks = book
    feed = BookFeed()
    model = {Side.BUY: dict(bids), Side.SELL: dict(asks)}
    feed.apply(
        BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=0,
            bids=tuple(sorted(bids.items(), reverse=True)),
            asks=tuple(sorted(asks.items())),
        )
    )

    for i, (side, px, qty) in enumerate(deltas):
        assert feed.apply(BookDelta(market="m", outcome=Outcome.YES, ts_ns=i, side=side, px=px, qty=qty))
        if qty:
            model[side][px] = qty
        else:
            model[side].pop(px, None)

    got = feed.book("m", Outcome.YES)
    assert got is not None
    assert got.levels(Side.BUY) == tuple(sorted(model[Side.BUY].items(), reverse=True))
    assert got.levels(Side.SELL) == tuple(sorted(model[Side.SELL].items()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
known_fields = st.fixed_dictionaries(
    {
        "event_type": st.sampled_from(
            ["book", "price_change", "last_trade_price", "tick_size_change", "market_resolved"]
        )
    },
    optional={
        k: json_values | st.text(max_size=6)
        for k in [
            "asset_id",
            "market",
            "price",
            "size",
            "side",
            "timestamp",
            "bids",
            "asks",
            "price_changes",
            "changes",
        ]
    },
)


@given(
    frame=st.binary(max_size=200)
    | json_values.map(msgspec.json.encode)
    | known_fields.map(msgspec.json.encode)
)
def test_property_decode_market_frame_never_raises(frame):
    skipped: list[str] = []

    events = decode_market_frame(frame, AssetMap({"A": ("m", Outcome.YES)}), skipped=skipped)

    assert isinstance(events, list)


@given(book=books(), ts_ms=st.integers(0, 2**40))
def test_property_array_frame_equals_its_elements(book, ts_ms):
    bids, asks = book
    assets = AssetMap({"A": ("m", Outcome.YES), "B": ("m", Outcome.NO)})
    one, two = wire_book("A", bids, asks, ts_ms), wire_book("B", asks, bids, ts_ms + 1)

    together = decode_market_frame(b"[" + one + b"," + two + b"]", assets)

    assert together == decode_market_frame(one, assets) + decode_market_frame(two, assets)
    msgs, reasons = decode_market_messages(b"[" + one + b"," + two + b"]")
    assert len(msgs) == 2 and reasons == []


@given(
    st.one_of(
        st.from_regex(r"\A[0-9]{0,6}(\.[0-9]{0,8})?\Z"),
        st.text(alphabet="0123456789.-+eE \u00b2\u0663", max_size=8),
    )
)
@example("12.05")
@example("\u0663")  # a non-ASCII digit: the exact parser decides
@example("1.001")
@example("7.575758")
@example("7.5757580")  # exact, but more than 6 digits: the exact parser decides
@example("7.5757581")
def test_property_fast_qty_is_parse_qty_where_it_answers(text):
    try:
        exact = parse_qty(text)
    except UnitError:
        exact = None
    fast = fast_qty(text)

    if fast >= 0:
        assert fast == exact
    else:
        assert fast == -1
    whole, dot, frac = text.partition(".")
    if (
        whole.isdigit()
        and whole.isascii()
        and (not dot or (frac.isdigit() and frac.isascii() and len(frac) <= QTY_DECIMALS))
    ):
        assert fast == exact  # every plain size of at most six decimals takes the fast path


@given(
    st.one_of(
        st.integers(0, 10**14).map(str),
        st.integers(0, 10**14),
        st.sampled_from(["1.5e3", " 7", "0012", "12.000"]),
    )
)
def test_property_ms_to_ns_fast_path_agrees_with_the_general_parser(value):
    assert ms_to_ns(value) == decimal_to_int(str(value), 0) * 1_000_000


# --- a bad entry spoils only itself ------------------------------------------------------------------

#: Edits that make one price_change level unusable, and the field its reason must name.
BAD_LEVELS = [
    ({"price": "0.30x"}, "price"),
    ({"price": "1.5"}, "price"),
    ({"size": "45.1234567"}, "size"),  # 7 decimals: finer than the token's unit
    ({"side": "HOLD"}, "side"),
    ({"asset_id": "999"}, "asset_id"),  # neither token of a market we follow
]


def _burst_pair() -> dict:
    # Two recorded burst messages as one: four levels (each with its mirror on the other token).
    stream = msgspec.json.decode(load("stream_book_price_change_burst_2026-09.json"))
    msg = stream[1]
    msg["price_changes"] = stream[1]["price_changes"] + stream[2]["price_changes"]
    return msg


def _levels_of(events):
    return [(e.outcome, e.side, e.px, e.qty) for e in events if isinstance(e, BookDelta)]


@pytest.mark.parametrize(("edit", "field"), BAD_LEVELS)
@pytest.mark.parametrize("index", [0, 2, 3])
def test_price_change_with_one_bad_level_applies_the_others(edit, field, index):
    msg = _burst_pair()
    good = _levels_of(decode_market_frame(msgspec.json.encode(msg), BURST))
    msg["price_changes"][index].update(edit)
    skipped: list[str] = []

    events = decode_market_frame(msgspec.json.encode(msg), BURST, skipped=skipped)

    assert len(good) == 4
    assert _levels_of(events) == good[:index] + good[index + 1 :]
    assert len(skipped) == 1
    assert skipped[0].startswith(f"price_change: price_changes[{index}].{field}: ")


def test_price_change_whose_every_level_is_bad_is_one_skipped_message():
    msg = _burst_pair()
    msg["price_changes"][0]["size"] = "1.0000001"
    msg["price_changes"][3]["price"] = "abc"
    for entry in msg["price_changes"][1:3]:
        entry["asset_id"] = "999"
    skipped: list[str] = []

    events = decode_market_frame(msgspec.json.encode(msg), BURST, skipped=skipped)

    assert events == []
    assert len(skipped) == 1  # one message, every reason in it
    assert [f"price_changes[{i}]" in skipped[0] for i in range(4)] == [True] * 4


def test_price_change_entries_of_markets_we_do_not_follow_are_not_bad():
    # The burst market followed by one token only: the other token is not "unknown", just not ours.
    msg = _burst_pair()
    skipped: list[str] = []

    events = decode_market_frame(
        msgspec.json.encode(msg), AssetMap({BURST_A: (BURST_MARKET, Outcome.YES)}), skipped=skipped
    )

    assert [e.outcome for e in events] == [Outcome.YES, Outcome.YES]
    assert skipped == []


def test_price_change_changes_format_with_one_bad_level_keeps_the_others():
    raw = msgspec.json.decode(load("price_change_format2_changes_2024-10.json"))
    raw["changes"][1]["size"] = "3400.0000001"
    skipped: list[str] = []

    events = decode_market_frame(
        msgspec.json.encode(raw), single_asset("price_change_format2_changes_2024-10.json"), skipped=skipped
    )

    assert [(e.px, e.qty) for e in events if isinstance(e, BookDelta)] == [
        (6000, 3_300 * QTY_ONE),
        (7000, 3_400 * QTY_ONE),
    ]
    assert len(skipped) == 1 and skipped[0].startswith("price_change: changes[1].size: ")


def test_parse_price_change_without_a_skipped_list_logs_the_bad_level(caplog):
    msg = _burst_pair()
    good = parse_price_change(msgspec.json.decode(msgspec.json.encode(msg), type=WirePriceChange), BURST)
    msg["price_changes"][2]["size"] = "-5"
    wire = msgspec.json.decode(msgspec.json.encode(msg), type=WirePriceChange)

    with caplog.at_level("WARNING"):
        deltas = parse_price_change(wire, BURST)

    assert deltas == [good[0], good[1], good[3]]
    assert [r.getMessage() for r in caplog.records] == [
        "price_change: skipped price_changes[2].size: negative size '-5'"
    ]


def test_book_with_one_bad_level_keeps_the_others():
    raw = msgspec.json.decode(load("book_2026-08_captured.json"))
    good = decode_market_frame(msgspec.json.encode(raw), single_asset("book_2026-08_captured.json"))[0]
    raw["asks"][-1]["size"] = "93315.6300001"  # the venue's best ask is last
    raw["bids"][0]["price"] = "0.05.1"
    skipped: list[str] = []

    (snap,) = decode_market_frame(
        msgspec.json.encode(raw), single_asset("book_2026-08_captured.json"), skipped=skipped
    )

    assert isinstance(snap, BookSnapshot) and isinstance(good, BookSnapshot)
    assert snap.asks == good.asks[1:]
    assert snap.bids == good.bids[:-1]
    assert [r.split(": ")[1] for r in skipped] == ["bids[0].price", f"asks[{len(raw['asks']) - 1}].size"]


def test_trade_with_one_bad_maker_leg_keeps_the_other_legs():
    raw = msgspec.json.decode(load("trade_maker_multi_fill_mined_2024-09.json"))
    (good,) = decode_user_frame(msgspec.json.encode(raw), USER)
    raw["maker_orders"][2]["matched_amount"] = "227.9200001"
    skipped: list[str] = []

    (trade,) = decode_user_frame(msgspec.json.encode(raw), USER, skipped=skipped)

    assert isinstance(trade, VenueTrade) and isinstance(good, VenueTrade)
    assert len(good.maker_fills) == 6
    assert trade.maker_fills == good.maker_fills[:2] + good.maker_fills[3:]
    assert (trade.qty, trade.trade_id) == (good.qty, good.trade_id)
    assert len(skipped) == 1
    assert skipped[0].startswith(f"trade {raw['id']}: maker_orders[2].matched_amount: ")
    assert "227.9200001" in skipped[0]


@pytest.mark.parametrize("edit", [{"price": "0.5x"}, {"side": "HOLD"}, {"fee_rate_bps": "1.5"}])
def test_trade_bad_leg_fields_spoil_only_that_leg(edit):
    raw = msgspec.json.decode(load("trade_maker_multi_fill_mined_2024-09.json"))
    raw["maker_orders"][0].update(edit)
    skipped: list[str] = []

    (trade,) = decode_user_frame(msgspec.json.encode(raw), USER, skipped=skipped)

    assert isinstance(trade, VenueTrade)
    assert [f.order_id for f in trade.maker_fills] == [m["order_id"] for m in raw["maker_orders"][1:]]
    assert len(skipped) == 1 and "maker_orders[0]." in skipped[0]


def test_last_trade_price_carries_the_transaction_hash_as_trade_id():
    raw = msgspec.json.decode(load("last_trade_price_2024-08.json"))
    assets = single_asset("last_trade_price_2024-08.json")
    tx = "0x876310b8e67cacf110abdd4106438968c55f2cce795c13c3c7a0896fc4af730d"

    (old,) = decode_market_frame(msgspec.json.encode(raw), assets)
    (new,) = decode_market_frame(msgspec.json.encode({**raw, "transaction_hash": tx}), assets)

    assert isinstance(old, TradePrint) and isinstance(new, TradePrint)
    assert old.trade_id == ""  # the 2024 format has no hash
    assert new.trade_id == tx
    assert msgspec.structs.replace(new, trade_id="") == old


_ENTRY_GOOD = st.tuples(
    st.sampled_from([BURST_A, BURST_B]),
    st.integers(1, PX_ONE - 1),
    st.integers(0, 10**7 * QTY_ONE),
    st.sampled_from(Side),
)
_ENTRY_BAD = st.sampled_from(
    [
        {"price": "0.5.0"},
        {"price": "-0.1"},
        {"size": "1.0000001"},
        {"size": "1,000"},
        {"side": "buy it"},
        {"asset_id": "42"},
    ]
)


def _price_change_of(entries):
    # A BURST price_change whose entries are the good ones drawn, each spoilt by its ``bad`` fields if any.
    wire = []
    for (asset, px, qty, side), bad in entries:
        entry = {"asset_id": asset, "price": format_px(px), "size": format_qty(qty), "side": side.name}
        wire.append({**entry, **(bad or {})})
    return {
        "event_type": "price_change",
        "market": BURST_MARKET,
        "timestamp": "1790658674035",
        "price_changes": wire,
    }


@given(entries=st.lists(st.tuples(_ENTRY_GOOD, st.none() | _ENTRY_BAD), max_size=8))
def test_property_price_change_keeps_exactly_the_good_levels(entries):
    # Reference: every good entry in order; one reason per bad one, or one for a message with no good.
    skipped: list[str] = []

    events = decode_market_frame(msgspec.json.encode(_price_change_of(entries)), BURST, skipped=skipped)

    outcome = {BURST_A: Outcome.YES, BURST_B: Outcome.NO}
    want = [(outcome[a], s, px, q) for (a, px, q, s), bad in entries if bad is None]
    n_bad = sum(bad is not None for _, bad in entries)
    assert _levels_of(events) == want
    assert len(skipped) == (n_bad if want else min(n_bad, 1))


@given(entries=st.lists(st.tuples(_ENTRY_GOOD, st.none() | _ENTRY_BAD), max_size=6))
def test_property_a_lone_price_change_decodes_as_it_does_among_others(entries):
    # A frame of one price_change takes a shorter path than a frame of several: same events, same
    # reasons, whatever its entries (good, bad, or none usable).
    msg = _price_change_of(entries)
    alone: list[str] = []
    twice: list[str] = []

    events = decode_market_frame(msgspec.json.encode(msg), BURST, skipped=alone)
    both = decode_market_frame(msgspec.json.encode([msg, msg]), BURST, skipped=twice)

    assert both == events + events
    assert twice == alone + alone
