"""Liquidity-rewards accrual in the simulator: sample our resting orders once a minute, score, accrue.

The venue samples every maker's resting orders once a minute, at a random second, and pays each market's
daily pool (``MarketInfo.rewards_daily_usdc6``) by each maker's share of the samples (``core.rewards``,
``docs/rewards.md``). Here, per market with a rewards program (``rewards_max_spread_px > 0``):

* **Schedule.** Minute ``m`` of simulated time (``ts_ns // 60 s``) is sampled at second
  ``sample_second(seed, market, m)`` in ``[0, 60)``: a pure function of the run's seed, the market and the
  minute (its own ``random.Random`` stream), so a sample does not depend on what else the run drew.
  Samples run from the market's first tape event to its last one, and stop once the market resolved.
* **When.** A sample at ``s`` sees the venue as it is after every event at or before ``s`` (the lane takes
  it before the first event after ``s``, or at the end of its window): our resting orders as the venue
  holds them (``SimExchange.orders``, their unfilled size) and the displayed book (``SimExchange.book``:
  the data's levels, which never hold our orders).
* **Score.** The adjusted mid is taken on the displayed book with our orders added to their levels.
  Our ``Q_min`` is ``core.rewards.maker_q`` of our orders. The competition is the displayed book's levels
  taken as one maker's orders at their prices, sized by the level (bids buy YES, asks sell YES): its
  ``Q_min`` by the same function. The book does not say who rests where, so this treats the displayed
  competition as one two-sided maker (an assumption, docs/rewards.md).
* **Accrual.** A sample pays ``share * daily pool / 1440``; the sum is kept exact (``Fraction``) and
  reported floored to the micro-USDC. Each sample is one ``reward`` record in the lane's log.

It reads the venue and writes a log line, nothing else: no decision sees it, so the inline and actors
engines stay identical, and a scenario without reward terms writes exactly what it wrote before.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Final

import msgspec

from core.inventory import OrderLike
from core.markets import MarketInfo
from core.ports import EventSink
from core.rewards import book_scores as core_book_scores
from core.units import NEVER_NS, NS_PER_S, PX_ONE, Outcome, Side
from venue.exchange import SimExchange

SAMPLE_PERIOD_NS: Final = 60 * NS_PER_S
MINUTES_PER_DAY: Final = 1440
_INF: Final = NEVER_NS


def sample_second(seed: int, market: str, minute: int) -> int:
    """The second in ``[0, 60)`` at which minute ``minute`` of ``market`` is sampled (pure)."""
    return random.Random(f"rewards:{seed}:{market}:{minute}").randrange(60)


def sample_ts(seed: int, market: str, minute: int) -> int:
    """The simulated time of minute ``minute``'s sample."""
    return minute * SAMPLE_PERIOD_NS + sample_second(seed, market, minute) * NS_PER_S


def book_scores(ex: SimExchange) -> tuple[Fraction, Fraction, int]:
    """``(our Q_min, everyone's Q_min, twice the adjusted mid)`` of the venue as it stands.

    ``core.rewards.book_scores`` of our resting orders against the displayed book (which never holds
    them): the emulator and live tracking score with the same function.
    """
    ours: list[OrderLike] = [
        (o.outcome, o.side, o.yes_px if o.outcome is Outcome.YES else PX_ONE - o.yes_px, o.qty)
        for o in ex.orders.values()
        if o.qty > 0
    ]
    return core_book_scores(
        ours, ex.book.levels(Side.BUY), ex.book.levels(Side.SELL), ex.info.reward_params()
    )


class RewardSample(msgspec.Struct, frozen=True, kw_only=True):
    """One ``reward`` record: our score and everyone's (``Q_min``, floored, share-points), the
    market's reward accrued so far (floored) and whether our orders scored."""

    score_qty: int
    score_total_qty: int
    accrued_usdc6: int
    scoring: bool


class RewardAccrual:
    """One market's reward samples and accrual in a simulation (see the module docstring)."""

    __slots__ = ("exact", "last_ts", "market", "minute", "next_ts", "samples", "scored", "seed")

    def __init__(self, info: MarketInfo, seed: int, first_ts: int, last_ts: int) -> None:
        """Samples over ``[first_ts, last_ts]``; none when ``info`` has no rewards program."""
        self.market = info.market
        self.seed = seed
        self.last_ts = last_ts
        self.samples = 0
        self.scored = 0
        #: The accrued reward, exact, in micro-USDC.
        self.exact = Fraction(0)
        self.minute = first_ts // SAMPLE_PERIOD_NS
        self.next_ts = _INF
        if info.reward_params().active and first_ts <= last_ts:
            self.next_ts = sample_ts(seed, self.market, self.minute)
            if self.next_ts < first_ts:
                self._advance()

    @property
    def accrued_usdc6(self) -> int:
        """The accrued reward floored to the micro-USDC."""
        return int(self.exact)

    def _advance(self) -> None:
        self.minute += 1
        t = sample_ts(self.seed, self.market, self.minute)
        self.next_ts = t if t <= self.last_ts else _INF

    def until(self, t: int, ex: SimExchange, sink: EventSink) -> None:
        """Take every sample due before ``t`` against the venue as it stands."""
        while self.next_ts < t:
            if ex.resolved:
                self.next_ts = _INF
                return
            self.sample(self.next_ts, ex, sink)
            self._advance()

    def sample(self, ts: int, ex: SimExchange, sink: EventSink) -> None:
        """One sample at ``ts``: score, accrue, log a ``reward`` record."""
        ours, total, _ = book_scores(ex)
        self.samples += 1
        if ours > 0:
            self.scored += 1
            self.exact += ours / total * ex.info.rewards_daily_usdc6 / MINUTES_PER_DAY
        sink.record(
            "reward",
            ts,
            self.market,
            RewardSample(
                score_qty=int(ours),
                score_total_qty=int(total),
                accrued_usdc6=int(self.exact),
                scoring=ours > 0,
            ),
        )
