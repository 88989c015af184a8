"""The venue's channel fan-out: market and user WebSocket subscriptions, and what each one is sent.

Engine reports leave pending changes on each market (levels, prints, tick changes, fresh books) and
pending user events; ``_flush`` turns them into JSON text frames and hands them to the subscribers'
sinks (which only queue). A frozen channel (fault injection) drops what it would have sent: the
venue does not replay it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from core.ports import Clock
from core.units import (
    NS_PER_MS,
    Outcome,
    format_px,
    format_qty,
)
from emulator.faults import Channel
from emulator.scenario import (
    Scenario,
)
from emulator.state import (
    SIDE_NAME,
    VenueState,
)
from emulator.wire import ENCODER, book_json

__all__ = ["Channels", "MarketSub", "Sink", "UserSub"]


class Sink(Protocol):
    """Where a WebSocket connection's frames go; ``send`` only queues."""

    def send(self, text: str) -> None:
        """Queue one text frame."""
        ...

    def drop(self, abrupt: bool) -> None:
        """Close the connection (fault injection)."""
        ...


class MarketSub:
    """A market-channel subscription: which token ids it follows."""

    __slots__ = ("assets", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.assets: set[str] = set()


class UserSub:
    """A user-channel subscription: whose events, and for which markets (empty: all)."""

    __slots__ = ("address", "markets", "sink")

    def __init__(self, sink: Sink, address: str, markets: Iterable[str]) -> None:
        self.sink = sink
        self.address = address
        self.markets: set[str] = set(markets)


class Channels(VenueState):
    """Subscriptions and the fan-out of market and user events (see the module docstring)."""

    def __init__(self, scenario: Scenario, seed: int, clock: Clock) -> None:
        super().__init__(scenario, seed, clock)
        self._market_subs: list[MarketSub] = []
        self._user_subs: list[UserSub] = []
        # (address, market, event, when it happened): an event that happened while the user channel was
        # frozen is dropped, even when it is flushed after the freeze (a trade status due mid-freeze).
        self._user_out: list[tuple[str, str, dict[str, Any], int]] = []
        self._frozen_market = False  # as of the last step, to resend books when a freeze ends

    def _is_frozen(self, channel: Channel, now_ns: int | None = None) -> bool:
        return self.faults.frozen(channel, self.elapsed_ms(now_ns)) is not None

    def pong_allowed(self, channel: Channel) -> bool:
        """Whether a ``PING`` on ``channel`` gets its ``PONG`` now (a freeze may hold them back)."""
        rule = self.faults.frozen(channel, self.elapsed_ms())
        return rule is None or rule.pong

    # --- feeds -------------------------------------------------------------------------------------

    def _send_books(self, sub: MarketSub, assets: Iterable[str], now_ns: int) -> None:
        books = []
        for a in assets:
            found = self._tokens.get(a)
            if found is not None:
                book = book_json(found[0], found[1], now_ns // NS_PER_MS)
                book["event_type"] = "book"
                books.append(book)
        if books:
            sub.sink.send(ENCODER.encode(books).decode())

    def subscribe_market(self, sub: MarketSub, assets: Sequence[str], *, initial_dump: bool = True) -> None:
        """Add token ids to a market subscription; a ``book`` for each known one follows at once."""
        with self.lock:
            if sub not in self._market_subs:
                self._market_subs.append(sub)
            new = [a for a in assets if a not in sub.assets]
            sub.assets.update(assets)
            if initial_dump and not self._is_frozen("market"):
                self._send_books(sub, new, self.now_ns())

    def unsubscribe_market(self, sub: MarketSub, assets: Sequence[str]) -> None:
        """Stop following some token ids."""
        with self.lock:
            sub.assets.difference_update(assets)

    def subscribe_user(self, sub: UserSub) -> None:
        """Register a user-channel subscription."""
        with self.lock:
            if sub not in self._user_subs:
                self._user_subs.append(sub)

    def remove_sub(self, sub: MarketSub | UserSub) -> None:
        """Forget a subscription (its connection closed)."""
        with self.lock:
            if isinstance(sub, MarketSub):
                if sub in self._market_subs:
                    self._market_subs.remove(sub)
            elif sub in self._user_subs:
                self._user_subs.remove(sub)

    def _flush(self, now_ns: int) -> None:
        ts = str(now_ns // NS_PER_MS)
        frozen = self._is_frozen("market", now_ns)
        for m in self._markets:
            if not (m.pending_levels or m.pending_prints or m.pending_ticks or m.pending_books):
                continue
            frames: list[tuple[str | None, dict[str, Any]]] = []  # (asset or None for both, event)
            if m.pending_levels:
                books = {o: book_json(m, o, now_ns // NS_PER_MS) for o in (Outcome.YES, Outcome.NO)}
                best = {o: (m.engine.best_bid(o), m.engine.best_ask(o)) for o in (Outcome.YES, Outcome.NO)}
                changes = []
                for (outcome, side, px), qty in m.pending_levels.items():
                    bid, ask = best[outcome]
                    changes.append(
                        {
                            "asset_id": m.token(outcome),
                            "price": format_px(px),
                            "size": format_qty(qty),
                            "side": SIDE_NAME[side],
                            "hash": books[outcome]["hash"],
                            "best_bid": format_px(bid) if bid is not None else "0",
                            "best_ask": format_px(ask) if ask is not None else "1",
                        }
                    )
                frames.append(
                    (
                        None,
                        {
                            "market": m.market,
                            "price_changes": changes,
                            "timestamp": ts,
                            "event_type": "price_change",
                        },
                    )
                )
            for p in m.pending_prints:
                frames.append(
                    (
                        m.token(p.outcome),
                        {
                            "asset_id": m.token(p.outcome),
                            "market": m.market,
                            "price": format_px(p.px),
                            "size": format_qty(p.qty),
                            "side": SIDE_NAME[p.aggressor],
                            "fee_rate_bps": str(m.cfg.fee_rate_ppm // 100),
                            "timestamp": ts,
                            "transaction_hash": p.trade_id,
                            "event_type": "last_trade_price",
                        },
                    )
                )
            for old, new in m.pending_ticks:
                for o in (Outcome.YES, Outcome.NO):
                    frames.append(
                        (
                            m.token(o),
                            {
                                "event_type": "tick_size_change",
                                "asset_id": m.token(o),
                                "market": m.market,
                                "old_tick_size": format_px(old),
                                "new_tick_size": format_px(new),
                                "timestamp": ts,
                            },
                        )
                    )
            if m.pending_books:
                for o in (Outcome.YES, Outcome.NO):
                    book = book_json(m, o, now_ns // NS_PER_MS)
                    book["event_type"] = "book"
                    frames.append((m.token(o), book))
            m.pending_levels.clear()
            m.pending_prints.clear()
            m.pending_ticks.clear()
            m.pending_books = False
            if frozen:
                continue
            for sub in self._market_subs:
                for asset, ev in frames:
                    if asset is None:
                        mine = [c for c in ev["price_changes"] if c["asset_id"] in sub.assets]
                        if mine:
                            sub.sink.send(ENCODER.encode({**ev, "price_changes": mine}).decode())
                    elif asset in sub.assets:
                        sub.sink.send(ENCODER.encode(ev).decode())
        out, self._user_out = self._user_out, []
        frozen_now = self._is_frozen("user", now_ns)
        for address, market, ev, at_ns in out:
            if frozen_now if at_ns == now_ns else self._is_frozen("user", at_ns):
                continue
            text = ""
            for us in self._user_subs:
                if us.address.lower() == address.lower() and (not us.markets or market in us.markets):
                    text = text or ENCODER.encode(ev).decode()
                    us.sink.send(text)
