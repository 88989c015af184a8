"""Gamma ``/markets`` for the emulator's markets, ``refresh-markets`` against it, scenarios and the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import msgspec
import pytest

from adapters.gamma import GammaClient, market_query
from adapters.market_cache import load_market_cache
from app.cli import main
from app.commands import emulator as emulator_cmd
from app.configfile import ConfigFileError, load_config, load_struct
from core.selection import select_candidates
from core.units import QTY_ONE
from emulator import Emulator
from emulator.orders import OrderError, SignedOrder, order_to_px_qty
from emulator.scenario import (
    SCENARIO_DIR,
    FlowConfig,
    InitialBook,
    MarketConfig,
    Scenario,
    load_scenario,
    neg_risk_market_id,
)
from tests.emulator.conftest import NEGRISK, QUIET, ids

REPO = Path(__file__).resolve().parents[2]


def test_gamma_markets_parse_into_tradable_records(emu: Emulator):
    sel = load_config(REPO / "configs/market_maker.yaml").market_selection
    now_ns = emu.clock.now_ns()

    with GammaClient(emu.gamma_url, retries=0) as gamma:
        fetched = gamma.fetch_markets(market_query(sel, now_ns=now_ns), limit=50)
    raw = httpx.get(f"{emu.gamma_url}/markets").json()

    assert fetched.skipped == ()
    assert len(fetched.records) == 3
    assert isinstance(raw[0]["clobTokenIds"], str)  # JSON-encoded, as Gamma serves it
    assert isinstance(raw[0]["outcomes"], str)
    assert isinstance(raw[0]["outcomePrices"], str)
    by_slug = {r.slug: r for r in fetched.records}
    q, n = ids(emu, QUIET), ids(emu, NEGRISK)
    assert by_slug[QUIET].token_ids == (q["yes_token"], q["no_token"])
    assert by_slug[QUIET].condition_id == q["market"]
    assert (by_slug[QUIET].best_bid_px, by_slug[QUIET].best_ask_px) == (4800, 5200)
    assert by_slug[QUIET].min_qty == 5 * QTY_ONE
    # Gamma's liquidity is the resting notional: 100 shares at 0.48, 0.47 (bids) and 0.52, 0.53 (asks).
    assert by_slug[QUIET].liquidity == pytest.approx(48 + 47 + 48 + 47)
    assert (by_slug[NEGRISK].condition_id, by_slug[NEGRISK].tick_px, by_slug[NEGRISK].neg_risk) == (
        n["market"],
        10,
        True,
    )
    assert by_slug["busy-market"].fee_rate_ppm == 40_000
    assert len(select_candidates(fetched.records, sel, now_ns=now_ns).selected) == 3
    assert httpx.get(f"{emu.gamma_url}/markets", params={"offset": "10"}).status_code == 422


def test_neg_risk_markets_carry_their_event_id_to_market_info():
    # Two markets of one neg-risk event, a neg-risk market on its own, and a plain one.
    event = "0x" + "5e" * 31 + "00"
    book = InitialBook(bids=((4800, 100 * QTY_ONE),), asks=((5200, 100 * QTY_ONE),))
    sc = Scenario(
        markets=tuple(
            MarketConfig(slug=slug, initial_book=book, neg_risk=nr, neg_risk_market_id=eid, **kw)
            for slug, nr, eid, kw in (
                ("candidate-a", True, event, {"tick_px": 10}),
                ("candidate-b", True, event, {"tick_px": 10}),
                ("lone-negrisk", True, "", {}),
                ("plain", False, "", {"fee_rate_ppm": 40_000, "maker_rebate_ppm": 250_000}),
            )
        ),
        flow=FlowConfig(enabled=False),
    )

    with Emulator(sc, port=0) as emu:
        with GammaClient(emu.gamma_url, retries=0) as gamma:
            fetched = gamma.fetch_markets({}, limit=50)
        cids = {m["slug"]: m["market"] for m in emu.venue.market_ids()}
        clob = {s: httpx.get(f"{emu.clob_url}/markets/{c}").json() for s, c in cids.items()}
        gamma_events = httpx.get(f"{emu.gamma_url}/events").json()

    infos = {r.slug: r.to_info() for r in fetched.records}
    lone = infos["lone-negrisk"].neg_risk_market_id
    assert [infos[s].neg_risk_market_id for s in ("candidate-a", "candidate-b", "plain")] == [
        event,
        event,
        "",
    ]
    assert lone.startswith("0x") and len(lone) == 66 and lone.endswith("00") and lone != event
    assert {s: c["neg_risk_market_id"] for s, c in clob.items()} == {
        s: i.neg_risk_market_id for s, i in infos.items()
    }
    assert (infos["plain"].fee_rate_ppm, infos["plain"].rebate_ppm) == (40_000, 250_000)
    # One Gamma event holds both candidates; each other market is an event of its own.
    by_event = {r.slug: r.event_id for r in fetched.records}
    assert by_event["candidate-a"] == by_event["candidate-b"] != by_event["lone-negrisk"]
    (shared,) = [e for e in gamma_events if len(e["markets"]) == 2]
    assert (shared["negRisk"], shared["negRiskMarketID"]) == (True, event)
    assert {m["slug"] for m in shared["markets"]} == {"candidate-a", "candidate-b"}
    assert len(gamma_events) == 3


def test_a_neg_risk_event_id_needs_a_neg_risk_market_and_dynamic_ticks_divide():
    with pytest.raises(ValueError, match="neg_risk_market_id: only a neg_risk market"):
        MarketConfig(slug="a", neg_risk_market_id="0x" + "00" * 32)
    with pytest.raises(
        ValueError, match=r"dynamic_tick_px: 25 is not a venue tick .* that divides tick_px 10"
    ):
        MarketConfig(slug="a", tick_px=10, dynamic_tick_px=25)
    with pytest.raises(ValueError, match="dynamic_tick_px: 30 is not a venue tick"):
        MarketConfig(slug="a", dynamic_tick_px=30)
    assert MarketConfig(slug="a", tick_px=100, dynamic_tick_px=25).dynamic_tick_px == 25


def test_refresh_markets_runs_against_the_emulator(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "markets.json"
    with Emulator("default", port=0) as emu:
        code = main(
            [
                "refresh-markets",
                "--config",
                str(REPO / "configs/market_maker.yaml"),
                "--gamma-url",
                emu.gamma_url,
                "--markets-json-path",
                str(out),
                "--skip-classify",
                "--skip-index",
                "--gamma-retries",
                "0",
            ]
        )
        cids = {m["market"] for m in emu.venue.market_ids()}
        v1_cids = {m["market"] for m in emu.venue.market_ids() if m["version"] == "v1"}

    assert code == 0, capsys.readouterr().err
    cache = load_market_cache(out)
    cached = {m.condition_id for m in cache.records()}
    # Every V1 market is cached; the Protocol V2 ones too once the market cache reads `positionIds`
    # (issue #11; until then they are refused as "not two tokens", never cached with wrong ids).
    assert v1_cids <= cached <= cids
    # The neg-risk market's event id and the fee market's rebate survive the cache into MarketInfo.
    infos = {r.slug: r.to_info() for r in cache.records()}
    assert infos["emulated-fed-rate-cut"].neg_risk_market_id == neg_risk_market_id(
        next(m for m in load_scenario(REPO / SCENARIO_DIR / "default.yaml").markets if m.neg_risk)
    )
    assert infos["emulated-fed-rate-cut"].neg_risk_market_id.startswith("0x")
    assert (infos["emulated-election-winner"].fee_rate_ppm, infos["emulated-election-winner"].rebate_ppm) == (
        40_000,
        250_000,
    )
    # The default scenario suits the default strategy: every cached market passes its filters.
    assert f"of these, {len(cached)} pass" in capsys.readouterr().out


def test_shipped_scenarios_load():
    names = sorted(p.stem for p in (REPO / SCENARIO_DIR).glob("*.yaml"))

    scenarios = [load_scenario(REPO / SCENARIO_DIR / f"{n}.yaml") for n in names]

    assert {"default", "faults", "venue-faults"} <= set(names)
    assert all(s.markets for s in scenarios)
    assert any(s.faults for s in scenarios)


def test_the_scenario_example_in_the_docs_loads_in_the_units_it_states():
    block = (REPO / "docs/emulator.md").read_text().split("```yaml\n")[1].split("```")[0]
    # The example elides the flow, replay and fault lists; everything else is as written.
    kept = [line for line in block.splitlines() if "{...}" not in line and "[...]" not in line]
    kept = [line for line in kept if not line.lstrip().startswith("replay:")]

    sc = msgspec.yaml.decode("\n".join(kept).encode(), type=Scenario)

    (m,) = sc.markets
    assert (m.min_qty, sc.flow.maker_qty, sc.flow.taker_qty_min) == (5 * QTY_ONE, 50 * QTY_ONE, 5 * QTY_ONE)
    assert m.initial_book.bids == ((4800, 100 * QTY_ONE),)
    assert m.outcomes == ("Yes", "No")
    assert (m.dynamic_tick, m.dynamic_tick_px, m.neg_risk_market_id) == (True, None, "")


def test_scenario_unknown_keys_and_bad_values_are_errors(tmp_path: Path):
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("markets: [{slug: a}]\nflowz: {}\n")
    off_grid = tmp_path / "off_grid.yaml"
    off_grid.write_text("markets: [{slug: a, tick_px: 100, initial_book: {bids: [[4850, 5_000_000]]}}]\n")
    old_units = tmp_path / "old_units.yaml"  # sizes still in 0.01 shares (500 for 5 shares)
    old_units.write_text("markets: [{slug: a, min_qty: 500}]\n")
    odd_size = tmp_path / "odd_size.yaml"
    odd_size.write_text("markets: [{slug: a}]\nflow: {maker_qty: 3000}\n")

    bad_tier = tmp_path / "bad_tier.yaml"
    bad_tier.write_text("markets: [{slug: a}]\nrate_limits: {enabled: true, default_tier: platinum}\n")

    with pytest.raises(ConfigFileError, match="flowz: unknown key"):
        load_struct(unknown, Scenario)
    with pytest.raises(ConfigFileError, match="unknown rate-limit tier 'platinum'"):
        load_struct(bad_tier, Scenario)
    with pytest.raises(ConfigFileError, match="off the tick grid"):
        load_struct(off_grid, Scenario)
    with pytest.raises(ConfigFileError, match=r"min_qty: 500 is not a whole number of 0\.01 shares"):
        load_struct(old_units, Scenario)
    with pytest.raises(ConfigFileError, match="maker_qty: 3000 is not a whole number"):
        load_struct(odd_size, Scenario)
    with pytest.raises(ValueError, match=r"initial_book\.asks: 7575758 is not a whole number"):
        MarketConfig(slug="a", initial_book=InitialBook(asks=((5200, 7_575_758),)))
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"markets": [{"slug": "a"}], "faults": [{"kind": "nope"}]}, Scenario)


def _order(side: int, maker: int, taker: int) -> SignedOrder:
    from core.units import Side  # noqa: PLC0415

    return SignedOrder(
        version=2,
        maker="0x0",
        signer="0x0",
        token_id="1",
        side=Side.BUY if side > 0 else Side.SELL,
        maker_amount=maker,
        taker_amount=taker,
        expiration_s=0,
        signature_type=0,
        signature="0x",
        fields={},
    )


def test_order_amounts_convert_exactly_or_are_refused():
    # The share amount is the Qty itself (both in 1e-6 shares).
    assert order_to_px_qty(_order(1, 4_500_000, 10_000_000)) == (4500, 10 * QTY_ONE)  # BUY 10 @ 0.45
    assert order_to_px_qty(_order(-1, 10_560_000, 3_516_480)) == (3330, 10_560_000)  # SELL 10.56 @ 0.333
    with pytest.raises(OrderError, match="more than 2 decimals"):
        order_to_px_qty(_order(1, 4_500_000, 10_005_000))
    with pytest.raises(OrderError, match=r"7\.575758 shares has more than 2 decimals"):
        order_to_px_qty(_order(-1, 7_575_758, 5_000_000))
    with pytest.raises(OrderError, match=r"0\.0001 grid"):
        order_to_px_qty(_order(1, 4_500_001, 10_000_000))


def test_cli_starts_serves_and_stops(capsys: pytest.CaptureFixture[str]):
    parser = argparse.ArgumentParser()
    emulator_cmd.register(parser.add_subparsers())
    args = parser.parse_args(
        ["emulator", "--port", "0", "--scenario", "default", "--seed", "5", "--exit-after", "0.3"]
    )

    code = args.run(args)
    out = capsys.readouterr().out

    assert code == 0
    assert "CLOB REST  http://127.0.0.1:" in out
    assert "(seed 5)" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert len(summary["markets"]) == 5


def test_cli_unknown_scenario_is_a_config_error():
    parser = argparse.ArgumentParser()
    emulator_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["emulator", "--scenario", "no-such-scenario"])

    with pytest.raises(ConfigFileError, match="known: default, faults"):
        args.run(args)
