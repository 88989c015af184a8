"""Ports: the interfaces the actors drive, each with a simulated and a live implementation.

Types only (``typing.Protocol``); they take and return our Structs, never client objects or dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.messages import Command


class ExchangePort(Protocol):
    """Where a market session sends its commands (simulator, paper engine or the live gateway).

    Execution reports come back asynchronously as ``ExecEvent`` messages to the session's owner.
    """

    def submit(self, commands: Sequence[Command]) -> None:
        """Hand over commands in order; never blocks on the network."""
        ...

    def cancel_all(self, market: str) -> None:
        """Best-effort cancel of every order of ours in ``market`` (used when an actor fails)."""
        ...


class Clock(Protocol):
    """Time source: simulated in the simulator, the wall clock live."""

    def now_ns(self) -> int:
        """Current time in ns since the epoch."""
        ...


class EventSink(Protocol):
    """Where sessions record what happened (events.jsonl in simulation, the log live)."""

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        """Record one event; ``payload`` is a msgspec-encodable value."""
        ...
