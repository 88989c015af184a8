"""Polymarket user-channel WebSocket client: our orders and trades as parsed ``UserEvent``s.

The client subscribes to the markets (condition ids) of an ``AssetMap`` and hands every parsed
event (``parse.VenueOrderUpdate``, ``parse.VenueTrade``) to ``on_event`` on its own event-loop
thread; ``clob_port.UserChannelBridge`` tells them to the order gateway.

Connection life cycle (docs/polymarket-api.md §7.2, clob-emulator-spec.md §8; the shared part is
``ws_channel.ChannelClient``):

* connect, send ``{"type": "user", "auth": {"apiKey", "secret", "passphrase"}, "markets": [...]}``;
* send the text ``PING`` every ``ping_interval_s``; the venue answers ``PONG``. A connection with no
  frame at all for ``stale_after_s`` is dropped;
* on any drop, reconnect with exponential backoff plus jitter and subscribe again. Events sent
  during the outage are lost (no replay), so every connection after the first calls
  ``on_reconnect``, and every subscription (the first too) calls ``on_subscribed``: the gateway
  reconciles (open orders, then the trades since the last one it applied).

The subscribe frame carries the API secret: it is built at send time and never logged, and the
``websockets`` frame logger is a child of this module's logger held at INFO, so a DEBUG log
configuration does not print frames.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from typing import Final, Literal

import msgspec

from adapters.polymarket.parse import AssetMap, UserEvent, decode_user_frame
from adapters.polymarket.schemas import JSON_ENCODER
from adapters.polymarket.secrets import ApiCredentials
from adapters.polymarket.ws_channel import ChannelClient, StaleConnectionError, backoff_delay_s

__all__ = [
    "DEFAULT_USER_WS_URL",
    "StaleConnectionError",
    "UserWsClient",
    "UserWsConfig",
    "UserWsStatus",
    "backoff_delay_s",
]

logger = logging.getLogger(__name__)
# websockets logs every frame at DEBUG, the subscribe frame (with the secret) included.
_wire_logger = logging.getLogger(f"{__name__}.wire")
_wire_logger.setLevel(logging.INFO)

DEFAULT_USER_WS_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/user"


class UserWsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Connection settings (seconds)."""

    url: str = DEFAULT_USER_WS_URL
    ping_interval_s: float = 10.0
    #: The official SDK treats 30 s without a PONG as a dead connection.
    stale_after_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_factor: float = 2.0
    #: Extra delay drawn uniformly from ``[0, jitter * delay]``.
    backoff_jitter: float = 0.25
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    max_message_bytes: int = 4 * 1024 * 1024
    #: websockets' proxy setting: True reads the environment, None connects directly.
    proxy: str | Literal[True] | None = True


class UserWsStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Counters for status pages and tests."""

    connected: bool
    connects: int
    reconnects: int
    messages: int
    events: int
    skipped: int
    pings: int
    pongs: int
    callback_errors: int
    last_error: str


class UserWsClient(ChannelClient[UserWsConfig]):
    """User-channel subscriber for a fixed set of markets; see the module docstring."""

    def __init__(
        self,
        assets: AssetMap,
        creds: ApiCredentials,
        on_event: Callable[[UserEvent], None],
        *,
        on_reconnect: Callable[[], None] | None = None,
        on_subscribed: Callable[[], None] | None = None,
        markets: Sequence[str] | None = None,
        config: UserWsConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Set up the client; nothing connects until ``run()`` or ``start_in_thread()``.

        Args:
            assets: Tokens of our markets (events for other tokens are dropped).
            creds: API credentials for the subscribe frame.
            on_event: Called on the client's loop thread with every parsed event.
            on_reconnect: Called after every re-subscription (not the first): ask for a reconcile.
            on_subscribed: Called after every subscription, the first too (what happened before it
                was not heard).
            markets: Condition ids to subscribe to; every market of ``assets`` when None.
            config: Connection settings.
            rng: Source of reconnect jitter; a fresh unseeded ``random.Random()`` when None (live only).
        """
        super().__init__(
            config or UserWsConfig(), rng, label="user ws", logger=logger, wire_logger=_wire_logger
        )
        self._assets = assets
        self._creds = creds
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._on_subscribed_cb = on_subscribed
        if markets is None:
            markets = list(dict.fromkeys(market for _, (market, _) in assets.items()))
        self._markets = tuple(markets)

    def __repr__(self) -> str:
        return f"UserWsClient(url={self._cfg.url!r}, markets={len(self._markets)}, creds={self._creds!r})"

    def start_in_thread(self, name: str = "polymm-ws-user") -> threading.Thread:
        """Run the client on a daemon thread with its own event loop; ``stop()`` ends it."""
        return super().start_in_thread(name)

    def status(self) -> UserWsStatus:
        """A snapshot of the counters."""
        return UserWsStatus(**self._counters())

    # --- connection hooks ------------------------------------------------------------------------

    def _subscribe_text(self) -> str:
        frame = {"type": "user", "auth": self._creds.ws_auth(), "markets": list(self._markets)}
        return JSON_ENCODER.encode(frame).decode()

    def _on_subscribed(self) -> None:
        logger.info("user ws: subscribed to %d markets at %s", len(self._markets), self._cfg.url)
        callbacks = [self._on_subscribed_cb]
        if self._connects > 1:
            callbacks.append(self._on_reconnect)
        for cb in callbacks:
            if cb is None:
                continue
            try:
                cb()
            except Exception:
                self._callback_errors += 1
                logger.exception("user ws: subscription callback failed")

    # --- frames ----------------------------------------------------------------------------------

    def _on_message(self, frame: str | bytes) -> None:
        reasons: list[str] = []
        events = decode_user_frame(frame, self._assets, skipped=reasons)
        self._skipped += len(reasons)
        for event in events:
            self._events += 1
            try:
                self._on_event(event)
            except Exception:
                self._callback_errors += 1
                logger.exception("user ws: on_event failed for %s", type(event).__name__)
