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
  settling pulls the market's quotes until a listing agrees, or until the resync rule adopts the
  venue's position. A listing may come back after the ledger moved on: it is compared only for the
  markets whose position did not move since it was asked for (``position_marks``), so a reply that
  is older than a fill never reads as a drift.
* **Resync: the venue's position wins.** A drift no trade will ever explain (shares moved outside
  the bot, a fill older than any backfill, a listing that lagged at start) must not hold a market
  forever. When the same two positions (the venue's and ours) differ in ``resync_listings``
  listings in a row, spanning at least ``resync_min_ns``, with no trade of that market settling and
  no order of it in doubt or delayed, the ledger adopts the venue's shares: it reports a
  ``PositionResync`` (old and new shares per outcome) and resumes the market. Each outcome's
  difference is booked as one fill without fee: a BUY at the venue's average price when the venue
  holds more (our average cost when the listing has none, else 0), a SELL at our average cost when
  it holds less. The shares we kept keep our cost basis, the correction realizes nothing, and cash
  moves as ``seed_positions`` books the shares found at start. Neither position may move during the
  run of listings: ours moving means fills still arriving (a listing that trails steady fills can
  show a constant difference), the venue's moving means its listing is catching up; either starts
  the count again. A held market stops trading, so a real difference does come to rest.
  ``resync_min_ns`` must exceed how far the venue's listing may lag its trades.
* **Merges of YES+NO pairs** (``merge_sent``, then ``merge_done``, ``merge_failed`` or
  ``merge_unknown``): the position moves only when the venue confirms (``core.inventory.apply_merge``:
  ``qty`` YES and NO out, ``qty`` Usdc6 of cash in), and the market reports a ``Merged`` or
  ``MergeFailed``. A merge is an on-chain transaction the venue's position listing reflects late, so
  it never looks like a drift: while it is in flight, and after it is confirmed until a listing
  agrees with us (at most ``settle_timeout_ns``), its market counts as settling. A merge whose
  outcome is unknown (no receipt) is settled by the listings: one showing our position less its
  pairs on both outcomes books it (``merge_confirmed_by_listing``); any other listing
  ``settle_timeout_ns`` after it was sent fails it, and the listing's shares decide as for any
  difference (drift, then the resync rule): a merge in doubt never keeps its market settling for ever.
* **Memory is bounded: ``prune(ts_ns)``** (the shell calls it on its reconcile timer, never
  implicitly) forgets what can no longer change, so a run of days keeps only a window of history:

  - a finished order once it finished at least ``retention_ns`` ago, a reconcile ran after it
    finished and did not list it (so every trade of it came in that reconcile's backfill, or is
    older than any backfill), and no trade it is in is still settling (a ``FAILED`` must find it);
  - a trade's record once it settled (``CONFIRMED`` or ``FAILED``) at least ``retention_ns`` ago
    (or, when nothing of ours was applied from it and it did not fail, once last heard of that long
    ago: a new record would act the same). Its keys (trade id, failed or not, the venue order ids
    applied) are kept, compactly, until its match time falls before ``backfill_from_ns()``: no
    backfill can return it after that. A message of a forgotten trade is answered from its keys (a
    duplicate changes nothing); the record comes back only for a leg of ours never applied. The
    keys are bounded by age, not count: a count would break exactly-once in a burst, while age
    bounds them by the trade rate times the horizon.

  The horizon this relies on: the venue re-delivers a trade on the user channel only within
  ``retention_ns`` of its last status change (each status is sent once, as it happens; duplicates
  follow within seconds), and a backfill returns only trades matched since ``backfill_from_ns()``
  (the newest trade seen when the last reconcile ran, minus ``backfill_overlap_ns``). A late
  ``FAILED`` for a forgotten trade is impossible by the retention rule: only a settled trade is
  forgotten, a ``FAILED`` one ignores every later message as before, and a ``CONFIRMED`` one is final
  by the venue's life cycle (``FAILED`` follows ``MATCHED``, ``MINED`` or ``RETRYING`` only). Should
  the venue send one anyway, the ledger audits it (``failed_after_forgotten``) and the position check
  resyncs to the venue.
  A stale status never moves a trade back: once ``CONFIRMED`` or ``FAILED``, a late ``MATCHED`` or
  ``MINED`` duplicate changes nothing (it would mark the market settling again, hiding any drift).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Literal

import msgspec

from core.inventory import Inventory, apply_fill, apply_merge
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    Adopted,
    Canceled,
    ExecEvent,
    Filled,
    Liquidity,
    Merged,
    MergeFailed,
    Place,
    PositionResync,
    Rejected,
)
from core.units import NS_PER_S, PX_ONE, Outcome, Px, Qty, Side, notional_usdc6, taker_fee_usdc6

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
    "Retained",
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
#: What a leg applied before its trade was forgotten holds once a late message brings the record
#: back: the amounts are gone (a ``FAILED`` then cannot reverse it; see the module docstring).
_FORGOTTEN: Final = (-1, 0, 0)


class Retained(msgspec.Struct, frozen=True, kw_only=True):
    """How much the ledger keeps: orders, trade records, compact keys of forgotten trades."""

    orders: int
    trades: int
    trade_keys: int


class LedgerOrder:
    """One order of ours as the ledger knows it (mutable; owned by the ledger)."""

    __slots__ = (
        "accepted_ns",
        "adopted",
        "cancel_wanted",
        "client_id",
        "filled_qty",
        "final_told",
        "finished_ns",
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
        self.finished_ns = 0  # when it became done (``prune`` forgets it a while after)
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
    __slots__ = ("applied", "failed", "market", "seen_ns", "settled_ns", "status", "ts_ns")

    def __init__(self, market: str, ts_ns: int) -> None:
        self.market = market
        self.ts_ns = ts_ns  # the venue's match time (backfills select by it)
        self.status = ""
        self.failed = False
        self.settled_ns = 0  # when it became CONFIRMED or FAILED here (0: not settled)
        self.seen_ns = 0  # when we last heard of it
        # venue order id -> (qty, px in that order's token, fee) applied for it
        self.applied: dict[str, tuple[Qty, Px, int]] = {}

    @property
    def settled(self) -> bool:
        """Final at the venue: ``CONFIRMED`` (finality) or ``FAILED`` (not retried)."""
        return self.failed or self.status == "CONFIRMED"


class _Merge:
    __slots__ = ("done_ns", "market", "merge_id", "qty", "sent_ns", "state")

    def __init__(self, market: str, merge_id: str, qty: Qty, sent_ns: int) -> None:
        self.market = market
        self.merge_id = merge_id
        self.qty = qty
        self.sent_ns = sent_ns
        self.state: Literal["sent", "unknown", "done"] = "sent"
        self.done_ns = 0  # when it was booked (``done``)


class _Streak(msgspec.Struct):
    """Consecutive listings showing one drift of one market (the resync rule).

    ``key``: the venue's YES and NO shares, then ours, all unchanged over the streak.
    """

    key: tuple[Qty, Qty, Qty, Qty]
    listings: int
    first_ns: int


class OrderLedger:
    """Our orders and positions, reconciled with the venue (see the module docstring)."""

    def __init__(
        self,
        markets: Iterable[MarketInfo],
        *,
        on_start: OnStart = "adopt",
        reconcile_grace_ns: int = 2_000_000_000,
        drift_tolerance_qty: Qty = 0,
        resync_listings: int | None = 3,
        resync_min_ns: int = 120_000_000_000,
        retention_ns: int = 120_000_000_000,
        backfill_overlap_ns: int = 120_000_000_000,
        settle_timeout_ns: int = 600_000_000_000,
    ) -> None:
        """Create an empty ledger for the markets we trade (more with ``add_market``).

        ``resync_listings`` None never adopts the venue's position (a drift holds its market until a
        listing agrees). ``retention_ns`` and ``backfill_overlap_ns`` are the horizons ``prune``
        relies on (module docstring); the shell backfills from ``backfill_from_ns()``.
        """
        if resync_listings is not None and resync_listings < 2:
            raise ValueError(f"resync_listings: {resync_listings} is below 2 (one listing may race a fill)")
        if min(resync_min_ns, retention_ns, backfill_overlap_ns) < 0:
            raise ValueError("resync_min_ns, retention_ns and backfill_overlap_ns must not be negative")
        self.markets: dict[str, MarketInfo] = {m.market: m for m in markets}
        self.on_start: OnStart = on_start
        self.grace_ns = reconcile_grace_ns
        self.drift_tolerance_qty = drift_tolerance_qty
        self.resync_listings = resync_listings
        self.resync_min_ns = resync_min_ns
        self.retention_ns = retention_ns
        self.backfill_overlap_ns = backfill_overlap_ns
        #: A trade still MATCHED/RETRYING this long after its match time no longer hides a drift in
        #: its market (its CONFIRMED may have been lost, older than any backfill): the position
        #: check and the resync rule then go the venue's way.
        self.settle_timeout_ns = settle_timeout_ns
        self.by_client: dict[str, LedgerOrder] = {}
        self.by_venue: dict[str, LedgerOrder] = {}
        self.inventory: dict[str, Inventory] = {m: Inventory() for m in self.markets}
        self.trades: dict[str, _Trade] = {}
        #: Keys of trades whose records ``prune`` dropped: trade id -> (failed, match time, venue order
        #: ids applied); kept while a backfill may still return the trade.
        self._forgotten: dict[str, tuple[bool, int, tuple[str, ...]]] = {}
        #: Venue time of the newest trade applied.
        self.trade_cursor_ns = 0
        #: ``trade_cursor_ns`` as the last reconcile left it (0: none ran): backfills start there.
        self._reconciled_cursor_ns = 0
        #: Venue ids a lost heartbeat took for cancelled by the venue's switch, until a listing shows
        #: it: a shutdown that cannot list still names them as orders that may remain.
        self.unverified_gone: set[str] = set()
        self.started = False  # the first reconcile (adopt or cancel leftovers) has run
        self.pulled: dict[str, str] = {}  # market -> why its quotes are pulled (drift)
        self._drift_seen: set[str] = set()  # markets whose last listing disagreed
        self._streaks: dict[str, _Streak] = {}  # markets whose listings show one lasting drift
        #: Merges of YES+NO pairs in flight, in doubt, or booked and not yet seen in a listing.
        self.merges: dict[str, _Merge] = {}
        #: Per market, how many times its position moved (fills, reversals, merges, resyncs, the
        #: seed): a listing asked for before the last move cannot be compared (``positions``).
        self._moves: dict[str, int] = {}
        self._reconciled_ns = -1  # when the last reconcile ran (-1: never)
        self._last_listed: frozenset[str] = frozenset()  # venue ids that reconcile listed
        self._adopted = 0

    # --- markets and queries ------------------------------------------------------------------------

    def add_market(self, info: MarketInfo) -> None:
        """Start trading ``info.market``."""
        self.markets[info.market] = info
        self.inventory.setdefault(info.market, Inventory())

    def position(self, market: str) -> Inventory:
        """Our position in ``market`` (from the venue at start plus every fill applied since)."""
        return self.inventory.get(market, Inventory())

    def position_marks(self) -> dict[str, int]:
        """A mark of every market's position now, for ``positions(..., marks=)`` (asked with a listing)."""
        return dict(self._moves)

    def open_orders(self, market: str | None = None) -> list[LedgerOrder]:
        """Our orders that may still rest or fill, in ``market`` or everywhere."""
        return [o for o in self.by_client.values() if o.open and (market is None or o.place.market == market)]

    def order(self, client_id: str) -> LedgerOrder | None:
        """The order with our ``client_id``, if we know it."""
        return self.by_client.get(client_id)

    def venue_order(self, order_id: str) -> LedgerOrder | None:
        """The order with venue id ``order_id``, if it is ours."""
        return self.by_venue.get(order_id)

    def backfill_from_ns(self) -> int:
        """Venue time a backfill asks trades from: the newest trade seen when the last reconcile ran,
        minus the overlap (0, everything, before the first reconcile).

        Not the newest seen now: the user channel can lose a trade without a sign (or reconnect
        after a gap) and then deliver later ones, and reconciles can fail for longer than the
        overlap (the venue unreachable). Anchored at the last reconcile, every trade matched since
        is in the next backfill whatever the channel delivered meanwhile, so no trade falls out of
        every backfill's window; the price is a window longer by the time between reconciles.
        """
        cursor = self._reconciled_cursor_ns
        return max(0, cursor - self.backfill_overlap_ns) if cursor else 0

    def retained(self) -> Retained:
        """How many orders, trade records and forgotten trades' keys the ledger keeps."""
        return Retained(orders=len(self.by_client), trades=len(self.trades), trade_keys=len(self._forgotten))

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
                if o.order_id:
                    self.unverified_gone.add(o.order_id)
                out += self._finish(o, "heartbeat expired: the venue cancelled every order", ts_ns)
        out.append(Audit("heartbeat_lost", "", {"orders_gone": sum(1 for e in out if isinstance(e, Report))}))
        return out

    # --- merges of YES+NO pairs --------------------------------------------------------------------

    def merge_sent(self, market: str, merge_id: str, qty: Qty, ts_ns: int) -> None:
        """A merge of ``qty`` pairs of ``market`` is about to be sent: its market is settling from now."""
        if merge_id in self.merges:
            raise ValueError(f"duplicate merge id {merge_id}")
        self.merges[merge_id] = _Merge(market, merge_id, qty, ts_ns)

    def merge_done(self, merge_id: str, tx: str, ts_ns: int) -> list[Effect]:
        """The venue confirmed the merge (its receipt): book it and tell the market."""
        m = self.merges.get(merge_id)
        if m is None or m.state == "done":
            return []
        return self._book_merge(m, tx, "merged", ts_ns)

    def merge_failed(self, merge_id: str, reason: str, ts_ns: int) -> list[Effect]:
        """The merge did not happen (refused before sending, or reverted): nothing moves."""
        m = self.merges.get(merge_id)
        if m is None or m.state == "done":
            return []
        del self.merges[merge_id]
        ev = MergeFailed(market=m.market, merge_id=merge_id, ts_ns=ts_ns, qty=m.qty, reason=reason)
        detail: dict[str, object] = {"merge_id": merge_id, "qty": m.qty, "reason": reason}
        return [Report(m.market, ev), Audit("merge_failed", m.market, detail)]

    def merge_unknown(self, merge_id: str, reason: str, ts_ns: int) -> list[Effect]:
        """No usable answer (sent, no receipt): the listings settle it (module docstring)."""
        m = self.merges.get(merge_id)
        if m is None or m.state != "sent":
            return []
        m.state = "unknown"
        detail: dict[str, object] = {"merge_id": merge_id, "qty": m.qty, "reason": reason}
        return [Audit("merge_in_doubt", m.market, detail)]

    def _book_merge(self, m: _Merge, tx: str, how: str, ts_ns: int) -> list[Effect]:
        inv = self.position(m.market)
        qty = m.qty
        out: list[Effect] = []
        if qty > min(inv.yes_qty, inv.no_qty):
            # The venue merged more than we hold: the position check resolves the difference its way.
            qty = max(0, min(inv.yes_qty, inv.no_qty))
            detail: dict[str, object] = {"merge_id": m.merge_id, "qty": m.qty, "booked_qty": qty}
            out.append(Audit("merge_exceeds_position", m.market, detail))
        self.inventory[m.market] = apply_merge(inv, qty)
        self._moved(m.market)
        m.state = "done"
        m.done_ns = ts_ns
        ev = Merged(market=m.market, merge_id=m.merge_id, ts_ns=ts_ns, qty=qty, tx=tx)
        out += [Report(m.market, ev), Audit(how, m.market, {"merge_id": m.merge_id, "qty": qty, "tx": tx})]
        return out

    def _merges_from_listing(self, market: str, yes_qty: Qty, no_qty: Qty, ts_ns: int) -> list[Effect]:
        # A listing of ``market`` settles its merges in doubt and retires the confirmed ones it shows.
        out: list[Effect] = []
        for m in [m for m in self.merges.values() if m.market == market]:
            inv = self.position(market)
            if m.state == "unknown":
                if (yes_qty, no_qty) == (inv.yes_qty - m.qty, inv.no_qty - m.qty):
                    out += self._book_merge(m, "", "merge_confirmed_by_listing", ts_ns)
                elif ts_ns - m.sent_ns >= self.settle_timeout_ns:
                    # Not shown by then (the listing unchanged, or moved some other way, e.g. shares
                    # moved outside the bot): given up, so the market stops settling and the listing's
                    # shares decide as for any difference (drift, then the resync rule).
                    out += self.merge_failed(
                        m.merge_id, "no receipt, and the listings never showed it", ts_ns
                    )
            elif m.state == "done" and (
                (yes_qty, no_qty) == (inv.yes_qty, inv.no_qty) or ts_ns - m.done_ns >= self.settle_timeout_ns
            ):
                del self.merges[m.merge_id]  # the listing shows it (or had time enough to)
        return out

    # --- trades ------------------------------------------------------------------------------------

    def trade(self, t: VenueTrade, ts_ns: int) -> list[Effect]:
        """A venue trade from the user channel or a backfill; each leg of ours applies exactly once."""
        rec = self.trades.get(t.trade_id)
        if rec is None:
            keys = self._forgotten.get(t.trade_id)
            if keys is not None and not self._news(t, keys):
                # A forgotten trade heard again (a backfill's overlap, a duplicate): its keys answer.
                if not keys[0]:
                    self.trade_cursor_ns = max(self.trade_cursor_ns, t.ts_ns)
                return []
            rec = self.trades[t.trade_id] = self._record_back(t, ts_ns)
        rec.seen_ns = ts_ns
        status = t.status.upper()
        out: list[Effect] = []
        if status == "FAILED":
            if not rec.failed:
                rec.failed = True
                rec.status = status
                rec.settled_ns = ts_ns
                # Every leg of ours this trade applied is void, whether or not this message lists it.
                for order_id in list(rec.applied):
                    out += self._void_applied(rec, t.trade_id, order_id, ts_ns)
            return out
        if rec.failed:
            return out  # a late MATCHED of a trade the venue already reported FAILED
        if rec.status not in (status, "CONFIRMED"):  # CONFIRMED is final: later statuses are stale
            rec.status = status
            if status == "CONFIRMED":
                rec.settled_ns = ts_ns
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
            rec = self.trades.setdefault(t.trade_id, _Trade(t.market, t.ts_ns))
            rec.status = t.status.upper()
            rec.failed = rec.status == "FAILED"
            for leg in t.legs:
                rec.applied.setdefault(leg.order_id, (0, leg.px, 0))
            self.trade_cursor_ns = max(self.trade_cursor_ns, t.ts_ns)

    def _news(self, t: VenueTrade, keys: tuple[bool, int, tuple[str, ...]]) -> bool:
        # Whether a message of a forgotten trade needs its record: a FAILED trade ignores everything,
        # a CONFIRMED one only a FAILED (audited) or a leg of a known order never applied.
        failed, _, order_ids = keys
        if failed:
            return False
        if t.status.upper() == "FAILED":
            return True
        return any(leg.order_id not in order_ids and leg.order_id in self.by_venue for leg in t.legs)

    def _record_back(self, t: VenueTrade, ts_ns: int) -> _Trade:
        # A new record, or a forgotten trade's brought back from its keys: settled, its legs applied.
        rec = _Trade(t.market, t.ts_ns)
        keys = self._forgotten.pop(t.trade_id, None)
        if keys is not None:
            failed, rec.ts_ns, order_ids = keys
            rec.failed = failed
            rec.status = "FAILED" if failed else "CONFIRMED"
            rec.settled_ns = ts_ns
            rec.applied = dict.fromkeys(order_ids, _FORGOTTEN)
        return rec

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
            o.finished_ns = ts_ns
            o.final_told = True  # the last fill is the terminal report
        return out

    def _void_applied(self, rec: _Trade, trade_id: str, order_id: str, ts_ns: int) -> list[Effect]:
        applied = rec.applied.pop(order_id)
        if applied == _FORGOTTEN:
            # CONFIRMED, forgotten, then FAILED: the venue's life cycle has no such path. The amounts
            # are gone: the position check resyncs to the venue.
            detail: dict[str, object] = {"trade_id": trade_id, "order_id": order_id}
            return [Audit("failed_after_forgotten", rec.market, detail)]
        o = self.by_venue.get(order_id)
        if o is None:
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
        self._moved(market)

    def _moved(self, market: str) -> None:
        self._moves[market] = self._moves.get(market, 0) + 1

    # --- reconcile with the venue's listings -------------------------------------------------------

    def reconcile(
        self, open_orders: Sequence[VenueOrderView], trades: Sequence[VenueTrade], ts_ns: int
    ) -> list[Effect]:
        """Compare our orders with the venue's open orders, after applying the trades backfilled since.

        The shell lists the open orders first, then backfills trades from ``backfill_from_ns()``:
        every trade of an order missing from the listing happened before it, so the backfill has them
        all.
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
        self._reconciled_ns = ts_ns
        self._last_listed = frozenset(listed)
        self._reconciled_cursor_ns = self.trade_cursor_ns  # the backfill covered everything to here
        self.unverified_gone.clear()  # the listing showed which are gone (the rest: leftovers)
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
            o.finished_ns = ts_ns
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
            self._moved(market)
            out.append(Audit("position_loaded", market, {"yes_qty": yes_qty, "no_qty": no_qty}))
        return out

    def positions(
        self, positions: Iterable[VenuePosition], ts_ns: int, *, marks: Mapping[str, int] | None = None
    ) -> list[Effect]:
        """Compare the venue's positions with ours; a lasting difference pulls the market's quotes.

        The shell asks for the listing right after a reconcile (so every trade a backfill can show is
        applied) and may get it later: ``ts_ns`` is when it asked, ``marks`` what ``position_marks()``
        said then. A market whose position moved since (a fill, a reversal, a merge booked) is left
        out of this listing: the venue may have listed it before or after the move, so neither a
        difference nor an agreement would mean anything (a ``listing_stale`` audit says so). None:
        the listing is as new as the ledger.
        A difference that lasts by the resync rule (module docstring) is resolved the venue's way.
        """
        out: list[Effect] = []
        moved = set() if marks is None else {m for m, n in self._moves.items() if marks.get(m, 0) != n}
        venue: dict[str, dict[Outcome, tuple[Qty, Px]]] = {m: {} for m in self.inventory}
        for p in positions:
            venue.setdefault(p.market, {})[p.outcome] = (p.qty, p.avg_px)
        settling = {
            t.market
            for t in self.trades.values()
            if t.applied and t.status in _SETTLING and ts_ns - t.ts_ns < self.settle_timeout_ns
        }
        doubtful = {o.place.market for o in self.by_client.values() if o.state in ("in_doubt", "delayed")}
        for market, held in venue.items():
            if market not in self.markets:
                continue
            if market in moved:
                out.append(Audit("listing_stale", market, {"asked_ns": ts_ns}))
                continue
            yes_qty, yes_px = held.get(Outcome.YES, (0, 0))
            no_qty, no_px = held.get(Outcome.NO, (0, 0))
            if self.merges:
                out += self._merges_from_listing(market, yes_qty, no_qty, ts_ns)
                if any(m.market == market for m in self.merges.values()):
                    settling.add(market)  # a merge the listing may not show yet
            inv = self.position(market)
            diff_yes, diff_no = yes_qty - inv.yes_qty, no_qty - inv.no_qty
            drift = max(abs(diff_yes), abs(diff_no)) > self.drift_tolerance_qty
            if drift and market not in settling:
                detail: dict[str, object] = {
                    "venue_yes_qty": yes_qty,
                    "venue_no_qty": no_qty,
                    "ledger_yes_qty": inv.yes_qty,
                    "ledger_no_qty": inv.no_qty,
                }
                out.append(Audit("drift", market, detail))
                key = (yes_qty, no_qty, inv.yes_qty, inv.no_qty)
                if self._lasting(market, key, market in doubtful, ts_ns):
                    out += self._resync(market, inv, (yes_qty, yes_px), (no_qty, no_px), ts_ns)
                    continue
                if market in self._drift_seen and market not in self.pulled:
                    reason = (
                        f"position drift: venue YES {diff_yes:+d} NO {diff_no:+d} (1e-6 shares) vs ledger"
                    )
                    self.pulled[market] = reason
                    out.append(PullMarket(market, reason))
                self._drift_seen.add(market)
            else:
                self._drift_seen.discard(market)
                self._streaks.pop(market, None)
                if not drift and market in self.pulled:
                    del self.pulled[market]
                    out.append(ResumeMarket(market))
        return out

    def _lasting(self, market: str, key: tuple[Qty, Qty, Qty, Qty], in_doubt: bool, ts_ns: int) -> bool:
        # One more listing of this drift: does it now meet the resync rule?
        if self.resync_listings is None or in_doubt:
            self._streaks.pop(market, None)  # an order in doubt may explain it: start again after
            return False
        streak = self._streaks.get(market)
        if streak is None or streak.key != key:
            streak = self._streaks[market] = _Streak(key=key, listings=0, first_ns=ts_ns)
        streak.listings += 1
        return streak.listings >= self.resync_listings and ts_ns - streak.first_ns >= self.resync_min_ns

    def _resync(
        self,
        market: str,
        inv: Inventory,
        yes: tuple[Qty, Px],
        no: tuple[Qty, Px],
        ts_ns: int,
    ) -> list[Effect]:
        streak = self._streaks.pop(market)
        self._drift_seen.discard(market)

        def px(outcome: Outcome, ours: Qty, venue: Qty, venue_avg_px: Px) -> Px:
            # More shares at the venue: its average price, else our average cost (0 if we hold none);
            # fewer: our average cost, so the shares we keep keep their cost and nothing is realized.
            return venue_avg_px if venue > ours and venue_avg_px > 0 else inv.avg_cost_px(outcome)

        ev = PositionResync(
            market=market,
            ts_ns=ts_ns,
            yes_old_qty=inv.yes_qty,
            yes_new_qty=yes[0],
            no_old_qty=inv.no_qty,
            no_new_qty=no[0],
            yes_px=px(Outcome.YES, inv.yes_qty, *yes),
            no_px=px(Outcome.NO, inv.no_qty, *no),
            reason=(
                f"the venue's position differed by YES {yes[0] - inv.yes_qty:+d} NO {no[0] - inv.no_qty:+d} "
                f"(1e-6 shares) in {streak.listings} listings over "
                f"{(ts_ns - streak.first_ns) / NS_PER_S:.0f} s with nothing settling: adopted"
            ),
        )
        for outcome, side, fill_px, qty in ev.fills():
            self._book_fill(market, outcome, side, fill_px, qty, 0)
        detail: dict[str, object] = {
            "yes_old_qty": ev.yes_old_qty,
            "yes_new_qty": ev.yes_new_qty,
            "no_old_qty": ev.no_old_qty,
            "no_new_qty": ev.no_new_qty,
            "yes_px": ev.yes_px,
            "no_px": ev.no_px,
            "listings": streak.listings,
            "span_ns": ts_ns - streak.first_ns,
        }
        out: list[Effect] = [Report(market, ev), Audit("position_resync", market, detail)]
        if self.pulled.pop(market, None) is not None:
            out.append(ResumeMarket(market))
        return out

    # --- memory ------------------------------------------------------------------------------------

    def prune(self, ts_ns: int) -> Retained:
        """Forget what can no longer change (module docstring, "Memory"); returns what is kept.

        Explicit, never implicit: the shell calls it on its reconcile timer, after the reconcile.
        """
        horizon_ns = ts_ns - self.retention_ns
        from_ns = self.backfill_from_ns()
        unsettled: set[str] = set()  # venue ids of orders a trade still settling applied to
        for trade_id, rec in list(self.trades.items()):
            if not rec.settled:
                if rec.applied:
                    unsettled.update(rec.applied)
                elif rec.seen_ns <= horizon_ns:
                    del self.trades[trade_id]  # nothing of ours applied: a new record acts the same
                continue
            if rec.settled_ns > horizon_ns:
                continue
            del self.trades[trade_id]
            if rec.ts_ns >= from_ns:
                self._forgotten[trade_id] = (rec.failed, rec.ts_ns, tuple(rec.applied))
        for trade_id, (_, match_ns, _) in list(self._forgotten.items()):
            if match_ns < from_ns:
                del self._forgotten[trade_id]  # no backfill can return it any more
        for client_id, o in list(self.by_client.items()):
            if (
                o.state != "done"
                or o.finished_ns > horizon_ns
                or o.finished_ns >= self._reconciled_ns
                or o.order_id in self._last_listed
                or o.order_id in unsettled
            ):
                continue
            del self.by_client[client_id]
            if o.order_id and self.by_venue.get(o.order_id) is o:
                del self.by_venue[o.order_id]
        return self.retained()

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
        if o.state != "done":
            o.finished_ns = ts_ns
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
