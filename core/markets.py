"""What the quoting path needs to know about one binary market.

Pure data. Discovery (``adapters.gamma``) builds richer records and reduces them to ``MarketInfo``.
"""

from __future__ import annotations

import msgspec

from core.units import Outcome, Px, Qty


class MarketInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Identity and trading rules of one binary market (condition id and its two tokens)."""

    market: str
    yes_token: str
    no_token: str
    tick_px: Px = 100
    min_qty: Qty = 500
    neg_risk: bool = False
    fee_rate_ppm: int = 0
    question: str = ""

    def token(self, outcome: Outcome) -> str:
        """Token id of ``outcome``."""
        return self.yes_token if outcome is Outcome.YES else self.no_token
