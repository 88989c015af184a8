"""Deterministic price-time matching engine for one binary Polymarket market.

No I/O, clock reads or randomness: time comes in as ``ts_ns`` on every call, and order and trade ids come
from the engine's own counters, so the same calls always give the same reports.

One market is one **YES-equivalent book**. A BUY YES at ``p`` and a SELL NO at ``1 - p`` are both bids
at ``p``; a SELL YES at ``p`` and a BUY NO at ``1 - p`` are both asks at ``p``. Plain price-time
priority on that one book then gives the venue's cross-token matching for free:

* BUY YES x SELL YES and BUY NO x SELL NO are ordinary transfers;
* BUY YES x BUY NO is a **mint**: both pay, 1 USDC per share pair enters the collateral pool;
* SELL YES x SELL NO is a **merge**: both are paid out of the pool.

Every order keeps its real token and side for the accounting. The fill price is the maker's price, in
each party's own token (a NO party trades at ``1 - p``). Sizes are ``Qty`` (1e-6 share) and may be
any 6-decimal value; cash moves in whole micro-USDC. The maker's cash for a fill is
``notional_usdc6(maker_px, qty)`` (``floor(px * qty / 10_000)``, the venue's rule; exact for 0.01-share
sizes). In a transfer the taker's cash is the same amount; in a mint or merge the taker's leg is
``complement_notional_usdc6(maker_px, qty)``, so a pair always costs or pays exactly 1 USDC, and a
taker of an odd size pays (mint) or gets (merge) at most 1 micro-USDC more than its own floor. The
taker pays ``taker_fee_usdc6(own_px, qty, rate_ppm)`` (Polymarket's ``shares * rate * p * (1 - p)``
floored to 5 decimals); makers pay nothing. The displayed NO book is the exact mirror of the YES book,
and every changed level is published for both tokens, as the venue's ``price_change`` does.

Conservation: ``sum(cash) + pool + fees == deposits`` at all times, exactly, and outstanding YES ==
outstanding NO == ``pool / 1 USDC`` per share.

Each mutating call returns a ``Report``: per-owner exec events, the market-data changes (``BookDelta``
with the new total size of each changed level, ``TradePrint``), one ``Trade`` record per maker match,
and for ``resolve`` the per-owner settlements.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from typing import Final, assert_never

import msgspec

from core.messages import (
    Accepted,
    BookDelta,
    BookSnapshot,
    Cancel,
    CancelAll,
    Canceled,
    Command,
    Filled,
    Level,
    Merge,
    OrderEvent,
    Place,
    Rejected,
    TimeInForce,
    TradePrint,
)
from core.units import (
    PX_ONE,
    QTY_ONE,
    SETTLE_PER_QTY_USDC6,
    TICKS_PX,
    USDC6_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Px,
    Qty,
    Side,
    Usdc6,
    Usdc10,
    complement_notional_usdc6,
    format_px,
    format_qty,
    format_usdc6,
    notional_usdc6,
    taker_fee_usdc6,
    usdc10_to_usdc6_ceil,
)

__all__ = [
    "REASON_BALANCE",
    "REASON_EXPIRATION",
    "REASON_EXPIRED",
    "REASON_FAK_NO_MATCH",
    "REASON_FAK_REMAINDER",
    "REASON_FOK_KILLED",
    "REASON_NOT_CANCELED",
    "REASON_POST_ONLY_CROSSES",
    "REASON_POST_ONLY_TIF",
    "REASON_RESOLVED",
    "REASON_USER_CANCELED",
    "Balance",
    "MatchingEngine",
    "OrderView",
    "OwnedExec",
    "Report",
    "Settlement",
    "Trade",
    "fee_bound_usdc6",
    "yes_equivalent",
]

# Reasons worded as the venue words them (docs.polymarket.com, "Error codes"), where it has one.
REASON_POST_ONLY_CROSSES: Final = "invalid post-only order: order crosses book"
REASON_POST_ONLY_TIF: Final = "invalid post-only order: only GTC and GTD orders can be post-only"
REASON_BALANCE: Final = "not enough balance / allowance"
REASON_FOK_KILLED: Final = "order couldn't be fully filled. FOK orders are fully filled or killed."
REASON_FAK_NO_MATCH: Final = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
REASON_FAK_REMAINDER: Final = "FAK order remainder canceled"
REASON_EXPIRATION: Final = "invalid expiration"
REASON_EXPIRED: Final = "expired"
REASON_USER_CANCELED: Final = "canceled"
REASON_RESOLVED: Final = "market resolved"
REASON_NOT_CANCELED: Final = "already canceled or matched"

#: An exec event addressed to the owner (account) of the order.
OwnedExec = tuple[str, OrderEvent]

# Heap key of an empty book side. Keys are ``+px`` for asks and ``-px`` for bids, and a limit crosses
# when ``best_key <= key(limit)``; no limit in [0, 1] reaches PX_ONE + 1.
_EMPTY: Final = PX_ONE + 1
# Compact a side's heap of level keys when stale keys outnumber the live levels this much.
_HEAP_SLACK: Final = 64
# Compact a level's queue when cancelled orders (left in place for O(1) cancels) pile up.
_QUEUE_SLACK: Final = 32
_RESTING_TIFS: Final = frozenset(("GTC", "GTD"))
# Enum members as module constants: attribute lookups on the enum classes show up on the hot path.
_YES: Final = Outcome.YES
_NO: Final = Outcome.NO
_BUY: Final = Side.BUY
_SELL: Final = Side.SELL


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """One taker order matched against one maker order.

    Prices are in each party's own token; ``yes_px`` is the YES-equivalent execution price. ``kind`` is
    ``"transfer"`` (one token changes hands), ``"mint"`` (BUY YES x BUY NO) or ``"merge"`` (SELL x SELL).
    """

    trade_id: str
    ts_ns: int
    yes_px: Px
    qty: Qty
    kind: str
    taker_owner: str
    taker_order_id: str
    taker_client_id: str
    taker_outcome: Outcome
    taker_side: Side
    taker_px: Px
    taker_fee_usdc6: Usdc6
    maker_owner: str
    maker_order_id: str
    maker_client_id: str
    maker_outcome: Outcome
    maker_side: Side
    maker_px: Px


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """What resolution paid one owner: shares held before, payout, and cash after."""

    owner: str
    yes_qty: Qty
    no_qty: Qty
    payout_usdc6: Usdc6
    cash_usdc6: Usdc6


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one engine call changed.

    ``order_id`` is the id given to an accepted order (``""`` otherwise). ``error`` is set when a cancel
    found nothing to cancel (an order is never rejected through ``error``: that is a ``Rejected`` event).
    """

    execs: tuple[OwnedExec, ...] = ()
    deltas: tuple[BookDelta, ...] = ()
    prints: tuple[TradePrint, ...] = ()
    trades: tuple[Trade, ...] = ()
    settlements: tuple[Settlement, ...] = ()
    order_id: str = ""
    error: str = ""


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """One owner's account; ``locked_*`` is reserved by resting orders (BUY: cash, SELL: shares).

    ``locked_cash_usdc6`` is the exact reservation ``sum(px * leaves)`` rounded up to the micro-USDC.
    """

    owner: str
    cash_usdc6: Usdc6
    yes_qty: Qty
    no_qty: Qty
    locked_cash_usdc6: Usdc6
    locked_yes_qty: Qty
    locked_no_qty: Qty


class OrderView(msgspec.Struct, frozen=True, kw_only=True):
    """A resting order as the venue's ``/data/orders`` would show it."""

    order_id: str
    owner: str
    client_id: str
    outcome: Outcome
    side: Side
    px: Px
    orig_qty: Qty
    leaves_qty: Qty
    tif: TimeInForce
    expire_ns: int
    ts_ns: int


def yes_equivalent(outcome: Outcome, side: Side, px: Px) -> tuple[bool, Px]:
    """Place an order on the YES-equivalent book.

    Args:
        outcome: The order's token.
        side: The order's side on that token.
        px: The order's price on that token.

    Returns:
        ``(is_bid, yes_px)``: BUY YES and SELL NO are bids, SELL YES and BUY NO asks; a NO price ``q``
        sits at ``1 - q``.
    """
    if outcome == _YES:
        return side == _BUY, px
    return side == _SELL, PX_ONE - px


def fee_bound_usdc6(px: Px, qty: Qty, rate_ppm: int) -> Usdc6:
    """Upper bound of what taking ``qty`` at limit ``px`` can cost in fees, for balance checks.

    The fee before the venue's floor, rounded up to 1 micro-USDC. Since ``x + rate * x * (1 - x)`` grows
    with ``x`` for any rate <= 1, a BUY that fills at prices ``x_i <= px`` in pieces ``q_i`` pays at most
    ``px * sum(q_i)`` (exact, in Usdc10) ``+ fee_bound_usdc6(px, sum(q_i))`` in total, whatever
    ``p * (1 - p)`` does, plus the at most 1 micro-USDC per odd-sized mint piece that a taker's
    complement leg rounds up (module docstring).

    Args:
        px: Limit price in Px.
        qty: Size in Qty (1e-6 share).
        rate_ppm: Fee rate in millionths.

    Returns:
        The bound in Usdc6; always >= ``taker_fee_usdc6(px, qty, rate_ppm)``.
    """
    # qty/1e6 * rate/1e6 * px/1e4 * (1e4-px)/1e4 USDC, in 1e-6 units: / 1e14, rounded up.
    return -(-(qty * rate_ppm * px * (PX_ONE - px)) // 10**14)


class _Account:
    __slots__ = ("cash", "locked_cash10", "locked_shares", "orders", "owner", "shares")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.cash: Usdc6 = 0
        self.shares: list[Qty] = [0, 0]  # indexed by Outcome
        # Cash reserved by resting BUYs, exact in Usdc10: sum(px * leaves). A maker pays
        # notional_usdc6(px, qty) <= px * qty of it per fill, so it always covers its fills.
        self.locked_cash10: Usdc10 = 0
        self.locked_shares: list[Qty] = [0, 0]
        # Resting orders by client id, in arrival order.
        self.orders: dict[str, _Order] = {}


class _Order:
    __slots__ = (
        "acct",
        "client_id",
        "expire_ns",
        "is_bid",
        "leaves",
        "order_id",
        "orig_qty",
        "outcome",
        "px",
        "seq",
        "side",
        "tif",
        "ts_ns",
        "ypx",
    )

    def __init__(
        self,
        acct: _Account,
        order_id: str,
        seq: int,
        place: Place,
        ts_ns: int,
        *,
        is_bid: bool,
        ypx: Px,
    ) -> None:
        self.acct = acct
        self.order_id = order_id
        self.seq = seq
        self.client_id = place.client_id
        self.outcome = place.outcome
        self.side = place.side
        self.px = place.px
        self.orig_qty = place.qty
        self.leaves = place.qty  # 0 once filled or cancelled: a dead entry in its level's queue
        self.tif = place.tif
        self.expire_ns = place.expire_ns
        self.is_bid = is_bid
        self.ypx = ypx
        self.ts_ns = ts_ns


class _Level:
    __slots__ = ("dead", "orders", "qty")

    def __init__(self) -> None:
        self.qty: Qty = 0  # live total; 0 means the level is gone
        self.dead = 0  # cancelled orders still in the queue
        self.orders: deque[_Order] = deque()


class _Half:
    # One side of the YES-equivalent book. ``sign`` maps prices to heap keys (+1 asks, -1 bids), so the
    # best level is always the smallest key.
    __slots__ = ("best", "heap", "is_bid", "levels", "sign")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.sign = -1 if is_bid else 1
        self.levels: dict[Px, _Level] = {}
        self.heap: list[int] = []  # level keys, possibly stale (lazy deletion)
        self.best = _EMPTY  # key of the best live level


class MatchingEngine:
    """Price-time priority matching for one binary market, with accounts, fees and resolution.

    Args:
        market: Market (condition) id, copied into every event.
        tick_px: Price tick in Px, one the venue uses (``core.units.TICKS_PX``); prices must be multiples
            inside ``[tick, 1 - tick]``.
        min_qty: Minimum size of a GTC/GTD order, in Qty.
        fee_rate_ppm: Taker fee rate in millionths (0.04 -> 40_000).
        min_marketable_usdc6: Minimum notional ``px * qty`` of an order that executes on arrival (FOK/FAK,
            or GTC/GTD crossing the book and not post-only; the venue's $1); 0 disables.
        enforce_balance: Reject orders the owner cannot pay for (BUY: free cash for ``px * qty`` plus the
            fee bound and the mint rounding when it crosses; SELL: free shares). Resting orders always
            reserve.
        id_prefix: Prefix of order ids (``{prefix}o-000001``) and trade ids (``{prefix}t-000001``).
    """

    def __init__(
        self,
        market: str,
        *,
        tick_px: Px = 100,
        min_qty: Qty = 5 * QTY_ONE,
        fee_rate_ppm: int = 0,
        min_marketable_usdc6: Usdc6 = USDC6_ONE,
        enforce_balance: bool = False,
        id_prefix: str = "",
    ) -> None:
        _check_tick(tick_px)
        self.market = market
        self.tick_px = tick_px
        self.min_qty = min_qty
        self.fee_rate_ppm = fee_rate_ppm
        self.min_marketable_usdc6 = min_marketable_usdc6
        self.enforce_balance = enforce_balance
        self.id_prefix = id_prefix
        self.resolved: bool | None = None  # None while trading, then whether YES won
        self._bids = _Half(is_bid=True)
        self._asks = _Half(is_bid=False)
        self._accounts: dict[str, _Account] = {}
        self._order_seq = 0
        self._trade_seq = 0
        self._pool: Usdc6 = 0
        self._fees: Usdc6 = 0
        self._deposits: Usdc6 = 0
        self._gtd: list[tuple[int, int, _Order]] = []  # (expire_ns, seq, order), lazily cleaned
        # Output of the call in progress.
        self._execs: list[OwnedExec] = []
        self._trades: list[Trade] = []
        self._prints: list[TradePrint] = []
        self._touched: dict[int, None] = {}  # 2 * yes_px + is_bid, in first-touch order

    # --- accounts ----------------------------------------------------------------------------------

    @property
    def pool_usdc6(self) -> Usdc6:
        """Collateral locked behind outstanding share pairs (1 USDC per YES+NO pair)."""
        return self._pool

    @property
    def fees_usdc6(self) -> Usdc6:
        """Taker fees collected so far."""
        return self._fees

    @property
    def deposits_usdc6(self) -> Usdc6:
        """Net cash deposited; equals ``sum(cash) + pool + fees`` at all times."""
        return self._deposits

    def deposit(self, owner: str, cash_usdc6: Usdc6) -> None:
        """Credit (or, negative, debit) an owner's cash from outside the market."""
        self._account(owner).cash += cash_usdc6
        self._deposits += cash_usdc6

    def split(self, owner: str, qty: Qty) -> None:
        """Turn ``qty`` worth of the owner's cash into ``qty`` YES plus ``qty`` NO (the CTF split).

        Raises:
            ValueError: ``qty`` is negative, or balances are enforced and the free cash is short.
        """
        acct = self._account(owner)
        cost = qty * SETTLE_PER_QTY_USDC6
        free10 = acct.cash * USDC10_PER_USDC6 - acct.locked_cash10
        if qty < 0 or (self.enforce_balance and cost * USDC10_PER_USDC6 > free10):
            raise ValueError(f"cannot split {format_qty(qty)} shares for {owner!r}")
        acct.cash -= cost
        acct.shares[_YES] += qty
        acct.shares[_NO] += qty
        self._pool += cost

    def merge(self, owner: str, qty: Qty) -> None:
        """Turn ``qty`` YES plus ``qty`` NO of the owner back into ``qty`` worth of cash (the CTF merge).

        Only shares no resting SELL of the owner reserves can be merged.

        Raises:
            ValueError: ``qty`` is not positive, or more than the owner's free pairs.
        """
        acct = self._account(owner)
        free = min(acct.shares[i] - acct.locked_shares[i] for i in (_YES, _NO))
        if qty <= 0 or qty > free:
            raise ValueError(
                f"cannot merge {format_qty(qty)} pairs for {owner!r}: {format_qty(max(free, 0))} free"
            )
        acct.shares[_YES] -= qty
        acct.shares[_NO] -= qty
        acct.cash += qty * SETTLE_PER_QTY_USDC6
        self._pool -= qty * SETTLE_PER_QTY_USDC6

    def balance(self, owner: str) -> Balance:
        """Snapshot of one owner's account (all zero for an unknown owner)."""
        acct = self._accounts.get(owner) or _Account(owner)
        return Balance(
            owner=owner,
            cash_usdc6=acct.cash,
            yes_qty=acct.shares[_YES],
            no_qty=acct.shares[_NO],
            locked_cash_usdc6=usdc10_to_usdc6_ceil(acct.locked_cash10),
            locked_yes_qty=acct.locked_shares[_YES],
            locked_no_qty=acct.locked_shares[_NO],
        )

    def owners(self) -> tuple[str, ...]:
        """Every owner that has an account, in order of first appearance."""
        return tuple(self._accounts)

    # --- orders ------------------------------------------------------------------------------------

    def submit(self, owner: str, cmd: Command, ts_ns: int) -> Report:
        """Apply one command of ``owner``: dispatch to ``place``, ``cancel``, ``cancel_all`` or ``merge``."""
        match cmd:
            case Place():
                return self.place(owner, cmd, ts_ns)
            case Cancel():
                return self.cancel(owner, cmd.client_id, ts_ns)
            case CancelAll():
                return self.cancel_all(owner, ts_ns)
            case Merge():
                self.merge(owner, cmd.qty)
                return Report()
            case _:
                assert_never(cmd)

    def place(self, owner: str, order: Place, ts_ns: int) -> Report:
        """Validate, match and possibly rest one limit order of ``owner``.

        GTD orders due at ``ts_ns`` expire first. A valid order gets ``Accepted`` (with its order id)
        before its fills; a FAK remainder is then ``Canceled``. Invalid orders, post-only orders that
        would cross, FOK orders that cannot fill entirely and FAK orders that cannot fill at all get a
        single ``Rejected`` and change nothing.

        Returns:
            The report; ``order_id`` is set when the order was accepted.
        """
        if self._gtd and self._gtd[0][0] <= ts_ns:
            self._expire_due(ts_ns)
        acct = self._accounts.get(owner) or self._account(owner)
        is_bid, ypx = yes_equivalent(order.outcome, order.side, order.px)
        opp = self._asks if is_bid else self._bids
        klimit = opp.sign * ypx
        crosses = opp.best <= klimit
        reason = self._check(acct, order, ts_ns, opp, klimit)
        if reason:
            self._execs.append(
                (owner, Rejected(market=self.market, client_id=order.client_id, ts_ns=ts_ns, reason=reason))
            )
            return self._flush(ts_ns)
        self._order_seq += 1
        oid = f"{self.id_prefix}o-{self._order_seq:06d}"
        o = _Order(acct, oid, self._order_seq, order, ts_ns, is_bid=is_bid, ypx=ypx)
        self._execs.append(
            (owner, Accepted(market=self.market, client_id=o.client_id, order_id=oid, ts_ns=ts_ns))
        )
        if crosses:
            self._match(o, opp, klimit, ts_ns)
        if o.leaves:
            if o.tif in _RESTING_TIFS:
                self._rest(o)
            else:
                self._execs.append(
                    (
                        owner,
                        Canceled(
                            market=self.market,
                            client_id=o.client_id,
                            ts_ns=ts_ns,
                            reason=REASON_FAK_REMAINDER,
                        ),
                    )
                )
        return self._flush(ts_ns, order_id=oid)

    def cancel(self, owner: str, client_id: str, ts_ns: int) -> Report:
        """Cancel one resting order of ``owner``; ``Report.error`` says so when there is none."""
        if self._gtd and self._gtd[0][0] <= ts_ns:
            self._expire_due(ts_ns)
        acct = self._accounts.get(owner)
        o = acct.orders.get(client_id) if acct is not None else None
        if o is None:
            return self._flush(ts_ns, error=REASON_NOT_CANCELED)
        self._cancel(o, REASON_USER_CANCELED, ts_ns)
        return self._flush(ts_ns)

    def cancel_all(self, owner: str, ts_ns: int, outcome: Outcome | None = None) -> Report:
        """Cancel every resting order of ``owner`` (only those on ``outcome``'s token if given)."""
        if self._gtd and self._gtd[0][0] <= ts_ns:
            self._expire_due(ts_ns)
        acct = self._accounts.get(owner)
        if acct is not None:
            for o in list(acct.orders.values()):
                if outcome is None or o.outcome == outcome:
                    self._cancel(o, REASON_USER_CANCELED, ts_ns)
        return self._flush(ts_ns)

    def expire(self, now_ns: int) -> Report:
        """Cancel every GTD order with ``expire_ns <= now_ns`` (reason ``expired``)."""
        self._expire_due(now_ns)
        return self._flush(now_ns)

    def set_tick(self, tick_px: Px) -> None:
        """Change the tick for new orders; resting orders stay where they are.

        Raises:
            ValueError: The tick is not one the venue uses (``core.units.TICKS_PX``).
        """
        _check_tick(tick_px)
        self.tick_px = tick_px

    def resolve(self, yes_won: bool, ts_ns: int) -> Report:
        """Cancel every resting order and pay 1 USDC per winning share; trading stops.

        Returns:
            The report, with one ``Settlement`` per owner (sorted by owner).
        """
        live = sorted((o for a in self._accounts.values() for o in a.orders.values()), key=lambda o: o.seq)
        for o in live:
            self._cancel(o, REASON_RESOLVED, ts_ns)
        self._gtd.clear()
        self.resolved = yes_won
        win = _YES if yes_won else _NO
        settlements = []
        for owner in sorted(self._accounts):
            acct = self._accounts[owner]
            yes_qty, no_qty = acct.shares
            payout = acct.shares[win] * SETTLE_PER_QTY_USDC6
            acct.cash += payout
            self._pool -= payout
            acct.shares[_YES] = acct.shares[_NO] = 0
            settlements.append(
                Settlement(
                    owner=owner, yes_qty=yes_qty, no_qty=no_qty, payout_usdc6=payout, cash_usdc6=acct.cash
                )
            )
        return msgspec.structs.replace(self._flush(ts_ns), settlements=tuple(settlements))

    # --- queries -----------------------------------------------------------------------------------

    def depth(self, outcome: Outcome, side: Side, n: int = 0) -> tuple[Level, ...]:
        """Levels ``(px, qty)`` of one side of one token's book, best first (all when ``n`` is 0).

        The NO book is the mirror of the YES book: NO bids are the YES asks at ``1 - p``.
        """
        half = self._half(outcome, side)
        pxs = sorted(half.levels, reverse=half.is_bid)
        if n:
            pxs = pxs[:n]
        levels = half.levels
        if outcome == _YES:
            return tuple((p, levels[p].qty) for p in pxs)
        return tuple((PX_ONE - p, levels[p].qty) for p in pxs)

    def best_bid(self, outcome: Outcome = Outcome.YES) -> Px | None:
        """Best bid of one token, or None when that side is empty."""
        return self._best(outcome, _BUY)

    def best_ask(self, outcome: Outcome = Outcome.YES) -> Px | None:
        """Best ask of one token, or None when that side is empty."""
        return self._best(outcome, _SELL)

    def snapshot(self, outcome: Outcome, ts_ns: int) -> BookSnapshot:
        """Full book of one token, levels best first, with the current tick and minimum size."""
        return BookSnapshot(
            market=self.market,
            outcome=outcome,
            ts_ns=ts_ns,
            bids=self.depth(outcome, _BUY),
            asks=self.depth(outcome, _SELL),
            tick_px=self.tick_px,
            min_qty=self.min_qty,
        )

    def queue(self, outcome: Outcome, side: Side, px: Px) -> tuple[OrderView, ...]:
        """Resting orders at one level of one token's book, in priority order (first to fill first)."""
        half = self._half(outcome, side)
        lvl = half.levels.get(px if outcome == _YES else PX_ONE - px)
        if lvl is None:
            return ()
        return tuple(_view(o) for o in lvl.orders if o.leaves)

    def open_orders(self, owner: str | None = None) -> tuple[OrderView, ...]:
        """Resting orders of ``owner`` (of everyone when None), oldest first."""
        accts: Iterable[_Account]
        if owner is None:
            accts = self._accounts.values()
        else:
            acct = self._accounts.get(owner)
            accts = () if acct is None else (acct,)
        live = sorted((o for a in accts for o in a.orders.values()), key=lambda o: o.seq)
        return tuple(_view(o) for o in live)

    def order(self, owner: str, client_id: str) -> OrderView | None:
        """One resting order of ``owner``, or None."""
        acct = self._accounts.get(owner)
        o = acct.orders.get(client_id) if acct is not None else None
        return None if o is None else _view(o)

    # --- internals ---------------------------------------------------------------------------------

    def _account(self, owner: str) -> _Account:
        acct = self._accounts.get(owner)
        if acct is None:
            acct = self._accounts[owner] = _Account(owner)
        return acct

    def _half(self, outcome: Outcome, side: Side) -> _Half:
        # YES bids are YES-equivalent bids; NO bids mirror the YES-equivalent asks.
        return self._bids if (side == _BUY) == (outcome == _YES) else self._asks

    def _best(self, outcome: Outcome, side: Side) -> Px | None:
        half = self._half(outcome, side)
        if half.best == _EMPTY:
            return None
        px = half.sign * half.best
        return px if outcome == _YES else PX_ONE - px

    def _check(self, acct: _Account, order: Place, ts_ns: int, opp: _Half, klimit: int) -> str:
        # Returns why the order is refused, or "" to accept it.
        crosses = opp.best <= klimit
        if self.resolved is not None:
            return REASON_RESOLVED
        px, qty, tif = order.px, order.qty, order.tif
        resting = tif in _RESTING_TIFS
        if resting and (qty < self.min_qty or qty <= 0):
            return (
                f"order {order.client_id} is invalid. Size ({format_qty(qty)}) lower than the minimum: "
                f"{format_qty(self.min_qty)}"
            )
        # Any order that executes on arrival (FOK/FAK always, GTC/GTD when it crosses and is not
        # post-only) must be worth the venue's marketable minimum at its limit.
        if (not resting or (crosses and not order.post_only)) and (
            qty <= 0 or px * qty < self.min_marketable_usdc6 * USDC10_PER_USDC6
        ):
            return (
                f"invalid amount for a marketable {order.side.name} order "
                f"(${format_usdc6(notional_usdc6(px, qty))}), "
                f"min size: ${format_usdc6(self.min_marketable_usdc6)}"
            )
        tick = self.tick_px
        if px % tick or not tick <= px <= PX_ONE - tick:
            return (
                f"order {order.client_id} is invalid. Price ({format_px(px)}) breaks minimum tick size rule: "
                f"{format_px(tick)}"
            )
        if order.post_only and not resting:
            return REASON_POST_ONLY_TIF
        if tif == "GTD" and order.expire_ns <= ts_ns:
            return REASON_EXPIRATION
        if order.client_id in acct.orders:
            return f"order {order.client_id} is invalid. Duplicated."
        if order.post_only and crosses:
            return REASON_POST_ONLY_CROSSES
        if self.enforce_balance:
            if order.side == _BUY:
                # In Usdc10: the exact notional, then the fee bound and the micro-USDC a taker's mint
                # legs may round up (module docstring), so the cash can never go negative.
                need = px * qty
                if crosses:
                    extra = fee_bound_usdc6(px, qty, self.fee_rate_ppm) + _mint_round_ups(opp, klimit, qty)
                    need += extra * USDC10_PER_USDC6
                if need > acct.cash * USDC10_PER_USDC6 - acct.locked_cash10:
                    return REASON_BALANCE
            elif qty > acct.shares[order.outcome] - acct.locked_shares[order.outcome]:
                return REASON_BALANCE
        if tif == "FOK" and _available(opp, klimit, qty) < qty:
            return REASON_FOK_KILLED
        if tif == "FAK" and not crosses:
            return REASON_FAK_NO_MATCH
        return ""

    def _match(self, taker: _Order, opp: _Half, klimit: int, ts_ns: int) -> None:
        levels = opp.levels
        sign = opp.sign
        touched = self._touched
        while taker.leaves and opp.best <= klimit:
            ypx = sign * opp.best
            lvl = levels[ypx]
            queue = lvl.orders
            while taker.leaves and queue:
                maker = queue[0]
                if not maker.leaves:
                    queue.popleft()
                    lvl.dead -= 1
                    continue
                qty = min(taker.leaves, maker.leaves)
                self._fill(taker, maker, ypx, qty, ts_ns)
                lvl.qty -= qty
                if not maker.leaves:
                    queue.popleft()
                    del maker.acct.orders[maker.client_id]
            touched[2 * ypx + opp.is_bid] = None
            if not lvl.qty:
                _drop_level(opp, ypx)

    def _fill(self, taker: _Order, maker: _Order, ypx: Px, qty: Qty, ts_ns: int) -> None:
        self._trade_seq += 1
        tid = f"{self.id_prefix}t-{self._trade_seq:06d}"
        t_out, t_side, m_out, m_side = taker.outcome, taker.side, maker.outcome, maker.side
        t_px = ypx if t_out == _YES else PX_ONE - ypx
        m_px = maker.px
        fee = taker_fee_usdc6(t_px, qty, self.fee_rate_ppm) if self.fee_rate_ppm else 0
        taker.leaves -= qty
        maker.leaves -= qty
        # Each party: BUY pays its cash and gets the shares, SELL the reverse (sides are +1/-1). The
        # maker's cash is notional_usdc6 (floored); the taker's is the same in a transfer and the rest
        # of the pairs' 1 USDC in a mint or merge, so the two legs of a pair add up to exactly 1 USDC.
        ta, ma = taker.acct, maker.acct
        m_cash = notional_usdc6(m_px, qty)
        if t_side == m_side:  # BUY x BUY mints a pair per share, SELL x SELL merges one
            t_cash = complement_notional_usdc6(m_px, qty)
            self._pool += t_side * qty * SETTLE_PER_QTY_USDC6
            kind = "mint" if t_side == _BUY else "merge"
        else:
            t_cash = m_cash
            kind = "transfer"
        ta.cash -= t_side * t_cash + fee
        ta.shares[t_out] += t_side * qty
        ma.cash -= m_side * m_cash
        ma.shares[m_out] += m_side * qty
        if m_side == _BUY:
            ma.locked_cash10 -= m_px * qty
        else:
            ma.locked_shares[m_out] -= qty
        self._fees += fee
        market = self.market
        self._execs.append(
            (
                ma.owner,
                Filled(
                    market=market,
                    client_id=maker.client_id,
                    ts_ns=ts_ns,
                    outcome=m_out,
                    side=m_side,
                    px=m_px,
                    qty=qty,
                    fee_usdc6=0,
                    liquidity="maker",
                    trade_id=tid,
                    leaves_qty=maker.leaves,
                ),
            )
        )
        self._execs.append(
            (
                ta.owner,
                Filled(
                    market=market,
                    client_id=taker.client_id,
                    ts_ns=ts_ns,
                    outcome=t_out,
                    side=t_side,
                    px=t_px,
                    qty=qty,
                    fee_usdc6=fee,
                    liquidity="taker",
                    trade_id=tid,
                    leaves_qty=taker.leaves,
                ),
            )
        )
        self._trades.append(
            Trade(
                trade_id=tid,
                ts_ns=ts_ns,
                yes_px=ypx,
                qty=qty,
                kind=kind,
                taker_owner=ta.owner,
                taker_order_id=taker.order_id,
                taker_client_id=taker.client_id,
                taker_outcome=t_out,
                taker_side=t_side,
                taker_px=t_px,
                taker_fee_usdc6=fee,
                maker_owner=ma.owner,
                maker_order_id=maker.order_id,
                maker_client_id=maker.client_id,
                maker_outcome=m_out,
                maker_side=m_side,
                maker_px=m_px,
            )
        )
        yes_aggressor = _BUY if taker.is_bid else _SELL
        self._prints.append(
            TradePrint(market=market, outcome=_YES, ts_ns=ts_ns, px=ypx, qty=qty, aggressor=yes_aggressor)
        )
        self._prints.append(
            TradePrint(
                market=market,
                outcome=_NO,
                ts_ns=ts_ns,
                px=PX_ONE - ypx,
                qty=qty,
                aggressor=_SELL if taker.is_bid else _BUY,
            )
        )

    def _rest(self, o: _Order) -> None:
        half = self._bids if o.is_bid else self._asks
        lvl = half.levels.get(o.ypx)
        if lvl is None:
            lvl = half.levels[o.ypx] = _Level()
            key = half.sign * o.ypx
            heap = half.heap
            if len(heap) > 2 * len(half.levels) + _HEAP_SLACK:
                heap[:] = [half.sign * p for p in half.levels if p != o.ypx]
                heapq.heapify(heap)
            heapq.heappush(heap, key)
            half.best = min(half.best, key)
        lvl.orders.append(o)
        lvl.qty += o.leaves
        acct = o.acct
        acct.orders[o.client_id] = o
        if o.side == _BUY:
            acct.locked_cash10 += o.px * o.leaves
        else:
            acct.locked_shares[o.outcome] += o.leaves
        if o.tif == "GTD":
            heapq.heappush(self._gtd, (o.expire_ns, o.seq, o))
        self._touched[2 * o.ypx + o.is_bid] = None

    def _cancel(self, o: _Order, reason: str, ts_ns: int) -> None:
        half = self._bids if o.is_bid else self._asks
        lvl = half.levels[o.ypx]
        leaves = o.leaves
        o.leaves = 0
        lvl.qty -= leaves
        acct = o.acct
        del acct.orders[o.client_id]
        if o.side == _BUY:
            acct.locked_cash10 -= o.px * leaves
        else:
            acct.locked_shares[o.outcome] -= leaves
        if not lvl.qty:
            _drop_level(half, o.ypx)
        else:
            lvl.dead += 1
            if lvl.dead > _QUEUE_SLACK and 2 * lvl.dead > len(lvl.orders):
                lvl.orders = deque(x for x in lvl.orders if x.leaves)
                lvl.dead = 0
        self._touched[2 * o.ypx + o.is_bid] = None
        self._execs.append(
            (acct.owner, Canceled(market=self.market, client_id=o.client_id, ts_ns=ts_ns, reason=reason))
        )

    def _expire_due(self, now_ns: int) -> None:
        gtd = self._gtd
        while gtd and gtd[0][0] <= now_ns:
            o = heapq.heappop(gtd)[2]
            if o.leaves:
                self._cancel(o, REASON_EXPIRED, now_ns)

    def _flush(self, ts_ns: int, *, order_id: str = "", error: str = "") -> Report:
        deltas: list[BookDelta] = []
        if self._touched:
            market = self.market
            bids, asks = self._bids.levels, self._asks.levels
            for key in self._touched:
                ypx = key >> 1
                is_bid = key & 1
                lvl = (bids if is_bid else asks).get(ypx)
                qty = lvl.qty if lvl is not None else 0
                yes_side, no_side = (_BUY, _SELL) if is_bid else (_SELL, _BUY)
                deltas.append(
                    BookDelta(market=market, outcome=_YES, ts_ns=ts_ns, side=yes_side, px=ypx, qty=qty)
                )
                deltas.append(
                    BookDelta(market=market, outcome=_NO, ts_ns=ts_ns, side=no_side, px=PX_ONE - ypx, qty=qty)
                )
            self._touched.clear()
        report = Report(
            execs=tuple(self._execs),
            deltas=tuple(deltas),
            prints=tuple(self._prints),
            trades=tuple(self._trades),
            order_id=order_id,
            error=error,
        )
        self._execs.clear()
        self._prints.clear()
        self._trades.clear()
        return report


def _check_tick(tick_px: Px) -> None:
    if tick_px not in TICKS_PX:
        ticks = ", ".join(format_px(t) for t in TICKS_PX)
        raise ValueError(f"invalid tick {format_px(tick_px)}: the venue's ticks are {ticks}")


def _available(half: _Half, klimit: int, want: Qty) -> Qty:
    # Live size at prices a limit reaches, counting only until ``want`` is covered (order is irrelevant).
    total = 0
    sign = half.sign
    for ypx, lvl in half.levels.items():
        if sign * ypx <= klimit:
            total += lvl.qty
            if total >= want:
                break
    return total


def _mint_round_ups(half: _Half, klimit: int, qty: Qty) -> int:
    # A dry run of ``_match`` for a BUY of ``qty`` up to ``klimit``: how many of its fills would be
    # mints (against a maker BUY of the other token) whose notional is not a whole micro-USDC. In each,
    # the taker's complement leg pays 1 micro-USDC above its own floor (never for 0.01-share sizes).
    left = qty
    extra = 0
    sign = half.sign
    for ypx in sorted((p for p in half.levels if sign * p <= klimit), key=lambda p: sign * p):
        for o in half.levels[ypx].orders:
            if not o.leaves:
                continue
            q = min(left, o.leaves)
            if o.side == _BUY and (o.px * q) % USDC10_PER_USDC6:
                extra += 1
            left -= q
            if not left:
                return extra
    return extra


def _drop_level(half: _Half, ypx: Px) -> None:
    del half.levels[ypx]
    if half.sign * ypx == half.best:
        heap, levels, sign = half.heap, half.levels, half.sign
        while heap and sign * heap[0] not in levels:
            heapq.heappop(heap)
        half.best = heap[0] if heap else _EMPTY


def _view(o: _Order) -> OrderView:
    return OrderView(
        order_id=o.order_id,
        owner=o.acct.owner,
        client_id=o.client_id,
        outcome=o.outcome,
        side=o.side,
        px=o.px,
        orig_qty=o.orig_qty,
        leaves_qty=o.leaves,
        tif=o.tif,
        expire_ns=o.expire_ns,
        ts_ns=o.ts_ns,
    )
