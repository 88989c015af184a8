"""The market cache and the per-strategy ``selected_markets.json``: one versioned JSON schema, atomic writes.

Both files are a ``MarketsFile``::

    {
      "schema_version": 2,
      "kind": "market_cache" | "selected_markets",
      "generated_at": "2026-11-24T03:38:21Z",
      "strategy": "",                       # selected_markets: market_maker | option_seller | risk_manager
      "source": {...},                      # where the markets came from (Gamma URL, config, cache path)
      "summary": {...},                     # counts: fetched, skipped, rejected per reason, ...
      "markets": [{"market": {MarketRecord fields}, "raw": {the Gamma object as served}}, ...]
    }

Writes go to a temporary file in the same directory, are fsynced, then ``os.replace``d over the
target, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from core.selection import MarketRecord

#: 2: sizes (``min_qty``, ``rewards_min_qty``) in 1e-6 shares; version 1 had them in 0.01 shares.
SCHEMA_VERSION: Final = 2

Kind = Literal["market_cache", "selected_markets"]


class MarketCacheError(Exception):
    """A cache or selection file that cannot be used; ``str(err)`` is one line naming the file."""


class CacheEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One market: our parsed record and the Gamma object it came from."""

    market: MarketRecord
    raw: dict[str, Any] = msgspec.field(default_factory=dict)


class MarketsFile(msgspec.Struct, frozen=True, kw_only=True):
    """The whole file (see the module docstring)."""

    schema_version: int
    kind: Kind
    generated_at: str
    markets: tuple[CacheEntry, ...]
    strategy: str = ""
    source: dict[str, Any] = msgspec.field(default_factory=dict)
    summary: dict[str, Any] = msgspec.field(default_factory=dict)

    def records(self) -> list[MarketRecord]:
        """The parsed markets, in file order (best first)."""
        return [e.market for e in self.markets]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(MarketsFile)


class _Version(msgspec.Struct):
    schema_version: int = 0


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_markets_file(
    path: str | Path,
    *,
    kind: Kind,
    entries: Sequence[CacheEntry],
    generated_at: str,
    strategy: str = "",
    source: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
) -> MarketsFile:
    """Build a ``MarketsFile`` and write it atomically as indented JSON; return what was written."""
    doc = MarketsFile(
        schema_version=SCHEMA_VERSION,
        kind=kind,
        generated_at=generated_at,
        strategy=strategy,
        source=source or {},
        summary=summary or {},
        markets=tuple(entries),
    )
    atomic_write_bytes(path, msgspec.json.format(_ENCODER.encode(doc), indent=1) + b"\n")
    return doc


def read_markets_file(path: str | Path) -> MarketsFile:
    """Read a cache or selection file; raise ``MarketCacheError`` with one line on any problem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise MarketCacheError(f"{p}: no such file") from None
    except OSError as exc:
        raise MarketCacheError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        version = msgspec.json.decode(data, type=_Version).schema_version
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise MarketCacheError(
            f"{p}: not a polymm markets file (invalid JSON or no schema_version)"
        ) from None
    if version != SCHEMA_VERSION:
        raise MarketCacheError(
            f"{p}: schema_version {version} is not supported (expected {SCHEMA_VERSION}); "
            "run `polymm refresh-markets` again"
        )
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MarketCacheError(f"{p}: {exc}") from None


def load_market_cache(path: str | Path) -> MarketsFile:
    """Read the market cache written by ``polymm refresh-markets``."""
    return read_markets_file(path)


def load_selected_markets(path: str | Path) -> list[MarketRecord]:
    """The markets of a ``selected_markets.json`` (or of a cache), best first.

    Use ``record.to_info()`` for what the quoting path needs.
    """
    return read_markets_file(path).records()
