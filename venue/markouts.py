"""Markouts of our fills: how the mid moved after each fill, at +1 s, +10 s and +60 s.

A positive markout is good for us (we bought below where the mid went, or sold above). Fed by the
venue side as time passes (the simulator's tape, or the live feed in paper trading).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from core.units import NEVER_NS, NS_PER_S, PX_ONE
from venue.exchange import SimExchange

HORIZONS_S: Final = (1, 10, 60)
NEVER: Final = NEVER_NS


class Markouts:
    """Pending and settled markouts of one market's fills (sums in Usdc10 times 2, sizes in Qty)."""

    __slots__ = ("due", "last_mid2", "pending", "qty", "sum2")

    def __init__(self) -> None:
        self.pending: list[deque[tuple[int, int]]] = [deque() for _ in HORIZONS_S]
        self.sum2 = [0] * len(HORIZONS_S)  # sum of side * (2 * mid_later - 2 * px) * qty
        self.qty = [0] * len(HORIZONS_S)
        #: The earliest time a pending markout can be measured; callers compare before calling ``update``.
        self.due = NEVER
        self.last_mid2 = -1

    def start(self, ts_ns: int, fill_index: int) -> None:
        """Track the fill at ``fill_index`` of the venue's ``fills`` list."""
        for k, h in enumerate(HORIZONS_S):
            self.pending[k].append((ts_ns + h * NS_PER_S, fill_index))
        self.due = min(self.due, ts_ns + HORIZONS_S[0] * NS_PER_S)

    def update(self, ts_ns: int, ex: SimExchange) -> None:
        """Measure every markout due by ``ts_ns`` against the venue's current mid."""
        b = ex.book
        if b.bid_px < 0 or b.ask_px > PX_ONE:
            return
        mid2 = b.bid_px + b.ask_px
        self.last_mid2 = mid2
        fills = ex.fills
        sum2, qty = self.sum2, self.qty
        nxt = NEVER
        for k, dq in enumerate(self.pending):
            if dq and dq[0][0] <= ts_ns:  # (a horizon with nothing due is only compared)
                s, q = sum2[k], qty[k]
                while dq and dq[0][0] <= ts_ns:
                    f = fills[dq.popleft()[1]]
                    s += f.yes_side * (mid2 - 2 * f.yes_px) * f.qty
                    q += f.qty
                sum2[k], qty[k] = s, q
            if dq and dq[0][0] < nxt:
                nxt = dq[0][0]
        self.due = nxt
