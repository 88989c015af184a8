"""The msgspec Structs of the core modules the compiled build compiles, defined in a module it does not.

``core.book`` (``BookView``), ``core.estimators`` (``VolState``, ``VolParams``, ``FlowState``),
``core.inventory`` (``Inventory``, the ``OrderLike`` tuple), ``core.quoting`` (``QuoteParams``,
``Quote``, ``DesiredOrder``, ``Reasons``, ``Decision``) and ``core.reconcile`` (``OpenOrder``,
``Tolerance``, ``Plan``) define their Structs here and re-export them: import them from either.
Why: mypyc (``just build-fast``, docs/simulation.md) compiles a module's Structs into Python classes
built without their class keywords (``frozen``, ``kw_only``: python/mypy#21938) and with their field
annotations flattened to runtime classes (``int | None`` becomes ``type``, so msgspec would validate
and decode them wrongly); a Struct defined in an uncompiled module is the same class in both builds.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from core.units import QTY_ONE, USDC10_PER_USDC6, Outcome, Px, Qty, Side, Usdc6

OrderLike = tuple[Outcome, Side, Px, Qty]


class Inventory(msgspec.Struct, frozen=True, kw_only=True):
    """Positions and cash of one market (cash is relative to the start; it goes negative on buys)."""

    yes_qty: Qty = 0
    no_qty: Qty = 0
    cash_usdc6: Usdc6 = 0
    yes_cost_usdc6: Usdc6 = 0
    no_cost_usdc6: Usdc6 = 0
    fees_usdc6: Usdc6 = 0
    realized_usdc6: Usdc6 = 0

    @property
    def net_yes_qty(self) -> Qty:
        """Net YES exposure in Qty: a NO share counts as short one YES."""
        return self.yes_qty - self.no_qty

    def avg_cost_px(self, outcome: Outcome) -> Px:
        """Average cost of the held ``outcome`` shares (0 when flat)."""
        qty = self.yes_qty if outcome is Outcome.YES else self.no_qty
        cost = self.yes_cost_usdc6 if outcome is Outcome.YES else self.no_cost_usdc6
        return cost * USDC10_PER_USDC6 // qty if qty > 0 else 0


class BookView(msgspec.Struct, frozen=True, kw_only=True):
    """Top of book as the quoting core sees it. An empty side has ``qty == 0`` and ``px == 0``."""

    bid_px: Px
    bid_qty: Qty
    ask_px: Px
    ask_qty: Qty
    tick_px: Px
    min_qty: Qty
    ts_ns: int


class VolState(msgspec.Struct, frozen=True, kw_only=True):
    """Volatility estimate of the YES mid, sampled on a timer.

    ``mean_px`` is an EWMA of the mid and ``var_px2`` an EWMA of its squared distance from that mean
    (both with the configured half-life). ``vol_px`` is the larger of the EWMA standard deviation
    and the mid's current distance from the mean: the first measures how much the mid wanders, the
    second reacts at once to a jump and calms down as the mean catches up. Unlike summed squared
    changes, a mid bouncing between two ticks counts as half a tick, not as a trend. ``pulled`` is
    the hysteresis regime: set at the pull threshold, cleared only below the (lower) resume one.
    """

    mid_px: float = -1.0
    mean_px: float = 0.0
    var_px2: float = 0.0
    ts_ns: int = 0
    vol_px: int = 0
    pulled: bool = False


class VolParams(msgspec.Struct, frozen=True, kw_only=True):
    """Knobs of the volatility estimator (from ``VolatilityConfig``)."""

    halflife_s: float
    pull_threshold_px: int
    resume_threshold_px: int


class FlowState(msgspec.Struct, frozen=True, kw_only=True):
    """Time-decayed aggressive volume: ``buy_qty`` lifted asks, ``sell_qty`` hit bids."""

    buy_qty: float = 0.0
    sell_qty: float = 0.0
    ts_ns: int = 0


class QuoteParams(msgspec.Struct, frozen=True, kw_only=True):
    """Every quoting knob in integer units, compiled from ``Config`` by ``quote_params``."""

    fair_microprice: bool
    max_book_age_ns: int
    max_book_spread_px: Px  # 0: off
    levels: int
    half_spread_px: Px
    level_spacing_px: Px
    level_sizes_qty: tuple[Qty, ...] | None
    level_sizes_usdc6: tuple[Usdc6, ...] | None
    skew_px: Px
    inventory_limit_qty: Qty
    improve_best_ticks: int  # -1: off; 0: join the best; n: improve by up to n ticks
    sell_yes_via_buy_no: bool
    buy_yes_via_sell_no: bool
    widen_threshold_px: Px
    widen_per_px: float
    vol: VolParams
    flow_halflife_s: float
    flow_threshold_permille: int
    flow_shrink: float
    flow_min_qty: Qty
    per_market_cap_usdc6: Usdc6
    maker_only: bool
    requote_px_tolerance_ticks: int
    requote_qty_tolerance_pct: float
    min_requote_ns: int
    vol_sample_ns: int
    #: Rewards-aware quoting (``docs/rewards.md``): off leaves every decision as it was.
    rewards_enabled: bool = False
    rewards_band_pct: int = 50
    #: Merging YES+NO pairs (``core.merge``): off never merges; on, at least this many free pairs.
    merge_enabled: bool = False
    merge_min_pairs_qty: Qty = 20 * QTY_ONE


class Quote(msgspec.Struct, frozen=True):
    """One level of the ladder on the YES book."""

    px: Px
    qty: Qty


class DesiredOrder(msgspec.Struct, frozen=True):
    """How one quote is sent: token, side and that token's price."""

    outcome: Outcome
    side: Side
    px: Px
    qty: Qty


NoQuoteReason = Literal[
    "",
    "empty_book",
    "one_sided_book",
    "crossed_book",
    "wide_book",
    "stale_book",
    "volatility_pull",
    "no_room",
    "risk_reduce_only",
    "risk_paused",
    "risk_halted",
]


class Reasons(msgspec.Struct, frozen=True):
    """What went into a decision, for logs and for people.

    Not keyword-only: ``decide`` builds it positionally on its hot path (the field order is pinned
    by ``tests/core/test_quoting.py``); everywhere else, name the fields.
    """

    fair_source: str = ""
    inventory_qty: Qty = 0
    skew_px: int = 0
    base_half_spread_px: Px = 0
    vol_px: int = 0
    vol_widen_px: Px = 0
    half_spread_px: Px = 0
    flow_permille: int = 0
    bid_size_pct: int = 100
    ask_size_pct: int = 100
    maker_clamped: int = 0
    improved: int = 0
    cap_usdc6: Usdc6 = 0
    bound_usdc6: Usdc6 = 0
    loss_if_yes_usdc6: Usdc6 = 0
    loss_if_no_usdc6: Usdc6 = 0
    trims: tuple[str, ...] = ()
    pulled: str = ""
    risk_state: str = "active"  # core.risk.STATE_NAMES: the market's trading state
    risk_rule: str = ""  # the rule that set it (or that widened the half-spread)
    risk_widen_px: Px = 0  # the fast-move add-on included in half_spread_px


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The quote decision: empty ``orders`` with a ``no_quote`` reason means pull everything."""

    quote: bool
    no_quote: NoQuoteReason = ""
    fair_px: Px = 0
    skewed_mid_px: Px = 0
    bids: tuple[Quote, ...] = ()
    asks: tuple[Quote, ...] = ()
    orders: tuple[DesiredOrder, ...] = ()
    reasons: Reasons = Reasons()


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
