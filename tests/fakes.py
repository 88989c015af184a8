"""Hand-written fakes for the ports (a fake and a spy: they record what they were asked)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

from core.messages import Cancel, CancelAll, Command, Place


class FakeClock:
    def __init__(self, t: int = 10**18 + 1_000_000) -> None:  # 1 ms after the tests' T0
        self.t = t

    def now_ns(self) -> int:
        return self.t


class FakeExchangePort:
    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.cancel_all_calls: list[str] = []
        self.changed = threading.Event()

    def submit(self, commands: Sequence[Command]) -> None:
        self.commands.extend(commands)
        self.changed.set()

    def cancel_all(self, market: str) -> None:
        self.cancel_all_calls.append(market)
        self.commands.append(CancelAll(market=market))
        self.changed.set()

    @property
    def places(self) -> list[Place]:
        return [c for c in self.commands if isinstance(c, Place)]

    @property
    def cancels(self) -> list[Cancel]:
        return [c for c in self.commands if isinstance(c, Cancel)]


class ListSink:
    def __init__(self) -> None:
        self.records: list[tuple[str, int, str, object]] = []

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        self.records.append((kind, ts_ns, market, payload))

    def kinds(self, kind: str) -> list[object]:
        return [p for k, _, _, p in self.records if k == kind]


def book_frame(market: str, token: str, bid: str, ask: str) -> str:
    """A market-channel ``book`` frame of one token, one level a side (500 shares), as the venue sends it."""
    return json.dumps(
        {
            "event_type": "book",
            "market": market,
            "asset_id": token,
            "timestamp": "1800000000000",
            "bids": [{"price": bid, "size": "500"}],
            "asks": [{"price": ask, "size": "500"}],
        }
    )
