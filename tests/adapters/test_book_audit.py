"""The book audit's decisions (``adapters.polymarket.book_audit``): pure, driven by a fake clock."""

from __future__ import annotations

import bisect
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.polymarket.book_audit import (
    AuditConfig,
    BookAuditor,
    BookTop,
    Reconnect,
    Resync,
    book_top,
    top_of,
)
from core.book import L2Book
from core.units import PX_ONE, TICKS_PX, Side

TICK = 100
S = 1_000_000_000  # ns per s


def book(bid_px: int, ask_px: int, qty: int = 10) -> BookTop:
    return top_of([(bid_px, qty), (bid_px - TICK, qty)], [(ask_px, qty), (ask_px + TICK, qty)], TICK, 3)


A, B, C = book(4800, 5200), book(4700, 5100), book(4900, 5300)


def always(top: BookTop) -> Callable[[str], BookTop | None]:
    return lambda _market: top


def open_audit(aud: BookAuditor, market: str, now_s: float, ours: BookTop) -> None:
    # Audit ``market`` now (the others have no valid book: nothing to audit there).
    aud.request(market, now_s)
    assert aud.due(now_s, lambda m: ours if m == market else None) == [market]


# --- scheduling ------------------------------------------------------------------------------------


@given(
    n=st.integers(1, 300),
    period_s=st.floats(0.5, 30.0),
    rate=st.floats(1.0, 140.0),
)
def test_property_markets_are_spread_over_the_period_and_requests_keep_within_the_rate(n, period_s, rate):
    cfg = AuditConfig(period_s=period_s, max_requests_per_s=rate)
    markets = [f"m{i}" for i in range(n)]
    aud = BookAuditor(markets, cfg, now_s=0.0)
    sends: list[tuple[float, str]] = []
    now = 0.0
    horizon = 3 * aud.period_s
    while now <= horizon:
        for m in aud.due(now, always(A)):
            sends.append((now, m))
            aud.on_reply(m, now, A, 1, 1)  # an equal book closes the audit at once
        assert not aud.expire(now, now)
        nxt = aud.next_wakeup_s(now)
        assert nxt > now  # never a busy loop
        now = nxt

    # The period stretches so the scheduled audits fit in the rate.
    assert aud.period_s == pytest.approx(max(period_s, n / rate))
    # The first period audits every market once, each at its own instant: spread, not all at once.
    first = [t for t, _ in sends if t <= aud.period_s * (1 + 1e-9)]
    assert sorted(m for t, m in sends if t <= aud.period_s * (1 + 1e-9)) == sorted(markets)
    assert len(set(first)) == n
    # Then once per period each.
    counts = {m: sum(1 for _, x in sends if x == m) for m in markets}
    assert set(counts.values()) <= {2, 3}
    # Never more than the rate allows: any 10 s window (the venue's) carries at most 10.1 s of it.
    times = [t for t, _ in sends]
    for i, t in enumerate(times):
        assert bisect.bisect_left(times, t + 10) - i <= 10.1 * rate + 1


def test_an_invalid_book_is_skipped_and_keeps_its_slot():
    aud = BookAuditor(["m"], AuditConfig(period_s=2.0), now_s=0.0)

    assert aud.due(2.0, lambda _m: None) == []  # waiting for its snapshot: nothing to audit
    assert aud.next_wakeup_s(2.0) == pytest.approx(4.0)
    assert aud.due(4.0, always(A)) == ["m"]


def test_request_audits_at_once_but_not_twice_within_recheck():
    aud = BookAuditor(["m", "n"], AuditConfig(period_s=60.0, recheck_s=1.0), now_s=0.0)

    assert aud.request("m", 0.1)
    assert not aud.request("m", 0.1)  # already asked
    assert not aud.request("other", 0.1)  # not ours
    assert aud.next_wakeup_s(0.1) == pytest.approx(0.1)
    assert aud.due(0.1, always(A)) == ["m"]
    assert not aud.request("m", 0.2)  # being audited
    aud.on_reply("m", 0.2, A, 1, 1)
    assert not aud.request("m", 0.5)  # within recheck_s of the last one
    assert aud.request("m", 1.2)


def test_request_waits_for_a_token_when_the_rate_is_spent():
    aud = BookAuditor(["a", "b", "c"], AuditConfig(period_s=60.0, max_requests_per_s=1.0), now_s=0.0)
    for m in "abc":
        assert aud.request(m, 0.0)

    assert aud.due(0.0, always(A)) == ["a"]  # a burst of one request
    assert aud.next_wakeup_s(0.0) == pytest.approx(1.0)
    assert aud.due(0.5, always(A)) == []
    assert aud.due(1.0, always(A)) == ["b"]


# --- verdicts --------------------------------------------------------------------------------------


def test_a_matching_rest_book_is_no_news():
    aud = BookAuditor(["m"], AuditConfig(), now_s=0.0)
    open_audit(aud, "m", 0.0, A)

    aud.on_reply("m", 0.1, A, 5 * S, 1 * S)

    assert not aud.is_open("m")
    assert aud.expire(10.0, 0.0) == []
    assert (aud.matched, aud.differed) == (1, 0)


def test_a_rest_book_the_feed_passed_through_before_the_reply_matches():
    # REST answered with a state the feed showed between the request and the reply (REST was slow).
    aud = BookAuditor(["m"], AuditConfig(), now_s=0.0)
    open_audit(aud, "m", 0.0, A)
    aud.on_data("m", B)
    aud.on_data("m", C)

    aud.on_reply("m", 0.2, B, 5 * S, 6 * S)

    assert not aud.is_open("m") and aud.matched == 1


def test_frames_in_flight_within_the_grace_bring_the_book_to_the_rest_state():
    aud = BookAuditor(["m"], AuditConfig(grace_s=0.3), now_s=0.0)
    open_audit(aud, "m", 0.0, A)
    aud.on_reply("m", 0.1, B, 5 * S, 1 * S)  # REST is ahead of the feed

    assert aud.expire(0.3, 0.0) == []  # within the grace: no verdict yet
    aud.on_data("m", B)  # the frame that was in flight

    assert aud.expire(1.0, 0.3) == [] and aud.matched == 1


def test_a_feed_that_sent_nothing_while_rest_moved_is_frozen_after_the_grace():
    aud = BookAuditor(["m", "n", "o", "p"], AuditConfig(grace_s=0.3), now_s=0.0)
    open_audit(aud, "m", 10.0, A)
    aud.on_reply("m", 10.1, B, 10 * S, 2 * S)

    assert aud.expire(10.39, 10.05) == []
    (effect,) = aud.expire(10.4, 10.05)  # the connection delivered data for others: resync this one

    assert isinstance(effect, Resync) and effect.market == "m"
    assert "sent nothing" in effect.reason
    assert aud.resyncs == 1 and not aud.is_open("m")


def test_a_frozen_market_on_a_silent_connection_reconnects():
    aud = BookAuditor(["m", "n", "o", "p"], AuditConfig(grace_s=0.3), now_s=0.0)
    open_audit(aud, "m", 10.0, A)
    aud.on_reply("m", 10.1, B, 10 * S, 2 * S)

    (effect,) = aud.expire(10.5, connection_data_s=3.0)  # no data frame since before the request

    assert isinstance(effect, Reconnect) and "no data for 7.5 s" in effect.reason


def test_several_frozen_markets_within_one_period_reconnect():
    cfg = AuditConfig(period_s=5.0, grace_s=0.1, reconnect_after_markets=3)
    aud = BookAuditor([f"m{i}" for i in range(10)], cfg, now_s=0.0)
    effects = []
    for i, t in enumerate((1.0, 2.0, 3.0)):
        open_audit(aud, f"m{i}", t, A)
        aud.on_reply(f"m{i}", t, B, 9 * S, 1 * S)
        effects += aud.expire(t + 0.2, connection_data_s=t + 0.1)  # other markets' data flows

    assert [type(e) for e in effects] == [Resync, Resync, Reconnect]
    assert "3 markets frozen" in effects[-1].reason


def test_a_rest_book_no_newer_than_ours_is_not_a_freeze():
    # A REST reply older than the last event the feed applied (a cache) cannot show the feed is behind.
    aud = BookAuditor(["m"], AuditConfig(grace_s=0.1, recheck_s=1.0, desync_after=2), now_s=0.0)
    open_audit(aud, "m", 0.0, A)
    aud.on_reply("m", 0.1, B, 5 * S, 6 * S)

    assert aud.expire(0.5, 0.0) == []
    assert aud.next_wakeup_s(0.5) == pytest.approx(1.5)  # looked at again soon


def test_a_book_that_keeps_differing_while_data_flows_is_resynced_after_desync_after_audits():
    aud = BookAuditor(["m"], AuditConfig(period_s=5.0, grace_s=0.1, recheck_s=1.0, desync_after=3), now_s=0.0)
    t, effects = 0.0, []
    for _ in range(3):
        open_audit(aud, "m", t, A)
        aud.on_data("m", C)  # data flows, but never to the REST state: a lost change
        aud.on_reply("m", t + 0.05, B, 9 * S, 1 * S)
        effects.append(aud.expire(t + 0.2, t + 0.1))
        if not effects[-1]:
            assert aud.next_wakeup_s(t + 0.2) == pytest.approx(t + 1.2)  # again after recheck_s
        t += 1.2

    assert effects[0] == [] and effects[1] == []
    (effect,) = effects[2]
    assert isinstance(effect, Resync) and "3 audits in a row" in effect.reason


def test_a_match_in_between_resets_the_count():
    aud = BookAuditor(["m"], AuditConfig(grace_s=0.1, recheck_s=1.0, desync_after=2), now_s=0.0)
    for t, rest in ((0.0, B), (2.0, A), (4.0, B)):
        open_audit(aud, "m", t, A)
        aud.on_data("m", A)
        aud.on_reply("m", t + 0.05, rest, 9 * S, 1 * S)
        assert aud.expire(t + 0.2, t + 0.1) == []


def test_a_book_invalidated_during_its_audit_gets_no_verdict():
    aud = BookAuditor(["m"], AuditConfig(grace_s=0.1), now_s=0.0)
    open_audit(aud, "m", 0.0, A)
    aud.on_reply("m", 0.05, B, 9 * S, 1 * S)

    aud.on_data("m", None)  # a tick change: the book waits for its snapshot

    assert aud.expire(1.0, 0.0) == [] and not aud.is_open("m")


def test_a_lost_reply_is_an_error_not_a_verdict():
    aud = BookAuditor(["m"], AuditConfig(reply_timeout_s=2.0), now_s=0.0)
    open_audit(aud, "m", 0.0, A)

    assert aud.expire(1.9, 0.0) == [] and aud.is_open("m")
    assert aud.expire(2.1, 0.0) == [] and not aud.is_open("m")
    assert aud.errors == 1


def test_reset_and_retire():
    aud = BookAuditor(["m", "n"], AuditConfig(period_s=2.0), now_s=0.0)
    open_audit(aud, "m", 0.0, A)

    aud.reset()  # the connection dropped
    aud.retire("n")  # resolved

    assert not aud.is_open("m")
    assert aud.due(10.0, always(A)) == ["m"]
    assert not aud.request("n", 10.0)


def test_a_market_retired_after_its_request_is_not_audited():
    aud = BookAuditor(["m"], AuditConfig(period_s=60.0), now_s=0.0)
    assert aud.request("m", 0.0)

    aud.retire("m")

    assert aud.due(0.0, always(A)) == [] and aud.due(120.0, always(A)) == []


def test_top_of_compares_tick_and_levels():
    ours = top_of([(4800, 5), (4700, 5), (4600, 5), (4500, 5)], [(5200, 5)], 100, 3)

    assert ours.bids == ((4800, 5), (4700, 5), (4600, 5))  # the best three
    assert ours.matches(top_of([(4800, 5), (4700, 5), (4600, 5)], [(5200, 5)], 100, 3))
    assert ours.matches(top_of([(4800, 5), (4700, 5), (4600, 5)], [(5200, 5)], 0, 3))  # REST said no tick
    assert not ours.matches(top_of([(4800, 5), (4700, 5), (4600, 5)], [(5200, 5)], 10, 3))  # tick changed
    assert not ours.matches(top_of([(4800, 6), (4700, 5), (4600, 5)], [(5200, 5)], 100, 3))  # a size


@given(
    tick=st.sampled_from(TICKS_PX),
    bids=st.lists(st.tuples(st.integers(0, PX_ONE), st.integers(1, 10**9)), max_size=30),
    asks=st.lists(st.tuples(st.integers(0, PX_ONE), st.integers(1, 10**9)), max_size=30),
    changes=st.lists(
        st.tuples(st.sampled_from(Side), st.integers(0, PX_ONE), st.integers(0, 10**9)), max_size=20
    ),
    levels=st.integers(1, 12),
)
def test_property_book_top_reads_the_same_levels_as_the_book(tick, bids, asks, changes, levels):
    book = L2Book(tick_px=tick)
    book.apply_snapshot(tuple(bids), tuple(asks), 0, tick)
    for side, px, qty in changes:
        book.set_level(side, px, qty, 0)

    expected = top_of(book.levels(Side.BUY, levels), book.levels(Side.SELL, levels), tick, levels)
    assert book_top(book, levels) == expected


@pytest.mark.parametrize(
    "changes",
    [{"period_s": 0.0}, {"grace_s": float("nan")}, {"max_requests_per_s": float("inf")}, {"levels": 0}],
)
def test_config_refuses_nonsense(changes):
    with pytest.raises(ValueError, match="must"):
        AuditConfig(**changes)


# --- properties of the verdicts --------------------------------------------------------------------


tops = st.builds(
    lambda bid, spread, qty: book(bid * TICK, (bid + spread) * TICK, qty),
    st.integers(1, 90),
    st.integers(1, 5),
    st.integers(1, 3),
)


@given(data=st.data(), grace_s=st.floats(0.05, 1.0), period_s=st.floats(0.5, 10.0))
def test_property_a_feed_that_keeps_up_is_never_resynced(data, grace_s, period_s):
    """The venue moves; the feed delivers every state, at most ``grace_s`` late: no verdict, ever."""
    cfg = AuditConfig(period_s=period_s, grace_s=grace_s, desync_after=1, reconnect_after_markets=1)
    aud = BookAuditor(["m"], cfg, now_s=0.0)
    venue = [data.draw(tops)]
    delivered = 0  # the feed's book is venue[delivered]
    now = 0.0
    for _ in range(data.draw(st.integers(1, 40))):
        step = data.draw(st.sampled_from(["move", "deliver", "time", "reply"]))
        if step == "move":
            venue.append(data.draw(tops))
        elif step == "deliver" or (step == "time" and len(venue) - 1 > delivered):
            while delivered < len(venue) - 1:  # each state in its own frame, in order
                delivered += 1
                aud.on_data("m", venue[delivered])
        elif step == "time":
            now += data.draw(st.floats(0.0, 3 * period_s))
        elif step == "reply" and aud.is_open("m"):
            # REST serves the venue's current book, newer than anything the feed applied.
            aud.on_reply("m", now, venue[-1], 10**12, 0)
            # The frames still in flight arrive ``lag`` later, within the grace.
            lag = data.draw(st.floats(0.0, grace_s * 0.99))
            assert aud.expire(now + lag, now) == []
            while delivered < len(venue) - 1:
                delivered += 1
                aud.on_data("m", venue[delivered])
        assert aud.expire(now, now) == []
        aud.due(now, lambda _m, top=venue[delivered]: top)

    assert aud.resyncs == 0


@given(
    n=st.integers(1, 50),
    period_s=st.floats(0.5, 10.0),
    grace_s=st.floats(0.05, 0.5),
    rtt_s=st.floats(0.0, 0.2),
    frozen_at_s=st.floats(0.0, 20.0),
    whole_connection=st.booleans(),
    seed=st.randoms(use_true_random=False),
)
def test_property_a_frozen_feed_is_caught_within_one_period_plus_grace(
    n, period_s, grace_s, rtt_s, frozen_at_s, whole_connection, seed
):
    """The venue's books move every instant after ``frozen_at_s``; the feed sends nothing more for
    market m0 (or for any market). m0 is resynced, or the connection dropped, within one period plus
    the grace and a round trip; no other market ever is."""
    cfg = AuditConfig(period_s=period_s, grace_s=grace_s, reconnect_after_markets=max(2, n))
    markets = [f"m{i}" for i in range(n)]
    aud = BookAuditor(markets, cfg, now_s=0.0)
    frozen = set(markets) if whole_connection else {"m0"}
    ours = dict.fromkeys(markets, A)
    replies: list[tuple[float, str]] = []
    now = 0.0
    caught_at = None
    while caught_at is None and now < frozen_at_s + 3 * aud.period_s + 1:
        moved = now >= frozen_at_s
        # Markets that are not frozen follow the venue; the venue's book is B while moved, A before.
        venue_top = B if moved else A
        for m in markets:
            if (m not in frozen or not moved) and ours[m] != venue_top:
                ours[m] = venue_top
                aud.on_data(m, venue_top)
        connection_data_s = now if not (whole_connection and moved) else frozen_at_s
        for t, m in [r for r in replies if r[0] <= now]:
            replies.remove((t, m))
            aud.on_reply(m, t, venue_top, int(t * S) + 1, int(frozen_at_s * S) if m in frozen else int(t * S))
        for effect in aud.expire(now, connection_data_s):
            if isinstance(effect, Reconnect):
                assert moved and (whole_connection or n == 1)
                caught_at = now
            else:
                assert effect.market == "m0" or (whole_connection and effect.market in frozen)
                assert moved
                caught_at = now
        for m in aud.due(now, lambda m: ours[m]):
            replies.append((now + rtt_s * seed.random(), m))
        nxt = min(
            [aud.next_wakeup_s(now), *(t for t, _ in replies), frozen_at_s if now < frozen_at_s else 1e18]
        )
        now = max(nxt, now + 1e-6)

    assert caught_at is not None
    assert caught_at <= frozen_at_s + aud.period_s + rtt_s + grace_s + 1e-6
