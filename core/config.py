"""Strategy configuration: frozen msgspec Structs decoded straight from YAML.

Pure: no I/O. The loader (``app.configfile``) reads the file and reports errors as
``FILE: dotted.key: what is wrong``. Cross-field rules live in ``__post_init__`` and raise
``ValueError("key: message")`` so the loader can name the exact key.

Units in YAML are named by the key: ``_px`` is 1e-4 of a dollar per share (``150`` = 1.5 cents),
``_shares`` and ``_usdc`` (``_usd`` in the ``risk`` section: USDC too) are plain decimals converted
exactly (at most 2 and 6 decimals), ``_cents`` (at most 2 decimals: 0.01 cent is one ``_px``), ``_s``
and ``_ms`` are what they say.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from core.units import PX_ONE

#: Upper bounds that no real config reaches, so that every value converts to the core's integer
#: units without overflow (``.inf``, ``1e300``) and a typo of a few digits too many is caught.
MAX_SHARES: Final = 1e9
MAX_USDC: Final = 1e9
MAX_HALFLIFE_S: Final = 7 * 86_400.0
MAX_MS: Final = 86_400_000
MAX_HOURS: Final = 100 * 8_766.0
#: ``market_selection.income.book_candidates``: the default is this many books per market kept, at most
#: ``DEFAULT_MAX_BOOK_CANDIDATES``; no setting may ask for more than ``MAX_BOOK_CANDIDATES`` (a third of
#: the venue's 1,500 ``/book`` requests per 10 s per IP).
BOOK_CANDIDATES_PER_KEPT: Final = 3
DEFAULT_MAX_BOOK_CANDIDATES: Final = 100
MAX_BOOK_CANDIDATES: Final = 500


class Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Config base: immutable, keyword-only, and unknown keys are errors (typos are caught early).

    Every float must be finite (``.inf`` and ``.nan`` are YAML floats too); subclasses with their
    own ``__post_init__`` call this one first.
    """

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise ValueError(f"{name}: {v} is not a finite number")


PxInt = Annotated[int, Meta(ge=0, le=PX_ONE)]
Ms = Annotated[int, Meta(ge=0, le=MAX_MS)]
NonNeg = Annotated[float, Meta(ge=0, le=1e12)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
Shares = Annotated[float, Meta(gt=0, le=MAX_SHARES)]
Usdc = Annotated[float, Meta(gt=0, le=MAX_USDC)]
HalflifeS = Annotated[float, Meta(gt=0, le=MAX_HALFLIFE_S)]


def _check_decimals(key: str, value: float, decimals: int) -> None:
    # Sizes and money are integers in the core; a value finer than the unit is an error, not rounded.
    scaled = value * 10**decimals
    if abs(scaled - round(scaled)) > 1e-6:
        raise ValueError(f"{key}: {value} has more than {decimals} decimals")


class IncomeConfig(Base, frozen=True):
    """The reference quote ``rank_by: expected_income`` prices a market for (``docs/rewards.md``)."""

    #: Size of the reference bid and ask, shares; raised to the market's ``rewardsMinSize``.
    quote_shares: Shares = 100.0
    #: How long a fill is held before it is unwound, hours: the adverse move is the market's recent
    #: move scaled to this horizon.
    holding_hours: Annotated[float, Meta(gt=0, le=MAX_HOURS)] = 1.0
    #: ``refresh-markets`` fetches the CLOB order book of this many markets, the best by the Gamma-only
    #: estimate, and ranks them by their book instead. ``None``: 3 times the markets kept, at most
    #: ``DEFAULT_MAX_BOOK_CANDIDATES``; 0: no books (Gamma only).
    book_candidates: Annotated[int, Meta(ge=0, le=MAX_BOOK_CANDIDATES)] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_decimals("quote_shares", self.quote_shares, 2)

    def book_count(self, keep: int) -> int:
        """How many books to fetch when ``keep`` markets are kept (``book_candidates``' rule)."""
        if self.book_candidates is not None:
            return self.book_candidates
        return min(BOOK_CANDIDATES_PER_KEPT * max(keep, 0), DEFAULT_MAX_BOOK_CANDIDATES)


class MarketSelection(Base, frozen=True):
    """Which Gamma markets are worth making (see ``docs/selection.md``)."""

    limit: Annotated[int, Meta(ge=1, le=10_000)] = 10
    fetch_limit: Annotated[int, Meta(ge=1, le=100_000)] = 500
    classify: bool = False
    min_volume_24h: NonNeg = 0.0
    min_liquidity: NonNeg = 0.0
    max_spread_cents: Annotated[float, Meta(gt=0, le=100)] = 5.0
    mid_price_band: tuple[Fraction, Fraction] = (0.05, 0.95)
    exclude_tags: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    min_hours_to_end: Annotated[float, Meta(ge=0, le=MAX_HOURS)] = 0.0
    rank_by: Literal["volume_24h", "reward_density", "liquidity", "expected_income"] = "volume_24h"
    income: IncomeConfig = msgspec.field(default_factory=IncomeConfig)
    order_by: str = "volume24hr"
    ascending: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.mid_price_band
        if lo >= hi:
            raise ValueError(f"mid_price_band: lower bound {lo} must be below upper bound {hi}")
        if self.fetch_limit < self.limit:
            raise ValueError(f"fetch_limit: {self.fetch_limit} is below limit {self.limit}")


class VolatilityConfig(Base, frozen=True):
    """EWMA volatility of the mid; ``vol_px`` is the std dev of the mid's move over one half-life.

    The mid is sampled on the session's timer (every second by default), not on every book change.
    """

    halflife_s: HalflifeS = 60.0
    sample_ms: Annotated[int, Meta(ge=10, le=MAX_MS)] = 1000
    widen_threshold_px: PxInt = 100
    widen_per_px: Annotated[float, Meta(ge=0, le=100)] = 0.5
    pull_threshold_px: PxInt = 400
    resume_threshold_px: PxInt = 250

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.resume_threshold_px >= self.pull_threshold_px:
            raise ValueError(
                f"resume_threshold_px: {self.resume_threshold_px} must be below pull_threshold_px "
                f"{self.pull_threshold_px} (hysteresis)"
            )
        if self.widen_threshold_px > self.pull_threshold_px:
            raise ValueError("widen_threshold_px: must not exceed pull_threshold_px")


class FlowConfig(Base, frozen=True):
    """Signed trade flow; one-sided flow shrinks the size on the side being hit."""

    halflife_s: HalflifeS = 30.0
    one_sided_threshold: Annotated[float, Meta(gt=0, lt=1)] = 0.6
    shrink_factor: Fraction = 1.0
    min_flow_shares: Annotated[float, Meta(ge=0, le=MAX_SHARES)] = 50.0


class QuotingConfig(Base, frozen=True):
    """How the ladder is built around the (skewed) fair price."""

    fair_price: Literal["mid", "microprice"] = "microprice"
    max_book_age_ms: Ms = 60_000
    #: A book whose best ask is further than this above its best bid gives no quote (e.g. 0.01/0.99
    #: with nothing between: there is no price to stand on); null: quote any spread.
    max_book_spread_px: Annotated[int, Meta(ge=1, le=PX_ONE)] | None = 2_000
    levels: int = 3
    half_spread_px: PxInt = 100
    level_spacing_px: Annotated[int, Meta(ge=1, le=PX_ONE)] = 100
    level_sizes_shares: tuple[Shares, ...] | None = None
    level_sizes_usdc: tuple[Usdc, ...] | None = None
    base_size_shares: Shares | None = None
    size_step_shares: Annotated[float, Meta(ge=0, le=MAX_SHARES)] = 0.0
    skew_px: PxInt = 200
    improve_best_ticks: Annotated[int, Meta(ge=0, le=10)] | None = None
    sell_yes_via_buy_no: bool = True
    buy_yes_via_sell_no: bool = True
    requote_px_tolerance_ticks: Annotated[int, Meta(ge=0, le=100)] = 0
    requote_qty_tolerance_pct: Annotated[float, Meta(ge=0, le=100)] = 10.0
    min_requote_ms: Annotated[int, Meta(ge=0, le=60_000)] = 250
    volatility: VolatilityConfig = msgspec.field(default_factory=VolatilityConfig)
    flow: FlowConfig = msgspec.field(default_factory=FlowConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.levels <= 4:
            raise ValueError(f"levels: {self.levels} is not in 2..4")
        given = [
            name
            for name, value in (
                ("level_sizes_shares", self.level_sizes_shares),
                ("level_sizes_usdc", self.level_sizes_usdc),
                ("base_size_shares", self.base_size_shares),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "level_sizes_shares: give exactly one of level_sizes_shares, level_sizes_usdc or "
                f"base_size_shares (got {', '.join(given) or 'none'})"
            )
        for name, sizes, decimals in (
            ("level_sizes_shares", self.level_sizes_shares, 2),
            ("level_sizes_usdc", self.level_sizes_usdc, 6),
        ):
            if sizes is None:
                continue
            if len(sizes) != self.levels:
                raise ValueError(f"{name}: has {len(sizes)} sizes for {self.levels} levels")
            if any(b < a for a, b in pairwise(sizes)):
                raise ValueError(f"{name}: sizes must not shrink with depth")
            for s in sizes:
                _check_decimals(name, s, decimals)
        if self.base_size_shares is not None:
            _check_decimals("base_size_shares", self.base_size_shares, 2)
        _check_decimals("size_step_shares", self.size_step_shares, 2)


class InventoryConfig(Base, frozen=True):
    """Inventory and exposure limits. Caps are worst-case loss at resolution, in USDC."""

    per_market_ev_cap: Usdc = 100.0
    global_ev_cap: Usdc = 1_000.0
    #: The markets of one neg-risk event (``neg_risk_market_id``) share this budget; null: the
    #: per-market cap (an event is one bet: at most one of its markets resolves YES).
    per_event_ev_cap: Usdc | None = None
    inventory_limit_shares: Shares = 500.0
    maker_only: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.global_ev_cap < self.per_market_ev_cap:
            raise ValueError(
                f"global_ev_cap: {self.global_ev_cap} is below per_market_ev_cap {self.per_market_ev_cap}"
            )
        if self.per_event_ev_cap is not None and self.per_event_ev_cap > self.global_ev_cap:
            raise ValueError(
                f"per_event_ev_cap: {self.per_event_ev_cap} is above global_ev_cap {self.global_ev_cap}"
            )
        _check_decimals("per_market_ev_cap", self.per_market_ev_cap, 6)
        _check_decimals("global_ev_cap", self.global_ev_cap, 6)
        if self.per_event_ev_cap is not None:
            _check_decimals("per_event_ev_cap", self.per_event_ev_cap, 6)
        _check_decimals("inventory_limit_shares", self.inventory_limit_shares, 2)

    @property
    def event_cap(self) -> float:
        """The neg-risk event budget in USDC (``per_event_ev_cap``, else the per-market cap)."""
        return self.per_event_ev_cap if self.per_event_ev_cap is not None else self.per_market_ev_cap


class OpsConfig(Base, frozen=True):
    """Where state lives, and whether orders may be sent at all."""

    dry_run: bool = True
    #: Audit each market's book against REST ``GET /book`` once per this many seconds, the markets
    #: spread over the period (docs/trading.md, "A feed that stops"); 0 turns the audit off.
    book_audit_s: Annotated[float, Meta(ge=0, le=3600)] = 5.0
    #: Price levels per side the audit compares (with the tick).
    book_audit_levels: Annotated[int, Meta(ge=1, le=100)] = 3
    #: REST ``/book`` requests per second the audit makes at most (the venue allows 1,500 per 10 s).
    book_audit_max_rps: Annotated[float, Meta(gt=0, le=140)] = 50.0
    selected_markets_path: str = "local_state/market_maker/selected_markets.json"
    markets_json_path: str = "local_state/markets.json"
    markets_chroma_dir: str = "local_state/chroma"
    #: ``run-market-maker`` makes a run directory per session under ``<state_dir>/runs/``.
    state_dir: str = "local_state/market_maker"
    #: The human-readable log (Python logging, INFO and up) of ``run-market-maker``, across runs.
    log_path: str = "local_state/market_maker/polymm.log"
    #: Size in MiB past which a run's event log starts a new segment (the old one is gzipped) and
    #: the human log rolls over.
    log_rotate_mb: Annotated[float, Meta(ge=0.01, le=100_000)] = 100.0
    #: ``run-market-maker`` prints one status line per market on stdout this often; 0: never.
    status_interval_s: Annotated[float, Meta(ge=0, le=86_400)] = 10.0
    #: The control plane's port on 127.0.0.1 (``polymm status``, ``pause``, ...; docs/operations.md):
    #: 0 picks a free one (the run's ``control.json`` says which); null: no control plane.
    control_port: Annotated[int, Meta(ge=0, le=65_535)] | None = 0
    #: The Prometheus metrics' port on 127.0.0.1 (``/metrics``): 0 picks a free one; null: none.
    metrics_port: Annotated[int, Meta(ge=0, le=65_535)] | None = 0
    #: Record the session's market feed (every frame as received, its receive time, the engine's own
    #: inputs) beside its event log, for ``polymm sim --replay`` (docs/research.md).
    record_market_data: bool = True
    #: Live: open orders of ours found at start in the markets we trade are kept with their queue
    #: place (``adopt``) or cancelled, the cancel confirmed (``cancel``); elsewhere always cancelled.
    on_start: Literal["adopt", "cancel"] = "adopt"
    #: Live: how often our orders, trades and positions are compared with the venue's.
    reconcile_interval_s: Annotated[float, Meta(ge=1, le=3600)] = 30.0
    #: Live: a position drift that shows the same two positions (the venue's and ours) in this many
    #: listings in a row, over at least ``drift_resync_min_s``, with no trade of that market settling
    #: and no order of it in doubt, is resolved by adopting the venue's position (``docs/trading.md``,
    #: "The ledger"); null: the market stays held until a listing agrees.
    drift_resync_listings: Annotated[int, Meta(ge=2, le=1000)] | None = 3
    #: Live: the least time between the first and the last of those listings; above how far the
    #: venue's positions listing may lag its trades.
    drift_resync_min_s: Annotated[float, Meta(ge=0, le=86_400)] = 120.0
    #: Live: the longest a 429 may hold new orders before every quote is pulled (until they may go).
    max_rate_limit_pause_s: Annotated[float, Meta(gt=0, le=300)] = 10.0
    #: Live: the venue's rate-limit tier assumed until its ``Poly-RateLimit-Tier`` header says one.
    rate_limit_tier: Literal["standard", "copper", "bronze", "silver", "gold"] = "standard"
    #: The routed markets file is used only when its markets were fetched from Gamma at most this
    #: long ago, and from the Gamma the run points at (``docs/trading.md``, "Which markets").
    selected_markets_max_age_s: Annotated[float, Meta(gt=0, le=365 * 86_400.0)] = 86_400.0
    #: What a run does when the routed markets file is stale or from another Gamma: ``select``
    #: markets fresh (and say why), or ``stop`` with one line.
    stale_selection: Literal["select", "stop"] = "select"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in _OPS_PATHS:
            value = getattr(self, name)
            if not value.strip():
                raise ValueError(f"{name}: must name a file or directory")
            if "\x00" in value:
                raise ValueError(f"{name}: contains a NUL character")
            if name in _OPS_FILES and value.replace("\\", "/").rsplit("/", 1)[-1] in ("", ".", ".."):
                raise ValueError(f"{name}: {value!r} names a directory, not a file")


_OPS_PATHS: Final = (
    "selected_markets_path",
    "markets_json_path",
    "markets_chroma_dir",
    "state_dir",
    "log_path",
)
_OPS_FILES: Final = ("selected_markets_path", "markets_json_path", "log_path")


# Bounds of the risk section: no real config reaches them; they keep every value finite and convertible.
_RiskUsd = Annotated[float, Meta(gt=0, le=1e9)]
_RiskCents = Annotated[float, Meta(gt=0, le=100)]
_RiskShares = Annotated[float, Meta(gt=0, le=1e9)]


class RiskConfig(Base, frozen=True):
    """Risk rules (``core.risk``): loss stops, fast moves, a hard inventory limit, breakers.

    Each rule sets a trading state for its market or the whole book (``ACTIVE < REDUCE_ONLY < PAUSED
    < HALTED``; a HALT stays until an operator resumes). Loss and move limits fire when reached, the
    error rate and the ages when exceeded. The defaults leave quoting as it is unless a limit is hit:
    the loss stops default to the exposure caps, the rest to limits no orderly market reaches.
    """

    #: Marked loss of the whole book since 00:00 UTC that halts the book; null: ``inventory.global_ev_cap``.
    daily_loss_stop_usd: _RiskUsd | None = None
    #: Marked loss of one market since 00:00 UTC that halts it; null: ``inventory.per_market_ev_cap``.
    market_daily_loss_stop_usd: _RiskUsd | None = None
    #: What a market's loss stop halts: that ``market``, or the whole ``book``.
    halt_scope: Literal["market", "book"] = "market"
    #: Fall of the book's marked PnL from the day's peak (0 at 00:00 UTC) that halts the book; null: off.
    max_drawdown_usd: _RiskUsd | None = None
    #: A mid move this large within ``fast_move_window_s`` widens the market's half-spread; null: off.
    fast_move_cents: _RiskCents | None = 3.0
    fast_move_window_s: Annotated[float, Meta(ge=1, le=3600)] = 10.0
    #: What a fast move adds to the half-spread (on top of the volatility widening).
    widen_action_addon_cents: Annotated[float, Meta(ge=0, le=100)] = 1.0
    #: A mid move this large within the window pauses the market until the move leaves it; null: off.
    pause_move_cents: _RiskCents | None = 10.0
    #: At this net position (YES minus NO shares, either way) the market only reduces it; null: off.
    inventory_hard_limit_shares: _RiskShares | None = None
    #: More rejects and venue errors than this in a minute pause the market (the book for errors not
    #: tied to one market); null: off.
    max_errors_per_min: Annotated[int, Meta(ge=0, le=10_000)] | None = 30
    #: A market whose data is older than this is paused until it is current again; null: off.
    max_feed_age_s: Annotated[float, Meta(gt=0, le=86_400)] | None = 60.0
    #: With the venue's dead-man switch (live), a last acknowledged heartbeat older than this pauses
    #: the book (heartbeats go every 5 s; the venue cancels everything after 10 s); null: off.
    max_heartbeat_age_s: Annotated[float, Meta(gt=0, le=3600)] | None = 8.0

    def __post_init__(self) -> None:
        for name in ("daily_loss_stop_usd", "market_daily_loss_stop_usd", "max_drawdown_usd"):
            value = getattr(self, name)
            if value is not None:
                _check_decimals(name, value, 6)
        for name in ("fast_move_cents", "pause_move_cents", "widen_action_addon_cents"):
            value = getattr(self, name)
            if value is not None:
                _check_decimals(name, value, 2)
        if self.inventory_hard_limit_shares is not None:
            _check_decimals("inventory_hard_limit_shares", self.inventory_hard_limit_shares, 2)
        if (
            self.fast_move_cents is not None
            and self.pause_move_cents is not None
            and self.pause_move_cents <= self.fast_move_cents
        ):
            raise ValueError(
                f"pause_move_cents: {self.pause_move_cents} must be above fast_move_cents "
                f"{self.fast_move_cents} (a larger move pauses)"
            )


class RewardsConfig(Base, frozen=True):
    """Rewards-aware quoting (``docs/rewards.md``): hold one level per side in the liquidity-rewards band.

    Off by default. On, and in a market with a rewards program, ``core.quoting.decide`` moves a side's
    ladder toward the size-cutoff-adjusted mid when its best level is outside the band, and raises that
    level to the reward minimum size; never past the maker-only clamp, our own fair price, the exposure
    caps, the volatility pull or the risk gate.
    """

    enabled: bool = False
    #: A moved level sits at most this percentage of the max spread from the adjusted mid (strictly
    #: inside the band: the edge scores 0); 50 scores at least a quarter of the size per sample.
    band_pct: Annotated[int, Meta(ge=1, le=99)] = 50
    #: Live and paper: every this many seconds, ask which of our resting orders score (live: the
    #: venue's ``POST /orders-scoring``; paper: ``core.rewards`` on the paper venue) and what the
    #: venue reports we earned today, for the status output (``app.rewards``); 0 never asks. Off the
    #: trading path; independent of ``enabled``.
    track_interval_s: Annotated[float, Meta(ge=0, le=86_400)] = 60.0


class MergeConfig(Base, frozen=True):
    """Merging YES+NO pairs back into collateral (``core.merge``; ``docs/trading.md``, "Merging").

    Off by default. On, a market holding at least ``min_pairs_shares`` pairs that no sell of ours
    offers merges them all (1 pUSD per pair) at its next decision point.
    """

    enabled: bool = False
    #: Merge once the free pairs (YES and NO not offered by a sell of ours) reach this many shares.
    min_pairs_shares: Shares = 20.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_decimals("min_pairs_shares", self.min_pairs_shares, 2)


class Config(Base, frozen=True):
    """One strategy's whole configuration file."""

    strategy: Literal["market_maker", "option_seller", "risk_manager"] = "market_maker"
    market_selection: MarketSelection = msgspec.field(default_factory=MarketSelection)
    quoting: QuotingConfig = msgspec.field(
        default_factory=lambda: QuotingConfig(level_sizes_shares=(10.0, 20.0, 40.0))
    )
    inventory: InventoryConfig = msgspec.field(default_factory=InventoryConfig)
    ops: OpsConfig = msgspec.field(default_factory=OpsConfig)
    risk: RiskConfig = msgspec.field(default_factory=RiskConfig)
    rewards: RewardsConfig = msgspec.field(default_factory=RewardsConfig)
    merge: MergeConfig = msgspec.field(default_factory=MergeConfig)
