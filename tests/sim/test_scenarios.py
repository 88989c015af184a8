"""Shipped scenarios end to end, and scenario keys: neg-risk events, fee and rebate rates, ticks."""

from __future__ import annotations

import csv
import gzip
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from app.commands.sim import simulate
from app.configfile import load_struct
from core.messages import BookSnapshot
from core.units import PX_ONE, TICKS_PX
from research.runlog import log_records
from sim.inputs import load_input_tapes
from sim.scenario import Scenario, WsReplaySource, scenario_tapes
from sim.sources import HbtNpzSource, SyntheticSource
from sim.summary import data_lines, pnl_line

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "configs" / "scenarios"
CONFIG = str(ROOT / "configs" / "market_maker.yaml")


def venue_tick_of(prices: list[str]) -> int:
    """The coarsest venue tick (Px) on which every price string lies, computed apart from the source."""
    values = [Decimal(p) for p in prices]
    for tick in TICKS_PX:
        step = Decimal(tick) / PX_ONE
        if all(v % step == 0 for v in values):
            return tick
    raise AssertionError("prices finer than 0.0001")


def test_bbo_replay_fills_are_all_on_each_markets_real_tick_grid(tmp_path):
    summary = simulate(CONFIG, SCENARIOS / "bbo_replay.yaml", None, "inline", tmp_path, progress=False)

    markets = [m["market"] for m in summary["per_market"]]
    prices: dict[str, list[str]] = {m: [] for m in markets}
    data = ROOT / "configs" / "data" / "bbo_polls_2026-07-10_liquid.csv.gz"
    with gzip.open(data, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["slug"] in prices and row["bid"] and row["ask"]:
                prices[row["slug"]] += [row["bid"], row["ask"]]
    ticks = {m: venue_tick_of(p) for m, p in prices.items()}
    events = log_records(tmp_path)
    fills = [e for e in events if e["kind"] == "fill"]
    # The books the venue applied: the input, re-read through its identity (input.json).
    tapes = load_input_tapes(tmp_path)
    assert tapes is not None
    books = {
        t.info.market: ev.tick_px for t in tapes for ev in t.specials.values() if isinstance(ev, BookSnapshot)
    }

    assert set(ticks.values()) == {50}  # the shipped markets trade on the 0.005 grid
    assert books == ticks
    assert fills
    off = [f for f in fills if f["px"] % ticks[f["market"]]]
    assert off == [], f"{len(off)} of {len(fills)} fills off the venue grid"
    # Every order rests on the grid too, so no fill could be off it (nor win a queue place no real
    # order could get).
    places = [e for e in events if e["kind"] == "place"]
    assert len(places) > 100
    assert [p for p in places if p["px"] % ticks[p["market"]]] == []


def test_bbo_replay_summary_names_its_synthetic_flow_and_its_rates(tmp_path):
    summary = simulate(CONFIG, SCENARIOS / "bbo_replay.yaml", None, "inline", tmp_path, progress=False)

    src = summary["source"]
    assert src["type"] == "bbo_csv"
    assert "taker flow" in src["synthetic"] and "per touch move" in src["synthetic"]
    for m in summary["per_market"]:
        flow = m["data"]["synthetic_flow"]
        assert 0 < flow["takers_per_hour"] < 100
        assert "per touch move" in flow["basis"]
    written = msgspec.json.decode((tmp_path / "summary.json").read_bytes())
    assert written["source"] == src
    assert written["units"]["px"]["scale"] == "0.0001"
    parts = {"total", "spread_capture", "inventory_mtm", "fees", "rebates", "rewards", "resolution"}
    assert set(written["pnl_usdc"]) == parts
    text = "\n".join(data_lines(summary))
    assert "synthetic: depth behind the touch, and taker flow" in text
    for m in summary["per_market"]:
        assert f"{m['market']}: tick 0.005 (inferred from" in text
    assert "synthetic takers" in text and "per touch move" in text


def test_pnl_line_shows_rebates_and_rewards_apart_and_adds_up():
    pnl = {
        "total": 10.75,
        "spread_capture": 8.0,
        "inventory_mtm": -1.0,
        "fees": -0.25,
        "rebates": 0.75,
        "rewards": 0.25,
        "resolution": 3.0,
    }

    assert pnl_line(pnl) == (
        "+10.75 USDC = spread +8.00 + inventory -1.00 + fees -0.25 + rebates +0.75 + rewards +0.25 "
        "+ resolution +3.00"
    )


def test_data_lines_list_refused_markets_with_their_reason():
    refused = [{"market": "flat", "reason": "book never moves"}]
    s = {"source": {"real": "r", "synthetic": "s", "refused": refused}}

    assert data_lines(s) == [
        "data     real: r",
        "         synthetic: s",
        "         refused flat: book never moves",
    ]


def test_default_scenario_keeps_its_fees_and_gains_the_rebate_of_its_schedule():
    sc = load_struct(SCENARIOS / "default.yaml", Scenario)

    assert isinstance(sc.source, SyntheticSource)
    assert (sc.source.fee_rate, sc.source.rebate_rate) == (0.04, 0.25)


def scenario(**source: object) -> Scenario:
    return msgspec.convert({"source": source}, Scenario)


def test_neg_risk_events_mark_the_markets_of_one_event():
    sc = msgspec.convert(
        {
            "source": {"type": "synthetic", "markets": 3, "duration_s": 5},
            "neg_risk_events": {"ev-a": ["syn-00", "syn-02"]},
        },
        Scenario,
    )

    tapes = scenario_tapes(sc, ROOT)

    marks = [(t.info.neg_risk, t.info.neg_risk_market_id) for t in tapes]
    assert marks == [(True, "ev-a"), (False, ""), (True, "ev-a")]


def test_neg_risk_events_must_name_markets_of_the_source_once():
    unknown = msgspec.convert(
        {
            "source": {"type": "synthetic", "markets": 2, "duration_s": 5},
            "neg_risk_events": {"e": ["syn-09"]},
        },
        Scenario,
    )
    with pytest.raises(ValueError, match=r"neg_risk_events\.e: no market 'syn-09'"):
        scenario_tapes(unknown, ROOT)
    with pytest.raises(msgspec.ValidationError, match="'syn-00' is in both 'a' and 'b'"):
        msgspec.convert(
            {"source": {"type": "synthetic"}, "neg_risk_events": {"a": ["syn-00"], "b": ["syn-00"]}}, Scenario
        )


def test_settings_carry_the_global_and_the_event_budget():
    sc = scenario(type="synthetic")

    got = sc.settings(1_000_000_000, 60_000_000)

    assert (got.global_ev_cap_usdc6, got.event_cap_usdc6) == (1_000_000_000, 60_000_000)
    assert sc.settings(5).event_cap_usdc6 is None


def test_each_source_fills_fee_and_rebate_rates_into_market_info(tmp_path):
    from sim.sources.hbt_npz import write_npz  # noqa: PLC0415

    syn = SyntheticSource(markets=1, duration_s=5, fee_rate=0.04, rebate_rate=0.25)
    (tape,) = scenario_tapes(Scenario(source=syn), ROOT)
    assert (tape.info.fee_rate_ppm, tape.info.rebate_ppm) == (40_000, 250_000)

    write_npz(tmp_path / "a.npz", tape, 0.01)
    hbt = HbtNpzSource(path="a.npz", fee_rate=0.07, rebate_rate=0.2)
    (back,) = scenario_tapes(Scenario(source=hbt), tmp_path)
    assert (back.info.fee_rate_ppm, back.info.rebate_ppm) == (70_000, 200_000)

    stream = "../../tests/fixtures/polymarket/stream_book_price_change_burst_2026-09.json"
    ws = WsReplaySource(path=stream, tick_px=10, fee_rate=0.03, rebate_rate=0.15)
    (rec,) = scenario_tapes(Scenario(source=ws), SCENARIOS)
    assert (rec.info.fee_rate_ppm, rec.info.rebate_ppm) == (30_000, 150_000)


@pytest.mark.parametrize("source", ["synthetic", "ws_replay"])
def test_scenario_tick_is_exactly_a_venue_tick(source):
    extra = {"path": "x"} if source == "ws_replay" else {}
    for tick in TICKS_PX:
        got = msgspec.convert({"source": {"type": source, "tick_px": tick, **extra}}, Scenario)
        assert got.source.tick_px == tick
    for bad in (2, 5, 20, 500):
        with pytest.raises(msgspec.ValidationError, match="tick_px"):
            msgspec.convert({"source": {"type": source, "tick_px": bad, **extra}}, Scenario)
