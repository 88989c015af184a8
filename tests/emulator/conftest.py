"""Emulator test fixtures: a small deterministic scenario, test keys, and a real V2 CLOB client.

``NO_PROXY`` is set before ``py_clob_client_v2`` is imported: its module-level ``httpx`` client reads
the proxy settings once, at import.
"""

from __future__ import annotations

import hashlib
import os

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from py_clob_client_v2 import ClobClient
from websockets.sync.client import ClientConnection

from core.units import QTY_ONE
from emulator import Emulator
from emulator.scenario import (
    FaultRule,
    FlowConfig,
    InitialBook,
    MarketConfig,
    Scenario,
)

#: Deterministic test private keys (never funded anywhere).
KEY_A = "0x" + hashlib.sha256(b"polymm emulator test key A").hexdigest()
KEY_B = "0x" + hashlib.sha256(b"polymm emulator test key B").hexdigest()

QUIET = "quiet-market"
BUSY = "busy-market"
NEGRISK = "negrisk-market"


def make_scenario(faults: tuple[FaultRule, ...] = (), **overrides: Any) -> Scenario:
    """Three markets: QUIET (static book, no flow), BUSY (static book, fast takers), NEGRISK (tick 0.001).

    QUIET and NEGRISK books: bids 0.48/0.47, asks 0.52/0.53 (100 shares each); nothing moves them
    but the test.
    """
    lot = 100 * QTY_ONE
    book = InitialBook(bids=((4800, lot), (4700, lot)), asks=((5200, lot), (5300, lot)))
    off = FlowConfig(enabled=False)
    takers = FlowConfig(
        maker_levels=0,
        taker_rate_per_s=8.0,
        taker_qty_min=5 * QTY_ONE,
        taker_qty_max=5 * QTY_ONE,
        fair_vol_px_per_s=0,
    )
    base: dict[str, Any] = {
        "name": "emulator-tests",
        "seed": 7,
        "markets": (
            MarketConfig(slug=QUIET, question="Quiet?", initial_book=book, flow=off, volume_24h=20_000),
            MarketConfig(
                slug=BUSY,
                question="Busy?",
                initial_book=InitialBook(bids=((4800, 1_000 * QTY_ONE),), asks=((5200, 1_000 * QTY_ONE),)),
                flow=takers,
                fee_rate_ppm=40_000,
            ),
            MarketConfig(
                slug=NEGRISK,
                question="Neg risk?",
                tick_px=10,
                neg_risk=True,
                initial_book=book,
                flow=off,
            ),
        ),
        "heartbeat_timeout_ms": 10_000,
        "trade_mined_ms": 50,
        "trade_confirmed_ms": 120,
        "step_ms": 10,
        "page_size": 3,
        "faults": faults,
    }
    base.update(overrides)
    return Scenario(**base)


V1_MARKET = "v1-market"
V2_MARKET = "v2-market"
V2_NEGRISK = "v2-negrisk-market"


def mixed_scenario(**overrides: Any) -> Scenario:
    """One V1 market and two Protocol V2 markets (one neg-risk, tick 0.001), static books, no flow.

    Books: bids 0.48/0.47, asks 0.52/0.53, 100 shares each; nothing moves them but the test.
    """
    lot = 100 * QTY_ONE
    book = InitialBook(bids=((4800, lot), (4700, lot)), asks=((5200, lot), (5300, lot)))
    off = FlowConfig(enabled=False)
    base: dict[str, Any] = {
        "name": "protocol-tests",
        "seed": 11,
        "markets": (
            MarketConfig(slug=V1_MARKET, question="V1?", initial_book=book, flow=off),
            MarketConfig(slug=V2_MARKET, version="v2", question="V2?", initial_book=book, flow=off),
            MarketConfig(
                slug=V2_NEGRISK,
                version="v2",
                question="V2 neg risk?",
                tick_px=10,
                neg_risk=True,
                initial_book=book,
                flow=off,
            ),
        ),
        "heartbeat_timeout_ms": 10_000,
        "trade_mined_ms": 50,
        "trade_confirmed_ms": 120,
    }
    base.update(overrides)
    return Scenario(**base)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(make_scenario(), port=0) as e:
        yield e


def ids(e: Emulator, slug: str) -> dict[str, str]:
    """``{slug, version, market, yes_token, no_token}`` of one market."""
    return next(m for m in e.venue.market_ids() if m["slug"] == slug)


def make_client(e: Emulator, key: str = KEY_A) -> ClobClient:
    """A V2 client with API credentials from the emulator (create, or derive when they exist)."""
    client = ClobClient(e.clob_url, 137, key=key)
    client.set_api_creds(client.create_or_derive_api_key())
    return client


@pytest.fixture
def client(emu: Emulator) -> ClobClient:
    return make_client(emu)


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def recv_until(ws: ClientConnection, pred: Callable[[list[str]], bool], timeout: float = 5.0) -> list[str]:
    """Receive text frames until ``pred(frames so far)`` holds; fail after ``timeout`` seconds."""
    frames: list[str] = []
    deadline = time.monotonic() + timeout
    while not pred(frames):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching frames within {timeout} s; got {frames[-5:]}")
        try:
            frames.append(str(ws.recv(timeout=remaining)))
        except TimeoutError:
            continue
    return frames


def events(frames: list[str]) -> list[dict[str, Any]]:
    """Every JSON event in the frames (objects and arrays flattened; PONG skipped)."""
    out: list[dict[str, Any]] = []
    for f in frames:
        if f == "PONG":
            continue
        raw = msgspec.json.decode(f)
        out.extend(raw if isinstance(raw, list) else [raw])
    return out


def status(e: Emulator) -> dict[str, Any]:
    """``GET /emulator/status`` as served."""
    import httpx  # noqa: PLC0415

    return json.loads(httpx.get(f"{e.clob_url}/emulator/status", timeout=5).text)


def l2_request(
    e: Emulator,
    client: ClobClient,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    """One L2-signed request, as the client would send it, answered with its headers (an httpx Response)."""
    import httpx  # noqa: PLC0415

    from emulator.auth import l2_signature  # noqa: PLC0415

    creds = client.creds
    text = "" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    ts = str(e.clock.now_ns() // 1_000_000_000)
    headers = {
        "POLY_ADDRESS": client.get_address(),
        "POLY_API_KEY": creds.api_key,
        "POLY_PASSPHRASE": creds.api_passphrase,
        "POLY_TIMESTAMP": ts,
        "POLY_SIGNATURE": l2_signature(creds.api_secret, ts, method, path, text),
        "Content-Type": "application/json",
    }
    return httpx.request(
        method, f"{e.clob_url}{path}", headers=headers, content=text, params=params, timeout=5
    )


def order_body(
    client: ClobClient, token: str, price: float, size: float, side: str = "BUY"
) -> dict[str, Any]:
    """The JSON body of one post-only GTC limit order, signed by ``client``."""
    from py_clob_client_v2.clob_types import OrderArgsV2, OrderType, PartialCreateOrderOptions  # noqa: PLC0415
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2  # noqa: PLC0415

    opts = PartialCreateOrderOptions(tick_size="0.01", neg_risk=False)
    signed = client.create_order(OrderArgsV2(token_id=token, price=price, size=size, side=side), opts)
    body: dict[str, Any] = order_to_json_v2(signed, client.creds.api_key, OrderType.GTC, True, False)
    return body


def control(e: Emulator, method: str, path: str, body: Any = None, **params: str) -> Any:
    """One ``/emulator/*`` control request; returns the decoded JSON (fails the test on a non-200)."""
    import httpx  # noqa: PLC0415

    r = httpx.request(method, f"{e.clob_url}{path}", json=body, params=params or None, timeout=5)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()
