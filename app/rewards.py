"""Live reward tracking: which of our resting orders score, the estimated accrual, what the venue paid.

In live and paper modes, every ``rewards.track_interval_s`` (60 s; 0 never) a thread of its own
(``polymm-rewards``; never the market actors' or the gateway's) reads, for each market with a
liquidity-rewards program (``MarketInfo.reward_params().active``):

* **our resting orders** with their unfilled size. Live: the venue's listing (``GET /data/orders``);
  paper: the paper venue's (``adapters.paper.GetRewardBooks``; paper orders are not on the venue);
* **which of them score**. Live: the venue's answer (``POST /orders-scoring`` through the official
  client, in batches); paper, or live when that call fails: ``core.rewards.order_scoring`` on the
  book below (``scoring_by`` says which);
* **the displayed competing book**: live, the venue's YES book (``POST /books``) with our orders taken
  out (``core.rewards.yes_levels_without``); paper, the paper venue's displayed book (it never holds
  ours);
* **what the venue reports we earned today** (UTC), live only (``GET /rewards/user``).

From these, per market (``MarketRewards``): the scoring fraction of our resting orders by count and by
size, our share of a sample (``core.rewards.book_scores``: our ``Q_min`` against the displayed book
taken as one maker, the simulator's assumption) and the estimated accrual ``share x daily pool`` in
USDC per day, and the venue's earnings. The status line, ``polymm status`` and the metrics show the
latest (``app.commands.control.reward_text``).

A failed call is logged once (a warning naming it), then quietly retried each round until it works
again (one info line): trading never waits for or stops on it. The calls are not in the per-signer
order and cancel buckets the gateway's rate limiter models; still, a round is skipped while the
gateway holds new orders for a 429 (``held``), and a 429 here waits its Retry-After (at least one
interval) before the next round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from adapters.polymarket.errors import RateLimited
from core.inventory import OrderLike
from core.markets import MarketInfo
from core.ports import Clock
from core.rewards import book_scores, estimate, order_scoring, yes_levels_without
from core.units import NS_PER_S, Px, Qty

log = logging.getLogger("polymm.rewards")

__all__ = [
    "LiveRewardSource",
    "MarketRead",
    "MarketRewards",
    "PaperRewardSource",
    "RewardTracker",
    "market_rewards",
]

Levels = tuple[tuple[Px, Qty], ...]
#: The parts of a live round that may fail alone (named so in the log).
SCORING = "order scoring (POST /orders-scoring)"
EARNINGS = "earnings (GET /rewards/user)"
READING = "reading orders and books"


class MarketRead(msgspec.Struct, frozen=True, kw_only=True):
    """What a source read of one market: our resting orders (``(id, order)``), the competing book.

    ``bids``/``asks`` are the displayed YES levels *without* our orders; ``scoring`` the venue's answer
    per id (None: decide locally).
    """

    orders: tuple[tuple[str, OrderLike], ...]
    bids: Levels
    asks: Levels
    scoring: Mapping[str, bool] | None = None


class RewardRead(msgspec.Struct, frozen=True, kw_only=True):
    """One round's reads: per market, and the venue's earnings of today (None: not known)."""

    markets: dict[str, MarketRead]
    earned_usdc6: dict[str, int] | None = None


class MarketRewards(msgspec.Struct, frozen=True, kw_only=True):
    """One market's reward tracking at ``ts_ns`` (sizes in 1e-6 shares, money in micro-USDC).

    ``scoring_by``: ``venue`` (its order-scoring answer) or ``local`` (``core.rewards.order_scoring``);
    ``share_ppm``: our fraction of a sample against the displayed book, in millionths;
    ``est_daily_usdc6``: that share of the daily pool (what a day like this moment pays);
    ``earned_today_usdc6``: what the venue reports we earned today (UTC); None: not known (paper).
    """

    market: str
    ts_ns: int
    orders: int
    scoring_orders: int
    qty: int
    scoring_qty: int
    share_ppm: int
    est_daily_usdc6: int
    daily_pool_usdc6: int
    scoring_by: str
    earned_today_usdc6: int | None = None


def market_rewards(info: MarketInfo, read: MarketRead, ts_ns: int, earned_usdc6: int | None) -> MarketRewards:
    """One market's figures from what was read (pure)."""
    rp = info.reward_params()
    orders = [o for _, o in read.orders]
    q_ours, q_total, mid2 = book_scores(orders, read.bids, read.asks, rp)
    if read.scoring is not None:
        flags: Sequence[bool] = [bool(read.scoring.get(oid, False)) for oid, _ in read.orders]
        by = "venue"
    else:
        flags = order_scoring(orders, mid2, rp) if mid2 > 0 else [False] * len(orders)
        by = "local"
    est = estimate(orders, flags, q_ours, q_total, rp)
    return MarketRewards(
        market=info.market,
        ts_ns=ts_ns,
        orders=est.orders,
        scoring_orders=est.scoring_orders,
        qty=est.qty,
        scoring_qty=est.scoring_qty,
        share_ppm=est.share_ppm,
        est_daily_usdc6=est.daily_usdc6,
        daily_pool_usdc6=rp.daily_usdc6,
        scoring_by=by,
        earned_today_usdc6=earned_usdc6,
    )


class Parts(Protocol):
    """How a source says which optional part of a round worked (``ok``) or not (``failed``)."""

    def ok(self, what: str) -> None:
        """``what`` worked."""
        ...

    def failed(self, what: str, exc: Exception) -> None:
        """``what`` failed with ``exc`` (its data is left out of the round)."""
        ...


class RewardSource(Protocol):
    """Where a round's reads come from (``LiveRewardSource``, ``PaperRewardSource``, a test's fake)."""

    def read(self, markets: Sequence[MarketInfo], day: str, parts: Parts) -> RewardRead:
        """Read every market; an optional part that could not be read is told to ``parts`` and left out.

        Raises when nothing usable could be read (the round is skipped).
        """
        ...


class LiveRewardSource:
    """Live: the venue, through ``adapters.polymarket.rewards.VenueRewards``."""

    def __init__(self, venue: Any) -> None:
        """``venue``: a ``VenueRewards`` over the run's SDK client."""
        self.venue = venue

    def read(self, markets: Sequence[MarketInfo], day: str, parts: Parts) -> RewardRead:
        """Our resting orders and the books (both needed), the venue's scoring and earnings (optional)."""
        wanted = {m.market for m in markets}
        resting = [r for r in self.venue.resting() if r[1] in wanted]
        books = self.venue.books(markets)
        scoring: dict[str, bool] | None = {}
        ids = [oid for oid, _, _ in resting]
        if ids:
            try:
                scoring = self.venue.scoring(ids)
                parts.ok(SCORING)
            except Exception as exc:
                parts.failed(SCORING, exc)
                scoring = None
        earned: dict[str, int] | None
        try:
            earned = self.venue.earnings(day)
            parts.ok(EARNINGS)
        except Exception as exc:
            parts.failed(EARNINGS, exc)
            earned = None
        out: dict[str, MarketRead] = {}
        for m in markets:
            if m.market not in books:
                continue
            ours = tuple((oid, o) for oid, mk, o in resting if mk == m.market)
            orders = [o for _, o in ours]
            bids, asks = books[m.market]
            out[m.market] = MarketRead(
                orders=ours,
                bids=yes_levels_without(bids, orders, bids=True),
                asks=yes_levels_without(asks, orders, bids=False),
                scoring=scoring,
            )
        return RewardRead(markets=out, earned_usdc6=earned)


class PaperRewardSource:
    """Paper: the paper venue's orders and displayed books (``adapters.paper.GetRewardBooks``)."""

    def __init__(self, venue: Any, timeout_s: float = 5.0) -> None:
        """``venue``: the ``PaperVenue`` actor's ref."""
        self.venue = venue
        self.timeout_s = timeout_s

    def read(self, markets: Sequence[MarketInfo], day: str, parts: Parts) -> RewardRead:
        """One ask of the paper venue; scoring decided locally, no earnings (the venue never saw us)."""
        from adapters.paper import GetRewardBooks  # noqa: PLC0415 (pykka: not for the CLI)

        books = self.venue.ask(GetRewardBooks(), timeout=self.timeout_s)
        out = {
            m.market: MarketRead(orders=books[m.market][0], bids=books[m.market][1], asks=books[m.market][2])
            for m in markets
            if m.market in books
        }
        return RewardRead(markets=out)


class RewardTracker:
    """Reads a ``RewardSource`` every ``interval_s`` on its own thread; ``snapshot()`` the latest figures."""

    def __init__(
        self,
        markets: Sequence[MarketInfo],
        source: RewardSource,
        clock: Clock,
        interval_s: float,
        *,
        held: Callable[[], bool] = lambda: False,
    ) -> None:
        """Track the ``markets`` with a rewards program; ``held()``: the gateway holds new orders (429)."""
        self.markets = [m for m in markets if m.reward_params().active]
        self.source = source
        self.clock = clock
        self.interval_s = interval_s
        self.held = held
        self.rounds = 0
        self._latest: dict[str, MarketRewards] = {}
        self._failing: set[str] = set()
        self._not_before_ns = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, MarketRewards]:
        """The latest figures per market (empty before the first round)."""
        with self._lock:
            return dict(self._latest)

    def start(self) -> None:
        """Check every ``interval_s`` until ``stop`` (nothing to do without a rewarded market)."""
        if not self.markets or self.interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="polymm-rewards", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop checking; waits (up to ``timeout_s``) for a round in flight, so none outlives the venue."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()

    def failed(self, what: str, exc: Exception) -> None:
        """``what`` failed: logged the first time (a 429 also puts the next round off)."""
        if isinstance(exc, RateLimited):
            retry_s = getattr(exc, "retry_after_s", None) or 0.0
            self._not_before_ns = self.clock.now_ns() + int(max(retry_s, self.interval_s) * NS_PER_S)
        if what not in self._failing and not self._stop.is_set():  # (a shutdown's failures are not news)
            self._failing.add(what)
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            log.warning("reward tracking: %s failed (%s); trading goes on, retried each round", what, why)

    def ok(self, what: str) -> None:
        """``what`` worked: logged once if it had failed."""
        if what in self._failing:
            self._failing.discard(what)
            log.info("reward tracking: %s works again", what)

    def check(self) -> bool:
        """One round now (the thread calls it; tests may too). Never raises; True when it read."""
        try:
            return self._check()
        except Exception:
            log.exception("reward tracking: round failed")
            return False

    def _check(self) -> bool:
        now = self.clock.now_ns()
        if now < self._not_before_ns or self.held():
            return False
        day = datetime.fromtimestamp(now // NS_PER_S, UTC).date().isoformat()
        try:
            read = self.source.read(self.markets, day, self)
        except Exception as exc:
            self.failed(READING, exc)
            return False
        self.ok(READING)
        latest = {
            m.market: market_rewards(
                m,
                read.markets[m.market],
                now,
                None if read.earned_usdc6 is None else read.earned_usdc6.get(m.market, 0),
            )
            for m in self.markets
            if m.market in read.markets
        }
        with self._lock:
            self._latest = latest
            self.rounds += 1
        return True
