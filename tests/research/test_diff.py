"""polymm diff and the regression gate: the first divergent decision, the figures, the exit status."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from app.cli import main
from research.diff import BASELINE_NAME, first_divergence, write_baseline
from research.runlog import Decision, event_lines
from sim.eventcols import COLUMNS_NAME
from sim.inputs import INPUT_NAME

ROOT = Path(__file__).resolve().parents[2]


def test_two_runs_one_parameter_apart_name_the_first_divergent_decision(tiny_run, tiny_wide_run, capsys):
    assert main(["diff", str(tiny_run), str(tiny_wide_run)]) == 1

    out = capsys.readouterr().out
    assert "inputs     the same market data" in out
    # The first decision of the first market differs: the half-spread in its reasons, both sides shown.
    assert "decisions  DIFFER: first in syn-00 at 00:00:00.050000000 (+0.050 s), its decision #1" in out
    lines = out.splitlines()
    spread = next(line for line in lines if "base_half_spread_px" in line)
    assert spread.lstrip().startswith("* ") and spread.split()[-2:] == ["100", "110"]
    fair = next(line for line in lines if line.strip().startswith("fair_px"))
    assert not fair.lstrip().startswith("*")  # same fair price on both sides: not marked
    assert "fills.maker" in out and "pnl_usdc.total" in out and "quote_uptime" in out
    assert "inventory path: first apart at" in out
    assert out.rstrip().endswith("the runs DIFFER")


def test_the_same_run_twice_is_identical(tiny_run, tmp_path, capsys):
    again = tmp_path / "again"
    args = [
        "sim",
        "--config",
        "configs/market_maker.yaml",
        "--scenario",
        "tests/fixtures/scenarios/tiny.yaml",
    ]
    assert main([*args, "--out", str(again), "--quiet", "--no-report"]) == 0
    capsys.readouterr()

    assert main(["diff", str(tiny_run), str(again)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("identical: the two logs have the same digest")


def test_runs_that_differ_only_in_what_they_log_are_identical(tiny_run, tmp_path, capsys):
    # The same run without its input's identity (so without its market data) and stated under
    # another digest: the same decisions, actions and figures.
    quiet = tmp_path / "quiet"
    shutil.copytree(tiny_run, quiet)
    (quiet / INPUT_NAME).unlink()
    summary = msgspec.json.decode((quiet / "summary.json").read_bytes())
    (quiet / "summary.json").write_bytes(msgspec.json.encode(summary | {"digest": "0" * 64}))
    capsys.readouterr()

    assert main(["diff", str(tiny_run), str(quiet)]) == 0
    out = capsys.readouterr().out
    assert "inputs     not logged on both sides" in out
    assert "decisions  identical in every market" in out and "actions    identical" in out
    assert out.rstrip().endswith("the logs differ only in what they record)")


def test_a_baseline_matches_its_run_and_catches_a_changed_one(tiny_run, tiny_wide_run, tmp_path, capsys):
    base = tmp_path / "base"
    write_baseline(tiny_run, base)
    assert (base / BASELINE_NAME).stat().st_size < 20_000  # digests, not the log
    capsys.readouterr()

    assert main(["diff", str(base), str(tiny_run)]) == 0
    assert main(["diff", str(base), str(tiny_wide_run)]) == 1
    out = capsys.readouterr().out
    assert "decisions  DIFFER in syn-00" in out and "just regress-diff" in out
    assert "pnl_usdc.total" in out


def test_a_baseline_whose_figures_were_changed_fails_the_gate(tiny_run, tmp_path, capsys):
    # Same decisions (by digest) but another figure: still a difference.
    base = tmp_path / "base"
    write_baseline(tiny_run, base)
    data = msgspec.json.decode((base / BASELINE_NAME).read_bytes())
    data["digest"] = "0" * 64
    data["summary"]["per_market"][0]["pnl_usdc"]["total"] += 1.0
    (base / BASELINE_NAME).write_bytes(msgspec.json.encode(data))
    capsys.readouterr()

    assert main(["diff", str(base), str(tiny_run)]) == 1
    out = capsys.readouterr().out
    assert "decisions  identical in every market (by digest)" in out
    assert "pnl_usdc.total" in out and "-1" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("a: no such run directory") and "\n" not in err


def _d(ts: int, seq: int, half: int) -> Decision:
    return Decision(ts, seq, {"quote": True, "reasons": {"half_spread_px": half}})


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([_d(1, 0, 1), _d(2, 0, 1)], [_d(1, 0, 1), _d(2, 0, 1)], None),
        ([_d(1, 0, 1), _d(2, 0, 1)], [_d(1, 0, 1), _d(2, 0, 2)], 1),  # same time, other content
        ([_d(1, 0, 1), _d(2, 0, 1)], [_d(1, 0, 1), _d(3, 0, 1)], 1),  # same content, other time
        ([_d(1, 0, 1), _d(1, 1, 1)], [_d(1, 0, 1)], 1),  # one side decided twice at one instant
        ([], [_d(1, 0, 1)], 0),
    ],
)
def test_first_divergence_aligns_by_time_and_order(a, b, expected):
    assert first_divergence(a, b) == expected


def test_when_one_side_did_not_decide_the_other_sides_decision_in_force_is_shown(tiny_run, tmp_path, capsys):
    # Drop one decision from a copy of the run: at its time, A decided and B kept its earlier one.
    b = tmp_path / "b"
    shutil.copytree(tiny_run, b)
    # (as JSON lines: a session's form of the log, which the reader takes alike)
    lines = list(event_lines(b))
    idx = [i for i, line in enumerate(lines) if line.startswith(b'{"kind":"decision"')][5]
    del lines[idx]
    (b / "events.jsonl").write_bytes(b"".join(lines))
    (b / COLUMNS_NAME).unlink()
    (b / "summary.json").unlink()  # its digest would no longer be the log's
    (b / "venue_marks.json").unlink()
    capsys.readouterr()

    assert main(["diff", str(tiny_run), str(b)]) == 1
    out = capsys.readouterr().out
    assert "  B: no new decision then; in force: quote bids" in out


@pytest.mark.slow
def test_just_regress_passes_on_the_shipped_scenarios(tmp_path):
    just = shutil.which("just")
    if just is None:
        pytest.skip("no `just` (pip install -e '.[dev]')")
    env = {"PYTHONPATH": str(ROOT), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    done = subprocess.run(
        [just, "regress", str(tmp_path / "regress")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scenarios = sorted(p.stem for p in (ROOT / "configs" / "scenarios").glob("*.yaml"))
    for s in scenarios:
        assert f"== regress {s}" in done.stdout
    assert done.stdout.count("identical: the two logs have the same digest") == len(scenarios)
    assert "regress: every scenario matches its baseline" in done.stdout
