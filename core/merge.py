"""When to merge YES+NO pairs back into collateral: pure, values in, values out.

A pair of one YES and one NO share of a market is worth exactly 1 pUSD at resolution, whatever
wins; merging it returns that collateral now (``core.inventory.apply_merge`` books it). A market
holding both outcomes ties up capital in pairs that can only ever pay 1: merging frees it and
changes no outcome's value.

**What is merged.** Only shares no sell order of ours offers: a resting (or pending, or
cancel-pending) SELL reserves its shares at the venue, and merging them would leave the order
unfunded (the venue would cancel it, or fail its trade). The pairs that are free on both sides,
``min(YES free, NO free)``, are merged exactly (1e-6 share, the token's base unit: the venue's
merge takes any base-unit amount), once they reach ``min_pairs_qty``. Sells resting on pairs are
left alone: their fills may pay more than the pair's 1 pUSD, and when they are cancelled the next
decision point merges what they freed.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.inventory import Inventory, OrderLike
from core.units import Outcome, Qty, Side

__all__ = ["free_pairs_qty", "merge_qty"]


def free_pairs_qty(inv: Inventory, orders: Iterable[OrderLike]) -> Qty:
    """The pairs held whose shares no SELL of ours offers: ``min(YES free, NO free)``, at least 0."""
    reserved_yes = reserved_no = 0
    for outcome, side, _, qty in orders:
        if side is Side.SELL:
            if outcome is Outcome.YES:
                reserved_yes += qty
            else:
                reserved_no += qty
    return max(0, min(inv.yes_qty - reserved_yes, inv.no_qty - reserved_no))


def merge_qty(inv: Inventory, orders: Iterable[OrderLike], min_pairs_qty: Qty) -> Qty:
    """Pairs to merge now: every free pair once there are at least ``min_pairs_qty`` (else 0)."""
    free = free_pairs_qty(inv, orders)
    return free if free >= max(min_pairs_qty, 1) else 0
