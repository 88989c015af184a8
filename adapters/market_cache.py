"""The market cache and the per-strategy ``selected_markets.json``: one versioned JSON schema, atomic writes.

Both files are a ``MarketsFile``::

    {
      "schema_version": 3,
      "kind": "market_cache" | "selected_markets",
      "generated_at": "2026-11-24T03:38:21Z",
      "strategy": "",                       # selected_markets: market_maker | option_seller | risk_manager
      "source": {...},                      # where the markets came from: "gamma_url" (both kinds),
                                            #   "fetched_at" (selected_markets: the cache's generated_at)
      "summary": {...},                     # counts: fetched, skipped, rejected per reason, ...
      "markets": [{"market": {MarketRecord fields}, "raw": {the Gamma object as served}}, ...]
    }

Writes go to a temporary file in the same directory, are fsynced, then ``os.replace``d over the
target, so a reader sees the old file or the new one, never half of one. A file read back is checked
(every tick one the venue uses, sizes not negative), and ``selection_problem`` says whether a routed
file may be traded: its markets fetched recently enough, from the Gamma the run points at.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from core.selection import MarketRecord
from core.units import TICKS_PX

#: 3: each market carries Gamma's protocol ``version`` and the ids it trades by (``positionIds`` for a
#: Protocol V2 market); 2 had ``clobTokenIds`` only. 2: sizes (``min_qty``, ``rewards_min_qty``) in 1e-6
#: shares; version 1 had them in 0.01 shares.
SCHEMA_VERSION: Final = 3

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
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        raise MarketCacheError(
            f"{p}: not a polymm markets file (invalid JSON or no schema_version)"
        ) from None
    if version != SCHEMA_VERSION:
        raise MarketCacheError(
            f"{p}: schema_version {version} is not supported (expected {SCHEMA_VERSION}); "
            "run `polymm refresh-markets` again"
        )
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MarketCacheError(f"{p}: {' '.join(str(exc).split())[:300]}") from None
    except RecursionError:
        raise MarketCacheError(f"{p}: nested too deeply") from None
    for i, entry in enumerate(doc.markets):
        m = entry.market
        if m.tick_px is not None and m.tick_px not in TICKS_PX:
            raise MarketCacheError(
                f"{p}: markets[{i}] ({m.market_id}): tick_px {m.tick_px} is not a tick the venue uses "
                f"({', '.join(map(str, TICKS_PX))} in 1e-4 USDC)"
            )
        if m.min_qty < 0 or m.rewards_min_qty < 0:
            raise MarketCacheError(f"{p}: markets[{i}] ({m.market_id}): a negative size")
    return doc


def load_market_cache(path: str | Path) -> MarketsFile:
    """Read the market cache written by ``polymm refresh-markets``."""
    return read_markets_file(path)


def load_selected_markets(path: str | Path) -> list[MarketRecord]:
    """The markets of a ``selected_markets.json`` (or of a cache), best first.

    Use ``record.to_info()`` for what the quoting path needs.
    """
    return read_markets_file(path).records()


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def parse_utc(text: str) -> int | None:
    """An ISO 8601 time (``2026-11-24T03:38:21Z``; naive is UTC) as ns since the epoch; None if not one."""
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1_000


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def fetched_at(doc: MarketsFile) -> str:
    """When the file's markets were fetched from Gamma (``source.fetched_at``, else ``generated_at``)."""
    value = doc.source.get("fetched_at")
    return value if isinstance(value, str) and value else doc.generated_at


def selection_problem(doc: MarketsFile, *, gamma_url: str, now_ns: int, max_age_s: float) -> str | None:
    """Why a routed markets file must not be traded by a run on ``gamma_url`` at ``now_ns``; None if it may.

    It may when it names the Gamma its markets came from (``source.gamma_url``, written by
    ``refresh-markets`` and carried by ``route-markets``), that is the run's, and they were fetched at
    most ``max_age_s`` ago (not in the future either: a clock skew of 5 minutes is tolerated).
    """
    source = doc.source.get("gamma_url")
    if not isinstance(source, str) or not source:
        return "it does not say which Gamma its markets came from (route them again: polymm route-markets)"
    if not _same_url(source, gamma_url):
        return f"its markets came from {source}, and this run points at {gamma_url}"
    when = fetched_at(doc)
    ts_ns = parse_utc(when)
    if ts_ns is None:
        return f"its fetch time {when[:40]!r} is not a UTC time"
    age_s = (now_ns - ts_ns) / 1e9
    if age_s < -300:
        return f"its fetch time {when} is in the future"
    if age_s > max_age_s:
        return (
            f"its markets were fetched {_age(age_s)} ago ({when}), more than ops.selected_markets_max_age_s "
            f"({max_age_s:g} s)"
        )
    return None


def describe_source(doc: MarketsFile, now_ns: int) -> str:
    """``fetched from URL 3 min ago`` for people."""
    when = fetched_at(doc)
    ts_ns = parse_utc(when)
    age = f" {_age(max((now_ns - ts_ns) / 1e9, 0.0))} ago" if ts_ns is not None else ""
    return f"fetched from {doc.source.get('gamma_url', '?')}{age}"
