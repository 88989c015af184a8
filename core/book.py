"""A level-2 book of one token on per-price arrays, and the frozen view ``decide`` reads.

Pure and deterministic: no I/O, clock or randomness. The book mutates only through its methods and
belongs to one owner (a market session); ``view()`` hands the core an immutable snapshot.

Per-price arrays (10_001 slots, one per 1e-4) replay about 4x faster than a SortedDict for this
bounded grid. The best prices are tracked incrementally; when the best level empties we scan toward
the other side in steps of ``scan_step`` (the gcd of every price seen, normally the tick).
"""

from __future__ import annotations

from math import gcd
from typing import Final

from core.messages import Level
from core.structs import BookView
from core.units import PX_ONE, Px, Qty, Side

_NO_BID: Final = -1
_NO_ASK: Final = PX_ONE + 1
_BUY: Final = Side.BUY


_EMPTY: Final = (0,) * (PX_ONE + 1)


class L2Book:
    """Aggregated sizes per price for one token. Crossed states are tolerated (the venue sends them)."""

    __slots__ = ("ask_px", "asks", "bid_px", "bids", "min_qty", "scan_step", "tick_px", "ts_ns")

    def __init__(self, tick_px: Px = 100, min_qty: Qty = 0) -> None:
        """Create an empty book on a ``tick_px`` grid."""
        self.bids: list[Qty] = [0] * (PX_ONE + 1)
        self.asks: list[Qty] = [0] * (PX_ONE + 1)
        self.bid_px: Px = _NO_BID
        self.ask_px: Px = _NO_ASK
        self.tick_px: Px = tick_px
        self.min_qty: Qty = min_qty
        self.scan_step: int = tick_px
        self.ts_ns: int = 0

    def copy(self) -> L2Book:
        """An independent book in the same state."""
        other = L2Book(self.tick_px, self.min_qty)
        other.bids[:] = self.bids
        other.asks[:] = self.asks
        other.bid_px, other.ask_px = self.bid_px, self.ask_px
        other.scan_step, other.ts_ns = self.scan_step, self.ts_ns
        return other

    # --- mutation ----------------------------------------------------------------------------------

    def clear(self) -> None:
        """Drop every level (a new epoch: tick change, reconnect)."""
        # Slice assignment copies in C (~10 us for both sides, against ~0.5 ms for a Python loop):
        # every snapshot clears, and a reconnect sends one per token.
        self.bids[:] = _EMPTY
        self.asks[:] = _EMPTY
        self.bid_px = _NO_BID
        self.ask_px = _NO_ASK
        self.scan_step = self.tick_px

    def set_tick(self, tick_px: Px) -> None:
        """Change the tick; callers start a new epoch (``clear``) as the venue semantics require."""
        self.tick_px = tick_px
        self.scan_step = gcd(self.scan_step, tick_px)

    def apply_snapshot(
        self, bids: tuple[Level, ...], asks: tuple[Level, ...], ts_ns: int, tick_px: Px = 0, min_qty: Qty = 0
    ) -> None:
        """Replace the book with a snapshot (levels in any order)."""
        if tick_px:
            self.tick_px = tick_px
        if min_qty:
            self.min_qty = min_qty
        self.clear()
        step = self.tick_px
        b, a = self.bids, self.asks
        best_bid, best_ask = _NO_BID, _NO_ASK
        for px, qty in bids:
            if qty > 0:
                b[px] = qty
                step = gcd(step, px)
                best_bid = max(best_bid, px)
        for px, qty in asks:
            if qty > 0:
                a[px] = qty
                step = gcd(step, px)
                best_ask = min(best_ask, px)
        self.scan_step = step or 1
        self.bid_px, self.ask_px = best_bid, best_ask
        self.ts_ns = ts_ns

    def set_level(self, side: Side, px: Px, qty: Qty, ts_ns: int) -> bool:
        """Set one level to a new total size (0 deletes). Returns True if the best bid or ask moved."""
        # The simulator calls this once per replayed level: locals and early returns, no attribute
        # read twice (``docs/simulation.md``, "Speed").
        self.ts_ns = ts_ns
        step = self.scan_step
        if px % step:
            step = self.scan_step = gcd(step, px)
        if side is _BUY:
            levels = self.bids
            levels[px] = qty
            best = self.bid_px
            if qty > 0:
                if px > best:
                    self.bid_px = px
                    return True
                return px == best
            if px != best:
                return False
            p = px - step
            while p >= 0 and not levels[p]:
                p -= step
            self.bid_px = p if p >= 0 else _NO_BID
            return True
        levels = self.asks
        levels[px] = qty
        best = self.ask_px
        if qty > 0:
            if px < best:
                self.ask_px = px
                return True
            return px == best
        if px != best:
            return False
        p = px + step
        while p <= PX_ONE and not levels[p]:
            p += step
        self.ask_px = p if p <= PX_ONE else _NO_ASK
        return True

    # --- reading -----------------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """Best bid ``(px, qty)`` or None."""
        return (self.bid_px, self.bids[self.bid_px]) if self.bid_px >= 0 else None

    def best_ask(self) -> Level | None:
        """Best ask ``(px, qty)`` or None."""
        return (self.ask_px, self.asks[self.ask_px]) if self.ask_px <= PX_ONE else None

    def qty_at(self, side: Side, px: Px) -> Qty:
        """Displayed size at ``px`` on ``side``."""
        return self.bids[px] if side is Side.BUY else self.asks[px]

    def levels(self, side: Side, depth: int = 10_001) -> tuple[Level, ...]:
        """Up to ``depth`` levels of ``side``, best first."""
        out: list[Level] = []
        if side is Side.BUY:
            p, step, arr = self.bid_px, self.scan_step, self.bids
            while p >= 0 and len(out) < depth:
                if arr[p]:
                    out.append((p, arr[p]))
                p -= step
        else:
            p, step, arr = self.ask_px, self.scan_step, self.asks
            while p <= PX_ONE and len(out) < depth:
                if arr[p]:
                    out.append((p, arr[p]))
                p += step
        return tuple(out)

    def view(self) -> BookView:
        """Frozen top-of-book snapshot for ``decide``."""
        bid, ask = self.bid_px, self.ask_px
        has_bid, has_ask = bid >= 0, ask <= PX_ONE
        return BookView(
            bid_px=bid if has_bid else 0,
            bid_qty=self.bids[bid] if has_bid else 0,
            ask_px=ask if has_ask else 0,
            ask_qty=self.asks[ask] if has_ask else 0,
            tick_px=self.tick_px,
            min_qty=self.min_qty,
            ts_ns=self.ts_ns,
        )
