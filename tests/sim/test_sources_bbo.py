"""BBO polls: the tick inferred on every venue grid, flat books refused, a taker rate from the data."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.units import NS_PER_S, PX_ONE, TICKS_PX
from sim.sources import BboCsvSource, SourceConfig, load_tapes
from sim.sources.bbo_csv import Poll, TouchMoves, infer_tick, touch_moves
from sim.tape import OP_BUY, OP_SELL

HEADER = "ts,slug,category,bid,ask,mid,spread,volume24hr,segment\n"


def write_csv(path: Path, markets: dict[str, list[tuple[str, str]]], gap_s: int = 120) -> Path:
    """A BBO CSV: each market's (bid, ask) strings polled every ``gap_s`` from 20:00:00."""
    lines = []
    start = datetime(2026, 7, 10, 20, tzinfo=UTC)
    for slug, quotes in markets.items():
        for k, (bid, ask) in enumerate(quotes):
            ts = (start + timedelta(seconds=k * gap_s)).strftime("%Y-%m-%dT%H:%M:%S")
            lines.append(f"{ts},{slug},sports,{bid},{ask},0.5,0.01,1000,1")
    path.write_text(HEADER + "\n".join(lines) + "\n")
    return path


# --- tick inference ------------------------------------------------------------------------------


@given(
    tick=st.sampled_from(TICKS_PX),
    data=st.data(),
)
def test_inferred_tick_is_a_grid_the_real_tick_allows_and_the_coarsest_that_fits(tick, data):
    n = data.draw(st.integers(1, 20))
    steps = st.integers(1, PX_ONE // tick - 2)
    polls = []
    for k in range(n):
        b = data.draw(steps) * tick
        a = b + data.draw(st.integers(1, (PX_ONE - b) // tick - 1)) * tick
        polls.append(Poll(k, b, a))

    got = infer_tick(polls)

    prices = [p for q in polls for p in (q.bid_px, q.ask_px)]
    assert got in TICKS_PX
    assert all(p % got == 0 for p in prices)
    # A sub-grid of the real one: every price the simulation may use is one the venue accepts.
    assert got % tick == 0
    # And the coarsest venue tick every price fits.
    assert not any(t > got and all(p % t == 0 for p in prices) for t in TICKS_PX)


@pytest.mark.parametrize(
    ("quotes", "tick"),
    [
        ([("0.445", "0.45"), ("0.45", "0.455"), ("0.44", "0.45")], 50),
        ([("0.4475", "0.45"), ("0.4450", "0.4525"), ("0.44", "0.45")], 25),
        ([("0.44", "0.45"), ("0.45", "0.46")], 100),
        ([("0.441", "0.45"), ("0.45", "0.46")], 10),
        ([("0.4", "0.5"), ("0.5", "0.6")], 1000),
        ([("0.4401", "0.45"), ("0.45", "0.46")], 1),
    ],
)
def test_bbo_source_infers_each_venue_tick(tmp_path, quotes, tick):
    write_csv(tmp_path / "x.csv", {"m": quotes * 4})

    (tape,) = load_tapes(BboCsvSource(path="x.csv", slugs=("m",)), 1, tmp_path)

    assert tape.info.tick_px == tick
    assert all(p % tick == 0 for p in tape.px)
    assert tape.meta["tick_px"] == tick


def test_bbo_config_tick_is_exactly_a_venue_tick_or_zero():
    for tick in (0, *TICKS_PX):
        assert (
            msgspec.convert({"type": "bbo_csv", "path": "a", "tick_px": tick}, SourceConfig).tick_px == tick
        )
    for bad in (2, 5, 20):
        with pytest.raises(msgspec.ValidationError, match="tick_px"):
            msgspec.convert({"type": "bbo_csv", "path": "a", "tick_px": bad}, SourceConfig)


# --- selection -----------------------------------------------------------------------------------


def test_auto_selection_refuses_a_book_that_never_moves_and_says_why(tmp_path, caplog):
    moving = [("0.44", "0.45"), ("0.45", "0.46")] * 10
    flat = [("0.44", "0.45")] * 20
    write_csv(tmp_path / "x.csv", {"flat": flat, "moving": moving})

    with caplog.at_level(logging.INFO, logger="sim.sources.bbo_csv"):
        tapes = load_tapes(BboCsvSource(path="x.csv"), 1, tmp_path)

    assert [t.info.market for t in tapes] == ["moving"]
    reason = "book never moves (0 touch moves in 19 poll intervals, min_touch_moves 1)"
    assert tapes[0].source["refused"] == [{"market": "flat", "reason": reason}]
    assert tapes[0].source["refused_by_reason"] == {"book never moves": 1}
    assert f"flat refused: {reason}" in caplog.text


def test_auto_selection_of_only_flat_books_is_an_error(tmp_path):
    write_csv(tmp_path / "x.csv", {"flat": [("0.44", "0.45")] * 20})

    with pytest.raises(ValueError, match=r"no usable market.*min_touch_moves"):
        load_tapes(BboCsvSource(path="x.csv"), 1, tmp_path)


def test_named_flat_market_is_replayed_without_synthetic_takers(tmp_path):
    write_csv(tmp_path / "x.csv", {"flat": [("0.44", "0.45")] * 20})

    (tape,) = load_tapes(BboCsvSource(path="x.csv", slugs=("flat",)), 1, tmp_path)

    assert not any(op in (OP_BUY, OP_SELL) for op in tape.op)
    assert tape.meta["synthetic_flow"]["takers_per_hour"] == 0


# --- synthetic taker rate from the data ----------------------------------------------------------


def test_touch_moves_counts_moves_and_leaves_long_gaps_out_of_the_rate():
    polls = [Poll(0, 100, 200), Poll(60, 100, 200), Poll(120, 110, 200), Poll(10_000, 120, 200)]

    got = touch_moves(polls, max_gap_ns=1_000)

    assert got == TouchMoves(intervals_all=3, moves_all=2, intervals=2, moves=1, span_ns=120)


@given(
    intervals=st.integers(1, 500),
    data=st.data(),
    gap_s=st.floats(1.0, 1000.0),
)
def test_touch_move_rate_is_the_poisson_estimate(intervals, data, gap_s):
    moves = data.draw(st.integers(0, intervals))
    span = round(intervals * gap_s * NS_PER_S)
    tm = TouchMoves(intervals, moves, intervals, moves, span)

    rate = tm.rate_per_s()

    g = span / intervals / NS_PER_S
    if moves == 0:
        assert rate == 0
    elif moves < intervals:
        # Poisson: P(no move in an interval) = exp(-rate * g) = the share of intervals without one.
        assert math.isclose(math.exp(-rate * g), 1 - moves / intervals, rel_tol=1e-9)
    else:
        assert math.isclose(math.exp(-rate * g), 0.5 / intervals, rel_tol=1e-9)


def test_taker_count_follows_the_touch_move_rate_and_is_named_synthetic(tmp_path):
    # Polls 120 s apart for ~33 h, the touch moving in half of the intervals: ln 2 / 120 s = 20.8/h.
    quotes = [("0.44", "0.45"), ("0.44", "0.45"), ("0.45", "0.46"), ("0.45", "0.46")] * 250
    write_csv(tmp_path / "x.csv", {"m": quotes})
    spec = BboCsvSource(path="x.csv", slugs=("m",), takers_per_touch_move=2.0, informed_fraction=0.0)

    (tape,) = load_tapes(spec, 1, tmp_path)

    expected_per_h = 2.0 * math.log(2) / 120 * 3600
    flow = tape.meta["synthetic_flow"]
    assert flow["takers_per_hour"] == pytest.approx(expected_per_h, abs=0.6)  # 499 of 999 moved
    assert "2 per touch move" in flow["basis"] and "499 of 999 poll intervals" in flow["basis"]
    hours = (tape.ts[-1] - tape.ts[0]) / NS_PER_S / 3600
    takers = sum(op in (OP_BUY, OP_SELL) for op in tape.op)
    # Poisson count, mean ~1385: within 5 standard deviations.
    mean = expected_per_h * hours
    assert abs(takers - mean) < 5 * math.sqrt(mean)
    assert "synthetic" in tape.source and "taker flow" in str(tape.source["synthetic"])


def test_configured_taker_rate_is_used_and_said_to_be_configured(tmp_path):
    write_csv(tmp_path / "x.csv", {"m": [("0.44", "0.45"), ("0.45", "0.46")] * 10})

    (tape,) = load_tapes(BboCsvSource(path="x.csv", slugs=("m",), takers_per_s=0.5), 1, tmp_path)

    assert tape.meta["synthetic_flow"]["takers_per_hour"] == 1800
    assert tape.meta["synthetic_flow"]["basis"] == "configured (takers_per_s)"


def test_fee_and_rebate_rates_fill_market_info(tmp_path):
    write_csv(tmp_path / "x.csv", {"m": [("0.44", "0.45"), ("0.45", "0.46")] * 10})
    spec = BboCsvSource(path="x.csv", slugs=("m",), fee_rate=0.03, rebate_rate=0.15)

    (tape,) = load_tapes(spec, 1, tmp_path)

    assert (tape.info.fee_rate_ppm, tape.info.rebate_ppm) == (30_000, 150_000)
