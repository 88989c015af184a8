"""``polymm emulator``: a loopback Polymarket CLOB + WebSocket + Gamma emulator over a simulated market."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

import msgspec

from app.commands import HELP
from app.configfile import ConfigFileError, load_struct
from emulator import Emulator
from emulator.scenario import SCENARIO_DIR, Scenario, resolve_scenario

DEFAULT_SCENARIO = "default"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulator`` subcommand."""
    p = sub.add_parser(
        "emulator",
        help=HELP["emulator"],
        description=(
            "Serve the CLOB REST API (L1/L2 auth, signed V2 orders, books, cancels, heartbeats), the "
            "market and user WebSocket channels and a Gamma /markets for the scenario's markets, all on "
            "one port, with synthetic or replayed flow trading against whatever rests, and the "
            "scenario's fault injection. GET /emulator/status shows counters. See docs/emulator.md."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind [127.0.0.1]")
    p.add_argument("--port", type=int, default=8080, help="port for REST and WebSocket; 0 picks one [8080]")
    p.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help=f"scenario name in {SCENARIO_DIR}/ or a YAML path [{DEFAULT_SCENARIO}]",
    )
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request line")
    p.add_argument("--exit-after", type=float, default=None, metavar="S", help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the emulator until Ctrl-C (or ``--exit-after`` seconds, for smoke tests)."""
    try:
        path = resolve_scenario(args.scenario)
    except FileNotFoundError as exc:
        raise ConfigFileError(f"--scenario: {exc}") from None
    scenario = load_struct(path, Scenario)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"polymm emulator: warning: binding {args.host}, not the loopback address", file=sys.stderr)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        emu = Emulator(scenario, args.seed, host=args.host, port=args.port, base_dir=path.parent)
    except FileNotFoundError as exc:
        raise ConfigFileError(f"{path}: replay file not found: {exc.filename}") from None
    except OSError as exc:
        print(f"polymm emulator: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise ConfigFileError(f"{path}: {exc}") from None
    with emu:
        print(f"scenario {scenario.name or path.stem} (seed {emu.seed}) from {path}")
        print(f"  CLOB REST  {emu.clob_url}")
        print(f"  market WS  {emu.ws_market_url}")
        print(f"  user WS    {emu.ws_user_url}")
        print(f"  Gamma      {emu.gamma_url}   (polymm refresh-markets --gamma-url {emu.gamma_url})")
        print(f"  status     {emu.clob_url}/emulator/status")
        for m in emu.venue.market_ids():
            print(f"  market {m['slug']} ({m['version']}): {m['market']}")
            print(f"    YES {m['yes_token']}")
            print(f"    NO  {m['no_token']}")
        sys.stdout.flush()
        if args.exit_after is not None:
            threading.Event().wait(args.exit_after)
            summary = emu.status()
            print(
                msgspec.json.encode({"requests": summary["requests"], "markets": summary["markets"]}).decode()
            )
            return 0
        try:
            emu.wait()
        except KeyboardInterrupt:
            print("polymm emulator: stopping", file=sys.stderr)
    return 0
