"""Risk rules: a trading state for each market and for the whole book, with the numbers that set it.

Pure: no I/O, clock, randomness or logging. Time comes in as ``ts_ns``; the UTC day is
``ts_ns // NS_PER_DAY`` (Unix time has no leap seconds, so every UTC day is 86,400 s long). A risk
actor calls ``evaluate`` (or ``assess_market`` for the market that changed, then ``assess_book``) on
every fill and mark and on a timer, in simulation, paper and live trading alike, and keeps the
``carry`` of each result for the next call. Persisting the carries (the day's baselines and any
HALT) across restarts is the actor's job; ``restore_day`` rebuilds a baseline after one.

**States.** ``ACTIVE < REDUCE_ONLY < PAUSED < HALTED``. ``core.quoting.decide`` honours a market's
``RiskGate``: REDUCE_ONLY quotes only the side that lowers the net position, never more than it
holds; PAUSED and HALTED quote nothing. A market's state is the worst of its own rules and the
book's (a HALTED book halts every market). Every rule that fired is reported, worst first, as a
``RiskReason``: the rule, the state it asks for, and ``observed`` against ``limit`` in the integer
unit ``unit`` names (``usdc6``, ``px``, ``qty``, ``ns``, ``per_min``).

**Rules** (limits in ``RiskLimits``, compiled from the ``risk:`` config section by ``risk_limits``).
Money, move and inventory limits fire when reached, the error rate and the ages when exceeded:

* ``operator`` (market or book): the operator asked for a state (pause, reduce-only, halt).
* ``market_daily_loss_stop`` (market, or the book with ``halt_scope: book``): the market's marked
  loss since 00:00 UTC reaches the stop: HALTED.
* ``daily_loss_stop`` (book): the book's marked loss since 00:00 UTC reaches the stop: HALTED.
* ``max_drawdown`` (book): the day's peak PnL (0 at 00:00 UTC) minus the PnL now reaches the limit:
  HALTED.
* ``fast_move`` (market): the mid's range within the window (``MidWindow``) reaches
  ``pause_move_px``: PAUSED; else reaches ``fast_move_px``: still ACTIVE, with ``widen_px`` added to
  the half-spread.
* ``inventory_hard_limit`` (market): the net YES position (YES minus NO shares), either way, reaches
  the limit: REDUCE_ONLY.
* ``error_rate`` (market, or book for errors tied to no market): more rejects and venue errors in
  the last minute (``EventWindow``) than the limit: PAUSED.
* ``feed_stale`` (market): the market's data is older than the limit: PAUSED.
* ``heartbeat_stale`` (book): the last acknowledged venue heartbeat is older than the limit: PAUSED.
* ``drift`` (market): the ledger pulled the market because its position differs from the venue's
  (``core.ledger``'s ``PullMarket`` reason): PAUSED until a listing agrees.

**HALT is sticky.** A rule asking for HALTED latches a ``Halt`` (that reason, its numbers at the
time, and when) in the market's or the book's carry. The state stays HALTED while the latch is
there, whatever the rules say later (the next day included), until ``resume`` clears it on an
operator's command. Resuming does not silence a rule: a loss stop still breached halts again at the
next call. Every other state follows its rule: a pause ends when its cause does.

**PnL.** A market's marked value is ``core.inventory.mark_to_market`` (cash plus shares at the YES
mark). Its PnL today is that value minus the value at the day's baseline, taken at the first
assessment of the UTC day (or when the market is first seen); the realised part is the change of
realised PnL less fees, the rest is unrealised. The book's PnL is the sum over its markets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Final, Literal, TypeVar

import msgspec

from core.config import Config
from core.inventory import Inventory, mark_to_market
from core.units import (
    NS_PER_S,
    QTY_ONE,
    USDC6_ONE,
    Px,
    Qty,
    Usdc6,
    format_px,
    format_qty,
    format_usdc6,
    int_to_decimal,
)

__all__ = [
    "ACTIVE_GATE",
    "ERROR_BUCKET_NS",
    "MOVE_BUCKETS",
    "NS_PER_DAY",
    "STATE_NAMES",
    "BookCarry",
    "BookObs",
    "BookRisk",
    "EventWindow",
    "Halt",
    "MarketCarry",
    "MarketDay",
    "MarketObs",
    "MarketPnl",
    "MarketRisk",
    "MidWindow",
    "RiskGate",
    "RiskLimits",
    "RiskReason",
    "RiskVerdict",
    "TradingState",
    "assess_book",
    "assess_market",
    "bound_by_book",
    "describe",
    "evaluate",
    "events_last_minute",
    "mid_move_px",
    "record_events",
    "record_mid",
    "restore_day",
    "resume",
    "risk_limits",
    "utc_day",
]

NS_PER_DAY: Final = 86_400 * NS_PER_S
_NS_PER_MIN: Final = 60 * NS_PER_S


class TradingState(IntEnum):
    """How far a market (or the book) may trade; a larger value is more severe."""

    ACTIVE = 0
    REDUCE_ONLY = 1
    PAUSED = 2
    HALTED = 3


#: ``TradingState`` names as logs and people read them, indexed by the state.
STATE_NAMES: Final = ("active", "reduce_only", "paused", "halted")

_ACTIVE, _REDUCE_ONLY, _PAUSED, _HALTED = (
    TradingState.ACTIVE,
    TradingState.REDUCE_ONLY,
    TradingState.PAUSED,
    TradingState.HALTED,
)

Rule = Literal[
    "operator",
    "market_daily_loss_stop",
    "daily_loss_stop",
    "max_drawdown",
    "fast_move",
    "inventory_hard_limit",
    "error_rate",
    "feed_stale",
    "heartbeat_stale",
    "drift",
]
Unit = Literal["", "usdc6", "px", "qty", "ns", "per_min"]
Scope = Literal["market", "book"]

# Rules whose limit is a maximum allowed (they fire above it); the others fire on reaching it.
_EXCEEDS: Final = frozenset({"error_rate", "feed_stale", "heartbeat_stale"})


def utc_day(ts_ns: int) -> int:
    """The UTC day of ``ts_ns`` (days since 1970-01-01): the loss stops' baseline changes with it."""
    return ts_ns // NS_PER_DAY


# --- what the rules say ---------------------------------------------------------------------------


class RiskReason(msgspec.Struct, frozen=True, kw_only=True):
    """One rule that fired: the state it asks for, where, and ``observed`` against ``limit``.

    ``scope`` is what the state applies to: the ``market`` named, or the whole ``book`` (a market's
    loss stop with ``halt_scope: book`` names its market and has scope ``book``).
    """

    rule: Rule
    state: TradingState
    scope: Scope
    market: str = ""
    observed: int = 0
    limit: int = 0
    unit: Unit = ""
    widen_px: Px = 0
    detail: str = ""


class Halt(msgspec.Struct, frozen=True, kw_only=True):
    """A latched HALT: the reason that set it, with its numbers then, and when; only ``resume`` clears it."""

    reason: RiskReason
    ts_ns: int


class RiskGate(msgspec.Struct, frozen=True, kw_only=True):
    """What ``decide`` takes from the rules for one market: its state, the fast-move add-on, and why."""

    state: TradingState = TradingState.ACTIVE
    widen_px: Px = 0
    rule: str = ""
    detail: str = ""


#: The gate of a market no rule restricts (``decide``'s default).
ACTIVE_GATE: Final = RiskGate()


def describe(r: RiskReason) -> str:
    """One line for people: ``rule [market]: observed >= limit`` in readable units, then any detail."""
    where = f" [{r.market}]" if r.market else ""
    head = f"{STATE_NAMES[r.state]} by {r.rule}{where}"
    if r.unit:
        op = ">" if r.rule in _EXCEEDS else ">="
        head += f": {_fmt(r.observed, r.unit)} {op} {_fmt(r.limit, r.unit)}"
    if r.widen_px:
        head += f", half-spread +{format_px(r.widen_px)}"
    return f"{head} ({r.detail})" if r.detail else head


def _fmt(value: int, unit: Unit) -> str:
    if unit == "usdc6":
        return f"{format_usdc6(value)} USDC"
    if unit == "px":
        return format_px(value)
    if unit == "qty":
        return f"{format_qty(value)} shares"
    if unit == "ns":
        return f"{int_to_decimal(value // 1_000_000, 3)} s"
    return f"{value}/min"


# --- windows the actor keeps, updated by pure functions -------------------------------------------

#: A ``MidWindow`` is kept in buckets of a tenth of its window.
MOVE_BUCKETS: Final = 10


class MidWindow(msgspec.Struct, frozen=True, kw_only=True):
    """The mid's low and high per bucket over a sliding window: ``(bucket index, lo_px, hi_px)``.

    ``record_mid`` folds in each mid; ``mid_move_px`` is the largest move within the window: the
    highest minus the lowest mid of the buckets that overlap it (so the window is exact to a tenth of
    itself, erring towards a longer one). A bucket starts with the mid in force before it, so a jump
    after a long quiet spell counts in full. At most ``MOVE_BUCKETS + 1`` buckets are kept.
    """

    window_ns: int
    buckets: tuple[tuple[int, Px, Px], ...] = ()
    last_px: Px = -1


def _width(window_ns: int) -> int:
    return max(1, window_ns // MOVE_BUCKETS)


def record_mid(w: MidWindow, mid_px: Px, ts_ns: int) -> MidWindow:
    """Fold in the YES mid at ``ts_ns`` (returns ``w`` itself when nothing changes)."""
    width = _width(w.window_ns)
    idx = ts_ns // width
    buckets = w.buckets
    if buckets:
        last_idx, lo, hi = buckets[-1]
        if idx <= last_idx:  # the same bucket (or a clock stepping back): widen it
            if lo <= mid_px <= hi:
                return w if mid_px == w.last_px else msgspec.structs.replace(w, last_px=mid_px)
            bucket = (last_idx, min(lo, mid_px), max(hi, mid_px))
            return MidWindow(window_ns=w.window_ns, buckets=(*buckets[:-1], bucket), last_px=mid_px)
    prev = w.last_px
    lo, hi = (mid_px, mid_px) if prev < 0 else (min(prev, mid_px), max(prev, mid_px))
    first = (ts_ns - w.window_ns) // width  # the oldest bucket still overlapping the window
    kept = tuple(b for b in buckets if b[0] >= first)
    return MidWindow(window_ns=w.window_ns, buckets=(*kept, (idx, lo, hi)), last_px=mid_px)


def mid_move_px(w: MidWindow, ts_ns: int) -> Px:
    """The largest mid move within the window ending at ``ts_ns`` (0 with no mid in it)."""
    first = (ts_ns - w.window_ns) // _width(w.window_ns)
    lo, hi = -1, -1
    for idx, blo, bhi in w.buckets:
        if idx < first:
            continue
        if lo < 0 or blo < lo:
            lo = blo
        hi = max(hi, bhi)
    return hi - lo if lo >= 0 else 0


#: An ``EventWindow`` counts in buckets of this width over the last minute.
ERROR_BUCKET_NS: Final = 5 * NS_PER_S


class EventWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Counts of events (rejects, venue errors) in 5 s buckets over the last minute: ``(index, count)``.

    ``events_last_minute`` adds the buckets overlapping the minute before ``ts_ns``, so a burst is
    counted for up to 65 s (the breaker errs towards staying tripped). At most 13 buckets are kept.
    """

    buckets: tuple[tuple[int, int], ...] = ()


def record_events(w: EventWindow, ts_ns: int, n: int = 1) -> EventWindow:
    """Count ``n`` more events at ``ts_ns``."""
    idx = ts_ns // ERROR_BUCKET_NS
    buckets = w.buckets
    if buckets and idx <= buckets[-1][0]:
        last_idx, count = buckets[-1]
        return EventWindow(buckets=(*buckets[:-1], (last_idx, count + n)))
    first = (ts_ns - _NS_PER_MIN) // ERROR_BUCKET_NS
    return EventWindow(buckets=(*(b for b in buckets if b[0] >= first), (idx, n)))


def events_last_minute(w: EventWindow, ts_ns: int) -> int:
    """Events counted in the minute before ``ts_ns`` (to one bucket)."""
    first = (ts_ns - _NS_PER_MIN) // ERROR_BUCKET_NS
    return sum(count for idx, count in w.buckets if idx >= first)


def _error_rate(limits: RiskLimits, errors: EventWindow, ts_ns: int, market: str | None) -> RiskReason | None:
    """The error-rate rule for one market's errors, or (``market`` None) for errors tied to none."""
    max_errors = limits.max_errors_per_min
    if max_errors is None or not errors.buckets:
        return None
    n = events_last_minute(errors, ts_ns)
    if n <= max_errors:
        return None
    return RiskReason(
        rule="error_rate",
        state=_PAUSED,
        scope="book" if market is None else "market",
        market=market or "",
        observed=n,
        limit=max_errors,
        unit="per_min",
    )


# --- limits ----------------------------------------------------------------------------------------


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The rules' limits in integer units, compiled from ``Config`` by ``risk_limits`` (None: off)."""

    daily_loss_stop_usdc6: Usdc6
    market_daily_loss_stop_usdc6: Usdc6
    halt_book_on_market_loss: bool = False
    max_drawdown_usdc6: Usdc6 | None = None
    fast_move_px: Px | None = None
    fast_move_window_ns: int = 10 * NS_PER_S
    widen_px: Px = 0
    pause_move_px: Px | None = None
    inventory_hard_limit_qty: Qty | None = None
    max_errors_per_min: int | None = None
    max_feed_age_ns: int | None = None
    max_heartbeat_age_ns: int | None = None


def risk_limits(cfg: Config) -> RiskLimits:
    """Compile the ``risk`` section (the loss stops default to the ``inventory`` caps) into ``RiskLimits``."""
    r, inv = cfg.risk, cfg.inventory

    def usdc6(usd: float) -> Usdc6:
        return round(usd * USDC6_ONE)

    def px(cents: float | None) -> Px | None:
        return None if cents is None else round(cents * 100)

    def ns(s: float | None) -> int | None:
        return None if s is None else round(s * NS_PER_S)

    return RiskLimits(
        daily_loss_stop_usdc6=usdc6(
            r.daily_loss_stop_usd if r.daily_loss_stop_usd is not None else inv.global_ev_cap
        ),
        market_daily_loss_stop_usdc6=usdc6(
            r.market_daily_loss_stop_usd
            if r.market_daily_loss_stop_usd is not None
            else inv.per_market_ev_cap
        ),
        halt_book_on_market_loss=r.halt_scope == "book",
        max_drawdown_usdc6=None if r.max_drawdown_usd is None else usdc6(r.max_drawdown_usd),
        fast_move_px=px(r.fast_move_cents),
        fast_move_window_ns=round(r.fast_move_window_s * NS_PER_S),
        widen_px=round(r.widen_action_addon_cents * 100),
        pause_move_px=px(r.pause_move_cents),
        inventory_hard_limit_qty=(
            None if r.inventory_hard_limit_shares is None else round(r.inventory_hard_limit_shares * QTY_ONE)
        ),
        max_errors_per_min=r.max_errors_per_min,
        max_feed_age_ns=ns(r.max_feed_age_s),
        max_heartbeat_age_ns=ns(r.max_heartbeat_age_s),
    )


# --- inputs and carries ----------------------------------------------------------------------------


class MarketDay(msgspec.Struct, frozen=True, kw_only=True):
    """A market's baseline for UTC day ``day``: its marked value and realised PnL (less fees) then."""

    day: int
    start_value_usdc6: Usdc6
    start_realized_usdc6: Usdc6


class MarketCarry(msgspec.Struct, frozen=True, kw_only=True):
    """What one market's assessment keeps for the next (and the actor persists): baseline and latch."""

    day: MarketDay | None = None
    halt: Halt | None = None


class BookCarry(msgspec.Struct, frozen=True, kw_only=True):
    """What the book's assessment keeps for the next: the day, its peak PnL so far, and the latch."""

    day: int = -1
    peak_pnl_usdc6: Usdc6 = 0
    halt: Halt | None = None


_C = TypeVar("_C", MarketCarry, BookCarry)


def resume(carry: _C) -> _C:
    """The operator's resume: clear the latched HALT (the rules are evaluated afresh at the next call)."""
    return carry if carry.halt is None else msgspec.structs.replace(carry, halt=None)


def _realized(inv: Inventory) -> Usdc6:
    return inv.realized_usdc6 - inv.fees_usdc6


def restore_day(
    inv: Inventory, mark_px: Px, ts_ns: int, day_pnl_usdc6: Usdc6, day_realized_usdc6: Usdc6
) -> MarketDay:
    """The baseline under which today's PnL is ``day_pnl_usdc6`` now (after a restart).

    A restarted process rebuilds the inventory from the venue's positions, with another cash origin;
    the PnL persisted before the restart carries over onto it.
    """
    return MarketDay(
        day=utc_day(ts_ns),
        start_value_usdc6=mark_to_market(inv, mark_px) - day_pnl_usdc6,
        start_realized_usdc6=_realized(inv) - day_realized_usdc6,
    )


class MarketObs(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about one market now.

    ``mark_px`` is the YES mid (the last one while the book is one-sided or empty). ``moves`` is
    ``None`` until a mid is recorded. ``errors`` counts the market's rejects and venue errors (which
    rejects count, e.g. not a post-only cross, is the caller's choice). ``feed_age_ns`` is how long
    since the market's data was last known current (None: not measured). ``drift`` is the ledger's
    reason for pulling the market ("" when it has not), ``drift_qty`` the largest share difference.
    ``operator`` is a state the operator set for this market, ``operator_note`` why.
    """

    market: str
    inv: Inventory
    mark_px: Px
    moves: MidWindow | None = None
    errors: EventWindow = EventWindow()
    feed_age_ns: int | None = None
    drift: str = ""
    drift_qty: Qty = 0
    operator: TradingState = TradingState.ACTIVE
    operator_note: str = ""


class BookObs(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about the whole book now: errors tied to no market, heartbeats, the operator.

    ``heartbeat_age_ns`` is the age of the last acknowledged venue heartbeat (None: no dead-man
    switch, as in simulation and paper trading).
    """

    errors: EventWindow = EventWindow()
    heartbeat_age_ns: int | None = None
    operator: TradingState = TradingState.ACTIVE
    operator_note: str = ""


# --- results ---------------------------------------------------------------------------------------


class MarketPnl(msgspec.Struct, frozen=True, kw_only=True):
    """A market's marked value now and its PnL since the day's baseline (realised + unrealised)."""

    value_usdc6: Usdc6
    day_pnl_usdc6: Usdc6
    day_realized_usdc6: Usdc6
    day_unrealized_usdc6: Usdc6


class MarketRisk(msgspec.Struct, frozen=True, kw_only=True):
    """One market's verdict: its state, every rule that fired (worst first), and the gate for ``decide``.

    From ``assess_market`` alone the state is the market's own; ``assess_book`` bounds it by the
    book's (then the book's reasons come first). ``halt`` is the latch in force: the market's own,
    or the book's.
    """

    market: str
    state: TradingState
    widen_px: Px
    reasons: tuple[RiskReason, ...]
    halt: Halt | None
    pnl: MarketPnl
    gate: RiskGate
    carry: MarketCarry


class BookRisk(msgspec.Struct, frozen=True, kw_only=True):
    """The whole book's verdict: its state, every book-wide rule that fired, and its PnL today."""

    state: TradingState
    reasons: tuple[RiskReason, ...]
    halt: Halt | None
    day_pnl_usdc6: Usdc6
    day_realized_usdc6: Usdc6
    day_unrealized_usdc6: Usdc6
    peak_pnl_usdc6: Usdc6
    drawdown_usdc6: Usdc6
    carry: BookCarry


class RiskVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """The book's verdict and every market's, bounded by it (in the order the markets came in)."""

    book: BookRisk
    markets: tuple[MarketRisk, ...]


def _worst_first(reasons: list[RiskReason]) -> tuple[RiskReason, ...]:
    # Stable: among rules asking for the same state, the order of the rule list above.
    return tuple(sorted(reasons, key=lambda r: -r.state)) if len(reasons) > 1 else tuple(reasons)


def _gate(state: TradingState, widen_px: Px, reasons: tuple[RiskReason, ...], halt: Halt | None) -> RiskGate:
    if state is _ACTIVE and not widen_px:
        return ACTIVE_GATE
    if state is _HALTED and halt is not None:
        top = halt.reason
        detail = f"{describe(top)}, latched at {halt.ts_ns} ns"
    else:
        top = reasons[0]
        detail = describe(top)
    return RiskGate(state=state, widen_px=widen_px if state < _PAUSED else 0, rule=top.rule, detail=detail)


def assess_market(obs: MarketObs, carry: MarketCarry, limits: RiskLimits, ts_ns: int) -> MarketRisk:
    """Apply the market's own rules (the book's come in ``assess_book``) and roll its day if it changed."""
    inv = obs.inv
    market = obs.market
    today = ts_ns // NS_PER_DAY
    value = mark_to_market(inv, obs.mark_px)
    realized = _realized(inv)
    day = carry.day
    if day is None or today > day.day:
        day = MarketDay(day=today, start_value_usdc6=value, start_realized_usdc6=realized)
    pnl = value - day.start_value_usdc6
    pnl_realized = realized - day.start_realized_usdc6
    fired: list[RiskReason] = []

    if obs.operator:
        fired.append(
            RiskReason(
                rule="operator", state=obs.operator, scope="market", market=market, detail=obs.operator_note
            )
        )
    stop = limits.market_daily_loss_stop_usdc6
    if -pnl >= stop:
        scope: Scope = "book" if limits.halt_book_on_market_loss else "market"
        fired.append(
            RiskReason(
                rule="market_daily_loss_stop",
                state=_HALTED,
                scope=scope,
                market=market,
                observed=-pnl,
                limit=stop,
                unit="usdc6",
            )
        )
    widen = 0
    fast, pause = limits.fast_move_px, limits.pause_move_px
    if obs.moves is not None and (fast is not None or pause is not None):
        move = mid_move_px(obs.moves, ts_ns)
        window = f"within {int_to_decimal(obs.moves.window_ns // 1_000_000, 3)} s"
        if pause is not None and move >= pause:
            fired.append(
                RiskReason(
                    rule="fast_move",
                    state=_PAUSED,
                    scope="market",
                    market=market,
                    observed=move,
                    limit=pause,
                    unit="px",
                    detail=window,
                )
            )
        elif fast is not None and move >= fast:
            widen = limits.widen_px
            fired.append(
                RiskReason(
                    rule="fast_move",
                    state=_ACTIVE,
                    scope="market",
                    market=market,
                    observed=move,
                    limit=fast,
                    unit="px",
                    widen_px=widen,
                    detail=window,
                )
            )
    hard = limits.inventory_hard_limit_qty
    if hard is not None:
        net = abs(inv.yes_qty - inv.no_qty)
        if net >= hard:
            fired.append(
                RiskReason(
                    rule="inventory_hard_limit",
                    state=_REDUCE_ONLY,
                    scope="market",
                    market=market,
                    observed=net,
                    limit=hard,
                    unit="qty",
                )
            )
    if (reason := _error_rate(limits, obs.errors, ts_ns, market)) is not None:
        fired.append(reason)
    max_age = limits.max_feed_age_ns
    if max_age is not None and obs.feed_age_ns is not None and obs.feed_age_ns > max_age:
        fired.append(
            RiskReason(
                rule="feed_stale",
                state=_PAUSED,
                scope="market",
                market=market,
                observed=obs.feed_age_ns,
                limit=max_age,
                unit="ns",
            )
        )
    if obs.drift:
        fired.append(
            RiskReason(
                rule="drift",
                state=_PAUSED,
                scope="market",
                market=market,
                observed=obs.drift_qty,
                unit="qty" if obs.drift_qty else "",
                detail=obs.drift,
            )
        )

    halt = carry.halt
    if halt is None:
        for r in fired:
            if r.state is _HALTED and r.scope == "market":
                halt = Halt(reason=r, ts_ns=ts_ns)
                break
    reasons = _worst_first(fired)
    state = reasons[0].state if reasons else _ACTIVE
    if halt is not None:
        state = _HALTED
    if state >= _PAUSED:
        widen = 0
    new_carry = carry if day is carry.day and halt is carry.halt else MarketCarry(day=day, halt=halt)
    return MarketRisk(
        market=market,
        state=state,
        widen_px=widen,
        reasons=reasons,
        halt=halt,
        pnl=MarketPnl(
            value_usdc6=value,
            day_pnl_usdc6=pnl,
            day_realized_usdc6=pnl_realized,
            day_unrealized_usdc6=pnl - pnl_realized,
        ),
        gate=_gate(state, widen, reasons, halt),
        carry=new_carry,
    )


def assess_book(
    markets: Sequence[MarketRisk], obs: BookObs, carry: BookCarry, limits: RiskLimits, ts_ns: int
) -> RiskVerdict:
    """Apply the book-wide rules to the markets' assessments (of the same day) and bound every market."""
    today = ts_ns // NS_PER_DAY
    peak = carry.peak_pnl_usdc6 if today <= carry.day else 0
    day = max(today, carry.day)
    pnl = realized = 0
    for m in markets:
        pnl += m.pnl.day_pnl_usdc6
        realized += m.pnl.day_realized_usdc6
    peak = max(peak, pnl)
    fired: list[RiskReason] = []

    if obs.operator:
        fired.append(RiskReason(rule="operator", state=obs.operator, scope="book", detail=obs.operator_note))
    for m in markets:
        fired.extend(r for r in m.reasons if r.scope == "book")
    stop = limits.daily_loss_stop_usdc6
    if -pnl >= stop:
        fired.append(
            RiskReason(
                rule="daily_loss_stop", state=_HALTED, scope="book", observed=-pnl, limit=stop, unit="usdc6"
            )
        )
    drawdown = peak - pnl
    max_dd = limits.max_drawdown_usdc6
    if max_dd is not None and drawdown >= max_dd:
        fired.append(
            RiskReason(
                rule="max_drawdown",
                state=_HALTED,
                scope="book",
                observed=drawdown,
                limit=max_dd,
                unit="usdc6",
                detail=f"peak {format_usdc6(peak)} USDC today",
            )
        )
    if (reason := _error_rate(limits, obs.errors, ts_ns, None)) is not None:
        fired.append(reason)
    max_hb = limits.max_heartbeat_age_ns
    if max_hb is not None and obs.heartbeat_age_ns is not None and obs.heartbeat_age_ns > max_hb:
        fired.append(
            RiskReason(
                rule="heartbeat_stale",
                state=_PAUSED,
                scope="book",
                observed=obs.heartbeat_age_ns,
                limit=max_hb,
                unit="ns",
            )
        )

    halt = carry.halt
    if halt is None:
        for r in fired:
            if r.state is _HALTED:
                halt = Halt(reason=r, ts_ns=ts_ns)
                break
    reasons = _worst_first(fired)
    state = _HALTED if halt is not None else (reasons[0].state if reasons else _ACTIVE)
    new_carry = (
        carry
        if day == carry.day and peak == carry.peak_pnl_usdc6 and halt is carry.halt
        else BookCarry(day=day, peak_pnl_usdc6=peak, halt=halt)
    )
    book = BookRisk(
        state=state,
        reasons=reasons,
        halt=halt,
        day_pnl_usdc6=pnl,
        day_realized_usdc6=realized,
        day_unrealized_usdc6=pnl - realized,
        peak_pnl_usdc6=peak,
        drawdown_usdc6=drawdown,
        carry=new_carry,
    )
    if state is _ACTIVE:
        return RiskVerdict(book=book, markets=tuple(markets))
    return RiskVerdict(book=book, markets=tuple(_bounded(m, book) for m in markets))


def bound_by_book(m: MarketRisk, book: BookRisk) -> MarketRisk:
    """``m`` (from ``assess_market``) bounded by a verdict of the book made earlier.

    What ``assess_book`` does to every market, for a market assessed again between two assessments
    of the book (a risk actor assesses the market that changed at once, the book on its timer).
    """
    return m if book.state is _ACTIVE and book.halt is None else _bounded(m, book)


def _bounded(m: MarketRisk, book: BookRisk) -> MarketRisk:
    # The book's state is a floor for every market; a market already as restricted keeps its own
    # reasons (but a latch in force is always named: its own, else the book's).
    if m.state >= book.state:
        if m.halt is not None or book.halt is None:
            return m
        return msgspec.structs.replace(m, halt=book.halt, gate=_gate(m.state, 0, m.reasons, book.halt))
    state = book.state
    # The book's reasons that came from this market are already among its own.
    reasons = _worst_first([*(r for r in book.reasons if r.market != m.market), *m.reasons])
    halt = m.halt if m.halt is not None else book.halt
    widen = m.widen_px if state < _PAUSED else 0
    return msgspec.structs.replace(
        m, state=state, widen_px=widen, reasons=reasons, halt=halt, gate=_gate(state, widen, reasons, halt)
    )


def evaluate(
    markets: Sequence[MarketObs],
    book: BookObs,
    carries: Mapping[str, MarketCarry],
    book_carry: BookCarry,
    limits: RiskLimits,
    ts_ns: int,
) -> RiskVerdict:
    """Assess every market, then the book: the state of each market and of the book, and why.

    Args:
        markets: What is known about each market the risk manager watches.
        book: Book-wide inputs (errors tied to no market, heartbeats, the operator's book state).
        carries: Each market's carry from the previous verdict (missing: a market first seen now).
        book_carry: The book's carry from the previous verdict (``BookCarry()`` at the first call).
        limits: Compiled limits (``risk_limits``).
        ts_ns: Now (the caller's clock: simulated or live); its UTC day sets the PnL baselines.

    Returns:
        A ``RiskVerdict``: the book's state and every market's, bounded by it, each with its reasons,
        PnL, gate for ``decide`` and carry for the next call.
    """
    empty = MarketCarry()
    assessed = [assess_market(o, carries.get(o.market, empty), limits, ts_ns) for o in markets]
    return assess_book(assessed, book, book_carry, limits, ts_ns)
