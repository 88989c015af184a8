"""The simulation's event log: one JSON object per line with ``kind``, ``ts_ns`` and ``market`` first.

Lines are buffered per market (an ``EventSink``) and written by the runner in a fixed order, so the
log is byte-identical for the same inputs and seed whatever engine or thread produced it.
"""

from __future__ import annotations

from typing import Any

import msgspec

_ENC = msgspec.json.Encoder()
_HEAD_KEYS = ("kind", "ts_ns", "market")


class BufferSink:
    """An ``EventSink`` that keeps encoded lines in memory until the runner writes them."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
        """Append one line: the payload's fields follow ``kind``, ``ts_ns`` and ``market``."""
        body: Any = msgspec.to_builtins(payload)
        line: dict[str, Any] = {"kind": kind, "ts_ns": ts_ns, "market": market}
        if isinstance(body, dict):
            for k, v in body.items():
                if k not in _HEAD_KEYS:
                    line[k] = v
        else:
            line["data"] = body
        self.lines.append(_ENC.encode(line) + b"\n")
