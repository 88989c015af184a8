"""The risk manager: ``core.risk``'s rules applied to the markets as they trade (gather → decide → apply).

``RiskMonitor`` (no threads, no I/O) keeps what the rules need between two calls: each market's carry
(the day's baseline and any latched HALT), its mid and error windows, the operator's states, the
latest ``MarketSample`` each market sent and the book's carry. ``observe(sample)`` takes a market's
news and, for a fill, assesses that market at once (``core.risk.assess_market``, bounded by the
book's last verdict: ``bound_by_book``); ``evaluate(ts_ns, ...)`` assesses every market and the book
(``assess_market`` then ``assess_book``: the time-based rules, the book's loss stop and drawdown);
``operate`` applies an operator's command. Each returns the gates that changed, for the caller to
hand to the market sessions (``MarketSession.set_risk_gate``), and records every change of a
market's or the book's state as a ``risk`` record (the rule, its numbers, the PnL) in the event log.

One decision path, three transports:

* **live, paper, dry-run**: ``RiskActor``, a thin pykka shell on a thread of its own. Sessions tell it
  their samples (on every fill, and on their timer when anything changed, at least once a second),
  the engine's ticker tells it ``RiskTick`` every second, the control plane asks it ``Operate`` and
  ``GetRisk``; it tells each market actor ``SetRiskGate`` and saves the state file (``RiskStore``)
  after a change: a HALT or an operator's state at once and durably, the day's PnL each second.
* **simulation**: ``sim.runner`` calls the same monitor, ``observe`` from each market's lane (a
  market's calls touch only that market's part, so lanes may run on threads of their own) and
  ``evaluate`` at each window's barrier, like the exposure budgets.

**Persisted state** (``to_state``/``restore``): per market the operator's state, the latched HALT and
the day's PnL (total and realised) with the mark it was taken at; for the book the same and the
day's peak. A restarted process rebuilds the baseline at the market's first mark
(``core.risk.restore_day``) from the PnL carried plus what the position did while it was down (the
position now, from the mark then to the mark now), and every HALT (of any day) stays until
``resume``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, Protocol

import msgspec
import pykka

from core.inventory import Inventory
from core.ports import Clock, EventSink
from core.risk import (
    ACTIVE_GATE,
    STATE_NAMES,
    BookCarry,
    BookObs,
    BookRisk,
    EventWindow,
    Halt,
    MarketCarry,
    MarketObs,
    MarketRisk,
    MidWindow,
    RiskGate,
    RiskLimits,
    RiskReason,
    TradingState,
    assess_book,
    assess_market,
    bound_by_book,
    describe,
    record_events,
    record_mid,
    restore_day,
    resume,
    utc_day,
)
from core.units import NS_PER_S, PX_ONE, Px, Usdc6

log = logging.getLogger(__name__)

__all__ = [
    "RISK_SAMPLE_MAX_GAP_NS",
    "STATE_FILE_VERSION",
    "GetRisk",
    "MarketRiskView",
    "MarketSample",
    "Operate",
    "OperateResult",
    "RiskActor",
    "RiskChange",
    "RiskMonitor",
    "RiskStore",
    "RiskTick",
    "RiskView",
    "SetRiskGate",
    "state_of",
]

#: A session sends a sample at least this often, changed or not (the feed's age moves on).
RISK_SAMPLE_MAX_GAP_NS: Final = NS_PER_S
STATE_FILE_VERSION: Final = 1

_ACTIVE, _REDUCE_ONLY, _PAUSED, _HALTED = (
    TradingState.ACTIVE,
    TradingState.REDUCE_ONLY,
    TradingState.PAUSED,
    TradingState.HALTED,
)


def state_of(name: str) -> TradingState:
    """The ``TradingState`` named ``name`` (``core.risk.STATE_NAMES``)."""
    return TradingState(STATE_NAMES.index(name))


# --- messages --------------------------------------------------------------------------------------


class MarketSample(msgspec.Struct, frozen=True, kw_only=True):
    """What a market session tells the risk manager (on every fill; on its timer when anything changed).

    ``mid_px`` is the YES mid now (-1: no two-sided book). ``book_ts_ns`` is when the market's data
    was last known current (-1: never). ``rejects`` counts the market's refused orders so far, post-only
    crosses excepted (they have a backoff of their own). ``drift`` is the order gateway's reason for
    holding the market (its position differs from the venue's), "" when it does not. The counters are
    the session's totals so far (``decisions``: calls of ``decide``).
    """

    market: str
    ts_ns: int
    inv: Inventory
    mid_px: Px = -1
    book_ts_ns: int = -1
    book_valid: bool = False
    rejects: int = 0
    drift: str = ""
    open_orders: int = 0
    quoting: bool = False
    resolved: bool = False
    fills: int = 0
    decisions: int = 0
    places: int = 0
    cancels: int = 0


class SetRiskGate(msgspec.Struct, frozen=True):
    """To a market actor: its trading state from the risk manager (``MarketSession.set_risk_gate``)."""

    gate: RiskGate


class RiskTick(msgspec.Struct, frozen=True, kw_only=True):
    """To the risk actor, every second: evaluate everything now.

    ``heartbeat_age_ns``: the age of the venue's last acknowledged heartbeat (None: no dead-man switch).
    ``venue_errors``: venue errors tied to no market so far (retries after 5xx or no reply, 429s).
    """

    ts_ns: int
    heartbeat_age_ns: int | None = None
    venue_errors: int = 0


Action = Literal["pause", "resume", "reduce_only", "halt"]
_ACTION_STATE: Final[dict[str, TradingState]] = {
    "pause": _PAUSED,
    "reduce_only": _REDUCE_ONLY,
    "halt": _HALTED,
    "resume": _ACTIVE,
}


class Operate(msgspec.Struct, frozen=True, kw_only=True):
    """To the risk actor (ask): an operator's command for one ``market`` or ("") the whole book."""

    action: Action
    market: str = ""
    note: str = ""
    who: str = ""


class OperateResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an ``Operate`` changed: the gates told (market -> state name) and the book's state now."""

    ok: bool
    error: str = ""
    book_state: str = "active"
    changed: dict[str, str] = msgspec.field(default_factory=dict)


class GetRisk(msgspec.Struct, frozen=True):
    """To the risk actor (ask): a ``RiskView`` of the book and every market."""


class RiskChange(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a market's (or, with ``market`` "", the book's) state, for summaries."""

    ts_ns: int
    market: str
    from_state: str
    state: str
    rule: str
    text: str
    observed: int = 0
    limit: int = 0
    unit: str = ""


class MarketRiskView(msgspec.Struct, frozen=True, kw_only=True):
    """One market as the risk manager sees it (status, metrics)."""

    market: str
    state: str
    rule: str
    detail: str
    reasons: tuple[str, ...]
    operator: str
    operator_note: str
    halt: str
    mark_px: Px
    day_pnl_usdc6: Usdc6 | None
    day_realized_usdc6: Usdc6 | None
    day_unrealized_usdc6: Usdc6 | None
    feed_age_ns: int | None
    quote_uptime: float
    sample: MarketSample | None


class RiskView(msgspec.Struct, frozen=True, kw_only=True):
    """The book and every market as the risk manager sees them, with the loss limits for alerts."""

    ts_ns: int
    book_state: str
    book_rule: str
    book_reasons: tuple[str, ...]
    book_operator: str
    book_operator_note: str
    book_halt: str
    day_pnl_usdc6: Usdc6
    day_realized_usdc6: Usdc6
    day_unrealized_usdc6: Usdc6
    peak_pnl_usdc6: Usdc6
    drawdown_usdc6: Usdc6
    daily_loss_stop_usdc6: Usdc6
    market_daily_loss_stop_usdc6: Usdc6
    heartbeat_age_ns: int | None
    markets: tuple[MarketRiskView, ...]


# --- the monitor -----------------------------------------------------------------------------------


class _Market:
    """One market's part of the monitor (mutable; only calls about this market touch it)."""

    __slots__ = (
        "carry",
        "errors",
        "gate",
        "mark_px",
        "moves",
        "name",
        "operator",
        "operator_note",
        "quoting_ns",
        "rejects_seen",
        "restore",
        "risk",
        "sample",
        "sink",
        "state",
        "watched_ns",
    )

    def __init__(self, name: str, sink: EventSink | None) -> None:
        self.name = name
        self.sink = sink
        self.carry = MarketCarry()
        self.moves: MidWindow | None = None
        self.errors = EventWindow()
        self.rejects_seen = 0
        self.mark_px: Px = -1
        self.sample: MarketSample | None = None
        self.operator = _ACTIVE
        self.operator_note = ""
        #: (UTC day, day PnL, day realised PnL, the mark then) from the state file, for the first mark.
        self.restore: tuple[int, Usdc6, Usdc6, Px] | None = None
        self.risk: MarketRisk | None = None  # the latest assessment, bounded by the book's verdict
        self.gate: RiskGate = ACTIVE_GATE  # the gate last handed out
        self.state = _ACTIVE  # the state last recorded
        self.quoting_ns = 0
        self.watched_ns = 0


class RiskMonitor:
    """The risk rules over a set of markets, between calls; see the module docstring."""

    def __init__(
        self,
        limits: RiskLimits,
        markets: Iterable[str],
        *,
        sinks: Mapping[str, EventSink] | None = None,
        book_sink: EventSink | None = None,
        keep_history: bool = False,
    ) -> None:
        """Watch ``markets``; a market's ``risk`` records go to ``sinks[market]`` (else ``book_sink``).

        ``keep_history``: keep every state change (``history``; the simulator's summary reads it).
        """
        self.limits = limits
        self.book_sink = book_sink
        self.markets: dict[str, _Market] = {m: _Market(m, (sinks or {}).get(m, book_sink)) for m in markets}
        self.book_carry = BookCarry()
        self.book: BookRisk | None = None
        self.book_errors = EventWindow()
        self.venue_errors_seen = 0
        self.heartbeat_age_ns: int | None = None
        self.book_operator = _ACTIVE
        self.book_operator_note = ""
        self.book_state = _ACTIVE
        self.book_rule = ""
        self.history: list[RiskChange] | None = [] if keep_history else None
        #: State-file entries of markets not watched now: written back unchanged.
        self.foreign: dict[str, Any] = {}
        #: A HALT or an operator's state changed since the last ``take_durable`` (save at once).
        self.durable_dirty = False
        self.last_ts_ns = 0

    # --- news --------------------------------------------------------------------------------------

    def observe(self, sample: MarketSample, *, assess: bool = True) -> RiskGate | None:
        """A market's news: fold it into its windows; with ``assess``, assess it now.

        Returns the market's new gate when it changed (None otherwise, and always without ``assess``).
        """
        m = self.markets.get(sample.market)
        if m is None:
            return None
        ts = sample.ts_ns
        prev = m.sample
        if prev is not None and prev.quoting and not prev.resolved:
            m.quoting_ns += max(0, ts - prev.ts_ns)
        if prev is not None:
            m.watched_ns += max(0, ts - prev.ts_ns)
        m.sample = sample
        limits = self.limits
        if sample.mid_px >= 0:
            m.mark_px = sample.mid_px
            if limits.fast_move_px is not None or limits.pause_move_px is not None:
                moves = m.moves or MidWindow(window_ns=limits.fast_move_window_ns)
                m.moves = record_mid(moves, sample.mid_px, ts)
        new_rejects = sample.rejects - m.rejects_seen
        if new_rejects > 0:
            m.errors = record_events(m.errors, ts, new_rejects)
        m.rejects_seen = sample.rejects
        if not assess:
            return None
        return self._apply(m, self._assess(m, ts), ts)

    def evaluate(
        self, ts_ns: int, *, heartbeat_age_ns: int | None = None, venue_errors: int | None = None
    ) -> dict[str, RiskGate]:
        """Assess every market and the book now; the gates that changed.

        ``venue_errors`` is the running count of venue errors tied to no market (None: unchanged).
        """
        self.last_ts_ns = max(self.last_ts_ns, ts_ns)
        self.heartbeat_age_ns = heartbeat_age_ns
        if venue_errors is not None:
            if venue_errors > self.venue_errors_seen:
                self.book_errors = record_events(
                    self.book_errors, ts_ns, venue_errors - self.venue_errors_seen
                )
            self.venue_errors_seen = venue_errors
        own: list[tuple[_Market, MarketRisk]] = []
        for m in self.markets.values():
            r = self._own(m, ts_ns)
            if r is not None:
                own.append((m, r))
        obs = BookObs(
            errors=self.book_errors,
            heartbeat_age_ns=heartbeat_age_ns,
            operator=self.book_operator,
            operator_note=self.book_operator_note,
        )
        verdict = assess_book([r for _, r in own], obs, self.book_carry, self.limits, ts_ns)
        if verdict.book.carry.halt is not self.book_carry.halt:
            self.durable_dirty = True
        self.book_carry = verdict.book.carry
        self.book = verdict.book
        self._record_book(verdict.book, ts_ns)
        changed: dict[str, RiskGate] = {}
        bounded = {m.name: r for (m, _), r in zip(own, verdict.markets, strict=True)}
        for m in self.markets.values():
            r = bounded.get(m.name)
            gate = self._apply(m, r if r is not None else self._static(m), ts_ns)
            if gate is not None:
                changed[m.name] = gate
        return changed

    def operate(self, action: Action, market: str, note: str, ts_ns: int) -> dict[str, RiskGate]:
        """An operator's command for ``market`` ("" the book); the gates that changed.

        ``resume`` of the book resumes every market too (its operator state and latched HALT).

        Raises:
            KeyError: ``market`` is not watched.
        """
        state = _ACTION_STATE[action]
        if market:
            m = self.markets[market]
            m.operator, m.operator_note = state, note if state is not _ACTIVE else ""
            if action == "resume":
                m.carry = resume(m.carry)
        else:
            self.book_operator, self.book_operator_note = state, note if state is not _ACTIVE else ""
            if action == "resume":
                self.book_carry = resume(self.book_carry)
                for m in self.markets.values():
                    m.operator, m.operator_note = _ACTIVE, ""
                    m.carry = resume(m.carry)
        self.durable_dirty = True
        return self.evaluate(ts_ns, heartbeat_age_ns=self.heartbeat_age_ns)

    # --- assessment --------------------------------------------------------------------------------

    def _own(self, m: _Market, ts: int) -> MarketRisk | None:
        # The market's own rules (None before its first mark: no PnL to judge yet).
        s = m.sample
        if s is None or m.mark_px < 0:
            return None
        if m.restore is not None and m.carry.day is None:
            day, pnl, realized, mark_then = m.restore
            if day == utc_day(ts):
                # What the position held did while the process was down counts too (at today's mark).
                if mark_then >= 0:
                    pnl += (s.inv.yes_qty - s.inv.no_qty) * (m.mark_px - mark_then) // PX_ONE
                m.carry = MarketCarry(day=restore_day(s.inv, m.mark_px, ts, pnl, realized), halt=m.carry.halt)
            m.restore = None
        max_age = self.limits.max_feed_age_ns
        obs = MarketObs(
            market=m.name,
            inv=s.inv,
            mark_px=m.mark_px,
            moves=m.moves,
            errors=m.errors,
            feed_age_ns=(max(0, ts - s.book_ts_ns) if max_age is not None and s.book_ts_ns >= 0 else None),
            drift=s.drift,
            operator=m.operator,
            operator_note=m.operator_note,
        )
        r = assess_market(obs, m.carry, self.limits, ts)
        if r.carry.halt is not m.carry.halt:
            self.durable_dirty = True
        m.carry = r.carry
        return r

    def _assess(self, m: _Market, ts: int) -> MarketRisk | RiskGate:
        r = self._own(m, ts)
        if r is None:
            return self._static(m)
        if self.book is not None:
            return bound_by_book(r, self.book)
        # Before the book's first assessment: bounded by what the state file says of the book (a
        # HALT from before a restart holds from the first sample on).
        state, rule, detail = self._book_floor()
        if state <= r.state:
            return r
        return msgspec.structs.replace(r, state=state, gate=RiskGate(state=state, rule=rule, detail=detail))

    def _static(self, m: _Market) -> RiskGate:
        # A market not assessed yet (no mark): its latch, the operator's state and the book's.
        best = ACTIVE_GATE
        halt = m.carry.halt
        if halt is not None:
            best = RiskGate(state=_HALTED, rule=halt.reason.rule, detail=_latched(halt))
        if m.operator > best.state:
            best = RiskGate(state=m.operator, rule="operator", detail=m.operator_note or "operator")
        book_state, book_rule, book_detail = self._book_floor()
        if book_state > best.state:
            best = RiskGate(state=book_state, rule=book_rule, detail=book_detail)
        return best

    def _book_floor(self) -> tuple[TradingState, str, str]:
        if self.book is not None:
            b = self.book
            if b.halt is not None:
                return _HALTED, b.halt.reason.rule, _latched(b.halt)
            if b.reasons:
                return b.state, b.reasons[0].rule, describe(b.reasons[0])
            return b.state, "", ""
        # Before the first evaluation: what the state file said.
        if self.book_carry.halt is not None:
            return _HALTED, self.book_carry.halt.reason.rule, _latched(self.book_carry.halt)
        return self.book_operator, "operator", self.book_operator_note or "operator"

    def _apply(self, m: _Market, r: MarketRisk | RiskGate, ts: int) -> RiskGate | None:
        gate = r.gate if isinstance(r, MarketRisk) else r
        if isinstance(r, MarketRisk):
            m.risk = r
        old = m.gate
        if gate.state == old.state and gate.widen_px == old.widen_px and gate.rule == old.rule:
            return None
        m.gate = gate
        if gate.state != m.state or gate.rule != old.rule:
            self._record_market(m, r, old, ts)
        m.state = gate.state
        return gate

    # --- records -----------------------------------------------------------------------------------

    def _record_market(self, m: _Market, r: MarketRisk | RiskGate, old: RiskGate, ts: int) -> None:
        gate = r.gate if isinstance(r, MarketRisk) else r
        top: RiskReason | None = None
        if isinstance(r, MarketRisk):
            top = r.halt.reason if r.state is _HALTED and r.halt is not None else (r.reasons or (None,))[0]
        payload: dict[str, Any] = {
            "scope": "market",
            "state": STATE_NAMES[gate.state],
            "from": STATE_NAMES[old.state],
            "rule": gate.rule,
            "text": describe(top) if top is not None else gate.detail,
            "widen_px": gate.widen_px,
        }
        if isinstance(r, MarketRisk):
            payload["reasons"] = [_reason(x) for x in r.reasons]
            payload["halt"] = _halt(r.halt)
            payload["day_pnl_usdc6"] = r.pnl.day_pnl_usdc6
            payload["day_realized_usdc6"] = r.pnl.day_realized_usdc6
            payload["day_unrealized_usdc6"] = r.pnl.day_unrealized_usdc6
            payload["mark_px"] = m.mark_px
        if m.sink is not None:
            m.sink.record("risk", ts, m.name, payload)
        if self.history is not None:
            self.history.append(_change(ts, m.name, old.state, gate, top))

    def _record_book(self, b: BookRisk, ts: int) -> None:
        top = b.halt.reason if b.halt is not None else (b.reasons[0] if b.reasons else None)
        rule = top.rule if top is not None else ""
        if b.state == self.book_state and rule == self.book_rule:
            return
        old = self.book_state
        self.book_state, self.book_rule = b.state, rule
        text = describe(top) if top is not None else ""
        if self.book_sink is not None:
            self.book_sink.record(
                "risk",
                ts,
                "",
                {
                    "scope": "book",
                    "state": STATE_NAMES[b.state],
                    "from": STATE_NAMES[old],
                    "rule": rule,
                    "text": text,
                    "reasons": [_reason(x) for x in b.reasons],
                    "halt": _halt(b.halt),
                    "day_pnl_usdc6": b.day_pnl_usdc6,
                    "day_realized_usdc6": b.day_realized_usdc6,
                    "day_unrealized_usdc6": b.day_unrealized_usdc6,
                    "peak_pnl_usdc6": b.peak_pnl_usdc6,
                    "drawdown_usdc6": b.drawdown_usdc6,
                },
            )
        if self.history is not None:
            gate = RiskGate(state=b.state, rule=rule, detail=text)
            self.history.append(_change(ts, "", old, gate, top))

    # --- reading -----------------------------------------------------------------------------------

    def gate(self, market: str) -> RiskGate:
        """The gate last handed to ``market`` (or, before any, what the state file and book say)."""
        m = self.markets.get(market)
        return ACTIVE_GATE if m is None else m.gate

    def start_gates(self) -> dict[str, RiskGate]:
        """Every market's gate before any news (after ``restore``): a restored HALT is in force at once."""
        out = {}
        for m in self.markets.values():
            gate = self._static(m)
            m.gate, m.state = gate, gate.state
            out[m.name] = gate
        self.book_state, self.book_rule = self._book_floor()[:2]
        return out

    def view(self, ts_ns: int) -> RiskView:
        """The book and every market now (for status and metrics)."""
        b = self.book
        markets = []
        for m in self.markets.values():
            r = m.risk
            s = m.sample
            watched = m.watched_ns
            quoting = m.quoting_ns
            if s is not None and ts_ns > s.ts_ns:
                watched += ts_ns - s.ts_ns
                if s.quoting and not s.resolved:
                    quoting += ts_ns - s.ts_ns
            halt = r.halt if r is not None else m.carry.halt
            markets.append(
                MarketRiskView(
                    market=m.name,
                    state=STATE_NAMES[m.gate.state],
                    rule=m.gate.rule,
                    detail=m.gate.detail,
                    reasons=tuple(describe(x) for x in r.reasons) if r is not None else (),
                    operator=STATE_NAMES[m.operator],
                    operator_note=m.operator_note,
                    halt=_latched(halt) if halt is not None else "",
                    mark_px=m.mark_px,
                    day_pnl_usdc6=r.pnl.day_pnl_usdc6 if r is not None else None,
                    day_realized_usdc6=r.pnl.day_realized_usdc6 if r is not None else None,
                    day_unrealized_usdc6=r.pnl.day_unrealized_usdc6 if r is not None else None,
                    feed_age_ns=(
                        max(0, ts_ns - s.book_ts_ns) if s is not None and s.book_ts_ns >= 0 else None
                    ),
                    quote_uptime=round(quoting / watched, 6) if watched > 0 else 0.0,
                    sample=s,
                )
            )
        state, rule, _ = self._book_floor()
        halt = b.halt if b is not None else self.book_carry.halt
        return RiskView(
            ts_ns=ts_ns,
            book_state=STATE_NAMES[state],
            book_rule=rule,
            book_reasons=tuple(describe(x) for x in b.reasons) if b is not None else (),
            book_operator=STATE_NAMES[self.book_operator],
            book_operator_note=self.book_operator_note,
            book_halt=_latched(halt) if halt is not None else "",
            day_pnl_usdc6=b.day_pnl_usdc6 if b is not None else 0,
            day_realized_usdc6=b.day_realized_usdc6 if b is not None else 0,
            day_unrealized_usdc6=b.day_unrealized_usdc6 if b is not None else 0,
            peak_pnl_usdc6=b.peak_pnl_usdc6 if b is not None else 0,
            drawdown_usdc6=b.drawdown_usdc6 if b is not None else 0,
            daily_loss_stop_usdc6=self.limits.daily_loss_stop_usdc6,
            market_daily_loss_stop_usdc6=self.limits.market_daily_loss_stop_usdc6,
            heartbeat_age_ns=self.heartbeat_age_ns,
            markets=tuple(markets),
        )

    # --- the state file ----------------------------------------------------------------------------

    def to_state(self, ts_ns: int) -> dict[str, Any]:
        """What a restart needs (JSON-ready): operator states, latched HALTs, the day's PnL and peak."""
        markets: dict[str, Any] = dict(self.foreign)
        for m in self.markets.values():
            entry: dict[str, Any] = {
                "operator": STATE_NAMES[m.operator],
                "operator_note": m.operator_note,
                "halt": _halt(m.carry.halt),
            }
            r = m.risk
            if r is not None and m.carry.day is not None:
                entry["day"] = m.carry.day.day
                entry["day_pnl_usdc6"] = r.pnl.day_pnl_usdc6
                entry["day_realized_usdc6"] = r.pnl.day_realized_usdc6
                entry["mark_px"] = m.mark_px
            elif m.restore is not None:
                day, pnl, realized, mark = m.restore
                entry.update(day=day, day_pnl_usdc6=pnl, day_realized_usdc6=realized, mark_px=mark)
            markets[m.name] = entry
        bc = self.book_carry
        return {
            "version": STATE_FILE_VERSION,
            "saved_ns": ts_ns,
            "book": {
                "operator": STATE_NAMES[self.book_operator],
                "operator_note": self.book_operator_note,
                "halt": _halt(bc.halt),
                "day": bc.day,
                "peak_pnl_usdc6": bc.peak_pnl_usdc6,
            },
            "markets": markets,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what ``to_state`` saved (before any news).

        Raises:
            ValueError: The state is not one this version wrote.
        """
        if state.get("version") != STATE_FILE_VERSION:
            raise ValueError(f"version {state.get('version')!r} is not {STATE_FILE_VERSION}")
        try:
            book = state["book"]
            self.book_operator = state_of(book["operator"])
            self.book_operator_note = str(book.get("operator_note", ""))
            self.book_carry = BookCarry(
                day=int(book.get("day", -1)),
                peak_pnl_usdc6=int(book.get("peak_pnl_usdc6", 0)),
                halt=_load_halt(book.get("halt")),
            )
            for name, entry in dict(state["markets"]).items():
                m = self.markets.get(name)
                if m is None:
                    self.foreign[name] = entry
                    continue
                m.operator = state_of(entry["operator"])
                m.operator_note = str(entry.get("operator_note", ""))
                m.carry = MarketCarry(halt=_load_halt(entry.get("halt")))
                if "day" in entry:
                    m.restore = (
                        int(entry["day"]),
                        int(entry["day_pnl_usdc6"]),
                        int(entry["day_realized_usdc6"]),
                        int(entry.get("mark_px", -1)),
                    )
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            raise ValueError(f"malformed risk state: {exc!r}") from None

    def take_durable(self) -> bool:
        """Whether a HALT or an operator's state changed since the last call (then clears the flag)."""
        dirty, self.durable_dirty = self.durable_dirty, False
        return dirty


def _latched(h: Halt) -> str:
    return f"{describe(h.reason)}, latched at {h.ts_ns} ns"


def _reason(r: RiskReason) -> dict[str, Any]:
    return {
        "rule": r.rule,
        "state": STATE_NAMES[r.state],
        "scope": r.scope,
        "market": r.market,
        "observed": r.observed,
        "limit": r.limit,
        "unit": r.unit,
        "widen_px": r.widen_px,
        "detail": r.detail,
        "text": describe(r),
    }


def _halt(h: Halt | None) -> dict[str, Any] | None:
    if h is None:
        return None
    return {"ts_ns": h.ts_ns, "text": describe(h.reason), "reason": msgspec.to_builtins(h.reason)}


def _load_halt(raw: Any) -> Halt | None:
    if raw is None:
        return None
    return Halt(reason=msgspec.convert(raw["reason"], RiskReason), ts_ns=int(raw["ts_ns"]))


def _change(ts: int, market: str, old: TradingState, gate: RiskGate, top: RiskReason | None) -> RiskChange:
    return RiskChange(
        ts_ns=ts,
        market=market,
        from_state=STATE_NAMES[old],
        state=STATE_NAMES[gate.state],
        rule=gate.rule,
        text=describe(top) if top is not None else gate.detail,
        observed=top.observed if top is not None else 0,
        limit=top.limit if top is not None else 0,
        unit=top.unit if top is not None else "",
    )


# --- the actor -------------------------------------------------------------------------------------


class RiskStore(Protocol):
    """Where the monitor's state is saved (``adapters.risk_state.RiskStateFile``)."""

    def save(self, state: Mapping[str, Any], *, durable: bool) -> None:
        """Replace the saved state atomically (``durable``: on disk before returning)."""
        ...


class RiskActor(pykka.ThreadingActor):
    """The pykka shell around ``RiskMonitor`` (live, paper, dry-run); see the module docstring."""

    def __init__(
        self,
        monitor: RiskMonitor,
        tell_gate: Callable[[str, RiskGate], object],
        clock: Clock,
        *,
        store: RiskStore | None = None,
        sink: EventSink | None = None,
    ) -> None:
        """``tell_gate(market, gate)`` hands a changed gate to the market's actor; ``sink`` logs commands."""
        super().__init__()
        self.monitor = monitor
        self.tell_gate = tell_gate
        self.clock = clock
        self.store = store
        self.sink = sink
        self._saved_pnl: object = None

    def on_stop(self) -> None:
        """Save the state one last time."""
        self.monitor.durable_dirty = True
        self._save(self.clock.now_ns())

    def on_receive(self, message: Any) -> Any:
        """Samples and ticks by ``tell``; operator commands and views by ``ask``."""
        match message:
            case MarketSample():
                gate = self.monitor.observe(message)
                if gate is not None:
                    self.tell_gate(message.market, gate)
                    self._save(message.ts_ns)
            case RiskTick():
                self._tell(
                    self.monitor.evaluate(
                        message.ts_ns,
                        heartbeat_age_ns=message.heartbeat_age_ns,
                        venue_errors=message.venue_errors,
                    )
                )
                self._save(message.ts_ns)
            case Operate():
                return self._operate(message)
            case GetRisk():
                return self.monitor.view(self.clock.now_ns())
            case _:
                raise TypeError(f"risk: unexpected message {type(message).__name__}")
        return None

    def _operate(self, op: Operate) -> OperateResult:
        now = self.clock.now_ns()
        if op.market and op.market not in self.monitor.markets:
            return OperateResult(ok=False, error=f"unknown market {op.market}")
        changes = self.monitor.operate(op.action, op.market, op.note, now)
        self._tell(changes)
        self._save(now)
        view = self.monitor.view(now)
        return OperateResult(
            ok=True,
            book_state=view.book_state,
            changed={m: STATE_NAMES[g.state] for m, g in changes.items()},
        )

    def _tell(self, changes: Mapping[str, RiskGate]) -> None:
        for market, gate in changes.items():
            self.tell_gate(market, gate)

    def _save(self, ts_ns: int) -> None:
        if self.store is None:
            return
        durable = self.monitor.take_durable()
        state = self.monitor.to_state(ts_ns)
        pnl = (
            state["book"],
            {m: (e.get("day_pnl_usdc6"), e.get("halt")) for m, e in state["markets"].items()},
        )
        if not durable and pnl == self._saved_pnl:
            return
        try:
            self.store.save(state, durable=durable)
        except OSError as exc:
            # The next change tries again; the event log has the risk records meanwhile.
            if durable:
                self.monitor.durable_dirty = True
            log.error("risk: cannot save the risk state: %s", exc)
            return
        self._saved_pnl = pnl
