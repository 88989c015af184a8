"""The tape's one YES view: events of either token land on the YES book, each happening once."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.markets import MarketInfo
from core.messages import BookDelta, BookSnapshot, MarketResolved, TickSizeChanged, TradePrint
from core.units import PX_ONE, QTY_ONE, TICKS_PX, Outcome, Side
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SELL, OP_SPECIAL, MarketTape, TickPx, tape_from_events

SHARE = QTY_ONE
M = "m"
T = 1_790_000_000 * 10**9
INFO = MarketInfo(market=M, yes_token="y", no_token="n", tick_px=100, min_qty=5 * SHARE)


def mirror_trade(t: TradePrint) -> TradePrint:
    """The same match as the venue prints it on the other token."""
    other = Outcome.NO if t.outcome is Outcome.YES else Outcome.YES
    return msgspec.structs.replace(t, outcome=other, px=PX_ONE - t.px, aggressor=Side(-t.aggressor))


def rows(tape: MarketTape) -> list[tuple[int, int, int, int]]:
    return list(zip(tape.ts, tape.op, tape.px, tape.qty, strict=True))


def test_tick_type_is_exactly_the_venue_ticks():
    assert msgspec.convert(25, TickPx) == 25
    assert set(TICKS_PX) == {1000, 100, 50, 25, 10, 1}
    for tick in TICKS_PX:
        assert msgspec.convert(tick, TickPx) == tick
    for bad in (0, 2, 5, 20, 250):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, TickPx)


def test_a_no_book_snapshot_is_mirrored_onto_the_yes_book_not_dropped():
    no_book = BookSnapshot(
        market=M,
        outcome=Outcome.NO,
        ts_ns=T,
        bids=((5_300, 10 * SHARE), (5_200, 20 * SHARE)),
        asks=((5_500, 7_575_758),),
        tick_px=100,
        min_qty=5 * SHARE,
    )

    tape = tape_from_events(INFO, [no_book])

    assert list(tape.op) == [OP_SPECIAL]
    snap = tape.specials[0]
    assert isinstance(snap, BookSnapshot) and snap.outcome is Outcome.YES
    assert snap.bids == ((4_500, 7_575_758),)
    assert snap.asks == ((4_700, 10 * SHARE), (4_800, 20 * SHARE))
    assert (snap.tick_px, snap.min_qty, snap.ts_ns) == (100, 5 * SHARE, T)


def test_special_maps_a_no_snapshot_too():
    tape = MarketTape(INFO)
    tape.special(BookSnapshot(market=M, outcome=Outcome.NO, ts_ns=T, bids=((5_300, SHARE),), asks=()))

    snap = tape.specials[0]
    assert isinstance(snap, BookSnapshot)
    assert (snap.outcome, snap.bids, snap.asks) == (Outcome.YES, (), ((4_700, SHARE),))


def test_a_trade_printed_on_both_tokens_counts_once_with_or_without_its_id():
    for trade_id in ("0xabc", ""):
        yes = TradePrint(
            market=M,
            outcome=Outcome.YES,
            ts_ns=T,
            px=4_700,
            qty=50 * SHARE,
            aggressor=Side.BUY,
            trade_id=trade_id,
        )
        for pair in ([yes, mirror_trade(yes)], [mirror_trade(yes), yes]):
            tape = tape_from_events(INFO, pair)

            # One 50-share trade: the queue ahead of us advances by 50, not 100.
            assert rows(tape) == [(T, OP_BUY, 4_700, 50 * SHARE)]


def test_a_no_only_trade_is_the_yes_trade_the_other_way_round():
    no = TradePrint(market=M, outcome=Outcome.NO, ts_ns=T, px=5_300, qty=3 * SHARE, aggressor=Side.BUY)

    tape = tape_from_events(INFO, [no])

    assert rows(tape) == [(T, OP_SELL, 4_700, 3 * SHARE)]


def test_two_real_trades_alike_both_count_and_different_ids_are_different_trades():
    a = TradePrint(market=M, outcome=Outcome.YES, ts_ns=T, px=4_700, qty=SHARE, aggressor=Side.SELL)
    b = msgspec.structs.replace(a, trade_id="2")
    c = msgspec.structs.replace(a, trade_id="3")

    tape = tape_from_events(INFO, [a, a, mirror_trade(a), mirror_trade(a), b, mirror_trade(c)])

    assert [op for _, op, _, _ in rows(tape)] == [OP_SELL] * 4


@given(
    st.lists(
        st.tuples(
            st.integers(1, 99).map(lambda i: i * 100),
            st.integers(0, 10**4 * SHARE),
            st.sampled_from(Side),
            st.sampled_from(Outcome),
            st.booleans(),
        ),
        max_size=25,
    )
)
def test_price_change_pairs_land_once_on_the_yes_book(changes):
    # The venue's price_change carries each level change and its mirror on the other token; either
    # token may come first, and a change may come on one token only.
    events = []
    expected = []
    for i, (px, qty, side, token, paired) in enumerate(changes):
        yes = BookDelta(market=M, outcome=Outcome.YES, ts_ns=T + i, side=side, px=px, qty=qty)
        no = BookDelta(market=M, outcome=Outcome.NO, ts_ns=T + i, side=Side(-side), px=PX_ONE - px, qty=qty)
        first, second = (yes, no) if token is Outcome.YES else (no, yes)
        events += [first, second] if paired else [first]
        expected.append((T + i, OP_BID if side is Side.BUY else OP_ASK, px, qty))

    tape = tape_from_events(INFO, events)

    assert rows(tape) == expected


def test_tick_change_on_both_tokens_counts_once_and_resolution_passes():
    events = [
        TickSizeChanged(market=M, outcome=Outcome.YES, ts_ns=T, tick_px=10),
        TickSizeChanged(market=M, outcome=Outcome.NO, ts_ns=T, tick_px=10),
        MarketResolved(market=M, ts_ns=T + 1, yes_won=False),
    ]

    tape = tape_from_events(INFO, events)

    assert list(tape.op) == [OP_SPECIAL, OP_SPECIAL]
    assert list(tape.specials.values()) == [events[0], events[2]]


def test_a_yes_only_stream_comes_back_unchanged_through_events():
    yes = [
        BookSnapshot(market=M, outcome=Outcome.YES, ts_ns=T, bids=((4_600, SHARE),), asks=((4_800, SHARE),)),
        BookDelta(market=M, outcome=Outcome.YES, ts_ns=T + 1, side=Side.BUY, px=4_700, qty=2 * SHARE),
        TradePrint(market=M, outcome=Outcome.YES, ts_ns=T + 2, px=4_800, qty=SHARE, aggressor=Side.BUY),
        BookDelta(market=M, outcome=Outcome.YES, ts_ns=T + 2, side=Side.SELL, px=4_800, qty=0),
    ]

    tape = tape_from_events(INFO, yes)

    assert list(tape.events()) == yes
