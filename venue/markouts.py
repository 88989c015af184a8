"""Markouts of our fills: how the mid moved after each fill, at +1 s, +10 s and +60 s.

A positive markout is good for us (we bought below where the mid went, or sold above). Fed by the
venue side as time passes (the simulator's tape, or the live feed in paper trading).
"""

from __future__ import annotations

from typing import Final

from core.units import NEVER_NS, NS_PER_S, PX_ONE
from venue.exchange import SimExchange

HORIZONS_S: Final = (1, 10, 60)
NEVER: Final = NEVER_NS
_HORIZONS_NS: Final = tuple(h * NS_PER_S for h in HORIZONS_S)
_FIRST_NS: Final = HORIZONS_S[0] * NS_PER_S


class Markouts:
    """Pending and settled markouts of one market's fills (sums in Usdc10 times 2, sizes in Qty).

    Every horizon measures the same fills in the order they were started, so one list of starts
    (``ts_ns``, fill index) serves them all, each horizon with its cursor (the first fill it has
    still to measure): a fill costs two appends to start, and a measure no queue operation.
    """

    __slots__ = ("cursor", "due", "fill_idx", "last_mid2", "qty", "start_ts", "sum2")

    def __init__(self) -> None:
        self.start_ts: list[int] = []  # each tracked fill's time, in the order started
        self.fill_idx: list[int] = []  # ... and its index in the venue's ``fills``
        self.cursor = [0] * len(HORIZONS_S)  # per horizon: the first start not measured yet
        self.sum2 = [0] * len(HORIZONS_S)  # sum of side * (2 * mid_later - 2 * px) * qty
        self.qty = [0] * len(HORIZONS_S)
        #: The earliest time a pending markout can be measured; callers compare before calling ``update``.
        self.due = NEVER
        self.last_mid2 = -1

    def start(self, ts_ns: int, fill_index: int) -> None:
        """Track the fill at ``fill_index`` of the venue's ``fills`` list."""
        self.start_ts.append(ts_ns)
        self.fill_idx.append(fill_index)
        self.due = min(self.due, ts_ns + _FIRST_NS)

    def update(self, ts_ns: int, ex: SimExchange) -> None:
        """Measure every markout due by ``ts_ns`` against the venue's current mid."""
        b = ex.book
        if b.bid_px < 0 or b.ask_px > PX_ONE:
            return
        mid2 = b.bid_px + b.ask_px
        self.last_mid2 = mid2
        fills = ex.fills
        start_ts, fill_idx = self.start_ts, self.fill_idx
        n = len(start_ts)
        cursor, sum2, qty = self.cursor, self.sum2, self.qty
        nxt = NEVER
        for k, h in enumerate(_HORIZONS_NS):
            c = cursor[k]
            if c < n and start_ts[c] + h <= ts_ns:  # (a horizon with nothing due is only compared)
                s, q = sum2[k], qty[k]
                while c < n and start_ts[c] + h <= ts_ns:
                    f = fills[fill_idx[c]]
                    s += f.yes_side * (mid2 - 2 * f.yes_px) * f.qty
                    q += f.qty
                    c += 1
                sum2[k], qty[k], cursor[k] = s, q, c
            if c < n and start_ts[c] + h < nxt:
                nxt = start_ts[c] + h
        self.due = nxt
