"""Emulator scenarios: the markets, the other participants, the accounts and the faults.

A scenario is YAML decoded straight into the frozen ``Scenario`` Struct; unknown keys are errors.
Units follow the house rules: ``_px`` is 1e-4 USDC per share (``4800`` = 0.48), ``_qty`` is 1e-6 shares
(``5_000_000`` = 5 shares), ``_usdc6`` is micro-USDC, ``_ms``/``_s`` are what they say. Sizes of orders
(``min_qty``, the flow's and the initial book's sizes) must be whole numbers of 0.01 shares
(``ORDER_QTY_STEP``), as the venue's limit orders are; that also refuses a file still written in the old
0.01-share unit (``500`` for 5 shares). Shipped scenarios live in ``configs/emulator/``;
``docs/emulator.md`` describes every key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from adapters.files import resolve_named_yaml
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, TICKS_PX, USDC6_ONE
from emulator.protocol import ProtocolVersion, is_v2_position_id, v2_market_ids

__all__ = [
    "SCENARIO_DIR",
    "VENUE_TIERS",
    "AccountConfig",
    "FaultRule",
    "FlowConfig",
    "HttpFault",
    "InitialBook",
    "LatencyFault",
    "MarketConfig",
    "RateLimitConfig",
    "RejectFault",
    "ReplayConfig",
    "Scenario",
    "TierConfig",
    "TradeFailureConfig",
    "WsDropFault",
    "WsFreezeFault",
    "derive_ids",
    "fine_tick_px",
    "load_scenario",
    "neg_risk_market_id",
    "resolve_scenario",
]

#: Where ``--scenario NAME`` looks.
SCENARIO_DIR: Final = Path("configs/emulator")

PxInt = Annotated[int, Meta(ge=0, le=PX_ONE)]
TickPx = Annotated[int, Meta(ge=1, le=1000)]
NonNegInt = Annotated[int, Meta(ge=0)]
PosInt = Annotated[int, Meta(ge=1)]
Probability = Annotated[float, Meta(ge=0, le=1)]
_VALID_TICKS: Final = frozenset(TICKS_PX)


def _check_order_qty(field: str, qty: int) -> None:
    # Limit orders are sized in whole 0.01 shares; anything else would be refused by the venue.
    if qty % ORDER_QTY_STEP:
        raise ValueError(
            f"{field}: {qty} is not a whole number of 0.01 shares (sizes are in 1e-6 shares: "
            f"5 shares is {5 * QTY_ONE})"
        )


class _Base(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Config base: immutable, keyword-only, unknown keys are errors."""


class FlowConfig(_Base, frozen=True, kw_only=True):
    """Synthetic other participants of one market (all prices on the YES book).

    Makers keep a ladder of ``maker_levels`` bids and asks around a fair value that random-walks,
    and re-post it every ``maker_refresh_ms`` (which sends them to the back of the queue). Takers
    arrive as a Poisson process and send FAK orders against the touch, reaching ``taker_reach_ticks``
    ticks through it, so whatever rests at the best price trades first.
    """

    enabled: bool = True
    maker_levels: Annotated[int, Meta(ge=0, le=50)] = 4
    #: Distance from fair to the makers' best bid and best ask.
    maker_half_spread_px: PosInt = 200
    maker_step_px: PosInt = 100
    maker_qty: PosInt = 50 * QTY_ONE
    maker_refresh_ms: PosInt = 4_000
    taker_rate_per_s: Annotated[float, Meta(ge=0, le=1000)] = 0.5
    taker_qty_min: PosInt = 5 * QTY_ONE
    taker_qty_max: PosInt = 30 * QTY_ONE
    taker_reach_ticks: NonNegInt = 0
    #: Standard deviation of the fair value's move per second, in Px (a Gaussian random walk).
    fair_vol_px_per_s: Annotated[float, Meta(ge=0)] = 20.0
    #: Fair value stays inside [band, 1 - band].
    fair_band_px: PxInt = 500

    def __post_init__(self) -> None:
        if self.taker_qty_max < self.taker_qty_min:
            raise ValueError("taker_qty_max: must be >= taker_qty_min")
        for field in ("maker_qty", "taker_qty_min", "taker_qty_max"):
            _check_order_qty(field, getattr(self, field))


class InitialBook(_Base, frozen=True, kw_only=True):
    """Static resting orders placed at start by the ``seed`` participant: ``[px, qty]`` YES levels."""

    bids: tuple[tuple[PxInt, PosInt], ...] = ()
    asks: tuple[tuple[PxInt, PosInt], ...] = ()


class ReplayConfig(_Base, frozen=True, kw_only=True):
    """Replay a recorded market-channel file as other participants' flow (see docs/emulator.md).

    Book levels become resting orders of the ``replay`` participant, trades become its FAK orders,
    at their recorded pace times ``speed``. ``yes_token`` names the YES token (default: the asset of
    the first ``book``).
    """

    path: str
    yes_token: str = ""
    speed: Annotated[float, Meta(gt=0, le=1000)] = 1.0
    loop: bool = False


class MarketConfig(_Base, frozen=True, kw_only=True):
    """One binary market. Ids are derived from ``slug`` when not given.

    ``version`` is the market's protocol, as Gamma's ``version`` says it: ``v1`` trades CTF token ids
    (orders signed for the CTF exchanges, domain "2"), ``v2`` Protocol V2 position ids (orders signed
    for ExchangeV3, domain "3"; balances as ``CONDITIONAL-V2``). See ``emulator.protocol``.
    """

    slug: str
    version: ProtocolVersion = "v1"
    question: str = ""
    condition_id: str = ""
    yes_token: str = ""
    no_token: str = ""
    outcomes: tuple[str, str] = ("Yes", "No")
    tick_px: TickPx = 100
    min_qty: PosInt = 5 * QTY_ONE
    neg_risk: bool = False
    #: The neg-risk event of a ``neg_risk`` market (Gamma ``negRiskMarketID``, CLOB
    #: ``neg_risk_market_id``): markets that give the same id are one event. Empty: the market is an
    #: event of its own, with an id derived from the slug (``0x`` + 64 hex digits, as the venue's).
    neg_risk_market_id: str = ""
    #: Taker fee rate in millionths (0.04 -> 40_000); makers pay nothing.
    fee_rate_ppm: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    maker_rebate_ppm: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    #: The YES fair value the flow starts from.
    fair_px: PxInt = 5_000
    #: When true, the tick goes from ``tick_px`` to ``dynamic_tick_px`` once the book trades outside
    #: [0.04, 0.96] (the venue's rule takes 0.01 to 0.001).
    dynamic_tick: bool = True
    #: The finer tick of ``dynamic_tick``: any venue tick that divides ``tick_px`` (0.005 or 0.0025
    #: from 0.01, say). None: the venue's rule, 0.01 goes to 0.001 and other ticks never change.
    dynamic_tick_px: TickPx | None = None
    initial_book: InitialBook = msgspec.field(default_factory=InitialBook)
    #: This market's flow; the scenario's ``flow`` when absent.
    flow: FlowConfig | None = None
    replay: ReplayConfig | None = None
    # Gamma metadata (what market selection reads).
    volume_24h: Annotated[float, Meta(ge=0)] = 50_000.0
    #: Gamma's ``liquidity`` in USDC; 0 reports the resting book's notional.
    liquidity_usdc: Annotated[float, Meta(ge=0)] = 0.0
    end_in_days: Annotated[float, Meta(gt=0)] = 30.0
    tags: tuple[str, ...] = ()
    category: str = ""
    rewards_min_qty: NonNegInt = 0
    rewards_max_spread_px: NonNegInt = 0
    rewards_daily_usdc6: NonNegInt = 0

    def __post_init__(self) -> None:
        if self.tick_px not in _VALID_TICKS:
            raise ValueError(f"tick_px: {self.tick_px} is not a venue tick (1000, 100, 50, 25, 10 or 1)")
        fine = self.dynamic_tick_px
        if fine is not None and (fine not in _VALID_TICKS or fine > self.tick_px or self.tick_px % fine):
            # Only a tick that divides the old one keeps every resting order on the new grid.
            raise ValueError(
                f"dynamic_tick_px: {fine} is not a venue tick (1000, 100, 50, 25, 10 or 1) that divides "
                f"tick_px {self.tick_px}"
            )
        if self.neg_risk_market_id and not self.neg_risk:
            raise ValueError("neg_risk_market_id: only a neg_risk market belongs to a neg-risk event")
        self._check_ids()
        _check_order_qty("min_qty", self.min_qty)
        for side, levels in (("bids", self.initial_book.bids), ("asks", self.initial_book.asks)):
            for px, qty in levels:
                if px % self.tick_px or not self.tick_px <= px <= PX_ONE - self.tick_px:
                    raise ValueError(f"initial_book.{side}: price {px} is off the tick grid {self.tick_px}")
                _check_order_qty(f"initial_book.{side}", qty)

    def _check_ids(self) -> None:
        # The official client picks the protocol from the id alone, so an id in the other protocol's
        # namespace would be signed for the wrong exchange: refuse it here, not at the first order.
        v2 = self.version == "v2"
        for field in ("yes_token", "no_token"):
            token = getattr(self, field)
            if not token:
                continue
            if not token.isdigit() or int(token) >= 1 << 256:
                raise ValueError(f"{field}: {token!r} is not a uint256 decimal string")
            if is_v2_position_id(token) != v2:
                raise ValueError(
                    f"{field}: {token} is "
                    + (
                        "not a Protocol V2 position id (module byte, 16 hash bytes, 14 zero bytes, outcome)"
                        if v2
                        else "in the Protocol V2 position namespace; a v1 market needs a CTF token id"
                    )
                )
        cid = self.condition_id
        if v2 and cid:
            raw = bytes.fromhex(cid[2:]) if len(cid) == 66 and cid.startswith("0x") else b""
            if len(raw) != 32 or raw[0] not in (1, 2) or any(raw[17:]):
                raise ValueError(
                    f"condition_id: {cid!r} is not a Protocol V2 market id: 0x, a module byte (01 or 02), "
                    "16 hash bytes and 15 zero bytes"
                )


class AccountConfig(_Base, frozen=True, kw_only=True):
    """What every new account (an address that authenticates) starts with."""

    cash_usdc6: NonNegInt = 10_000 * USDC6_ONE
    #: YES and NO shares in every market (a CTF split, funded on top of ``cash_usdc6``).
    shares_qty: NonNegInt = 0


# --- faults ----------------------------------------------------------------------------------------


class _Window(_Base, frozen=True, kw_only=True):
    """When a fault is active (ms since the emulator started) and how often it fires."""

    start_ms: NonNegInt = 0
    #: None: until the end.
    end_ms: NonNegInt | None = None
    #: Fire at most this many times (0: no limit).
    max_count: NonNegInt = 0


class _RequestRule(_Window, frozen=True, kw_only=True):
    #: ``"METHOD /path"`` patterns; a trailing ``*`` matches a prefix, ``*`` a method. Empty: all.
    routes: tuple[str, ...] = ()
    #: Fire on every n-th matching request (1: every one). 0 with ``probability`` 0 also means every one.
    every_n: NonNegInt = 0
    probability: Probability = 0.0


class HttpFault(_RequestRule, frozen=True, kw_only=True, tag="http_status", tag_field="kind"):
    """Answer matching REST requests with ``status`` instead of serving them.

    429 carries ``Retry-After: retry_after_s``; 425 is the venue's "matching engine restarting".
    ``code`` adds the venue's machine-readable ``code`` to the body: a 503 with ``post_only_mode`` is
    the post-only window after a restart (the official client's ``restriction="post_only"``).
    """

    status: Annotated[int, Meta(ge=400, le=599)]
    message: str = ""
    code: str = ""
    retry_after_s: NonNegInt = 1


class LatencyFault(_RequestRule, frozen=True, kw_only=True, tag="latency", tag_field="kind"):
    """Delay matching REST replies by ``ms`` plus a uniform draw from ``[0, jitter_ms]``."""

    ms: Annotated[int, Meta(ge=0, le=4_000)]
    jitter_ms: Annotated[int, Meta(ge=0, le=4_000)] = 0


class RejectFault(_RequestRule, frozen=True, kw_only=True, tag="reject_order", tag_field="kind"):
    """Reject matching orders (each order of a batch counts) with ``message``.

    ``status`` 200 answers ``success: false`` with ``errorMsg``; 400 answers ``{"error": ...}``
    (in a batch every rejection is a ``success: false`` entry).
    """

    message: str = "the market is not yet ready to process new orders"
    status: Literal[200, 400] = 200


class WsDropFault(_Window, frozen=True, kw_only=True, tag="ws_drop", tag_field="kind"):
    """Drop every WebSocket connection of ``channel`` at ``start_ms``, then every ``every_ms``."""

    channel: Literal["market", "user", "all"] = "all"
    every_ms: NonNegInt = 0
    #: True: close the TCP socket without a close frame; false: close with code 1011.
    abrupt: bool = False


class WsFreezeFault(_Window, frozen=True, kw_only=True, tag="ws_freeze", tag_field="kind"):
    """Stop sending events on ``channel`` from ``start_ms`` for ``duration_ms`` (connections stay open).

    When the freeze ends the market channel resumes with a fresh ``book`` per subscribed token.
    """

    duration_ms: PosInt
    channel: Literal["market", "user", "all"] = "market"
    every_ms: NonNegInt = 0
    #: Keep answering ``PING`` during the freeze (a frozen feed with a live socket).
    pong: bool = True


FaultRule = HttpFault | LatencyFault | RejectFault | WsDropFault | WsFreezeFault


#: The venue's rate-limit tiers, lowest first (``emulator.ratelimit.TIERS`` has their numbers).
VENUE_TIERS: Final = ("standard", "copper", "bronze", "silver", "gold")


class TierConfig(_Base, frozen=True, kw_only=True):
    """One rate-limit tier: token-bucket rates per second and bursts (bucket sizes)."""

    orders_per_s: Annotated[float, Meta(gt=0)]
    order_burst: PosInt
    cancels_per_s: Annotated[float, Meta(gt=0)]
    cancel_burst: PosInt


class RateLimitConfig(_Base, frozen=True, kw_only=True):
    """Per-signer rate limits (``emulator.ratelimit``): off unless ``enabled``.

    ``default_tier`` and the tiers of ``accounts`` (address -> tier) name one of the venue's tiers
    (``standard``, ``copper``, ``bronze``, ``silver``, ``gold``) or one of ``custom_tiers``.
    ``retry_after_s`` fixes the 429's ``Retry-After`` (None: the time until the request would pass).
    ``mode`` ``warn`` serves every request and marks the ones it would refuse.
    """

    enabled: bool = False
    mode: Literal["enforce", "warn"] = "enforce"
    default_tier: str = "standard"
    accounts: dict[str, str] = msgspec.field(default_factory=dict)
    custom_tiers: dict[str, TierConfig] = msgspec.field(default_factory=dict)
    retry_after_s: NonNegInt | None = None

    def __post_init__(self) -> None:
        known = {*VENUE_TIERS, *self.custom_tiers}
        for where, name in (
            ("default_tier", self.default_tier),
            *(("accounts", t) for t in self.accounts.values()),
        ):
            if name not in known:
                raise ValueError(
                    f"{where}: unknown rate-limit tier {name!r}; known: {', '.join(sorted(known))}"
                )


class TradeFailureConfig(_Base, frozen=True, kw_only=True):
    """Trades of our accounts that end ``FAILED`` (MATCHED, then FAILED at ``trade_mined_ms``).

    ``every_n``: every n-th trade with an account in it fails; ``probability``: each one fails with
    this chance. Both 0: none (``/emulator/fail-trades`` picks them at run time).
    """

    every_n: NonNegInt = 0
    probability: Probability = 0.0


class Scenario(_Base, frozen=True, kw_only=True):
    """One emulator scenario."""

    name: str = ""
    description: str = ""
    seed: int = 1
    markets: tuple[MarketConfig, ...]
    flow: FlowConfig = msgspec.field(default_factory=FlowConfig)
    account: AccountConfig = msgspec.field(default_factory=AccountConfig)
    #: Once a user sends heartbeats, missing one for this long cancels all of its orders.
    heartbeat_timeout_ms: PosInt = 10_000
    #: Delay of the trade status changes after MATCHED.
    trade_mined_ms: NonNegInt = 500
    trade_confirmed_ms: NonNegInt = 1_500
    #: Background step (flow, expiries, heartbeats, trade statuses, scheduled faults).
    step_ms: Annotated[int, Meta(ge=5, le=1_000)] = 50
    #: Accepted distance between a request's POLY_TIMESTAMP and the emulator's clock.
    auth_max_skew_s: PosInt = 300
    #: A GTD order must expire at least this long after it arrives.
    gtd_min_lead_s: NonNegInt = 60
    max_batch: PosInt = 15
    #: Items per page of /data/orders and /data/trades.
    page_size: PosInt = 100
    #: Which order version the server claims (GET /version); orders of the other version are refused.
    order_version: Literal[1, 2] = 2
    #: HTTP status of post-only crosses and FOK/FAK kills (200: ``success: false``; 400: ``{"error"}``).
    kill_reject_status: Literal[200, 400] = 200
    #: HTTP status of invalid orders: bad signature, tick, size, balance.
    invalid_reject_status: Literal[200, 400] = 400
    faults: tuple[FaultRule, ...] = ()
    rate_limits: RateLimitConfig = msgspec.field(default_factory=RateLimitConfig)
    trade_failures: TradeFailureConfig = msgspec.field(default_factory=TradeFailureConfig)
    #: How long a request body may take to arrive after its headers; a shorter body than its
    #: ``Content-Length`` is answered 400 after this long, never waited for.
    body_timeout_ms: Annotated[int, Meta(ge=10, le=30_000)] = 2_000

    def __post_init__(self) -> None:
        if not self.markets:
            raise ValueError("markets: at least one market is needed")
        slugs = [m.slug for m in self.markets]
        if len(set(slugs)) != len(slugs):
            raise ValueError("markets: slugs must be unique")
        if self.trade_confirmed_ms < self.trade_mined_ms:
            raise ValueError("trade_confirmed_ms: must be >= trade_mined_ms")
        if self.order_version == 1 and any(m.version == "v2" for m in self.markets):
            raise ValueError("order_version: 1 cannot trade Protocol V2 markets (their orders are V2 orders)")


def derive_ids(m: MarketConfig) -> tuple[str, str, str]:
    """``(condition_id, yes_token, no_token)``: as configured, else derived from the slug.

    A derived condition id is ``0x`` + 64 hex digits; token ids are uint256 decimal strings, as the
    venue's are. A ``v2`` market's are in the Protocol V2 layout (``emulator.protocol``): its positions
    follow from its condition id.
    """
    if m.version == "v2":
        cid, yes, no = v2_market_ids(f"polymm-emulator:{m.slug}", neg_risk=m.neg_risk)
        if m.condition_id:
            cid = m.condition_id.lower()
            structural = int(cid[2:64], 16) << 8
            yes, no = str(structural), str(structural | 1)
        return cid, m.yes_token or yes, m.no_token or no
    cid = m.condition_id or "0x" + hashlib.sha256(f"polymm-emulator:{m.slug}".encode()).hexdigest()
    yes = m.yes_token or str(int.from_bytes(hashlib.sha256(f"{cid}:yes".encode()).digest(), "big"))
    no = m.no_token or str(int.from_bytes(hashlib.sha256(f"{cid}:no".encode()).digest(), "big"))
    return cid, yes, no


def fine_tick_px(m: MarketConfig) -> int:
    """The tick ``dynamic_tick`` moves the market to (its own ``tick_px`` when it never moves)."""
    if not m.dynamic_tick:
        return m.tick_px
    if m.dynamic_tick_px is not None:
        return m.dynamic_tick_px
    return 10 if m.tick_px == 100 else m.tick_px


def neg_risk_market_id(m: MarketConfig) -> str:
    """The neg-risk event id of a market: as configured, derived from the slug, or "" (not neg-risk).

    A derived id is ``0x`` + 62 hex digits + ``00``: the venue's neg-risk market ids end in a zero
    byte (its question ids are the market id plus the question's index).
    """
    if not m.neg_risk:
        return ""
    return (
        m.neg_risk_market_id
        or "0x" + hashlib.sha256(f"polymm-emulator:negrisk:{m.slug}".encode()).hexdigest()[:62] + "00"
    )


def resolve_scenario(name: str) -> Path:
    """A scenario name (``default``) in ``configs/emulator/`` or a path to a YAML file.

    Raises:
        FileNotFoundError: No such scenario; the message lists the known names.
    """
    return resolve_named_yaml(name, SCENARIO_DIR, "emulator scenario")


def load_scenario(path: str | Path) -> Scenario:
    """Decode a scenario YAML file (raises ``msgspec.ValidationError`` naming the bad key)."""
    return msgspec.yaml.decode(Path(path).read_bytes(), type=Scenario)
