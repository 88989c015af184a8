"""The wall clock, behind the ``Clock`` port (the simulator uses ``sim.runner.SimClock``)."""

from __future__ import annotations

import time


class LiveClock:
    """Nanoseconds since the epoch from the system clock."""

    def now_ns(self) -> int:
        """Current wall-clock time."""
        return time.time_ns()
