"""A loopback Polymarket exchange emulator: CLOB REST, WebSocket channels and Gamma over a simulated market.

The official clients run against it unmodified (``docs/emulator.md``). It does real I/O and reads the
wall clock, so it lives outside ``venue/`` and ``sim/``; the matching itself is
``venue.matching.MatchingEngine``.
"""

from __future__ import annotations

from emulator.scenario import Scenario, load_scenario, resolve_scenario
from emulator.server import Emulator
from emulator.state import ManualClock
from emulator.venue import Venue, WallClock

__all__ = [
    "Emulator",
    "ManualClock",
    "Scenario",
    "Venue",
    "WallClock",
    "load_scenario",
    "resolve_scenario",
]
