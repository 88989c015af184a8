"""Live trading wiring: the key, the venue's SDK client, the order gateway and its ledger, the user channel.

Imported only by ``run-market-maker --mode live``. The key comes from ``POLYMM_PRIVATE_KEY`` or a key
file (``--key-file`` / ``POLYMM_PRIVATE_KEY_FILE``), API credentials from ``POLYMM_API_KEY``,
``POLYMM_API_SECRET`` and ``POLYMM_API_PASSPHRASE`` (checked with the venue before anything else) or
derived with the key (L1). Every secret is registered with the log redaction filter before anything
is logged. The client is ``polymarket-client``'s ``SecureClient`` for the key's own address, on
``PRODUCTION`` or, for any other CLOB, on an environment pointed at it (``adapters.polymarket.sdk``).
Each market trades by the protocol Gamma names (V1 token ids or Protocol V2 position ids); a market
whose ids the SDK classifies otherwise is left out with one line.

Start-up order (``start_live``): the gateway starts (and its heartbeat thread, so orders of an
earlier run that we adopt stay alive), then its ``Startup`` loads the venue's truth (positions with
their cost, recent trades, every open order of ours on any market: adopted or cancelled), and only
then are the sessions created, each with its market's true position (``inventory``). Reports and
event-log records from before the engine exists are kept and handed over by ``attach``. It returns a
``LiveConnection``; ``app.compose.bootstrap`` builds the engine around it.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pykka

from actors.gateway import (
    GatewayConfig,
    GatewayStatus,
    GetGatewayStatus,
    Shutdown,
    ShutdownReport,
    Startup,
    StartupReport,
)
from adapters.clock import LiveClock
from adapters.polymarket import sdk
from adapters.polymarket.clob_port import connect_venue, market_protocol_problem
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.rewards import VenueRewards
from adapters.polymarket.secrets import (
    SecretError,
    install_log_redaction,
    load_api_credentials,
    load_private_key,
)
from adapters.polymarket.ws_user import UserWsClient, UserWsConfig
from app.configfile import ConfigFileError
from app.gateway import start_gateway
from core.config import Config
from core.inventory import Inventory
from core.markets import MarketInfo
from core.messages import TickSizeChanged
from core.ports import ExchangePort
from core.units import format_qty

log = logging.getLogger("polymm.live")

DEFAULT_DATA_API_URL = "https://data-api.polymarket.com"
PRODUCTION_CLOB_URL = "https://clob.polymarket.com"


class LiveStartError(ConfigFileError):
    """Live trading could not start safely (one line, exit 2)."""


def user_ws_url(market_ws_url: str) -> str:
    """The user channel next to a market channel URL (``…/ws/market`` → ``…/ws/user``)."""
    base = market_ws_url.rstrip("/")
    return base[: -len("/market")] + "/user" if base.endswith("/market") else base + "/user"


def data_api_url(args: argparse.Namespace) -> str:
    """``--data-api-url``; else production's for production, the CLOB's ``/data-api`` otherwise."""
    given = getattr(args, "data_api_url", None)
    if given:
        return str(given)
    clob = str(args.clob_url).rstrip("/")
    return DEFAULT_DATA_API_URL if clob == PRODUCTION_CLOB_URL else clob + "/data-api"


def gateway_config(cfg: Config) -> GatewayConfig:
    """The gateway's settings from the strategy config's ``ops``."""
    ops = cfg.ops
    return GatewayConfig(
        on_start=ops.on_start,
        reconcile_interval_s=ops.reconcile_interval_s,
        max_rate_limit_pause_s=ops.max_rate_limit_pause_s,
        rate_limit_tier=ops.rate_limit_tier,
        drift_resync_listings=ops.drift_resync_listings,
        drift_resync_min_s=ops.drift_resync_min_s,
    )


class _Held:
    """Messages and event-log records from before the engine exists, handed over once it does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tell: Callable[[str, object], object] | None = None
        self._sink: Any = None
        self._messages: list[tuple[str, object]] = []
        self._records: list[tuple[str, int, str, object]] = []

    def route(self, market: str, message: object) -> object:
        with self._lock:
            if self._tell is None:
                self._messages.append((market, message))
                return None
            tell = self._tell
        return tell(market, message)

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        with self._lock:
            if self._sink is None:
                self._records.append((kind, ts_ns, market, payload))
                return
            sink = self._sink
        sink.record(kind, ts_ns, market, payload)

    def attach(self, tell: Callable[[str, object], object], sink: Any) -> None:
        with self._lock:
            for rec in self._records:
                sink.record(*rec)
            for market, message in self._messages:
                tell(market, message)
            self._records, self._messages = [], []
            self._tell, self._sink = tell, sink


@dataclass(frozen=True, eq=False)
class LiveConnection:
    """A started live venue: the gateway with the venue's truth loaded, the user channel ready.

    ``markets`` are those traded (a market whose ids disagree with its protocol version is left
    out), ``port`` the exchange port every market session sends through, ``wallet`` the key's
    address, ``inventory`` each market's position at start (the venue's), ``gateway`` the order
    gateway's ref (the control plane's watch and cancel-all confirmation, ``app.control``).
    """

    markets: list[MarketInfo]
    port: ExchangePort
    wallet: str
    inventory: dict[str, Inventory]
    gateway: pykka.ActorRef[Any]
    _held: _Held = field(repr=False)
    _ws: UserWsClient = field(repr=False)
    _client: Any = field(repr=False)

    def attach(self, engine: Any) -> None:
        """Hand the engine what came before it; tell the gateway tick changes; start the user channel."""
        self._held.attach(engine.router.tell, engine.sink)
        engine.rewards_venue = VenueRewards(self._client, self.markets)  # (reward tracking, app.rewards)
        gateway = self.gateway

        def tick_listener(ev: object) -> None:
            # The gateway signs with the market's current tick: tell it about every change.
            if isinstance(ev, TickSizeChanged):
                gateway.tell(ev)

        engine.dispatch.listeners.append(tick_listener)
        self._ws.start_in_thread()

    def shutdown(self) -> dict[str, Any]:
        """Cancel every order and stop; for the summary (``confirmed``, ``may_remain``: the exit code)."""
        try:
            rep = cast(ShutdownReport, self.gateway.ask(Shutdown(), timeout=120))
            status = cast(GatewayStatus, self.gateway.ask(GetGatewayStatus(), timeout=10))
        finally:
            self.gateway.stop()
            self._ws.stop()
            self._client.close()
        return {
            "canceled": rep.canceled,
            "still_open": len(rep.remaining),
            "confirmed": rep.confirmed,
            "heartbeat_max_gap_s": round(status.heartbeat_max_gap_s, 2),
            "may_remain": rep.described,
        }

    def cancel_all_now(self) -> list[str]:
        """A forced exit's one cancel-all and one listing, from any thread: our venue ids still listed.

        (A second signal, ``app.commands.run``.) The listing is read even when the cancel-all is
        refused (a venue answering 425), so the exit names what remains; empty: none.
        """
        try:
            self._client.cancel_all()
        except Exception as exc:
            log.warning(
                "forced exit: the cancel-all failed: %s",
                " ".join(f"{type(exc).__name__}: {exc}".split())[:200],
            )
        return [str(o.id) for page in self._client.list_open_orders() for o in page.items]


def start_live(args: argparse.Namespace, cfg: Config, markets: Sequence[MarketInfo]) -> LiveConnection:
    """Build the gateway, load the venue's truth, prepare the user channel (``LiveConnection``)."""
    try:
        key = load_private_key(os.environ, key_file=args.key_file)
    except SecretError as exc:
        raise ConfigFileError(f"--key-file / POLYMM_PRIVATE_KEY: {exc}") from None
    install_log_redaction([key])
    creds_given = load_api_credentials(os.environ)
    if creds_given is not None:
        install_log_redaction([key, *creds_given.secret_values()])
    market_ws = str(getattr(args, "ws_url", "") or "") or None
    data_url = data_api_url(args)
    environment = sdk.environment_for(
        args.clob_url,
        data_url=data_url,
        gamma_url=getattr(args, "gamma_url", None),
        market_ws_url=market_ws,
        user_ws_url=getattr(args, "user_ws_url", None) or (user_ws_url(market_ws) if market_ws else None),
    )
    # Bad credentials stop the run here (one line, exit 2: app.commands.run).
    client, signer, creds, rate_limits = connect_venue(environment, key, creds_given)
    install_log_redaction([key, *creds.secret_values()])
    wallet = signer.address
    traded: list[MarketInfo] = []
    for m in markets:
        problem = market_protocol_problem(m)
        if problem is not None:
            print(f"  refused: {problem}")
        else:
            traded.append(m)
    if not traded:
        client.close()
        raise LiveStartError(f"live: none of the {len(markets)} markets can be traded (see the lines above)")
    v2 = sum(1 for m in traded if m.version == "v2")
    print(
        f"LIVE trading as wallet {wallet} on {args.clob_url} ({len(traded)} markets: {len(traded) - v2} V1,"
        f" {v2} Protocol V2) through polymarket-client {sdk.sdk_version()}; positions from {data_url}"
    )
    held = _Held()
    gateway, port, bridge = start_gateway(
        client,
        signer,
        traded,
        held.route,
        LiveClock(),
        config=gateway_config(cfg),
        rate_limits=rate_limits,
        sink=held,
    )
    report = cast(StartupReport, gateway.ask(Startup(), timeout=300))
    _print_startup(report, cfg)
    if not report.positions_loaded and any(e.startswith("list positions") for e in report.errors):
        gateway.ask(Shutdown(), timeout=120)
        gateway.stop()
        client.close()
        raise LiveStartError(f"live: cannot start without the venue's positions: {report.errors[0]}")
    ws = UserWsClient(
        AssetMap.from_markets(traded),
        creds,
        bridge.on_event,
        on_reconnect=bridge.on_reconnect,
        on_subscribed=bridge.on_subscribed,
        config=UserWsConfig(url=getattr(args, "user_ws_url", None) or user_ws_url(args.ws_url)),
    )

    return LiveConnection(
        markets=traded,
        port=port,
        wallet=wallet,
        inventory=dict(report.positions),
        gateway=gateway,
        _held=held,
        _ws=ws,
        _client=client,
    )


def _print_startup(report: StartupReport, cfg: Config) -> None:
    held = {m: inv for m, inv in report.positions.items() if inv.yes_qty or inv.no_qty}
    if report.positions_loaded:
        print(f"positions: {len(held)} of our markets hold shares (the venue's, with their cost)")
    else:
        print("positions: the venue lists none for this wallet (every market starts from zero)")
    for m, inv in sorted(held.items()):
        print(f"  {m[:20]:<20} YES {format_qty(inv.yes_qty)}  NO {format_qty(inv.no_qty)}")
    print(
        f"open orders of ours at start: {report.adopted} adopted (ops.on_start: {cfg.ops.on_start}), "
        f"{report.canceled} cancelled; {report.pre_start_trades} recent trades already in the positions"
    )
    for err in report.errors:
        print(f"  start-up: {err}")
