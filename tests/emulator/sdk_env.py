"""The official client (``polymarket-client``) pointed at a local emulator, for the emulator's tests.

The SDK's only public environment is ``PRODUCTION``; an environment for another base URL needs its
private API, which polymm confines to one place: ``adapters.polymarket.sdk.environment_for`` (the
live adapter's hook, pinned and tested in ``tests/adapters/test_sdk.py``). This module only names it
the way the emulator's tests call it. Every URL a test does not mean to call (relayer, RPC, RFQ,
perps, the other streams) points at the discard port, so a stray call fails at once.

Import this module only after ``pytest.importorskip("polymarket")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.polymarket.sdk import SDK_VERSION, environment_for

if TYPE_CHECKING:
    from polymarket import Environment

__all__ = ["SDK_VERSION", "local_environment"]


def local_environment(base_url: str) -> Environment:
    """An SDK environment whose CLOB, Gamma, Data API and channels are the emulator at ``base_url``."""
    return environment_for(base_url)
