"""The emulated venue: markets, accounts, orders, trades, heartbeats, feeds and counters.

One ``venue.matching.MatchingEngine`` per market does the matching (YES/NO on one book, mint and merge,
taker fees, TIF, post-only). The venue adds what the real CLOB adds around it:

* accounts per address (the API key's signer), with collateral shared by every market: the engines
  keep per-market cash deltas, and the venue checks free collateral across them before an order;
* venue order ids (the EIP-712 digest) and trade ids, ``/data/orders`` and ``/data/trades`` records,
  and trade statuses MATCHED → MINED → CONFIRMED on a timer (or MATCHED → FAILED, balances given back);
* per-signer rate limits (``emulator.ratelimit``) and Data API v2 positions (``emulator.positions``);
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
from collections.abc import Sequence
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
    format_usdc6,
)
from emulator.auth import ApiCreds
from emulator.channels import MarketSub, Sink, UserSub
from emulator.flow import FLOW_MAKER, FLOW_TAKER, SEED, ReplayFlow, SyntheticFlow, flow_order_id
from emulator.gamma import iso_utc
from emulator.order_entry import OrderEntry
from emulator.positions import Fill, basis_from_fills, position_row
from emulator.rewards import RewardPools
from emulator.scenario import (
    MarketConfig,
    Scenario,
)
from emulator.state import (
    ALLOWANCE_MAX,
    END_CURSOR,
    FIRST_CURSOR,
    SIDE_NAME,
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
from sim.replay_ws import events_from_messages, infer_asset_map, load_ws_messages
from sim.tape import tape_from_events
from venue.matching import (
    Report,
)

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
        #: The liquidity-rewards program (``emulator.rewards``): samples each step, listings on request.
        self.rewards = RewardPools(seed, self._markets, self.start_ns)

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
            self.rewards.until(now_ns, self._users)  # (the book as it stood, before this step moves it)
            for m in self._markets:
                report = m.engine.expire(now_ns)
                if report.execs or report.deltas:
                    self._absorb(m, report, now_ns)
            timeout_ns = self.hb_timeout_ms * NS_PER_MS
            for user in self._users.values():
                if user.hb_armed and now_ns - user.hb_last_ns > timeout_ns:
                    # The dead-man switch: every open order of the account is cancelled (CANCELLATION
                    # events on the user channel) and the switch disarms until the next heartbeat.
                    user.hb_armed = False
                    user.hb_id = ""
                    for rec in list(user.live.values()):
                        self._submit(rec.market, rec.address, cancel_command(rec), now_ns)
                    self._requests.setdefault(user.address.lower(), Counter())["heartbeat_expired"] += 1
            while self._status_heap and self._status_heap[0][0] <= now_ns:
                due_ns, _, status, t = heapq.heappop(self._status_heap)
                self._set_trade_status(t, status, due_ns)  # as of when it was due (freezes drop it)
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

    # --- liquidity rewards (emulator.rewards) ------------------------------------------------------

    def order_scoring(self, creds: ApiCreds, order_ids: Sequence[str]) -> dict[str, bool]:
        """``{id: scoring}``: whether each of the account's resting orders scores now."""
        with self.lock:
            user = self._users.get(creds.address.lower())
            live = [user.live[i] for i in order_ids if user is not None and i in user.live]
            markets = {rec.market.market: rec.market for rec in live}
            return self.rewards.scoring(creds.address, order_ids, markets.values())

    def reward_listing(self, what: str, creds: ApiCreds | None = None, day: str = "", cid: str = "") -> Any:
        """A reward listing (``current``, ``market``, ``user``, ``total``, ``user_markets``), samples
        due until now taken first."""
        with self.lock:
            self.rewards.until(self.now_ns(), self._users)
            r = self.rewards
            match what:
                case "current":
                    return r.current()
                case "market":
                    return r.market(cid)
            assert creds is not None
            address = self._user(creds.address).address
            match what:
                case "user":
                    return r.user(address, day)
                case "total":
                    return r.total(address, day)
                case _:
                    return r.user_markets(address, day)

    # --- test and ops helpers ----------------------------------------------------------------------

    def take(
        self, market: str, side: Side, qty: Qty, limit_px: Px | None = None, *, amount_usdc6: int = 0
    ) -> Report:
        """Send one taker order of the flow now (YES side ``side``, FAK at ``limit_px`` or the touch).

        ``amount_usdc6`` (BUY only) makes it a market BUY by pUSD amount, as the venue's FOK/FAK BUYs
        are: it buys what the amount buys up to the limit, each level at its price (a $5 BUY at 0.66
        fills 7.575758 shares); ``qty`` is then ignored.
        """
        with self.lock:
            m = self._market(market)
            now_ns = self.now_ns()
            eng = m.engine
            if limit_px is None:
                best = eng.best_ask(Outcome.YES) if side is Side.BUY else eng.best_bid(Outcome.YES)
                if best is None:
                    raise VenueError(400, "nothing to take")
                limit_px = best
            if amount_usdc6:
                if side is not Side.BUY:
                    raise VenueError(400, "an amount in pUSD is for a BUY; a SELL takes a size in shares")
                qty = self._budget_qty(m, Outcome.YES, limit_px, amount_usdc6)
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

    def configure(
        self,
        *,
        heartbeat_timeout_ms: int | None = None,
        trade_mined_ms: int | None = None,
        trade_confirmed_ms: int | None = None,
        fail_next: int | None = None,
        fail_every_n: int | None = None,
        fail_probability: float | None = None,
    ) -> dict[str, Any]:
        """Change run-time settings (``/emulator/settings``, ``/emulator/fail-trades``); returns them all."""
        with self.lock:
            if heartbeat_timeout_ms is not None:
                self.hb_timeout_ms = heartbeat_timeout_ms
            if trade_mined_ms is not None:
                self.mined_ms = trade_mined_ms
            if trade_confirmed_ms is not None:
                self.confirmed_ms = trade_confirmed_ms
            if fail_next is not None:
                self.fail_next = fail_next
            if fail_every_n is not None:
                self.fail_every_n = fail_every_n
            if fail_probability is not None:
                self.fail_probability = fail_probability
            return {
                "heartbeat_timeout_ms": self.hb_timeout_ms,
                "trade_mined_ms": self.mined_ms,
                "trade_confirmed_ms": self.confirmed_ms,
                "fail_next": self.fail_next,
                "fail_every_n": self.fail_every_n,
                "fail_probability": self.fail_probability,
            }

    def account_orders(self, address: str) -> list[dict[str, Any]]:
        """Every order the venue received from ``address`` (``GET /emulator/orders``), in arrival order.

        Accepted orders with their final (or current) state; signed orders the venue refused follow,
        with ``status`` ``REJECTED`` and the reason.
        """
        with self.lock:
            user = self._users.get(address.lower())
            if user is None:
                return []
            out = []
            for rec in user.orders.values():
                m = rec.market
                out.append(
                    {
                        "id": rec.id,
                        "market": m.market,
                        "asset_id": m.token(rec.outcome),
                        "outcome": m.cfg.outcomes[rec.outcome],
                        "side": SIDE_NAME[rec.side],
                        "price": format_px(rec.px),
                        "original_size": format_qty(rec.orig_qty),
                        "budget_usdc": format_usdc6(rec.budget_usdc6) if rec.budget_usdc6 else None,
                        "size_matched": format_qty(rec.matched_qty),
                        "status": rec.status,
                        "order_type": rec.order_type,
                        "created_at": rec.created_s,
                        "associate_trades": list(rec.trade_ids),
                    }
                )
            return out + [dict(r) for r in user.rejected]

    def account_trades(self, address: str) -> list[dict[str, Any]]:
        """Every trade leg of ``address``'s orders (``GET /emulator/trades``), in match order.

        One row per (trade, our order): trade id, status, role, our order's side, price (in its own
        token), size and the fee it paid (takers only).
        """
        with self.lock:
            user = self._users.get(address.lower())
            if user is None:
                return []
            key = address.lower()
            out = []
            for t, role in user.trades:
                m = t.market
                for leg in t.legs:
                    if role == "TAKER" and leg.taker_owner.lower() == key:
                        oid, outcome, side, px, fee = (
                            leg.taker_client_id,
                            leg.taker_outcome,
                            leg.taker_side,
                            leg.taker_px,
                            leg.taker_fee_usdc6,
                        )
                    elif role == "MAKER" and leg.maker_owner.lower() == key:
                        oid, outcome, side, px, fee = (
                            leg.maker_client_id,
                            leg.maker_outcome,
                            leg.maker_side,
                            leg.maker_px,
                            0,
                        )
                    else:
                        continue
                    out.append(
                        {
                            "trade_id": t.id,
                            "status": t.status,
                            "market": m.market,
                            "asset_id": m.token(outcome),
                            "order_id": oid,
                            "role": role,
                            "side": SIDE_NAME[side],
                            "price": format_px(px),
                            "size": format_qty(leg.qty),
                            "fee_usdc": format_usdc6(fee),
                            "transaction_hash": t.tx_hash,
                            "match_time": t.match_ns // NS_PER_S,
                        }
                    )
            return out

    def positions(self, address: str, condition_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """``address``'s positions with shares held, as Data API v2 rows (``emulator.positions``)."""
        with self.lock:
            user = self._users.get(address.lower())
            if user is None:
                return []
            fills: dict[tuple[str, Outcome], list[Fill]] = {}
            key = address.lower()
            for t, role in user.trades:
                if t.status == "FAILED":
                    continue
                ts_s = t.match_ns // NS_PER_S
                for leg in t.legs:
                    if role == "TAKER" and leg.taker_owner.lower() == key:
                        f = Fill(
                            leg.taker_outcome,
                            leg.taker_side,
                            leg.taker_px,
                            leg.qty,
                            leg.taker_fee_usdc6,
                            ts_s,
                        )
                    elif role == "MAKER" and leg.maker_owner.lower() == key:
                        f = Fill(leg.maker_outcome, leg.maker_side, leg.maker_px, leg.qty, 0, ts_s)
                    else:
                        continue
                    fills.setdefault((t.market.market, f.outcome), []).append(f)
            rows = []
            wanted = set(condition_ids)
            for m in self._markets:
                if wanted and m.market not in wanted:
                    continue
                held = {o: self._shares(user, m, o)[0] for o in (Outcome.YES, Outcome.NO)}
                for o in (Outcome.YES, Outcome.NO):
                    if held[o] <= 0:
                        continue
                    other = Outcome.NO if o is Outcome.YES else Outcome.YES
                    basis = basis_from_fills(self.scenario.account.shares_qty, fills.get((m.market, o), ()))
                    bid, ask = m.engine.best_bid(o), m.engine.best_ask(o)
                    if bid is not None and ask is not None:
                        price = (bid + ask) // 2
                    elif m.last_trade is not None:
                        price = m.last_trade[0] if o is Outcome.YES else PX_ONE - m.last_trade[0]
                    else:
                        price = PX_ONE // 2
                    end_ns = m.start_ns + int(m.cfg.end_in_days * 86_400) * NS_PER_S
                    rows.append(
                        position_row(
                            wallet=user.address,
                            condition_id=m.market,
                            token_id=m.token(o),
                            opposite_token_id=m.token(other),
                            outcome=m.cfg.outcomes[o],
                            opposite_outcome=m.cfg.outcomes[other],
                            outcome_index=int(o),
                            size_qty=held[o],
                            mergeable=held[other] > 0,
                            basis=basis,
                            price_px=price,
                            title=m.cfg.question or m.cfg.slug,
                            slug=m.cfg.slug,
                            event_id=str(int(m.gamma_id) + 100_000),
                            neg_risk=m.cfg.neg_risk,
                            end_date=iso_utc(end_ns)[:10],
                        )
                    )
            return rows

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
                    "heartbeats": user.hb_count if user else 0,
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
                        "version": m.cfg.version,
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
                "rate_limited": self.limits.refused,
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
