"""Diff desired orders against resting ones: keep what is close enough, cancel the rest, place the gap.

Pure. Keeping an order preserves its queue priority, so an order within the price/size tolerance
stays, but only if it risks no more than the order it stands in for (the exposure caps computed by
``decide`` then still hold). Orders with a cancel in flight are neither kept nor cancelled again;
they still count as resting for the caps (see ``admit_under_cap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from core.inventory import Inventory, OrderLike, order_losses, worst_case_losses
from core.quoting import DesiredOrder
from core.units import PX_ONE, Outcome, Px, Qty, Side, Usdc6


class OpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One of our orders that is (or may still be) resting at the venue."""

    client_id: str
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    cancel_pending: bool = False

    def as_order(self) -> OrderLike:
        """The (outcome, side, px, qty) tuple the exposure functions take."""
        return (self.outcome, self.side, self.px, self.qty)


class Tolerance(msgspec.Struct, frozen=True, kw_only=True):
    """How far a resting order may be from the desired one and still be kept."""

    px: Px = 0
    qty_pct: float = 0.0


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What to do: cancel these client ids, place these orders; ``kept`` rest as they are."""

    cancels: tuple[str, ...] = ()
    places: tuple[DesiredOrder, ...] = ()
    kept: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing needs to be sent."""
        return not self.cancels and not self.places


def _close(o: OpenOrderLike, d: DesiredOrder, tol: Tolerance) -> bool:
    if o.outcome is not d.outcome or o.side is not d.side:
        return False
    if abs(o.px - d.px) > tol.px or abs(o.qty - d.qty) > d.qty * tol.qty_pct / 100:
        return False
    # Same token and side: a BUY loses its price if it fills and loses, a SELL loses 1 - price.
    if o.side is Side.BUY:
        return o.px * o.qty <= d.px * d.qty
    return (PX_ONE - o.px) * o.qty <= (PX_ONE - d.px) * d.qty


EXACT = Tolerance()


class OpenOrderLike(Protocol):
    """What reconcile reads of a resting order (``OpenOrder`` or the session's own records)."""

    @property
    def client_id(self) -> str: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def side(self) -> Side: ...
    @property
    def px(self) -> Px: ...
    @property
    def qty(self) -> Qty: ...
    @property
    def cancel_pending(self) -> bool: ...


def reconcile(
    desired: Sequence[DesiredOrder], open_orders: Iterable[OpenOrderLike], tolerance: Tolerance = EXACT
) -> Plan:
    """Return the cancels and places that turn ``open_orders`` into ``desired``.

    Exact matches are paired first (in order), then matches within the tolerance (closest price
    first); each resting order stands in for at most one desired order. ``reconcile(d, d)`` is empty.
    """
    live = [o for o in open_orders if not o.cancel_pending]
    pool: dict[tuple[Outcome, Side, Px, Qty], list[int]] = {}
    for j, o in enumerate(live):
        pool.setdefault((o.outcome, o.side, o.px, o.qty), []).append(j)
    used = [False] * len(live)
    kept: list[str] = []
    unmatched: list[DesiredOrder] = []
    for d in desired:
        js = pool.get((d.outcome, d.side, d.px, d.qty))
        if js:
            j = js.pop(0)
            used[j] = True
            kept.append(live[j].client_id)
        else:
            unmatched.append(d)
    places: list[DesiredOrder] = []
    if unmatched and (tolerance.px or tolerance.qty_pct):
        # Only orders of the same token and side can stand in for each other (and, without a price
        # tolerance, only at the same price).
        exact_px = tolerance.px == 0
        groups: dict[tuple[Outcome, Side, Px], list[int]] = {}
        for j, o in enumerate(live):
            if not used[j]:
                groups.setdefault((o.outcome, o.side, o.px if exact_px else 0), []).append(j)
        for d in unmatched:
            best = -1
            for j in groups.get((d.outcome, d.side, d.px if exact_px else 0), ()):
                o = live[j]
                if (
                    not used[j]
                    and _close(o, d, tolerance)
                    and (best < 0 or abs(o.px - d.px) < abs(live[best].px - d.px))
                ):
                    best = j
            if best >= 0:
                used[best] = True
                kept.append(live[best].client_id)
            else:
                places.append(d)
    else:
        places = unmatched
    cancels = tuple(o.client_id for j, o in enumerate(live) if not used[j])
    return Plan(cancels=cancels, places=tuple(places), kept=tuple(kept))


def admit_under_cap(
    places: Iterable[DesiredOrder], inv: Inventory, live: Iterable[OrderLike], cap_usdc6: Usdc6
) -> tuple[tuple[DesiredOrder, ...], tuple[DesiredOrder, ...]]:
    """Split new orders into those that fit beside every order still live, and those to defer.

    ``live`` must include orders being cancelled right now: until the venue confirms, they can fill.
    A deferred order is placed by a later decision, once the cancels are confirmed. Neither
    outcome's worst-case loss rises above ``max(cap, what it already was)``.
    """
    loss_yes, loss_no = worst_case_losses(inv, live)
    room_yes = max(cap_usdc6, loss_yes) - loss_yes
    room_no = max(cap_usdc6, loss_no) - loss_no
    admitted: list[DesiredOrder] = []
    deferred: list[DesiredOrder] = []
    for d in places:
        ly, ln = order_losses(d.outcome, d.side, d.px, d.qty)
        if ly <= room_yes and ln <= room_no:
            admitted.append(d)
            room_yes -= ly
            room_no -= ln
        else:
            deferred.append(d)
    return tuple(admitted), tuple(deferred)
