"""The feed → market actors hand-over: one batch per market per frame, NO-book mirrors dropped."""

from actors.market import MarketBatch
from app.bootstrap import FrameDispatcher
from core.messages import BookDelta, TickSizeChanged, TradePrint
from core.units import QTY_ONE, Outcome, Side


class RecordingRouter:
    def __init__(self):
        self.told = []

    def tell(self, market, message):
        self.told.append((market, message))
        return True


def delta(market, outcome, px):
    return BookDelta(market=market, outcome=outcome, ts_ns=1, side=Side.BUY, px=px, qty=QTY_ONE)


def test_one_batch_per_market_in_frame_order_without_no_book_deltas():
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)
    seen = []
    dispatch.listeners.append(seen.append)
    trade = TradePrint(market="b", outcome=Outcome.NO, ts_ns=1, px=4_000, qty=QTY_ONE, aggressor=Side.SELL)
    tick = TickSizeChanged(market="a", outcome=Outcome.YES, ts_ns=1, tick_px=10)
    frame = [
        delta("a", Outcome.YES, 4_000),
        delta("a", Outcome.NO, 6_000),
        trade,
        delta("b", Outcome.YES, 3_000),
        tick,
        delta("a", Outcome.YES, 4_100),
    ]

    dispatch(frame)

    assert router.told == [
        ("a", MarketBatch((frame[0], tick, frame[5]))),
        ("b", MarketBatch((trade, frame[3]))),
    ]
    assert seen == [trade, tick]  # listeners see every event but book deltas
    assert dispatch.events_in == 5


def test_a_frame_of_no_book_deltas_tells_nobody():
    router = RecordingRouter()
    dispatch = FrameDispatcher(router)

    dispatch([delta("a", Outcome.NO, 6_000)])

    assert router.told == [] and dispatch.events_in == 0
