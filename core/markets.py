"""What the quoting path needs to know about one binary market.

Pure data. Discovery (``adapters.gamma``) builds richer records and reduces them to ``MarketInfo``.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from core.rewards import RewardParams
from core.units import QTY_ONE, Outcome, Px, Qty, Usdc6

#: The venue's two order protocols, as Gamma's ``version`` names them: ``v1`` markets trade CTF token
#: ids (``clobTokenIds``) on the CTF exchanges, ``v2`` (Protocol V2) markets trade position ids
#: (``positionIds``) on ExchangeV3.
ProtocolVersion = Literal["v1", "v2"]
PROTOCOL_VERSIONS: Final = ("v1", "v2")


class MarketInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Identity and trading rules of one binary market (condition id and its two tokens).

    ``yes_token``/``no_token`` are the ids the market trades by: CTF token ids for a ``v1`` market,
    Protocol V2 position ids for a ``v2`` one.
    """

    market: str
    yes_token: str
    no_token: str
    version: ProtocolVersion = "v1"
    tick_px: Px = 100
    min_qty: Qty = 5 * QTY_ONE
    neg_risk: bool = False
    #: The neg-risk event this market belongs to ("" for none): its markets share an exposure cap.
    neg_risk_market_id: str = ""
    fee_rate_ppm: int = 0
    #: Share of the taker fees paid back to makers (``feeSchedule.rebateRate``), in millionths.
    rebate_ppm: int = 0
    question: str = ""
    #: Liquidity rewards (Gamma ``rewardsMaxSpread`` in Px: 4.5 cents = 450; 0: no program).
    rewards_max_spread_px: Px = 0
    #: Gamma ``rewardsMinSize``: smaller orders do not score.
    rewards_min_qty: Qty = 0
    #: The market's daily pool (Gamma ``clobRewards[].rewardsDailyRate`` summed), micro-USDC.
    rewards_daily_usdc6: Usdc6 = 0

    def reward_params(self) -> RewardParams:
        """The market's reward terms as ``core.rewards`` and ``core.quoting.decide`` take them."""
        return RewardParams(
            max_spread_px=self.rewards_max_spread_px,
            min_qty=self.rewards_min_qty,
            daily_usdc6=self.rewards_daily_usdc6,
        )

    def token(self, outcome: Outcome) -> str:
        """Token id of ``outcome``."""
        return self.yes_token if outcome is Outcome.YES else self.no_token
