"""Replay of recorded market-channel files: formats, token mapping, ordering, and book rebuilding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from adapters.polymarket.book_feed import BookFeed
from adapters.polymarket.parse import AssetMap, decode_market_messages
from core.messages import BookDelta, BookSnapshot, MarketResolved, TickSizeChanged, TradePrint
from core.units import QTY_ONE, Outcome, Side
from sim.replay_ws import events_from_messages, infer_asset_map, load_ws_messages, replay_ws
from sim.scenario import WsReplaySource, ws_replay_tapes
from sim.tape import OP_BUY, OP_SELL

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"
STREAM_FILE = FIX / "stream_book_price_change_burst_2026-09.json"
STREAM: list[dict[str, Any]] = msgspec.json.decode(STREAM_FILE.read_bytes())
MARKET = "0x285746de0e4f751fd4dc8f9dc2cecd0101ba9ad0096a43145ed9643b09514f01"
TOKEN_A = "76670567130917723816490572615540605537878462672464291990940067659127658071111"
TOKEN_B = "54179564009642723353355316176091991063553046330768303687769988635499280029688"


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines) + b"\n")
    return path


def delta(asset: str, ts_ms: int, price: str, size: str = "10", side: str = "BUY") -> dict[str, Any]:
    return {
        "event_type": "price_change",
        "market": MARKET,
        "timestamp": str(ts_ms),
        "price_changes": [{"asset_id": asset, "price": price, "size": size, "side": side}],
    }


def test_replay_json_array_infers_tokens_and_rebuilds_the_final_book():
    skipped: list[str] = []

    events = list(replay_ws(STREAM_FILE, skipped=skipped))

    assert skipped == []
    assert len(events) == 100
    first, final = events[0], events[-1]
    assert isinstance(first, BookSnapshot) and first.outcome is Outcome.YES and first.market == MARKET
    assert isinstance(final, BookSnapshot)
    feed = BookFeed()
    for event in events[:-1]:
        feed.apply(event)
    book = feed.book(MARKET, Outcome.YES)
    assert book is not None
    assert (book.levels(Side.BUY), book.levels(Side.SELL)) == (final.bids, final.asks)
    assert {e.outcome for e in events if isinstance(e, BookDelta)} == {Outcome.YES, Outcome.NO}


def test_replay_equal_timestamps_keep_file_order():
    events = list(replay_ws(STREAM_FILE))

    # The last price_change and the final book share ts 1790658827000: the book stays last.
    assert events[-1].ts_ns == events[-2].ts_ns == 1790658827000 * 1_000_000
    assert isinstance(events[-1], BookSnapshot)
    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)


def test_infer_asset_map_first_book_is_yes_other_token_no():
    assets = infer_asset_map(load_ws_messages(STREAM_FILE))

    assert assets.get(TOKEN_A) == (MARKET, Outcome.YES)
    assert assets.get(TOKEN_B) == (MARKET, Outcome.NO)
    assert len(assets) == 2


def test_replay_explicit_mapping_wins():
    mapping = {TOKEN_B: ("m", Outcome.YES), TOKEN_A: ("m", Outcome.NO)}

    events = list(replay_ws(STREAM_FILE, mapping))

    assert isinstance(events[0], BookSnapshot)
    assert events[0].outcome is Outcome.NO and events[0].market == "m"


def test_replay_jsonl_sorts_by_timestamp_and_accepts_array_lines(tmp_path):
    book = {**STREAM[0], "timestamp": "2000"}
    path = write_jsonl(
        tmp_path / "rec.jsonl",
        [
            delta(TOKEN_A, 3000, "0.3", "1"),
            book,
            [delta(TOKEN_A, 2500, "0.25", "2"), delta(TOKEN_B, 2500, "0.75", "3", "SELL")],
            delta(TOKEN_A, 2500, "0.26", "4.575758"),
        ],
    )

    events = list(replay_ws(path))

    assert [type(e).__name__ for e in events] == [
        "BookSnapshot",
        "BookDelta",
        "BookDelta",
        "BookDelta",
        "BookDelta",
    ]
    got = [(e.ts_ns // 1_000_000, e.outcome, e.px, e.qty) for e in events if isinstance(e, BookDelta)]
    assert got == [
        (2500, Outcome.YES, 2500, 2 * QTY_ONE),
        (2500, Outcome.NO, 7500, 3 * QTY_ONE),
        (2500, Outcome.YES, 2600, 4_575_758),  # sizes come in 1e-6 shares
        (3000, Outcome.YES, 3000, QTY_ONE),
    ]


def test_replay_jsonl_detected_without_the_suffix_and_bad_lines_skipped(tmp_path):
    path = tmp_path / "rec.txt"
    path.write_bytes(
        msgspec.json.encode(STREAM[0])
        + b"\n{broken\n"
        + b'{"event_type": "mystery"}\n\n'
        + msgspec.json.encode(STREAM[1])
        + b"\n"
    )
    skipped: list[str] = []

    events = list(replay_ws(path, skipped=skipped))

    assert len(events) == 3
    assert len(skipped) == 2
    assert skipped[0].startswith("rec.txt:2: malformed JSON")
    assert skipped[1] == "rec.txt:3: unknown event_type 'mystery'"


def test_replay_single_message_json_market_resolved():
    events = list(replay_ws(FIX / "market_resolved_2025-12.json"))

    assert len(events) == 1
    resolved = events[0]
    assert isinstance(resolved, MarketResolved)
    assert resolved.market == "0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1"
    assert resolved.yes_won  # winning_outcome "Yes": the winner is the YES token


def test_replay_bad_value_skips_only_that_message(tmp_path):
    bad = delta(TOKEN_A, 1790658670000, "1.5")
    path = tmp_path / "rec.json"
    path.write_bytes(msgspec.json.encode([STREAM[0], bad, STREAM[1]]))
    skipped: list[str] = []

    events = list(replay_ws(path, skipped=skipped))

    assert len(events) == 3
    assert skipped == ["message 1 (price_change): price_changes[0].price: price '1.5' outside [0, 1]"]


def test_replay_tick_size_change_passes_through(tmp_path):
    tick = {
        "event_type": "tick_size_change",
        "asset_id": TOKEN_A,
        "market": MARKET,
        "old_tick_size": "0.01",
        "new_tick_size": "0.001",
        "timestamp": "1790658662000",
    }
    path = write_jsonl(tmp_path / "rec.jsonl", [STREAM[0], tick])

    events = list(replay_ws(path))

    assert isinstance(events[1], TickSizeChanged) and events[1].tick_px == 10


def test_replay_is_deterministic():
    assert list(replay_ws(STREAM_FILE)) == list(replay_ws(STREAM_FILE))


@given(order=st.permutations(range(len(STREAM))))
def test_property_any_recorded_order_replays_sorted_and_stable(order):
    messages = [decode_market_messages(msgspec.json.encode(STREAM[i]))[0][0] for i in order]
    assets = AssetMap({TOKEN_A: (MARKET, Outcome.YES), TOKEN_B: (MARKET, Outcome.NO)})

    events = events_from_messages(messages, assets)

    assert [e.ts_ns for e in events] == sorted(e.ts_ns for e in events)
    # Stable: among equal timestamps, events keep the order of the shuffled file.
    expected = sorted(
        (e for m in messages for e in events_from_messages([m], assets)),
        key=lambda e: e.ts_ns,
    )
    assert events == expected
    assert len(events) == 100


def trade_msg(asset: str, price: str, side: str, tx: str, ts_ms: int = 1790658700000) -> dict[str, Any]:
    return {
        "event_type": "last_trade_price",
        "asset_id": asset,
        "market": MARKET,
        "price": price,
        "side": side,
        "size": "7.575758",
        "fee_rate_bps": "0",
        "timestamp": str(ts_ms),
        "transaction_hash": tx,
    }


def test_replay_parses_trade_ids_from_the_transaction_hash(tmp_path):
    path = write_jsonl(tmp_path / "rec.jsonl", [STREAM[0], trade_msg(TOKEN_A, "0.4", "BUY", "0xfeed")])

    trades = [e for e in replay_ws(path) if isinstance(e, TradePrint)]

    assert [(t.trade_id, t.px, t.qty) for t in trades] == [("0xfeed", 4_000, 7_575_758)]


def test_ws_replay_source_counts_a_trade_printed_on_both_tokens_once(tmp_path):
    # One match printed on each token (the emulator and the venue do), then a second match alike in
    # every field but its hash: two trades, not four.
    msgs = [
        STREAM[0],
        trade_msg(TOKEN_A, "0.4", "BUY", "0x01"),
        trade_msg(TOKEN_B, "0.6", "SELL", "0x01"),
        trade_msg(TOKEN_B, "0.6", "SELL", "0x02"),
        trade_msg(TOKEN_A, "0.4", "BUY", "0x02"),
    ]
    write_jsonl(tmp_path / "rec.jsonl", msgs)
    src = msgspec.convert({"type": "ws_replay", "path": "rec.jsonl", "tick_px": 10}, WsReplaySource)

    (tape,) = ws_replay_tapes(src, tmp_path)

    trades = [(tape.op[i], tape.px[i], tape.qty[i]) for i in range(len(tape)) if tape.op[i] == OP_BUY]
    assert trades == [(OP_BUY, 4_000, 7_575_758)] * 2
    assert not any(op == OP_SELL for op in tape.op)


def test_ws_replay_source_mirrors_a_no_book_onto_the_yes_book(tmp_path):
    # The recording's only book is token B's: as YES it is taken as is; with token A as YES it is
    # the NO book, and lands on the YES book mirrored (it used to be dropped).
    no_book = {**STREAM[0], "asset_id": TOKEN_B, "timestamp": "1790658661000"}
    write_jsonl(tmp_path / "rec.jsonl", [no_book, STREAM[1]])
    src = msgspec.convert(
        {"type": "ws_replay", "path": "rec.jsonl", "tick_px": 10, "yes_tokens": [TOKEN_B]}, WsReplaySource
    )
    no_src = msgspec.convert(
        {"type": "ws_replay", "path": "rec.jsonl", "tick_px": 10, "yes_tokens": [TOKEN_A]}, WsReplaySource
    )

    (as_yes,) = ws_replay_tapes(src, tmp_path)
    (as_no,) = ws_replay_tapes(no_src, tmp_path)

    yes_snap, no_snap = as_yes.specials[0], as_no.specials[0]
    assert isinstance(yes_snap, BookSnapshot) and isinstance(no_snap, BookSnapshot)
    assert no_snap.outcome is Outcome.YES
    assert no_snap.bids == tuple((10_000 - p, q) for p, q in yes_snap.asks)
    assert no_snap.asks == tuple((10_000 - p, q) for p, q in yes_snap.bids)
    assert no_snap.bids and no_snap.asks
