"""The per-signer rate-limit model: exact token buckets, a 429 that holds new orders only, the pull cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.ratelimit import MICRO, TIERS, Bucket, BucketSpec, RateLimiter, tier_spec

S = 1_000_000_000
T0 = 10**18


def test_standard_tier_spends_the_burst_then_refills_at_its_rate():
    rl = RateLimiter("standard", now_ns=T0)

    assert rl.wait_ns("order", 60, T0) == 0
    rl.take("order", 60, T0)

    assert rl.wait_ns("order", 1, T0) == S // 40  # 40 orders a second
    assert rl.wait_ns("order", 15, T0) == 15 * S // 40
    assert rl.wait_ns("cancel", 120, T0) == 0  # cancels have their own bucket


def test_a_request_is_split_to_fit_the_burst():
    rl = RateLimiter("standard")

    assert rl.chunks("cancel", 250) == [120, 120, 10]
    assert rl.chunks("cancel", 250, overhead=1) == [119, 119, 12]
    assert rl.chunks("order", 0) == []


def test_the_venue_headers_set_the_tokens_left_and_the_tier():
    rl = RateLimiter("standard", now_ns=T0)

    changed = rl.observe("order", T0, remaining=3, tier="Gold")

    assert changed and rl.tier == "gold" and rl.burst("order") == 600
    assert rl.wait_ns("order", 3, T0) == 0
    assert rl.wait_ns("order", 4, T0) == S // 400
    assert not rl.observe("order", T0, tier="unheard-of")  # an unknown tier keeps ours
    with pytest.raises(ValueError, match="unknown rate-limit tier"):
        RateLimiter("platinum")


def test_a_429_holds_new_orders_for_retry_after_never_cancels():
    rl = RateLimiter("standard", max_pause_ns=10 * S, now_ns=T0)

    until = rl.rate_limited("order", 300 * S, T0)

    assert until == T0 + 300 * S and rl.paused(T0 + 299 * S)
    assert rl.wait_ns("order", 1, T0 + 100 * S) == 200 * S
    assert rl.wait_ns("cancel", 1, T0) == 0
    assert rl.pull_due_ns() == T0 + 10 * S  # held past the cap: quotes are pulled then
    assert not rl.resume(T0 + 299 * S)
    assert rl.resume(T0 + 300 * S) and rl.pull_due_ns() is None


def test_a_short_429_never_reaches_the_pull():
    rl = RateLimiter("standard", max_pause_ns=10 * S, now_ns=T0)

    rl.rate_limited("order", 2 * S, T0)

    assert rl.pull_due_ns() is None
    assert rl.wait_ns("order", 1, T0 + 2 * S) == 0


def test_repeated_429s_count_the_cap_from_the_first():
    rl = RateLimiter("standard", max_pause_ns=10 * S, now_ns=T0)
    rl.rate_limited("order", 6 * S, T0)
    rl.rate_limited("order", 6 * S, T0 + 5 * S)

    assert rl.pull_due_ns() == T0 + 10 * S


def test_a_cancel_429_waits_only_for_its_bucket():
    rl = RateLimiter("standard", now_ns=T0)

    until = rl.rate_limited("cancel", 300 * S, T0)

    assert until == T0 + S // 80
    assert not rl.paused(T0)


@settings(max_examples=200, deadline=None)
@given(
    tier=st.sampled_from(sorted(TIERS)),
    steps=st.lists(st.tuples(st.integers(0, 3 * S), st.integers(1, 50)), min_size=1, max_size=60),
)
def test_granted_requests_never_exceed_burst_plus_rate_times_elapsed(tier, steps):
    # Whatever the arrival pattern, what the model lets through in any window is what the venue's
    # bucket would: at most the burst plus the rate times the window, and never more than it holds.
    spec = TIERS[tier].orders
    rl = RateLimiter(tier, now_ns=T0)
    now = T0
    granted: list[tuple[int, int]] = []
    for gap, n in steps:
        now += gap
        if rl.wait_ns("order", n, now) == 0:
            rl.take("order", n, now)
            granted.append((now, n))
    for i, (start, _) in enumerate(granted):
        total = 0
        for t, n in granted[i:]:
            total += n
            assert total * S <= spec.burst * S + spec.rate_per_s * (t - start)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.integers(1, 1000),
    burst=st.integers(1, 2000),
    gaps=st.lists(st.integers(0, 10 * S), max_size=50),
)
def test_refills_in_any_steps_equal_one_refill(rate, burst, gaps):
    # Refilling is exact: many small steps give the same tokens as one step over the same time.
    a, b = Bucket(BucketSpec(rate, burst), T0), Bucket(BucketSpec(rate, burst), T0)
    a.tokens_micro = b.tokens_micro = 0
    now = T0
    for gap in gaps:
        now += gap
        a.refill(now)
    b.refill(now)
    assert a.tokens_micro == b.tokens_micro
    assert 0 <= a.tokens_micro <= burst * MICRO


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 5000), overhead=st.integers(0, 3), tier=st.sampled_from(sorted(TIERS)))
def test_chunks_cover_every_item_and_each_fits_the_burst(n, overhead, tier):
    rl = RateLimiter(tier)
    chunks = rl.chunks("cancel", n, overhead)
    assert sum(chunks) == n
    assert all(c > 0 and c + overhead <= max(rl.burst("cancel"), 1 + overhead) for c in chunks)


def test_tier_names_are_read_in_any_case():
    assert tier_spec(" SILVER ") == TIERS["silver"]
    assert tier_spec("") is None
