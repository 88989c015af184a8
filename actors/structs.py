"""The msgspec Structs of ``actors.session`` (``OrderRecord``, ``SessionStats``) and the order states.

In a module the compiled build leaves alone; ``actors.session`` re-exports them: import them from
either. Why they are not defined there: ``core/structs.py``'s docstring (mypyc would drop their class
keywords and flatten their annotations).
"""

from __future__ import annotations

import msgspec

from core.structs import OrderLike
from core.units import Outcome, Side

#: ``OrderRecord.status``: sent, not yet acknowledged; resting; a cancel of it in flight.
PENDING_NEW = 0
LIVE = 1
CANCEL_PENDING = 2


class OrderRecord(msgspec.Struct, kw_only=True):
    """Our view of one order we sent (mutable: owned by the session)."""

    client_id: str
    outcome: Outcome
    side: Side
    px: int
    qty: int
    status: int = PENDING_NEW

    @property
    def cancel_pending(self) -> bool:
        """True while a cancel of this order is in flight."""
        return self.status == CANCEL_PENDING

    def as_order(self) -> OrderLike:
        """(outcome, side, px, remaining qty) for the exposure functions."""
        return (self.outcome, self.side, self.px, self.qty)


class SessionStats(msgspec.Struct, kw_only=True):
    """Counters for summaries and status."""

    decisions: int = 0
    decide_calls: int = 0
    places: int = 0
    cancels: int = 0
    rejects: int = 0
    fills: int = 0
    max_abs_inventory_qty: int = 0
    merges: int = 0
    merged_qty: int = 0
    merge_failures: int = 0
