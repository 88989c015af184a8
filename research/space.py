"""A sweep's search space (the YAML file ``research.sweep`` reads): parameters, objective, constraints.

Plain data with its own checks; ``research.sweep`` runs it and ``research.sweep_report`` shows it.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = ["STANDARD_METRICS", "Constraint", "Objective", "Param", "Pareto", "Space"]

#: Figures every trial records besides the objective and constraints (for the sweep report).
STANDARD_METRICS: Final = (
    "pnl_usdc.total",
    "pnl_usdc.spread_capture",
    "pnl_usdc.inventory_mtm",
    "max_abs_inventory_shares",
    "quote_uptime",
    "fills.maker",
)


class Param(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One swept config key: ``int``/``float`` in [low, high] (``step``, ``log``), or ``values``."""

    type: Literal["int", "float", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    values: list[Any] | None = None

    def __post_init__(self) -> None:
        if self.type == "categorical" or self.values is not None:
            if not self.values:
                raise ValueError("values: a categorical parameter needs a non-empty list")
            return
        if self.low is None or self.high is None:
            raise ValueError("low/high: a numeric parameter needs both (or `values`)")
        if self.high < self.low:
            raise ValueError("high: below low")
        if self.step is not None and self.step <= 0:
            raise ValueError("step: must be positive")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ValueError("log: needs low > 0 and no step")

    def grid(self) -> list[Any]:
        """The values a grid sweep visits."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ValueError("step: a grid over a float range needs a step (or `values`)")
        n = round((self.high - self.low) / self.step)
        return [round(self.low + i * self.step, 10) for i in range(n + 1)]


class Objective(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The figure to optimise: a dotted path into the run summary, e.g. ``pnl_usdc.total``."""

    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"


class Constraint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A bound on a figure: ``max`` (at most) and/or ``min`` (at least)."""

    metric: str
    max: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if self.max is None and self.min is None:
            raise ValueError("max/min: a constraint needs a bound")

    def violations(self, value: float) -> list[float]:
        """Optuna's convention: each value <= 0 is satisfied."""
        out = []
        if self.max is not None:
            out.append(value - self.max)
        if self.min is not None:
            out.append(self.min - value)
        return out


class Pareto(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The figure the Pareto front trades the objective against, and which way is better."""

    metric: str
    direction: Literal["maximize", "minimize"] = "minimize"


class Space(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A sweep file (see the module docstring and ``configs/sweeps/``)."""

    params: dict[str, Param]
    objective: Objective
    constraints: list[Constraint] = []
    name: str = ""
    sampler: Literal["tpe", "grid"] = "tpe"
    seed: int = 0
    trials: int = 32
    batch: int = 8
    seeds: Literal["per_trial", "fixed"] = "per_trial"
    pareto: Pareto | None = None
    #: Dotted overrides of the scenario, e.g. ``{"source.duration_s": 600}``.
    scenario: dict[str, Any] = {}

    def __post_init__(self) -> None:
        if not self.params:
            raise ValueError("params: at least one parameter")
        if self.trials < 1:
            raise ValueError("trials: at least 1")
        if self.batch < 1:
            raise ValueError("batch: at least 1")

    def pareto_axis(self) -> Pareto:
        """The Pareto front's other figure: as set, else the first constraint's, else max |inventory|."""
        if self.pareto is not None:
            return self.pareto
        for c in self.constraints:
            return Pareto(c.metric, "minimize" if c.max is not None else "maximize")
        return Pareto("max_abs_inventory_shares", "minimize")

    def metrics(self) -> list[str]:
        """Every figure a trial records."""
        names = [self.objective.metric, *(c.metric for c in self.constraints), self.pareto_axis().metric]
        return list(dict.fromkeys([*names, *STANDARD_METRICS]))
