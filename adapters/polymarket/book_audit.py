"""Is the market feed's book still the venue's? The audit's decisions, with no I/O.

A feed can go quiet while its socket stays open and keeps answering ``PING``: nothing on the
connection says so, and a book nobody updates is quoted as if it were current. The audit compares,
on a timer, each market's book as the feed built it with the venue's REST ``GET /book``.

What is compared, and why. The venue's ``hash`` is a sha1 over the whole book summary *with its
``timestamp``* (``emulator.venue.book_hash``, py-clob-client's ``generate_orderbook_summary_hash``):
two reads of an unchanged book served at different milliseconds carry different hashes, and the hash
of a channel ``book`` does not even reproduce from that message (checked on a captured 2026 book), so
hashes of the feed and of REST are not comparable. The audit compares the content that quoting reads
instead: the tick and the best ``levels`` price levels (price and size) of each side, ``BookTop``.
The timestamps order the two sources: a REST book no newer than the last event the feed applied to
the book (venue time) cannot show that the feed is behind.

One audit of one market (``BookAuditor``, driven by ``ws_market.MarketWsClient``):

1. ``due`` picks it (its slot in the period, or at once after ``request``), records the book's top as
   sent, and the feed fetches REST ``/book``;
2. while the audit is open, every frame with data for the market records the book's top after it
   (``on_data``): the REST book is one state the venue passed through between the request and the
   reply, so it matches one of the tops seen if the feed is right;
3. ``on_reply``: a match closes the audit. Otherwise frames still in flight get ``grace_s`` to
   bring the book to the REST state;
4. ``expire`` judges an audit whose grace is over:

   * **frozen**: no data for the market arrived since the request, and the REST book is newer than
     the last event the feed applied: the feed is silent while the venue's book moved. The market
     is resynced at once (``Resync``: the session pulls its quotes and waits for a fresh snapshot, as
     after a lost connection). If the whole connection delivered no data frame since the request, or
     ``reconnect_after_markets`` markets were found frozen within one period, the connection itself
     looks frozen (``Reconnect``);
   * **differs while data flows**: the book may be wrong (a lost change) or the REST read fell
     between two changes the feed sent as one frame. It is checked again after ``recheck_s``;
     ``desync_after`` such audits in a row resync the market.

Scheduling: market ``i`` of ``n`` is first due ``(i + 1) * period / n`` after the start and then once
per period, so the markets are spread over the period instead of firing together; requests never
exceed ``max_requests_per_s`` (a token bucket; the period stretches to ``n / max_requests_per_s``
when it is shorter). ``request`` (a post-only order rejected as crossing: our book may be wrong)
audits a market at once, at most once per ``recheck_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import compress, count, islice

import msgspec

from core.book import L2Book
from core.messages import Level
from core.units import PX_ONE

__all__ = ["AuditConfig", "BookAuditor", "BookTop", "Reconnect", "Resync", "book_top", "top_of"]


class AuditConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How often and how strictly the feed's books are audited against REST ``/book``."""

    #: Every audited market is checked once per period.
    period_s: float = 5.0
    #: Price levels compared on each side (with the tick).
    levels: int = 3
    #: After a differing reply, how long frames still in flight may bring the book to the REST state.
    grace_s: float = 0.3
    #: A market whose book differs while its data flows is checked again this soon; also the least
    #: time between two immediate audits of one market.
    recheck_s: float = 1.0
    #: Audits in a row that differ while the market's data flows before the market is resynced.
    desync_after: int = 2
    #: Markets found frozen within one period that make the whole connection look frozen.
    reconnect_after_markets: int = 3
    #: REST ``/book`` requests per second at most (the venue allows 1,500 per 10 s).
    max_requests_per_s: float = 50.0
    #: An audit with no reply after this long is dropped (the HTTP client times out before).
    reply_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("period_s", "grace_s", "recheck_s", "max_requests_per_s", "reply_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: {value} must be a positive number of seconds")
        if self.levels < 1 or self.desync_after < 1 or self.reconnect_after_markets < 1:
            raise ValueError("levels, desync_after and reconnect_after_markets must be at least 1")


class BookTop(msgspec.Struct, frozen=True, kw_only=True):
    """What the audit compares: the tick and the best levels of each side, best first."""

    tick_px: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    def matches(self, rest: BookTop) -> bool:
        """Whether ``rest`` (a REST book) shows this content; a REST book without a tick skips it."""
        return self.bids == rest.bids and self.asks == rest.asks and (rest.tick_px in (0, self.tick_px))


def top_of(bids: Sequence[Level], asks: Sequence[Level], tick_px: int, levels: int) -> BookTop:
    """The ``levels`` best levels of each side (given best first) and the tick."""
    return BookTop(
        tick_px=tick_px,
        bids=tuple((int(p), int(q)) for p, q in bids[:levels]),
        asks=tuple((int(p), int(q)) for p, q in asks[:levels]),
    )


def book_top(book: L2Book, levels: int) -> BookTop:
    """``top_of`` an ``L2Book``, read off its per-price arrays a chunk at a time.

    An open audit takes one after every frame of its market: a price-by-price scan of a sparse book
    (``L2Book.levels``) costs tens of microseconds on the tick-to-quote path; slices and
    ``itertools.compress`` skip the empty prices in C.
    """
    step = book.scan_step
    return BookTop(
        tick_px=book.tick_px,
        bids=_scan(book.bids, book.bid_px, -step, levels),
        asks=_scan(book.asks, book.ask_px, step, levels),
    )


_CHUNK = 128  # prices per slice


def _scan(sizes: list[int], start: int, step: int, n: int) -> tuple[Level, ...]:
    # The first ``n`` non-empty prices from ``start`` in steps of ``step`` (negative: downwards).
    out: list[Level] = []
    px = start
    while 0 <= px <= PX_ONE and len(out) < n:
        stop = px + step * _CHUNK
        window = sizes[px : stop if stop >= 0 else None : step]
        out.extend((px + step * i, window[i]) for i in islice(compress(count(), window), n - len(out)))
        px = stop
    return tuple(out)


class Resync(msgspec.Struct, frozen=True):
    """Drop this market's book, pull its quotes, and wait for a fresh snapshot from the feed."""

    market: str
    reason: str


class Reconnect(msgspec.Struct, frozen=True):
    """The whole connection looks frozen: drop it (every book is invalidated) and reconnect."""

    reason: str


Effect = Resync | Reconnect


class _Audit:
    __slots__ = ("data", "deadline_s", "feed_ts_ns", "rest", "rest_ts_ns", "sent_s", "tops")

    def __init__(self, sent_s: float, top: BookTop) -> None:
        self.sent_s = sent_s
        self.tops = [top]  # our book's top when sent and after each frame with the market's data
        self.data = False  # a frame with the market's data arrived since the request
        self.rest: BookTop | None = None
        self.rest_ts_ns = 0
        self.feed_ts_ns = 0
        self.deadline_s = math.inf


#: A whole token, give or take the rounding of the refill.
_ONE = 1 - 1e-9
#: Tops kept per open audit (a busy market's frames during one REST round trip).
_MAX_TOPS = 256


class BookAuditor:
    """One connection's audits (sans-I/O: the feed calls it and does what it returns).

    Args:
        markets: The markets on the connection, in a stable order (their slots in the period).
        config: Period, depth, grace and limits.
        now_s: The current time (any monotonic clock; the same for every call).
    """

    def __init__(self, markets: Sequence[str], config: AuditConfig, now_s: float) -> None:
        self.cfg = config
        n = max(len(markets), 1)
        #: The period actually used: stretched so the scheduled audits keep within the request rate.
        self.period_s = max(config.period_s, n / config.max_requests_per_s)
        step = self.period_s / n
        self._next = {m: now_s + (i + 1) * step for i, m in enumerate(markets)}
        self._urgent: list[str] = []
        self._last_urgent: dict[str, float] = {}
        self._open: dict[str, _Audit] = {}
        self._mismatches: dict[str, int] = {}
        self._frozen_at: dict[str, float] = {}
        # A burst of a tenth of a second: any 10 s carry at most 10.1 s worth of requests.
        self._burst = max(1.0, config.max_requests_per_s / 10)
        self._tokens = self._burst
        self._tokens_s = now_s
        # Counters (the feed's status).
        self.sent = 0
        self.matched = 0
        self.differed = 0
        self.resyncs = 0
        self.errors = 0

    # --- inputs ------------------------------------------------------------------------------------

    def request(self, market: str, now_s: float) -> bool:
        """Audit ``market`` as soon as the rate allows (e.g. a post-only order of it crossed).

        Returns False when it is not ours, already being audited or audited at once within
        ``recheck_s``.
        """
        if market not in self._next or market in self._open or market in self._urgent:
            return False
        last = self._last_urgent.get(market)
        if last is not None and now_s - last < self.cfg.recheck_s:
            return False
        self._last_urgent[market] = now_s
        self._urgent.append(market)
        return True

    def due(self, now_s: float, top: Callable[[str], BookTop | None]) -> list[str]:
        """The markets to fetch now; each is open from here until judged.

        ``top(market)`` is our book's top now, or None when the book is not valid (nothing to audit:
        the market waits for its snapshot and keeps its slot).
        """
        self._refill(now_s)
        scheduled = sorted((t, m) for m, t in self._next.items() if t <= now_s)
        out: list[str] = []
        urgent, self._urgent = self._urgent, []
        for i, market in enumerate([*urgent, *(m for _, m in scheduled)]):
            is_urgent = i < len(urgent)
            if market not in self._next:
                continue  # retired since it was asked for
            if market in self._open or market in out:
                if not is_urgent:
                    self._next[market] = now_s + self.period_s
                continue
            if self._tokens < _ONE:
                if is_urgent:
                    self._urgent.append(market)
                continue  # a scheduled one stays due
            ours = top(market)
            self._next[market] = now_s + self.period_s
            if ours is None:
                continue
            self._tokens -= 1
            self._open[market] = _Audit(now_s, ours)
            self.sent += 1
            out.append(market)
        return out

    def on_data(self, market: str, top: BookTop | None) -> None:
        """A frame with ``market``'s data was applied; ``top`` is the book's top after it (None: invalid)."""
        audit = self._open.get(market)
        if audit is None:
            return
        if top is None:
            self.forget(market)
            return
        audit.data = True
        if len(audit.tops) < _MAX_TOPS:
            audit.tops.append(top)
        else:
            audit.tops[-1] = top
        if audit.rest is not None and top.matches(audit.rest):
            self._match(market)

    def on_reply(self, market: str, now_s: float, rest: BookTop, rest_ts_ns: int, feed_ts_ns: int) -> None:
        """The REST book of ``market`` arrived (``rest_ts_ns`` its timestamp; ``feed_ts_ns`` the venue
        time of the last event the feed applied to our book)."""
        audit = self._open.get(market)
        if audit is None:
            return
        if any(top.matches(rest) for top in audit.tops):
            self._match(market)
            return
        audit.rest, audit.rest_ts_ns, audit.feed_ts_ns = rest, rest_ts_ns, feed_ts_ns
        audit.deadline_s = now_s + self.cfg.grace_s

    def on_error(self, market: str) -> None:
        """The REST request failed: no verdict; the market keeps its next slot."""
        if self._open.pop(market, None) is not None:
            self.errors += 1

    def forget(self, market: str) -> None:
        """The book became invalid (tick change, resync): drop its open audit."""
        self._open.pop(market, None)
        self._mismatches.pop(market, None)

    def retire(self, market: str) -> None:
        """The market is over (resolved): never audit it again."""
        self.forget(market)
        self._next.pop(market, None)

    def reset(self) -> None:
        """The connection dropped: every book waits for a fresh snapshot; the schedule stays."""
        self._open.clear()
        self._mismatches.clear()
        self._frozen_at.clear()
        self._urgent.clear()

    def expire(self, now_s: float, connection_data_s: float) -> list[Effect]:
        """Judge the audits whose grace is over.

        Args:
            now_s: The current time.
            connection_data_s: When the connection last delivered a data frame (any market).
        """
        effects: list[Effect] = []
        for market, audit in list(self._open.items()):
            if audit.rest is None:
                if now_s - audit.sent_s > self.cfg.reply_timeout_s:
                    self.on_error(market)
                continue
            if now_s < audit.deadline_s:
                continue
            del self._open[market]
            self.differed += 1
            effect = self._judge(market, audit, now_s, connection_data_s)
            if isinstance(effect, Reconnect):
                return [effect]  # a reconnect resyncs every market
            if effect is not None:
                effects.append(effect)
        return effects

    def next_wakeup_s(self, now_s: float) -> float:
        """When ``due`` or ``expire`` may next have something to do."""
        times = [audit.deadline_s for audit in self._open.values()]
        times += [audit.sent_s + self.cfg.reply_timeout_s for audit in self._open.values()]
        fetch_s = min(self._next.values(), default=math.inf)
        if self._urgent:
            fetch_s = now_s
        if fetch_s <= now_s and self._tokens < _ONE:
            # The next token (at least a millisecond away: no busy loop on a rounding error).
            fetch_s = now_s + max(1e-3, (1 - self._tokens) / self.cfg.max_requests_per_s)
        times.append(fetch_s)
        return min(times, default=now_s + self.period_s)

    @property
    def watching(self) -> bool:
        """Whether any audit is open (the feed then reports each frame's markets with ``on_data``)."""
        return bool(self._open)

    def is_open(self, market: str) -> bool:
        """Whether an audit of ``market`` waits for its reply or its grace."""
        return market in self._open

    # --- internals ---------------------------------------------------------------------------------

    def _refill(self, now_s: float) -> None:
        elapsed = max(0.0, now_s - self._tokens_s)
        self._tokens = min(self._burst, self._tokens + elapsed * self.cfg.max_requests_per_s)
        self._tokens_s = now_s

    def _match(self, market: str) -> None:
        self._open.pop(market, None)
        self._mismatches.pop(market, None)
        self.matched += 1

    def _judge(self, market: str, audit: _Audit, now_s: float, connection_data_s: float) -> Effect | None:
        cfg = self.cfg
        rest_newer = audit.rest_ts_ns > audit.feed_ts_ns
        if audit.data or not rest_newer:
            # The market's data flows (or REST is no newer than our book): maybe a race, maybe a lost
            # change. Look again soon; resync when it keeps differing.
            n = self._mismatches.get(market, 0) + 1
            if n < cfg.desync_after:
                self._mismatches[market] = n
                self._next[market] = min(self._next[market], now_s + cfg.recheck_s)
                return None
            self._mismatches.pop(market, None)
            self.resyncs += 1
            return Resync(market, f"book differs from REST /book in {n} audits in a row")
        # Frozen: the venue's book moved and the feed sent nothing for this market meanwhile.
        self._mismatches.pop(market, None)
        self._frozen_at[market] = now_s
        frozen = [m for m, t in self._frozen_at.items() if now_s - t <= self.period_s]
        waited_s = now_s - audit.sent_s
        if connection_data_s < audit.sent_s:
            self._frozen_at.clear()
            return Reconnect(
                f"REST /book of {market} moved and the connection delivered no data for "
                f"{now_s - connection_data_s:.1f} s"
            )
        if len(frozen) >= min(cfg.reconnect_after_markets, len(self._next)):
            self._frozen_at.clear()
            return Reconnect(f"{len(frozen)} markets frozen within {self.period_s:.1f} s")
        self.resyncs += 1
        return Resync(market, f"REST /book moved and the feed sent nothing for it in {waited_s:.1f} s")
