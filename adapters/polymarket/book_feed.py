"""Book maintenance with the venue's semantics, shared by the live WebSocket client and replay.

Deterministic, no I/O. The rules (docs/polymarket-api.md §7, style rule 18):

* a ``book`` replaces the token's book (snapshot) and makes it valid;
* a ``price_change`` level sets the new total size at one price; 0 deletes the level;
* a ``tick_size_change`` starts a new epoch: the book is dropped and deltas are ignored until the
  next snapshot; a reconnect does the same (``invalidate``).

Crossed books are kept as they come: the venue publishes a crossing level before it removes the
crossed ones, then sends a fresh ``book``.
"""

from __future__ import annotations

from typing import assert_never

from core.book import L2Book
from core.messages import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    MarketResolved,
    TickSizeChanged,
    Timer,
    TradePrint,
)
from core.units import Outcome, Px

__all__ = ["BookFeed", "BookKey", "apply_book_event"]

#: (market, outcome): one token's book.
BookKey = tuple[str, Outcome]


def apply_book_event(book: L2Book, valid: bool, event: BookSnapshot | BookDelta | TickSizeChanged) -> bool:
    """Apply one book event to one token's book.

    Args:
        book: The token's book; mutated in place.
        valid: Whether the book holds the current epoch (a snapshot arrived since the last reset).
        event: The event for this token.

    Returns:
        Whether the book is valid afterwards. A delta on an invalid book is ignored (returns False).
    """
    match event:
        case BookSnapshot():
            book.apply_snapshot(event.bids, event.asks, event.ts_ns, event.tick_px, event.min_qty)
            return True
        case BookDelta():
            if valid:
                book.set_level(event.side, event.px, event.qty, event.ts_ns)
            return valid
        case TickSizeChanged():
            book.set_tick(event.tick_px)
            book.clear()
            book.ts_ns = event.ts_ns
            return False
        case _:
            assert_never(event)


class BookFeed:
    """One ``L2Book`` per token, kept with the venue's epoch rules; filters what is safe to pass on."""

    __slots__ = ("_books", "_default_tick_px", "_valid", "dropped_deltas")

    def __init__(self, default_tick_px: Px = 100) -> None:
        """Create an empty feed; books appear on their first event."""
        self._books: dict[BookKey, L2Book] = {}
        self._valid: set[BookKey] = set()
        self._default_tick_px = default_tick_px
        #: Deltas ignored because their book was waiting for a snapshot.
        self.dropped_deltas = 0

    def apply(self, event: MarketEvent) -> bool:
        """Apply ``event``; return True if it should be passed on to the book's consumers.

        Deltas on a book waiting for a snapshot return False (a consumer rebuilding its own book
        from the passed-on events then sees the same epochs). Other events always pass.
        """
        if type(event) is BookDelta:  # nearly every event: on the tick-to-quote path
            key = (event.market, event.outcome)
            if key in self._valid:
                self._books[key].set_level(event.side, event.px, event.qty, event.ts_ns)
                return True
            self.dropped_deltas += 1
            return False
        match event:
            case BookSnapshot() | BookDelta() | TickSizeChanged():
                key = (event.market, event.outcome)
                book = self._books.get(key)
                if book is None:
                    book = self._books[key] = L2Book(tick_px=self._default_tick_px)
                was_valid = key in self._valid
                if apply_book_event(book, was_valid, event):
                    self._valid.add(key)
                    return True
                self._valid.discard(key)
                if isinstance(event, BookDelta):
                    self.dropped_deltas += 1
                    return False
                return True
            case MarketResolved():
                # The market is over; its books are history.
                for outcome in Outcome:
                    self._valid.discard((event.market, outcome))
                return True
            case TradePrint() | Timer():
                return True
            case _:
                assert_never(event)

    def book(self, market: str, outcome: Outcome) -> L2Book | None:
        """The token's book if it is valid (current epoch), else None."""
        key = (market, outcome)
        return self._books[key] if key in self._valid else None

    def is_valid(self, market: str, outcome: Outcome) -> bool:
        """Whether the token's book holds the current epoch."""
        return (market, outcome) in self._valid

    def invalidate(self, market: str, outcome: Outcome) -> bool:
        """Drop one book until its next snapshot (e.g. a lost subscription); True if it was valid."""
        key = (market, outcome)
        if key not in self._valid:
            return False
        self._valid.discard(key)
        self._books[key].clear()
        return True

    def invalidate_all(self) -> list[BookKey]:
        """Drop every book until its next snapshot (a reconnect); returns the books that were valid."""
        was_valid = sorted(self._valid)
        for key in was_valid:
            self._books[key].clear()
        self._valid.clear()
        return was_valid

    def keys(self) -> list[BookKey]:
        """Every token seen so far."""
        return list(self._books)

    def valid_keys(self) -> list[BookKey]:
        """Tokens whose book is valid."""
        return sorted(self._valid)
