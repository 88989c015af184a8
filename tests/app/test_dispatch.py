"""The feed → market actors hand-over: one batch of YES events per market per frame, each happening once."""

from hypothesis import given
from hypothesis import strategies as st

from actors.dispatch import FrameDispatcher
from core.messages import BookDelta, BookSnapshot, MarketBatch, TickSizeChanged, TradePrint
from core.units import PX_ONE, QTY_ONE, Outcome, Side
from core.yes_view import YesView

YES, NO = Outcome.YES, Outcome.NO


class RecordingRouter:
    def __init__(self):
        self.told = []

    def tell(self, market, message):
        self.told.append((market, message))
        return True


def delta(market, outcome, px, side=Side.BUY, qty=QTY_ONE, ts=1):
    return BookDelta(market=market, outcome=outcome, ts_ns=ts, side=side, px=px, qty=qty)


def mirror(ev):
    """The venue's copy of ``ev`` on the other token (what it publishes alongside it)."""
    other = NO if ev.outcome is YES else YES
    if isinstance(ev, BookDelta):
        return BookDelta(
            market=ev.market,
            outcome=other,
            ts_ns=ev.ts_ns,
            side=Side(-ev.side),
            px=PX_ONE - ev.px,
            qty=ev.qty,
        )
    return TradePrint(
        market=ev.market,
        outcome=other,
        ts_ns=ev.ts_ns,
        px=PX_ONE - ev.px,
        qty=ev.qty,
        aggressor=Side(-ev.aggressor),
        trade_id=ev.trade_id,
    )


def test_one_batch_per_market_in_frame_order_with_each_change_once_on_the_yes_book():
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    seen = []
    dispatch.listeners.append(seen.append)
    yes_bid = delta("a", YES, 4_000)
    no_bid = delta("a", NO, 6_500, qty=2 * QTY_ONE)  # a NO bid at 0.65 is a YES ask at 0.35
    trade = TradePrint(
        market="b", outcome=NO, ts_ns=1, px=4_000, qty=QTY_ONE, aggressor=Side.SELL, trade_id="0x1"
    )
    tick = TickSizeChanged(market="a", outcome=YES, ts_ns=1, tick_px=10)
    frame = [
        yes_bid,
        mirror(yes_bid),
        no_bid,
        mirror(no_bid),
        trade,
        mirror(trade),
        delta("b", YES, 3_000),
        tick,
        TickSizeChanged(market="a", outcome=NO, ts_ns=1, tick_px=10),
        delta("a", YES, 4_100),
    ]

    dispatch(frame)

    yes_ask = delta("a", YES, 3_500, side=Side.SELL, qty=2 * QTY_ONE)
    yes_trade = mirror(trade)  # a NO seller at 0.40 is a YES buyer at 0.60
    assert router.told == [
        ("a", MarketBatch((yes_bid, yes_ask, tick, frame[9]))),
        ("b", MarketBatch((yes_trade, frame[6]))),
    ]
    assert seen == [yes_trade, tick]  # listeners: every YES event but level changes, once
    assert dispatch.events_in == 6


def test_a_no_token_book_reaches_the_actor_as_the_yes_book_it_mirrors():
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    no_book = BookSnapshot(
        market="a", outcome=NO, ts_ns=5, bids=((6_000, QTY_ONE),), asks=((6_200, 3 * QTY_ONE),), tick_px=100
    )

    dispatch([no_book])

    [(market, batch)] = router.told
    assert market == "a"
    assert batch.events == (
        BookSnapshot(
            market="a",
            outcome=YES,
            ts_ns=5,
            bids=((3_800, 3 * QTY_ONE),),
            asks=((4_000, QTY_ONE),),
            tick_px=100,
        ),
    )


def test_markets_have_their_own_views():
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    a = delta("a", YES, 4_000)
    b = mirror(delta("b", YES, 4_000))  # looks like a's mirror, but is market b's own change

    dispatch([a, b])

    assert router.told == [("a", MarketBatch((a,))), ("b", MarketBatch((delta("b", YES, 4_000),)))]


def test_a_frame_of_mirrors_only_tells_nobody():
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    first = delta("a", YES, 4_000)
    dispatch([first])

    dispatch([mirror(first)])  # the mirror came in the next frame

    assert router.told == [("a", MarketBatch((first,)))] and dispatch.events_in == 1


# A venue stream: each happening (a level change or a trade on the YES book) published first on a
# random token, then (unless the feed held that token's copy back) mirrored on the other one.
happenings = st.lists(
    st.tuples(
        st.booleans(),  # a trade (else a level change)
        st.integers(0, 3),  # ts
        st.sampled_from(Side),
        st.integers(1, 99).map(lambda i: i * 100),
        st.integers(0, 3).map(lambda i: i * 7_575_758),
        st.booleans(),  # first copy on the NO token
        st.booleans(),  # the mirror is published too
    ),
    max_size=30,
).map(lambda hs: sorted(hs, key=lambda h: h[1]))


@given(happenings, st.integers(1, 4))
def test_property_each_happening_reaches_the_actor_once_on_the_yes_book(hs, frame_size):
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    expected, stream = [], []
    last_key = None
    for n, (is_trade, ts, side, px, qty, no_first, mirrored) in enumerate(hs):
        if is_trade:
            ev = TradePrint(
                market="m",
                outcome=YES,
                ts_ns=ts,
                px=px,
                qty=qty or QTY_ONE,
                aggressor=side,
                trade_id=f"0x{n}",
            )
        else:
            ev = delta("m", YES, px, side=side, qty=qty, ts=ts)
            key = (ts, side, px, qty)
            if key == last_key:
                continue  # the venue publishes a change, never the same level total twice in a row
            last_key = key
        expected.append(ev)
        copies = [mirror(ev), ev] if no_first else [ev, mirror(ev)]
        stream.extend(copies if mirrored else copies[:1])

    for i in range(0, len(stream), frame_size):
        dispatch(stream[i : i + frame_size])

    got = [ev for _, batch in router.told for ev in batch.events]
    assert got == expected
    assert dispatch.events_in == len(expected)


def reference_dispatch(views, frame):
    """The hand-over spelled out: each market's YES events in a batch, markets in order of first passed."""
    by_market = {}
    for raw in frame:
        ev = views.setdefault(raw.market, YesView()).apply(raw)
        if ev is not None:
            by_market.setdefault(raw.market, []).append(ev)
    return [(m, MarketBatch(tuple(evs))) for m, evs in by_market.items()]


frames = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from([YES, NO]),
            st.integers(0, 2),  # ts
            st.sampled_from(Side),
            st.integers(1, 9).map(lambda i: i * 1_000),
            st.booleans(),  # followed by its mirror
        ),
        max_size=8,
    ),
    max_size=6,
)


@given(frames)
def test_property_frames_of_one_or_many_markets_are_told_as_the_reference_tells_them(fs):
    # One market's frames take the dispatcher's short way; mixed frames the general one.
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    views, expected = {}, []
    for spec in fs:
        frame = []
        for market, outcome, ts, side, px, mirrored in spec:
            ev = delta(market, outcome, px, side=side, ts=ts)
            frame += [ev, mirror(ev)] if mirrored else [ev]
        dispatch(frame)
        expected += reference_dispatch(views, frame)

    assert router.told == expected
    assert dispatch.events_in == sum(len(b.events) for _, b in expected)
