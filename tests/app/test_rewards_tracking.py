"""Reward tracking (``app.rewards``) piece by piece: the figures, the tracker's rounds and failures, the
paper source on a real paper venue, the live source through the official client against the emulator,
and the three places people read it (status line, ``polymm status``, metrics).

The live run end to end is ``test_rewards_live_e2e.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from prometheus_client.core import Metric

from actors.market import LatencyHistogram
from actors.risk import RiskMonitor
from adapters.paper import PaperVenue, Submit
from adapters.polymarket.errors import RateLimited, RequestRejected
from app.commands.control import reward_text
from app.console import status_lines
from app.metrics import EngineCollector
from app.rewards import (
    EARNINGS,
    SCORING,
    LiveRewardSource,
    MarketRead,
    MarketRewards,
    PaperRewardSource,
    Parts,
    RewardRead,
    RewardTracker,
    market_rewards,
)
from core.config import Config
from core.markets import MarketInfo
from core.messages import BookSnapshot, Place
from core.rewards import book_scores, order_scoring
from core.risk import risk_limits
from core.units import NS_PER_S, QTY_ONE, Outcome, Side
from tests.app.test_console import status

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

SHARE = QTY_ONE
YES, NO, BUY, SELL = Outcome.YES, Outcome.NO, Side.BUY, Side.SELL
A = "0x" + "a1" * 32
B = "0x" + "b2" * 32
T0 = 1_800_000_000 * NS_PER_S
REWARDED = MarketInfo(
    market=A,
    yes_token="111",
    no_token="222",
    rewards_max_spread_px=300,
    rewards_min_qty=20 * SHARE,
    rewards_daily_usdc6=10_000_000,
)
PLAIN = MarketInfo(market=B, yes_token="333", no_token="444")
# The book 0.48/0.52 (100 shares) without ours; ours: a 0.49 bid scoring, a 10-share NO bid at 0.49 (a
# YES ask at 0.51) too small to.
OURS = (("o1", (YES, BUY, 4_900, 30 * SHARE)), ("o2", (NO, BUY, 4_900, 10 * SHARE)))
READ = MarketRead(orders=OURS, bids=((4_800, 100 * SHARE),), asks=((5_200, 100 * SHARE),))


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def now_ns(self) -> int:
        return self.t


class Recorder:
    """``Parts`` that remembers what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def ok(self, what: str) -> None:
        self.seen.append(("ok", what))

    def failed(self, what: str, exc: Exception) -> None:
        self.seen.append(("failed", what))


class Source:
    """A ``RewardSource`` that answers ``READ`` (or raises what it is told to), counting its reads."""

    def __init__(self) -> None:
        self.reads = 0
        self.fail: Exception | None = None
        self.part_fails: Exception | None = None
        self.earned: dict[str, int] | None = {A: 1_234_567}

    def read(self, markets: Sequence[MarketInfo], day: str, parts: Parts) -> RewardRead:
        self.reads += 1
        assert [m.market for m in markets] == [A] and day == "2027-01-15"
        if self.fail is not None:
            raise self.fail
        if self.part_fails is not None:
            parts.failed(EARNINGS, self.part_fails)
            return RewardRead(markets={A: READ})
        parts.ok(EARNINGS)
        return RewardRead(markets={A: READ}, earned_usdc6=self.earned)


def test_the_figures_count_scoring_orders_by_number_and_size_and_estimate_our_share_of_the_pool():
    local = market_rewards(REWARDED, READ, T0, None)
    venue = market_rewards(REWARDED, msgspec.structs.replace(READ, scoring={"o1": False, "o2": True}), T0, 5)

    q_ours, q_total, _ = book_scores([o for _, o in OURS], READ.bids, READ.asks, REWARDED.reward_params())
    assert (local.orders, local.scoring_orders, local.qty, local.scoring_qty) == (
        2,
        1,
        40 * SHARE,
        30 * SHARE,
    )
    assert local.scoring_by == "local" and local.earned_today_usdc6 is None
    assert local.share_ppm == int(q_ours / q_total * 1_000_000) > 0
    assert (
        local.est_daily_usdc6 == int(q_ours / q_total * 10_000_000) and local.daily_pool_usdc6 == 10_000_000
    )
    # The venue's answer wins over the local rule: it is what the venue pays by.
    assert (venue.scoring_orders, venue.scoring_qty, venue.scoring_by) == (1, 10 * SHARE, "venue")
    assert venue.earned_today_usdc6 == 5 and venue.est_daily_usdc6 == local.est_daily_usdc6


def test_a_round_tracks_the_rewarded_markets_only():
    tracker = RewardTracker([REWARDED, PLAIN], Source(), Clock(), 60.0)

    assert tracker.snapshot() == {} and tracker.check()
    got = tracker.snapshot()
    assert list(got) == [A] and got[A].earned_today_usdc6 == 1_234_567 and got[A].ts_ns == T0
    assert RewardTracker([PLAIN], Source(), Clock(), 60.0).markets == []


def test_a_failure_is_logged_once_never_raised_and_its_recovery_once(caplog):
    source, clock = Source(), Clock()
    tracker = RewardTracker([REWARDED], source, clock, 60.0)
    source.fail = RequestRejected("500 from the venue", 500)
    caplog.set_level(logging.INFO, logger="polymm.rewards")

    results = [tracker.check() for _ in range(3)]
    source.fail = None
    results += [tracker.check(), tracker.check()]

    assert results == [False, False, False, True, True]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "reading orders and books failed" in warnings[0].getMessage()
    assert "trading goes on" in warnings[0].getMessage()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "reward tracking: reading orders and books works again"
    ]


def test_an_optional_part_that_fails_leaves_the_rest_and_is_named_once(caplog):
    source = Source()
    source.part_fails = RequestRejected("404", 404)
    tracker = RewardTracker([REWARDED], source, Clock(), 60.0)
    caplog.set_level(logging.INFO, logger="polymm.rewards")

    assert tracker.check() and tracker.check()
    assert tracker.snapshot()[A].earned_today_usdc6 is None and tracker.snapshot()[A].orders == 2
    source.part_fails = None
    assert tracker.check() and tracker.check()

    assert tracker.snapshot()[A].earned_today_usdc6 == 1_234_567
    assert [r.getMessage() for r in caplog.records] == [
        "reward tracking: earnings (GET /rewards/user) failed (RequestRejected: 404); trading goes on, "
        "retried each round",
        "reward tracking: earnings (GET /rewards/user) works again",
    ]


def test_a_429_waits_its_retry_after_and_a_gateway_holding_orders_skips_the_round():
    source, clock = Source(), Clock()
    held = [False]
    tracker = RewardTracker([REWARDED], source, clock, 60.0, held=lambda: held[0])
    source.fail = RateLimited("429 Too Many Requests", 429, retry_after_s=300.0)

    assert not tracker.check()
    source.fail = None
    clock.t += 299 * NS_PER_S
    assert not tracker.check() and source.reads == 1  # not asked again before the Retry-After
    clock.t += NS_PER_S
    assert tracker.check() and source.reads == 2
    held[0] = True
    assert not tracker.check() and source.reads == 2  # the gateway holds new orders for a 429


def test_no_thread_without_an_interval_or_a_rewarded_market():
    for tracker in (
        RewardTracker([REWARDED], Source(), Clock(), 0.0),
        RewardTracker([PLAIN], Source(), Clock(), 60.0),
    ):
        tracker.start()
        assert tracker._thread is None


# --- the paper source: a real paper venue ---------------------------------------------------------


def test_paper_tracking_scores_our_paper_orders_locally_against_the_paper_book():
    venue = PaperVenue.start([REWARDED], lambda m, msg: None, Clock())
    try:
        venue.tell(
            BookSnapshot(
                market=A,
                outcome=YES,
                ts_ns=T0,
                bids=((4_800, 100 * SHARE),),
                asks=((5_200, 100 * SHARE),),
                tick_px=100,
                min_qty=5 * SHARE,
            )
        )
        places = tuple(
            Place(market=A, client_id=cid, outcome=o, side=s, px=px, qty=q, post_only=True)
            for cid, (o, s, px, q) in OURS
        )
        venue.tell(Submit(market=A, commands=places))
        tracker = RewardTracker([REWARDED], PaperRewardSource(venue), Clock(), 60.0)
        assert tracker.check()
    finally:
        venue.stop()

    got = tracker.snapshot()[A]
    assert msgspec.to_builtins(got) == msgspec.to_builtins(market_rewards(REWARDED, READ, T0, None))
    assert (got.scoring_orders, got.orders, got.scoring_by) == (1, 2, "local")


# --- the live source through the official client, against the emulator ------------------------------


@pytest.fixture
def emu() -> Iterator[Any]:
    pytest.importorskip("polymarket", reason="polymarket-client is not installed")
    from emulator import Emulator, ManualClock  # noqa: PLC0415
    from tests.emulator.test_rewards import rewarded_scenario  # noqa: PLC0415

    with Emulator(rewarded_scenario(), port=0, clock=ManualClock()) as e:
        yield e


def test_live_tracking_reads_the_venues_scoring_books_and_earnings(emu):
    from adapters.polymarket.rewards import VenueRewards  # noqa: PLC0415
    from emulator.rewards import day_of  # noqa: PLC0415
    from tests.emulator.conftest import V1_MARKET, ids  # noqa: PLC0415
    from tests.emulator.test_rewards import MIN_QTY, V_PX, _client, _minutes, _post  # noqa: PLC0415

    m = ids(emu, V1_MARKET)
    info = MarketInfo(
        market=m["market"],
        yes_token=m["yes_token"],
        no_token=m["no_token"],
        rewards_max_spread_px=V_PX,
        rewards_min_qty=MIN_QTY,
        rewards_daily_usdc6=144_000_000,
    )
    sdk = _client(emu)
    try:
        ours = {
            _post(sdk, m["yes_token"], "0.49", "40", "BUY"): (YES, BUY, 4_900, 40 * SHARE),
            _post(sdk, m["no_token"], "0.5", "30", "BUY"): (NO, BUY, 5_000, 30 * SHARE),
            _post(sdk, m["yes_token"], "0.51", "10", "SELL"): (YES, SELL, 5_100, 10 * SHARE),
        }
        _minutes(emu, 2)
        venue = VenueRewards(sdk, [info])
        resting = venue.resting()
        books = venue.books([info])
        day = day_of(emu.clock.now_ns())
        earned = venue.earnings(day)
        parts = Recorder()
        read = LiveRewardSource(venue).read([info], day, parts)
        assert parts.seen == [("ok", SCORING), ("ok", EARNINGS)]
    finally:
        sdk.close()

    assert {oid: o for oid, _, o in resting} == ours
    # The venue's book holds ours; the source takes them out: the seed's book is what competes.
    assert books[info.market][0][:1] == ((4_900, 40 * SHARE),)
    got = read.markets[info.market]
    assert (got.bids, got.asks) == (
        ((4_800, 100 * SHARE), (4_700, 100 * SHARE)),
        ((5_200, 100 * SHARE), (5_300, 100 * SHARE)),
    )
    assert earned[info.market] == read.earned_usdc6[info.market] > 0  # type: ignore[index]
    assert earned[info.market] == int(sum(emu.venue.rewards.earned.values()))
    # The venue's scoring is the simulator's rule on the same book (one competing maker: the seed's).
    orders = [o for _, o in got.orders]
    _, _, mid2 = book_scores(orders, got.bids, got.asks, info.reward_params())
    assert got.scoring == dict(
        zip([i for i, _ in got.orders], order_scoring(orders, mid2, info.reward_params()), strict=True)
    )
    figures = market_rewards(info, got, 0, read.earned_usdc6[info.market])  # type: ignore[index]
    assert (figures.scoring_orders, figures.orders, figures.scoring_by) == (2, 3, "venue")
    assert Decimal(figures.earned_today_usdc6) > 0  # type: ignore[arg-type]


# --- where people read it ---------------------------------------------------------------------------


FIGURES = MarketRewards(
    market=A,
    ts_ns=T0,
    orders=3,
    scoring_orders=2,
    qty=90 * SHARE,
    scoring_qty=60 * SHARE,
    share_ppm=412_345,
    est_daily_usdc6=4_123_450,
    daily_pool_usdc6=10_000_000,
    scoring_by="venue",
    earned_today_usdc6=350_000,
)


def test_the_reward_text_gives_every_number_with_its_unit():
    assert reward_text(msgspec.to_builtins(FIGURES)) == (
        "rewards 2/3 orders scoring (60 of 90 shares, venue), share 41.2%, est 4.12 USDC/day of a "
        "10.00 USDC pool, earned 0.35 USDC today"
    )
    paper = msgspec.structs.replace(FIGURES, scoring_by="local", earned_today_usdc6=None)
    assert reward_text(msgspec.to_builtins(paper)).endswith("10.00 USDC pool")


def test_the_status_line_of_a_tracked_market_ends_with_its_rewards():
    lines = status_lines([status(market=A), status(market=B)], T0, {A: FIGURES})

    assert lines[1].endswith("  " + reward_text(msgspec.to_builtins(FIGURES)))
    assert "rewards" not in lines[2]


def test_the_metrics_have_the_reward_series():
    monitor = RiskMonitor(risk_limits(Config()), [A])
    collector = EngineCollector(lambda: monitor.view(T0), LatencyHistogram(), rewards=lambda: {A: FIGURES})
    families: dict[str, Metric] = {f.name: f for f in collector.collect()}

    def value(name: str, **labels: str) -> float:
        return next(
            s.value for s in families[name].samples if all(s.labels[k] == v for k, v in labels.items())
        )

    assert value("polymm_reward_orders", market=A, scoring="yes") == 2
    assert value("polymm_reward_orders", market=A, scoring="no") == 1
    assert value("polymm_reward_scoring_ratio", market=A, by="count") == pytest.approx(2 / 3)
    assert value("polymm_reward_scoring_ratio", market=A, by="size") == pytest.approx(2 / 3)
    assert value("polymm_reward_estimate_usdc_per_day", market=A) == pytest.approx(4.12345)
    assert value("polymm_reward_earned_today_usdc", market=A) == pytest.approx(0.35)
    assert "polymm_reward_orders" not in {
        f.name for f in EngineCollector(lambda: monitor.view(T0), LatencyHistogram()).collect()
    }


def test_polymm_status_shows_a_tracked_markets_rewards_under_it(tmp_path):
    from actors.risk import RiskActor  # noqa: PLC0415
    from app.commands.control import render  # noqa: PLC0415
    from app.control import Operations  # noqa: PLC0415

    monitor = RiskMonitor(risk_limits(Config()), [A, B])
    monitor.start_gates()
    risk = RiskActor.start(monitor, lambda m, g: None, Clock())
    try:
        ops = Operations(
            markets=[REWARDED, PLAIN],
            risk=risk,
            statuses=lambda: {A: status(market=A), B: status(market=B)},
            clock=Clock(),
            mode="live",
            run_dir=tmp_path,
            rewards=lambda: {A: FIGURES},
        )
        reply = ops.status()
    finally:
        risk.stop()

    rows = {m["market"]: m for m in reply["markets"]}
    assert rows[A]["rewards"] == msgspec.to_builtins(FIGURES) and rows[B]["rewards"] is None
    text = render("status", reply, tmp_path).splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith(f"  {A[:12]}"))
    assert text[at + 1] == "      " + reward_text(rows[A]["rewards"])
    assert sum("rewards" in line for line in text) == 1
