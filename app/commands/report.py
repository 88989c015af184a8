"""``polymm report RUN_DIR``: one self-contained HTML page about a run (opens offline)."""

from __future__ import annotations

import argparse
import sys

from app.commands import HELP
from research.report import REPORT_NAME, write_report
from research.runlog import RunFormatError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` subcommand."""
    p = sub.add_parser(
        "report",
        help=HELP["report"],
        description=(
            "Write one self-contained HTML file about a run (simulation, paper or dry-run): PnL over time "
            "split into spread capture, inventory mark-to-market, fees, rebates and resolution; inventory "
            "per market; our quotes against the market's best bid, ask and mid; markout curves; fill "
            "rates, quote uptime and time at the caps; a per-market table. No script and no network: it "
            "opens from disk anywhere."
        ),
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run directory (events.npz or events.jsonl [+ summary.json])"
    )
    p.add_argument("--out", default=None, help=f"output file [RUN_DIR/{REPORT_NAME}]")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and say where."""
    try:
        path = write_report(args.run_dir, args.out)
    except RunFormatError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"wrote    {path}")
    return 0
