import threading

from adapters.paper import DryRunPort, GetPaperMarkets, PaperPort, PaperVenue
from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot, Canceled, Filled, Place, TradePrint
from core.units import Outcome, Side
from tests.fakes import FakeClock

T = 10**18
INFO = MarketInfo(market="m", yes_token="y", no_token="n", tick_px=100, min_qty=500)


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
            market="m", outcome=Outcome.YES, ts_ns=T, bids=((4_700, 10_000),), asks=((4_800, 10_000),)
        )
    )
    PaperPort(venue, "m").submit(
        [Place(market="m", client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=2_000)]
    )

    venue.tell(
        TradePrint(market="m", outcome=Outcome.YES, ts_ns=T + 1, px=4_700, qty=6_000, aggressor=Side.SELL)
    )
    venue.ask(GetPaperMarkets(), timeout=2)  # barrier: everything told so far is processed
    assert got.fills() == []  # 100 shares were ahead of us, 60 traded

    # A NO trade at 0.53 bought by the taker is a YES sell at 0.47: it reaches us once 40 more trade.
    venue.tell(
        TradePrint(market="m", outcome=Outcome.NO, ts_ns=T + 2, px=5_300, qty=5_000, aggressor=Side.BUY)
    )
    markets = venue.ask(GetPaperMarkets(), timeout=2)
    venue.stop()

    assert [(f.qty, f.px, f.liquidity) for f in got.fills()] == [(1_000, 4_700, "maker")]
    assert any(isinstance(e, Accepted) for _, e in got.events)
    assert markets["m"].events == 3 and len(markets["m"].exchange.fills) == 1


def test_dry_run_port_acknowledges_and_sends_nothing():
    got = Collect()
    port = DryRunPort("m", got, FakeClock())

    port.submit([Place(market="m", client_id="b1", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=500)])
    port.cancel_all("m")

    assert [type(e) for _, e in got.events] == [Accepted, Canceled]
