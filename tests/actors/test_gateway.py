"""The order gateway's rules against a naive venue model (``tests/actors/venue_fake.py``).

Each test drives the real ``OrderGatewayActor`` (and its ledger) through the ``Venue`` protocol; the
venue model keeps orders, trades and positions the way the venue does, and the test checks that the
gateway's picture (reports to the sessions, the ledger's positions) ends equal to the venue's.
Timers fire by hand; the clock moves by hand; ``ask(GetGatewayStatus())`` is the barrier.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from actors.gateway import (
    GatewayConfig,
    GetPositions,
    HeartbeatLoop,
    HeartbeatLost,
    OrderGatewayActor,
    PlaceResult,
    RateLimitInfo,
    Reconcile,
    Shutdown,
    Startup,
    Submit,
    UserOrderUpdate,
)
from actors.market import HoldQuotes, ReleaseQuotes
from app.commands.run import shutdown_exit_code
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Adopted,
    BookSnapshot,
    Cancel,
    CancelAll,
    Canceled,
    Filled,
    PositionResync,
    Rejected,
)
from core.units import QTY_ONE, Outcome, Side
from tests.actors.test_session import PARAMS, SteppedSession
from tests.actors.venue_fake import FakeVenue, MutableClock, Rig, Routed, fault, make_rig, place
from tests.fakes import FakeClock, FakeExchangePort, ListSink

M1 = MarketInfo(market="0xm1", yes_token="11", no_token="12", tick_px=100)
M2 = MarketInfo(market="0xm2", yes_token="21", no_token="22", tick_px=100)
MARKETS = [M1, M2]


@pytest.fixture
def rig():
    r = make_rig(MARKETS)
    r.ref.ask(Startup(), timeout=5)
    yield r
    r.ref.stop()


def submit(r: Rig, *commands: Any) -> Any:
    return r.tell(Submit(tuple(commands)))


def ledger_positions(r: Rig) -> dict[str, Any]:
    return r.ref.ask(GetPositions(), timeout=5)


# --- start-up --------------------------------------------------------------------------------------


def test_startup_loads_positions_with_cost_adopts_ours_and_cancels_elsewhere_confirmed():
    venue = FakeVenue(MutableClock())
    venue.held[(M1.market, Outcome.YES)] = 154_600_000
    venue.held[(M2.market, Outcome.NO)] = 7_575_758
    mine = place(M1, "old-1", px=4500, qty=20 * QTY_ONE)
    venue.add_open("0xold1", mine, matched=QTY_ONE)
    venue.add_open("0xelsewhere", place(MarketInfo(market="0xgone", yes_token="9", no_token="8"), "old-2"))
    venue.fail_next("cancel", fault("refused once"))  # the first cancel of the leftover fails
    r = make_rig(MARKETS, venue)

    report = r.ref.ask(Startup(), timeout=5)

    assert report.positions_loaded
    assert report.positions[M1.market].yes_qty == 154_600_000
    assert report.positions[M1.market].yes_cost_usdc6 == 77_300_000  # avg 0.50: the cost basis is kept
    assert report.positions[M2.market].no_qty == 7_575_758
    (adopted,) = r.routed.of(Adopted, M1.market)
    assert (adopted.order_id, adopted.qty, adopted.px) == ("0xold1", 19 * QTY_ONE, 4500)
    assert report.adopted == 1
    assert (report.canceled, report.unconfirmed) == (1, ())
    assert venue.open_ids() == {"0xold1"}  # nothing of ours stays open on a market we do not trade
    assert r.waits  # the refused cancel was retried after a bounded wait
    r.ref.stop()


def test_startup_on_start_cancel_cancels_ours_too():
    venue = FakeVenue(MutableClock())
    venue.add_open("0xold1", place(M1, "old-1"))
    r = make_rig(MARKETS, venue, on_start="cancel")

    report = r.ref.ask(Startup(), timeout=5)

    assert (report.adopted, report.canceled, report.unconfirmed) == (0, 1, ())
    assert venue.open_ids() == set()
    assert r.routed.of(Adopted) == []
    r.ref.stop()


def test_startup_that_cannot_list_positions_says_so():
    venue = FakeVenue(MutableClock())
    for _ in range(3):
        venue.fail_next("positions", fault("503"))
    r = make_rig(MARKETS, venue, startup_attempts=3)

    report = r.ref.ask(Startup(), timeout=5)

    assert not report.positions_loaded
    assert report.errors == ("list positions: 503",)
    r.ref.stop()


def test_startup_waits_out_a_short_retry_after_and_gives_up_at_once_on_a_long_one():
    # Nothing quotes yet, so start-up reads on the gateway's thread, but bounded: a Retry-After it
    # can wait is waited (then the listing seeds the ledger); one past startup_max_wait_s is not.
    short = FakeVenue(MutableClock())
    short.held[(M1.market, Outcome.YES)] = 3 * QTY_ONE
    short.fail_next("positions", fault("429", rate_limited=True, retry_after_s=4.0))
    r = make_rig(MARKETS, short, startup_max_wait_s=30.0)
    report = r.ref.ask(Startup(), timeout=5)
    assert report.positions_loaded and report.positions[M1.market].yes_qty == 3 * QTY_ONE
    assert r.waits == [4.0] and report.errors == ()
    r.ref.stop()

    long = FakeVenue(MutableClock())
    long.fail_next("positions", fault("429", rate_limited=True, retry_after_s=300.0))
    r = make_rig(MARKETS, long, startup_max_wait_s=30.0)
    report = r.ref.ask(Startup(), timeout=5)
    assert not report.positions_loaded and len(long.called("positions")) == 1
    assert r.waits == []
    assert report.errors == (
        "list positions: 429 (the venue asks to wait 300 s; start-up waits at most 30 s)",
    )
    r.ref.stop()


def test_pre_start_trades_are_not_applied_again_by_a_backfill():
    clock = MutableClock()
    venue = FakeVenue(clock)
    venue.add_open("0xold1", place(M1, "old-1"))
    venue.fill("0xold1", 4 * QTY_ONE)  # traded before this run: already in the positions listed
    r = make_rig(MARKETS, venue)
    r.ref.ask(Startup(), timeout=5)

    r.tell(Reconcile("user channel subscribed"))

    assert r.routed.of(Filled) == []
    assert ledger_positions(r)[M1.market].yes_qty == 4 * QTY_ONE == venue.position(M1.market, Outcome.YES)
    r.ref.stop()


# --- fills and fates from the ledger --------------------------------------------------------------


def test_fills_missed_while_the_user_channel_was_silent_are_recovered_exactly_once(rig):
    a, b, c = place(M1, "a"), place(M1, "b", px=3900), place(M2, "c", qty=7 * QTY_ONE)
    submit(rig, a, b, c)
    assert len(rig.routed.of(Accepted)) == 3
    rig.clock.advance(5)
    # Silence: a fills in full (two trades, one of 6 decimals), b fills 1.5 shares and is cancelled
    # by the venue, c fills 7 shares.
    t1 = rig.venue.fill("0xa", 2_424_242)
    rig.venue.fill("0xa", 10 * QTY_ONE - 2_424_242)
    rig.venue.fill("0xb", 1_500_000)
    rig.venue.cancel_quietly("0xb")
    rig.venue.fill("0xc", 7 * QTY_ONE, liquidity="maker")

    rig.tell(Reconcile("user channel reconnected"))
    rig.tell(t1)  # the channel comes back with an old message: counted once

    by_client: dict[str, list[type]] = {}
    for _, ev in rig.routed.events:
        if isinstance(ev, (Filled, Canceled)):
            by_client.setdefault(ev.client_id, []).append(type(ev))
    assert by_client == {"a": [Filled, Filled], "b": [Filled, Canceled], "c": [Filled]}
    pos = ledger_positions(rig)
    for m in MARKETS:
        for outcome, qty in ((Outcome.YES, pos[m.market].yes_qty), (Outcome.NO, pos[m.market].no_qty)):
            assert qty == rig.venue.position(m.market, outcome)
    assert pos[M1.market].yes_qty == 11_500_000


def test_a_failed_trade_restores_the_position_and_a_late_matched_is_ignored(rig):
    a = place(M1, "a")
    submit(rig, a)
    t = rig.venue.fill("0xa", 3 * QTY_ONE)
    rig.tell(t)
    failed = rig.venue.set_status(t.trade_id, "FAILED")

    rig.tell(failed)
    rig.tell(t)

    fills = rig.routed.of(Filled)
    assert [(f.side, f.qty) for f in fills] == [(Side.BUY, 3 * QTY_ONE), (Side.SELL, 3 * QTY_ONE)]
    assert fills[1].trade_id == f"{t.trade_id}:failed"
    assert ledger_positions(rig)[M1.market].yes_qty == 0
    assert any(rec[0] == "ledger" and rec[3]["event"] == "trade_failed" for rec in rig.sink.records)


def test_a_delayed_submit_stays_open_until_its_trade_shows_it(rig):
    rig.venue.post_status = "delayed"
    a = place(M1, "a", qty=5 * QTY_ONE)

    status = submit(rig, a)
    assert rig.routed.of(Accepted) == [] and status.open_orders == 1
    rig.tell(rig.venue.fill("0xa", 5 * QTY_ONE))

    (acc,) = rig.routed.of(Accepted)
    (fill,) = rig.routed.of(Filled)
    assert acc.client_id == fill.client_id == "a" and fill.leaves_qty == 0


def test_a_lost_post_reply_is_settled_by_the_venue_never_sent_twice(rig):
    rig.venue.fail_next("post", fault("no reply", ambiguous=True), applied=True)
    rig.venue.fail_next("post", fault("no reply", ambiguous=True), applied=False)
    arrived, lost = place(M1, "arrived"), place(M1, "lost", px=3900)

    submit(rig, arrived)
    rig.advance(1)  # the backoff ends: the reconcile finds it listed
    submit(rig, lost)
    rig.advance(1)  # the reconcile does not list it: the venue is asked, says it never had it

    assert sorted(a.client_id for a in rig.routed.of(Accepted)) == ["arrived", "lost"]
    assert rig.venue.called("order") == ["0xlost"]
    assert rig.venue.called("post") == [["arrived"], ["lost"], ["lost"]]
    assert rig.routed.of(Rejected) == []


def test_an_order_update_cancellation_and_cancel_before_sending(rig):
    a, b = place(M1, "a"), place(M1, "b", px=3900)
    submit(rig, a)
    submit(rig, b, Cancel(market=M1.market, client_id="b"))  # never reaches the venue

    rig.tell(UserOrderUpdate(order_id="0xa", kind="CANCELLATION", status="CANCELED"))

    assert [(c.client_id, c.reason) for c in rig.routed.of(Canceled)] == [
        ("b", "canceled before it was sent"),
        ("a", "canceled"),
    ]
    assert rig.venue.called("post") == [["a"]]


def test_the_event_log_has_venue_ids_and_reconcile_results(rig):
    submit(rig, place(M1, "a"))
    rig.tell(Reconcile("manual"))

    sent = [p for k, _, _, p in rig.sink.records if k == "order_sent"]
    assert sent[0]["client_id"] == "a" and sent[0]["order_id"] == "0xa"
    assert [p.order_id for k, _, _, p in rig.sink.records if k == "accepted"] == ["0xa"]
    rec = [p for k, _, _, p in rig.sink.records if k == "reconcile"][-1]
    assert rec["reasons"] == ["manual"] and rec["venue_open"] == 1


# --- positions --------------------------------------------------------------------------------------


def test_a_lasting_position_drift_holds_that_market_until_it_agrees():
    venue = FakeVenue(MutableClock())
    r = make_rig(MARKETS, venue, reconcile_interval_s=30.0)
    r.ref.ask(Startup(), timeout=5)
    venue.held[(M1.market, Outcome.YES)] = 5 * QTY_ONE  # shares the ledger never heard of

    r.advance(30)  # first listing that disagrees: may be a race
    assert r.routed.of(HoldQuotes) == []
    r.advance(30)
    (hold,) = r.routed.of(HoldQuotes, M1.market)
    assert hold.key == "position_drift" and "drift" in hold.reason
    assert r.routed.of(HoldQuotes, M2.market) == []

    venue.held[(M1.market, Outcome.YES)] = 0
    r.advance(30)

    assert [x.key for x in r.routed.of(ReleaseQuotes, M1.market)] == ["position_drift"]
    r.ref.stop()


@pytest.mark.pure_python  # a subclass of MarketSession, which the compiled build compiles (bench/fast.py)
def test_a_market_held_by_a_drift_no_trade_explains_resumes_with_the_venues_position():
    # Shares reach the wallet outside the bot (a transfer, a merge): no trade will ever show them.
    # The market is held at the second listing, and once the same two positions have shown for
    # three listings over a minute, the venue's position is adopted and the market quotes again.
    venue = FakeVenue(MutableClock())
    r = make_rig(MARKETS, venue, reconcile_interval_s=30.0, drift_resync_listings=3, drift_resync_min_s=60.0)
    r.ref.ask(Startup(), timeout=5)
    session = SteppedSession(M1, PARAMS, FakeExchangePort(), FakeClock(), ListSink())
    session.on_event(_book(M1))
    submit(r, place(M1, "a"))
    r.tell(venue.fill("0xa", 2 * QTY_ONE, status="CONFIRMED"))  # a fill we hear: the position moves
    venue.held[(M1.market, Outcome.YES)] = 5 * QTY_ONE

    r.advance(30)  # 1st listing: may race a fill
    r.advance(30)  # 2nd: held
    assert [h.key for h in r.routed.of(HoldQuotes, M1.market)] == ["position_drift"]
    assert r.routed.of(PositionResync) == []
    r.advance(30)  # 3rd, a minute after the 1st: adopted

    (ev,) = r.routed.of(PositionResync, M1.market)
    assert (ev.yes_old_qty, ev.yes_new_qty, ev.yes_px) == (2 * QTY_ONE, 7 * QTY_ONE, 5_000)
    assert [x.key for x in r.routed.of(ReleaseQuotes, M1.market)] == ["position_drift"]
    assert ledger_positions(r)[M1.market].yes_qty == venue.position(M1.market, Outcome.YES) == 7 * QTY_ONE
    assert r.routed.of(HoldQuotes, M2.market) == r.routed.of(PositionResync, M2.market) == []
    (fault_rec,) = [p for k, _, m, p in r.sink.records if k == "fault" and p["fault"] == "position_resync"]
    assert (fault_rec["yes_old_qty"], fault_rec["yes_new_qty"]) == (2 * QTY_ONE, 7 * QTY_ONE)
    # The market's session, fed what the gateway routed, holds what the venue holds and quotes again.
    for market, msg in r.routed.events:
        if market != M1.market:
            continue
        if isinstance(msg, HoldQuotes):
            session.hold(msg.key, msg.reason, session.clock.now_ns())
        elif isinstance(msg, ReleaseQuotes):
            session.release(msg.key, session.clock.now_ns())
        else:
            session.on_exec(msg)
    session.flush(session.wakeup_ns)
    assert session.inv == ledger_positions(r)[M1.market]
    assert not session.holds and session.last_decision is not None and session.last_decision.bids
    r.advance(30)
    assert len(r.routed.of(PositionResync)) == 1  # agrees now: once
    r.ref.stop()


def _wait_until(pred: Any, timeout_s: float = 5.0) -> Any:
    # A bounded, condition-based wait (the gateway's own threads do the work).
    done = threading.Event()
    deadline = time.monotonic() + timeout_s
    while not (value := pred()):
        assert time.monotonic() < deadline, "condition not met in time"
        done.wait(0.005)
    return value


def test_a_slow_position_read_never_holds_a_cancel_or_a_new_order():
    # The official client sleeps through a Data API 429 on the calling thread (up to 2 x 5 s): the
    # read runs on a thread of its own, and the cancel and the new order go out meanwhile.
    venue = FakeVenue(MutableClock())
    r = make_rig(MARKETS, venue, threads=True, reconcile_interval_s=30.0)
    r.ref.ask(Startup(), timeout=5)
    submit(r, place(M1, "a"))
    reading, release = threading.Event(), threading.Event()

    def sleeping_read() -> None:
        reading.set()
        assert release.wait(10), "the test never released the read"

    venue.before_positions = sleeping_read
    try:
        r.clock.advance(30)
        r.schedule.fire_all()  # the periodic reconcile; its position read starts and sleeps
        assert reading.wait(5)
        r.ref.tell(Submit((Cancel(market=M1.market, client_id="a"), place(M2, "b"))))

        _wait_until(lambda: venue.called("cancel") and len(venue.called("post")) == 2, timeout_s=2.0)
        assert r.sync().position_checks == 0  # the read is still asleep
    finally:
        release.set()
    status = _wait_until(lambda: (s := r.sync()).position_checks == 1 and s)

    assert venue.called("cancel") == [["0xa"]] and venue.called("post") == [["a"], ["b"]]
    assert status.position_check_failures == 0 and not r.routed.of(HoldQuotes)
    r.ref.stop()


def test_a_refused_position_read_holds_nothing_and_is_asked_again_after_its_retry_after():
    venue = FakeVenue(MutableClock())
    r = make_rig(MARKETS, venue, reconcile_interval_s=30.0)
    r.ref.ask(Startup(), timeout=5)
    venue.held[(M1.market, Outcome.YES)] = 5 * QTY_ONE  # a drift the check must still find
    venue.fail_next("positions", fault("429", rate_limited=True, ambiguous=True, retry_after_s=7.0))

    status = r.advance(30)  # the periodic check: refused
    assert (status.position_checks, status.position_check_failures) == (0, 1)
    assert 7.0 in r.schedule.delays()
    submit(r, place(M1, "a"))  # new orders are not held by it
    assert venue.called("post") == [["a"]] and not r.sync().paused and r.sync().rate_limited == 0
    r.advance(3)  # every timer fires early (the periodic one too): not asked before the Retry-After
    assert len(venue.called("positions")) == 2  # start-up's, the refused one
    r.advance(5)  # the Retry-After is over: a reconcile, then the read

    assert len(venue.called("positions")) == 3 and r.sync().position_checks == 1
    assert r.routed.of(HoldQuotes) == []  # one listing of a drift may be a race ...
    r.advance(30)
    assert [h.key for h in r.routed.of(HoldQuotes, M1.market)] == ["position_drift"]  # ... two are not
    (rec,) = [p for k, _, _, p in r.sink.records if k == "fault" and p["fault"] == "positions_unavailable"]
    assert rec["retry_in_s"] == 7.0
    r.ref.stop()


def test_a_position_reply_older_than_a_fill_is_no_drift_and_one_read_runs_at_a_time():
    venue = FakeVenue(MutableClock())
    r = make_rig(MARKETS, venue, reconcile_interval_s=30.0)
    r.ref.ask(Startup(), timeout=5)
    submit(r, place(M1, "a"))
    assert r.workers is not None

    def fill_after_listing() -> None:
        # The listing is taken; a fill (CONFIRMED: nothing settling) reaches the ledger before it.
        r.ref.tell(venue.fill("0xa", 2 * QTY_ONE, status="CONFIRMED"))

    venue.after_positions = fill_after_listing
    r.advance(30)
    r.advance(30)  # twice: would hold M1 if the listings were compared with the ledger as it is now
    venue.after_positions = None

    assert ledger_positions(r)[M1.market].yes_qty == 4 * QTY_ONE == venue.position(M1.market, Outcome.YES)
    assert r.routed.of(HoldQuotes) == []
    ledger = [p for k, _, _, p in r.sink.records if k == "ledger"]
    assert [p["event"] for p in ledger if p["event"] in ("drift", "listing_stale")] == ["listing_stale"] * 2
    # A periodic check while a read is in flight starts no second one; the reply, when it comes, counts.
    checks = r.sync().position_checks
    r.clock.advance(30)
    r.schedule.fire_all()
    r.sync()
    r.clock.advance(30)
    r.schedule.fire_all()
    assert len(r.workers.pending) == 1 and r.sync().position_checks == checks == 2
    assert r.advance(0).position_checks == checks + 1
    assert len(venue.called("positions")) == 4  # start-up, two periodic, one for the two in flight
    r.ref.stop()


def _book(info: MarketInfo) -> BookSnapshot:
    return BookSnapshot(
        market=info.market,
        outcome=Outcome.YES,
        ts_ns=0,
        bids=((4_700, 100 * QTY_ONE),),
        asks=((4_800, 100 * QTY_ONE),),
        tick_px=100,
    )


# --- rate limits -----------------------------------------------------------------------------------


def test_a_429_holds_new_orders_only_and_a_long_one_pulls_every_quote_until_sending_resumes(rig):
    submit(rig, place(M1, "a"))
    rig.venue.fail_next("post", fault("429", rate_limited=True, retry_after_s=300.0))
    submit(rig, place(M1, "b", px=3900))
    assert rig.venue.called("post") == [["a"], ["b"]]

    status = submit(rig, Cancel(market=M1.market, client_id="a"), place(M2, "c"))

    assert rig.venue.called("cancel") == [["0xa"]]  # cancels are never held by a Retry-After
    assert len(rig.venue.called("post")) == 2 and status.paused
    assert rig.routed.of(HoldQuotes) == []
    rig.advance(10)  # the cap: every quote is pulled, the venue still refuses new orders
    assert {m for m, ev in rig.routed.events if isinstance(ev, HoldQuotes)} == {M1.market, M2.market}
    assert rig.sync().quotes_held

    rig.advance(290)  # the Retry-After is over

    assert {m for m, ev in rig.routed.events if isinstance(ev, ReleaseQuotes)} == {M1.market, M2.market}
    assert rig.venue.called("post")[-1] == ["b", "c"]  # the same signed orders
    assert not rig.sync().quotes_held


def test_a_short_429_pause_does_not_pull_quotes(rig):
    rig.venue.fail_next("post", fault("429", rate_limited=True, retry_after_s=2.0))
    submit(rig, place(M1, "a"))

    rig.advance(2)

    assert rig.routed.of(HoldQuotes) == []
    assert [a.client_id for a in rig.routed.of(Accepted)] == ["a"]


def test_a_cancel_429_is_retried_soon_whatever_its_retry_after(rig):
    submit(rig, place(M1, "a"))
    rig.venue.fail_next("cancel", fault("429", rate_limited=True, retry_after_s=300.0))

    submit(rig, Cancel(market=M1.market, client_id="a"))
    assert max(rig.schedule.delays()) < 5
    rig.advance(1)

    assert rig.venue.called("cancel") == [["0xa"], ["0xa"]]
    assert [c.client_id for c in rig.routed.of(Canceled)] == ["a"]


def test_places_are_charged_per_order_and_wait_for_tokens(rig):
    # Standard tier: 60 order tokens, 40 per second. 100 orders: 4 batches of 15 now, the rest later.
    places = [place(M1, f"p{i}", px=100 * (1 + i % 98), qty=5 * QTY_ONE) for i in range(100)]

    submit(rig, *places)
    assert [len(c) for c in rig.venue.called("post")] == [15, 15, 15, 15]
    rig.advance(1.0)

    assert sum(len(c) for c in rig.venue.called("post")) == 100
    assert len(rig.routed.of(Accepted)) == 100


def test_a_cancel_all_larger_than_the_burst_is_split_and_cancels_go_first(rig):
    places = [place(M1, f"p{i}", px=100 * (1 + i % 98), qty=5 * QTY_ONE) for i in range(130)]
    submit(rig, *places)
    for _ in range(4):
        rig.advance(2)
    assert len(rig.routed.of(Accepted)) == 130

    submit(rig, CancelAll(market=M1.market), place(M2, "new"))

    chunks = [len(c) for c in rig.venue.called("cancel")]
    assert rig.venue.called("cancel_market") == []  # 1 + 130 would exceed the burst of 120
    assert chunks == [120]  # the rest waits for cancel tokens, and the new order waits for them
    assert rig.venue.called("post")[-1] != ["new"]
    rig.advance(1)
    assert [len(c) for c in rig.venue.called("cancel")] == [120, 10]
    assert rig.venue.called("post")[-1] == ["new"]
    assert len(rig.routed.of(Canceled)) == 130


def test_rate_limit_headers_set_the_tier_and_the_tokens_left(rig):
    rig.venue.rate_infos.append(RateLimitInfo(remaining=0, tier="Gold"))
    submit(rig, place(M1, "a"))

    submit(rig, place(M1, "b", px=3900))

    assert rig.venue.called("post") == [["a"]]  # the venue said no token is left
    assert 0 < max(rig.schedule.delays()) < 0.01  # gold refills 400 a second
    rig.advance(0.01)
    assert rig.venue.called("post") == [["a"], ["b"]]


# --- heartbeats ------------------------------------------------------------------------------------


def test_heartbeat_loop_chains_ids_measures_gaps_and_reports_a_lost_window_once():
    clock = MutableClock()
    venue = FakeVenue(clock)
    lost: list[tuple[int, float]] = []
    hb = HeartbeatLoop(
        venue, clock, lambda ts, gap: lost.append((ts, gap)), interval_s=5, retry_s=1, window_s=10
    )

    assert hb.beat() == 5
    clock.advance(5)
    hb.beat()
    venue.fail_next("heartbeat", fault("down"))
    venue.fail_next("heartbeat", fault("down"))
    clock.advance(5)
    assert hb.beat() == 1
    clock.advance(6)  # 11 s since the last beat that arrived: the venue cancelled everything
    hb.beat()
    clock.advance(1)
    hb.beat()

    assert venue.called("heartbeat") == ["", "hb-1", "hb-2", "hb-2", "hb-2"]
    assert len(lost) == 1 and lost[0][1] == pytest.approx(11.0)
    status = hb.status()
    assert (status.heartbeats, status.failures, status.losses) == (3, 2, 1)
    assert status.max_gap_s == pytest.approx(12.0)


def test_a_lost_heartbeat_marks_our_orders_gone_and_markets_requote(rig):
    submit(rig, place(M1, "a"), place(M2, "b"))

    rig.tell(HeartbeatLost(ts_ns=rig.clock.now_ns(), gap_s=12.0))

    gone = rig.routed.of(Canceled)
    assert sorted(c.client_id for c in gone) == ["a", "b"]
    assert all("heartbeat" in c.reason for c in gone)
    # The venue still lists them (its window had not quite passed): they are cancelled, not kept.
    assert rig.venue.open_ids() == set()
    assert any(rec[0] == "fault" and rec[3]["fault"] == "heartbeat_lost" for rec in rig.sink.records)


# --- shutdown --------------------------------------------------------------------------------------


def test_shutdown_confirms_every_cancel(rig):
    submit(rig, place(M1, "a"), place(M2, "b"))

    report = rig.ref.ask(Shutdown(), timeout=5)

    assert report.confirmed and report.remaining == () and report.canceled == 2
    assert rig.venue.open_ids() == set()
    assert shutdown_exit_code({"confirmed": report.confirmed}) == 0


def test_shutdown_with_the_venue_refusing_cancels_names_the_orders_and_exits_non_zero(rig, capsys):
    submit(rig, place(M1, "a"))
    for _ in range(5):
        rig.venue.fail_next("cancel", fault("425 restarting"))

    report = rig.ref.ask(Shutdown(), timeout=5)

    assert not report.confirmed and report.remaining == ("0xa",)
    assert report.described == ("0xa (market 0xm1, a)",)
    assert shutdown_exit_code({"confirmed": False, "may_remain": report.described}) == 3
    err = capsys.readouterr().err
    assert "NOT confirmed" in err and "0xa (market 0xm1, a)" in err


def test_a_shutdown_the_venue_refuses_gives_up_after_its_last_attempt_without_waiting_again(rig):
    submit(rig, place(M1, "a"))
    for _ in range(5):
        rig.venue.fail_next("cancel", fault("425 restarting"))
    before = len(rig.waits)

    report = rig.ref.ask(Shutdown(), timeout=5)

    assert not report.confirmed
    # Five attempts, a backoff between each two: 0.5 + 1 + 2 + 4 s, not another 8 s after the last.
    assert rig.waits[before:] == [0.5, 1.0, 2.0, 4.0]


def test_post_only_cross_rejections_reach_the_session(rig):
    rig.venue.replies.append(PlaceResult(client_id="", error="invalid post-only order: order crosses book"))

    submit(rig, place(M1, "a"))

    (rej,) = rig.routed.of(Rejected)
    assert "crosses book" in rej.reason


def test_adopted_positions_and_venue_positions_agree_after_a_restart_in_the_middle_of_trading():
    # A first gateway trades and dies (no shutdown); a second one starts on the same venue.
    clock = MutableClock()
    venue = FakeVenue(clock)
    first = make_rig(MARKETS, venue)
    first.ref.ask(Startup(), timeout=5)
    submit(first, place(M1, "a"), place(M2, "b", outcome=Outcome.NO))
    first.tell(venue.fill("0xa", 2_500_000))
    venue.fill("0xb", 1_000_001)  # never heard by the first
    # kill -9: the first gateway is simply never heard from again (it is stopped after the asserts).

    second = make_rig([M2], venue)  # a different market selection
    report = second.ref.ask(Startup(), timeout=5)

    assert report.positions[M2.market].no_qty == 1_000_001 == venue.position(M2.market, Outcome.NO)
    assert [a.order_id for a in second.routed.of(Adopted)] == ["0xb"]
    assert venue.open_ids() == {"0xb"}  # M1's order was cancelled: we no longer trade M1
    second.ref.stop()
    first.ref.stop()


def test_no_heartbeat_while_the_gateway_is_stuck_on_one_message():
    # Orders nobody manages must not be kept alive: a gateway stuck past its stall limit lets the
    # venue's switch fire.
    clock = MutableClock()
    venue = FakeVenue(clock)
    gw = OrderGatewayActor(
        venue, MARKETS, Routed(), clock, config=GatewayConfig(heartbeat_interval_s=5.0, stall_s=60)
    )
    assert gw.heartbeats is not None
    gw.heartbeats.beat()

    gw._busy_since_ns = clock.now_ns()  # a message being handled...
    clock.advance(30)
    gw.heartbeats.beat()  # ...for 30 s: still beating
    clock.advance(31)
    delay = gw.heartbeats.beat()  # 61 s: stuck

    assert venue.called("heartbeat") == ["", "hb-1"]
    assert delay == 1.0 and "stuck" in gw.heartbeats.last_error
