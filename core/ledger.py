"""OrderLedger: our orders and positions as the venue knows them, reconciled with it; sans-I/O.

Pure and deterministic: no I/O, clock or randomness; time comes in as ``ts_ns``. The venue is the
truth: every method takes something the venue said (a reply, a user-channel message, a REST
listing) and returns ``Effect``s for the shell to carry out. The shell (the order gateway) does the
I/O, batching, retries and timers; it never decides an order's fate itself.

What the ledger owns, per market: our orders (client id <-> venue id, state, matched size, the
trades that filled them) and our position (``core.inventory.Inventory``: shares, cash, cost basis),
built from the fills it applied on top of what the venue listed at start.

The rules:

* **A fill counts once.** A trade leg is applied once per (trade id, venue order id), whichever way
  it arrives (user channel, a backfill after a gap, a restart). The trade life cycle is the venue's:
  the first status that is not ``FAILED`` (``MATCHED``, ``MINED``, ``CONFIRMED``, ``RETRYING``)
  applies the fill, later ones only move its settlement; ``FAILED`` voids it (the position is
  restored and the market is told by a reversing ``Filled``), and a ``FAILED`` seen first means a
  late ``MATCHED`` of that trade never applies.
* **Nothing is guessed.** An order we believed open that the venue no longer lists is resolved from
  the venue's trades, which the shell backfills first (``reconcile``): filled if its trades add up to
  its size, otherwise cancelled with whatever fills its trades show. A post whose outcome is unknown
  stays ``in_doubt`` until a listing or a trade shows it, or the listing proves it never arrived.
  A ``delayed`` post (the venue's matching delay) stays submitted until its fate is shown.
* **What the venue lists that we do not know** is adopted (kept, with its queue place, and told to
  its market as ``Adopted``) or cancelled, per ``on_start``, at the first reconcile; later, and in any
  market we do not trade, it is cancelled.
* **A lost heartbeat** means the venue cancelled every order of ours: they are marked gone and each
  market requotes from scratch.
* **Positions** listed by the venue are compared with ours (``positions``); a difference beyond
  ``drift_tolerance_qty`` that persists over two listings with no trade of that market still
  settling pulls the market's quotes until a listing agrees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from core.inventory import Inventory, apply_fill
from core.markets import MarketInfo
from core.messages import Accepted, Adopted, Canceled, ExecEvent, Filled, Liquidity, Place, Rejected
from core.units import PX_ONE, Outcome, Px, Qty, Side, notional_usdc6, taker_fee_usdc6

__all__ = [
    "Audit",
    "CancelVenueOrders",
    "Effect",
    "LedgerOrder",
    "OrderLedger",
    "PullMarket",
    "QueryOrders",
    "Report",
    "ResendOrder",
    "ResumeMarket",
    "TradeLeg",
    "VenueOrderView",
    "VenuePosition",
    "VenueTrade",
]

# --- what the venue says --------------------------------------------------------------------------


class TradeLeg(msgspec.Struct, frozen=True, kw_only=True):
    """One order's part of a venue trade, in that order's own token, side and price."""

    order_id: str
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    liquidity: Liquidity
    fee_rate_bps: int = 0


class VenueTrade(msgspec.Struct, frozen=True, kw_only=True):
    """A venue trade (user channel or ``/data/trades``): its status and the legs of our orders in it."""

    trade_id: str
    market: str
    status: str
    ts_ns: int
    legs: tuple[TradeLeg, ...]


class VenueOrderView(msgspec.Struct, frozen=True, kw_only=True):
    """One open order as the venue lists it (``matched_qty`` -1: the venue's value was unusable)."""

    order_id: str
    market: str
    outcome: Outcome
    side: Side
    px: Px
    original_qty: Qty
    matched_qty: Qty


class VenuePosition(msgspec.Struct, frozen=True, kw_only=True):
    """Shares of one token the venue says we hold, and their average cost (0 when unknown)."""

    market: str
    outcome: Outcome
    qty: Qty
    avg_px: Px = 0


# --- what the shell must do -----------------------------------------------------------------------


class Report(msgspec.Struct, frozen=True, tag="report"):
    """Tell the market's session ``event``."""

    market: str
    event: ExecEvent


class CancelVenueOrders(msgspec.Struct, frozen=True, tag="cancel"):
    """Cancel these venue order ids (orders we do not account for, or must not keep)."""

    order_ids: tuple[str, ...]
    reason: str


class QueryOrders(msgspec.Struct, frozen=True, tag="query"):
    """Ask the venue for these orders by id (``GET /data/order``) and tell ``order_status`` each answer."""

    order_ids: tuple[str, ...]


class ResendOrder(msgspec.Struct, frozen=True, tag="resend"):
    """Post this order again: the venue never got it (the same signed order, so never twice)."""

    client_id: str


class PullMarket(msgspec.Struct, frozen=True, tag="pull"):
    """Stop quoting ``market`` (and cancel its orders) until a ``ResumeMarket``."""

    market: str
    reason: str


class ResumeMarket(msgspec.Struct, frozen=True, tag="resume"):
    """``market`` may quote again."""

    market: str


class Audit(msgspec.Struct, frozen=True, tag="audit"):
    """A record for the audit log (``kind`` names it; ``detail`` is encodable)."""

    kind: str
    market: str
    detail: dict[str, object]


Effect = Report | CancelVenueOrders | QueryOrders | ResendOrder | PullMarket | ResumeMarket | Audit

OnStart = Literal["adopt", "cancel"]
OrderState = Literal["pending", "in_doubt", "delayed", "live", "canceling", "done"]
_SETTLING = frozenset({"MATCHED", "RETRYING"})


class LedgerOrder:
    """One order of ours as the ledger knows it (mutable; owned by the ledger)."""

    __slots__ = (
        "accepted_ns",
        "adopted",
        "cancel_wanted",
        "client_id",
        "filled_qty",
        "final_told",
        "order_id",
        "place",
        "seen",
        "state",
    )

    def __init__(self, place: Place, order_id: str, *, adopted: bool = False) -> None:
        self.place = place
        self.client_id = place.client_id
        self.order_id = order_id
        self.state: OrderState = "pending"
        self.filled_qty: Qty = 0
        self.cancel_wanted = False
        self.final_told = False
        self.seen = False  # the venue has shown it (a reply, the user channel or a listing)
        self.accepted_ns = 0
        self.adopted = adopted

    @property
    def leaves_qty(self) -> Qty:
        """What may still fill."""
        return max(self.place.qty - self.filled_qty, 0)

    @property
    def open(self) -> bool:
        """Whether the order may still rest or fill at the venue."""
        return self.state != "done"


class _Trade:
    __slots__ = ("applied", "failed", "market", "status")

    def __init__(self, market: str) -> None:
        self.market = market
        self.status = ""
        self.failed = False
        # venue order id -> (qty, px in that order's token, fee) applied for it
        self.applied: dict[str, tuple[Qty, Px, int]] = {}


class OrderLedger:
    """Our orders and positions, reconciled with the venue (see the module docstring)."""

    def __init__(
        self,
        markets: Iterable[MarketInfo],
        *,
        on_start: OnStart = "adopt",
        reconcile_grace_ns: int = 2_000_000_000,
        drift_tolerance_qty: Qty = 0,
    ) -> None:
        """Create an empty ledger for the markets we trade (more with ``add_market``)."""
        self.markets: dict[str, MarketInfo] = {m.market: m for m in markets}
        self.on_start: OnStart = on_start
        self.grace_ns = reconcile_grace_ns
        self.drift_tolerance_qty = drift_tolerance_qty
        self.by_client: dict[str, LedgerOrder] = {}
        self.by_venue: dict[str, LedgerOrder] = {}
        self.inventory: dict[str, Inventory] = {m: Inventory() for m in self.markets}
        self.trades: dict[str, _Trade] = {}
        #: Venue time of the newest trade applied: backfills ask for trades from here on.
        self.trade_cursor_ns = 0
        self.started = False  # the first reconcile (adopt or cancel leftovers) has run
        self.pulled: dict[str, str] = {}  # market -> why its quotes are pulled (drift)
        self._drift_seen: set[str] = set()  # markets whose last listing disagreed
        self._adopted = 0

    # --- markets and queries ------------------------------------------------------------------------

    def add_market(self, info: MarketInfo) -> None:
        """Start trading ``info.market``."""
        self.markets[info.market] = info
        self.inventory.setdefault(info.market, Inventory())

    def position(self, market: str) -> Inventory:
        """Our position in ``market`` (from the venue at start plus every fill applied since)."""
        return self.inventory.get(market, Inventory())

    def open_orders(self, market: str | None = None) -> list[LedgerOrder]:
        """Our orders that may still rest or fill, in ``market`` or everywhere."""
        return [o for o in self.by_client.values() if o.open and (market is None or o.place.market == market)]

    def order(self, client_id: str) -> LedgerOrder | None:
        """The order with our ``client_id``, if we know it."""
        return self.by_client.get(client_id)

    def venue_order(self, order_id: str) -> LedgerOrder | None:
        """The order with venue id ``order_id``, if it is ours."""
        return self.by_venue.get(order_id)

    # --- our side ----------------------------------------------------------------------------------

    def submitted(self, place: Place, order_id: str) -> LedgerOrder:
        """``place`` is signed and about to be posted; ``order_id`` is the id the venue will give it."""
        if place.client_id in self.by_client:
            raise ValueError(f"duplicate client id {place.client_id}")
        o = LedgerOrder(place, order_id)
        self.by_client[place.client_id] = o
        if order_id:
            self.by_venue[order_id] = o
        return o

    def unsent(self, client_id: str, reason: str, ts_ns: int) -> list[Effect]:
        """An order that was never posted (cancelled before sending, or refused): it is finished."""
        o = self.by_client.get(client_id)
        if o is None or not o.open or o.state != "pending":
            return []
        return self._finish(o, reason, ts_ns)

    def cancel_requested(self, client_id: str) -> LedgerOrder | None:
        """We asked to cancel ``client_id``; returns the order if a cancel must be sent."""
        o = self.by_client.get(client_id)
        if o is None or not o.open:
            return None
        o.cancel_wanted = True
        if o.state in ("live", "delayed"):
            o.state = "canceling"
        return o

    # --- replies to our requests -------------------------------------------------------------------

    def post_accepted(self, client_id: str, order_id: str, status: str, ts_ns: int) -> list[Effect]:
        """The venue took the order: ``status`` is ``live``, ``matched``, ``delayed`` or ``unmatched``."""
        o = self.by_client.get(client_id)
        if o is None or not o.open:
            return []
        if order_id and order_id != o.order_id:
            self.by_venue.pop(o.order_id, None)
            o.order_id = order_id
            self.by_venue[order_id] = o
        if status.lower() == "delayed":
            o.seen = True
            o.state = "delayed"
            return [Audit("delayed", o.place.market, {"client_id": client_id, "order_id": o.order_id})]
        return self._mark_live(o, ts_ns)

    def post_rejected(self, client_id: str, reason: str, ts_ns: int) -> list[Effect]:
        """The venue refused the order: nothing rests."""
        o = self.by_client.get(client_id)
        if o is None or not o.open:
            return []
        return self._finish(o, reason, ts_ns, rejected=True)

    def post_unknown(self, client_id: str) -> None:
        """No usable reply: the order may or may not be at the venue until a listing or trade shows it."""
        o = self.by_client.get(client_id)
        if o is not None and o.state == "pending":
            o.state = "in_doubt"

    def canceled(self, order_id: str, reason: str, ts_ns: int) -> list[Effect]:
        """The venue cancelled ``order_id`` (a cancel reply or a user-channel ``CANCELLATION``)."""
        o = self.by_venue.get(order_id)
        if o is None or not o.open:
            return []
        o.seen = True
        return self._finish(o, reason, ts_ns)

    def order_update(self, order_id: str, kind: str, ts_ns: int) -> list[Effect]:
        """A user-channel ``order`` message (``PLACEMENT``/``UPDATE``/``CANCELLATION``) for ``order_id``."""
        o = self.by_venue.get(order_id)
        if o is None or not o.open:
            return []
        if kind.upper() == "CANCELLATION":
            return self.canceled(order_id, "canceled", ts_ns)
        if o.state in ("pending", "in_doubt", "delayed"):
            return self._mark_live(o, ts_ns)
        o.seen = True
        return []

    def heartbeat_lost(self, ts_ns: int) -> list[Effect]:
        """The venue's dead-man switch fired: every order of ours is gone; markets requote from scratch."""
        out: list[Effect] = []
        for o in list(self.by_client.values()):
            if o.open and o.state != "pending":
                out += self._finish(o, "heartbeat expired: the venue cancelled every order", ts_ns)
        out.append(Audit("heartbeat_lost", "", {"orders_gone": sum(1 for e in out if isinstance(e, Report))}))
        return out

    # --- trades ------------------------------------------------------------------------------------

    def trade(self, t: VenueTrade, ts_ns: int) -> list[Effect]:
        """A venue trade from the user channel or a backfill; each leg of ours applies exactly once."""
        rec = self.trades.get(t.trade_id)
        if rec is None:
            rec = self.trades[t.trade_id] = _Trade(t.market)
        status = t.status.upper()
        out: list[Effect] = []
        if status == "FAILED":
            if not rec.failed:
                rec.failed = True
                rec.status = status
                # Every leg of ours this trade applied is void, whether or not this message lists it.
                for order_id in list(rec.applied):
                    o = self.by_venue.get(order_id)
                    if o is not None:
                        out += self._void_applied(rec, t.trade_id, o, ts_ns)
            return out
        if rec.failed:
            return out  # a late MATCHED of a trade the venue already reported FAILED
        if rec.status != status:
            rec.status = status
            if rec.applied and status in ("MINED", "CONFIRMED"):
                out.append(Audit("trade_status", t.market, {"trade_id": t.trade_id, "status": status}))
        for leg in t.legs:
            o = self.by_venue.get(leg.order_id)
            if o is None or leg.order_id in rec.applied:
                continue
            out += self._apply_leg(rec, t.trade_id, o, leg, ts_ns)
        self.trade_cursor_ns = max(self.trade_cursor_ns, t.ts_ns)
        return out

    def pre_start_trades(self, trades: Iterable[VenueTrade]) -> None:
        """Trades from before this process: the positions listed at start already hold them."""
        for t in trades:
            rec = self.trades.setdefault(t.trade_id, _Trade(t.market))
            rec.status = t.status.upper()
            rec.failed = rec.status == "FAILED"
            for leg in t.legs:
                rec.applied.setdefault(leg.order_id, (0, leg.px, 0))
            self.trade_cursor_ns = max(self.trade_cursor_ns, t.ts_ns)

    def _apply_leg(
        self, rec: _Trade, trade_id: str, o: LedgerOrder, leg: TradeLeg, ts_ns: int
    ) -> list[Effect]:
        out: list[Effect] = []
        o.seen = True
        if o.state in ("pending", "in_doubt", "delayed"):
            out += self._mark_live(o, ts_ns)
        p = o.place
        # A taker may be matched against the complementary token: the leg then reports the other
        # token's price. Our fill is in our order's own token.
        px = leg.px if leg.outcome is p.outcome else PX_ONE - leg.px
        qty = leg.qty  # the venue's figure, whatever we thought was left
        fee = taker_fee_usdc6(px, qty, leg.fee_rate_bps * 100) if leg.liquidity == "taker" else 0
        rec.applied[leg.order_id] = (qty, px, fee)
        o.filled_qty += qty
        self._book_fill(p.market, p.outcome, p.side, px, qty, fee)
        ev = Filled(
            market=p.market,
            client_id=p.client_id,
            ts_ns=ts_ns,
            outcome=p.outcome,
            side=p.side,
            px=px,
            qty=qty,
            fee_usdc6=fee,
            liquidity=leg.liquidity,
            trade_id=trade_id,
            leaves_qty=o.leaves_qty,
        )
        out.append(Report(p.market, ev))
        if o.leaves_qty == 0 and o.open:
            o.state = "done"
            o.final_told = True  # the last fill is the terminal report
        return out

    def _void_applied(self, rec: _Trade, trade_id: str, o: LedgerOrder, ts_ns: int) -> list[Effect]:
        applied = rec.applied.pop(o.order_id, None)
        if applied is None:
            return []
        qty, px, fee = applied
        p = o.place
        o.filled_qty -= qty
        # The reversal undoes the fill exactly: the opposite side at the fill's own price, fee back.
        reverse = Side.SELL if p.side is Side.BUY else Side.BUY
        self._book_fill(p.market, p.outcome, reverse, px, qty, -fee)
        ev = Filled(
            market=p.market,
            client_id=p.client_id,
            ts_ns=ts_ns,
            outcome=p.outcome,
            side=reverse,
            px=px,
            qty=qty,
            fee_usdc6=-fee,
            liquidity="maker",
            trade_id=f"{trade_id}:failed",
            leaves_qty=o.leaves_qty,
        )
        return [
            Report(p.market, ev),
            Audit("trade_failed", p.market, {"trade_id": trade_id, "order_id": o.order_id, "qty": qty}),
        ]

    def _book_fill(self, market: str, outcome: Outcome, side: Side, px: Px, qty: Qty, fee: int) -> None:
        inv = self.inventory.get(market, Inventory())
        self.inventory[market] = apply_fill(inv, outcome, side, px, qty, fee)

    # --- reconcile with the venue's listings -------------------------------------------------------

    def reconcile(
        self, open_orders: Sequence[VenueOrderView], trades: Sequence[VenueTrade], ts_ns: int
    ) -> list[Effect]:
        """Compare our orders with the venue's open orders, after applying the trades backfilled since.

        The shell lists the open orders first, then backfills trades from ``trade_cursor_ns``: every
        trade of an order missing from the listing happened before it, so the backfill has them all.
        """
        out: list[Effect] = []
        for t in sorted(trades, key=lambda t: t.ts_ns):
            out += self.trade(t, ts_ns)
        listed = {v.order_id: v for v in open_orders}
        query: list[str] = []
        for o in list(self.by_client.values()):
            if not o.open or not o.order_id:
                continue
            v = listed.get(o.order_id)
            if v is not None:
                out += self._listed(o, v, ts_ns)
            elif o.state == "pending":
                continue  # not sent yet
            elif o.state == "in_doubt" and not o.seen:
                # Never shown by the venue and not listed: it may never have arrived, or arrived and
                # was cancelled meanwhile. Only the venue can say which: ask it by id.
                query.append(o.order_id)
            elif o.state in ("live", "canceling", "delayed", "in_doubt") and (
                o.state != "live" or ts_ns - o.accepted_ns >= self.grace_ns
            ):
                out += self._vanished(o, ts_ns)
        out += self._leftovers(open_orders, ts_ns)
        if query:
            out.append(QueryOrders(tuple(query)))
        self.started = True
        return out

    def order_status(self, order_id: str, found: bool, status: str, ts_ns: int) -> list[Effect]:
        """The venue's answer to a ``QueryOrders``: ``found`` False means it never received the order.

        Its trades were applied by the reconcile's backfill; an order the venue knows but no longer
        lists is finished. One it never received is posted again: the same signed order, so it can
        never rest twice.
        """
        o = self.by_venue.get(order_id)
        if o is None or not o.open or o.state != "in_doubt":
            return []
        if not found:
            o.state = "pending"
            return [
                Audit("not_arrived", o.place.market, {"client_id": o.client_id}),
                ResendOrder(o.client_id),
            ]
        o.seen = True
        if status.upper() == "LIVE":
            return self._mark_live(o, ts_ns)
        return self._vanished(o, ts_ns)

    def _listed(self, o: LedgerOrder, v: VenueOrderView, ts_ns: int) -> list[Effect]:
        out: list[Effect] = []
        if o.state in ("pending", "in_doubt", "delayed"):
            out += self._mark_live(o, ts_ns)
        o.seen = True
        if v.matched_qty > o.filled_qty:
            # The venue matched more than the trades we have show: they are still to come (the
            # backfill is behind); the next reconcile applies them. Never invented here.
            out.append(
                Audit(
                    "matched_ahead_of_trades",
                    o.place.market,
                    {"order_id": o.order_id, "venue_matched_qty": v.matched_qty, "filled_qty": o.filled_qty},
                )
            )
        return out

    def _vanished(self, o: LedgerOrder, ts_ns: int) -> list[Effect]:
        # Its trades (all applied by now) decide: filled in full, or cancelled with what they show.
        if o.filled_qty >= o.place.qty:
            o.state = "done"
            return []
        detail: dict[str, object] = {
            "client_id": o.client_id,
            "order_id": o.order_id,
            "filled_qty": o.filled_qty,
        }
        return [
            *self._finish(o, "not open on the venue (reconcile)", ts_ns),
            Audit("vanished", o.place.market, detail),
        ]

    def _leftovers(self, listed: Sequence[VenueOrderView], ts_ns: int) -> list[Effect]:
        # Open at the venue but not open in the ledger: unknown to us (an earlier run's, or placed by
        # hand) or finished here. At the first reconcile, unknown orders in our markets are adopted
        # when asked to; everything else is cancelled.
        out: list[Effect] = []
        cancel: list[str] = []
        for v in listed:
            o = self.by_venue.get(v.order_id)
            if o is not None and o.open:
                continue
            if o is None and not self.started and self.on_start == "adopt" and v.market in self.markets:
                out += self._adopt(v, ts_ns)
            else:
                cancel.append(v.order_id)
        if cancel:
            why = "leftover of an earlier run" if not self.started else "not accounted for by any session"
            out.append(CancelVenueOrders(tuple(cancel), why))
        return out

    def _adopt(self, v: VenueOrderView, ts_ns: int) -> list[Effect]:
        self._adopted += 1
        leaves = v.original_qty - max(v.matched_qty, 0)
        place = Place(
            market=v.market,
            client_id=f"{v.market}-adopted-{self._adopted}",
            outcome=v.outcome,
            side=v.side,
            px=v.px,
            qty=leaves,
        )
        o = LedgerOrder(place, v.order_id, adopted=True)
        o.state = "live"
        o.seen = True
        o.accepted_ns = ts_ns
        self.by_client[place.client_id] = o
        self.by_venue[v.order_id] = o
        ev = Adopted(
            market=v.market,
            client_id=place.client_id,
            order_id=v.order_id,
            ts_ns=ts_ns,
            outcome=v.outcome,
            side=v.side,
            px=v.px,
            qty=leaves,
        )
        return [Report(v.market, ev), Audit("adopted", v.market, {"order_id": v.order_id, "qty": leaves})]

    # --- positions ---------------------------------------------------------------------------------

    def seed_positions(self, positions: Iterable[VenuePosition]) -> list[Effect]:
        """At start: our positions are what the venue holds, at its average cost (cash = -cost)."""
        out: list[Effect] = []
        held: dict[str, dict[Outcome, tuple[Qty, Px]]] = {}
        for p in positions:
            held.setdefault(p.market, {})[p.outcome] = (p.qty, p.avg_px)
        for market, by_outcome in held.items():
            yes_qty, yes_px = by_outcome.get(Outcome.YES, (0, 0))
            no_qty, no_px = by_outcome.get(Outcome.NO, (0, 0))
            yes_cost, no_cost = notional_usdc6(yes_px, yes_qty), notional_usdc6(no_px, no_qty)
            self.inventory[market] = Inventory(
                yes_qty=yes_qty,
                no_qty=no_qty,
                cash_usdc6=-(yes_cost + no_cost),
                yes_cost_usdc6=yes_cost,
                no_cost_usdc6=no_cost,
            )
            out.append(Audit("position_loaded", market, {"yes_qty": yes_qty, "no_qty": no_qty}))
        return out

    def positions(self, positions: Iterable[VenuePosition], ts_ns: int) -> list[Effect]:
        """Compare the venue's positions with ours; a lasting difference pulls the market's quotes."""
        out: list[Effect] = []
        venue: dict[str, dict[Outcome, Qty]] = {m: {} for m in self.inventory}
        for p in positions:
            venue.setdefault(p.market, {})[p.outcome] = p.qty
        settling = {t.market for t in self.trades.values() if t.applied and t.status in _SETTLING}
        for market, held in venue.items():
            if market not in self.markets:
                continue
            inv = self.position(market)
            diff_yes = held.get(Outcome.YES, 0) - inv.yes_qty
            diff_no = held.get(Outcome.NO, 0) - inv.no_qty
            drift = max(abs(diff_yes), abs(diff_no)) > self.drift_tolerance_qty
            if drift and market not in settling:
                detail: dict[str, object] = {
                    "venue_yes_qty": held.get(Outcome.YES, 0),
                    "venue_no_qty": held.get(Outcome.NO, 0),
                    "ledger_yes_qty": inv.yes_qty,
                    "ledger_no_qty": inv.no_qty,
                }
                out.append(Audit("drift", market, detail))
                if market in self._drift_seen and market not in self.pulled:
                    reason = (
                        f"position drift: venue YES {diff_yes:+d} NO {diff_no:+d} (1e-6 shares) vs ledger"
                    )
                    self.pulled[market] = reason
                    out.append(PullMarket(market, reason))
                self._drift_seen.add(market)
            else:
                self._drift_seen.discard(market)
                if not drift and market in self.pulled:
                    del self.pulled[market]
                    out.append(ResumeMarket(market))
        return out

    # --- helpers -----------------------------------------------------------------------------------

    def _mark_live(self, o: LedgerOrder, ts_ns: int) -> list[Effect]:
        o.seen = True
        o.accepted_ns = ts_ns
        o.state = "canceling" if o.cancel_wanted else "live"
        p = o.place
        return [
            Report(
                p.market, Accepted(market=p.market, client_id=p.client_id, order_id=o.order_id, ts_ns=ts_ns)
            )
        ]

    def _finish(self, o: LedgerOrder, reason: str, ts_ns: int, *, rejected: bool = False) -> list[Effect]:
        o.state = "done"
        if o.final_told:
            return []
        o.final_told = True
        p = o.place
        ev: ExecEvent
        if rejected:
            ev = Rejected(market=p.market, client_id=p.client_id, ts_ns=ts_ns, reason=reason)
        else:
            ev = Canceled(market=p.market, client_id=p.client_id, ts_ns=ts_ns, reason=reason)
        return [Report(p.market, ev)]
