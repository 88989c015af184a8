"""The venue's order entry: placing and cancelling orders, the engine reports they produce (trades,
order and trade events, tick changes), and the account's order and trade records.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from core.messages import Accepted, Canceled, Command, Filled, Place, Rejected
from core.units import (
    NS_PER_MS,
    NS_PER_S,
    PX_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Px,
    Qty,
    Side,
    complement_notional_usdc6,
    format_qty,
    format_usdc6,
    notional_usdc6,
)
from emulator.auth import ApiCreds
from emulator.flow import Submit
from emulator.market_data import MarketData
from emulator.orders import (
    OrderError,
    PostOrder,
    SignedOrder,
    domain_of,
    order_digest,
    order_to_px_qty,
    verify_signature,
    wrong_domain_hint,
)
from emulator.scenario import (
    RejectFault,
    fine_tick_px,
)
from emulator.state import (
    KILL_REASONS,
    Account,
    MarketState,
    OrderRecord,
    PlaceResult,
    TradeRecord,
    VenueError,
    cancel_command,
    int_param,
)
from emulator.wire import (
    order_json,
    page,
    participant,
    reject_reply,
    trade_json,
)
from venue.matching import (
    Report,
    Trade,
)

__all__ = ["OrderEntry"]

logger = logging.getLogger("emulator.server")


_TICK_FLIP_LO: Final = 400  # the venue moves 0.01 -> 0.001 outside [0.04, 0.96] (``dynamic_tick``)
_TICK_FLIP_HI: Final = PX_ONE - 400


class OrderEntry(MarketData):
    """Orders in, engine reports absorbed, records and events out (see the module docstring)."""

    def _reject(self, message: str, *, kill: bool) -> PlaceResult:
        sc = self.scenario
        return reject_reply(message, sc.kill_reject_status if kill else sc.invalid_reject_status)

    def place(
        self, creds: ApiCreds, orders: Sequence[PostOrder], rejects: Sequence[RejectFault | None]
    ) -> list[PlaceResult]:
        """Place orders of one request in order; one result per order."""
        with self.lock:
            now_ns = self.now_ns()
            out = [self._place_one(creds, po, rule, now_ns) for po, rule in zip(orders, rejects, strict=True)]
            self._flush(now_ns)
            return out

    def _place_one(
        self, creds: ApiCreds, po: PostOrder, rule: RejectFault | None, now_ns: int
    ) -> PlaceResult:
        o = po.order
        found = self._tokens.get(o.token_id)
        if found is None:
            return self._reject(f"invalid token id {o.token_id}: no such market", kill=False)
        m, outcome = found
        if o.version != self.scenario.order_version:
            return PlaceResult(
                reply={
                    "error": f"order_version_mismatch: the server takes version {self.scenario.order_version}"
                },
                http_status=400,
            )
        if po.owner != creds.api_key:
            return self._reject("the order owner has to be the owner of the API KEY", kill=False)
        domain = domain_of(o.version, neg_risk=m.cfg.neg_risk, protocol=m.cfg.version)
        try:
            order_id = verify_signature(o, domain=domain, owner_address=creds.address)
        except OrderError as exc:
            hint = wrong_domain_hint(o, domain, creds.address) if str(exc) == "invalid signature" else ""
            if not hint:
                return self._reject(str(exc), kill=False)
            # Signed for the other protocol (or exchange): the venue's answer is a plain "invalid
            # signature"; the emulator's record and log say which domain it was and which it needed.
            logger.info("emulator: order refused, invalid signature: %s", hint)
            user = self._user(creds.address)
            user.rejected.append(
                {
                    "id": order_digest(o, domain),
                    "market": m.market,
                    "status": "REJECTED",
                    "reason": f"invalid signature: {hint}",
                    "ts_ms": now_ns // NS_PER_MS,
                }
            )
            return self._reject(str(exc), kill=False)
        user = self._user(creds.address)
        try:
            budget = 0
            if po.order_type in ("FOK", "FAK"):
                px, qty, budget = self._market_order_px_qty(m, outcome, o)
            else:
                px, qty = order_to_px_qty(o)
        except OrderError as exc:
            return self._refuse(user, order_id, m, str(exc), kill=False, now_ns=now_ns)
        if rule is not None:
            return self._refuse(user, order_id, m, rule.message, kill=rule.status == 200, now_ns=now_ns)
        if order_id in self._orders:
            return self._reject(f"order {order_id} is invalid. Duplicated.", kill=False)
        now_s = now_ns // NS_PER_S
        expire_ns = 0
        if po.order_type == "GTD":
            if o.expiration_s < now_s + self.scenario.gtd_min_lead_s:
                return self._refuse(user, order_id, m, "invalid expiration", kill=False, now_ns=now_ns)
            expire_ns = o.expiration_s * NS_PER_S
        place = Place(
            market=m.market,
            client_id=order_id,
            outcome=outcome,
            side=o.side,
            px=px,
            qty=qty,
            post_only=po.post_only,
            tif=po.order_type,
            expire_ns=expire_ns,
        )
        reason = self._balance_reason(m, user, place)
        if reason:
            return self._refuse(user, order_id, m, reason, kill=False, now_ns=now_ns)
        rec = OrderRecord(order_id, creds, o.maker, m, place, po, now_s)
        rec.budget_usdc6 = budget
        self._orders[order_id] = rec
        user.orders[order_id] = rec
        user.live[order_id] = rec
        report = self._submit(m, user.address, place, now_ns)
        for _, ev in report.execs:
            if isinstance(ev, Rejected) and ev.client_id == order_id:
                del self._orders[order_id]
                del user.orders[order_id]
                user.live.pop(order_id, None)
                return self._refuse(
                    user, order_id, m, ev.reason, kill=ev.reason in KILL_REASONS, now_ns=now_ns
                )
        fills, rec.taker_fills = rec.taker_fills, []
        shares = sum(q for _, q in fills)
        usdc = sum(notional_usdc6(p, q) for p, q in fills)
        trade_ids = [t for t in rec.trade_ids if self._trade_taker(t) == order_id]
        hashes = [self._trades_by_id[t].tx_hash for t in trade_ids]
        making, taking = (usdc, shares) if o.side is Side.BUY else (shares, usdc)
        return PlaceResult(
            reply={
                "success": True,
                "errorMsg": "",
                "orderID": order_id,
                "status": "matched" if shares else "live",
                "makingAmount": (format_usdc6(making) if o.side is Side.BUY else format_qty(making))
                if fills
                else "",
                "takingAmount": (format_qty(taking) if o.side is Side.BUY else format_usdc6(taking))
                if fills
                else "",
                "transactionsHashes": hashes,
                "tradeIDs": trade_ids,
            }
        )

    def _refuse(
        self, user: Account, order_id: str, m: MarketState, reason: str, *, kill: bool, now_ns: int
    ) -> PlaceResult:
        # A signed order of ``user`` that the venue refused: kept for ``/emulator/orders``.
        user.rejected.append(
            {
                "id": order_id,
                "market": m.market,
                "status": "REJECTED",
                "reason": reason,
                "ts_ms": now_ns // NS_PER_MS,
            }
        )
        return self._reject(reason, kill=kill)

    def _market_order_px_qty(self, m: MarketState, outcome: Outcome, o: SignedOrder) -> tuple[Px, Qty, int]:
        """Limit, size and budget of a FOK/FAK order, whose amounts are the venue's market-order amounts.

        A BUY spends ``makerAmount`` pUSD (its budget) at prices up to ``makerAmount / takerAmount``
        (rounded down to the tick): the size is what the budget buys from the book, each level at
        its own price, the last one rounded to the nearest 1e-6 share (a $5 BUY at 0.66 buys
        7.575758); a budget the book cannot spend counts at the limit, so FOK kills and FAK cancels
        it. A SELL sells ``makerAmount`` shares at prices down to ``takerAmount / makerAmount``
        (rounded up to the tick). Neither needs whole 0.01 shares.
        """
        tick = m.engine.tick_px
        if o.maker_amount <= 0 or o.taker_amount <= 0:
            raise OrderError("invalid order: amounts must be positive")
        if o.side is Side.BUY:
            limit = o.maker_amount * PX_ONE // o.taker_amount // tick * tick
            if not tick <= limit <= PX_ONE - tick:
                raise OrderError("invalid order price: outside (0, 1)")
            return limit, self._budget_qty(m, outcome, limit, o.maker_amount), o.maker_amount
        limit = -(-o.taker_amount * PX_ONE // o.maker_amount)
        limit = -(-limit // tick) * tick
        if not tick <= limit <= PX_ONE - tick:
            raise OrderError("invalid order price: outside (0, 1)")
        return limit, o.maker_amount, 0

    def _budget_qty(self, m: MarketState, outcome: Outcome, limit_px: Px, budget_usdc6: int) -> Qty:
        # Shares ``budget_usdc6`` buys on ``outcome``'s asks up to ``limit_px`` (see _market_order_px_qty).
        left = budget_usdc6 * USDC10_PER_USDC6  # exact, in 1e-10 USDC (px * qty)
        qty = 0
        for px, level_qty in m.engine.depth(outcome, Side.SELL):
            if px > limit_px or not left:
                break
            if px * level_qty <= left:
                qty += level_qty
                left -= px * level_qty
            else:
                qty += (2 * left + px) // (2 * px)
                left = 0
        return qty + left // limit_px

    def _trade_taker(self, trade_id: str) -> str:
        return self._trades_by_id[trade_id].legs[0].taker_client_id

    def _own_order(self, user: Account | None, order_id: str) -> OrderRecord | None:
        return user.orders.get(order_id) if user is not None else None

    def cancel(self, creds: ApiCreds, order_ids: Sequence[str]) -> dict[str, Any]:
        """Cancel orders by id: ``{"canceled": [...], "not_canceled": {id: reason}}``."""
        with self.lock:
            now_ns = self.now_ns()
            user = self._users.get(creds.address.lower())
            canceled: list[str] = []
            not_canceled: dict[str, str] = {}
            for oid in order_ids:
                rec = self._own_order(user, oid)
                if rec is None:
                    not_canceled[oid] = "order not found"
                elif rec.status != "LIVE":
                    not_canceled[oid] = "already canceled or matched"
                else:
                    self._submit(rec.market, rec.address, cancel_command(rec), now_ns)
                    canceled.append(oid)
            self._flush(now_ns)
            return {"canceled": canceled, "not_canceled": not_canceled}

    def _cancel_where(self, creds: ApiCreds, market: str = "", asset_id: str = "") -> dict[str, Any]:
        with self.lock:
            now_ns = self.now_ns()
            user = self._users.get(creds.address.lower())
            canceled: list[str] = []
            for rec in list(user.live.values()) if user is not None else ():
                if market and rec.market.market != market:
                    continue
                if asset_id and rec.market.token(rec.outcome) != asset_id:
                    continue
                self._submit(rec.market, rec.address, cancel_command(rec), now_ns)
                canceled.append(rec.id)
            self._flush(now_ns)
            return {"canceled": canceled, "not_canceled": {}}

    def count_open(self, creds: ApiCreds, market: str = "", asset_id: str = "") -> int:
        """How many open orders a cancel-all (or cancel-market-orders) of ``creds`` would cancel."""
        with self.lock:
            user = self._users.get(creds.address.lower())
            return sum(
                1
                for rec in (user.live.values() if user is not None else ())
                if (not market or rec.market.market == market)
                and (not asset_id or rec.market.token(rec.outcome) == asset_id)
            )

    def cancel_all(self, creds: ApiCreds) -> dict[str, Any]:
        """Cancel every open order of the key's account."""
        return self._cancel_where(creds)

    def cancel_market(self, creds: ApiCreds, market: str, asset_id: str) -> dict[str, Any]:
        """Cancel the account's open orders in ``market`` and/or on ``asset_id`` ("" = any)."""
        return self._cancel_where(creds, market, asset_id)

    def open_orders(self, creds: ApiCreds, query: Mapping[str, str], cursor: str) -> dict[str, Any]:
        """``GET /data/orders``: one page of the account's open orders (``id``/``market``/``asset_id``)."""
        with self.lock:
            user = self._users.get(creds.address.lower())
            items = []
            for rec in user.live.values() if user is not None else ():
                if query.get("id") and rec.id != query["id"]:
                    continue
                if query.get("market") and rec.market.market != query["market"]:
                    continue
                if query.get("asset_id") and rec.market.token(rec.outcome) != query["asset_id"]:
                    continue
                items.append(order_json(rec))
            return page(items, cursor, self.scenario.page_size)

    def order(self, creds: ApiCreds, order_id: str) -> dict[str, Any]:
        """``GET /data/order/<id>``: one of the account's orders, whatever its status."""
        with self.lock:
            rec = self._own_order(self._users.get(creds.address.lower()), order_id)
            if rec is None:
                raise VenueError(404, "order not found")
            return order_json(rec)

    def trades(self, creds: ApiCreds, query: Mapping[str, str], cursor: str) -> dict[str, Any]:
        """``GET /data/trades``: one page of the account's trades, newest last."""
        with self.lock:
            user = self._users.get(creds.address.lower())
            items = []
            for t, role in user.trades if user is not None else ():
                js = trade_json(t, user.address, role, self._party_key)  # type: ignore[union-attr]
                if query.get("id") and t.id != query["id"]:
                    continue
                if query.get("market") and t.market.market != query["market"]:
                    continue
                if query.get("asset_id") and query["asset_id"] not in (
                    js["asset_id"],
                    *(mo["asset_id"] for mo in js["maker_orders"]),
                ):
                    continue
                if (
                    query.get("maker_address")
                    and query["maker_address"].lower() != js["maker_address"].lower()
                ):
                    continue
                match_s = t.match_ns // NS_PER_S
                if query.get("before") and match_s >= int_param(query["before"]):
                    continue
                if query.get("after") and match_s <= int_param(query["after"]):
                    continue
                items.append(js)
            return page(items, cursor, self.scenario.page_size)

    # --- engine reports ----------------------------------------------------------------------------

    def _submit(self, m: MarketState, owner: str, cmd: Command, now_ns: int) -> Report:
        report = m.engine.submit(owner, cmd, now_ns)
        self._absorb(m, report, now_ns)
        return report

    def _submitter(self, m: MarketState, now_ns: int) -> Submit:
        def submit(owner: str, cmd: Command) -> Report:
            return self._submit(m, owner, cmd, now_ns)

        return submit

    def _absorb(self, m: MarketState, report: Report, now_ns: int) -> None:
        for d in report.deltas:
            m.pending_levels[(d.outcome, d.side, d.px)] = d.qty
        by_engine_tid: dict[str, TradeRecord] = {}
        if report.trades:
            t = self._new_trade(m, report.trades, now_ns)
            for leg in report.trades:
                by_engine_tid[leg.trade_id] = t
            # Each match prints on both tokens; both prints carry the trade's transaction hash (as the
            # user channel's ``transaction_hash``), unique per trade, so a reader counts the match once.
            m.pending_prints.extend(msgspec.structs.replace(p, trade_id=t.tx_hash) for p in report.prints)
        if report.prints:
            m.pending_books = True
            last = report.prints[-2] if report.prints[-1].outcome is Outcome.NO else report.prints[-1]
            m.last_trade = (last.px, last.aggressor)
        for owner, ev in report.execs:
            user = self._users.get(owner.lower())
            if user is None:
                continue
            rec = user.orders.get(ev.client_id)
            if rec is None:
                continue
            match ev:
                case Accepted():
                    self._order_event(rec, "PLACEMENT", now_ns)
                case Filled():
                    rec.matched_qty += ev.qty
                    user.fills += 1
                    venue_trade = by_engine_tid.get(ev.trade_id)
                    if venue_trade is not None and venue_trade.id not in rec.trade_ids:
                        rec.trade_ids.append(venue_trade.id)
                    if ev.liquidity == "taker":
                        rec.taker_fills.append((ev.px, ev.qty))
                    if not ev.leaves_qty:
                        rec.status = "MATCHED"
                        user.live.pop(rec.id, None)
                    self._order_event(rec, "UPDATE", now_ns)
                case Canceled():
                    rec.status = "CANCELED"
                    user.live.pop(rec.id, None)
                    self._order_event(rec, "CANCELLATION", now_ns)
                case Rejected():
                    pass
        if report.trades:
            self._trade_events(by_engine_tid[report.trades[0].trade_id], now_ns)
        fine = fine_tick_px(m.cfg)
        if report.prints and fine < m.cfg.tick_px == m.engine.tick_px and m.last_trade is not None:
            px = m.last_trade[0]
            if px < _TICK_FLIP_LO or px > _TICK_FLIP_HI:
                self._change_tick(m, fine)

    def _change_tick(self, m: MarketState, tick_px: Px) -> None:
        old = m.engine.tick_px
        if tick_px == old:
            return
        m.engine.set_tick(tick_px)
        m.pending_ticks.append((old, tick_px))
        m.pending_books = True

    def set_tick(self, market: str, tick_px: Px) -> None:
        """Change a market's tick now (``tick_size_change`` then a fresh ``book`` on the feed)."""
        with self.lock:
            m = self._market(market)
            self._change_tick(m, tick_px)
            self._flush(self.now_ns())

    def _new_trade(self, m: MarketState, legs: tuple[Trade, ...], now_ns: int) -> TradeRecord:
        self._trade_seq += 1
        digest = hashlib.sha256(f"{self.seed}:trade:{self._trade_seq}".encode()).digest()
        t = TradeRecord(
            str(uuid.UUID(bytes=digest[:16], version=4)),
            m,
            legs,
            now_ns,
            "0x" + hashlib.sha256(b"tx" + digest).hexdigest(),
        )
        self._trades_by_id[t.id] = t
        m.trades += 1
        m.volume_qty += t.qty
        parties: list[tuple[str, str]] = []
        if t.taker_owner.lower() in self._users:
            parties.append((t.taker_owner, "TAKER"))
        for leg in legs:
            if leg.maker_owner.lower() in self._users and (leg.maker_owner, "MAKER") not in parties:
                parties.append((leg.maker_owner, "MAKER"))
        for owner, role in parties:
            self._users[owner.lower()].trades.append((t, role))
        if parties:
            t.will_fail = self._next_trade_fails()
        heapq.heappush(
            self._status_heap, (now_ns + self.mined_ms * NS_PER_MS, self._trade_seq * 2, "MINED", t)
        )
        heapq.heappush(
            self._status_heap,
            (now_ns + self.confirmed_ms * NS_PER_MS, self._trade_seq * 2 + 1, "CONFIRMED", t),
        )
        return t

    def _next_trade_fails(self) -> bool:
        # Whether the next trade with one of our accounts in it ends FAILED (scenario or run-time rule).
        self._account_trades += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        if self.fail_every_n and self._account_trades % self.fail_every_n == 0:
            return True
        return bool(self.fail_probability) and self._fail_rng.random() < self.fail_probability

    def fail_trades(self, trade_ids: Sequence[str]) -> dict[str, list[str]]:
        """Make these trades end FAILED; only a trade still ``MATCHED`` can (the others are refused)."""
        with self.lock:
            marked: list[str] = []
            refused: list[str] = []
            for tid in trade_ids:
                t = self._trades_by_id.get(tid)
                if t is None or t.status != "MATCHED":
                    refused.append(tid)
                else:
                    t.will_fail = True
                    marked.append(tid)
            return {"marked": marked, "refused": refused}

    def _set_trade_status(self, t: TradeRecord, status: str, now_ns: int) -> None:
        # One step of a trade's life cycle: MINED, CONFIRMED, or FAILED for a trade chosen to fail.
        if t.status == "FAILED":
            return
        if t.will_fail:
            self._void_trade(t)
            status = "FAILED"
        t.status = status
        t.last_update_s = now_ns // NS_PER_S
        self._trade_events(t, now_ns)

    def _void_trade(self, t: TradeRecord) -> None:
        # A FAILED trade did not settle: give each of our accounts in it back what each leg moved.
        # The orders stay as matched (the venue does not put them back on the book).
        m = t.market
        for leg in t.legs:
            m_cash = notional_usdc6(leg.maker_px, leg.qty)
            taker = self._users.get(leg.taker_owner.lower())
            if taker is not None:
                t_cash = (
                    m_cash if leg.kind == "transfer" else complement_notional_usdc6(leg.maker_px, leg.qty)
                )
                taker.adj_cash_usdc6 += leg.taker_side * t_cash + leg.taker_fee_usdc6
                key = (m.market, leg.taker_outcome)
                taker.adj_qty[key] = taker.adj_qty.get(key, 0) - leg.taker_side * leg.qty
            maker = self._users.get(leg.maker_owner.lower())
            if maker is not None:
                maker.adj_cash_usdc6 += leg.maker_side * m_cash
                key = (m.market, leg.maker_outcome)
                maker.adj_qty[key] = maker.adj_qty.get(key, 0) - leg.maker_side * leg.qty

    def _party_key(self, owner: str, order_id: str) -> tuple[str, str]:
        rec = self._orders.get(order_id)
        if rec is not None:
            return rec.api_key, rec.maker_address
        return participant(owner)

    def _order_event(self, rec: OrderRecord, kind: str, now_ns: int) -> None:
        ev = order_json(rec)
        ev.update(
            {
                "event_type": "order",
                "type": kind,
                "order_owner": rec.api_key,
                "timestamp": str(now_ns // NS_PER_MS),
            }
        )
        ev["created_at"] = str(rec.created_s)
        self._user_out.append((rec.address, rec.market.market, ev, now_ns))

    def _trade_events(self, t: TradeRecord, now_ns: int) -> None:
        taker = t.taker_owner.lower()
        makers = {x.maker_owner.lower() for x in t.legs}
        for user_key in {taker} | makers:
            user = self._users.get(user_key)
            if user is None:
                continue
            roles = ("TAKER",) * (user_key == taker) + ("MAKER",) * (user_key in makers)
            for role in roles:
                ev = trade_json(t, user.address, role, self._party_key)
                ev.update({"event_type": "trade", "type": "TRADE", "timestamp": str(now_ns // NS_PER_MS)})
                self._user_out.append((user.address, t.market.market, ev, now_ns))
