"""Parameter sweeps: Optuna (TPE or grid) over config keys, each trial a deterministic simulation.

A sweep is described by a YAML file (``Space``): the parameters (dotted config keys with ranges or
values), the objective (a figure of the run summary to maximise or minimise), constraints on other
figures (e.g. ``max_abs_inventory_shares <= 150``, ``quote_uptime >= 0.9``), the sampler and its
seed, and overrides of the scenario (e.g. a shorter ``source.duration_s``).

Samplers: ``tpe`` (Optuna's TPE, constraints included) or ``grid`` (every combination of each
parameter's values, in order; ``trials`` caps it at the grid's size).

Determinism: trials are asked in batches of ``batch`` (default 8) and told in trial order, and the
sampler of each batch is seeded from the sweep seed and the batch number. What a trial gets depends
only on the seed and the results before its batch, never on how many workers ran them or in which
order they finished: the same sweep on 2 local processes, on Ray or resumed after a crash gives the
same trials. Each trial's simulation seed comes from the sweep seed and the trial number
(``seeds: per_trial``, different market paths per trial) or is the scenario's own (``seeds:
fixed``: every trial on the same path, common random numbers for a cleaner comparison).

Results live in Optuna's journal storage (``OUT/sweep.journal``, a file): running the same command
again resumes where it stopped (trials left running by a crash are re-run with their parameters).
Each trial's run report is ``OUT/trials/NNNN/report.html``; the sweep report is ``OUT/sweep.html``.

Where trials run is the caller's ``Executor``: a local process pool, or Ray (``ray_executor``).
The trial itself is a function the app hands in (``Evaluate``), so this module never imports the app.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import product
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Final

import msgspec

from research.space import Param, Space
from sim.summary import totals

JOURNAL_NAME: Final = "sweep.journal"
TRIALS_DIR: Final = "trials"


class SweepError(Exception):
    """A sweep that cannot run; ``str(err)`` is the one line to show."""


def get_metric(summary: dict[str, Any], dotted: str) -> float | None:
    """A figure of a summary by dotted path (None when absent or not a number)."""
    d: Any = summary
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return float(d) if isinstance(d, int | float) and not isinstance(d, bool) else None


def check_metric(dotted: str, where: str) -> None:
    """Refuse a metric a run summary does not have, naming the known ones."""
    template = totals([]) | {"events_processed": 0}
    if get_metric(template, dotted) is None:
        known = sorted(_numeric_paths(template))
        raise SweepError(f"{where}: no such figure `{dotted}` in a run summary (known: {', '.join(known)})")


def _numeric_paths(d: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for k, v in d.items():
        if k in ("units", "notes", "per_market"):
            continue
        p = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _numeric_paths(v, p + ".")
        elif isinstance(v, int | float) and not isinstance(v, bool):
            yield p


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of nested ``data`` with ``dotted`` set to ``value`` (intermediate tables created)."""
    out: dict[str, Any] = _deep_copy(data)
    node = out
    keys = dotted.split(".")
    for k in keys[:-1]:
        nxt = node.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            node[k] = nxt
        node = nxt
    node[keys[-1]] = value
    return out


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


def trial_seed(sweep_seed: int, number: int) -> int:
    """The simulation seed of trial ``number``: stable, spread, from the sweep seed."""
    h = hashlib.sha256(f"polymm-sweep:{sweep_seed}:{number}".encode()).digest()
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


def space_digest(space: Space, config: dict[str, Any], scenario: dict[str, Any]) -> str:
    """What a journal was made for: resuming with another space, config or scenario is refused."""
    enc = msgspec.json.Encoder(order="sorted")
    h = hashlib.sha256()
    for part in (msgspec.to_builtins(space), config, scenario):
        h.update(enc.encode(part))
    return h.hexdigest()


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial (plain data: it crosses processes and machines)."""

    number: int
    params: dict[str, Any]
    seed: int | None
    config: dict[str, Any]
    config_label: str
    scenario: dict[str, Any]
    scenario_dir: str
    #: Where to write the run (local workers); None: a temporary directory, results sent back.
    out_dir: str | None
    keep_log: bool = False


@dataclass
class TrialResult:
    """What a worker sends back: the summary, the report page (when not written in place), or an error."""

    number: int
    summary: dict[str, Any] | None
    report_html: str | None = None
    error: str = ""
    wall_s: float = 0.0


Evaluate = Callable[[TrialSpec], TrialResult]
#: Runs a batch of trial specs and returns their results in the same order.
Executor = Callable[[Evaluate, list[TrialSpec]], list[TrialResult]]


@contextmanager
def process_pool(workers: int) -> Iterator[Executor]:
    """An ``Executor`` on ``workers`` local processes (spawned: no state leaks between sweeps)."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:

        def run(evaluate: Evaluate, specs: list[TrialSpec]) -> list[TrialResult]:
            return list(pool.map(evaluate, specs))

        yield run


@contextmanager
def ray_executor(address: str, workers: int, working_dir: str | None = None) -> Iterator[Executor]:
    """An ``Executor`` on Ray: ``address`` ``local`` starts Ray on this machine (loopback only, with
    ``workers`` CPUs); anything else is handed to ``ray.init`` (``auto``, ``HOST:6379``,
    ``ray://HOST:10001``), with ``working_dir`` shipped to the cluster's workers.
    """
    if address == "local":
        # A single-machine Ray binds to loopback only: Ray otherwise advertises the host's address.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        import ray  # noqa: PLC0415 (the research extra; only for --ray)
    except ImportError:
        raise SweepError("--ray: Ray is not installed (pip install -e '.[research]')") from None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address == "local":
        ray.init(num_cpus=workers, **kwargs)
    else:
        env = (
            {"working_dir": working_dir, "excludes": ["runs/", ".git/", "local_state/"]}
            if working_dir
            else None
        )
        ray.init(address=address, runtime_env=env, **kwargs)
    try:

        def run(evaluate: Evaluate, specs: list[TrialSpec]) -> list[TrialResult]:
            remote = ray.remote(num_cpus=1, max_retries=1)(evaluate)
            return list(ray.get([remote.remote(s) for s in specs]))

        yield run
    finally:
        ray.shutdown()


@dataclass
class SweepResult:
    """The trials of a finished sweep and where its files are."""

    out: Path
    trials: list[dict[str, Any]]
    best: list[dict[str, Any]]
    report: Path
    ran: int
    notes: list[str] = field(default_factory=list)


def _suggest(trial: Any, name: str, p: Param) -> Any:
    if p.values is not None:
        return trial.suggest_categorical(name, p.values)
    assert p.low is not None and p.high is not None
    if p.type == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(name, p.low, p.high, step=p.step, log=p.log)


def grid_points(space: Space) -> list[dict[str, Any]]:
    """Every combination of the parameters' grid values, in a fixed order (the last varies fastest).

    Optuna's ``GridSampler`` stops its study from inside ``tell`` when the grid is done, which only
    works inside ``optimize``; enqueuing the points in this order gives the same grid with ask/tell.
    """
    names = list(space.params)
    return [
        dict(zip(names, combo, strict=True)) for combo in product(*(space.params[n].grid() for n in names))
    ]


def _sampler(space: Space, batch_no: int) -> Any:
    import optuna  # noqa: PLC0415

    seed = trial_seed(space.seed, -1 - batch_no)
    if space.sampler == "grid":  # the points are enqueued in order (grid_points); nothing is drawn
        return optuna.samplers.RandomSampler(seed=seed)
    # Constraints reach TPE through each trial's ``set_constraint`` (Optuna >= 5).
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, min(10, space.trials // 4)))


def trial_rows(study: Any, space: Space) -> list[dict[str, Any]]:
    """Every finished trial as a plain row: number, params, metrics, objective, feasible, state."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = t.state.name
        rows.append(
            {
                "number": t.number,
                "state": state,
                "params": dict(t.params),
                "metrics": dict(t.user_attrs.get("metrics", {})),
                "value": t.value if state == "COMPLETE" else None,
                "feasible": state == "COMPLETE" and all(c <= 0 for c in t.user_attrs.get("constraints", [])),
                "seed": t.user_attrs.get("seed"),
                "error": t.user_attrs.get("error", ""),
                "report": t.user_attrs.get("report", ""),
            }
        )
    return rows


def best_rows(rows: list[dict[str, Any]], space: Space, k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` best feasible trials (ties: the earlier trial first)."""
    sign = -1.0 if space.objective.direction == "maximize" else 1.0
    ok = [r for r in rows if r["feasible"] and r["value"] is not None]
    return sorted(ok, key=lambda r: (sign * r["value"], r["number"]))[:k]


def run_sweep(
    space: Space,
    space_label: str,
    config: dict[str, Any],
    config_label: str,
    scenario: dict[str, Any],
    scenario_dir: str,
    out: Path,
    evaluate: Evaluate,
    executor: Executor,
    *,
    trials: int | None = None,
    local_out: bool = True,
    keep_logs: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep until it has ``trials`` trials; write the sweep report.

    ``local_out``: workers write each trial's run directory in place (a local pool); otherwise they
    send back the summary and the report page, which are written here (Ray).
    """
    import optuna  # noqa: PLC0415 (the research extra)
    from optuna.storages.journal import JournalFileBackend, JournalStorage  # noqa: PLC0415

    from research.sweep_report import write_sweep_report  # noqa: PLC0415

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    target = trials if trials is not None else space.trials
    notes = []
    grid = grid_points(space) if space.sampler == "grid" else []
    if space.sampler == "grid":
        size = len(grid)
        if target > size:
            notes.append(f"the grid has {size} points: {size} trials, not {target}")
            target = size
    out.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(out / JOURNAL_NAME)))
    name = space.name or space_label
    digest = space_digest(space, config, scenario)
    direction = space.objective.direction
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, load_if_exists=True)
    made_for = study.user_attrs.get("space_sha256")
    if made_for is None:
        study.set_user_attr("space_sha256", digest)
        study.set_user_attr("space", msgspec.to_builtins(space))
        study.set_user_attr("config", config_label)
    elif made_for != digest:
        raise SweepError(
            f"{out}: holds a sweep of another space, config or scenario; use another --out to start anew"
        )
    metrics = space.metrics()

    def spec(number: int, params: dict[str, Any]) -> TrialSpec:
        cfg = config
        for k, v in params.items():
            cfg = set_dotted(cfg, k, v)
        return TrialSpec(
            number=number,
            params=params,
            seed=trial_seed(space.seed, number) if space.seeds == "per_trial" else None,
            config=cfg,
            config_label=config_label,
            scenario=scenario,
            scenario_dir=scenario_dir,
            out_dir=str(out / TRIALS_DIR / f"{number:04d}") if local_out else None,
            keep_log=keep_logs,
        )

    def finish(batch: list[tuple[Any, TrialSpec]]) -> None:
        results = executor(evaluate, [s for _, s in batch])
        for (trial, s), r in zip(batch, results, strict=True):
            rel = f"{TRIALS_DIR}/{s.number:04d}/report.html"
            trial_dir = out / TRIALS_DIR / f"{s.number:04d}"
            if r.summary is not None and not local_out:
                trial_dir.mkdir(parents=True, exist_ok=True)
                (trial_dir / "summary.json").write_bytes(
                    msgspec.json.format(msgspec.json.encode(r.summary)) + b"\n"
                )
                if r.report_html is not None:
                    (trial_dir / "report.html").write_text(r.report_html, encoding="utf-8")
            storage.set_trial_user_attr(trial._trial_id, "seed", s.seed)
            if r.summary is None:
                storage.set_trial_user_attr(trial._trial_id, "error", r.error)
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
                continue
            values = {m: get_metric(r.summary, m) for m in metrics}
            cons: list[float] = []
            live = (
                trial if isinstance(trial, optuna.trial.Trial) else optuna.trial.Trial(study, trial._trial_id)
            )
            for i, c in enumerate(space.constraints):
                v = values.get(c.metric)
                for j, x in enumerate(c.violations(v) if v is not None else [1.0]):
                    cons.append(x)
                    live.set_constraint(f"{i}.{j}:{c.metric}", x)
            storage.set_trial_user_attr(trial._trial_id, "metrics", values)
            storage.set_trial_user_attr(trial._trial_id, "constraints", cons)
            storage.set_trial_user_attr(
                trial._trial_id, "report", rel if (trial_dir / "report.html").exists() else ""
            )
            objective = values[space.objective.metric]
            if objective is None:
                storage.set_trial_user_attr(
                    trial._trial_id, "error", f"no {space.objective.metric} in summary"
                )
                study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial.number, objective)

    ran = 0
    t0 = time.perf_counter()
    # Trials a crash left running: run them again with the parameters they were given.
    stale = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
    if stale:
        finish([(t, spec(t.number, dict(t.params))) for t in stale])
        ran += len(stale)
    while True:
        done = len(study.get_trials(deepcopy=False))
        if done >= target:
            break
        batch_no = done // space.batch
        study.sampler = _sampler(space, batch_no)
        size = min(space.batch - done % space.batch, target - done)
        batch = []
        for k in range(size):
            if grid:
                study.enqueue_trial(grid[done + k])
            trial = study.ask()
            params = {k: _suggest(trial, k, p) for k, p in space.params.items()}
            batch.append((trial, spec(trial.number, params)))
        finish(batch)
        ran += len(batch)
        if progress:
            rows = trial_rows(study, space)
            best = best_rows(rows, space, 1)
            best_txt = (
                f"best #{best[0]['number']} {best[0]['value']:+,.4g}" if best else "no feasible trial yet"
            )
            progress(
                f"sweep {name}: {len(rows)}/{target} trials ({time.perf_counter() - t0:,.1f} s)  {best_txt}"
            )
    rows = trial_rows(study, space)
    best = best_rows(rows, space)
    report = write_sweep_report(out, space, name, config_label, rows, best, notes)
    return SweepResult(out=out, trials=rows, best=best, report=report, ran=ran, notes=notes)
