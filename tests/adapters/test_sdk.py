"""The pinned polymarket-client and the private surface ``adapters.polymarket.sdk`` relies on.

An SDK upgrade must fail here, loudly, before anything quietly points production traffic elsewhere
or signs for the wrong exchange.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import polymarket
import pytest
from polymarket import PRODUCTION
from polymarket._internal.protocol import is_v2_position_id
from polymarket.environments import _EnvironmentConfig

from adapters.polymarket import sdk

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_sdk_is_the_pinned_version():
    pin = re.search(r'"polymarket-client==([^"]+)"', (REPO / "pyproject.toml").read_text())

    assert pin is not None and pin.group(1) == sdk.SDK_VERSION
    assert polymarket.__version__ == sdk.SDK_VERSION == sdk.sdk_version()


def test_the_private_environment_config_has_the_fields_we_replace():
    names = tuple(f.name for f in dataclasses.fields(_EnvironmentConfig))

    assert names == sdk.ENV_CONFIG_FIELDS
    assert dataclasses.is_dataclass(PRODUCTION._config) and type(PRODUCTION._config) is _EnvironmentConfig


def test_production_urls_use_the_public_production_environment():
    assert sdk.environment_for("https://clob.polymarket.com") is PRODUCTION
    assert (
        sdk.environment_for("https://clob.polymarket.com/", data_url="https://data-api.polymarket.com")
        is PRODUCTION
    )
    assert sdk.is_production("https://clob.polymarket.com", "https://data-api.polymarket.com")


def test_another_clob_gets_its_own_environment_and_every_unused_service_is_dead():
    env = sdk.environment_for("http://127.0.0.1:5555")
    cfg = env._config

    assert env is not PRODUCTION and env.name == "polymm-custom"
    assert (cfg.clob_url, cfg.gamma_url, cfg.data_url) == (
        "http://127.0.0.1:5555",
        "http://127.0.0.1:5555/gamma",
        "http://127.0.0.1:5555/data-api",
    )
    assert (cfg.clob_market_ws_url, cfg.clob_user_ws_url) == (
        "ws://127.0.0.1:5555/ws/market",
        "ws://127.0.0.1:5555/ws/user",
    )
    assert cfg.rpc_url == "http://127.0.0.1:5555/rpc"  # the emulator's JSON-RPC (merges)
    for name in (
        "relayer_url",
        "rfq_url",
        "perps_url",
        "builder_gateway_url",
        "collateral_return_url",
    ):
        assert getattr(cfg, name) == sdk.DEAD_HTTP_URL, name
    for name in ("rtds_ws_url", "sports_ws_url", "realtime_ws_url", "perps_ws_url", "rfq_quoter_ws_url"):
        assert getattr(cfg, name) == sdk.DEAD_WS_URL, name
    # Nothing else differs: the chain, the contracts orders are signed for, the wallet derivation.
    changed = {
        f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(PRODUCTION._config, f.name)
    }
    urls = {n for n in sdk.ENV_CONFIG_FIELDS if n.endswith("_url")}
    assert changed <= urls
    assert sdk.contracts(env) == sdk.contracts(PRODUCTION)
    assert sdk.contracts(PRODUCTION).exchange_v3 == "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"


def test_explicit_urls_win_and_a_production_clob_with_another_data_api_is_not_production():
    env = sdk.environment_for(
        "https://clob.polymarket.com",
        data_url="http://127.0.0.1:7/data",
        gamma_url="http://127.0.0.1:7/g",
        market_ws_url="wss://example.test/m",
        user_ws_url="wss://example.test/u",
    )

    assert env is not PRODUCTION
    assert (env._config.data_url, env._config.gamma_url) == (
        "http://127.0.0.1:7/data",
        "http://127.0.0.1:7/g",
    )
    assert (env._config.clob_market_ws_url, env._config.clob_user_ws_url) == (
        "wss://example.test/m",
        "wss://example.test/u",
    )
    assert sdk.clob_url_of(env) == "https://clob.polymarket.com"


def test_is_v2_position_id_is_the_sdks():
    position = str(int("02" + "77" * 16 + "00" * 14 + "01", 16))
    token = "71321045679252212594626385532706912750332728571942532289631379312455583992563"

    assert sdk.is_v2_position_id(position) is True is is_v2_position_id(position)
    assert sdk.is_v2_position_id(token) is False is is_v2_position_id(token)
    assert sdk.is_v2_position_id("not a number") is False


@pytest.fixture
def transport_loggers():
    saved = {n: logging.getLogger(n).level for n in sdk.TRANSPORT_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_transport_loggers_stay_below_debug_even_when_everything_else_logs_debug(transport_loggers):
    root = logging.getLogger()
    before = root.level
    try:
        root.setLevel(logging.DEBUG)
        for name in sdk.TRANSPORT_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        logging.getLogger("hpack").setLevel(logging.DEBUG)  # even when someone asked for it

        sdk.guard_transport_loggers()

        # hpack.hpack logs header values (POLY_API_KEY, POLY_PASSPHRASE) at DEBUG.
        for name in ("hpack", "hpack.hpack", "h2", "h2.connection", "httpcore", "httpcore.http11", "httpx"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
        assert logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("polymm.live").isEnabledFor(logging.DEBUG)  # ours untouched
    finally:
        root.setLevel(before)
