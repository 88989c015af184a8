"""The one module that touches polymarket-client's private surface (pinned ``==0.14.0``).

polymm's live adapter goes through the venue's official SDK (``polymarket-client``, Polymarket/py-sdk):
``SecureClient`` for credentials, posting, cancels, heartbeats, listings and positions. Three things
the SDK does not offer publicly live here and nowhere else:

* **A non-production base URL.** The only public environment is ``PRODUCTION``; ``environment_for``
  builds another one with the private ``polymarket.environments._create_environment`` from
  ``dataclasses.replace(PRODUCTION._config, ...)``: the CLOB, Gamma, Data API and the two CLOB
  channels point where we say, the Polygon JSON-RPC (the official client's merge of YES+NO pairs
  reads balances and broadcasts through it) at ``{clob_url}/rpc`` (the emulator serves it), and
  every service polymm never calls (relayer, RFQ, perps, builder gateway, collateral return and
  their streams) points at a dead loopback port, so a call we did not mean (``create(wallet=None)``
  asks the relayer for a deposit wallet) fails fast instead of reaching production. Chain id and
  contract addresses stay PRODUCTION's (the emulator verifies against them). Production itself uses
  ``PRODUCTION``.
* **The Protocol V2 id test** ``is_v2_position_id`` (``polymarket._internal.protocol``): the SDK
  signs an id whose bits 40..103 are zero for ExchangeV3 (domain "3"), every other id as V1. Our
  markets carry Gamma's ``version``; the adapter refuses a market where the two disagree.
* **The exchange contracts** the orders are signed for (``standard_exchange``, ``neg_risk_exchange``,
  ``exchange_v3`` of the environment's config).

``tests/adapters/test_sdk.py`` asserts ``polymarket.__version__`` and the ``_EnvironmentConfig`` field
names, so an SDK upgrade fails loudly there rather than quietly here.

The SDK is imported lazily (its import takes about a second): nothing here imports it at module load.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from polymarket import Environment

__all__ = [
    "DEAD_HTTP_URL",
    "DEAD_WS_URL",
    "ENV_CONFIG_FIELDS",
    "SDK_VERSION",
    "TRANSPORT_LOGGERS",
    "Contracts",
    "clob_url_of",
    "contracts",
    "environment_for",
    "guard_transport_loggers",
    "is_production",
    "is_v2_position_id",
    "production_urls",
    "sdk_version",
]

#: The polymarket-client version this module was written and tested against (pyproject pins it).
SDK_VERSION: Final = "0.14.0"

#: Every field of the SDK's private ``_EnvironmentConfig`` in 0.14.0 (the test compares them).
ENV_CONFIG_FIELDS: Final = (
    "chain_id",
    "wallet_derivation",
    "collateral_token",
    "conditional_tokens",
    "neg_risk_adapter",
    "collateral_adapter",
    "neg_risk_collateral_adapter",
    "standard_exchange",
    "neg_risk_exchange",
    "auto_redeem_operator",
    "safe_multisend",
    "relay_hub",
    "clob_url",
    "clob_market_ws_url",
    "clob_user_ws_url",
    "relayer_url",
    "gamma_url",
    "data_url",
    "rfq_url",
    "rtds_ws_url",
    "sports_ws_url",
    "rpc_url",
    "exchange_v3",
    "protocol_v2_router",
    "binary_module",
    "neg_risk_module",
    "combinatorial_module",
    "position_manager",
    "rfq_quoter_ws_url",
    "rfq_quoter_ws_headers",
    "builder_gateway_url",
    "collateral_return_url",
    "perps_url",
    "perps_ws_url",
    "realtime_ws_url",
    "realtime_ws_headers",
    "perps_deposit_contract",
    "relayer_max_polls",
    "relayer_poll_frequency_ms",
)

#: The discard port on loopback: a service polymm must never call fails at once.
DEAD_HTTP_URL: Final = "http://127.0.0.1:9"
DEAD_WS_URL: Final = "ws://127.0.0.1:9"
_DEAD_HTTP_FIELDS: Final = (
    "relayer_url",
    "rfq_url",
    "perps_url",
    "builder_gateway_url",
    "collateral_return_url",
)
_DEAD_WS_FIELDS: Final = (
    "rtds_ws_url",
    "sports_ws_url",
    "realtime_ws_url",
    "perps_ws_url",
    "rfq_quoter_ws_url",
)

#: HTTP/2 and HTTP loggers: hpack logs header values (API key, passphrase, HMAC) at DEBUG.
TRANSPORT_LOGGERS: Final = ("hpack", "h2", "httpcore", "httpx")


class Contracts(NamedTuple):
    """Where orders are signed for: the chain and the three exchanges."""

    chain_id: int
    standard_exchange: str
    neg_risk_exchange: str
    exchange_v3: str


def sdk_version() -> str:
    """The installed polymarket-client's version."""
    import polymarket  # noqa: PLC0415

    return str(polymarket.__version__)


def production_urls() -> dict[str, str]:
    """PRODUCTION's CLOB, Gamma, Data API and channel URLs, under ``environment_for``'s argument names."""
    from polymarket import PRODUCTION  # noqa: PLC0415

    cfg = PRODUCTION._config
    return {
        "clob_url": cfg.clob_url,
        "gamma_url": cfg.gamma_url,
        "data_url": cfg.data_url,
        "market_ws_url": cfg.clob_market_ws_url,
        "user_ws_url": cfg.clob_user_ws_url,
    }


def _same(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def is_production(clob_url: str, data_url: str) -> bool:
    """Whether the two services the SDK calls for us (CLOB, Data API) are production's."""
    prod = production_urls()
    return _same(clob_url, prod["clob_url"]) and _same(data_url, prod["data_url"])


def environment_for(
    clob_url: str,
    *,
    data_url: str | None = None,
    gamma_url: str | None = None,
    market_ws_url: str | None = None,
    user_ws_url: str | None = None,
    rpc_url: str | None = None,
) -> Environment:
    """``PRODUCTION`` for production's CLOB and Data API; else an environment pointed at these URLs.

    Args:
        clob_url: CLOB REST base (``http://127.0.0.1:PORT`` for the emulator).
        data_url: Data API base (positions: ``{data_url}/v2/positions``). Default: production's for
            production's CLOB, else ``{clob_url}/data-api`` (where the emulator serves it).
        gamma_url: Gamma base (the SDK's Gamma calls; polymm reads Gamma itself). Default:
            ``{clob_url}/gamma``.
        market_ws_url, user_ws_url: The CLOB channels (polymm runs its own clients on them).
            Default: ``ws(s)://`` + the CLOB host + ``/ws/market`` and ``/ws/user``.
        rpc_url: Polygon JSON-RPC (merges). Default: ``{clob_url}/rpc`` (the emulator's).
    """
    from polymarket import PRODUCTION  # noqa: PLC0415
    from polymarket.environments import _create_environment  # noqa: PLC0415  (private: see above)

    if data_url is None:
        prod = production_urls()
        data_url = (
            prod["data_url"] if _same(clob_url, prod["clob_url"]) else clob_url.rstrip("/") + "/data-api"
        )
    if is_production(clob_url, data_url):
        return PRODUCTION
    base = clob_url.rstrip("/")
    ws_base = "ws" + base.removeprefix("http") if base.startswith("http") else base
    overrides: dict[str, object] = {
        "clob_url": base,
        "gamma_url": (gamma_url or base + "/gamma").rstrip("/"),
        "data_url": data_url.rstrip("/"),
        "clob_market_ws_url": market_ws_url or ws_base + "/ws/market",
        "clob_user_ws_url": user_ws_url or ws_base + "/ws/user",
        "rpc_url": (rpc_url or base + "/rpc").rstrip("/"),
    }
    overrides.update(dict.fromkeys(_DEAD_HTTP_FIELDS, DEAD_HTTP_URL))
    overrides.update(dict.fromkeys(_DEAD_WS_FIELDS, DEAD_WS_URL))
    config = dataclasses.replace(PRODUCTION._config, **overrides)  # type: ignore[arg-type]
    return _create_environment(name="polymm-custom", config=config)


def clob_url_of(environment: Environment) -> str:
    """The CLOB base URL of ``environment``."""
    return str(environment._config.clob_url)


def contracts(environment: Environment) -> Contracts:
    """The chain id and exchange addresses orders are signed for in ``environment``."""
    cfg = environment._config
    return Contracts(
        chain_id=cfg.chain_id,
        standard_exchange=cfg.standard_exchange,
        neg_risk_exchange=cfg.neg_risk_exchange,
        exchange_v3=cfg.exchange_v3,
    )


def is_v2_position_id(asset_id: str) -> bool:
    """The SDK's own test: True for a Protocol V2 position id (signed for ExchangeV3, domain "3")."""
    from polymarket._internal.protocol import is_v2_position_id as sdk_is_v2  # noqa: PLC0415

    return bool(sdk_is_v2(asset_id))


def guard_transport_loggers() -> None:
    """Keep hpack, h2, httpcore and httpx below DEBUG whatever the root logger's level.

    hpack logs every header it encodes at DEBUG, values included (``POLY_API_KEY``,
    ``POLY_PASSPHRASE``, ``POLY_SIGNATURE`` over HTTP/2 in production); httpcore and h2 log frames.
    httpx keeps its INFO request lines (method and URL, no headers).
    """
    for name in TRANSPORT_LOGGERS:
        lg = logging.getLogger(name)
        floor = logging.INFO if name == "httpx" else logging.WARNING
        if lg.level < floor:  # NOTSET (0) and DEBUG both
            lg.setLevel(floor)
