"""The live venue's wiring: ``PolymarketVenue`` under an ``OrderGatewayActor``, with its port and bridge.

The composition root's part of ``adapters.polymarket.clob_port``: the adapter implements the
gateway's ports (``core.ports.Venue``, ``core.ports.ExchangePort``) and never imports ``actors``;
this module puts the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pykka

from actors.gateway import GatewayConfig, OrderGatewayActor
from adapters.polymarket.clob_port import (
    ClobExchangePort,
    ClobLike,
    PolymarketVenue,
    UserChannelBridge,
)
from adapters.polymarket.errors import RateLimitListener
from adapters.polymarket.orders import OrderSigner
from core.markets import MarketInfo
from core.ports import Clock, EventSink, Route, Schedule

__all__ = ["start_gateway"]


def start_gateway(
    clob: ClobLike,
    signer: OrderSigner,
    markets: Iterable[MarketInfo],
    route: Route,
    clock: Clock,
    *,
    config: GatewayConfig | None = None,
    schedule: Schedule | None = None,
    wait: Callable[[float], object] | None = None,
    rate_limits: RateLimitListener | None = None,
    positions: bool = True,
    sink: EventSink | None = None,
) -> tuple[pykka.ActorRef[Any], ClobExchangePort, UserChannelBridge]:
    """Start the gateway over ``clob`` for ``markets`` (its heartbeat thread starts with it).

    ``rate_limits`` is the listener the client was created with (``on_rate_limit_update``).

    Returns:
        The gateway's ref (``ask(Startup())`` once before quoting; ``ask(Shutdown())`` / ``stop()``
        cancels everything), the port to give every market session, and the bridge whose
        ``on_event``/``on_reconnect``/``on_subscribed`` go to ``UserWsClient``.
    """
    markets = list(markets)
    venue = PolymarketVenue(clob, signer, markets, rate_limits=rate_limits, positions=positions)
    ref = OrderGatewayActor.start(
        venue, markets, route, clock, config=config, schedule=schedule, wait=wait, sink=sink
    )
    return ref, ClobExchangePort(ref), UserChannelBridge(ref)
