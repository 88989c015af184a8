"""The emulated venue: markets, accounts, orders, trades, heartbeats, feeds and counters.

One ``sim.matching.MatchingEngine`` per market does the matching (YES/NO on one book, mint and merge,
taker fees, TIF, post-only). The venue adds what the real CLOB adds around it:

* accounts per address (the API key's signer), with collateral shared by every market: the engines
  keep per-market cash deltas, and the venue checks free collateral across them before an order;
* venue order ids (the EIP-712 digest) and trade ids, ``/data/orders`` and ``/data/trades`` records,
  and trade statuses MATCHED → MINED → CONFIRMED on a timer;
* the heartbeat dead-man switch: once a user sends heartbeats, missing one for
  ``heartbeat_timeout_ms`` cancels all of its orders;
* the market channel (``book``, ``price_change``, ``last_trade_price``, ``tick_size_change``) and the
  user channel (``order``, ``trade``) as JSON text for subscribers;
* the other participants (``emulator.flow``), stepped from ``step(now_ns)``;
* counters of every order request, per claimed address, for tests.

The venue is built in layers, one concern per file, each calling only down: ``emulator.state``
(records, lookups) <- ``emulator.channels`` (feed fan-out) <- ``emulator.accounts`` (collateral,
heartbeats) <- ``emulator.market_data`` (public reads) <- ``emulator.order_entry`` (orders, engine
reports) <- ``Venue`` (set-up, stepping, ops helpers); ``emulator.wire`` holds the JSON shapes.

All state is behind one lock; the REST handlers, WebSocket handlers and the background stepper call
in from their own threads. Subscribers' ``send`` must not block (the server queues frames).
Time comes from the injected ``Clock``; randomness from ``random.Random(seed)``.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from pathlib import Path
from typing import Any

from adapters.polymarket.parse import AssetMap
from core.markets import MarketInfo
from core.messages import Cancel, Command, Place
from core.ports import Clock
from core.units import (
    NS_PER_MS,
    NS_PER_S,
    PX_ONE,
    Outcome,
    Px,
    Qty,
    Side,
    format_px,
    format_qty,
)
from emulator.channels import MarketSub, Sink, UserSub
from emulator.flow import FLOW_MAKER, FLOW_TAKER, SEED, ReplayFlow, SyntheticFlow, flow_order_id
from emulator.order_entry import OrderEntry
from emulator.scenario import (
    MarketConfig,
    Scenario,
)
from emulator.state import (
    ALLOWANCE_MAX,
    END_CURSOR,
    FIRST_CURSOR,
    MarketState,
    OrderRecord,
    PlaceResult,
    VenueError,
    WallClock,
    cancel_command,
)
from emulator.wire import (
    book_hash,
)
from sim.matching import (
    Report,
)
from sim.replay_ws import events_from_messages, infer_asset_map, load_ws_messages
from sim.tape import tape_from_events

__all__ = [
    "ALLOWANCE_MAX",
    "END_CURSOR",
    "FIRST_CURSOR",
    "MarketSub",
    "PlaceResult",
    "Sink",
    "UserSub",
    "Venue",
    "VenueError",
    "WallClock",
    "book_hash",
]


class Venue(OrderEntry):
    """The emulated CLOB behind the REST and WebSocket server (see the module docstring).

    Args:
        scenario: Markets, flow, accounts and faults.
        seed: Seed of the flow and fault randomness, and of every id the venue makes.
        clock: Time source (``WallClock`` live; tests may pass their own).
        base_dir: Directory that relative replay paths are read from.
    """

    def __init__(self, scenario: Scenario, seed: int, clock: Clock, base_dir: Path | None = None) -> None:
        super().__init__(scenario, seed, clock)
        for m in self._markets:
            self._seed_market(m, random.Random(self.rng.getrandbits(64)), base_dir)
        self._flush(self.start_ns)

    # --- setup -------------------------------------------------------------------------------------

    def _seed_market(self, m: MarketState, rng: random.Random, base_dir: Path | None) -> None:
        cfg, ts = m.cfg, self.start_ns
        for levels, is_bid in ((cfg.initial_book.bids, True), (cfg.initial_book.asks, False)):
            for i, (px, qty) in enumerate(levels):
                outcome, own_px = (Outcome.YES, px) if is_bid else (Outcome.NO, PX_ONE - px)
                cid = f"seed-{'b' if is_bid else 'a'}{i}"
                place = Place(
                    market=m.market,
                    client_id=cid,
                    outcome=outcome,
                    side=Side.BUY,
                    px=own_px,
                    qty=qty,
                    post_only=False,
                )
                self._submit(m, SEED, place, ts)
        flow_cfg = cfg.flow if cfg.flow is not None else self.scenario.flow
        if cfg.replay is not None:
            m.flow = _replay_flow(m, cfg, self.seed, ts, base_dir)
        elif flow_cfg.enabled:
            m.flow = SyntheticFlow(flow_cfg, m.market, cfg.fair_px, rng, self.seed, ts)
        if m.flow is not None:
            # The first step posts the initial book, so the market is never empty when serving starts.
            m.flow.step(ts, m.engine, self._submitter(m, ts))

    # --- background --------------------------------------------------------------------------------

    def step(self, now_ns: int | None = None) -> None:
        """Advance the venue to now: expiries, heartbeats, trade statuses, flow, scheduled faults."""
        with self.lock:
            now_ns = self.now_ns() if now_ns is None else now_ns
            for m in self._markets:
                report = m.engine.expire(now_ns)
                if report.execs or report.deltas:
                    self._absorb(m, report, now_ns)
            timeout_ns = self.scenario.heartbeat_timeout_ms * NS_PER_MS
            for user in self._users.values():
                if user.hb_armed and now_ns - user.hb_last_ns > timeout_ns:
                    user.hb_armed = False
                    user.hb_id = ""
                    for rec in list(user.orders.values()):
                        if rec.status == "LIVE":
                            self._submit(rec.market, rec.address, cancel_command(rec), now_ns)
                    self._requests.setdefault(user.address.lower(), Counter())["heartbeat_expired"] += 1
            while self._status_heap and self._status_heap[0][0] <= now_ns:
                _, _, status, t = heapq.heappop(self._status_heap)
                t.status = status
                t.last_update_s = now_ns // NS_PER_S
                self._trade_events(t, now_ns)
            for m in self._markets:
                if m.flow is not None and m.engine.resolved is None:
                    m.flow.step(now_ns, m.engine, self._submitter(m, now_ns))
            elapsed = self.elapsed_ms(now_ns)
            for rule in self.faults.due_drops(elapsed):
                if rule.channel in ("market", "all"):
                    for ms in self._market_subs:
                        ms.sink.drop(rule.abrupt)
                if rule.channel in ("user", "all"):
                    for us in self._user_subs:
                        us.sink.drop(rule.abrupt)
            was = self._frozen_market
            self._frozen_market = self._is_frozen("market", now_ns)
            self._flush(now_ns)
            if was and not self._frozen_market:
                for sub in self._market_subs:
                    self._send_books(sub, sub.assets, now_ns)

    # --- test and ops helpers ----------------------------------------------------------------------

    def take(self, market: str, side: Side, qty: Qty, limit_px: Px | None = None) -> Report:
        """Send one taker order of the flow now (YES side ``side``, FAK at ``limit_px`` or the touch)."""
        with self.lock:
            m = self._market(market)
            now_ns = self.now_ns()
            eng = m.engine
            if limit_px is None:
                best = eng.best_ask(Outcome.YES) if side is Side.BUY else eng.best_bid(Outcome.YES)
                if best is None:
                    raise VenueError(400, "nothing to take")
                limit_px = best
            outcome, px = (Outcome.YES, limit_px) if side is Side.BUY else (Outcome.NO, PX_ONE - limit_px)
            self._take_seq += 1
            cid = flow_order_id(self.seed, "take", self._take_seq)
            report = self._submit(
                m,
                FLOW_TAKER,
                Place(
                    market=m.market,
                    client_id=cid,
                    outcome=outcome,
                    side=Side.BUY,
                    px=px,
                    qty=qty,
                    post_only=False,
                    tif="FAK",
                ),
                now_ns,
            )
            self._flush(now_ns)
            return report

    def status(self) -> dict[str, Any]:
        """Counters, open orders and fills per user, and per-market state (``GET /emulator/status``)."""
        with self.lock:
            now_ns = self.now_ns()
            users: dict[str, dict[str, Any]] = {}
            for key in sorted(set(self._users) | set(self._requests)):
                user = self._users.get(key)
                users[key] = {
                    "address": user.address if user is not None else key,
                    "requests": dict(self._requests.get(key, Counter())),
                    "open_orders": sum(1 for r in user.orders.values() if r.status == "LIVE") if user else 0,
                    "orders": len(user.orders) if user else 0,
                    "fills": user.fills if user else 0,
                    "trades": len(user.trades) if user else 0,
                    "cash_usdc6": self._total_cash(user) if user else 0,
                    "free_cash_usdc6": self._free_cash(user) if user else 0,
                    "heartbeat_armed": user.hb_armed if user else False,
                }
            totals: Counter[str] = Counter()
            for c in self._requests.values():
                totals.update(c)
            return {
                "uptime_ms": (now_ns - self.start_ns) // NS_PER_MS,
                "seed": self.seed,
                "scenario": self.scenario.name,
                "requests": dict(totals),
                "users": users,
                "markets": [
                    {
                        "slug": m.cfg.slug,
                        "market": m.market,
                        "yes_token": m.yes,
                        "no_token": m.no,
                        "tick_size": format_px(m.engine.tick_px),
                        "best_bid": _fmt(m.engine.best_bid(Outcome.YES)),
                        "best_ask": _fmt(m.engine.best_ask(Outcome.YES)),
                        "trades": m.trades,
                        "volume": format_qty(m.volume_qty),
                        "flow_owners": [FLOW_MAKER, FLOW_TAKER, SEED],
                    }
                    for m in self._markets
                ],
                "subscriptions": {"market": len(self._market_subs), "user": len(self._user_subs)},
                "faults": dict(self.faults.counts),
                "frozen": {ch: self._is_frozen(ch, now_ns) for ch in ("market", "user")},
            }


def _fmt(px: Px | None) -> str | None:
    return None if px is None else format_px(px)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise VenueError(400, f"not an integer: {text!r}") from None


def _cancel(rec: OrderRecord) -> Command:
    return Cancel(market=rec.market.market, client_id=rec.id)


def _replay_flow(
    m: MarketState, cfg: MarketConfig, seed: int, start_ns: int, base_dir: Path | None
) -> ReplayFlow:
    assert cfg.replay is not None
    path = Path(cfg.replay.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    msgs = load_ws_messages(path)
    inferred = infer_asset_map(msgs)
    yes = cfg.replay.yes_token or next(iter(inferred.asset_ids()), "")
    found = inferred.get(yes)
    if found is None:
        raise ValueError(f"{cfg.slug}: replay.yes_token {yes!r} is not in {path}")
    recorded = found[0]
    other = [a for a, (mk, _) in inferred.items() if mk == recorded and a != yes]
    entries = {yes: (recorded, Outcome.YES)}
    if other:
        entries[other[0]] = (recorded, Outcome.NO)
    events = [ev for ev in events_from_messages(msgs, AssetMap(entries)) if ev.market == recorded]
    info = MarketInfo(
        market=m.market, yes_token=m.yes, no_token=m.no, tick_px=cfg.tick_px, min_qty=cfg.min_qty
    )
    tape = tape_from_events(info, events)
    return ReplayFlow(
        tape, m.market, seed=seed, start_ns=start_ns, speed=cfg.replay.speed, loop=cfg.replay.loop
    )
