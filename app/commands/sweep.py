"""``polymm sweep``: an Optuna parameter search, each trial a deterministic simulation, locally or on Ray."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import msgspec

from app.commands import HELP
from app.commands.sim import resolve_scenario, simulate
from app.configfile import ConfigFileError, format_validation_error, load_struct
from core.config import Config
from research.report import build_report
from research.runlog import read_run
from research.space import Space
from research.sweep import (
    SweepError,
    TrialResult,
    TrialSpec,
    check_metric,
    process_pool,
    ray_executor,
    run_sweep,
    set_dotted,
)
from sim.eventcols import COLUMNS_NAME
from sim.scenario import Scenario


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sweep`` subcommand."""
    p = sub.add_parser(
        "sweep",
        help=HELP["sweep"],
        description=(
            "Run a parameter sweep described by SPACE.yaml (parameters as dotted config keys, the objective "
            "and constraints as figures of the run summary, the sampler and its seed; see docs/research.md). "
            "Each trial is a deterministic simulation with its own seed from the sweep seed and the trial "
            "number. Results go to OUT/sweep.journal (Optuna's journal storage: run the same command again "
            "to resume), each trial's report to OUT/trials/NNNN/report.html, the sweep report to "
            "OUT/sweep.html. The same seed gives the same trials on any number of workers or on Ray."
        ),
    )
    p.add_argument("--config", required=True, help="base strategy YAML, e.g. configs/market_maker.yaml")
    p.add_argument("--scenario", default="default", help="scenario name in configs/scenarios/ or a YAML path")
    p.add_argument("--space", required=True, help="sweep YAML, e.g. configs/sweeps/spread_skew.yaml")
    p.add_argument("--out", default=None, help="output directory [runs/sweep/<space name>]")
    p.add_argument("--trials", type=int, default=None, help="number of trials [the space's `trials`]")
    p.add_argument(
        "--workers", type=int, default=2, help="local worker processes (or Ray CPUs with local) [2]"
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="run the trials on Ray: `local` starts Ray on this machine; else a cluster address (`auto`, "
        "HOST:6379, ray://HOST:10001) after `ray start --head` there",
    )
    p.add_argument(
        "--keep-logs", action="store_true", help=f"keep each trial's {COLUMNS_NAME} (local workers)"
    )
    p.set_defaults(run=run)


def evaluate(spec: TrialSpec) -> TrialResult:
    """Run one trial (in a worker process or on a Ray worker): simulate, write its report, send figures.

    Never raises: a trial that fails returns its error, and the sweep goes on.
    """
    t0 = time.perf_counter()
    tmp = None
    try:
        cfg = msgspec.convert(spec.config, Config)
        sc = msgspec.convert(spec.scenario, Scenario)
        if spec.seed is not None:
            sc = msgspec.structs.replace(sc, seed=spec.seed)
        if spec.out_dir is not None:
            out = Path(spec.out_dir)
        else:
            tmp = tempfile.mkdtemp(prefix=f"polymm-trial-{spec.number:04d}-")
            out = Path(tmp)
        label = sc.name or "sweep"
        summary = simulate(
            spec.config_label,
            Path(spec.scenario_dir) / f"{label}.yaml",
            None,
            "inline",
            out,
            progress=False,
            config=cfg,
            scenario=sc,
        )
        html = build_report(read_run(out))
        if spec.out_dir is not None:
            (out / "report.html").write_text(html, encoding="utf-8")
            if not spec.keep_log:
                (out / COLUMNS_NAME).unlink()
            return TrialResult(spec.number, summary, None, wall_s=time.perf_counter() - t0)
        return TrialResult(spec.number, summary, html, wall_s=time.perf_counter() - t0)
    except (msgspec.ValidationError, ConfigFileError, ValueError, OSError) as exc:
        return TrialResult(
            spec.number, None, error=" ".join(str(exc).split()), wall_s=time.perf_counter() - t0
        )
    except Exception:
        last = traceback.format_exc().strip().splitlines()[-1]
        return TrialResult(spec.number, None, error=last, wall_s=time.perf_counter() - t0)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _yaml_dict(path: Path, what: str) -> dict[str, Any]:
    try:
        data = msgspec.yaml.decode(path.read_bytes())
    except FileNotFoundError:
        raise ConfigFileError(f"{path}: (file): no such file") from None
    except msgspec.DecodeError as exc:
        raise ConfigFileError(f"{path}: (syntax): {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"{path}: (top level): a {what} must be a mapping")
    return data


def prepare(
    config_path: str, scenario: str, space_path: str
) -> tuple[Space, dict[str, Any], dict[str, Any], str]:
    """Read and check the space, the base config and the scenario; one-line errors (exit 2)."""
    space = load_struct(space_path, Space)
    config = _yaml_dict(Path(config_path), "config")
    try:
        msgspec.convert(config, Config)
    except msgspec.ValidationError as exc:
        raise ConfigFileError(format_validation_error(config_path, str(exc))) from None
    # Every parameter must be a config key the engine accepts, at each end of its range.
    for name, p in space.params.items():
        probes = p.values if p.values is not None else [p.low, p.high]
        for v in probes:
            value = int(v) if p.type == "int" and isinstance(v, float) else v
            try:
                msgspec.convert(set_dotted(config, name, value), Config)
            except msgspec.ValidationError as exc:
                msg = format_validation_error(space_path, str(exc)).split(": ", 2)[-1]
                raise ConfigFileError(f"{space_path}: params.{name}: with {value!r}: {msg}") from None
    scenario_path = resolve_scenario(scenario)
    sc = _yaml_dict(scenario_path, "scenario")
    for key, v in space.scenario.items():
        sc = set_dotted(sc, key, v)
    try:
        msgspec.convert(sc, Scenario)
    except msgspec.ValidationError as exc:
        msg = format_validation_error(str(scenario_path), str(exc)).split(": ", 1)[-1]
        raise ConfigFileError(f"{space_path}: scenario: {msg}") from None
    try:
        check_metric(space.objective.metric, f"{space_path}: objective.metric")
        for i, c in enumerate(space.constraints):
            check_metric(c.metric, f"{space_path}: constraints[{i}].metric")
        if space.pareto is not None:
            check_metric(space.pareto.metric, f"{space_path}: pareto.metric")
    except SweepError as exc:
        raise ConfigFileError(str(exc)) from None
    return space, config, sc, str(scenario_path.parent.resolve())


def run(args: argparse.Namespace) -> int:
    """Run or resume the sweep; print the best trials."""
    if args.workers < 1:
        raise ConfigFileError("--workers: at least 1")
    space, config, scenario, scenario_dir = prepare(args.config, args.scenario, args.space)
    label = Path(args.space).stem
    out = Path(args.out or f"runs/sweep/{space.name or label}")
    remote = args.ray is not None and args.ray != "local"
    if remote:  # the cluster's workers get this directory as their working directory
        cwd = Path.cwd().resolve()
        try:
            scenario_dir = str(Path(scenario_dir).relative_to(cwd))
        except ValueError:
            raise ConfigFileError(f"--scenario: must lie under {cwd} to be shipped to the cluster") from None
    try:
        executor = (
            ray_executor(args.ray, args.workers, str(Path.cwd()) if remote else None)
            if args.ray is not None
            else process_pool(args.workers)
        )
        with executor as ex:
            result = run_sweep(
                space,
                label,
                config,
                args.config,
                scenario,
                scenario_dir,
                out,
                evaluate,
                ex,
                trials=args.trials,
                local_out=args.ray is None,
                keep_logs=args.keep_logs,
                progress=print,
            )
    except SweepError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for n in result.notes:
        print(f"note     {n}")
    obj = space.objective.metric
    print(f"trials   {len(result.trials)} in {out} ({result.ran} run now)")
    if result.best:
        print(f"best     ({space.objective.direction} {obj}, feasible):")
        for r in result.best[:5]:
            ps = "  ".join(
                f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items()
            )
            print(f"  #{r['number']:<4} {r['value']:>+14,.4f}   {ps}")
    else:
        print("best     no trial meets every constraint")
    print(f"report   {result.report}")
    return 0
