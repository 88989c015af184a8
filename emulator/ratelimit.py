"""Per-signer rate limits as the venue runs them: token buckets per address and tier.

Each signer (the API key's address) has two buckets, one for orders (``POST /order`` costs 1,
``POST /orders`` one per order) and one for cancels (``DELETE /order`` 1, ``DELETE /orders`` one per
id, ``/cancel-all`` and ``/cancel-market-orders`` 1 + the orders they cancel). A bucket holds at most
its tier's burst and refills at its rate per second. A request that costs more than the bucket holds
is refused whole (429) and takes nothing; one that costs more than the burst can never pass.

Every answer to those endpoints carries ``Poly-RateLimit-Remaining`` (tokens left after the request),
``-Reset`` (unix seconds when the bucket is full again), ``-Tier``; a 429 also ``Retry-After``. In
``warn`` mode nothing is refused: a request that would have been is served with
``Poly-RateLimit-Warning: true`` (the official SDK's reading of that header).

Tiers (venue-2026-12.md §3): orders/s, order burst, cancels/s, cancel burst. Time comes in as
``now_ns`` (the venue's clock), so a fake clock drives the refill. Thread-safe.
"""

from __future__ import annotations

import math
import threading
from typing import Final, Literal

import msgspec

from core.units import NS_PER_S
from emulator.scenario import RateLimitConfig, TierConfig

__all__ = ["TIERS", "Bucket", "Decision", "RateLimiter"]

#: The venue's tiers by 30-day volume (venue-2026-12.md §3).
TIERS: Final = {
    "standard": TierConfig(orders_per_s=40, order_burst=60, cancels_per_s=80, cancel_burst=120),
    "copper": TierConfig(orders_per_s=60, order_burst=90, cancels_per_s=120, cancel_burst=180),
    "bronze": TierConfig(orders_per_s=80, order_burst=120, cancels_per_s=160, cancel_burst=240),
    "silver": TierConfig(orders_per_s=200, order_burst=300, cancels_per_s=400, cancel_burst=600),
    "gold": TierConfig(orders_per_s=400, order_burst=600, cancels_per_s=800, cancel_burst=1_200),
}

Bucket = Literal["orders", "cancels"]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What the limiter says about one request; ``headers`` go on the reply either way."""

    allowed: bool
    headers: dict[str, str]


class _State:
    __slots__ = ("last_ns", "tokens")

    def __init__(self, tokens: float, last_ns: int) -> None:
        self.tokens = tokens
        self.last_ns = last_ns


class RateLimiter:
    """Token buckets per (address, bucket), by the address's tier (see the module docstring).

    Args:
        config: The scenario's ``rate_limits``.
    """

    def __init__(self, config: RateLimitConfig) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, Bucket], _State] = {}
        self.enabled = config.enabled
        self.mode = config.mode
        self.retry_after_s: int | None = config.retry_after_s
        self.default_tier = config.default_tier
        self._tiers: dict[str, TierConfig] = {**TIERS, **config.custom_tiers}
        self._tier_of: dict[str, str] = {a.lower(): t for a, t in config.accounts.items()}
        for name in (self.default_tier, *self._tier_of.values()):
            self._check_tier(name)
        self.refused = 0

    def _check_tier(self, name: str) -> None:
        if name not in self._tiers:
            raise ValueError(f"unknown rate-limit tier {name!r}; known: {', '.join(sorted(self._tiers))}")

    def tier_of(self, address: str) -> str:
        """The tier an address is limited by."""
        with self._lock:
            return self._tier_of.get(address.lower(), self.default_tier)

    def configure(
        self,
        *,
        enabled: bool | None = None,
        mode: Literal["enforce", "warn"] | None = None,
        default_tier: str | None = None,
        retry_after_s: int | Literal["keep"] | None = "keep",
        account_tiers: dict[str, str] | None = None,
        drain: tuple[str, ...] = (),
        now_ns: int = 0,
    ) -> None:
        """Change the limits at run time (``/emulator/rate-limits``); unknown tiers raise ValueError."""
        with self._lock:
            for name in (default_tier, *(account_tiers or {}).values()):
                if name is not None:
                    self._check_tier(name)
            if enabled is not None:
                self.enabled = enabled
            if mode is not None:
                self.mode = mode
            if default_tier is not None:
                self.default_tier = default_tier
            if retry_after_s != "keep":
                self.retry_after_s = retry_after_s
            for address, tier in (account_tiers or {}).items():
                self._tier_of[address.lower()] = tier
                # A new tier starts from a full bucket, as a fresh signer would.
                self._buckets.pop((address.lower(), "orders"), None)
                self._buckets.pop((address.lower(), "cancels"), None)
            for address in drain:
                # Empty both buckets now: the next order or cancel request of the address is a 429.
                for bucket in ("orders", "cancels"):
                    self._buckets[(address.lower(), bucket)] = _State(0.0, now_ns)

    def state(self) -> dict[str, object]:
        """The limiter's settings and every bucket's tokens (``GET /emulator/rate-limits``)."""
        with self._lock:
            return {
                "enabled": self.enabled,
                "mode": self.mode,
                "default_tier": self.default_tier,
                "retry_after_s": self.retry_after_s,
                "accounts": dict(self._tier_of),
                "tiers": {k: msgspec.structs.asdict(v) for k, v in self._tiers.items()},
                "buckets": {f"{a}:{b}": round(s.tokens, 6) for (a, b), s in self._buckets.items()},
                "refused": self.refused,
            }

    def charge(self, address: str, bucket: Bucket, cost: int, now_ns: int) -> Decision | None:
        """Take ``cost`` tokens from ``address``'s ``bucket`` if it holds them; None when disabled.

        A refused request takes nothing. In ``warn`` mode the request is allowed and marked.
        """
        with self._lock:
            if not self.enabled:
                return None
            key = address.lower()
            tier_name = self._tier_of.get(key, self.default_tier)
            tier = self._tiers[tier_name]
            rate, burst = (
                (tier.orders_per_s, tier.order_burst)
                if bucket == "orders"
                else (tier.cancels_per_s, tier.cancel_burst)
            )
            st = self._buckets.get((key, bucket))
            if st is None:
                st = self._buckets[(key, bucket)] = _State(float(burst), now_ns)
            elapsed_s = max(now_ns - st.last_ns, 0) / NS_PER_S
            st.tokens = min(float(burst), st.tokens + elapsed_s * rate)
            st.last_ns = max(st.last_ns, now_ns)
            ok = cost <= st.tokens
            warning = False
            if ok or self.mode == "warn":
                warning = not ok
                st.tokens -= cost if ok else 0
            else:
                self.refused += 1
            headers = {
                "Poly-RateLimit-Remaining": _num(st.tokens),
                "Poly-RateLimit-Reset": f"{now_ns / NS_PER_S + (burst - st.tokens) / rate:.3f}",
                "Poly-RateLimit-Tier": tier_name,
            }
            if warning:
                headers["Poly-RateLimit-Warning"] = "true"
            if not ok and self.mode == "enforce":
                if self.retry_after_s is not None:
                    wait_s = self.retry_after_s
                elif cost > burst:
                    wait_s = math.ceil(burst / rate)  # never enough: the time a full refill takes
                else:
                    wait_s = max(1, math.ceil((cost - st.tokens) / rate))
                headers["Retry-After"] = str(wait_s)
                return Decision(allowed=False, headers=headers)
            return Decision(allowed=True, headers=headers)


def _num(x: float) -> str:
    # Whole token counts as integers ("59"), fractions with up to 3 decimals ("12.345").
    return str(int(x)) if x == int(x) else f"{x:.3f}".rstrip("0").rstrip(".")
