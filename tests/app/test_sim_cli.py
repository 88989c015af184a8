from pathlib import Path

import msgspec
import pytest

from app.cli import main
from app.commands.sim import render
from research.runlog import log_records, read_run
from sim.eventcols import ColumnReader

MM = "configs/market_maker.yaml"


def run(tmp_path, name, *args):
    out = tmp_path / name
    assert main(["sim", "--config", MM, "--out", str(out), "--quiet", *args]) == 0
    return msgspec.json.decode((out / "summary.json").read_bytes()), out


@pytest.mark.slow
def test_default_scenario_same_digest_twice_and_with_both_engines(tmp_path):
    a, _ = run(tmp_path, "a")
    b, _ = run(tmp_path, "b")
    c, _ = run(tmp_path, "c", "--engine", "actors")

    assert a["digest"] == b["digest"] == c["digest"]
    assert a["fills"]["maker"] > 100 and a["fills"]["taker"] == 0


@pytest.mark.parametrize("scenario", ["ws_replay", "hbt_npz", "bbo_replay"])
def test_shipped_scenarios_run_and_write_a_consistent_summary(tmp_path, scenario):
    s, out = run(tmp_path, scenario, "--scenario", scenario)

    kinds = {r["kind"] for r in log_records(out)}
    assert {"decision", "place"} <= kinds
    # The input is not in the log: the reader re-reads it, every event the venue processed.
    log = read_run(out)
    assert s["events_processed"] > 0 and sum(m.inputs for m in log.markets.values()) == s["events_processed"]
    assert log.inputs_logged and all(len(m.top) > 1 for m in log.markets.values())
    for key in (
        "events_processed",
        "wall_seconds",
        "fills",
        "volume_shares",
        "pnl_usdc",
        "max_abs_inventory_shares",
        "quote_uptime",
        "avg_quoted_spread_px",
        "markouts",
        "digest",
    ):
        assert key in s
    pnl = s["pnl_usdc"]
    parts = pnl["spread_capture"] + pnl["inventory_mtm"] + pnl["fees"] + pnl["rebates"] + pnl["resolution"]
    assert abs(parts - pnl["total"]) < 1e-5
    assert set(s["markouts"]) == {"1s", "10s", "60s"}
    text = render(s, out)  # what people read
    assert f"rebates {pnl['rebates']:+,.2f}" in text and "resolution" in text
    if scenario == "bbo_replay":  # the polls have no trades: the taker flow is synthetic, and says so
        assert "synthetic takers" in text


def test_seed_override_changes_the_synthetic_run(tmp_path):
    a, _ = run(tmp_path, "a", "--scenario", "tests/fixtures/scenarios/tiny.yaml")
    b, _ = run(tmp_path, "b", "--scenario", "tests/fixtures/scenarios/tiny.yaml", "--seed", "99")

    assert a["digest"] != b["digest"]


def test_the_digest_is_what_the_run_did_the_same_by_engine_run_and_input_location(tmp_path):
    # The digest hashes the run's decisions and actions: not the input (nor where it lies), and the
    # same with either engine and on every run.
    tiny = "tests/fixtures/scenarios/tiny.yaml"
    moved = tmp_path / "elsewhere" / "tiny.yaml"
    moved.parent.mkdir()
    moved.write_text(Path(tiny).read_text())
    a, out_a = run(tmp_path, "a", "--scenario", tiny)
    b, _ = run(tmp_path, "b", "--scenario", tiny)
    c, _ = run(tmp_path, "c", "--scenario", tiny, "--engine", "actors")
    d, out_d = run(tmp_path, "d", "--scenario", str(moved))

    assert a["digest"] == b["digest"] == c["digest"] == d["digest"]
    assert (out_a / "input.json").read_bytes() != (out_d / "input.json").read_bytes()  # (its base_dir)
    assert ColumnReader.open(out_a / "events.npz").recompute_digest() == a["digest"]


def test_bad_scenario_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source:\n  type: synthetic\n  markets: 0\n")

    assert main(["sim", "--config", MM, "--scenario", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{bad}: source.markets:") and "\n" not in err


def test_unknown_scenario_name_lists_the_known_ones(tmp_path, capsys):
    assert main(["sim", "--config", MM, "--scenario", "nope", "--out", str(tmp_path / "o")]) == 2

    assert "known: bbo_replay, crash, default, hbt_npz, rewards, ws_replay" in capsys.readouterr().err
