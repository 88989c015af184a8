"""The ``polymm`` command line: one subcommand per workflow, each in ``app/commands/``.

Only the module of the command that runs is imported (``app.commands.COMMANDS``): ``polymm --help``
imports none, and a command never imports another's dependencies. Mistakes in the input (flags, a
config, credentials) exit 2 with one line; a service that cannot be reached at start exits 1 with
one line; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from app.buildinfo import stale_build_error
from app.commands import COMMANDS
from app.configfile import ConfigFileError, ServiceUnavailable
from app.process import keep_default_recursion_limit

_DESCRIPTION = """\
polymm: a Polymarket market-making engine.

Typical flow:
  polymm sim --config configs/market_maker.yaml --out runs/default        simulate (shipped data)
  polymm quote --config configs/market_maker.yaml --book BOOK.json        one decision, with reasons
  polymm refresh-markets --config configs/market_maker.yaml               market cache from Gamma
  polymm route-markets --source-config ... --market-maker-config ...      split it between strategies
  polymm run-market-maker --config configs/market_maker.yaml --mode paper trade on paper (or dry-run/live)
  polymm status / pause / resume / cancel-all / halt                     operate the running bot
  polymm emulator / polymm demo-live                                      the venue on 127.0.0.1

Every command has --help; docs/ explains each part. Input mistakes exit 2 with one line.
"""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``polymm quote: the following arguments are
    required: --config (see polymm quote --help)``) and exit 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        """Print one line and exit 2."""
        self.exit(2, f"{self.prog}: {' '.join(message.split())} (see {self.prog} --help)\n")


def _command_of(argv: Sequence[str]) -> str | None:
    # The top-level parser takes no option with a value, so the first word is the command.
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full options of the command ``argv`` names (every command when None).

    Commands other than the one named get a one-line entry for ``polymm --help`` and nothing is
    imported for them.
    """
    parser = OneLineParser(
        prog="polymm", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = {name for name, _module, _help in COMMANDS}
    wanted = _command_of(argv) if argv is not None else None
    if argv is None:
        modules = {module for _name, module, _help in COMMANDS}
    else:
        modules = {module for name, module, _help in COMMANDS if name == wanted and wanted in names}
    registered: set[str] = set()
    for name, module, text in COMMANDS:
        if module in modules:
            if module not in registered:
                registered.add(module)
                importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI: exit 2 for bad input and 1 for a service unavailable at start, each one line."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    with keep_default_recursion_limit():
        parser = build_parser(args_in)
    args = parser.parse_args(args_in)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    if stale := stale_build_error():  # the old code would run: never a silent surprise
        print(stale, file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except ConfigFileError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ServiceUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
