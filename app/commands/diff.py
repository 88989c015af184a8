"""``polymm diff RUN_A RUN_B``: where two runs of the same input first part, and what it changed."""

from __future__ import annotations

import argparse
import sys

from app.commands import HELP
from research.diff import diff_paths
from research.runlog import RunFormatError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``diff`` subcommand."""
    p = sub.add_parser(
        "diff",
        help=HELP["diff"],
        description=(
            "Compare two runs of the same input (different code or config). Prints the first decision on "
            "which they part, with both sides' reasons field by field (decisions aligned per market by "
            "time and order), then per market every figure that differs: fills, PnL parts, inventory path, "
            "uptime. Either side may be a run directory or a baseline directory (baseline.json, see "
            "`just regress`). Exits 0 when the runs are identical, 1 when they differ, 2 on bad input."
        ),
    )
    p.add_argument(
        "run_a", metavar="RUN_A", help="run directory (events.npz or events.jsonl, summary.json) or baseline"
    )
    p.add_argument("run_b", metavar="RUN_B", help="run directory or baseline")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Compare and print; the exit status is the verdict."""
    try:
        result = diff_paths(args.run_a, args.run_b)
    except RunFormatError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(result.lines[-1] if args.quiet else result.text())
    return 1 if result.differ else 0
