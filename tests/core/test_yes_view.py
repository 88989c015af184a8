"""The one YES view: mirroring is exact and an event published on both tokens counts once."""

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from core.messages import BookDelta, BookSnapshot, MarketResolved, TickSizeChanged, TradePrint
from core.units import PX_ONE, QTY_ONE, Outcome, Side
from core.yes_view import YesView, to_yes, yes_side

M = "0xm"
SHARE = QTY_ONE
T = 10**18

prices = st.integers(1, PX_ONE - 1)
sizes = st.integers(1, 10_000 * SHARE)
sides = st.sampled_from(list(Side))


def _mirror(ev):
    # The same happening as the venue publishes it on the other token.
    if isinstance(ev, BookDelta):
        return BookDelta(
            market=ev.market,
            outcome=Outcome.NO,
            ts_ns=ev.ts_ns,
            side=Side(-ev.side),
            px=PX_ONE - ev.px,
            qty=ev.qty,
        )
    return TradePrint(
        market=ev.market,
        outcome=Outcome.NO,
        ts_ns=ev.ts_ns,
        px=PX_ONE - ev.px,
        qty=ev.qty,
        aggressor=Side(-ev.aggressor),
        trade_id=ev.trade_id,
    )


def test_no_snapshot_becomes_the_yes_book_it_mirrors():
    no_book = BookSnapshot(
        market=M,
        outcome=Outcome.NO,
        ts_ns=T,
        bids=((5_200, SHARE), (5_100, 2 * SHARE)),
        asks=((5_400, 3 * SHARE),),
    )

    yes = to_yes(no_book)

    assert yes.outcome is Outcome.YES
    assert yes.bids == ((4_600, 3 * SHARE),)
    assert yes.asks == ((4_800, SHARE), (4_900, 2 * SHARE))


@given(prices, sizes, sides)
def test_no_trade_is_a_yes_trade_the_other_way_round(px, qty, side):
    no_trade = TradePrint(market=M, outcome=Outcome.NO, ts_ns=T, px=px, qty=qty, aggressor=side)

    yes = to_yes(no_trade)

    assert (yes.outcome, yes.px, yes.qty, yes.aggressor) == (Outcome.YES, PX_ONE - px, qty, Side(-side))
    assert to_yes(yes) is yes


@given(prices, sizes, sides, st.booleans(), st.booleans())
def test_a_trade_printed_on_both_tokens_counts_once_in_either_order(px, qty, side, no_first, with_id):
    yes = TradePrint(
        market=M,
        outcome=Outcome.YES,
        ts_ns=T,
        px=px,
        qty=qty,
        aggressor=side,
        trade_id="0xabc" if with_id else "",
    )
    pair = [_mirror(yes), yes] if no_first else [yes, _mirror(yes)]
    view = YesView()

    out = [e for e in (view.apply(ev) for ev in pair) if e is not None]

    assert len(out) == 1
    assert (out[0].px, out[0].qty, out[0].aggressor) == (px, qty, side)


def test_two_real_trades_with_the_same_key_both_count():
    a = TradePrint(market=M, outcome=Outcome.YES, ts_ns=T, px=4_700, qty=50 * SHARE, aggressor=Side.BUY)
    view = YesView()

    out = [view.apply(ev) for ev in (a, a, _mirror(a), _mirror(a))]

    assert [e is not None for e in out] == [True, True, False, False]


def test_trades_with_different_ids_are_different_trades():
    a = TradePrint(
        market=M, outcome=Outcome.YES, ts_ns=T, px=4_700, qty=50 * SHARE, aggressor=Side.BUY, trade_id="1"
    )
    b = _mirror(msgspec.structs.replace(a, trade_id="2"))
    view = YesView()

    assert view.apply(a) is not None and view.apply(b) is not None


@given(st.lists(st.tuples(prices, st.integers(0, 10**6 * SHARE), sides), max_size=20))
def test_price_change_pairs_pass_each_level_change_once(changes):
    # The venue's price_change carries each level change followed by its mirror on the other token.
    view = YesView()
    out = []
    for i, (px, qty, side) in enumerate(changes):
        yes = BookDelta(market=M, outcome=Outcome.YES, ts_ns=T + i, side=side, px=px, qty=qty)
        out += [e for e in (view.apply(yes), view.apply(_mirror(yes))) if e is not None]

    assert [(e.side, e.px, e.qty) for e in out] == [(Side(s), p, q) for p, q, s in changes]


def test_a_no_only_level_change_is_mirrored_not_dropped():
    view = YesView()

    out = view.apply(BookDelta(market=M, outcome=Outcome.NO, ts_ns=T, side=Side.BUY, px=5_300, qty=SHARE))

    assert out == BookDelta(market=M, outcome=Outcome.YES, ts_ns=T, side=Side.SELL, px=4_700, qty=SHARE)


def test_tick_change_on_both_tokens_counts_once_and_resolution_passes():
    view = YesView()
    yes_tick = TickSizeChanged(market=M, outcome=Outcome.YES, ts_ns=T, tick_px=10)
    no_tick = TickSizeChanged(market=M, outcome=Outcome.NO, ts_ns=T, tick_px=10)
    resolved = MarketResolved(market=M, ts_ns=T, yes_won=True)

    assert view.apply(yes_tick) == yes_tick
    assert view.apply(no_tick) is None
    assert view.apply(resolved) is resolved


@given(st.sampled_from(list(Outcome)), sides, prices, sizes)
def test_property_yes_side_is_the_side_to_yes_gives_a_print(outcome, side, px, qty):
    # The side alone maps as a whole print on that token does (the session's flow from our fills).
    ev = TradePrint(market=M, outcome=outcome, ts_ns=T, px=px, qty=qty, aggressor=side)
    yes = to_yes(ev)
    assert isinstance(yes, TradePrint)
    assert yes_side(outcome, side) is yes.aggressor
    assert yes_side(outcome, side) is (side if outcome is Outcome.YES else Side(-side))
