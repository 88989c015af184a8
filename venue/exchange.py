"""The simulated venue for one market: displayed (replayed or generated) liquidity plus our orders.

Deterministic; time is passed in. Paper trading uses this class unchanged, fed by the live feed.
Everything is handled on the YES book: market events arrive as YES events (producers map them
through ``core.yes_view``; a NO snapshot given here is mapped with ``to_yes``), and a BUY NO at
``q`` rests as a YES ask at ``1 - q``, its fills reported in its own token.

**Orders.** Post-only orders that would cross are rejected. Any other order that would execute on
arrival (FOK/FAK always, GTC/GTD when it crosses) must be worth at least $1 at its limit
(``invalid amount for a marketable BUY order ($0.5), min size: $1``); it then takes the displayed
liquidity and pays Polymarket's taker fee. Sells need shares we hold and do not already offer.
Maker fills carry the maker rebate's upper bound (``core.units.maker_rebate_usdc6``).

**Liquidity is used once.** Displayed liquidity that arrives across one of our resting orders
(a level update or a ``book`` snapshot) fills it at our price, and liquidity we take is gone, but
the recorded data knows nothing of our fills and keeps showing both. Per level we remember what we
used of it; the book we trade against shows the data's size minus that. A decrease in the data takes
the used part first: it sat at the front of the level (it was there before anything that joined
later), so the data's later trades there consumed it first; a cancel is attributed the same way
for want of information. Once the data shows the level at or below what is left to us (or gone),
nothing is remembered. A snapshot that still shows a 10-share ask we already bought fills nothing.

**Queue position.** Our orders are not in the data, so each carries a position: the size ahead of
it (displayed size, plus our own earlier orders at that price). A trade print at our price consumes
what is ahead first; what it leaves fills us (at most what printed, shared by our orders there in
time priority), and an order a print reached is at the front from then on: every later print there
fills it. A trade through our price, or liquidity arriving across it, fills us at our price without
moving us in the queue (our later orders there move up by it). Nothing is ever ahead of an order
but the displayed size and our earlier orders there.

A trade shows up twice, as a print and as its level's decrease, in either order (the venue and the
exchange emulator send the decrease first, ``price_change`` then ``last_trade_price``; the synthetic
and BBO sources the print first), any time apart. Per level, prints and decreases pair one to one
by size: a print explains the unexplained decreases before it, newest first (a trade's decrease
comes just before its print), and a decrease explains the prints still waiting for theirs. An
increase at a level closes it: the decreases it holds unexplained are cancels from then on (a
trade's two halves are sent together, nothing joins the level between them). The queue advances
once per trade:

* a print advances us by its size at once, unless it explains decreases that already moved us;
* an unexplained decrease is a cancel for now: under ``risk_averse`` it only bounds our position by
  the new size (cancels are assumed behind us); under ``probabilistic`` it also moves us up by the
  share of it expected ahead of us, ``d * f(ahead) / (f(ahead) + f(behind))`` with ``f(x) = x**power``;
* when a print later explains such a decrease, the decrease is re-read as that trade: the bound it
  set is raised by the explained size (and so is any bound set since, which counted without that
  print), and its probabilistic move is taken back in proportion. The result equals what the print
  followed by its decrease gives. Under ``risk_averse`` it is exact whenever the pairing is right;
  under ``probabilistic`` when nothing else happens at that level in between (a cancel in between
  was split with the position known then).

A new order joins behind the displayed size less the prints still waiting for their decrease (they
already took their liquidity), and a print that later explains a decrease from before it joined
does not move it.

What remains ambiguous, and how it is resolved:

* a decrease, then (nothing added to the level in between) a print, is that trade's two halves in
  the venue's order, or a cancel and a trade whose own decrease is still to come in a print-first
  feed. It is read as the former. In a print-first feed the position is exact again once the
  trade's decrease arrives, but the print itself moved us less (by up to the bound the cancel set),
  so a fill it would have given may not be made;
* a print whose decrease comes later explains the next decrease at its level, even a cancel that
  came in between (which then bounds us only when the trade's own decrease arrives and is taken
  for a cancel);
* the two halves of a trade sent apart with an increase at that level between them count as a
  cancel and a separate trade (the print advances us once more).

On the shipped synthetic scenario (print first) fills and volume come within 1% of the same tape
with each trade's halves swapped into the venue's order, where the pairing is exact. No time window
is used; an order remembers at most ``MAX_PENDING`` unexplained decreases at its price (older ones
become final cancels for it).

**Next to hftbacktest** (``hftbacktest/src/backtest/models/queue.rs``). ``RiskAdverseQueueModel``:
``front`` starts at the displayed size, ``trade`` subtracts the print, ``depth`` clips ``front`` to
the new size, a negative ``front`` fills. ``ProbQueueModel``: the same, but a decrease net of the
trades printed since the last depth change is split ahead/behind with ``prob = f(back) / (f(back) +
f(front))`` (``PowerProbQueueFunc``); ``front`` moves by ``(1 - prob) * chg`` and is clipped to the
new size. Ours is the same model with three differences, each for a reason: (1) the pairing above
replaces hftbacktest's "prints before the depth change" netting, which double counts when the
decrease comes first (the venue's order) and forgets unmatched print size at every depth change;
(2) our own earlier orders at a price count as ahead and never trade twice; (3) a probabilistic move
never passes the size ahead (hftbacktest's estimate can go below zero and fill an order on a cancel).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final, Literal

from core.book import L2Book
from core.markets import MarketInfo
from core.messages import (
    Accepted,
    BookSnapshot,
    Cancel,
    Canceled,
    Command,
    ExecEvent,
    Filled,
    Merge,
    Merged,
    MergeFailed,
    Place,
    Rejected,
)
from core.units import (
    NEVER_NS,
    PX_ONE,
    USDC6_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Side,
    complement_notional_usdc6,
    format_qty,
    format_usdc6,
    maker_rebate_usdc6,
    notional_usdc6,
    opposite,
    taker_fee_usdc6,
)
from core.yes_view import to_yes
from venue.structs import Fill, QueueModel

#: The venue's minimum notional of an order that executes on arrival (any TIF), in Usdc6.
MIN_MARKETABLE_USDC6: Final = USDC6_ONE
#: Unexplained decreases an order remembers at its price (older ones become final cancels for it).
MAX_PENDING: Final = 64

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_YES: Final = Outcome.YES  # (an enum member read from its class is a slow lookup: once per order)
_ASK: Final = 16_384  # level keys: a bid at px is px, an ask px + _ASK
_INF: Final = NEVER_NS
_ZEROS: Final = (0,) * (PX_ONE + 1)


class _Queue:
    """Our resting orders at one price (oldest first) and that level's records.

    ``printed``: size printed at this level since the queue exists. ``rid``/``rem``/``cum``: the
    level's unexplained decreases as a stack, oldest first: record ids (increasing), the size of
    each still unexplained, and the running sum of ``rem``. Prints explain the newest first.
    """

    __slots__ = ("cum", "orders", "printed", "rem", "rid")

    def __init__(self) -> None:
        self.orders: list[SimOrder] = []
        self.printed = 0
        self.rid: list[int] = []
        self.rem: list[int] = []
        self.cum: list[int] = []

    def reset(self) -> None:
        """As new, for reuse at another price: an emptied queue's level records and prints start again."""
        self.printed = 0
        if self.rid:
            self.rid.clear()
            self.rem.clear()
            self.cum.clear()

    def below(self, rid: int) -> int:
        """Unexplained size of the records up to ``rid`` (that decrease and the ones before it)."""
        i = bisect_right(self.rid, rid)
        return self.cum[i - 1] if i else 0

    def left(self, rid: int) -> int:
        """Unexplained size left of record ``rid`` (0 once explained)."""
        ids = self.rid
        i = bisect_left(ids, rid)
        return self.rem[i] if i < len(ids) and ids[i] == rid else 0

    def push(self, rid: int, size: int) -> None:
        """A new unexplained decrease."""
        self.rid.append(rid)
        self.rem.append(size)
        self.cum.append((self.cum[-1] if self.cum else 0) + size)

    def explain(self, size: int) -> None:
        """A print explains ``size`` of the unexplained decreases, the newest first."""
        rem, cum = self.rem, self.cum
        while size > 0 and rem:
            take = rem[-1] if rem[-1] < size else size
            rem[-1] -= take
            cum[-1] -= take
            size -= take
            if not rem[-1]:
                rem.pop()
                cum.pop()
                self.rid.pop()


class SimOrder:
    """One of our resting orders at the simulated venue.

    Its position is kept as bounds on ``ahead + printed`` (the size ahead plus the level's prints),
    which prints leave unchanged: ``fin`` is the tightest final bound, and ``pending`` holds the
    bounds set while unexplained decreases were waiting, each ``[base, rid, below, size, move]``:
    ``rid`` is the newest decrease record it came after (or its own), ``below`` the unexplained size
    up to that record then; as prints explain those decreases the bound rises by what they explain
    (``value = base + below - queue.below(rid)``), and ``move``, the probabilistic advance its own
    ``size`` of decrease made, is taken back in proportion. ``ahead`` is the size ahead of the
    order, our earlier orders at its price included.
    """

    __slots__ = (
        "client_id",
        "fin",
        "order_id",
        "outcome",
        "pending",
        "qty",
        "queue",
        "side",
        "yes_px",
        "yes_side",
    )

    def __init__(
        self, client_id: str, order_id: str, outcome: Outcome, side: Side, yes_px: int, qty: int
    ) -> None:
        self.client_id = client_id
        self.order_id = order_id
        self.outcome = outcome
        self.side = side
        self.yes_side = side if outcome is _YES else opposite(side)
        self.yes_px = yes_px
        self.qty = qty
        self.queue = _NO_QUEUE  # set when it joins its price
        self.fin = 0
        self.pending: list[list[int]] | None = None

    @property
    def ahead(self) -> int:
        """Size ahead of this order at its price (displayed size and our earlier orders there)."""
        return _bound(self) - self.queue.printed


_NO_QUEUE: Final = _Queue()


def _bound(o: SimOrder) -> int:
    # The order's bound on ``ahead + printed`` (see SimOrder); folds the bounds that became final.
    pend = o.pending
    if not pend:
        return o.fin
    q = o.queue
    while pend and not q.below(pend[0][1]):
        base, _, below, _, _ = pend.pop(0)  # all explained, its move all taken back
        o.fin = min(o.fin, base + below)
    if not pend:
        o.pending = None
        return o.fin
    best = _INF
    moved = 0  # probabilistic moves made after the bound at hand, less what was taken back
    for base, rid, below, size, move in reversed(pend):
        best = min(best, base + below - q.below(rid) - moved)
        if move:
            moved += move * q.left(rid) // size
    return min(best, o.fin - moved)


def _fold_oldest(o: SimOrder) -> None:
    # Make the oldest pending bound final as it stands (its decrease is a cancel from now on).
    pend = o.pending
    assert pend
    q = o.queue
    base, rid, below, size, move = pend.pop(0)
    left = move * q.left(rid) // size if move else 0
    o.fin = min(o.fin - left, base + below - q.below(rid))


class SimExchange:
    """One market's simulated venue (see the module docstring)."""

    def __init__(
        self,
        info: MarketInfo,
        queue: QueueModel | None = None,
        owner: str = "us",
        *,
        shown: L2Book | None = None,
    ) -> None:
        """Create an empty venue for ``info``.

        ``shown``: an empty book that holds the data's own sizes, for others to read too (the
        simulator shares it with the session when the feed has no latency). The venue keeps it
        current; while we use none of the liquidity it shows, it is also the book we trade against.
        """
        self.info = info
        self.market = info.market
        #: The displayed book as we can trade it: the data's sizes less the liquidity we used.
        self.book = shown if shown is not None else L2Book(tick_px=info.tick_px, min_qty=info.min_qty)
        #: The data's own book when one was given (else None). It is ``book`` itself while nothing
        #: is used; ``book`` becomes a copy of it when we first use liquidity, and is ``shown`` again
        #: once the data shows nothing we used (``_fork`` is ``shown`` while they are apart).
        self.shown = shown
        self._fork: L2Book | None = None
        self.queue = queue or QueueModel()
        self.prob = self.queue.model == "probabilistic"
        self.power = self.queue.power
        self.fee_rate_ppm = info.fee_rate_ppm
        self.rebate_ppm = info.rebate_ppm
        self.owner = owner
        self.orders: dict[str, SimOrder] = {}
        self.held = {Outcome.YES: 0, Outcome.NO: 0}  # our shares, from our fills
        #: Twice the last two-sided mid (-1 before any): the mark when the book ends one-sided.
        self.last_mid2 = -1
        #: Per price and side: unexplained prints (> 0) or unexplained decreases (< 0) of the data.
        #: Flat lists like the book's (not a dict by level key): every decrease in the data writes
        #: here, and a list item costs less than a dict lookup and delete (``docs/simulation.md``).
        self._pend_bids: list[int] = [0] * (PX_ONE + 1)
        self._pend_asks: list[int] = [0] * (PX_ONE + 1)
        #: Per level key: liquidity we used that the data still shows.
        self._used: dict[int, int] = {}
        self._rid = 0  # ids of unexplained decreases at our prices
        self.bids: dict[int, _Queue] = {}  # our resting YES-equivalent bids by price
        self.asks: dict[int, _Queue] = {}
        #: The same queues by price in flat lists (None: none of ours there), for the per-event paths:
        #: every replayed level and print looks its price up, and a list item costs less than ``get``.
        self._bid_q: list[_Queue | None] = [None] * (PX_ONE + 1)
        self._ask_q: list[_Queue | None] = [None] * (PX_ONE + 1)
        #: Queues emptied by our last order there leaving, reset (``_Queue()`` as new), for the next
        #: price we join: nearly every place makes a queue and its cancel empties it.
        self._spare: list[_Queue] = []
        self.our_bid = -1  # best price of our bids (-1: none)
        self.our_ask = PX_ONE + 1
        self.order_seq = 0
        self.trade_seq = 0
        self.fills: list[Fill] = []
        self.resolved = False
        # Quote statistics, integrated over time while we rest on both sides.
        self._stat_ts = -1
        self.two_sided_ns = 0
        self.spread_px_ns = 0
        self.first_ts = -1
        self.last_ts = 0

    # --- market data -------------------------------------------------------------------------------

    def on_snapshot(self, ev: BookSnapshot) -> list[ExecEvent]:
        """Replace the displayed book: each changed level counts as a level update, then crossing fills."""
        self._touch(ev.ts_ns)
        if ev.outcome is not Outcome.YES:
            yes = to_yes(ev)
            assert isinstance(yes, BookSnapshot)
            ev = yes
        book = self.book
        ts = ev.ts_ns
        # Every level the data showed (used liquidity included) or shows now, as it was for us.
        used = self._used
        before = dict(book.levels(_BUY))
        before.update((px + _ASK, q) for px, q in book.levels(_SELL))
        for key in used:
            before.setdefault(key, 0)
        book.apply_snapshot(ev.bids, ev.asks, ts, ev.tick_px, ev.min_qty)
        if self._fork is not None:
            self._fork.apply_snapshot(ev.bids, ev.asks, ts, ev.tick_px, ev.min_qty)
        keys = set(before)
        keys.update(px for px, _ in ev.bids)
        keys.update(px + _ASK for px, _ in ev.asks)
        for key in sorted(keys):
            old = before.get(key, 0)
            data_old = old + used.get(key, 0)
            if key >= _ASK:
                px = key - _ASK
                if book.asks[px] != data_old or key in used:
                    self._level(_SELL, px, key, book.asks[px], old, data_old, self.asks.get(px), ts)
            elif book.bids[key] != data_old or key in used:
                self._level(_BUY, key, key, book.bids[key], old, data_old, self.bids.get(key), ts)
        if 0 <= book.bid_px < book.ask_px <= PX_ONE:
            self.last_mid2 = book.bid_px + book.ask_px
        out: list[ExecEvent] = []
        # Displayed liquidity across our orders fills them, best level first, each level once.
        # (``self.book``, not ``book``: what we use is taken from a copy of a shared book.)
        step = book.scan_step
        px = book.ask_px
        while px <= self.our_bid:
            q = self.book.asks[px]
            if q and self._cross_fill(_BUY, px, q, ts, out) < q:
                break
            px += step
        px = self.book.bid_px
        while px >= 0 and px >= self.our_ask:
            q = self.book.bids[px]
            if q and self._cross_fill(_SELL, px, q, ts, out) < q:
                break
            px -= step
        if self._fork is not None and not self._used:
            self._unfork()
        return out

    def set_tick(self, tick_px: int) -> None:
        """The venue's tick changed; the book is reseeded by the next snapshot (a new epoch)."""
        self.book.set_tick(tick_px)
        self.book.clear()  # what we used stays used: the next snapshot may show it again
        if self._fork is not None:
            self._fork.set_tick(tick_px)
            self._fork.clear()
        self._pend_bids[:] = _ZEROS
        self._pend_asks[:] = _ZEROS
        for queue in (*self.bids.values(), *self.asks.values()):
            _settle(queue)  # nothing from the old epoch will explain their decreases

    def on_level(self, side: Side, px: int, qty: int, ts_ns: int) -> list[ExecEvent] | None:
        """A displayed level changed to ``qty`` in total. Returns fills of ours, or None."""
        # Called once per replayed level, so written for it (``docs/simulation.md``, "Speed"): the
        # side is tested once, nothing is read twice, and a level where we used no liquidity (all
        # but a few) is handled here, as ``_level`` would with nothing used, without calling it.
        book = self.book
        if side is _BUY:
            old, queue, pend = book.bids[px], self._bid_q[px], self._pend_bids
        else:
            old, queue, pend = book.asks[px], self._ask_q[px], self._pend_asks
        used = self._used
        if used and (px if side is _BUY else px + _ASK) in used:
            key = px if side is _BUY else px + _ASK
            new = self._level(side, px, key, qty, old, old + used[key], queue, ts_ns)
            if self._fork is not None and not used:
                self._unfork()
        else:
            new = qty
            # (At our price an unchanged size leaves our own book as it is, as in ``_level``.)
            if (
                (qty != old or queue is None or book is self.shown)
                and book.set_level(side, px, qty, ts_ns)
                and 0 <= book.bid_px < book.ask_px <= PX_ONE
            ):
                self.last_mid2 = book.bid_px + book.ask_px
            if self._fork is not None:
                self._fork.set_level(side, px, qty, ts_ns)
            if qty < old:
                # Pair the decrease with prints; at our price, what is unexplained moves our queue.
                v = pend[px]
                nv = pend[px] = v + qty - old
                if queue is not None:
                    if nv < 0:
                        self._unexplained(queue, qty, old - qty if v <= 0 else old - qty - v)
                    else:
                        _bound_by(queue, qty, False)
            elif qty > old and pend[px] < 0:
                pend[px] = 0  # an increase closes the level: its unexplained decreases were cancels
                if queue is not None:
                    _settle(queue)
        if new > old:
            # Liquidity arriving at or across our opposite orders: in the real book it would hit us.
            if side is _BUY:
                if px >= self.our_ask:
                    out: list[ExecEvent] = []
                    self._cross_fill(_SELL, px, new - old, ts_ns, out)
                    return out
            elif px <= self.our_bid:
                out = []
                self._cross_fill(_BUY, px, new - old, ts_ns, out)
                return out
        return None

    def _level(
        self,
        side: Side,
        px: int,
        key: int,
        data: int,
        old: int,
        data_old: int,
        queue: _Queue | None,
        ts_ns: int,
    ) -> int:
        # The data set a level to ``data`` (it showed ``data_old``; we could trade ``old`` of it).
        # Returns what we can trade now; pairs a decrease with prints and updates our queue there.
        book = self.book
        used = self._used
        new = data
        if data_old != old:  # we used some of what the data shows
            if data >= data_old:
                new = old + data - data_old
            else:
                new = min(old, data)  # a decrease takes the used part first
                if data > new:
                    used[key] = data - new
                else:
                    del used[key]
        if (
            # (The data's own book, when shared, sees every level as it comes: its readers do.)
            ((book.bids[px] if side is _BUY else book.asks[px]) != new or book is self.shown)
            and book.set_level(side, px, new, ts_ns)
            and 0 <= book.bid_px < book.ask_px <= PX_ONE
        ):
            self.last_mid2 = book.bid_px + book.ask_px
        if self._fork is not None:
            self._fork.set_level(side, px, data, ts_ns)  # the data's own book
        pend = self._pend_bids if side is _BUY else self._pend_asks
        if data < data_old:
            d = data_old - data
            v = pend[px]
            nv = pend[px] = v - d
            if queue is not None:
                if nv < 0:
                    # Unexplained (for now): a cancel, or a trade whose print is still to come.
                    self._unexplained(queue, new, d if v <= 0 else d - v)
                else:
                    _bound_by(queue, new, False)  # prints explained it (they may have filled us)
        elif data > data_old and pend[px] < 0:
            # An increase closes the level: its unexplained decreases were cancels.
            pend[px] = 0
            if queue is not None:
                _settle(queue)
        return new

    def _unexplained(self, queue: _Queue, new: int, u: int) -> None:
        # A decrease of ``u`` at our price that no print explains (yet): bound each order by the new
        # size (its own earlier orders ahead), and under ``probabilistic`` move it up by the share of
        # ``u`` expected ahead of it.
        self._rid += 1
        rid = self._rid
        cum = queue.cum  # (``queue.push``, inline: a decrease at our price is the common case here)
        below = (cum[-1] if cum else 0) + u
        queue.rid.append(rid)
        queue.rem.append(u)
        cum.append(below)
        printed = queue.printed
        before = new + u
        n = self.power
        prob = self.prob
        own = 0
        for o in queue.orders:
            base = new + own + printed
            move = 0
            if prob:
                front = _bound(o) - printed - own
                if front > 0:
                    behind = before - front if before > front else 0
                    move = min(front, _share(u, front, behind, n))
            pend = o.pending
            # A bound that can never be the tightest is not kept (a tighter older one only rises
            # by less than it as prints explain decreases).
            if move or (
                base < o.fin and not (pend and pend[-1][0] + pend[-1][2] - queue.below(pend[-1][1]) <= base)
            ):
                if pend is None:
                    pend = o.pending = []
                pend.append([base, rid, below, u, move])
                if len(pend) > MAX_PENDING:
                    _fold_oldest(o)
            own += o.qty

    def on_trade(self, aggressor: Side, px: int, qty: int, ts_ns: int) -> list[ExecEvent] | None:
        """A trade printed at ``px``: it may reach our resting orders on the side it hit."""
        if aggressor is _SELL:
            levels, pend, queue = self.bids, self._pend_bids, self._bid_q[px]
        else:
            levels, pend, queue = self.asks, self._pend_asks, self._ask_q[px]
        v = pend[px]
        pend[px] = v + qty
        if queue is not None:
            if v < 0:
                queue.explain(qty if qty < -v else -v)
            queue.printed += qty
        # Our prices the trade went through (none when it printed at our best, the usual case).
        if aggressor is _SELL:
            if px > self.our_bid:
                return None
            through = sorted((p for p in levels if p > px), reverse=True) if px < self.our_bid else ()
        else:
            if px < self.our_ask:
                return None
            through = sorted(p for p in levels if p < px) if px > self.our_ask else ()
        out: list[ExecEvent] = []
        left = qty
        for p in through:  # the trade went through our price: we were first, at our price
            q = levels[p]
            for o in list(q.orders):
                if left <= 0:
                    break
                take = min(o.qty, left)
                left -= take
                self._fill(o, take, p, "maker", ts_ns, out, shift=True)
            if left <= 0:
                break
        if queue is not None:
            # At our price the size ahead trades first; our earlier orders there count as ahead.
            printed = queue.printed
            for o in list(queue.orders):
                reach = printed - (_bound(o) if o.pending else o.fin)
                if reach <= 0:
                    continue
                o.fin = printed  # the print reached it: it is at the front now
                o.pending = None
                if left > 0:
                    take = min(o.qty, reach, left)
                    left -= take
                    self._fill(o, take, px, "maker", ts_ns, out)
            if queue.orders:
                shown = self.book.bids[px] if aggressor is _SELL else self.book.asks[px]
                _bound_by(queue, shown, True)
        return out

    # --- our orders --------------------------------------------------------------------------------

    def place(self, cmd: Place, ts_ns: int) -> list[ExecEvent]:
        """Accept, reject, or (if it crosses and may take) execute one of our orders."""
        if ts_ns > self._stat_ts or self.first_ts < 0:  # (else ``_touch`` has nothing to do)
            self._touch(ts_ns)
        # The command's fields read once (a Struct's attribute is a generic lookup in the compiled build).
        client_id, outcome, side, px, qty = cmd.client_id, cmd.outcome, cmd.side, cmd.px, cmd.qty
        tif = cmd.tif
        takes = tif == "FOK" or tif == "FAK"  # noqa: PLR1714 (two compares: no tuple)
        book = self.book
        tick = book.tick_px
        reason = ""
        if self.resolved:
            reason = "market is resolved"
        elif client_id in self.orders:
            reason = f"duplicate client id {client_id}"
        elif px % tick or not tick <= px <= PX_ONE - tick:
            reason = f"invalid price {px}: must be a multiple of the tick {tick} in [{tick}, {PX_ONE - tick}]"
        elif qty < (1 if takes else max(1, book.min_qty)):
            # The venue's minimum size binds resting orders; marketable ones need $1 (below).
            reason = f"size {format_qty(qty)} below the minimum {format_qty(book.min_qty)}"
        elif takes and cmd.post_only:
            reason = "post-only is only allowed with GTC/GTD"
        elif side is _SELL and qty > self.held[outcome] - self._reserved(outcome):
            # Polymarket cannot be shorted: a sell needs shares we hold and do not already offer.
            reason = "not enough balance / allowance"
        if reason:
            return [Rejected(market=self.market, client_id=client_id, ts_ns=ts_ns, reason=reason)]
        yes = outcome is _YES
        yes_px = px if yes else PX_ONE - px
        is_bid = (side is _BUY) == yes
        crosses = (book.ask_px <= yes_px) if is_bid else (book.bid_px >= yes_px)
        if crosses and cmd.post_only:
            reason = "invalid post-only order: order crosses book"
        elif (crosses or takes) and px * qty < MIN_MARKETABLE_USDC6 * USDC10_PER_USDC6:
            # The venue's minimum for any order that executes on arrival, whatever its TIF.
            reason = (
                f"invalid amount for a marketable {side.name} order "
                f"(${format_usdc6(notional_usdc6(px, qty))}), "
                f"min size: ${format_usdc6(MIN_MARKETABLE_USDC6)}"
            )
        if reason:
            return [Rejected(market=self.market, client_id=client_id, ts_ns=ts_ns, reason=reason)]
        self.order_seq += 1
        order = SimOrder(client_id, f"sim-{self.market}-{self.order_seq}", outcome, side, yes_px, qty)
        out: list[ExecEvent] = []
        if crosses:
            if tif == "FOK" and self._available(order) < order.qty:
                out.append(
                    Canceled(
                        market=self.market,
                        client_id=client_id,
                        ts_ns=ts_ns,
                        reason="order couldn't be fully filled. FOK orders are fully filled or killed.",
                    )
                )
                return out
            self._take(order, ts_ns, out)
            if order.qty <= 0:
                return out
        if takes:
            out.append(
                Canceled(market=self.market, client_id=client_id, ts_ns=ts_ns, reason="unfilled remainder")
            )
            return out
        self._join(order, is_bid)
        self.orders[client_id] = order
        if is_bid:
            if yes_px > self.our_bid:  # noqa: PLR1730 (a compare: max() costs a call per order)
                self.our_bid = yes_px
        elif yes_px < self.our_ask:
            self.our_ask = yes_px
        accepted = Accepted(market=self.market, client_id=client_id, order_id=order.order_id, ts_ns=ts_ns)
        if out:
            out.insert(0, accepted)
            return out
        return [accepted]

    def _join(self, order: SimOrder, is_bid: bool) -> None:
        # Behind the displayed size (less the prints still waiting for their decrease: they took
        # their liquidity already) and behind our own earlier orders at this price.
        px = order.yes_px
        levels = self.bids if is_bid else self.asks
        queue = levels.get(px)
        if queue is None:
            spare = self._spare
            queue = levels[px] = spare.pop() if spare else _Queue()
            (self._bid_q if is_bid else self._ask_q)[px] = queue
        shown = self.book.bids[px] if is_bid else self.book.asks[px]
        v = (self._pend_bids if is_bid else self._pend_asks)[px]
        if v > 0:
            shown = shown - v if shown > v else 0
        base = shown + queue.printed
        for o in queue.orders:
            base += o.qty
        if v < 0:
            # Decreases before we joined that a later print explains were that trade: it is
            # already out of the displayed size, so that print does not move us.
            if not queue.rid:
                self._rid += 1
                queue.push(self._rid, -v)
            order.fin = _INF
            order.pending = [[base, queue.rid[-1], queue.cum[-1], 0, 0]]
        else:
            order.fin = base
        order.queue = queue
        queue.orders.append(order)

    def apply(self, cmd: Command, ts_ns: int) -> list[ExecEvent]:
        """Carry out one command of ours (place, cancel, cancel-all or merge) at ``ts_ns``."""
        if isinstance(cmd, Place):
            return self.place(cmd, ts_ns)
        if isinstance(cmd, Cancel):
            return self.cancel(cmd.client_id, ts_ns)
        if isinstance(cmd, Merge):
            return self.merge(cmd, ts_ns)
        return self.cancel_all(ts_ns)

    def merge(self, cmd: Merge, ts_ns: int) -> list[ExecEvent]:
        """Merge ``cmd.qty`` YES+NO pairs of ours into collateral: only shares no resting sell offers.

        The shares leave at once (our fills' cash is the session's, so only the shares are kept here);
        a merge of shares we do not hold free, or after resolution (the venue redeems then), fails.
        """
        self._touch(ts_ns)
        free = min(self.held[o] - self._reserved(o) for o in (Outcome.YES, Outcome.NO))
        reason = ""
        if self.resolved:
            reason = "market is resolved"
        elif not 0 < cmd.qty <= free:
            reason = f"cannot merge {format_qty(cmd.qty)} pairs: {format_qty(max(free, 0))} free"
        if reason:
            return [
                MergeFailed(
                    market=self.market, merge_id=cmd.merge_id, ts_ns=ts_ns, qty=cmd.qty, reason=reason
                )
            ]
        self.held[Outcome.YES] -= cmd.qty
        self.held[Outcome.NO] -= cmd.qty
        return [Merged(market=self.market, merge_id=cmd.merge_id, ts_ns=ts_ns, qty=cmd.qty)]

    def cancel(self, client_id: str, ts_ns: int) -> list[ExecEvent]:
        """Cancel one of our orders (nothing if it already filled or was cancelled)."""
        if ts_ns > self._stat_ts or self.first_ts < 0:  # (else ``_touch`` has nothing to do)
            self._touch(ts_ns)
        o = self.orders.get(client_id)
        if o is None:
            return []
        self._remove(o)
        return [Canceled(market=self.market, client_id=client_id, ts_ns=ts_ns, reason="canceled")]

    def cancel_all(self, ts_ns: int, reason: str = "canceled") -> list[ExecEvent]:
        """Cancel every order of ours."""
        self._touch(ts_ns)
        out: list[ExecEvent] = []
        for cid in list(self.orders):
            self._remove(self.orders[cid])
            out.append(Canceled(market=self.market, client_id=cid, ts_ns=ts_ns, reason=reason))
        return out

    def resolve(self, ts_ns: int) -> list[ExecEvent]:
        """The market resolved: every resting order is cancelled; nothing trades any more."""
        out = self.cancel_all(ts_ns, "market resolved")
        self.resolved = True
        return out

    # --- internals ---------------------------------------------------------------------------------

    def _reserved(self, outcome: Outcome) -> int:
        return sum(o.qty for o in self.orders.values() if o.outcome is outcome and o.side is _SELL)

    def _available(self, order: SimOrder) -> int:
        book = self.book
        if order.yes_side is _BUY:
            return sum(q for p, q in book.levels(_SELL) if p <= order.yes_px)
        return sum(q for p, q in book.levels(_BUY) if p >= order.yes_px)

    def _take(self, order: SimOrder, ts_ns: int, out: list[ExecEvent]) -> None:
        # Walk the displayed book from the best price; what we take is used up (module docstring).
        buy = order.yes_side is _BUY
        while order.qty > 0:
            book = self.book  # (a shared book is copied when we first use some of it)
            p = book.ask_px if buy else book.bid_px
            if (buy and (p > PX_ONE or p > order.yes_px)) or (not buy and (p < 0 or p < order.yes_px)):
                break
            avail = book.asks[p] if buy else book.bids[p]
            take = min(avail, order.qty)
            self._use(_SELL if buy else _BUY, p, take, ts_ns)
            self._fill(order, take, p, "taker", ts_ns, out, resting=False)

    def _use(self, side: Side, px: int, qty: int, ts_ns: int) -> None:
        # We used ``qty`` of the displayed level: it is gone for us until the data shows it gone.
        if self.book is self.shown:  # (a shared book keeps showing the data's sizes)
            self._fork = self.shown
            self.book = self.book.copy()
        book = self.book
        key = px if side is _BUY else px + _ASK
        new = (book.bids[px] if side is _BUY else book.asks[px]) - qty
        self._used[key] = self._used.get(key, 0) + qty
        if book.set_level(side, px, new, ts_ns) and 0 <= book.bid_px < book.ask_px <= PX_ONE:
            self.last_mid2 = book.bid_px + book.ask_px
        queue = (self.bids if side is _BUY else self.asks).get(px)
        if queue is not None:  # our own orders there (a self-cross): bounded by what is left
            _bound_by(queue, new, False)

    def _cross_fill(self, our_side: Side, px: int, qty: int, ts_ns: int, out: list[ExecEvent]) -> int:
        # Displayed liquidity arrived across our resting orders: we trade first, at our price, and
        # use it up. Returns how much of ``qty`` filled us.
        left = qty
        if our_side is _BUY:
            levels = self.bids
            prices = sorted((p for p in levels if p >= px), reverse=True)
        else:
            levels = self.asks
            prices = sorted(p for p in levels if p <= px)
        for p in prices:
            for o in list(levels[p].orders):
                if left <= 0:
                    break
                take = min(o.qty, left)
                left -= take
                self._fill(o, take, p, "maker", ts_ns, out, shift=True)
            if left <= 0:
                break
        if left < qty:
            self._use(opposite(our_side), px, qty - left, ts_ns)
        return qty - left

    def _fill(
        self,
        o: SimOrder,
        qty: int,
        yes_px: int,
        liquidity: Literal["maker", "taker"],
        ts_ns: int,
        out: list[ExecEvent],
        resting: bool = True,
        shift: bool = False,
    ) -> None:
        # ``shift``: a fill from outside the level's prints (a cross or a trade through our price):
        # our later orders at this price move up by it; this one keeps its place among the others.
        if ts_ns > self._stat_ts or self.first_ts < 0:  # (else ``_touch`` has nothing to do)
            self._touch(ts_ns)
        own_px = yes_px if o.outcome is _YES else PX_ONE - yes_px
        if liquidity == "taker":
            fee = taker_fee_usdc6(own_px, qty, self.fee_rate_ppm)
            rebate = 0
        else:
            fee = 0
            rebate = maker_rebate_usdc6(own_px, qty, self.fee_rate_ppm, self.rebate_ppm)
        o.qty -= qty
        self.held[o.outcome] += o.side * qty
        self.trade_seq += 1
        out.append(
            Filled(
                market=self.market,
                client_id=o.client_id,
                ts_ns=ts_ns,
                outcome=o.outcome,
                side=o.side,
                px=own_px,
                qty=qty,
                fee_usdc6=fee,
                liquidity=liquidity,
                trade_id=f"t-{self.market}-{self.trade_seq}",
                leaves_qty=o.qty,
            )
        )
        b = self.book
        mid2 = b.bid_px + b.ask_px if b.bid_px >= 0 and b.ask_px <= PX_ONE else 2 * yes_px
        yes = o.outcome is _YES
        self.fills.append(
            Fill(
                ts_ns=ts_ns,
                mid2=mid2,
                yes_side=o.yes_side,
                yes_px=yes_px,
                qty=qty,
                fee_usdc6=fee,
                liquidity=liquidity,
                cash_usdc6=notional_usdc6(own_px, qty) if yes else complement_notional_usdc6(own_px, qty),
                rebate_usdc6=rebate,
            )
        )
        if not resting:
            return
        if shift:
            _shift_after(o.queue, o, qty)
        if o.qty <= 0:
            self._remove(o)

    def _remove(self, o: SimOrder) -> None:
        self.orders.pop(o.client_id, None)
        px = o.yes_px
        bid = o.yes_side is _BUY
        levels = self.bids if bid else self.asks
        queue = levels.get(px)
        if queue is not None and queue is o.queue:
            lst = queue.orders
            if o in lst:
                i = lst.index(o)
                if i + 1 < len(lst):  # our later orders here move up by what it still had
                    _shift_from(lst, i, o.qty)
                del lst[i]
            if not lst:
                del levels[px]
                (self._bid_q if bid else self._ask_q)[px] = None
                queue.reset()  # kept for the next price we join
                self._spare.append(queue)
                if px == self.our_bid or px == self.our_ask:  # noqa: PLR1714 (two compares: no tuple)
                    self._update_best()  # our best price there is gone

    def _unfork(self) -> None:
        # Nothing we used is shown any more: the book we trade against is the data's again.
        assert self._fork is not None and not self._used
        self.book = self._fork
        self._fork = None

    def _update_best(self) -> None:
        self.our_bid = max(self.bids) if self.bids else -1
        self.our_ask = min(self.asks) if self.asks else PX_ONE + 1

    def close_stats(self, ts_ns: int) -> None:
        """Integrate the quote statistics up to the end of the run."""
        self._touch(ts_ns)

    def _touch(self, ts_ns: int) -> None:
        # Integrate the two-sided time and the quoted spread up to ts_ns with the current orders.
        # (Places, cancels and fills call it only when it has something to do: at the first call or
        # a later instant.)
        if self.first_ts < 0:
            self.first_ts = ts_ns
        stat = self._stat_ts
        if ts_ns > stat:
            if stat >= 0 and self.our_bid >= 0 and self.our_ask <= PX_ONE:
                dt = ts_ns - stat
                self.two_sided_ns += dt
                self.spread_px_ns += (self.our_ask - self.our_bid) * dt
            self._stat_ts = ts_ns
            self.last_ts = max(self.last_ts, ts_ns)  # (max(0, _stat_ts): it only moves with it)


def _share(u: int, front: int, behind: int, power: float) -> int:
    # The part of a decrease ``u`` expected ahead of us: ``u * f(front) / (f(front) + f(behind))``,
    # ``f(x) = x ** power``; exact in integers for a whole power.
    k = int(power)
    if k == power:
        fa: int = front**k
        fb: int = behind**k
        return u * fa // (fa + fb)
    fx = front**power
    return int(u * fx / (fx + behind**power))


def _bound_by(queue: _Queue, shown: int, floor: bool) -> None:
    # Nothing is ahead of an order but the displayed size and our earlier orders there; with
    # ``floor`` (after a print), nothing passes our earlier orders without filling them either.
    # Both only bind when our orders took what the data shows as traded by others (or a print
    # our better-priced orders took reached this price in the data only).
    printed = queue.printed
    own = 0
    for o in queue.orders:
        a = (_bound(o) if o.pending else o.fin) - printed  # (no call without pending bounds)
        if a > shown + own:
            # A bound like a join's: prints that later explain earlier decreases do not move it.
            if queue.rid:
                pend = o.pending
                if pend is None:
                    pend = o.pending = []
                pend.append([shown + own + printed, queue.rid[-1], queue.cum[-1], 0, 0])
                if len(pend) > MAX_PENDING:
                    _fold_oldest(o)
            else:
                o.fin = shown + own + printed  # (nothing pending: every bound is final)
        elif floor and a < own:
            o.fin = own + printed  # like a fill: at the front of what is left
            o.pending = None
        own += o.qty


def _settle(queue: _Queue) -> None:
    # The level's unexplained decreases are final (cancels): every bound set by them stands.
    for o in queue.orders:
        if o.pending:  # (without pending bounds ``fin`` is the bound already)
            o.fin = _bound(o)
            o.pending = None
    queue.rid.clear()
    queue.rem.clear()
    queue.cum.clear()


def _shift_after(queue: _Queue, o: SimOrder, qty: int) -> None:
    # ``qty`` of ``o`` left the level other than through a print: our later orders there move up.
    if qty:
        lst = queue.orders
        _shift_from(lst, lst.index(o), qty)


def _shift_from(lst: list[SimOrder], i: int, qty: int) -> None:
    # ``qty`` left the level at our order ``lst[i]``: the ones after it move up by that much.
    if not qty:
        return
    for later in lst[i + 1 :]:
        later.fin -= qty
        if later.pending:
            for p in later.pending:
                p[0] -= qty
