"""The feed's fan-out to the market actors: ``FrameDispatcher``, on the tick-to-quote path.

Live, paper and dry-run trading (``app.bootstrap.TradingEngine``) and the dry-run replay of a
recording (``sim.session_replay``) hand each decoded feed frame to it; it needs only the actors'
``Router`` and the core's YES view, so it lives with the actors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pykka

from actors.supervisor import Router
from core.messages import BookDelta, MarketBatch, MarketEvent
from core.yes_view import YesView

__all__ = ["FrameDispatcher"]


class FrameDispatcher:
    """Hands each feed frame to the market actors: one ``MarketBatch`` of YES events per market per frame.

    Runs on the feed's thread, on the tick-to-quote path. Every event goes through its market's
    ``core.yes_view.YesView`` first: the venue publishes most things on both tokens (a level change
    and its mirror, a trade printed on each token, a book and a tick change per token), and the view
    maps each happening onto the YES book once, so the actors (and the paper venue) see only YES
    events. ``listeners`` see every YES event but level changes (live: the gateway wants tick-size
    changes); in paper trading the simulated ``venue`` sees each batch before the market's actor does.
    """

    def __init__(self, router: Router) -> None:
        self.router = router
        self.venue: pykka.ActorRef[Any] | None = None
        self.listeners: list[Callable[[MarketEvent], None]] = []
        #: One YES view per market (its state: the last change passed on, trades awaiting their mirror).
        self.views: dict[str, YesView] = {}
        #: YES events handed to the market actors.
        self.events_in = 0

    def __call__(self, events: Sequence[MarketEvent]) -> None:
        """Dispatch one frame's events (already checked by the feed's book epochs)."""
        listeners, views = self.listeners, self.views
        # Nearly every frame is one market's: its events collect in ``first_evs`` and the per-market
        # dict is made only when a second market's event is passed on (markets keep the order of
        # their first event passed on, either way).
        first = ""
        first_evs: list[MarketEvent] = []
        by_market: dict[str, list[MarketEvent]] | None = None
        market = ""
        apply: Callable[[MarketEvent], MarketEvent | None] | None = None
        for raw in events:
            if raw.market != market or apply is None:  # a frame is mostly one market's
                market = raw.market
                view = views.get(market)
                if view is None:
                    view = views[market] = YesView()
                apply = view.apply
            ev = apply(raw)
            if ev is None:
                continue  # the mirror of what this market's view already passed on
            if type(ev) is not BookDelta:
                for listener in listeners:
                    listener(ev)
            if by_market is None:
                if not first_evs:
                    first = market
                if market == first:
                    first_evs.append(ev)
                    continue
                by_market = {first: first_evs}
            evs = by_market.get(market)
            if evs is None:
                by_market[market] = [ev]
            else:
                evs.append(ev)
        if by_market is None:
            if first_evs:
                self._tell(first, first_evs)
            return
        for market, evs in by_market.items():
            self._tell(market, evs)

    def _tell(self, market: str, evs: list[MarketEvent]) -> None:
        self.events_in += len(evs)
        batch = MarketBatch(tuple(evs))
        if self.venue is not None:
            self.venue.tell(batch)  # paper: the simulated venue sees the book first
        self.router.tell(market, batch)
