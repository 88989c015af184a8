"""The periodic position check never blocks order work: the Data API answering 429, through the SDK.

The official client retries a Data API read that gets a 429 by itself, *sleeping* (``time.sleep``,
up to twice, each Retry-After up to 5 s) on the calling thread. The gateway reads positions on a
thread of its own, so a cancel and a new order submitted while that read sleeps reach the venue at
once; once the endpoint answers again (after its Retry-After, never sooner), the check runs.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
import pytest
from eth_account import Account

from actors.gateway import GatewayConfig, GetGatewayStatus, Shutdown, Startup
from actors.supervisor import Router
from adapters.clock import LiveClock
from app.gateway import start_gateway
from core.messages import Cancel, Place
from core.units import QTY_ONE, Outcome, Side
from emulator import Emulator
from tests.adapters.test_gateway_emulator import connect, market_info, open_orders, wait_for
from tests.emulator.conftest import QUIET, control, make_scenario

POSITIONS = "/data-api/v2/positions"
RETRY_AFTER_S = 1  # the emulator's Retry-After is whole seconds; the client sleeps it twice
PROMPT_S = 1.0  # a cancel through the gateway takes milliseconds; today's code took 2 x Retry-After


class PositionRequests:
    """When each positions request left (any thread) and its reply's status, through the SDK's client."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        send = httpx.Client.send

        def spy(client: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
            if request.url.path != POSITIONS:
                return send(client, request, **kw)
            at = time.monotonic()
            reply = send(client, request, **kw)
            with self._lock:
                self.sent.append((at, reply.status_code))
            return reply

        monkeypatch.setattr(httpx.Client, "send", spy)

    def around_the_429s(self) -> list[float]:
        """When the refused requests and the first answered one after them left."""
        with self._lock:
            sent = sorted(self.sent)
        first = next(i for i, (_, code) in enumerate(sent) if code == 429)
        return [at for at, _ in sent[first : first + 4]]


def _fired(emu: Emulator, rule_id: int) -> int:
    return int(next(r["fired"] for r in control(emu, "GET", "/emulator/faults") if r["id"] == rule_id))


def test_a_rate_limited_position_read_never_holds_cancels_or_orders(monkeypatch: pytest.MonkeyPatch):
    requests = PositionRequests(monkeypatch)
    with Emulator(make_scenario(), port=0) as emu:
        client, signer, _, rate_limits = connect(emu, Account.create().key.hex())
        try:
            quiet = market_info(emu, QUIET)
            gateway, port, _ = start_gateway(
                client,
                signer,
                [quiet],
                Router().tell,
                LiveClock(),
                config=GatewayConfig(heartbeat_interval_s=None, reconcile_interval_s=0.5),
                rate_limits=rate_limits,
            )
            try:
                gateway.ask(Startup(), timeout=10)
                rest = Place(
                    market=quiet.market,
                    client_id="q-1",
                    outcome=Outcome.YES,
                    side=Side.BUY,
                    px=4500,
                    qty=5 * QTY_ONE,
                )
                port.submit([rest])
                (first,) = wait_for(lambda: open_orders(client))
                # The periodic check runs while the endpoint answers.
                wait_for(lambda: gateway.ask(GetGatewayStatus(), timeout=5).position_checks)

                # Every attempt the client makes answers 429 (three: its own two retries included).
                rule = control(
                    emu,
                    "POST",
                    "/emulator/faults",
                    {
                        "kind": "http_status",
                        "status": 429,
                        "message": "too many requests",
                        "routes": [f"GET {POSITIONS}"],
                        "retry_after_s": RETRY_AFTER_S,
                        "max_count": 3,
                    },
                )["id"]
                wait_for(lambda: _fired(emu, rule) >= 1)  # a position read is sleeping in the client now
                # One read at a time: no check completes before the endpoint answers again.
                checks_before = gateway.ask(GetGatewayStatus(), timeout=5).position_checks

                submitted = time.monotonic()
                port.submit(
                    [
                        Cancel(market=quiet.market, client_id="q-1"),
                        Place(
                            market=quiet.market,
                            client_id="q-2",
                            outcome=Outcome.YES,
                            side=Side.BUY,
                            px=4400,
                            qty=5 * QTY_ONE,
                        ),
                    ]
                )
                moved = wait_for(
                    lambda: (ids := [o.id for o in open_orders(client)]) and first.id not in ids and ids,
                    timeout=10,
                )
                took_s = time.monotonic() - submitted
                still_limited = _fired(emu, rule)
                # The endpoint answers again after its third 429: the check runs, after Retry-After.
                status = wait_for(
                    lambda: (
                        (s := gateway.ask(GetGatewayStatus(), timeout=5)).position_checks > checks_before
                        and s
                    ),
                    timeout=15,
                )
                assert _fired(emu, rule) == 3
            finally:
                gateway.ask(Shutdown(), timeout=10)
                gateway.stop()
        finally:
            client.close()

    assert took_s < PROMPT_S, f"cancel and place took {took_s:.2f} s behind a sleeping position read"
    assert still_limited < 3  # measured while the position read was still being refused
    assert len(moved) == 1
    assert status.position_check_failures >= 1 and status.rate_limited == 0  # orders were never held
    # Retry-After is honoured by every attempt (the client's two, then ours): no positions request
    # sooner than that after a 429.
    sent = requests.around_the_429s()
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert len(gaps) == 3 and min(gaps) >= RETRY_AFTER_S - 0.05, gaps
