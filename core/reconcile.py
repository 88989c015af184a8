"""Diff desired orders against resting ones: keep what is close enough, cancel the rest, place the gap.

Pure. Keeping an order preserves its queue priority, so an order within the price/size tolerance
stays, but only if it risks no more than the order it stands in for (the exposure caps computed by
``decide`` then still hold). Orders with a cancel in flight are neither kept nor cancelled again;
they still count as resting for the caps (see ``admit_under_cap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from core.inventory import Inventory, OrderLike, inventory_losses_usdc10
from core.quoting import DesiredOrder
from core.structs import Plan, Tolerance
from core.units import PX_ONE, USDC10_PER_USDC6, Outcome, Px, Qty, Side, Usdc6

_YES, _BUY = Outcome.YES, Side.BUY  # (an enum member read from its class costs ~0.1 us per requote)


def _close(o: OpenOrderLike, d: DesiredOrder, tol: Tolerance) -> bool:
    if o.outcome is not d.outcome or o.side is not d.side:
        return False
    if abs(o.px - d.px) > tol.px or abs(o.qty - d.qty) > d.qty * tol.qty_pct / 100:
        return False
    # Same token and side: a BUY loses its price if it fills and loses, a SELL loses 1 - price.
    if o.side is _BUY:
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
    if not live:
        return Plan(places=tuple(desired))
    # Only orders of the same token and side can stand in for each other, and without a price
    # tolerance only at the same price: group the resting orders once, in their order.
    exact_px = tolerance.px == 0
    groups: dict[tuple[Outcome, Side, Px], list[int]] = {}
    for j, o in enumerate(live):
        key = (o.outcome, o.side, o.px if exact_px else 0)
        group = groups.get(key)
        if group is None:
            groups[key] = [j]
        else:
            group.append(j)
    return _match(desired, live, groups, exact_px, tolerance)


def _match(
    desired: Sequence[DesiredOrder],
    live: Sequence[OpenOrderLike],
    groups: dict[tuple[Outcome, Side, Px], list[int]],
    exact_px: bool,
    tolerance: Tolerance,
) -> Plan:
    # reconcile's pairing, once ``live`` (non-empty) is grouped by token, side and (exact_px) price.
    used = [False] * len(live)
    kept: list[str] = []
    unmatched: list[tuple[DesiredOrder, list[int] | None]] = []
    for d in desired:
        group = groups.get((d.outcome, d.side, d.px if exact_px else 0))
        if group is None:  # the usual requote: the ladder moved, nothing rests at this price
            unmatched.append((d, None))
            continue
        hit = -1
        px, qty = d.px, d.qty
        for j in group:
            o = live[j]
            if not used[j] and o.px == px and o.qty == qty:
                hit = j
                break
        if hit >= 0:
            used[hit] = True
            kept.append(live[hit].client_id)
        else:
            unmatched.append((d, group))
    places: list[DesiredOrder] = []
    tolerant = tolerance.px or tolerance.qty_pct
    for d, group in unmatched:
        best = -1
        if group and tolerant:
            for j in group:
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
    cancels = tuple([o.client_id for j, o in enumerate(live) if not used[j]])
    return Plan(cancels=cancels, places=tuple(places), kept=tuple(kept))


def admit(
    places: Iterable[DesiredOrder], inv: Inventory, resting: Iterable[OrderLike], cap_usdc6: Usdc6
) -> tuple[tuple[DesiredOrder, ...], tuple[DesiredOrder, ...]]:
    """Split new orders into those that can go now and those a later decision places.

    ``resting`` must include orders being cancelled right now: until the venue confirms, they can
    fill. An order goes now only if

    * neither outcome's worst-case loss (``core.inventory``) rises above ``max(cap, the worst case
      with what rests now)``, the rule ``decide`` trims by: an order that lowers the worst case
      always fits, and
    * a SELL sells shares we hold that no other SELL (resting, cancel pending or admitted) offers:
      shares are never offered twice, so a requote sells again only once the old sell is gone.
    """
    loss_yes, loss_no = inventory_losses_usdc10(inv)
    loss_yes, loss_no, free_yes, free_no = _add_resting(resting, loss_yes, loss_no, inv.yes_qty, inv.no_qty)
    bound = max(cap_usdc6 * USDC10_PER_USDC6, loss_yes, loss_no)
    return _split(places, bound - loss_yes, bound - loss_no, free_yes, free_no)


def _add_resting(
    resting: Iterable[OrderLike], loss_yes: int, loss_no: int, free_yes: Qty, free_no: Qty
) -> tuple[int, int, Qty, Qty]:
    # Each outcome's worst-case loss (Usdc10) and the shares no SELL offers, with ``resting`` added.
    yes, buy = _YES, _BUY
    for outcome, side, px, qty in resting:
        # order_losses_usdc10, inlined: this runs for every resting order on every requote.
        if side is buy:
            if outcome is yes:  # a bid on YES: loses its price if NO wins
                loss_no += px * qty
            else:  # an ask on YES: loses its NO price if YES wins
                loss_yes += px * qty
        elif outcome is yes:  # an ask on YES that reserves YES shares
            loss_yes += (PX_ONE - px) * qty
            free_yes -= qty
        else:  # a bid on YES that reserves NO shares
            loss_no += (PX_ONE - px) * qty
            free_no -= qty
    return loss_yes, loss_no, free_yes, free_no


def _split(
    places: Iterable[DesiredOrder], room_yes: int, room_no: int, free_yes: Qty, free_no: Qty
) -> tuple[tuple[DesiredOrder, ...], tuple[DesiredOrder, ...]]:
    # admit's split, given each outcome's room under the bound (Usdc10) and the shares no sell offers.
    yes, buy = _YES, _BUY
    admitted: list[DesiredOrder] = []
    deferred: list[DesiredOrder] = []
    for d in places:
        px, qty = d.px, d.qty
        # As for a resting order: what the order loses if it fills, and the shares a SELL would offer.
        if d.side is buy:
            if d.outcome is yes:
                fits = px * qty <= room_no
                if fits:
                    room_no -= px * qty
            else:
                fits = px * qty <= room_yes
                if fits:
                    room_yes -= px * qty
        elif d.outcome is yes:
            fits = (PX_ONE - px) * qty <= room_yes and qty <= free_yes
            if fits:
                room_yes -= (PX_ONE - px) * qty
                free_yes -= qty
        else:
            fits = (PX_ONE - px) * qty <= room_no and qty <= free_no
            if fits:
                room_no -= (PX_ONE - px) * qty
                free_no -= qty
        (admitted if fits else deferred).append(d)
    return tuple(admitted), tuple(deferred)


def reconcile_admit(
    desired: Sequence[DesiredOrder],
    live: Sequence[OpenOrderLike],
    pending: Sequence[OrderLike],
    tolerance: Tolerance,
    inv: Inventory,
    cap_usdc6: Usdc6,
) -> tuple[Plan, tuple[DesiredOrder, ...]]:
    """``reconcile``, then ``admit`` of its places, in one pass over the resting orders.

    ``live``: the resting orders without a cancel in flight (their ``cancel_pending`` is not read);
    ``pending``: those with one, as ``(outcome, side, px, qty)``. Returns the plan and the places that
    go now: with ``resting`` every order of both, exactly ``reconcile(desired, live + pending,
    tolerance)`` and ``admit(plan.places, inv, resting, cap_usdc6)[0]`` (a session's requote: it reads
    each resting order once instead of three times).
    """
    yes, buy = _YES, _BUY
    loss_yes, loss_no = inventory_losses_usdc10(inv)
    free_yes, free_no = inv.yes_qty, inv.no_qty
    exact_px = tolerance.px == 0
    groups: dict[tuple[Outcome, Side, Px], list[int]] = {}
    for j, o in enumerate(live):
        outcome, side, px, qty = o.outcome, o.side, o.px, o.qty
        # _add_resting's losses and reserved shares, inlined here so that each live order is read
        # once (its fields also group it for reconcile's pairing, as there).
        if side is buy:
            if outcome is yes:
                loss_no += px * qty
            else:
                loss_yes += px * qty
        elif outcome is yes:
            loss_yes += (PX_ONE - px) * qty
            free_yes -= qty
        else:
            loss_no += (PX_ONE - px) * qty
            free_no -= qty
        key = (outcome, side, px if exact_px else 0)
        group = groups.get(key)
        if group is None:
            groups[key] = [j]
        else:
            group.append(j)
    if pending:
        loss_yes, loss_no, free_yes, free_no = _add_resting(pending, loss_yes, loss_no, free_yes, free_no)
    plan = _match(desired, live, groups, exact_px, tolerance) if live else Plan(places=tuple(desired))
    if not plan.places:
        return plan, ()
    bound = max(cap_usdc6 * USDC10_PER_USDC6, loss_yes, loss_no)
    return plan, _split(plan.places, bound - loss_yes, bound - loss_no, free_yes, free_no)[0]
