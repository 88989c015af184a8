"""polymm sweep: deterministic trials whatever runs them, resumable, with a report that links every trial."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.cli import main
from research.space import Constraint, Objective, Param, Space
from research.sweep import (
    JOURNAL_NAME,
    SweepError,
    TrialResult,
    TrialSpec,
    run_sweep,
    trial_seed,
)

optuna = pytest.importorskip("optuna")
journal = pytest.importorskip("optuna.storages.journal")


def fake_evaluate(spec: TrialSpec) -> TrialResult:
    # A stand-in for a simulation: figures that depend on the parameters and the seed only.
    a = spec.params["quoting.half_spread_px"]
    b = spec.params["quoting.skew_px"]
    noise = (spec.seed or 0) % 7
    pnl = -((a - 200) ** 2) / 100 - ((b - 300) ** 2) / 1000 + noise
    return TrialResult(
        spec.number,
        {"pnl_usdc": {"total": pnl}, "max_abs_inventory_shares": 100 + b / 10, "quote_uptime": 0.95},
    )


def serial(evaluate, specs):
    return [evaluate(s) for s in specs]


def backwards(evaluate, specs):
    # Another executor: finishes the batch in the opposite order; results still come back in order.
    done = {s.number: evaluate(s) for s in reversed(specs)}
    return [done[s.number] for s in specs]


SPACE = Space(
    params={
        "quoting.half_spread_px": Param(type="int", low=100, high=400, step=50),
        "quoting.skew_px": Param(type="int", low=0, high=600, step=100),
    },
    objective=Objective("pnl_usdc.total"),
    constraints=[Constraint("max_abs_inventory_shares", max=150)],
    seed=3,
    trials=20,
    batch=4,
)


def sweep(out: Path, executor=serial, trials: int | None = None, space: Space = SPACE) -> Any:
    return run_sweep(space, "t", {}, "cfg.yaml", {}, ".", out, fake_evaluate, executor, trials=trials)


def key(rows: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any], float | None]]:
    return [(r["number"], r["params"], r["value"]) for r in sorted(rows, key=lambda r: r["number"])]


def test_the_same_seed_gives_the_same_trials_whatever_the_executor(tmp_path):
    a = sweep(tmp_path / "a", serial)
    b = sweep(tmp_path / "b", backwards)

    assert len(a.trials) == 20 and key(a.trials) == key(b.trials)
    assert key(a.best) == key(b.best)
    assert all(r["feasible"] == (100 + r["params"]["quoting.skew_px"] / 10 <= 150) for r in a.trials)
    assert all(r["seed"] == trial_seed(3, r["number"]) for r in a.trials)
    other = sweep(tmp_path / "c", serial, space=msgspec.structs.replace(SPACE, seed=4))
    assert key(other.trials) != key(a.trials)


def test_a_resumed_sweep_equals_an_uninterrupted_one(tmp_path):
    whole = sweep(tmp_path / "whole")
    part = sweep(tmp_path / "part", trials=10)
    assert part.ran == 10
    resumed = sweep(tmp_path / "part")

    assert resumed.ran == 10 and key(resumed.trials) == key(whole.trials)
    assert sweep(tmp_path / "part").ran == 0  # nothing left to do


def test_trials_a_crash_left_running_are_run_again_with_their_parameters(tmp_path):
    sweep(tmp_path / "s", trials=4)
    storage = journal.JournalStorage(journal.JournalFileBackend(str(tmp_path / "s" / JOURNAL_NAME)))
    study = optuna.load_study(study_name="t", storage=storage)
    crashed = study.ask()
    crashed.suggest_int("quoting.half_spread_px", 100, 400, step=50)
    crashed.suggest_int("quoting.skew_px", 0, 600, step=100)

    again = sweep(tmp_path / "s", trials=8)

    row = next(r for r in again.trials if r["number"] == crashed.number)
    assert row["state"] == "COMPLETE" and row["params"] == crashed.params
    assert len(again.trials) == 8


def test_a_journal_of_another_space_is_refused(tmp_path):
    sweep(tmp_path / "s", trials=2)
    with pytest.raises(SweepError, match="holds a sweep of another space"):
        sweep(tmp_path / "s", trials=2, space=msgspec.structs.replace(SPACE, seed=9))


def test_a_grid_visits_each_point_once_and_stops_at_its_size(tmp_path):
    grid = msgspec.structs.replace(SPACE, sampler="grid", trials=100)

    result = sweep(tmp_path / "g", space=grid)

    points = {tuple(r["params"].values()) for r in result.trials}
    assert len(result.trials) == len(points) == 7 * 7
    assert result.notes == ["the grid has 49 points: 49 trials, not 100"]


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    def flaky(spec: TrialSpec) -> TrialResult:
        if spec.number == 1:
            return TrialResult(spec.number, None, error="boom")
        return fake_evaluate(spec)

    result = run_sweep(SPACE, "t", {}, "cfg", {}, ".", tmp_path / "f", flaky, serial, trials=4)

    assert [r["state"] for r in result.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert "#1 boom" in result.report.read_text()


def _space_file(tmp_path: Path, **extra: Any) -> Path:
    body = {
        "name": "acceptance",
        "seed": 11,
        "trials": 32,
        "batch": 8,
        "objective": {"metric": "pnl_usdc.total", "direction": "maximize"},
        "constraints": [
            {"metric": "max_abs_inventory_shares", "max": 150},
            {"metric": "quote_uptime", "min": 0.5},
        ],
        "params": {
            "quoting.half_spread_px": {"type": "int", "low": 100, "high": 300, "step": 100},
            "quoting.skew_px": {"type": "int", "low": 0, "high": 400, "step": 100},
        },
        # The default scenario, 20 s of it: 32 trials stay quick and every one still trades.
        "scenario": {"source.duration_s": 20},
        **extra,
    }
    path = tmp_path / "space.yaml"
    path.write_bytes(msgspec.yaml.encode(body))
    return path


def _best(out: Path) -> list[tuple[str, ...]]:
    html = (out / "sweep.html").read_text()
    table = html.split("<h2>Best trials</h2>", 1)[1].split("<h2>", 1)[0]
    cell = r"<td>([^<]+)</td>"
    row = r'<tr><td>#(\d+)</td><td><a href="([^"]+)">report</a></td>' + cell * 3
    return re.findall(row, table)


@pytest.mark.slow
def test_32_trials_on_two_local_workers_and_on_ray_give_the_same_best_trials(tmp_path, capsys):
    pytest.importorskip("ray")
    space = _space_file(tmp_path)
    base = ["sweep", "--config", "configs/market_maker.yaml", "--scenario", "default", "--space", str(space)]

    assert main([*base, "--workers", "2", "--out", str(tmp_path / "pool")]) == 0
    assert main([*base, "--workers", "2", "--ray", "local", "--out", str(tmp_path / "ray")]) == 0
    out = capsys.readouterr().out

    assert out.count("trials   32 in") == 2
    pool, ray = _best(tmp_path / "pool"), _best(tmp_path / "ray")
    assert len(pool) >= 3 and pool == ray
    for out_dir in (tmp_path / "pool", tmp_path / "ray"):
        trials = sorted((out_dir / "trials").iterdir())
        assert len(trials) == 32
        assert all((t / "report.html").stat().st_size > 10_000 for t in trials)
        assert not any((t / "events.npz").exists() for t in trials)  # logs are not kept by default
        html = (out_dir / "sweep.html").read_text()
        assert "Pareto front" in html and "Effect of quoting.half_spread_px" in html
        assert html.count('href="trials/') >= 32
    # Running it again resumes: nothing left to run.
    assert main([*base, "--workers", "2", "--out", str(tmp_path / "pool")]) == 0
    assert "(0 run now)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": {"quoting.nope": {"low": 1, "high": 2}}}, "params.quoting.nope: with 1.0: unknown key"),
        ({"objective": {"metric": "pnl_usdc.nope"}}, "objective.metric: no such figure `pnl_usdc.nope`"),
        ({"scenario": {"source.markets": 0}}, "scenario: source.markets:"),
        ({"trials": 0}, "trials: at least 1"),
    ],
)
def test_a_bad_space_is_one_line_and_exit_2(tmp_path, capsys, change, message):
    space = _space_file(tmp_path, **change)

    rc = main(
        [
            "sweep",
            "--config",
            "configs/market_maker.yaml",
            "--space",
            str(space),
            "--out",
            str(tmp_path / "o"),
        ]
    )

    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "o").exists()
