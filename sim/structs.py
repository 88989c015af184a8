"""The msgspec Structs of ``sim.runner`` (``Latency``, ``RunSettings``), in a module mypyc leaves alone.

``sim.runner`` re-exports them: import them from either. Why they are not defined there:
``core/structs.py``'s docstring (mypyc would drop their class keywords and flatten their annotations).
"""

from __future__ import annotations

import msgspec

from venue.structs import QueueModel


class Latency(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One-way latencies in ms: ``base + U(0, jitter)`` from the run's seeded RNG when jitter > 0."""

    feed_ms: float = 50.0
    feed_jitter_ms: float = 0.0
    order_ms: float = 50.0
    order_jitter_ms: float = 0.0
    response_ms: float = 50.0
    response_jitter_ms: float = 0.0
    #: A merge of YES+NO pairs, from reaching the venue to its confirmation (an on-chain transaction:
    #: mined in the next Polygon block, ~2 s, and its receipt polled every 2 s by the official client).
    merge_ms: float = 4000.0

    def __post_init__(self) -> None:
        for name in (
            "feed_ms",
            "feed_jitter_ms",
            "order_ms",
            "order_jitter_ms",
            "response_ms",
            "response_jitter_ms",
            "merge_ms",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: latencies cannot be negative")


class RunSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a simulation runs, independent of where its data comes from.

    ``budget_interval_ms``: how often the markets share their exposure for the global cap and their
    neg-risk event's cap (each market reads the others' exposure as of the start of the interval).
    ``global_ev_cap_usdc6``: the budget of all markets together (None: no such limit);
    ``event_cap_usdc6``: the budget of the markets of one neg-risk event together
    (``inventory.event_cap``; None: the per-market cap, that setting's default).
    """

    latency: Latency = msgspec.field(default_factory=Latency)
    queue: QueueModel = msgspec.field(default_factory=QueueModel)
    timer_ms: int = 1000
    budget_interval_ms: int = 1000
    global_ev_cap_usdc6: int | None = None
    event_cap_usdc6: int | None = None
