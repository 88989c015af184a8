import threading

import pykka
import pytest

from actors.loop import ActorLoop
from actors.market import GetStatus, LoopMarketActor, MarketActor, PullQuotes
from actors.session import MarketSession
from actors.supervisor import GetRestarts, Router, StartMarket, Supervisor
from adapters.paper import DryRunPort
from app.configfile import load_config
from core.markets import MarketInfo
from core.messages import BookDelta, BookSnapshot, CancelAll, Filled
from core.quoting import quote_params
from core.units import PX_ONE, QTY_ONE, Outcome, Side
from tests.fakes import FakeClock, FakeExchangePort, ListSink

T0 = 10**18
SHARE = QTY_ONE
PARAMS = quote_params(load_config("configs/market_maker.yaml"))


def info(m):
    return MarketInfo(market=m, yes_token=f"{m}-y", no_token=f"{m}-n", tick_px=100, min_qty=5 * SHARE)


def snapshot(m, ts=T0):
    return BookSnapshot(
        market=m,
        outcome=Outcome.YES,
        ts_ns=ts,
        bids=((4_700, 100 * SHARE),),
        asks=((4_800, 100 * SHARE),),
        tick_px=100,
        min_qty=5 * SHARE,
    )


@pytest.fixture(params=["threads", "loop"])
def actor_loop(request):
    """Market actors on a thread each (simulation) or on one event loop (live trading)."""
    if request.param == "threads":
        yield None
        return
    loop = ActorLoop("test-loop")
    loop.start()
    yield loop
    loop.stop()


def start_market_actor(session, actor_loop, **kwargs):
    if actor_loop is None:
        return MarketActor.start(session, **kwargs)
    return LoopMarketActor.start(session, actor_loop=actor_loop, **kwargs)


@pytest.fixture
def market_actor(actor_loop):
    port = FakeExchangePort()
    ref = start_market_actor(MarketSession(info("m1"), PARAMS, port, FakeClock(), ListSink()), actor_loop)
    yield ref, port
    ref.stop()


def test_market_actor_quotes_on_told_snapshot(market_actor):
    ref, port = market_actor

    ref.tell(snapshot("m1"))
    status = ref.ask(GetStatus(), timeout=1)

    assert status.book_valid and status.last_quote
    assert len(status.last_bids) == 3 and len(port.places) == 6


def test_market_actor_pull_quotes_cancels_everything(market_actor):
    ref, port = market_actor
    ref.tell(snapshot("m1"))
    assert ref.ask(GetStatus(), timeout=1).open_orders == 6

    ref.ask(PullQuotes(ts_ns=T0 + 1, reason="shutdown"), timeout=1)
    ref.tell(snapshot("m1", ts=T0 + 2))
    status = ref.ask(GetStatus(), timeout=1)

    assert isinstance(port.commands[-1], CancelAll)
    assert len(port.places) == 6 and not status.last_quote  # pulled quotes stay pulled


class Factory:
    """Builds sessions per market; a restarted market gets a fresh session on the same port."""

    def __init__(self):
        self.ports = {}
        self.built = []
        self.lock = threading.Lock()

    def __call__(self, market):
        with self.lock:
            port = self.ports.setdefault(market, FakeExchangePort())
            self.built.append(market)
        return MarketSession(info(market), PARAMS, port, FakeClock(), ListSink())


def test_failed_actor_pulls_quotes_and_is_restarted_while_others_keep_quoting(actor_loop):
    factory, router = Factory(), Router()
    restarted = threading.Event()

    def schedule(delay, fn):
        fn()
        restarted.set()

    sup = Supervisor.start(factory, router, backoff_s=0.0, schedule=schedule, actor_loop=actor_loop)
    first_a = sup.ask(StartMarket("a"), timeout=2)
    sup.ask(StartMarket("b"), timeout=2)
    router.tell("a", snapshot("a"))
    router.tell("b", snapshot("b"))
    assert router.get("a").ask(GetStatus(), timeout=1).last_quote

    # Corrupt data (a price outside [0, 1]) is an invariant violation: the actor crashes.
    router.tell(
        "a", BookDelta(market="a", outcome=Outcome.YES, ts_ns=T0 + 1, side=Side.BUY, px=20_000, qty=1)
    )

    assert restarted.wait(5)
    assert sup.ask(GetRestarts(), timeout=2) == {"a": 1}  # processed after the queued Restart
    new_a = router.get("a")
    assert new_a is not None and new_a != first_a and new_a.is_alive()
    assert not first_a.is_alive()
    assert "a" in factory.ports and factory.ports["a"].cancel_all_calls == ["a"]  # quotes pulled
    assert factory.built.count("a") == 2
    # The other market never noticed and keeps quoting; the new actor quotes after a fresh snapshot.
    router.tell(
        "b", BookDelta(market="b", outcome=Outcome.YES, ts_ns=T0 + 2, side=Side.BUY, px=4_750, qty=50 * SHARE)
    )
    assert router.get("b").ask(GetStatus(), timeout=1).last_quote
    router.tell("a", snapshot("a", ts=T0 + 3))
    assert new_a.ask(GetStatus(), timeout=1).last_quote
    sup.stop()
    assert not pykka.ActorRegistry.get_all() or all(not r.is_alive() for r in pykka.ActorRegistry.get_all())


class Collector(pykka.ThreadingActor):
    def __init__(self):
        super().__init__()
        self.got = []

    def on_receive(self, message):
        if message == "get":
            return list(self.got)
        self.got.append(message)
        return None


def test_router_keeps_messages_for_a_market_while_it_restarts():
    router = Router()
    router.set("m", None)  # down: the supervisor is restarting it

    assert router.tell("m", "fill-1") is False
    assert router.tell("m", "fill-2") is False
    ref = Collector.start()
    router.set("m", ref)
    router.tell("m", "fill-3")

    assert ref.ask("get", timeout=2) == ["fill-1", "fill-2", "fill-3"]  # none lost, in order


def test_restarted_session_gets_fresh_client_ids():
    port = FakeExchangePort()
    first = MarketSession(info("m1"), PARAMS, port, FakeClock(), ListSink())
    second = MarketSession(info("m1"), PARAMS, port, FakeClock(), ListSink(), incarnation=1)
    for s in (first, second):
        s.on_event(snapshot("m1"))
        s.flush(s.clock.now_ns())

    ids = [p.client_id for p in port.places]
    assert len(set(ids)) == len(ids) == 12
    assert ids[6].startswith("m1-r1-")


class Slow(MarketSession):
    """Crashes on a price outside [0, 1], after a pause during which more messages queue up."""

    def on_event(self, ev):
        if isinstance(ev, BookDelta) and ev.px > PX_ONE:
            threading.Event().wait(0.2)
        super().on_event(ev)


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_reports_queued_behind_a_crash_reach_the_restarted_actor(actor_loop):
    router = Router()
    sessions = []

    def factory(market):
        s = Slow(info(market), PARAMS, FakeExchangePort(), FakeClock(), ListSink())
        sessions.append(s)
        return s

    restarted = threading.Event()

    def schedule(delay, fn):
        fn()
        restarted.set()

    sup = Supervisor.start(factory, router, backoff_s=0.0, schedule=schedule, actor_loop=actor_loop)
    sup.ask(StartMarket("a"), timeout=2)
    router.tell("a", BookDelta(market="a", outcome=Outcome.YES, ts_ns=T0, side=Side.BUY, px=20_000, qty=1))
    fill = Filled(
        market="a",
        client_id="a-x",
        ts_ns=T0,
        outcome=Outcome.YES,
        side=Side.BUY,
        px=4_700,
        qty=30 * SHARE,
        fee_usdc6=0,
        liquidity="maker",
        trade_id="t1",
        leaves_qty=0,
    )
    router.tell("a", fill)  # queued behind the crashing message

    assert restarted.wait(5)
    assert sup.ask(GetRestarts(), timeout=5) == {"a": 1}  # processed after the queued Restart
    new = router.get("a")
    new.ask(GetStatus(), timeout=2)
    assert len(sessions) == 2 and sessions[1].inv.yes_qty == 30 * SHARE  # the fill was not lost
    sup.stop()


def test_acks_told_while_handling_on_the_loop_find_the_orders_they_acknowledge():
    # The dry-run port acknowledges inside submit; on the loop those acks must wait for the handler
    # to finish recording the orders it just handed over.
    loop = ActorLoop("test-loop")
    loop.start()
    router = Router()
    session = MarketSession(
        info("m1"), PARAMS, DryRunPort("m1", router.tell, FakeClock()), FakeClock(), ListSink()
    )
    ref = LoopMarketActor.start(session, actor_loop=loop)
    router.set("m1", ref)
    told = threading.Event()

    def tell_on_loop():
        router.tell("m1", snapshot("m1"))  # handled at once, on this thread
        told.set()

    loop.call_soon(tell_on_loop)
    assert told.wait(5)
    status = ref.ask(GetStatus(), timeout=5)

    assert status.open_orders == 6
    assert {r.status for r in session.orders.values()} == {1}  # every order accepted (LIVE)
    ref.stop()
    loop.stop()
