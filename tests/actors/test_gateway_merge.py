"""The order gateway's merges of YES+NO pairs against the naive venue model (``venue_fake``)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.gateway import GetPositions, Startup, Submit
from actors.market import HoldQuotes
from core.inventory import apply_merge
from core.messages import Merge, Merged, MergeFailed
from core.units import QTY_ONE, Outcome
from tests.actors.test_gateway import M1, MARKETS
from tests.actors.venue_fake import FakeVenue, MutableClock, Rig, fault, make_rig

SHARE = QTY_ONE


@pytest.fixture
def rig():
    venue = FakeVenue(MutableClock())
    for outcome in Outcome:
        venue.held[(M1.market, outcome)] = 50 * SHARE
    r = make_rig(MARKETS, venue, reconcile_interval_s=30.0)
    r.ref.ask(Startup(), timeout=5)
    yield r
    r.ref.stop()


def positions(r: Rig) -> dict[str, Any]:
    return r.ref.ask(GetPositions(), timeout=5)


def ledger_events(r: Rig, event: str) -> list[dict]:
    return [p for p in r.sink.kinds("ledger") if isinstance(p, dict) and p.get("event") == event]


def test_a_merge_runs_off_the_gateway_and_is_booked_when_the_venue_confirms(rig):
    before = positions(rig)[M1.market]
    rig.tell(Submit((Merge(market=M1.market, merge_id="m1-m1", qty=20 * SHARE),)))
    rig.tell(Submit((Merge(market=M1.market, merge_id="m1-m2", qty=5 * SHARE),)))

    assert rig.venue.called("merge") == []  # nothing blocking on the gateway's thread
    assert positions(rig)[M1.market] == before
    [refused] = rig.routed.of(MergeFailed)
    assert refused.merge_id == "m1-m2" and "in flight" in refused.reason
    rig.schedule.fire_all()  # the merge's own thread
    rig.sync()

    [done] = rig.routed.of(Merged)
    assert (done.merge_id, done.qty, done.tx) == ("m1-m1", 20 * SHARE, "0xtx1")
    assert positions(rig)[M1.market] == apply_merge(before, 20 * SHARE)
    assert [e["qty"] for e in ledger_events(rig, "merged")] == [20 * SHARE]
    # The periodic position checks agree: no drift, no hold.
    rig.advance(30)
    rig.advance(30)
    assert ledger_events(rig, "drift") == [] and rig.routed.of(HoldQuotes) == []
    assert rig.sync().merges == 1 and rig.sync().merge_failures == 1


def test_a_merge_without_a_receipt_is_booked_by_the_listing_that_shows_it(rig):
    before = positions(rig)[M1.market]
    rig.venue.fail_next("merge", fault("no receipt", retry=False, ambiguous=True), applied=True)
    rig.tell(Submit((Merge(market=M1.market, merge_id="m1-m1", qty=20 * SHARE),)))
    rig.schedule.fire_all()
    rig.sync()

    rig.advance(30)  # (the merge's thread, then) a periodic reconcile lists the positions

    assert [e["merge_id"] for e in ledger_events(rig, "merge_in_doubt")] == ["m1-m1"]

    [done] = rig.routed.of(Merged)
    assert done.qty == 20 * SHARE
    assert positions(rig)[M1.market] == apply_merge(before, 20 * SHARE)
    assert ledger_events(rig, "merge_confirmed_by_listing") and ledger_events(rig, "drift") == []


def test_a_reverted_merge_changes_nothing(rig):
    before = positions(rig)[M1.market]
    rig.tell(Submit((Merge(market=M1.market, merge_id="m1-m1", qty=60 * SHARE),)))
    rig.schedule.fire_all()
    rig.sync()

    [failed] = rig.routed.of(MergeFailed)
    assert failed.reason == "execution reverted"
    assert positions(rig)[M1.market] == before
