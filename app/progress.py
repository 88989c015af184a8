"""A dependency-free progress bar on stderr (only drawn on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Draws ``label [#####     ] 42% 1.2M/3.0M events 0.8M/s`` on one line of a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self.t0 = time.perf_counter()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        """Update the bar (at most ~10 times a second)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        fill = int(frac * self.width)
        rate = done / max(now - self.t0, 1e-9)
        self.stream.write(
            f"\r{self.label} [{'#' * fill}{' ' * (self.width - fill)}] {frac:4.0%} "
            f"{_si(done)}/{_si(total)} events {_si(rate)}/s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _si(x: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"
