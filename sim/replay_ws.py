"""Replay recorded Polymarket market-channel messages as ``MarketEvent``s in timestamp order.

Deterministic, no clock or randomness: a plain iterator the simulation runner can merge with its own
events. Files hold messages exactly as the venue sent them:

* JSON: one message, or an array of messages;
* JSONL (``.jsonl``/``.ndjson``, or any file that is not one JSON document): one message or one
  array of messages per line.
* a ``polymm record`` recording (``adapters.recording``): its directory or one of its
  ``.jsonl.gz`` files; every recorded frame, in the order received (``recording_messages``). Its
  manifest names each market's tokens and rules (``sim.scenario.ws_replay_tapes`` uses them).

Events come out sorted by venue timestamp, stable for equal timestamps (file order, then order
inside the message). Malformed or unknown messages are skipped with a reason (``skipped``).

Token ids map to ``(market, outcome)`` through the ``assets`` argument; without it, the token of the
first ``book`` of a market is YES and the other token of that market is NO.

Events keep the token they came on (the parsers are the live feed's, ``adapters.polymarket.parse``):
a ``last_trade_price`` carries its ``transaction_hash`` as ``TradePrint.trade_id``, so the YES view
that tapes apply (``sim.tape.MarketTape.add``, ``core.yes_view.YesView``) counts a match printed on
both tokens once, and mirrors NO-token books and changes onto the YES book.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from adapters.polymarket.parse import AssetMap, PayloadError, decode_market_messages, parse_market_msg
from adapters.polymarket.schemas import (
    WireBook,
    WireLastTradePrice,
    WireMarketMsg,
    WireMarketResolved,
    WirePriceChange,
    WireTickSizeChange,
)
from adapters.recording import SUFFIX, Recording, open_recording
from core.messages import MarketEvent
from core.units import Outcome

__all__ = [
    "events_from_messages",
    "infer_asset_map",
    "is_recording",
    "load_ws_messages",
    "recording_messages",
    "replay_ws",
]

logger = logging.getLogger(__name__)

_JSONL_SUFFIXES = frozenset((".jsonl", ".ndjson"))


def _decode_documents(name: str, data: bytes, jsonl: bool, skipped: list[str] | None) -> list[WireMarketMsg]:
    if not jsonl:
        msgs, reasons = decode_market_messages(data)
        if msgs or not any(r.startswith("malformed JSON") for r in reasons):
            _report(name, reasons, skipped)
            return msgs
        # Not one JSON document: read it as JSONL.
    out: list[WireMarketMsg] = []
    for lineno, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            msgs, reasons = decode_market_messages(line)
            out.extend(msgs)
            _report(f"{name}:{lineno}", reasons, skipped)
    return out


def _report(where: str, reasons: list[str], skipped: list[str] | None) -> None:
    for reason in reasons:
        logger.warning("replay %s: skipped %s", where, reason)
        if skipped is not None:
            skipped.append(f"{where}: {reason}")


def is_recording(path: str | Path) -> bool:
    """Whether ``path`` is a ``polymm record`` recording (its directory, or one of its files)."""
    p = Path(path)
    return p.is_dir() or p.name.endswith(SUFFIX)


def recording_messages(recording: Recording, *, skipped: list[str] | None = None) -> list[WireMarketMsg]:
    """Every message of every recorded frame, in the order received.

    Raises:
        RecordingError: A file of the recording is corrupt.
    """
    out: list[WireMarketMsg] = []
    for frame in recording.frames():
        msgs, reasons = decode_market_messages(frame.data())
        out.extend(msgs)
        _report(f"{recording.name}@{frame.recv_ns}", reasons, skipped)
    return out


def load_ws_messages(path: str | Path, *, skipped: list[str] | None = None) -> list[WireMarketMsg]:
    """Read a recording into wire messages, in file order.

    Args:
        path: A JSON or JSONL file of market-channel messages, or a ``polymm record`` recording.
        skipped: If given, receives one reason per message that could not be decoded.

    Returns:
        The decoded messages (unknown event types and malformed messages left out).

    Raises:
        RecordingError: A recording that cannot be read (a ``ValueError``).
    """
    p = Path(path)
    if is_recording(p):
        return recording_messages(open_recording(p), skipped=skipped)
    return _decode_documents(p.name, p.read_bytes(), p.suffix.lower() in _JSONL_SUFFIXES, skipped)


def _assets_of(msg: WireMarketMsg) -> Iterator[tuple[str, str]]:
    # (market, asset_id) pairs a message mentions, for inferring the token map.
    match msg:
        case WirePriceChange():
            if msg.price_changes is not None:
                for e in msg.price_changes:
                    yield msg.market, e.asset_id
            elif msg.asset_id:
                yield msg.market, msg.asset_id
        case WireBook() | WireLastTradePrice() | WireTickSizeChange():
            yield msg.market, msg.asset_id
        case WireMarketResolved():
            for a in msg.assets_ids:
                yield msg.market, a
        case _:
            return


def infer_asset_map(messages: Iterable[WireMarketMsg]) -> AssetMap:
    """Map tokens by the default rule: the first ``book`` of a market is YES, its other token NO.

    A market with no ``book`` but a ``market_resolved`` takes YES from it (the winner when
    ``winning_outcome`` says Yes or No, else the first of ``assets_ids``). Other markets are left
    out, and so are tokens beyond the second of a market.
    """
    msgs = list(messages)
    yes: dict[str, str] = {}
    for msg in msgs:
        if isinstance(msg, WireBook) and msg.market and msg.market not in yes:
            yes[msg.market] = msg.asset_id
    for msg in msgs:
        if isinstance(msg, WireMarketResolved) and msg.market not in yes and msg.assets_ids:
            yes[msg.market] = _resolved_yes(msg)
    no: dict[str, str] = {}
    for msg in msgs:
        for market, asset in _assets_of(msg):
            if market in yes and market not in no and asset and asset != yes[market]:
                no[market] = asset
    entries: dict[str, tuple[str, Outcome]] = {}
    for market, asset in yes.items():
        entries[asset] = (market, Outcome.YES)
        if market in no:
            entries[no[market]] = (market, Outcome.NO)
    return AssetMap(entries)


def _resolved_yes(msg: WireMarketResolved) -> str:
    others = [a for a in msg.assets_ids if a != msg.winning_asset_id]
    match msg.winning_outcome.strip().lower():
        case "yes":
            return msg.winning_asset_id
        case "no" if others:
            return others[0]
        case _:
            return msg.assets_ids[0]


def events_from_messages(
    messages: Iterable[WireMarketMsg],
    assets: AssetMap | Mapping[str, tuple[str, Outcome]] | None = None,
    *,
    skipped: list[str] | None = None,
) -> list[MarketEvent]:
    """Parse wire messages into ``MarketEvent``s sorted by ``ts_ns`` (stable for equal timestamps).

    Args:
        messages: Market-channel messages in recorded order.
        assets: Token map; ``None`` infers it (see ``infer_asset_map``).
        skipped: If given, receives one reason per message that failed to parse.

    Returns:
        The events, oldest first.
    """
    msgs = list(messages)
    amap = _as_asset_map(assets, msgs)
    events: list[MarketEvent] = []
    for i, msg in enumerate(msgs):
        try:
            events.extend(parse_market_msg(msg, amap))
        except PayloadError as exc:
            reason = f"message {i} ({msg.__struct_config__.tag}): {exc}"
            logger.warning("replay: skipped %s", reason)
            if skipped is not None:
                skipped.append(reason)
    # list.sort is stable: equal timestamps keep file order, then order inside the message.
    events.sort(key=lambda e: e.ts_ns)
    return events


def _as_asset_map(
    assets: AssetMap | Mapping[str, tuple[str, Outcome]] | None, msgs: list[WireMarketMsg]
) -> AssetMap:
    if assets is None:
        return infer_asset_map(msgs)
    if isinstance(assets, AssetMap):
        return assets
    return AssetMap(assets)


def replay_ws(
    path: str | Path,
    assets: AssetMap | Mapping[str, tuple[str, Outcome]] | None = None,
    *,
    skipped: list[str] | None = None,
) -> Iterator[MarketEvent]:
    """Yield the ``MarketEvent``s of a recorded market-channel file in timestamp order.

    Args:
        path: A JSON or JSONL recording (see the module docstring).
        assets: ``{token_id: (market, outcome)}`` or an ``AssetMap``; ``None`` infers it.
        skipped: If given, receives one reason per message that was left out.

    Yields:
        Events oldest first; ``market_resolved`` becomes ``MarketResolved``.
    """
    msgs = load_ws_messages(path, skipped=skipped)
    yield from events_from_messages(msgs, assets, skipped=skipped)
