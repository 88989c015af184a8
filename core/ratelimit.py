"""The venue's per-signer rate limits as a pure token-bucket model; time comes in as ``now_ns``.

The venue (docs ``venue-2026-12.md`` §3) keeps, per signer, one token bucket for new orders and one
for cancels, sized by the wallet's volume tier. ``POST /orders`` costs one token per order,
``DELETE /orders`` one per id, cancel-all and cancel-market-orders 1 plus the orders they cancel.
A request costing more than the bucket's burst can never succeed, so it is split. Replies carry
``Poly-RateLimit-Remaining`` (tokens left in the bucket the request was charged to), ``-Reset``,
``-Tier`` and ``-Warning``: the model follows them (``observe``).

What the order gateway asks of it:

* ``wait_ns(kind, n, now_ns)``: 0 when ``n`` tokens of ``kind`` are there now (then ``take`` them),
  else how long until they are. New orders also wait while a 429 pause runs (``paused_until_ns``).
* ``chunks(kind, n)``: sizes that each fit the burst (a large cancel is split, never refused).
* ``rate_limited(retry_after_ns, now_ns)``: a 429 on new orders pauses new orders, never cancels.
  ``pull_due_ns`` says when the pause has lasted ``max_pause_ns`` with the venue still refusing: quotes
  that cannot be moved must not rest longer, so the gateway pulls every quote then, and lets the
  markets quote again when new orders may go (``resume`` after ``paused_until_ns``).

Tokens are integers in millionths of a token so refills are exact.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = [
    "MICRO",
    "TIERS",
    "Bucket",
    "BucketSpec",
    "Kind",
    "RateLimiter",
    "TierSpec",
    "tier_spec",
]

Kind = Literal["order", "cancel"]
MICRO: Final = 1_000_000  # millionths of a token
_NS_PER_S: Final = 1_000_000_000


class BucketSpec(msgspec.Struct, frozen=True):
    """A token bucket: ``rate_per_s`` tokens refilled each second, at most ``burst`` held."""

    rate_per_s: int
    burst: int


class TierSpec(msgspec.Struct, frozen=True):
    """The two buckets of one volume tier."""

    orders: BucketSpec
    cancels: BucketSpec


#: Per signer, by 30-day volume tier (venue docs as transcribed, Aug 2026).
TIERS: Final[dict[str, TierSpec]] = {
    "standard": TierSpec(BucketSpec(40, 60), BucketSpec(80, 120)),
    "copper": TierSpec(BucketSpec(60, 90), BucketSpec(120, 180)),
    "bronze": TierSpec(BucketSpec(80, 120), BucketSpec(160, 240)),
    "silver": TierSpec(BucketSpec(200, 300), BucketSpec(400, 600)),
    "gold": TierSpec(BucketSpec(400, 600), BucketSpec(800, 1200)),
}


def tier_spec(name: str) -> TierSpec | None:
    """The buckets of tier ``name`` (any case); None when the venue names a tier we do not know."""
    return TIERS.get(name.strip().lower())


class Bucket:
    """One token bucket (mutable; owned by a ``RateLimiter``)."""

    __slots__ = ("frac", "spec", "tokens_micro", "ts_ns")

    def __init__(self, spec: BucketSpec, now_ns: int) -> None:
        self.spec = spec
        self.tokens_micro = spec.burst * MICRO
        self.ts_ns = now_ns
        self.frac = 0  # what the last refill earned below one micro-token, in micro-token * ns

    def refill(self, now_ns: int) -> None:
        """Add what ``rate_per_s`` earned since the last refill, exactly (time never runs backwards here)."""
        if now_ns <= self.ts_ns:
            return
        earned, self.frac = divmod(
            (now_ns - self.ts_ns) * self.spec.rate_per_s * MICRO + self.frac, _NS_PER_S
        )
        self.ts_ns = now_ns
        cap = self.spec.burst * MICRO
        self.tokens_micro += earned
        if self.tokens_micro >= cap:
            self.tokens_micro, self.frac = cap, 0

    def wait_ns(self, n: int, now_ns: int) -> int:
        """0 when ``n`` tokens are there now, else the time until they are (``n`` within the burst)."""
        self.refill(now_ns)
        short = n * MICRO - self.tokens_micro
        if short <= 0:
            return 0
        return -(-short * _NS_PER_S // (self.spec.rate_per_s * MICRO))  # ceil

    def take(self, n: int, now_ns: int) -> None:
        """Spend ``n`` tokens (may go below zero: the venue's own count is what matters)."""
        self.refill(now_ns)
        self.tokens_micro -= n * MICRO

    def set_remaining(self, remaining: int, now_ns: int) -> None:
        """The venue says ``remaining`` tokens are left: that is the truth, within the burst."""
        self.refill(now_ns)
        self.tokens_micro = max(0, min(remaining, self.spec.burst)) * MICRO
        self.ts_ns, self.frac = now_ns, 0


class RateLimiter:
    """One signer's buckets, the venue's tier and the 429 pause of new orders (see the module docstring)."""

    def __init__(
        self, tier: str = "standard", *, max_pause_ns: int = 10 * _NS_PER_S, now_ns: int = 0
    ) -> None:
        spec = tier_spec(tier)
        if spec is None:
            raise ValueError(f"unknown rate-limit tier {tier!r} (one of {', '.join(TIERS)})")
        self.tier = tier.lower()
        self.max_pause_ns = max_pause_ns
        self.buckets: dict[Kind, Bucket] = {
            "order": Bucket(spec.orders, now_ns),
            "cancel": Bucket(spec.cancels, now_ns),
        }
        #: New orders may not be sent before this (a 429's Retry-After); cancels are never paused.
        self.paused_until_ns = 0
        #: When the pause began (0: not paused): ``pull_due_ns`` counts from here.
        self.pause_started_ns = 0
        self.warning = False

    # --- sizing ------------------------------------------------------------------------------------

    def burst(self, kind: Kind) -> int:
        """The most tokens one request of ``kind`` may cost."""
        return self.buckets[kind].spec.burst

    def chunks(self, kind: Kind, n: int, overhead: int = 0) -> list[int]:
        """Split ``n`` items into requests that each cost at most the burst (``overhead`` per request)."""
        per = max(1, self.burst(kind) - overhead)
        return [min(per, n - i) for i in range(0, n, per)]

    # --- spending ----------------------------------------------------------------------------------

    def wait_ns(self, kind: Kind, n: int, now_ns: int) -> int:
        """How long before a request of ``kind`` costing ``n`` may go (0: now)."""
        n = min(n, self.burst(kind))
        wait = self.buckets[kind].wait_ns(n, now_ns)
        if kind == "order" and self.paused_until_ns > now_ns:
            wait = max(wait, self.paused_until_ns - now_ns)
        return wait

    def take(self, kind: Kind, n: int, now_ns: int) -> None:
        """Charge a request that is being sent."""
        self.buckets[kind].take(n, now_ns)

    # --- what the venue says -----------------------------------------------------------------------

    def observe(
        self, kind: Kind, now_ns: int, *, remaining: int | None = None, tier: str = "", warning: bool = False
    ) -> bool:
        """Follow a reply's ``Poly-RateLimit-*`` headers; returns True when the tier changed."""
        changed = False
        if tier:
            spec = tier_spec(tier)
            if spec is not None and tier.lower() != self.tier:
                self.tier = tier.lower()
                self.buckets["order"].spec = spec.orders
                self.buckets["cancel"].spec = spec.cancels
                changed = True
        if remaining is not None:
            self.buckets[kind].set_remaining(remaining, now_ns)
        self.warning = warning
        return changed

    def rate_limited(self, kind: Kind, retry_after_ns: int | None, now_ns: int) -> int:
        """A 429 on ``kind``: returns when that kind may be sent again.

        New orders wait the whole ``Retry-After`` (the venue would refuse them anyway); the bucket is
        emptied. Cancels are never held by a Retry-After: they only wait for their bucket to refill.
        """
        bucket = self.buckets[kind]
        bucket.refill(now_ns)
        bucket.tokens_micro = min(bucket.tokens_micro, 0)
        bucket.ts_ns, bucket.frac = now_ns, 0
        if kind == "cancel":
            return now_ns + bucket.wait_ns(1, now_ns)
        until = now_ns + max(retry_after_ns or 0, bucket.wait_ns(1, now_ns))
        if self.pause_started_ns == 0:
            self.pause_started_ns = now_ns
        self.paused_until_ns = max(self.paused_until_ns, until)
        return self.paused_until_ns

    def pull_due_ns(self) -> int | None:
        """When quotes must be pulled because new orders have been held for ``max_pause_ns`` (None: never).

        None when the pause ends before the cap: the quotes rest a little longer and move again soon.
        """
        if self.pause_started_ns == 0:
            return None
        due = self.pause_started_ns + self.max_pause_ns
        return due if self.paused_until_ns > due else None

    def paused(self, now_ns: int) -> bool:
        """Whether new orders are held by a 429 now."""
        return self.paused_until_ns > now_ns

    def resume(self, now_ns: int) -> bool:
        """End the pause if it is over; True when it just ended (the markets may quote again)."""
        if self.pause_started_ns and self.paused_until_ns <= now_ns:
            self.pause_started_ns = 0
            return True
        return False
