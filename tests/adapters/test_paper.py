"""Paper trading: the simulated venue fed by market data of either token, and the dry-run port."""

import threading

import msgspec

from adapters.paper import DryRunPort, GetPaperMarkets, PaperMarket, PaperPort, PaperVenue
from adapters.polymarket.parse import AssetMap, decode_market_frame
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    BookDelta,
    BookSnapshot,
    Canceled,
    Filled,
    MarketBatch,
    MarketEvent,
    Place,
    TradePrint,
)
from core.units import PX_ONE, QTY_ONE, Outcome, Side
from core.yes_view import YesView
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario
from emulator.venue import MarketSub, Venue
from tests.fakes import FakeClock

T = 10**18
INFO = MarketInfo(market="m", yes_token="y", no_token="n", tick_px=100, min_qty=5 * QTY_ONE)


class Collect:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, market, msg):
        with self.lock:
            self.events.extend((market, ev) for ev in msg.events)

    def fills(self):
        return [e for _, e in self.events if isinstance(e, Filled)]


def test_paper_fills_only_after_the_displayed_queue_ahead_is_consumed():
    got = Collect()
    venue = PaperVenue.start([INFO], got, FakeClock())
    venue.tell(
        BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=T,
            bids=((4_700, 100 * QTY_ONE),),
            asks=((4_800, 100 * QTY_ONE),),
        )
    )
    PaperPort(venue, "m").submit(
        [Place(market="m", client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=20 * QTY_ONE)]
    )

    venue.tell(
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 1, px=4_700, qty=60 * QTY_ONE, aggressor=Side.SELL
        )
    )
    venue.ask(GetPaperMarkets(), timeout=2)  # barrier: everything told so far is processed
    assert got.fills() == []  # 100 shares were ahead of us, 60 traded

    # A NO trade at 0.53 bought by the taker is a YES sell at 0.47: it reaches us once 40 more trade.
    venue.tell(
        TradePrint(
            market="m", outcome=Outcome.NO, ts_ns=T + 2, px=5_300, qty=50 * QTY_ONE, aggressor=Side.BUY
        )
    )
    markets = venue.ask(GetPaperMarkets(), timeout=2)
    venue.stop()

    assert [(f.qty, f.px, f.liquidity) for f in got.fills()] == [(10 * QTY_ONE, 4_700, "maker")]
    assert any(isinstance(e, Accepted) for _, e in got.events)
    assert markets["m"].events == 3 and len(markets["m"].exchange.fills) == 1


def test_paper_fill_of_a_six_decimal_trade_is_exact():
    got = Collect()
    venue = PaperVenue.start([INFO], got, FakeClock())
    venue.tell(BookSnapshot(market="m", outcome=Outcome.YES, ts_ns=T, bids=((4_700, 10 * QTY_ONE),), asks=()))
    PaperPort(venue, "m").submit(
        [Place(market="m", client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=20 * QTY_ONE)]
    )

    # A market SELL of 17.575758 shares: the 10 displayed ahead of us, then 7.575758 of ours.
    venue.tell(
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 1, px=4_700, qty=17_575_758, aggressor=Side.SELL
        )
    )
    venue.ask(GetPaperMarkets(), timeout=2)
    venue.stop()

    assert [(f.qty, f.px, f.leaves_qty) for f in got.fills()] == [(7_575_758, 4_700, 12_424_242)]


def _bid(qty: int, px: int = 4_700, cid: str = "b1") -> Place:
    return Place(market="m", client_id=cid, outcome=Outcome.YES, side=Side.BUY, px=px, qty=qty)


def _run(
    events: list[MarketEvent], orders_after: int, orders: list[Place]
) -> tuple[list[Filled], PaperMarket]:
    """Tell ``events`` to a paper venue, placing ``orders`` after the first ``orders_after`` events."""
    got = Collect()
    venue = PaperVenue.start([INFO], got, FakeClock())
    for ev in events[:orders_after]:
        venue.tell(ev)
    PaperPort(venue, "m").submit(orders)
    for ev in events[orders_after:]:
        venue.tell(ev)
    markets = venue.ask(GetPaperMarkets(), timeout=2)
    venue.stop()
    return got.fills(), markets["m"]


def test_a_no_book_snapshot_reaches_the_exchange_as_the_yes_snapshot():
    # The NO book only: NO bids 0.52 and asks 0.53 are YES asks 0.48 and bids 0.47, 100 shares each.
    no_book = BookSnapshot(
        market="m",
        outcome=Outcome.NO,
        ts_ns=T,
        bids=((5_200, 100 * QTY_ONE),),
        asks=((5_300, 100 * QTY_ONE),),
    )
    sell = TradePrint(market="m", outcome=Outcome.YES, ts_ns=T + 1, px=4_700, qty=0, aggressor=Side.SELL)
    prints = [
        msgspec.structs.replace(sell, qty=100 * QTY_ONE),
        msgspec.structs.replace(sell, ts_ns=T + 2, qty=5 * QTY_ONE),
    ]

    fills, pm = _run([no_book, *prints], 1, [_bid(20 * QTY_ONE)])

    book = pm.exchange.book
    assert (book.bid_px, book.ask_px) == (4_700, 4_800)
    # 100 shares were displayed ahead of us: the first print only reaches them, the second reaches us.
    assert [(f.qty, f.px) for f in fills] == [(5 * QTY_ONE, 4_700)]


def test_a_trade_printed_on_both_tokens_advances_the_queue_once():
    # One 60-share match printed on both tokens (one transaction hash), then a 50-share one.
    book = BookSnapshot(market="m", outcome=Outcome.YES, ts_ns=T, bids=((4_700, 100 * QTY_ONE),), asks=())
    yes = TradePrint(
        market="m",
        outcome=Outcome.YES,
        ts_ns=T + 1,
        px=4_700,
        qty=60 * QTY_ONE,
        aggressor=Side.SELL,
        trade_id="0x1",
    )
    no = TradePrint(
        market="m",
        outcome=Outcome.NO,
        ts_ns=T + 1,
        px=5_300,
        qty=60 * QTY_ONE,
        aggressor=Side.BUY,
        trade_id="0x1",
    )
    later = msgspec.structs.replace(yes, ts_ns=T + 2, qty=50 * QTY_ONE, trade_id="0x2")

    fills, pm = _run([book, yes, no, later], 1, [_bid(20 * QTY_ONE)])

    # 60 + 50 of the 100 ahead traded: 10 of ours (both copies counted would have filled all 20).
    assert [(f.qty, f.px) for f in fills] == [(10 * QTY_ONE, 4_700)]
    assert pm.events == 3  # the NO copy of the first match is not an event of its own


def _both_tokens(events: list[MarketEvent]) -> list[MarketEvent]:
    # What the venue sends for a YES-book story: every level change and trade also on the NO token.
    out: list[MarketEvent] = []
    for ev in events:
        out.append(ev)
        if isinstance(ev, BookDelta):
            out.append(
                BookDelta(
                    market="m",
                    outcome=Outcome.NO,
                    ts_ns=ev.ts_ns,
                    side=Side(-ev.side),
                    px=PX_ONE - ev.px,
                    qty=ev.qty,
                )
            )
        elif isinstance(ev, TradePrint):
            out.append(
                msgspec.structs.replace(
                    ev, outcome=Outcome.NO, px=PX_ONE - ev.px, aggressor=Side(-ev.aggressor)
                )
            )
        elif isinstance(ev, BookSnapshot):
            out.append(
                BookSnapshot(
                    market="m",
                    outcome=Outcome.NO,
                    ts_ns=ev.ts_ns,
                    bids=tuple((PX_ONE - p, q) for p, q in ev.asks),
                    asks=tuple((PX_ONE - p, q) for p, q in ev.bids),
                )
            )
    return out


def _fills(fills: list[Filled]) -> list[tuple[str, int, int, int]]:
    return [(f.client_id, f.qty, f.px, f.ts_ns) for f in fills]


def test_raw_and_yes_normalised_feeds_give_the_same_fills():
    story: list[MarketEvent] = [
        BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=T,
            bids=((4_700, 30 * QTY_ONE),),
            asks=((4_900, 40 * QTY_ONE),),
        ),
        BookDelta(market="m", outcome=Outcome.YES, ts_ns=T + 1, side=Side.BUY, px=4_700, qty=50 * QTY_ONE),
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 2, px=4_700, qty=10 * QTY_ONE, aggressor=Side.SELL
        ),
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 2, px=4_700, qty=10 * QTY_ONE, aggressor=Side.SELL
        ),
        BookDelta(market="m", outcome=Outcome.YES, ts_ns=T + 3, side=Side.BUY, px=4_700, qty=30 * QTY_ONE),
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 4, px=4_700, qty=15 * QTY_ONE, aggressor=Side.SELL
        ),
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 5, px=4_600, qty=4 * QTY_ONE, aggressor=Side.SELL
        ),
        TradePrint(
            market="m", outcome=Outcome.YES, ts_ns=T + 6, px=4_900, qty=40 * QTY_ONE, aggressor=Side.BUY
        ),
    ]
    raw = _both_tokens(story)
    view = YesView()
    normalised = [e for ev in raw if (e := view.apply(ev)) is not None]
    orders = [_bid(20 * QTY_ONE), _bid(10 * QTY_ONE, px=4_800, cid="b2")]

    on_yes, _ = _run(story, 1, orders)
    on_raw, _ = _run(raw, 2, orders)
    on_normalised, _ = _run(normalised, 2, orders)

    # Normalised: the story again, its snapshot twice (the view passes both tokens' books: a snapshot
    # sets the book, so the second one changes nothing).
    assert len(raw) == 2 * len(story) and normalised == [story[0], *story]
    # The story fills us, and differently from the story with every trade counted twice (what a venue
    # that took the NO copy of a print for a trade of its own would see), whatever the queue model.
    twice = [e for ev in story for e in ((ev, ev) if isinstance(ev, TradePrint) else (ev,))]
    on_twice, _ = _run(twice, 1, orders)
    assert on_yes and _fills(on_twice) != _fills(on_yes)
    assert _fills(on_raw) == _fills(on_yes)
    assert _fills(on_normalised) == _fills(on_yes)


class _Frames:
    """A market-channel subscriber of the in-process emulator venue: keeps the frames it is sent."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    def send(self, text: str) -> None:
        self.frames.append(text)

    def drop(self, abrupt: bool) -> None:
        raise AssertionError("no fault in this scenario")


def test_paper_fills_once_from_the_emulators_feed_of_both_tokens():
    # The emulator's own feed (books, price changes and each trade printed on both tokens, with
    # one transaction hash), decoded as the live feed decodes it, drives the paper venue.
    lot = 100 * QTY_ONE
    scenario = Scenario(
        markets=(
            MarketConfig(
                slug="paper",
                initial_book=InitialBook(bids=((4_800, lot),), asks=((5_200, lot),)),
                flow=FlowConfig(enabled=False),
            ),
        )
    )
    clock = FakeClock()
    emu = Venue(scenario, seed=3, clock=clock)
    (ids,) = emu.market_ids()
    info = MarketInfo(market=ids["market"], yes_token=ids["yes_token"], no_token=ids["no_token"], tick_px=100)
    assets = AssetMap.from_markets([info])
    sink = _Frames()
    emu.subscribe_market(MarketSub(sink), [info.yes_token, info.no_token])
    got = Collect()
    paper = PaperVenue.start([info], got, clock)

    def pump() -> None:
        for frame in sink.frames:
            paper.tell(MarketBatch(tuple(decode_market_frame(frame, assets))))
        sink.frames.clear()

    pump()
    # Our paper bid improves the touch to 0.49: nobody is ahead of it.
    PaperPort(paper, info.market).submit(
        [
            Place(
                market=info.market,
                client_id="p1",
                outcome=Outcome.YES,
                side=Side.BUY,
                px=4_900,
                qty=20 * QTY_ONE,
            )
        ]
    )
    emu.take("paper", Side.SELL, 12 * QTY_ONE)  # a taker sells 12 shares at the 0.48 bid: through ours
    pump()
    paper.ask(GetPaperMarkets(), timeout=2)
    paper.stop()

    # 12 shares sold through our bid, printed on both tokens: 12 of ours fill, not 20 (12 + 8 more).
    assert [(f.client_id, f.qty, f.px, f.liquidity) for f in got.fills()] == [
        ("p1", 12 * QTY_ONE, 4_900, "maker")
    ]


def test_dry_run_port_acknowledges_and_sends_nothing():
    got = Collect()
    port = DryRunPort("m", got, FakeClock())

    port.submit(
        [Place(market="m", client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=5 * QTY_ONE)]
    )
    port.cancel_all("m")

    assert [type(e) for _, e in got.events] == [Accepted, Canceled]
