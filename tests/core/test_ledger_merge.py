"""The ledger and merges of YES+NO pairs: booked when the venue confirms, never taken for a drift."""

from __future__ import annotations

from core.inventory import apply_merge
from core.ledger import Audit, OrderLedger, PullMarket, Report, VenuePosition
from core.markets import MarketInfo
from core.messages import Merged, MergeFailed, PositionResync
from core.units import NS_PER_S, QTY_ONE, Outcome

M = "0xm"
INFO = MarketInfo(market=M, yes_token="1", no_token="2")
SHARE = QTY_ONE
T0 = 10**18
TIMEOUT_NS = 600 * NS_PER_S


def listing(yes_shares: int, no_shares: int) -> list[VenuePosition]:
    return [
        VenuePosition(market=M, outcome=Outcome.YES, qty=yes_shares * SHARE, avg_px=4_000),
        VenuePosition(market=M, outcome=Outcome.NO, qty=no_shares * SHARE, avg_px=5_500),
    ]


def seeded() -> OrderLedger:
    ledger = OrderLedger([INFO], resync_listings=2, resync_min_ns=0, settle_timeout_ns=TIMEOUT_NS)
    ledger.seed_positions(listing(50, 40))
    return ledger


def kinds(effects):
    return [e.kind for e in effects if isinstance(e, Audit)]


def test_a_confirmed_merge_is_booked_exactly_and_reported_to_its_market():
    ledger = seeded()
    before = ledger.position(M)

    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)
    effects = ledger.merge_done("m-1", "0xabc", T0 + 1)

    assert ledger.position(M) == apply_merge(before, 30 * SHARE)
    assert ledger.position(M).cash_usdc6 == before.cash_usdc6 + 30_000_000
    [ev] = [e.event for e in effects if isinstance(e, Report)]
    assert ev == Merged(market=M, merge_id="m-1", ts_ns=T0 + 1, qty=30 * SHARE, tx="0xabc")
    assert ledger.merge_done("m-1", "0xabc", T0 + 2) == []  # heard twice: booked once
    assert ledger.position(M) == apply_merge(before, 30 * SHARE)


def test_listings_racing_a_merge_never_pull_or_resync_its_market():
    ledger = seeded()
    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)
    out = []
    # In flight: the listing shows either side of it.
    out += ledger.positions(listing(20, 10), T0 + 1)
    out += ledger.positions(listing(50, 40), T0 + 2)
    out += ledger.positions(listing(20, 10), T0 + 3)
    out += ledger.merge_done("m-1", "0xabc", T0 + 4)
    # Confirmed, the listing still lags (the Data API indexes the chain late).
    out += ledger.positions(listing(50, 40), T0 + 5)
    out += ledger.positions(listing(50, 40), T0 + 6)

    assert not [e for e in out if isinstance(e, PullMarket)]
    assert not [e for e in out if isinstance(e, Report) and isinstance(e.event, PositionResync)]
    assert "drift" not in kinds(out)
    # The listing catches up: nothing is settling any more, and it agrees.
    assert kinds(ledger.positions(listing(20, 10), T0 + 7)) == []
    assert ledger.merges == {}


def test_a_confirmed_merge_the_listing_never_shows_is_a_drift_after_the_settle_timeout():
    ledger = seeded()
    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)
    ledger.merge_done("m-1", "0xabc", T0)

    assert "drift" not in kinds(ledger.positions(listing(50, 40), T0 + TIMEOUT_NS - 1))
    assert "drift" in kinds(ledger.positions(listing(50, 40), T0 + TIMEOUT_NS))


def test_a_merge_without_a_receipt_is_settled_by_the_listing():
    ledger = seeded()
    before = ledger.position(M)
    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)
    assert kinds(ledger.merge_unknown("m-1", "no receipt", T0 + 1)) == ["merge_in_doubt"]

    assert kinds(ledger.positions(listing(50, 40), T0 + 2)) == []  # not yet shown: still in doubt
    effects = ledger.positions(listing(20, 10), T0 + 3)

    assert "merge_confirmed_by_listing" in kinds(effects)
    assert [type(e.event) for e in effects if isinstance(e, Report)] == [Merged]
    assert ledger.position(M) == apply_merge(before, 30 * SHARE)


def test_a_merge_without_a_receipt_the_listings_never_show_fails_after_the_settle_timeout():
    ledger = seeded()
    before = ledger.position(M)
    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)
    ledger.merge_unknown("m-1", "no receipt", T0)

    assert ledger.positions(listing(50, 40), T0 + TIMEOUT_NS - 1) == []
    effects = ledger.positions(listing(50, 40), T0 + TIMEOUT_NS)

    [ev] = [e.event for e in effects if isinstance(e, Report)]
    assert isinstance(ev, MergeFailed) and ev.merge_id == "m-1"
    assert ledger.position(M) == before
    assert ledger.merges == {}


def test_a_refused_merge_changes_nothing():
    ledger = seeded()
    before = ledger.position(M)
    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)

    effects = ledger.merge_failed("m-1", "execution reverted", T0 + 1)

    assert [type(e.event) for e in effects if isinstance(e, Report)] == [MergeFailed]
    assert ledger.position(M) == before
    assert ledger.merge_done("m-1", "0xabc", T0 + 2) == []  # a late answer for a failed merge: nothing


def test_a_merge_in_doubt_whose_listings_show_neither_outcome_stops_hiding_drift_after_the_timeout():
    # Shares moved outside the bot while the merge was in doubt: the listing shows neither "pairs
    # gone" nor "unchanged". Until the settle timeout the market is settling; after it the merge is
    # given up and the listing's shares decide as ever (a drift, then the venue's position adopted):
    # it must not keep the market settling, hiding every drift, for ever.
    ledger = seeded()
    before = ledger.position(M)
    ledger.merge_sent(M, "m-1", 30 * SHARE, T0)
    ledger.merge_unknown("m-1", "no receipt", T0)
    odd = listing(53, 40)  # 3 YES came in from outside; no pairs gone

    assert kinds(ledger.positions(odd, T0 + TIMEOUT_NS - 1)) == []  # still settling
    effects = ledger.positions(odd, T0 + TIMEOUT_NS)

    assert [type(e.event) for e in effects if isinstance(e, Report)] == [MergeFailed]
    assert "drift" in kinds(effects)
    assert ledger.merges == {}
    later = ledger.positions(odd, T0 + TIMEOUT_NS + 1)
    [resync] = [e.event for e in later if isinstance(e, Report) and isinstance(e.event, PositionResync)]
    assert ledger.position(M).yes_qty == 53 * SHARE and ledger.position(M).no_qty == before.no_qty
    assert resync.yes_new_qty == 53 * SHARE
