"""An account's positions as the Data API v2 serves them (``GET /data-api/v2/positions``).

Sizes are the venue's own balances (what ``/balance-allowance`` says, FAILED trades given back); cost
basis comes from replaying the account's trades that did not fail, by average cost: a BUY adds its
shares at its price, a SELL takes shares out at the average and realizes the difference. Shares an
account starts with (a split of ``shares_qty`` pairs) count at 0.5 each, what a pair costs per side.
Fees are kept apart (``entry_fees_usdc``), as the venue does: ``entry_cost_usdc`` is fee-exclusive.

The row shape is the official SDK's ``polymarket.models.data.portfolio.Position`` (``polymarket-client``
0.14.0): snake_case keys, numbers as JSON numbers, ``token_id``/``opposite_token_id`` for the asset ids;
a page is ``{"data": [...], "pagination": {"has_more", "next_cursor"}}`` with ``limit`` and ``cursor``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from core.units import PX_ONE, QTY_ONE, USDC6_ONE, USDC10_PER_USDC6, Outcome, Px, Qty, Side

__all__ = ["Basis", "Fill", "basis_from_fills", "position_row"]

_USDC10_ONE: Final = USDC6_ONE * USDC10_PER_USDC6


class Fill:
    """One fill of the account on one token: side, price in that token, size, fee paid."""

    __slots__ = ("fee_usdc6", "outcome", "px", "qty", "side", "ts_s")

    def __init__(self, outcome: Outcome, side: Side, px: Px, qty: Qty, fee_usdc6: int, ts_s: int) -> None:
        self.outcome = outcome
        self.side = side
        self.px = px
        self.qty = qty
        self.fee_usdc6 = fee_usdc6
        self.ts_s = ts_s


class Basis:
    """Average-cost basis of one token: shares, their cost (exact, in 1e-10 USDC), realized PnL."""

    __slots__ = (
        "bought_qty",
        "cost10",
        "fees_usdc6",
        "first_s",
        "last_s",
        "qty",
        "realized10",
        "sold_cost10",
    )

    def __init__(self, qty: Qty = 0, cost10: int = 0) -> None:
        self.qty = qty
        self.cost10 = cost10
        self.realized10 = 0
        self.sold_cost10 = 0  # the basis of the shares sold, what ``realized10`` is relative to
        self.fees_usdc6 = 0
        self.bought_qty = qty
        self.first_s = 0
        self.last_s = 0

    def apply(self, f: Fill) -> None:
        """Add one fill (average cost; a SELL beyond the basis realizes against a zero cost)."""
        self.fees_usdc6 += f.fee_usdc6
        self.first_s = self.first_s or f.ts_s
        self.last_s = f.ts_s
        if f.side is Side.BUY:
            self.qty += f.qty
            self.cost10 += f.px * f.qty
            self.bought_qty += f.qty
            return
        sold = min(f.qty, self.qty)
        part = self.cost10 * sold // self.qty if self.qty else 0
        self.realized10 += f.px * f.qty - part
        self.sold_cost10 += part
        self.cost10 -= part
        self.qty -= sold


def basis_from_fills(initial_qty: Qty, fills: Iterable[Fill]) -> Basis:
    """The basis of one token from the shares an account started with and its fills, in order."""
    b = Basis(initial_qty, initial_qty * (PX_ONE // 2))
    for f in fills:
        b.apply(f)
    return b


def _r(x: float) -> float:
    return round(x, 6)


def position_row(
    *,
    wallet: str,
    condition_id: str,
    token_id: str,
    opposite_token_id: str,
    outcome: str,
    opposite_outcome: str,
    outcome_index: int,
    size_qty: Qty,
    mergeable: bool,
    basis: Basis,
    price_px: Px,
    title: str,
    slug: str,
    event_id: str,
    neg_risk: bool,
    end_date: str,
) -> dict[str, Any]:
    """One Data API v2 position row (see the module docstring)."""
    size = size_qty / QTY_ONE
    avg = basis.cost10 / basis.qty / PX_ONE if basis.qty else 0.0
    entry = avg * size
    fees = basis.fees_usdc6 / USDC6_ONE
    price = price_px / PX_ONE
    value = price * size
    unrealized = value - entry
    realized = basis.realized10 / _USDC10_ONE
    return {
        "proxy_wallet": wallet,
        "token_id": token_id,
        "condition_id": condition_id,
        "current_size": _r(size),
        "avg_price": _r(avg),
        "entry_cost_usdc": _r(entry),
        "entry_fees_usdc": _r(fees),
        "total_cost_usdc": _r(entry + fees),
        "current_price": _r(price),
        "current_value": _r(value),
        "total_size": _r(basis.bought_qty / QTY_ONE),
        "realized_pnl": _r(realized),
        "unrealized_pnl": _r(unrealized),
        "total_pnl": _r(realized + unrealized),
        "percent_pnl": _r(unrealized / entry * 100) if entry else 0.0,
        "percent_realized_pnl": _r(basis.realized10 / basis.sold_cost10 * 100) if basis.sold_cost10 else 0.0,
        "status": "OPEN",
        "redeemable": False,
        "mergeable": mergeable,
        "negative_risk": neg_risk,
        "archived": False,
        "verified": False,
        "title": title,
        "slug": slug,
        "icon": "",
        "event_slug": slug,
        "outcome": outcome,
        "opposite_outcome": opposite_outcome,
        "name": "",
        "profile_image": "",
        "event_id": event_id,
        "outcome_index": outcome_index,
        "opposite_token_id": opposite_token_id,
        "end_date": end_date,
        "last_event_at": basis.last_s,
        "first_entry_at": basis.first_s,
    }
