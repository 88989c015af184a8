"""Liquidity-rewards accrual in the simulator (sim/rewards.py, issue #15 deliverable 3)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.commands.sim import simulate
from core.eventlog import BufferSink
from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot, Place
from core.units import NEVER_NS, NS_PER_S, QTY_ONE, USDC6_ONE, Outcome, Side
from research.runlog import log_records
from sim.rewards import SAMPLE_PERIOD_NS, RewardAccrual, book_scores, sample_second, sample_ts
from sim.scenario import RewardTerms, Scenario
from venue.exchange import SimExchange

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "configs" / "scenarios"
MM = str(ROOT / "configs" / "market_maker.yaml")
RM = str(ROOT / "configs" / "rewards_maker.yaml")
T0 = 1_783_641_600 * NS_PER_S  # a whole minute

# v = 3 cents, min 10 shares, 1440 USDC a day: 1 USDC a minute.
INFO = MarketInfo(
    market="m",
    yes_token="y",
    no_token="n",
    tick_px=100,
    min_qty=5 * QTY_ONE,
    rewards_max_spread_px=300,
    rewards_min_qty=10 * QTY_ONE,
    rewards_daily_usdc6=1440 * USDC6_ONE,
)


@given(st.integers(0, 2**32), st.text(min_size=1, max_size=8), st.integers(0, 10**8))
def test_each_minute_is_sampled_once_at_a_seeded_second_inside_it(seed, market, minute):
    s = sample_second(seed, market, minute)
    assert 0 <= s < 60
    assert sample_second(seed, market, minute) == s  # deterministic
    ts = sample_ts(seed, market, minute)
    assert ts // SAMPLE_PERIOD_NS == minute and ts % NS_PER_S == 0


class _Ex:
    # Just what RewardAccrual.until reads besides book_scores: an empty venue with no program.
    def __init__(self) -> None:
        self.resolved = False
        self.info = INFO
        self.orders: dict[str, object] = {}


@given(st.integers(0, 1000), st.integers(0, 59 * NS_PER_S), st.integers(1, 30))
def test_a_run_takes_one_sample_per_minute_within_its_span(seed, offset, minutes):
    first = T0 + offset
    last = first + minutes * SAMPLE_PERIOD_NS
    acc = RewardAccrual(INFO, seed, first, last)
    times = []
    while acc.next_ts < NEVER_NS:
        times.append(acc.next_ts)
        acc._advance()
    assert all(first <= t <= last for t in times)
    by_minute = [t // SAMPLE_PERIOD_NS for t in times]
    assert by_minute == sorted(set(by_minute))  # one per minute, in order
    # Every minute wholly inside the span is sampled; the partial first and last ones may be.
    assert set(range(first // SAMPLE_PERIOD_NS + 1, last // SAMPLE_PERIOD_NS)) <= set(by_minute)
    assert times == [sample_ts(seed, "m", m) for m in by_minute]
    assert (
        RewardAccrual(msgspec.structs.replace(INFO, rewards_max_spread_px=0), seed, first, last).next_ts
        == NEVER_NS
    )


def _venue(*orders: tuple[Outcome, Side, int], ask: tuple[int, int] = (5_200, 100 * QTY_ONE)) -> SimExchange:
    ex = SimExchange(INFO)
    ex.on_snapshot(
        BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=T0,
            bids=((4_800, 100 * QTY_ONE),),
            asks=(ask,),
        )
    )
    for k, (outcome, side, px) in enumerate(orders):
        out = ex.place(
            Place(market="m", client_id=f"m-{k}", outcome=outcome, side=side, px=px, qty=100 * QTY_ONE), T0
        )
        assert isinstance(out[0], Accepted)
    return ex


def test_two_sided_score_and_share_by_hand():
    # Ours: bid 0.49 and BUY NO 0.49 (a YES ask at 0.51): the adjusted mid is 0.50, each scores
    # ((3 - 1) / 3)^2 * 100 = 400/9 shares, Q_min 400/9. The book's 0.48 / 0.52 levels, one maker:
    # ((3 - 2) / 3)^2 * 100 = 100/9 a side, Q_min 100/9. Our share 400/500 of 1 USDC a minute.
    ex = _venue((Outcome.YES, Side.BUY, 4_900), (Outcome.NO, Side.BUY, 4_900))
    ours, total, mid2 = book_scores(ex)
    assert mid2 == 10_000
    assert ours == Fraction(400, 9) * QTY_ONE
    assert total == Fraction(500, 9) * QTY_ONE
    acc = RewardAccrual(INFO, 1, T0, T0 + SAMPLE_PERIOD_NS)
    sink = BufferSink()
    acc.sample(T0, ex, sink)
    assert acc.exact == 800_000 and acc.accrued_usdc6 == 800_000
    rec = msgspec.json.decode(sink.lines[0])
    assert rec == {
        "kind": "reward",
        "ts_ns": T0,
        "market": "m",
        "score_qty": 44_444_444,
        "score_total_qty": 55_555_555,
        "accrued_usdc6": 800_000,
        "scoring": True,
    }


def test_one_sided_scores_a_third_and_accrues_exactly():
    # Ours: the bid 0.49 alone; the book: 100 at 0.48, 50 at 0.51; adjusted mid 0.50. Ours:
    # (400/9) / 3 = 400/27. The book's: Q_one 100/9, Q_two ((3 - 1) / 3)^2 * 50 = 200/9, Q_min
    # max(100/9, 200/27) = 300/27. Our share: 400/700 = 4/7 of 1 USDC a sample.
    ex = _venue((Outcome.YES, Side.BUY, 4_900), ask=(5_100, 50 * QTY_ONE))
    ours, total, mid2 = book_scores(ex)
    assert (ours, total, mid2) == (Fraction(400, 27) * QTY_ONE, Fraction(700, 27) * QTY_ONE, 10_000)
    acc = RewardAccrual(INFO, 1, T0, T0 + 5 * SAMPLE_PERIOD_NS)
    sink = BufferSink()
    acc.sample(T0, ex, sink)
    acc.sample(T0 + SAMPLE_PERIOD_NS, ex, sink)
    assert acc.exact == Fraction(2 * 4 * USDC6_ONE, 7)
    # Exact: 1,142,857 (floored once), not twice 571,428.
    assert acc.accrued_usdc6 == 1_142_857
    assert (acc.samples, acc.scored) == (2, 2)


def test_no_orders_or_out_of_band_orders_do_not_score():
    acc = RewardAccrual(INFO, 1, T0, T0 + SAMPLE_PERIOD_NS)
    sink = BufferSink()
    acc.sample(T0, _venue(), sink)
    acc.sample(T0, _venue((Outcome.YES, Side.BUY, 4_600)), sink)  # 4 cents from the mid, v = 3
    assert (acc.samples, acc.scored, acc.exact) == (2, 0, 0)
    assert all(b'"scoring":false' in line for line in sink.lines)


def test_scenario_reward_terms_reach_the_markets():
    sc = msgspec.yaml.decode((SCENARIOS / "rewards.yaml").read_bytes(), type=Scenario)
    assert sc.rewards == RewardTerms(max_spread_cents=3.5, min_shares=20, daily_usdc=100)
    info = sc.rewards.apply(INFO)
    assert (info.rewards_max_spread_px, info.rewards_min_qty, info.rewards_daily_usdc6) == (
        350,
        20 * QTY_ONE,
        100 * USDC6_ONE,
    )


def _run(tmp_path: Path, config: str, engine: str, tag: str) -> dict:
    out = tmp_path / tag
    simulate(config, SCENARIOS / "rewards.yaml", None, engine, out, progress=False)
    return msgspec.json.decode((out / "summary.json").read_bytes())


@pytest.mark.slow
def test_rewards_scenario_reports_rewards_rebates_and_scoring_alike_in_both_engines(tmp_path):
    inline = _run(tmp_path, MM, "inline", "inline")
    actors = _run(tmp_path, MM, "actors", "actors")
    assert inline["digest"] == actors["digest"]
    pnl = inline["pnl_usdc"]
    assert pnl["rewards"] > 0 and pnl["rebates"] > 0
    parts = sum(
        pnl[k] for k in ("spread_capture", "inventory_mtm", "fees", "rebates", "rewards", "resolution")
    )
    assert abs(pnl["total"] - parts) < 1e-5
    r = inline["rewards"]
    assert r["samples"] == 4 * 60 and 0 < r["scored"] <= r["samples"]
    assert r["scoring_fraction"] == round(r["scored"] / r["samples"], 6)
    assert all(m["rewards"]["samples"] == 60 for m in inline["per_market"])
    for a, b in zip(inline["per_market"], actors["per_market"], strict=True):
        assert a["rewards"] == b["rewards"] and a["pnl_usdc"] == b["pnl_usdc"]


@pytest.mark.slow
def test_rewards_aware_quoting_scores_more_minutes_and_stays_maker_only(tmp_path):
    off = _run(tmp_path, MM, "inline", "off")
    on = _run(tmp_path, RM, "inline", "on")
    assert on["rewards"]["scoring_fraction"] > off["rewards"]["scoring_fraction"]
    assert on["fills"]["taker"] == 0  # maker-only: no order of ours ever took liquidity
    # The event log shows every rule held: each decision's worst case within its bound and the bound
    # within the per-market cap; every order post-only.
    decisions = places = 0
    for rec in log_records(tmp_path / "on"):
        if rec["kind"] == "decision":
            r = rec["reasons"]
            decisions += 1
            assert max(r["loss_if_yes_usdc6"], r["loss_if_no_usdc6"]) <= r["bound_usdc6"] <= r["cap_usdc6"]
        elif rec["kind"] == "place":
            places += 1
            assert rec["post_only"] is True
    assert decisions and places


@pytest.mark.slow
def test_the_report_splits_out_rewards_as_the_summary_does(tmp_path):
    from research.analysis import analyse, consistency  # noqa: PLC0415
    from research.report import write_report  # noqa: PLC0415
    from research.runlog import read_run  # noqa: PLC0415

    s = _run(tmp_path, MM, "inline", "run")
    run = read_run(tmp_path / "run")
    assert sum(len(m.reward_ts) for m in run.markets.values()) == s["rewards"]["samples"]
    gaps = consistency(analyse(run))
    assert gaps["rewards"] < 1e-6 and gaps["total"] < 1e-5
    html = write_report(tmp_path / "run").read_text()
    assert "rewards <b" in html and "reward samples scored" in html
