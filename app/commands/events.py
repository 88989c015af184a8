"""``polymm events RUN_DIR``: a run's event log as readable JSON lines."""

from __future__ import annotations

import argparse
import sys

from app.commands import HELP
from research.runlog import RunFormatError, event_lines


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``events`` subcommand."""
    p = sub.add_parser(
        "events",
        help=HELP["events"],
        description=(
            "Print a run directory's event log as JSON lines, one record per line in log order: first the "
            "`units` record (the scale and unit of every integer field: px in 1e-4 USDC per share, qty in "
            "1e-6 share, *_usdc6 in 1e-6 USDC, ts_ns in ns since the epoch), then every record with "
            "`kind`, `ts_ns` and `market`: decisions with their reasons, place/cancel/cancel_all, fills, "
            "venue answers, rewards, risk changes, settlements. A simulation stores them in columns "
            "(RUN_DIR/events.npz) and not its input (RUN_DIR/input.json names it): this prints the lines "
            "the simulator's JSON encoding gives; a paper or dry-run session's events.jsonl is printed as "
            "it is. E.g. `polymm events runs/default --kind fill | jq .px`."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (events.npz or events.jsonl)")
    p.add_argument(
        "--kind",
        action="append",
        metavar="K",
        help="only records of this kind (decision, place, cancel, fill, canceled, ...); repeatable",
    )
    p.add_argument("--market", metavar="M", default=None, help="only records of this market id")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the lines; a run directory that cannot be read is one line on stderr (exit 2)."""
    out = sys.stdout.buffer
    try:
        for line in event_lines(args.run_dir, args.kind, args.market):
            out.write(line if line.endswith(b"\n") else line + b"\n")
    except RunFormatError as exc:
        out.flush()
        print(str(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:  # (| head)
        sys.stderr.close()
        return 0
    out.flush()
    return 0
