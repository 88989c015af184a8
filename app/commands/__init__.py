"""The ``polymm`` subcommands: which module defines each, and the one line ``polymm --help`` shows.

``app.cli`` imports a command's module only when that command runs (or its own ``--help`` is asked
for), so ``polymm --help`` imports none of them and a command never imports another's dependencies
(the trading process never imports the emulator or the demo). Each module's ``register(sub)`` adds
its parsers, with ``help=HELP[name]``.
"""

from __future__ import annotations

from typing import Final

#: ``(name, module, help)`` in the order ``polymm --help`` lists them.
COMMANDS: Final[tuple[tuple[str, str, str], ...]] = (
    ("quote", "app.commands.quote", "show the quote decision for one Polymarket book"),
    (
        "sim",
        "app.commands.sim",
        "run a deterministic simulation and write events.npz, summary.json and report.html",
    ),
    (
        "events",
        "app.commands.events",
        "print a run's event log as JSON lines (units header first), by kind and market",
    ),
    (
        "record",
        "app.commands.record",
        "record the market channel of some markets (every frame, its receive time) for replay",
    ),
    (
        "report",
        "app.commands.report",
        "write a run's self-contained HTML report (PnL, inventory, quotes, markouts)",
    ),
    (
        "diff",
        "app.commands.diff",
        "compare two runs: the first divergent decision, then the figures (exit 1: differ)",
    ),
    (
        "sweep",
        "app.commands.sweep",
        "a parameter search (Optuna) over seeded simulations, on processes or Ray",
    ),
    (
        "refresh-markets",
        "app.commands.markets",
        "fetch markets from Gamma into the market cache and the search index",
    ),
    (
        "route-markets",
        "app.commands.markets",
        "split the market cache between the strategies (one selected_markets.json each)",
    ),
    ("markets", "app.commands.markets", "query the market index built by refresh-markets"),
    (
        "run-market-maker",
        "app.commands.run",
        "quote the selected markets: live, paper (simulated fills on the live book) or dry-run",
    ),
    ("status", "app.commands.control", "a running bot: each market's risk state, position, PnL, orders"),
    ("positions", "app.commands.control", "a running bot's positions, cash and marked PnL per market"),
    ("pause", "app.commands.control", "a running bot: stop quoting one market (--market) or all, now"),
    (
        "resume",
        "app.commands.control",
        "a running bot: lift pauses, reduce-only and HALTs (one market or all)",
    ),
    ("reduce-only", "app.commands.control", "a running bot: quote only what lowers each position"),
    (
        "cancel-all",
        "app.commands.control",
        "a running bot: pause every market, cancel every order, confirm none is open",
    ),
    ("halt", "app.commands.control", "a running bot: HALT the book until resumed, across restarts"),
    (
        "emulator",
        "app.commands.emulator",
        "serve an emulated Polymarket CLOB (REST, WebSocket, Gamma) on 127.0.0.1",
    ),
    (
        "demo-live",
        "app.commands.demo",
        "run the market maker live against the local exchange emulator and check it cleans up",
    ),
)

HELP: Final[dict[str, str]] = {name: text for name, _module, text in COMMANDS}
