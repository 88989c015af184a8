"""Inventory of one binary market and its worst-case exposure at resolution.

Pure: values in, values out. One NO share is economically short one YES plus 1 USDC, so the net YES
position is ``yes_qty - no_qty``. At resolution YES pays 1 USDC per share if it wins, NO otherwise.

**Exposure, defined once.** Each outcome's worst-case loss is the inventory's loss in that outcome
(cash plus the shares that pay, negative when the inventory locks in a gain) plus every resting or
cancel-pending order that would *hurt* in that outcome, filled in full; an order that would help is
assumed not to fill (it may not). That is exactly the worst of every combination of fills (the
tests check it by brute force). Losses are compared in ``Usdc10`` (``px * qty``), so no rounding
enters a risk check; they are reported in Usdc6 rounded up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from core.structs import Inventory, OrderLike
from core.units import (
    PX_ONE,
    SETTLE_PER_QTY_USDC6,
    USDC10_PER_USDC6,
    Outcome,
    Px,
    Qty,
    Side,
    Usdc6,
    Usdc10,
    notional_usdc6,
    usdc10_to_usdc6_ceil,
)


def apply_fill(inv: Inventory, outcome: Outcome, side: Side, px: Px, qty: Qty, fee_usdc6: Usdc6) -> Inventory:
    """Return the inventory after one fill of ours (fee paid in USDC, zero for makers).

    The cash is ``notional_usdc6(px, qty)``: exact for 0.01-share sizes, floored to the micro-USDC
    for odd fill sizes as the venue does (``core.units``).
    """
    notional = notional_usdc6(px, qty)
    cash = inv.cash_usdc6 - side * notional - fee_usdc6
    held = inv.yes_qty if outcome is Outcome.YES else inv.no_qty
    cost = inv.yes_cost_usdc6 if outcome is Outcome.YES else inv.no_cost_usdc6
    realized = inv.realized_usdc6
    if side is Side.BUY:
        held, cost = held + qty, cost + notional
    else:
        # Average-cost accounting: the sold shares carry their share of the cost basis.
        removed = cost * min(qty, held) // held if held > 0 else 0
        realized += notional - removed
        held, cost = held - qty, cost - removed
    if outcome is Outcome.YES:
        return msgspec.structs.replace(
            inv,
            yes_qty=held,
            yes_cost_usdc6=cost,
            cash_usdc6=cash,
            fees_usdc6=inv.fees_usdc6 + fee_usdc6,
            realized_usdc6=realized,
        )
    return msgspec.structs.replace(
        inv,
        no_qty=held,
        no_cost_usdc6=cost,
        cash_usdc6=cash,
        fees_usdc6=inv.fees_usdc6 + fee_usdc6,
        realized_usdc6=realized,
    )


def apply_merge(inv: Inventory, qty: Qty) -> Inventory:
    """Return the inventory after merging ``qty`` pairs: ``qty`` YES and ``qty`` NO become cash.

    A pair (one YES and one NO share) is worth exactly 1 USDC, so ``qty`` pairs (in 1e-6 shares) add
    exactly ``qty`` Usdc6 of cash. Each outcome's merged shares carry their share of its cost basis
    (average cost, floored as a sale is), and the realized PnL moves by the pairs' value less that
    cost. Nothing else moves: the value if YES wins, if NO wins, and at any mid are unchanged.

    Raises:
        ValueError: ``qty`` is negative or more than the pairs held.
    """
    if qty == 0:
        return inv
    if qty < 0 or qty > inv.yes_qty or qty > inv.no_qty:
        raise ValueError(f"cannot merge {qty} pairs from YES {inv.yes_qty} / NO {inv.no_qty} (1e-6 shares)")
    yes_removed = inv.yes_cost_usdc6 * qty // inv.yes_qty
    no_removed = inv.no_cost_usdc6 * qty // inv.no_qty
    value = qty * SETTLE_PER_QTY_USDC6
    return msgspec.structs.replace(
        inv,
        yes_qty=inv.yes_qty - qty,
        no_qty=inv.no_qty - qty,
        yes_cost_usdc6=inv.yes_cost_usdc6 - yes_removed,
        no_cost_usdc6=inv.no_cost_usdc6 - no_removed,
        cash_usdc6=inv.cash_usdc6 + value,
        realized_usdc6=inv.realized_usdc6 + value - yes_removed - no_removed,
    )


def settle(inv: Inventory, yes_won: bool) -> Inventory:
    """Return the inventory after resolution: winning shares pay 1 USDC each, all shares are gone."""
    payout = (inv.yes_qty if yes_won else inv.no_qty) * SETTLE_PER_QTY_USDC6
    return msgspec.structs.replace(
        inv,
        yes_qty=0,
        no_qty=0,
        yes_cost_usdc6=0,
        no_cost_usdc6=0,
        cash_usdc6=inv.cash_usdc6 + payout,
        realized_usdc6=inv.realized_usdc6 + payout - inv.yes_cost_usdc6 - inv.no_cost_usdc6,
    )


def value_if(inv: Inventory, yes_won: bool) -> Usdc6:
    """Cash after resolution if ``yes_won`` (relative to the start)."""
    return inv.cash_usdc6 + (inv.yes_qty if yes_won else inv.no_qty) * SETTLE_PER_QTY_USDC6


def mark_to_market(inv: Inventory, yes_mid_px: Px) -> Usdc6:
    """Value of cash plus shares at the YES mid (NO at ``1 - mid``), rounded down to the micro-USDC."""
    marked_usdc10 = inv.yes_qty * yes_mid_px + inv.no_qty * (PX_ONE - yes_mid_px)
    return inv.cash_usdc6 + marked_usdc10 // USDC10_PER_USDC6


def marked_pnl_usdc6(inv: Inventory, yes_mid_px: Px) -> Usdc6:
    """PnL against the cost basis with the shares marked at the YES mid (NO at ``1 - mid``), fees paid.

    Realized PnL, less fees, plus what the shares held are worth at the mid less what they cost: for
    an inventory that started flat, the same as ``mark_to_market``; for one that started with the
    venue's positions (live), PnL since those positions' cost.
    """
    marked_usdc6 = (inv.yes_qty * yes_mid_px + inv.no_qty * (PX_ONE - yes_mid_px)) // USDC10_PER_USDC6
    return inv.realized_usdc6 - inv.fees_usdc6 + marked_usdc6 - inv.yes_cost_usdc6 - inv.no_cost_usdc6


def order_losses_usdc10(outcome: Outcome, side: Side, px: Px, qty: Qty) -> tuple[Usdc10, Usdc10]:
    """What one order adds to the loss if it fills, under (YES wins, NO wins); 0 where it would help.

    A bid on YES (BUY YES at p, or SELL NO at 1 - p) loses ``p * qty`` if NO wins; an ask on YES
    (SELL YES at p, or BUY NO at 1 - p) loses ``(1 - p) * qty`` if YES wins.
    """
    yes_px = px if outcome is Outcome.YES else PX_ONE - px
    bid_on_yes = (outcome is Outcome.YES) == (side is Side.BUY)
    if bid_on_yes:
        return 0, yes_px * qty
    return (PX_ONE - yes_px) * qty, 0


def inventory_losses_usdc10(inv: Inventory) -> tuple[Usdc10, Usdc10]:
    """The inventory's own loss if YES wins and if NO wins; negative where it locks in a gain."""
    return (
        -(inv.cash_usdc6 + inv.yes_qty * SETTLE_PER_QTY_USDC6) * USDC10_PER_USDC6,
        -(inv.cash_usdc6 + inv.no_qty * SETTLE_PER_QTY_USDC6) * USDC10_PER_USDC6,
    )


def worst_case_losses_usdc10(inv: Inventory, orders: Iterable[OrderLike] = ()) -> tuple[Usdc10, Usdc10]:
    """Worst-case loss if YES wins and if NO wins, every hurting order filled; signed (< 0 is a gain)."""
    loss_yes, loss_no = inventory_losses_usdc10(inv)
    yes, buy = Outcome.YES, Side.BUY
    for outcome, side, px, qty in orders:
        # order_losses_usdc10, inlined: this runs for every resting order on every requote.
        if (outcome is yes) == (side is buy):  # a bid on YES loses its YES price if NO wins
            loss_no += (px if outcome is yes else PX_ONE - px) * qty
        else:  # an ask on YES loses 1 - its YES price if YES wins
            loss_yes += (PX_ONE - px if outcome is yes else px) * qty
    return loss_yes, loss_no


def worst_case_losses(inv: Inventory, orders: Iterable[OrderLike] = ()) -> tuple[Usdc6, Usdc6]:
    """Loss if YES wins and loss if NO wins in Usdc6 (each >= 0, rounded up), every hurting order filled."""
    loss_yes, loss_no = worst_case_losses_usdc10(inv, orders)
    return max(0, usdc10_to_usdc6_ceil(loss_yes)), max(0, usdc10_to_usdc6_ceil(loss_no))


def worst_case_loss(inv: Inventory, orders: Iterable[OrderLike] = ()) -> Usdc6:
    """The larger of the two outcomes' losses: what the exposure caps bound."""
    return max(worst_case_losses(inv, orders))


def share_budget(cap_usdc6: Usdc6, exposures: Sequence[Usdc6]) -> list[Usdc6]:
    """Split a worst-case budget: each market keeps its exposure plus an equal share of the rest.

    The rooms add up to ``cap_usdc6`` (give or take rounding down), so markets acting on them at the
    same time cannot together exceed the cap; when the total is already over, every market's room is
    its exposure scaled down in proportion, so each trims and none gets a negative room.
    """
    n = len(exposures)
    if n == 0:
        return []
    total = sum(exposures)
    headroom = cap_usdc6 - total
    if headroom >= 0:
        share = headroom // n
        return [e + share for e in exposures]
    # Over the cap: every market shrinks in proportion, so no room goes negative (a negative room
    # would be clamped to 0 and its share of the excess lost) and the rooms add up to the cap.
    return [e * cap_usdc6 // total for e in exposures]


def budget_rooms(
    exposures: Sequence[Usdc6],
    global_cap_usdc6: Usdc6 | None,
    groups: Sequence[str] = (),
    group_cap_usdc6: Usdc6 | None = None,
) -> list[Usdc6 | None]:
    """Each market's room under the global budget and, for grouped markets, its group's budget.

    ``groups[i]`` names market ``i``'s group (a neg-risk event's ``neg_risk_market_id``; ``""`` for
    none). A group's markets share ``group_cap_usdc6`` as the global cap is shared by all markets
    (``share_budget``); a market's room is the smaller of its two shares. The sum of the group's
    per-market worst cases bounds the event's worst case (at most one market of a neg-risk event
    resolves YES, so the true joint worst case is never larger). ``None``: no limit.
    """
    rooms: list[Usdc6 | None] = (
        list(share_budget(global_cap_usdc6, exposures))
        if global_cap_usdc6 is not None
        else [None] * len(exposures)
    )
    if group_cap_usdc6 is None or not groups:
        return rooms
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        if g:
            members.setdefault(g, []).append(i)
    for idx in members.values():
        shares = share_budget(group_cap_usdc6, [exposures[i] for i in idx])
        for i, room in zip(idx, shares, strict=True):
            current = rooms[i]
            rooms[i] = room if current is None or room < current else current
    return rooms
