"""The venue SDK's own order signing, offline: a reference to compare ours with (tests only).

``polymarket.SecureClient.create_limit_order`` reads each market's tick and neg-risk flag over the
network (``/markets-by-token``, ``/clob-markets``) and draws a random salt and the wall clock. This
builds a client without any network call and pre-seeds those caches, and fixes salt and timestamp,
all through the SDK's private internals of the pinned 0.14.0 (``tests/adapters/test_sdk.py`` fails
first when they change).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from eth_account import Account
from polymarket import PRODUCTION, ApiKeyCreds, SecureClient
from polymarket._internal.actions.orders import orders as sdk_orders
from polymarket._internal.actions.orders.market_data import MarketInfo as SdkMarketInfo
from polymarket._internal.actions.orders.market_data import PlatformFeeInfo
from polymarket._internal.environment import get_environment_config
from polymarket._internal.wallet import classify_account

TICK_TEXT = {1000: "0.1", 100: "0.01", 50: "0.005", 25: "0.0025", 10: "0.001", 1: "0.0001"}


def offline_client(private_key: str, environment: Any = PRODUCTION) -> Any:
    """A ``SecureClient`` for the key's own address (EOA) built without a request (dummy credentials)."""
    signer = Account.from_key(private_key)
    cfg = get_environment_config(environment)
    account = classify_account(signer=signer.address, wallet=signer.address, config=cfg.wallet_derivation)
    return SecureClient._construct_for_wallet(
        signer=signer,
        wallet=signer.address,
        wallet_type=account.wallet_type,
        signer_type=account.signer_type,
        environment=environment,
        config=cfg,
        credentials=ApiKeyCreds(key="offline", secret="b2ZmbGluZQ", passphrase="offline"),
        api_key=None,
        logger=None,
        on_rate_limit_update=None,
    )


def seed_market(client: Any, token_id: str, *, tick_px: int, neg_risk: bool) -> None:
    """Tell the client's metadata cache the tick and neg-risk flag of ``token_id`` (no request).

    The seeded markets never expire: the SDK keeps a market for 10 minutes, then asks the network
    again, and a slow run (the compiled check, a loaded machine) reaches some tests later than that.
    """
    condition = "0x" + format(int(token_id) % (1 << 256), "064x")  # any id unique to the token
    cache = client._ctx.order_metadata
    cache._markets._ttl_s = None
    cache._conditions.set(token_id, condition)
    cache._markets.set(
        condition,
        SdkMarketInfo(
            fee_info=PlatformFeeInfo(rate=Decimal(0), exponent=Decimal(0)),
            neg_risk=neg_risk,
            tick_size=Decimal(TICK_TEXT[tick_px]),
            token_ids=frozenset({token_id}),
        ),
    )


@contextmanager
def fixed_salt_and_time(salt: int, timestamp_ms: int) -> Iterator[None]:
    """Make the SDK draw this salt and read this clock while signing."""
    saved = sdk_orders._generate_salt, sdk_orders._current_timestamp_ms
    sdk_orders._generate_salt = lambda: salt
    sdk_orders._current_timestamp_ms = lambda: timestamp_ms
    try:
        yield
    finally:
        sdk_orders._generate_salt, sdk_orders._current_timestamp_ms = saved
