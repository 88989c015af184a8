"""MarketSession: one market's state and its gather → decide → apply handlers, with no threads.

A pykka ``MarketActor`` drives it live and in paper trading; the simulator drives it from an actor or
inline. Every input (market data, execution reports, timers) goes through the same methods:
update the book and estimators, call ``core.quoting.decide`` when its inputs changed, diff with
``core.reconcile.reconcile_admit`` and hand the commands to the ``ExchangePort``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, assert_never, cast

import msgspec

from actors.risk import RISK_SAMPLE_MAX_GAP_NS, MarketSample
from actors.structs import CANCEL_PENDING, LIVE, PENDING_NEW, OrderRecord, SessionStats
from core.book import L2Book
from core.estimators import FlowState, VolState, decay_vol, update_flow, update_flow_permille, update_vol
from core.inventory import Inventory, OrderLike, apply_fill, apply_merge, settle, worst_case_losses
from core.markets import MarketInfo
from core.merge import merge_qty
from core.messages import (
    Accepted,
    Adopted,
    BookDelta,
    BookSnapshot,
    Cancel,
    CancelAll,
    Canceled,
    Command,
    ExecEvent,
    Filled,
    MarketEvent,
    MarketResolved,
    Merge,
    Merged,
    MergeFailed,
    Place,
    PositionResync,
    Rejected,
    TickSizeChanged,
    Timer,
    TradePrint,
)
from core.ports import Clock, EventSink, ExchangePort
from core.quoting import Decision, QuoteParams, decide, flow_size_pcts, flow_size_pcts_at, requote_due
from core.reconcile import Tolerance, reconcile_admit
from core.rewards import NO_REWARDS, RewardParams, adjusted_mid2_px
from core.risk import ACTIVE_GATE, RiskGate
from core.units import NEVER_NS, PX_ONE, Outcome, Side, opposite
from core.yes_view import to_yes, yes_side

NEVER: Final = NEVER_NS
#: After a post-only order is refused for crossing the book, no new order for this long, doubling
#: with every refusal in a row up to the max: our book was wrong, and re-sending would cross again.
CROSS_BACKOFF_INITIAL_NS: Final = 500_000_000
CROSS_BACKOFF_MAX_NS: Final = 30_000_000_000
#: After a merge failed, no new merge of that market for this long (live: a revert or an RPC error
#: would otherwise be retried at every decision).
MERGE_RETRY_NS: Final = 60_000_000_000
#: Levels per side scanned for the size-cutoff-adjusted mid (the first big-enough level is near the touch).
_REWARD_MID_DEPTH: Final = 50
_YES: Final = Outcome.YES
#: The position-drift hold of the order gateway (``actors.gateway``): the risk rule ``drift`` reads it.
DRIFT_HOLD: Final = "position_drift"

#: Where a session's ``MarketSample`` goes (``actors.risk``); ``urgent`` (a fill): assess it now. A
#: gate returned is applied at once (the simulator's monitor answers inline; the risk actor tells).
RiskReport = Callable[[MarketSample, bool], RiskGate | None]


class MarketSession:
    """State and handlers of one market (see the module docstring)."""

    def __init__(
        self,
        info: MarketInfo,
        params: QuoteParams,
        port: ExchangePort,
        clock: Clock,
        sink: EventSink,
        *,
        quoting_enabled: bool = True,
        inventory: Inventory | None = None,
        incarnation: int = 0,
        book_resync: Callable[[str], object] | None = None,
        risk_gate: RiskGate = ACTIVE_GATE,
        risk_report: RiskReport | None = None,
    ) -> None:
        """Create a session; no I/O here (pykka runs ``__init__`` on the caller's thread).

        ``inventory`` is what the market holds at start (live: the venue's positions through the
        ledger); ``book_resync(market)`` asks the feed for a fresh book (after a post-only cross);
        ``risk_gate`` the market's trading state at start and ``risk_report`` where its samples go
        (``actors.risk``; None: no risk manager).
        """
        self.info = info
        self.market = info.market
        self.params = params
        #: ``params.min_requote_ns`` as a plain attribute: read at every top move (a Struct's
        #: attribute is a generic lookup in the compiled build, bench/fast.py).
        self._min_requote_ns = params.min_requote_ns
        self.port = port
        self.clock = clock
        self.sink = sink
        self.quoting_enabled = quoting_enabled
        self.book = L2Book(tick_px=info.tick_px, min_qty=info.min_qty)
        #: The market's reward terms when rewards-aware quoting is on and the market has a program.
        rewards = info.reward_params()
        self.rewards = rewards if params.rewards_enabled and rewards.active else None
        self.book_valid = False
        self.resolved = False
        self.resolved_yes: bool | None = None
        self.vol = VolState()
        self.flow = FlowState()
        self.inv = inventory or Inventory()
        self.orders: dict[str, OrderRecord] = {}
        self.seq = 0
        # A restarted market's ids must not collide with its predecessor's (the venue and the
        # gateway still know those): ``market-seq`` first, ``market-rN-seq`` after the N-th restart.
        self.id_prefix = f"{info.market}-" if incarnation == 0 else f"{info.market}-r{incarnation}-"
        self.dirty = True
        self.global_room_usdc6: int | None = None
        self.last_decision: Decision | None = None
        #: The last decision's best bid and ask prices (-1 and PX_ONE + 1: none, or no decision),
        #: kept with ``last_decision`` by ``_set_decision`` for ``on_top_moved`` (every top move).
        self._last_bid_px = -1
        self._last_ask_px = PX_ONE + 1
        self.tolerance = Tolerance(
            px=params.requote_px_tolerance_ticks * info.tick_px, qty_pct=params.requote_qty_tolerance_pct
        )
        self.stats = SessionStats()
        # Bumped whenever our order set changes in a way reconcile sees (not on Accepted).
        self.orders_version = 0
        self.last_requote_ns = -(1 << 62)
        #: When the pending requote is due: the driver calls ``flush`` then (after every other input
        #: of that instant, so a burst of fills or deltas leads to one decision).
        self.wakeup_ns = NEVER
        self._applied_key: tuple[object, ...] | None = None
        self._flow_pct = (100, 100)
        #: The flow's constants of ``params``, read at every print, and the band of imbalances
        #: (permille, exclusive) that leaves ``_flow_pct`` as it is: the threshold while both
        #: multipliers are 100, else 0 (none: every print looks again).
        self._flow_halflife_s = params.flow_halflife_s
        self._flow_min_qty = params.flow_min_qty
        self._flow_calm_permille = params.flow_threshold_permille
        #: Why quoting is held (key -> reason; live: the order gateway's position drift or rate limit).
        self.holds: dict[str, str] = {}
        self.book_resync = book_resync
        #: Post-only refusals for crossing the book in a row, and until when no new order is placed.
        self.cross_rejects = 0
        self.places_blocked_until_ns = 0
        self._places_blocked = False
        #: The market's trading state from the risk manager: ``decide`` honours it.
        self.risk_gate = risk_gate
        self.risk_report = risk_report
        #: Refused orders so far, post-only crosses excepted (the risk rule ``error_rate`` counts them).
        self.counted_rejects = 0
        self._risk_key: tuple[object, ...] | None = None
        self._risk_sent_ns = -NEVER
        self._book_seen_ns = -1
        #: Tick-to-quote latencies (``actors.market.LatencyHistogram``), kept by the market's actor.
        self.quote_latency: Any = None
        #: Live: the feed's book shows our own resting orders (the simulator's and the paper venue's
        #: books do not); the risk manager's mark leaves them out.
        self.own_orders_in_book = False
        #: The merge of YES+NO pairs sent and not yet reported (one at a time), and until when no new
        #: merge is sent (after a failure). Its pairs are out of what we quote from (``quote_inv``).
        self.merging: Merge | None = None
        self.merge_seq = 0
        self.merge_blocked_until_ns = 0

    # --- market data -------------------------------------------------------------------------------

    def on_event(self, ev: MarketEvent) -> None:
        """Handle one market-data event (the live path; the simulator calls the typed handlers).

        Events come on the YES book, each happening once (the feed's ``core.yes_view.YesView``); an
        event still on the NO token is mapped with ``core.yes_view.to_yes``. The session's time is
        its clock's (the receive time), not the venue's timestamp: a venue clock running ahead must
        not delay requotes, nor one running behind age the book.
        """
        now = self.clock.now_ns()
        if type(ev) is BookDelta:  # the common case, without the pattern match
            if ev.outcome is not _YES:
                ev = cast(BookDelta, to_yes(ev))
            self.on_level(ev.side, ev.px, ev.qty, now)
            return
        self._on_other(ev, now)

    def _on_other(self, ev: MarketEvent, now: int) -> None:
        if getattr(ev, "outcome", _YES) is not _YES:
            ev = to_yes(ev)
        match ev:
            case BookDelta():
                self.on_level(ev.side, ev.px, ev.qty, now)
            case TradePrint():
                self.on_trade(ev.aggressor, ev.px, ev.qty, now)
            case BookSnapshot():
                self.on_snapshot(ev, now)
            case TickSizeChanged():
                self.on_tick_size(ev.tick_px, now)
            case MarketResolved():
                self.on_resolved(ev.yes_won, now)
            case Timer():
                self.on_timer(now)
            case _:
                assert_never(ev)

    def on_batch(self, events: Sequence[MarketEvent]) -> None:
        """The YES events of one feed frame, received now: one clock read, one top-of-book check.

        Equivalent to ``on_event`` per event, except that a run of YES deltas is judged once, on the
        book it leaves (the decision comes after the whole frame either way).
        """
        now = self.clock.now_ns()
        book = self.book
        moved = False
        for ev in events:
            if type(ev) is BookDelta:
                d = ev if ev.outcome is _YES else cast(BookDelta, to_yes(ev))
                if book.set_level(d.side, d.px, d.qty, now):
                    moved = True
                continue
            if moved:
                moved = False
                if self.book_valid:
                    self.on_top_moved(now)
            self._on_other(ev, now)
        if moved and self.book_valid:
            self.on_top_moved(now)

    def on_snapshot(self, ev: BookSnapshot, ts_ns: int) -> None:
        """A full book received at ``ts_ns``: the only way out of a tick-size epoch or a reconnect.

        A NO token's book is the YES book it mirrors (``core.yes_view.to_yes``).
        """
        if ev.outcome is not _YES:
            ev = cast(BookSnapshot, to_yes(ev))
        self.book.apply_snapshot(ev.bids, ev.asks, ts_ns, ev.tick_px, ev.min_qty)
        self.book_valid = True
        self.dirty = True
        self._maybe_requote(ts_ns, urgent=True)

    def on_level(self, side: Side, px: int, qty: int, ts_ns: int) -> None:
        """One YES level changed; requote only when the top of the book moved."""
        if self.book.set_level(side, px, qty, ts_ns) and self.book_valid:
            self.on_top_moved(ts_ns)

    def on_trade(self, aggressor: Side, px: int, qty: int, ts_ns: int) -> None:
        """A market trade print on the YES book feeds the flow estimator."""
        # (``update_flow``, then ``_check_flow`` at this instant: the undecayed imbalance.)
        self.flow, flow_pm = update_flow_permille(
            self.flow, aggressor, qty, ts_ns, self._flow_halflife_s, self._flow_min_qty
        )
        if abs(flow_pm) >= self._flow_calm_permille:
            bid_pct, ask_pct = flow_size_pcts_at(flow_pm, self.params)
            self._set_flow_pct(bid_pct, ask_pct, ts_ns)

    def on_tick_size(self, tick_px: int, ts_ns: int) -> None:
        """A new tick starts a book epoch: drop the book, pull quotes, wait for a snapshot."""
        self.book.set_tick(tick_px)
        self.book.clear()
        self.book_valid = False
        self.tolerance = msgspec.structs.replace(
            self.tolerance, px=self.params.requote_px_tolerance_ticks * tick_px
        )
        self._pull_all(ts_ns, "tick_size_change")

    def on_feed_lost(self, ts_ns: int) -> None:
        """The feed lost the book (a dropped connection): pull everything and wait for a snapshot.

        Quoting on a book nobody updates is quoting blind; the reconnect's snapshot resumes.
        """
        self.book.clear()
        self.book_valid = False
        if any(r.status != CANCEL_PENDING for r in self.orders.values()):
            self._pull_all(ts_ns, "feed_lost")  # (at shutdown every order is being cancelled already)
        self._set_decision(None)

    def on_resolved(self, yes_won: bool, ts_ns: int) -> None:
        """The market resolved: pull everything and settle the inventory."""
        self._pull_all(ts_ns, "market_resolved")
        self.resolved = True
        self.resolved_yes = yes_won
        self.inv = settle(self.inv, yes_won)
        self.sink.record("settlement", ts_ns, self.market, {"yes_won": yes_won, "inventory": self.inv})
        if self.risk_report is not None:
            self.report_risk(ts_ns, urgent=True)  # the settlement is the market's last mark

    def on_feed_alive(self, ts_ns: int) -> None:
        """The market feed is connected and current at ``ts_ns``: a quiet book is not a stale one."""
        if self.book_valid and ts_ns > self.book.ts_ns:
            self.book.ts_ns = ts_ns
            last = self.last_decision
            if last is not None and last.no_quote == "stale_book":
                self._changed()

    def on_timer(self, ts_ns: int) -> None:
        """Time passes: the mid is sampled for volatility, books go stale, flow fades.

        Sampling the mid on the timer (not on every top-of-book change) keeps bid/ask flicker from
        inflating the volatility estimate in busy books.
        """
        book = self.book
        if ts_ns - self.vol.ts_ns >= self.params.vol_sample_ns:
            if self.book_valid and 0 <= book.bid_px < book.ask_px <= PX_ONE:
                vol = update_vol(self.vol, (book.bid_px + book.ask_px) / 2, ts_ns, self.params.vol)
            else:
                vol = decay_vol(self.vol, ts_ns, self.params.vol)
            if vol.pulled != self.vol.pulled or vol.vol_px != self.vol.vol_px:
                self.dirty = True
            self.vol = vol
        self._check_flow(ts_ns)
        last = self.last_decision
        if (
            self.params.max_book_age_ns
            and last is not None
            and last.quote
            and (ts_ns - self.book.ts_ns > self.params.max_book_age_ns)
        ):
            self.dirty = True
        if self.dirty:
            self._maybe_requote(ts_ns, urgent=False)
        if self.risk_report is not None:
            self.report_risk(ts_ns, urgent=False)

    def _check_flow(self, ts_ns: int) -> None:
        # The flow feeds the decision only through the size multipliers: requote when they change.
        _, bid_pct, ask_pct = flow_size_pcts(self.flow, ts_ns, self.params)
        self._set_flow_pct(bid_pct, ask_pct, ts_ns)

    def _set_flow_pct(self, bid_pct: int, ask_pct: int, ts_ns: int) -> None:
        if (bid_pct, ask_pct) != self._flow_pct:
            self._flow_pct = (bid_pct, ask_pct)
            calm = bid_pct == 100 and ask_pct == 100
            self._flow_calm_permille = self.params.flow_threshold_permille if calm else 0
            if self.book_valid:
                self.dirty = True
                self._maybe_requote(ts_ns, urgent=False)

    def on_top_moved(self, ts_ns: int) -> None:
        """The best bid or ask of a valid ``book`` moved at ``ts_ns`` (a driver that applies levels
        to the book itself calls this, as ``on_level`` does): schedule a requote.

        Nothing to do when a requote is pending already and due no later than this change would
        make it: now, or (for a change that is not urgent) when the throttle next lets one through.
        """
        wake = self.wakeup_ns
        if self.dirty and wake <= ts_ns:
            return
        # Urgent: the book lost a side or crossed, or it moved through our resting quotes (a valid
        # book has 0 <= bid < ask <= PX_ONE, so the no-quote values -1 and PX_ONE + 1 never match).
        # (Inline: the simulator calls this on every top move of a valid book.)
        book = self.book
        bid, ask = book.bid_px, book.ask_px
        urgent = not (0 <= bid < ask <= PX_ONE) or self._last_bid_px >= ask or self._last_ask_px <= bid
        if not urgent and self.dirty and wake <= self.last_requote_ns + self._min_requote_ns:
            return
        self.dirty = True
        self._maybe_requote(ts_ns, urgent=urgent)

    def _set_decision(self, d: Decision | None) -> None:
        self.last_decision = d
        self._last_bid_px = d.bids[0].px if d is not None and d.bids else -1
        self._last_ask_px = d.asks[0].px if d is not None and d.asks else PX_ONE + 1

    def _maybe_requote(self, ts_ns: int, urgent: bool) -> None:
        # Never decide inside a handler: schedule it, now (after the rest of this instant's inputs)
        # or when the throttle allows.
        due = (
            ts_ns
            if requote_due(ts_ns, self.last_requote_ns, self._min_requote_ns, urgent)
            else (self.last_requote_ns + self._min_requote_ns)
        )
        self.wakeup_ns = min(self.wakeup_ns, due)

    def flush(self, ts_ns: int) -> None:
        """Act on what changed: decide and apply if a requote is pending and due."""
        if ts_ns >= self.wakeup_ns:
            self.wakeup_ns = NEVER
            if self.dirty:
                self.requote(ts_ns)

    # --- execution reports -------------------------------------------------------------------------

    def on_exec(self, ev: ExecEvent) -> None:
        """Apply an execution report from the exchange port."""
        match ev:
            case Accepted():
                rec = self.orders.get(ev.client_id)
                if rec is not None and rec.status == PENDING_NEW:
                    rec.status = LIVE
                if self.cross_rejects and self.clock.now_ns() >= self.places_blocked_until_ns:
                    self.cross_rejects = 0  # an order sent after the backoff rested: the book is right again
            case Filled():
                self._on_fill(ev)
            case Canceled():
                if self.orders.pop(ev.client_id, None) is not None:
                    self.orders_version += 1
                    self.sink.record("canceled", ev.ts_ns, self.market, ev)
                    self._changed()  # places deferred until this cancel was confirmed can go now
            case Rejected():
                self.orders.pop(ev.client_id, None)
                self.orders_version += 1
                self.stats.rejects += 1
                self.sink.record("rejected", ev.ts_ns, self.market, ev)
                if is_post_only_cross(ev.reason):
                    self._on_cross(self.clock.now_ns())
                else:
                    self.counted_rejects += 1  # the next sample tells the risk manager
                self._changed()
            case Adopted():
                # An earlier run's order, kept with its queue place: ours from now on, like any other
                # (the next reconcile keeps it if it is what we want, or cancels it).
                if ev.client_id not in self.orders:
                    self.orders[ev.client_id] = OrderRecord(
                        client_id=ev.client_id,
                        outcome=ev.outcome,
                        side=ev.side,
                        px=ev.px,
                        qty=ev.qty,
                        status=LIVE,
                    )
                    self.orders_version += 1
                    self.sink.record("adopted", ev.ts_ns, self.market, ev)
                    self._changed()
            case PositionResync():
                self._on_resync(ev)
            case Merged():
                self._on_merged(ev)
            case MergeFailed():
                if self.merging is not None and self.merging.merge_id == ev.merge_id:
                    self.merging = None
                self.stats.merge_failures += 1
                self.merge_blocked_until_ns = self.clock.now_ns() + MERGE_RETRY_NS
                self.sink.record("merge_failed", ev.ts_ns, self.market, ev)
                self._changed()
            case _:
                assert_never(ev)

    def _on_cross(self, now: int) -> None:
        # Our book said the price was free; the venue's was not. Back off (no new order until the
        # block ends, doubling per refusal in a row) and ask the feed for a fresh book.
        if now < self.places_blocked_until_ns:
            return  # the same batch, or the backoff already runs
        self.cross_rejects += 1
        delay = min(CROSS_BACKOFF_MAX_NS, CROSS_BACKOFF_INITIAL_NS << min(self.cross_rejects - 1, 20))
        self.places_blocked_until_ns = now + delay
        # (The backoff says how many refusals in a row: 0.5 s doubled per refusal.)
        self.sink.record(
            "post_only_backoff", now, self.market, {"backoff_ns": delay, "until_ns": now + delay}
        )
        if self.book_resync is not None:
            self.book_resync(self.market)

    def hold(self, key: str, reason: str, ts_ns: int) -> None:
        """Stop quoting for ``key`` (pull every quote) until ``release(key)``."""
        if key in self.holds:
            return
        self.holds[key] = reason
        self.sink.record("hold", ts_ns, self.market, {"key": key, "reason": reason})
        self.wakeup_ns = NEVER
        self._pull_all(ts_ns, f"hold: {reason}")

    def release(self, key: str, ts_ns: int) -> None:
        """The hold ``key`` is over; quote again once no hold is left."""
        if self.holds.pop(key, None) is None:
            return
        self.sink.record("release", ts_ns, self.market, {"key": key, "holds_left": sorted(self.holds)})
        if not self.holds:
            self._changed()

    # --- risk ------------------------------------------------------------------------------------------

    def set_risk_gate(self, gate: RiskGate, ts_ns: int) -> None:
        """The market's trading state from the risk manager: acted on at once (a pause pulls now)."""
        old = self.risk_gate
        if gate.state == old.state and gate.widen_px == old.widen_px and gate.rule == old.rule:
            self.risk_gate = gate  # (the same state; keep the newer detail)
            return
        self.risk_gate = gate
        self.dirty = True
        if self.book_valid and not self.resolved:
            self._maybe_requote(ts_ns, urgent=True)

    def report_risk(self, ts_ns: int, urgent: bool) -> None:
        """Tell the risk manager what changed (``urgent``: a fill; else at most once per timer).

        A sample goes when anything the rules read changed, and at least once a second (the feed's
        age moves on by itself; the counters are refreshed then).
        """
        report = self.risk_report
        if report is None:
            return
        book = self.book
        mid = self.market_mid_px()
        if self.book_valid and book.ts_ns > self._book_seen_ns:
            self._book_seen_ns = book.ts_ns
        d = self.last_decision
        quoting = d is not None and d.quote and not self.holds and self.quoting_enabled
        st = self.stats
        drift = self.holds.get(DRIFT_HOLD, "")
        key = (
            mid,
            self.inv,
            self.counted_rejects,
            drift,
            self.book_valid,
            len(self.orders),
            quoting,
            self.resolved,
        )
        if not urgent and key == self._risk_key and ts_ns - self._risk_sent_ns < RISK_SAMPLE_MAX_GAP_NS:
            return
        self._risk_key = key
        self._risk_sent_ns = ts_ns
        gate = report(
            MarketSample(
                market=self.market,
                ts_ns=ts_ns,
                inv=self.inv,
                mid_px=mid,
                book_ts_ns=self._book_seen_ns,
                book_valid=self.book_valid,
                rejects=self.counted_rejects,
                drift=drift,
                open_orders=len(self.orders),
                quoting=quoting,
                resolved=self.resolved,
                fills=st.fills,
                decisions=st.decide_calls,
                places=st.places,
                cancels=st.cancels,
            ),
            urgent,
        )
        if gate is not None:
            self.set_risk_gate(gate, ts_ns)

    def market_mid_px(self) -> int:
        """The YES mid of the market without our own orders (-1: no two-sided book).

        Where the book shows our resting orders (live), a quote of ours at the touch would be the
        market's price: its fill or cancel would move the mid, and a fast move, by itself.
        """
        book = self.book
        if not self.book_valid:
            return -1
        bid, ask = book.bid_px, book.ask_px
        if self.own_orders_in_book and self.orders:
            own_bids: dict[int, int] = {}
            own_asks: dict[int, int] = {}
            for r in self.orders.values():
                if r.status == PENDING_NEW:
                    continue  # not on the venue's book yet
                yes_px = r.px if r.outcome is _YES else PX_ONE - r.px
                own = own_bids if (r.outcome is _YES) == (r.side is Side.BUY) else own_asks
                own[yes_px] = own.get(yes_px, 0) + r.qty
            step = book.scan_step
            while bid >= 0 and book.bids[bid] <= own_bids.get(bid, 0):
                bid -= step
            while ask <= PX_ONE and book.asks[ask] <= own_asks.get(ask, 0):
                ask += step
        return (bid + ask) // 2 if 0 <= bid < ask <= PX_ONE else -1

    def _changed(self) -> None:
        # Something our decision depends on changed: requote when the throttle allows.
        self.dirty = True
        if self.book_valid and not self.resolved:
            self._maybe_requote(self.clock.now_ns(), urgent=False)

    def set_global_room(self, room_usdc6: int | None) -> None:
        """What the global exposure cap leaves this market; a tighter budget is acted on."""
        if room_usdc6 != self.global_room_usdc6:
            self.global_room_usdc6 = room_usdc6
            self._changed()

    def _on_resync(self, ev: PositionResync) -> None:
        # The venue's position replaces ours (live: the ledger's resync rule), booked as the ledger
        # books it: each outcome's difference as one fill without fee.
        for outcome, side, px, qty in ev.fills():
            self.inv = apply_fill(self.inv, outcome, side, px, qty, 0)
        if self.resolved_yes is not None:
            self.inv = settle(self.inv, self.resolved_yes)
        net = abs(self.inv.yes_qty - self.inv.no_qty)
        self.stats.max_abs_inventory_qty = max(net, self.stats.max_abs_inventory_qty)
        self.sink.record("position_resync", ev.ts_ns, self.market, ev)
        self._changed()

    def _on_merged(self, ev: Merged) -> None:
        # The venue merged the pairs: ``qty`` YES and NO became ``qty`` Usdc6 of cash. A merge the
        # venue made before resolution but reported after it changes nothing once settled (a pair
        # pays 1 either way, settled or merged), so a settled inventory stays as it is.
        if self.merging is not None and self.merging.merge_id == ev.merge_id:
            self.merging = None
        if self.resolved_yes is None:
            inv = self.inv
            # The venue's figure; never more than the pairs we hold (the ledger books the same).
            self.inv = apply_merge(inv, max(0, min(ev.qty, inv.yes_qty, inv.no_qty)))
        self.stats.merges += 1
        self.stats.merged_qty += ev.qty
        self.sink.record("merged", ev.ts_ns, self.market, ev)
        self._changed()

    def quote_inv(self) -> Inventory:
        """The inventory quotes are decided from: ours, less the pairs of a merge in flight.

        A merge is exposure-neutral (``core.inventory.apply_merge``): taking its pairs out now only
        keeps a new sell from offering shares the merge is taking.
        """
        m = self.merging
        if m is None:
            return self.inv
        inv = self.inv
        return apply_merge(inv, max(0, min(m.qty, inv.yes_qty, inv.no_qty)))

    def _maybe_merge(self, ts_ns: int) -> None:
        # A decision point: merge every pair no sell of ours offers, once there are enough.
        if self.merging is not None or ts_ns < self.merge_blocked_until_ns:
            return
        qty = merge_qty(
            self.inv, [r.as_order() for r in self.orders.values()], self.params.merge_min_pairs_qty
        )
        if not qty:
            return
        self.merge_seq += 1
        cmd = Merge(market=self.market, merge_id=f"{self.id_prefix}m{self.merge_seq}", qty=qty)
        self.merging = cmd
        self.port.submit([cmd])
        self.sink.record(
            "merge",
            ts_ns,
            self.market,
            {"merge_id": cmd.merge_id, "qty": qty, "yes_qty": self.inv.yes_qty, "no_qty": self.inv.no_qty},
        )

    def _on_fill(self, ev: Filled) -> None:
        # (The report's fields read once: a Struct's attribute is a generic lookup when compiled.)
        outcome, side, qty = ev.outcome, ev.side, ev.qty
        inv = apply_fill(self.inv, outcome, side, ev.px, qty, ev.fee_usdc6)
        if self.resolved_yes is not None:
            # Traded before resolution, reported after it: it settles at the known outcome at once.
            inv = settle(inv, self.resolved_yes)
        self.inv = inv
        stats = self.stats
        stats.fills += 1
        net = abs(inv.yes_qty - inv.no_qty)
        stats.max_abs_inventory_qty = max(net, stats.max_abs_inventory_qty)
        client_id = ev.client_id
        rec = self.orders.get(client_id)
        if rec is not None:
            self.orders_version += 1
            leaves = ev.leaves_qty
            rec.qty = leaves
            if leaves <= 0:
                del self.orders[client_id]
        # Our fill is a trade in the market, flow too: the taker is the other side of a maker fill,
        # and the flow is on the YES book.
        taker = side if ev.liquidity == "taker" else opposite(side)
        aggressor = yes_side(outcome, taker)
        now = self.clock.now_ns()
        self.flow = update_flow(self.flow, aggressor, qty, now, self.params.flow_halflife_s)
        self.dirty = True
        if self.book_valid:
            # Not urgent: the caps already counted this order as filled; the new skew can wait for
            # the throttle like any other input.
            self._maybe_requote(now, urgent=False)
        if self.risk_report is not None:
            self.report_risk(now, urgent=True)  # a loss stop acts on the fill that reaches it

    # --- decide and apply --------------------------------------------------------------------------

    def exposure_usdc6(self) -> int:
        """Worst-case loss at resolution with every order of ours that could still fill."""
        return max(worst_case_losses(self.inv, [r.as_order() for r in self.orders.values()]))

    def _reward_mid2_px(self, rw: RewardParams) -> int:
        # Rewards-aware quoting only: the size-cutoff-adjusted mid of the book (twice it).
        book = self.book
        return adjusted_mid2_px(
            book.levels(Side.BUY, _REWARD_MID_DEPTH), book.levels(Side.SELL, _REWARD_MID_DEPTH), rw.min_qty
        )

    def requote(self, ts_ns: int) -> None:
        """Gather → decide → reconcile → submit."""
        self.dirty = False
        self.last_requote_ns = ts_ns
        self.wakeup_ns = NEVER
        if not self.quoting_enabled or self.resolved or not self.book_valid or self.holds:
            return
        if self.params.merge_enabled:
            self._maybe_merge(ts_ns)
        orders = self.orders.values()
        inflight: tuple[OrderLike, ...] = ()
        for r in orders:
            if r.status == CANCEL_PENDING:  # rare: acknowledged cancels are gone already
                pending = [(o.outcome, o.side, o.px, o.qty) for o in orders if o.status == CANCEL_PENDING]
                inflight = tuple(pending)
                break
        self.stats.decide_calls += 1
        inv = self.inv if self.merging is None else self.quote_inv()
        room = self.global_room_usdc6
        rw = self.rewards
        d = decide(
            self.book.view(),
            inv,
            self.vol,
            self.flow,
            self.params,
            ts_ns,
            global_room_usdc6=room,
            inflight=inflight,
            risk=self.risk_gate,
            rewards=NO_REWARDS if rw is None else rw,
            reward_mid2_px=0 if rw is None else self._reward_mid2_px(rw),
        )
        last = self.last_decision
        self._set_decision(d)
        desired = d.orders
        # reconcile is pure: with the same desired orders, order set and budget it would send nothing new.
        key = (desired, self.orders_version, room)
        cmds: list[Command] = []
        if key != self._applied_key:
            blocked = self._places_blocked = ts_ns < self.places_blocked_until_ns
            cmds = self._apply(d, inflight, inv, room)
            if blocked:
                # New orders wait for the end of the post-only backoff: decide again then.
                self.dirty = True
                self.wakeup_ns = min(self.wakeup_ns, self.places_blocked_until_ns)
            else:
                self._applied_key = (desired, self.orders_version, room)  # (the version _apply set)
        # Logged after the hand-over, so encoding never delays an order (the log keeps the order).
        if last is None or desired != last.orders or d.no_quote != last.no_quote:
            self.stats.decisions += 1
            self.sink.record("decision", ts_ns, self.market, d)
        if cmds:
            sink, market = self.sink, self.market
            for c in cmds:
                sink.record("place" if type(c) is Place else "cancel", ts_ns, market, c)

    def _apply(
        self, d: Decision, inflight: tuple[OrderLike, ...], inv: Inventory, room: int | None
    ) -> list[Command]:
        # ``inflight``: requote's orders with a cancel in flight (none, nearly always); the rest are
        # live. ``inv`` and ``room``: the inventory and global room ``d`` was decided from.
        orders = self.orders
        live = (
            list(orders.values())
            if not inflight
            else [r for r in orders.values() if r.status != CANCEL_PENDING]
        )
        # Orders being cancelled can still fill until the venue confirms: place only what fits
        # beside them (and sell only shares no other sell offers); the rest waits for the next
        # decision. Reconcile and that admission read each resting order once.
        cap = self.params.per_market_cap_usdc6
        if room is not None and room < cap:
            cap = room if room > 0 else 0
        plan, admitted = reconcile_admit(d.orders, live, inflight, self.tolerance, inv, cap)
        cancels = plan.cancels
        if self._places_blocked:
            admitted = ()
        if not cancels and not admitted:
            return []  # nothing to change, or every place waits for a cancel to be confirmed
        market = self.market
        cmds: list[Command] = [Cancel(market=market, client_id=cid) for cid in cancels]
        records: list[OrderRecord] = []
        if admitted:
            prefix, post_only, seq = self.id_prefix, self.params.maker_only, self.seq
            for o in admitted:
                seq += 1
                cid, outcome, side, px, qty = f"{prefix}{seq}", o.outcome, o.side, o.px, o.qty
                cmds.append(
                    Place(
                        market=market,
                        client_id=cid,
                        outcome=outcome,
                        side=side,
                        px=px,
                        qty=qty,
                        post_only=post_only,
                    )
                )
                # Recorded below, after the hand-over; made here, from the fields at hand.
                records.append(OrderRecord(client_id=cid, outcome=outcome, side=side, px=px, qty=qty))
            self.seq = seq
        self.port.submit(cmds)
        # Our record of the orders, after the hand-over: no report about them can be handled before
        # this handler returns (ports deliver reports as messages).
        self.orders_version += 1
        for cid in cancels:
            orders[cid].status = CANCEL_PENDING
        for rec in records:
            orders[rec.client_id] = rec
        stats = self.stats
        stats.places += len(records)
        stats.cancels += len(cancels)
        return cmds

    def _pull_all(self, ts_ns: int, reason: str) -> None:
        if self.orders:
            for r in self.orders.values():
                r.status = CANCEL_PENDING
            self.orders_version += 1
            cmd = CancelAll(market=self.market)
            self.sink.record("cancel_all", ts_ns, self.market, {"reason": reason})
            self.port.submit([cmd])
        self._set_decision(None)

    def pull_quotes(self, ts_ns: int, reason: str) -> None:
        """Cancel everything now and stop quoting (shutdown): later inputs decide nothing."""
        self.quoting_enabled = False
        self.wakeup_ns = NEVER
        self._pull_all(ts_ns, reason)


def is_post_only_cross(reason: str) -> bool:
    """Whether a rejection says a post-only order would have crossed the book."""
    text = reason.lower()
    return "crosses book" in text or "would_cross" in text or "would cross" in text
