"""The msgspec Structs of ``venue.exchange`` (``QueueModel``, ``Fill``), in a module mypyc leaves alone.

``venue.exchange`` re-exports them: import them from either. Why they are not defined there:
``core/structs.py``'s docstring (mypyc would drop their class keywords and flatten their annotations).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from core.units import Side

QueueModelName = Literal["risk_averse", "probabilistic"]


class QueueModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How our place in the queue moves when the displayed level shrinks without a trade.

    ``risk_averse``: only trades advance us (cancels are assumed to come from behind).
    ``probabilistic``: a decrease of d is split ahead/behind in proportion to ``f(x) = x ** power``
    of the size ahead and behind (hftbacktest's power probability queue model), in expectation.
    """

    model: QueueModelName = "risk_averse"
    power: float = 2.0


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """A fill of ours as the ledger sees it (YES-equivalent side and price; ``mid2`` is 2x the mid).

    ``qty`` is in Qty (1e-6 share): fills may come in any such size, whatever the size of the order.
    ``cash_usdc6`` is what the fill moves on the YES-equivalent account before fees, with the venue's
    rounding: ``notional_usdc6(px, qty)`` for a YES fill; for a NO fill at ``q`` (short a YES at
    ``1 - q`` plus 1 USDC a share) the rest of the pair's 1 USDC, ``qty - notional_usdc6(q, qty)``.
    Both equal ``yes_px * qty`` exactly for sizes on the 0.01-share grid. ``rebate_usdc6`` is the
    maker rebate's upper bound for a maker fill (0 for a taker fill), apart from ``fee_usdc6``.
    """

    ts_ns: int
    mid2: int
    yes_side: Side
    yes_px: int
    qty: int
    fee_usdc6: int
    liquidity: Literal["maker", "taker"]
    cash_usdc6: int
    rebate_usdc6: int = 0
