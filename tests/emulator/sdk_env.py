"""The official client (``polymarket-client``) pointed at a local emulator: the tests' copy of the one hook.

The SDK's only public environment is ``PRODUCTION``; an environment for another base URL needs the
private ``polymarket.environments._create_environment``. polymm's own copy of this hook lives with
the live adapter (``adapters/polymarket/``, issue #11); this one serves the emulator's tests until
the two are merged, so keep them the same. Every URL a test does not mean to call (relayer, RPC,
RFQ, perps, the other streams) points at the discard port, so a stray call fails at once instead of
reaching the network.

Import this module only after ``pytest.importorskip("polymarket")``.
"""

from __future__ import annotations

import dataclasses

import polymarket
from polymarket import PRODUCTION, Environment
from polymarket.environments import _create_environment

__all__ = ["SDK_VERSION", "local_environment"]

#: The version these tests were written against (the hook is private API: re-check it on upgrades).
SDK_VERSION = "0.14.0"

_DEAD_HTTP = "http://127.0.0.1:9"
_DEAD_WS = "ws://127.0.0.1:9"


def local_environment(base_url: str, *, name: str = "polymm-emulator") -> Environment:
    """An SDK environment whose CLOB, Gamma, Data API and channels are the emulator at ``base_url``."""
    if polymarket.__version__ != SDK_VERSION:
        raise RuntimeError(f"polymarket-client {polymarket.__version__}: these tests pin {SDK_VERSION}")
    ws = base_url.replace("http://", "ws://", 1)
    config = dataclasses.replace(
        PRODUCTION._config,
        clob_url=base_url,
        gamma_url=f"{base_url}/gamma",
        data_url=f"{base_url}/data-api",
        clob_market_ws_url=f"{ws}/ws/market",
        clob_user_ws_url=f"{ws}/ws/user",
        relayer_url=_DEAD_HTTP,
        rpc_url=_DEAD_HTTP,
        rfq_url=_DEAD_HTTP,
        perps_url=_DEAD_HTTP,
        builder_gateway_url=_DEAD_HTTP,
        collateral_return_url=_DEAD_HTTP,
        rtds_ws_url=_DEAD_WS,
        sports_ws_url=_DEAD_WS,
        realtime_ws_url=_DEAD_WS,
        perps_ws_url=_DEAD_WS,
        rfq_quoter_ws_url=_DEAD_WS,
    )
    return _create_environment(name=name, config=config)
