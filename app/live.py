"""Live trading wiring: the key, the CLOB client, the order gateway and the user channel.

Imported only by ``run-market-maker --mode live``. The key comes from ``POLYMM_PRIVATE_KEY`` or a key
file (``--key-file`` / ``POLYMM_PRIVATE_KEY_FILE``), API credentials from ``POLYMM_API_KEY``,
``POLYMM_API_SECRET`` and ``POLYMM_API_PASSPHRASE`` or derived with the key (L1). Every secret is
registered with the log redaction filter before anything is logged.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, cast

from eth_account import Account

from actors.gateway import GatewayConfig, GatewayStatus, GetGatewayStatus, Shutdown, ShutdownReport
from adapters.clock import LiveClock
from adapters.polymarket.clob_port import sdk_retry_after_probe, start_gateway
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.secrets import (
    SecretError,
    build_clob_client,
    install_log_redaction,
    load_api_credentials,
    load_private_key,
    verify_credentials,
)
from adapters.polymarket.ws_user import UserWsClient, UserWsConfig
from app.configfile import ConfigFileError
from core.config import Config
from core.markets import MarketInfo
from core.messages import TickSizeChanged

log = logging.getLogger("polymm.live")


def user_ws_url(market_ws_url: str) -> str:
    """The user channel next to a market channel URL (``…/ws/market`` → ``…/ws/user``)."""
    base = market_ws_url.rstrip("/")
    return base[: -len("/market")] + "/user" if base.endswith("/market") else base + "/user"


def start_live(args: argparse.Namespace, cfg: Config, markets: Sequence[MarketInfo]) -> dict[str, Any]:
    """Build the gateway and the user channel; returns ``port``, ``attach(engine)`` and ``shutdown()``."""
    try:
        key = load_private_key(os.environ, key_file=args.key_file)
    except SecretError as exc:
        raise ConfigFileError(f"--key-file / POLYMM_PRIVATE_KEY: {exc}") from None
    install_log_redaction([key])
    wallet = Account.from_key(key.reveal()).address
    client, creds = build_clob_client(args.clob_url, key, load_api_credentials(os.environ))
    install_log_redaction([key, *creds.secret_values()])
    verify_credentials(client)  # bad credentials stop the run here (one line, exit 2: app.commands.run)
    print(f"LIVE trading as wallet {wallet} on {args.clob_url} ({len(markets)} markets)")
    holder: dict[str, Callable[[str, object], object]] = {}

    def route(market: str, message: object) -> object:
        deliver = holder.get("tell")
        return deliver(market, message) if deliver is not None else None

    clock = LiveClock()
    gateway, port, bridge = start_gateway(
        client, markets, route, clock, config=GatewayConfig(), retry_after=sdk_retry_after_probe()
    )
    ws = UserWsClient(
        AssetMap.from_markets(markets),
        creds,
        bridge.on_event,
        on_reconnect=bridge.on_reconnect,
        config=UserWsConfig(url=getattr(args, "user_ws_url", None) or user_ws_url(args.ws_url)),
    )

    def attach(engine: Any) -> None:
        holder["tell"] = engine.router.tell

        def tick_listener(ev: object) -> None:
            # The gateway signs with the market's current tick: tell it about every change.
            if isinstance(ev, TickSizeChanged):
                gateway.tell(ev)

        engine.dispatch.listeners.append(tick_listener)
        ws.start_in_thread()

    def shutdown() -> dict[str, Any]:
        report = cast(ShutdownReport, gateway.ask(Shutdown(), timeout=60))
        status = cast(GatewayStatus, gateway.ask(GetGatewayStatus(), timeout=10))
        gateway.stop()
        ws.stop()
        return {
            "canceled": report.canceled,
            "still_open": len(report.remaining),
            "confirmed": report.confirmed,
            "open_orders": status.open_orders,
        }

    def cancel_all_now() -> bool:
        # A forced exit (a second signal, app.commands.run): one cancel-all and one listing, from any
        # thread. True when the venue lists no open order of ours afterwards.
        client.cancel_all()
        rows = client.get_open_orders()
        return isinstance(rows, list) and not rows

    return {
        "port": port,
        "attach": attach,
        "shutdown": shutdown,
        "wallet": wallet,
        "cancel_all_now": cancel_all_now,
    }
