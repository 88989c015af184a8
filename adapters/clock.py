"""The wall clock, behind the ``Clock`` port (the simulator uses ``sim.runner.SimClock``)."""

from __future__ import annotations

import time


class LiveClock:
    """Nanoseconds since the epoch that never jump: wall time at start plus the monotonic clock.

    A system clock correction must not stall requotes (a backward step) or age every book at once
    (a forward step); timestamps stay comparable with the venue's, drifting only as NTP would.
    """

    def __init__(self) -> None:
        self._wall0 = time.time_ns()
        self._mono0 = time.monotonic_ns()

    def now_ns(self) -> int:
        """Current time, monotonic."""
        return self._wall0 + (time.monotonic_ns() - self._mono0)
