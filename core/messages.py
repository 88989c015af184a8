"""Messages between the venue, the actors and the exchange port: one tagged union per channel.

Pure data: frozen msgspec Structs in integer units (see ``core.units``). Timestamps are int ns.
Prices are always those of the token named by ``outcome`` (a NO order at 3_000 is a NO price).

* ``MarketEvent``: what the market data feed (live, replay or simulator) tells a market actor.
* ``Command``: what a market actor asks of its ``ExchangePort``.
* ``ExecEvent``: what the exchange port tells back about our orders (``OrderEvent``), our merges of
  YES+NO pairs (``MergeEvent``) and, live, a position the ledger adopted from the venue
  (``PositionResync``).

Also the mail that adapters send to the actors (``MarketBatch``/``ExecBatch`` to a market actor;
``Submit``, ``UserOrderUpdate`` and ``Reconcile`` to the order gateway), so an adapter never imports
``actors``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from core.units import Outcome, Px, Qty, Side, Usdc6

#: (price, size) of one book level.
Level = tuple[Px, Qty]


class _Msg(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    pass


# --- market data -----------------------------------------------------------------------------------


class BookSnapshot(_Msg, frozen=True, tag="book"):
    """A full book of one token; levels best first. ``tick_px``/``min_qty`` are 0 when not sent."""

    market: str
    outcome: Outcome
    ts_ns: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    tick_px: Px = 0
    min_qty: Qty = 0


class BookDelta(_Msg, frozen=True, tag="delta"):
    """One level of one token set to a new total size (0 deletes). ``side`` BUY is the bid side."""

    market: str
    outcome: Outcome
    ts_ns: int
    side: Side
    px: Px
    qty: Qty


class TradePrint(_Msg, frozen=True, tag="trade"):
    """A trade in the market; ``aggressor`` is the taker's side on ``outcome``.

    ``trade_id`` is the venue's id of the match (its transaction hash) when the feed carries one: the
    same match printed on both tokens has the same id (``core.yes_view`` counts it once).
    """

    market: str
    outcome: Outcome
    ts_ns: int
    px: Px
    qty: Qty
    aggressor: Side
    trade_id: str = ""


class TickSizeChanged(_Msg, frozen=True, tag="tick_size"):
    """The venue changed the tick: a new book epoch starts (drop the book, wait for a snapshot)."""

    market: str
    outcome: Outcome
    ts_ns: int
    tick_px: Px


class MarketResolved(_Msg, frozen=True, tag="resolved"):
    """The market resolved; YES settles at 1 if ``yes_won`` else at 0."""

    market: str
    ts_ns: int
    yes_won: bool


class Timer(_Msg, frozen=True, tag="timer"):
    """Time passes (timers are messages; actors never sleep)."""

    market: str
    ts_ns: int


MarketEvent = BookSnapshot | BookDelta | TradePrint | TickSizeChanged | MarketResolved | Timer

# --- commands to the exchange port -----------------------------------------------------------------

TimeInForce = Literal["GTC", "GTD", "FOK", "FAK"]


class Place(_Msg, frozen=True, tag="place"):
    """Place a limit order. ``client_id`` is ours and unique in the run (``market-seq``)."""

    market: str
    client_id: str
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    post_only: bool = True
    tif: TimeInForce = "GTC"
    expire_ns: int = 0


class Cancel(_Msg, frozen=True, tag="cancel"):
    """Cancel one of our orders."""

    market: str
    client_id: str


class CancelAll(_Msg, frozen=True, tag="cancel_all"):
    """Cancel every order of ours in ``market``."""

    market: str


class Merge(_Msg, frozen=True, tag="merge"):
    """Merge ``qty`` pairs (one YES and one NO share each, 1e-6 share units) back into collateral.

    Each pair is worth exactly 1 pUSD, so ``qty`` pairs return ``qty`` Usdc6 (``core.merge``).
    ``merge_id`` is ours and unique in the run (``market-mN``).
    """

    market: str
    merge_id: str
    qty: Qty


Command = Place | Cancel | CancelAll | Merge

# --- mail between adapters and actors (untagged: never logged as such) -----------------------------


class MarketBatch(msgspec.Struct, frozen=True):
    """Several market events of one market from one feed frame: one message, one decision after them."""

    events: tuple[MarketEvent, ...]


class ExecBatch(msgspec.Struct, frozen=True):
    """Several execution reports of one market at once (one message, one decision after them)."""

    events: tuple[ExecEvent, ...]


class Submit(msgspec.Struct, frozen=True):
    """Commands from a market actor to the order gateway (told by the live port's ``submit``)."""

    commands: tuple[Command, ...]


class UserOrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """To the order gateway: a user-channel order event; ``kind`` is PLACEMENT, UPDATE or CANCELLATION."""

    order_id: str
    kind: str
    status: str = ""
    matched_qty: int = 0


class Reconcile(msgspec.Struct, frozen=True):
    """To the order gateway: compare our orders with the venue's now (e.g. the user channel reconnected)."""

    reason: str


# --- execution reports -----------------------------------------------------------------------------

Liquidity = Literal["maker", "taker"]


class Accepted(_Msg, frozen=True, tag="accepted"):
    """The venue accepted (and rests) an order."""

    market: str
    client_id: str
    order_id: str
    ts_ns: int


class Rejected(_Msg, frozen=True, tag="rejected"):
    """The venue refused an order; nothing rests."""

    market: str
    client_id: str
    ts_ns: int
    reason: str


class Filled(_Msg, frozen=True, tag="fill"):
    """Part or all of an order traded. ``fee_usdc6`` is what we paid (makers pay none)."""

    market: str
    client_id: str
    ts_ns: int
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty
    fee_usdc6: Usdc6
    liquidity: Liquidity
    trade_id: str
    leaves_qty: Qty


class Canceled(_Msg, frozen=True, tag="canceled"):
    """An order is gone without (further) fills: cancelled, expired or killed."""

    market: str
    client_id: str
    ts_ns: int
    reason: str = ""


class Adopted(_Msg, frozen=True, tag="adopted"):
    """An order of ours found resting at the venue at start (an earlier run's), kept with its queue place.

    The session takes it as one of its own live orders under ``client_id``; ``qty`` is what is left.
    """

    market: str
    client_id: str
    order_id: str
    ts_ns: int
    outcome: Outcome
    side: Side
    px: Px
    qty: Qty


class PositionResync(_Msg, frozen=True, tag="position_resync"):
    """The venue's position in ``market`` replaces ours: a drift no trade explains outlasted the rule.

    Per outcome, ``*_old_qty`` is what we held and ``*_new_qty`` what the venue holds. Each difference
    is booked as one fill without fee at ``*_px`` (``fills()``): a BUY when the venue holds more, a
    SELL when it holds less, so cash and cost basis move as for any trade (``core.ledger``, resync).
    """

    market: str
    ts_ns: int
    yes_old_qty: Qty
    yes_new_qty: Qty
    no_old_qty: Qty
    no_new_qty: Qty
    yes_px: Px = 0
    no_px: Px = 0
    reason: str = ""

    def fills(self) -> tuple[tuple[Outcome, Side, Px, Qty], ...]:
        """(outcome, side, px, qty) of the fill that books each outcome's difference (none if equal)."""
        out: list[tuple[Outcome, Side, Px, Qty]] = []
        for outcome, old, new, px in (
            (Outcome.YES, self.yes_old_qty, self.yes_new_qty, self.yes_px),
            (Outcome.NO, self.no_old_qty, self.no_new_qty, self.no_px),
        ):
            if new != old:
                out.append((outcome, Side.BUY if new > old else Side.SELL, px, abs(new - old)))
        return tuple(out)


class Merged(_Msg, frozen=True, tag="merged"):
    """The venue merged ``qty`` pairs: ``qty`` YES and ``qty`` NO shares became ``qty`` Usdc6 of cash.

    ``tx`` is the transaction hash where the venue gave one (live).
    """

    market: str
    merge_id: str
    ts_ns: int
    qty: Qty
    tx: str = ""


class MergeFailed(_Msg, frozen=True, tag="merge_failed"):
    """A merge did not happen (refused, reverted, or given up on): the shares are still held."""

    market: str
    merge_id: str
    ts_ns: int
    qty: Qty
    reason: str


#: What the venue says about one order of ours (each carries its ``client_id``).
OrderEvent = Accepted | Rejected | Filled | Canceled | Adopted
#: What the venue says about a merge of ours (each carries its ``merge_id``).
MergeEvent = Merged | MergeFailed
ExecEvent = OrderEvent | PositionResync | MergeEvent
