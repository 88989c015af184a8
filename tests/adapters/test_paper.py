import threading

from adapters.paper import DryRunPort, GetPaperMarkets, PaperPort, PaperVenue
from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot, Canceled, Filled, Place, TradePrint
from core.units import QTY_ONE, Outcome, Side
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


def test_dry_run_port_acknowledges_and_sends_nothing():
    got = Collect()
    port = DryRunPort("m", got, FakeClock())

    port.submit(
        [Place(market="m", client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=5 * QTY_ONE)]
    )
    port.cancel_all("m")

    assert [type(e) for _, e in got.events] == [Accepted, Canceled]
