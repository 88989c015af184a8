"""The ``polymm`` command line: one subcommand per workflow, each in ``app/commands/``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from app.configfile import ConfigFileError

# Subcommand modules, in the order `polymm --help` lists them. Each module defines
# `register(subparsers) -> None` (adding its parser with `set_defaults(run=...)`).
_COMMAND_MODULES: tuple[str, ...] = (
    "app.commands.quote",
    "app.commands.sim",
    "app.commands.report",
    "app.commands.diff",
    "app.commands.sweep",
    "app.commands.markets",
    "app.commands.run",
    "app.commands.emulator",
    "app.commands.demo",
)

_DESCRIPTION = """\
polymm: a Polymarket market-making engine.

Typical flow:
  polymm sim --config configs/market_maker.yaml --out runs/default        simulate (shipped data)
  polymm diff RUN_A RUN_B / polymm report RUN_DIR / polymm sweep ...      compare, picture, tune
  polymm quote --config configs/market_maker.yaml --book BOOK.json        one decision, with reasons
  polymm refresh-markets --config configs/market_maker.yaml               market cache from Gamma
  polymm route-markets --source-config ... --market-maker-config ...      split it between strategies
  polymm run-market-maker --config configs/market_maker.yaml --mode paper trade on paper (or dry-run/live)
  polymm emulator / polymm demo-live                                      the venue on 127.0.0.1

Every command has --help; docs/ explains each part. Config mistakes exit 2 with one line.
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="polymm", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; configuration mistakes exit 2 with one line, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ConfigFileError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
