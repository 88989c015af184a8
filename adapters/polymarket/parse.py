"""Pure parsers from Polymarket wire payloads to ``core.messages``, with exact unit conversion.

A malformed value raises ``PayloadError`` naming the field. ``decode_market_frame`` and
``decode_user_frame`` are the tolerant entry points for whole WebSocket frames (an object or an array
of events): they skip what they cannot use, say why in ``skipped`` and the log, and never raise.

A bad entry spoils only itself, never its neighbours in the same message: a ``price_change`` level, a
``book`` level or a trade's ``maker_orders`` leg that cannot be used is left out and reported (one
reason per entry, ``"<event>: <field>: why"``, in ``skipped`` when the caller passes one, else in the
log) while the message's good entries are kept. Only a message with nothing usable left raises
``PayloadError`` (all its reasons joined), so the callers' one-reason-per-message path still holds.

Hostile or broken payloads are bad entries like any other, never a crash: JSON nested deeper than the
decoder goes (``RecursionError``) is a malformed frame, a number of more than ``MAX_NUMBER_CHARS``
characters a bad field (the exact parsers would spend quadratic time on thousands of digits), and
every reason quotes at most ``MAX_REASON_CHARS`` of what was received (a 10 MB string stays out of
the log).

Token ids map to ``(market, Outcome)`` through an ``AssetMap``; events for other tokens are dropped
silently (they are not errors: a recording may hold more markets than we trade). A ``price_change``
entry of a market whose two tokens we both follow, naming a third token id, is a bad entry, though.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, assert_never

import msgspec

from adapters.polymarket.schemas import (
    BOOK_DECODER,
    ENVELOPE_DECODER,
    MARKET_EVENT_TYPES,
    MARKET_FRAME_DECODER,
    MARKET_MSG_DECODER,
    PRICE_CHANGE_DECODER,
    RAW_DECODER,
    RAW_LIST_DECODER,
    USER_FRAME_DECODER,
    USER_MSG_DECODER,
    WireBestBidAsk,
    WireBook,
    WireLastTradePrice,
    WireLevel,
    WireMakerOrder,
    WireMarketMsg,
    WireMarketResolved,
    WireNewMarket,
    WireNum,
    WireOrder,
    WirePriceChange,
    WireTickSizeChange,
    WireTrade,
    WireTs,
    WireUserMsg,
)
from adapters.polymarket.structs import (
    OrderUpdateType,
    TraderSide,
    TradeStatus,
    VenueMakerFill,
    VenueOrderUpdate,
    VenueTrade,
)
from core.markets import MarketInfo
from core.messages import (
    BookDelta,
    BookSnapshot,
    Level,
    MarketEvent,
    MarketResolved,
    TickSizeChanged,
    TradePrint,
)
from core.units import (
    NS_PER_MS,
    NS_PER_S,
    QTY_DECIMALS,
    QTY_ONE,
    Outcome,
    Px,
    Qty,
    Side,
    UnitError,
    decimal_to_int,
    opposite,
    parse_px,
    parse_qty,
    parse_tick,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AssetMap",
    "OrderUpdateType",
    "PayloadError",
    "TradeStatus",
    "TraderSide",
    "UserEvent",
    "VenueMakerFill",
    "VenueOrderUpdate",
    "VenueTrade",
    "decode_book",
    "decode_market_frame",
    "decode_market_messages",
    "decode_user_frame",
    "ms_to_ns",
    "parse_book",
    "parse_book_msg",
    "parse_last_trade_price",
    "parse_market_msg",
    "parse_market_resolved",
    "parse_min_qty",
    "parse_order",
    "parse_price_change",
    "parse_side",
    "parse_tick_px",
    "parse_tick_size_change",
    "parse_trade",
    "parse_user_msg",
    "venue_ts_to_ns",
]


class PayloadError(ValueError):
    """A venue payload we cannot use; the message names the field."""


#: A number field longer than this is refused before any conversion (the venue's are < 40).
MAX_NUMBER_CHARS: Final = 64
#: Skip reasons are cut to this length (they may quote what was received).
MAX_REASON_CHARS: Final = 300


def _short(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"


def _show(value: object) -> str:
    # A received value in a message: its repr, cut short.
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _too_long(text: str, field: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise PayloadError(f"{field}: a number of {len(text)} characters")


# --- asset ids ---------------------------------------------------------------------------------------


class AssetMap:
    """Token id → ``(market, Outcome)`` for the markets we follow; immutable once built."""

    __slots__ = ("_both", "_by_asset", "_by_key")

    def __init__(self, entries: Mapping[str, tuple[str, Outcome]] | None = None) -> None:
        """Build from ``{token_id: (condition_id, outcome)}``."""
        self._by_asset: dict[str, tuple[str, Outcome]] = {}
        self._by_key: dict[tuple[str, Outcome], str] = {}
        for asset, (market, outcome) in (entries or {}).items():
            self._by_asset[asset] = (market, Outcome(outcome))
            self._by_key[(market, Outcome(outcome))] = asset
        self._both = frozenset(
            m for m, o in self._by_key if o is Outcome.YES and (m, Outcome.NO) in self._by_key
        )

    @classmethod
    def from_markets(cls, markets: Iterable[MarketInfo]) -> AssetMap:
        """Both tokens of every market: ``yes_token`` is YES, ``no_token`` is NO."""
        entries: dict[str, tuple[str, Outcome]] = {}
        for info in markets:
            entries[info.yes_token] = (info.market, Outcome.YES)
            entries[info.no_token] = (info.market, Outcome.NO)
        return cls(entries)

    def get(self, asset_id: str) -> tuple[str, Outcome] | None:
        """``(market, outcome)`` of a token, or None when we do not follow it."""
        return self._by_asset.get(asset_id)

    def token(self, market: str, outcome: Outcome) -> str | None:
        """Token id of ``outcome`` in ``market``, or None."""
        return self._by_key.get((market, outcome))

    def has_market(self, market: str) -> bool:
        """Whether any token of ``market`` is mapped."""
        return (market, Outcome.YES) in self._by_key or (market, Outcome.NO) in self._by_key

    def has_both(self, market: str) -> bool:
        """Whether both tokens of ``market`` are mapped (so a third token id in it is not a token)."""
        return market in self._both

    def asset_ids(self) -> tuple[str, ...]:
        """Every mapped token id, in insertion order (the subscription list)."""
        return tuple(self._by_asset)

    def items(self) -> Iterator[tuple[str, tuple[str, Outcome]]]:
        """``(token_id, (market, outcome))`` pairs."""
        return iter(self._by_asset.items())

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._by_asset

    def __len__(self) -> int:
        return len(self._by_asset)

    def __repr__(self) -> str:
        return f"AssetMap({self._by_asset!r})"


# --- scalar fields -----------------------------------------------------------------------------------


def _num_text(value: WireNum, field: str = "number") -> str:
    # Gamma and some REST fields are JSON numbers; repr of a float is the shortest exact decimal.
    text = value if isinstance(value, str) else repr(value)
    _too_long(text, field)
    return text


def parse_tick_px(value: WireNum | None, field: str = "tick_size") -> int:
    """Tick size as Px (``"0.01" -> 100``, ``"0.0025" -> 25``); 0 when absent.

    Only the ticks the venue uses (``core.units.TICKS_PX``) are accepted; any other is a ``PayloadError``.
    """
    if value is None or value == "":
        return 0
    try:
        return parse_tick(_num_text(value, field))
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None


def parse_min_qty(value: WireNum | None) -> int:
    """Minimum order size as Qty (``"5" -> 5_000_000``); 0 when absent."""
    if value is None or value == "":
        return 0
    try:
        return parse_qty(_num_text(value, "min_order_size"))
    except UnitError as exc:
        raise PayloadError(f"min_order_size: {exc}") from None


def ms_to_ns(value: WireTs, field: str = "timestamp") -> int:
    """Venue millisecond timestamps (string or int) to ns."""
    if type(value) is str and len(value) <= 19 and value.isdigit() and value.isascii():
        return int(value) * NS_PER_MS  # the usual form, without the general parser
    text = str(value)
    _too_long(text, field)
    try:
        return decimal_to_int(text, 0) * NS_PER_MS
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None


def venue_ts_to_ns(value: WireTs, field: str = "timestamp") -> int:
    """A user-channel or REST timestamp in s, ms, µs or ns (told apart by magnitude) to ns.

    The user channel mixes seconds (``match_time``, ``created_at``) and ms (``timestamp``), and the
    venue docs show seconds where captures show ms. Any date after 1973 is unambiguous.
    """
    text = str(value)
    _too_long(text, field)
    try:
        n = decimal_to_int(text, 0)
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None
    if n < 0:
        raise PayloadError(f"{field}: negative timestamp {_show(value)}")
    if n < 10**11:
        return n * NS_PER_S
    if n < 10**14:
        return n * NS_PER_MS
    if n < 10**17:
        return n * 1_000
    return n


# Prices repeat (a few thousand grid points at most): memoise the exact conversion. Sizes do not
# repeat as much; plain decimals take a fast path. Both fall back to the exact parser.
_PX_CACHE: dict[str, Px] = {}
_PX_CACHE_MAX = 20_000


def _px(text: str | None, field: str) -> Px:
    px = _PX_CACHE.get(text) if text is not None else None
    if px is not None:
        return px
    if text is None:
        raise PayloadError(f"{field}: missing")
    _too_long(text, field)
    try:
        px = parse_px(text)
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None
    if len(_PX_CACHE) < _PX_CACHE_MAX:
        _PX_CACHE[text] = px
    return px


#: ``_FRAC_SCALE[n]``: Qty per unit of an ``n``-digit fraction (``"12.5"``: 5 * 100_000).
_FRAC_SCALE: Final[tuple[int, ...]] = tuple(10 ** (QTY_DECIMALS - n) for n in range(QTY_DECIMALS + 1))


def fast_qty(text: str) -> Qty:
    """A plain size (``"12"``, ``"12.05"``, ``"7.575758"``: nearly every venue size) as Qty; -1 otherwise.

    Exactly ``parse_qty`` where it answers; anything else (exponents, signs, more than 6 decimals,
    non-ASCII digits) is left to the exact parser, which also names what is wrong.
    """
    if len(text) > MAX_NUMBER_CHARS:
        return -1
    if text.isdigit() and text.isascii():
        return int(text) * QTY_ONE
    whole, dot, frac = text.partition(".")
    if dot and 0 < len(frac) <= QTY_DECIMALS and whole.isdigit() and frac.isdigit() and text.isascii():
        return int(whole) * QTY_ONE + int(frac) * _FRAC_SCALE[len(frac)]
    return -1


def _qty(text: str | None, field: str) -> Qty:
    if text is None:
        raise PayloadError(f"{field}: missing")
    qty = fast_qty(text)
    if qty >= 0:
        return qty
    _too_long(text, field)
    try:
        return parse_qty(text)
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None


def _bps(value: WireNum, field: str) -> int:
    try:
        return decimal_to_int(_num_text(value, field), 0)
    except UnitError as exc:
        raise PayloadError(f"{field}: {exc}") from None


_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


def parse_side(text: str | None, field: str = "side") -> Side:
    """``"BUY"``/``"SELL"`` (any case) as ``Side``."""
    match (text or "").upper():
        case "BUY":
            return Side.BUY
        case "SELL":
            return Side.SELL
        case _:
            raise PayloadError(f"{field}: not BUY or SELL: {_show(text)}")


# --- market channel ----------------------------------------------------------------------------------


def _bad_entries(tag: str, bad: list[str], kept: int, skipped: list[str] | None) -> None:
    """Report the bad entries of a message whose ``kept`` good entries go on; raise when none does."""
    if not kept:
        raise PayloadError("; ".join(bad))
    for reason in bad:
        if skipped is not None:
            skipped.append(f"{tag}: {reason}")
        else:
            logger.warning("%s: skipped %s", tag, reason)


def _levels(raw: tuple[WireLevel, ...], field: str, descending: bool, bad: list[str]) -> tuple[Level, ...]:
    out: list[Level] = []
    for i, lv in enumerate(raw):
        try:
            qty = _qty(lv.size, f"{field}[{i}].size")
            if qty > 0:
                out.append((_px(lv.price, f"{field}[{i}].price"), qty))
        except PayloadError as exc:
            bad.append(str(exc))  # this level only; its neighbours stand
    # The venue lists the best level last; sort so our snapshot is best first whatever the order.
    out.sort(reverse=descending)
    return tuple(out)


def parse_book(
    raw: WireBook, market: str, outcome: Outcome, *, skipped: list[str] | None = None
) -> BookSnapshot:
    """A REST or WebSocket book as a ``BookSnapshot`` (levels best first).

    A level that cannot be parsed is left out and reported in ``skipped`` (else the log); a book whose
    every level is bad raises ``PayloadError``.
    """
    bad: list[str] = []
    bids = _levels(raw.bids, "bids", True, bad)
    asks = _levels(raw.asks, "asks", False, bad)
    snap = BookSnapshot(
        market=market or raw.market,
        outcome=outcome,
        ts_ns=ms_to_ns(raw.timestamp),
        bids=bids,
        asks=asks,
        tick_px=parse_tick_px(raw.tick_size),
        min_qty=parse_min_qty(raw.min_order_size),
    )
    if bad:
        _bad_entries("book", bad, len(bids) + len(asks), skipped)
    return snap


def decode_book(data: bytes | str) -> WireBook:
    """Decode a book payload, raising ``PayloadError`` with the reason."""
    try:
        return BOOK_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise PayloadError(_short(f"book: {exc}")) from None
    except RecursionError:
        raise PayloadError("book: nested too deeply") from None


def parse_book_msg(
    raw: WireBook, assets: AssetMap, *, skipped: list[str] | None = None
) -> BookSnapshot | None:
    """A channel ``book`` as a ``BookSnapshot``; None for a token we do not follow."""
    key = assets.get(raw.asset_id)
    if key is None:
        return None
    return parse_book(raw, key[0], key[1], skipped=skipped)


def parse_price_change(
    raw: WirePriceChange, assets: AssetMap, *, skipped: list[str] | None = None
) -> list[BookDelta]:
    """A ``price_change`` in any format as ``BookDelta``s (new total size per level; 0 deletes).

    Entries for tokens we do not follow are dropped; the message order of entries is kept. An entry
    that cannot be used (a bad price, side or size, or a token that is not one of a followed
    market's two) is left out and reported in ``skipped`` (else the log): the other entries apply.
    A message with no usable entry raises ``PayloadError`` naming every bad one.
    """
    ts_ns = ms_to_ns(raw.timestamp)
    out: list[BookDelta] = []
    bad: list[str] | None = None
    if raw.price_changes is not None:
        lookup = assets._by_asset.get  # this module's class: one call less per entry
        for i, e in enumerate(raw.price_changes):
            key = lookup(e.asset_id)
            if key is None:
                if raw.market in assets._both:  # a market we follow has no third token
                    bad = bad or []
                    token, market = _show(e.asset_id), _show(raw.market)
                    bad.append(f"price_changes[{i}].asset_id: {token} is not a token of {market}")
                continue
            # The hot path: a memoised price, a plain size, an upper-case side; anything else
            # takes the exact parsers, which also name the field when it is malformed.
            px = _PX_CACHE.get(e.price)
            side = _SIDES.get(e.side)
            qty = fast_qty(e.size)
            if px is None or side is None or qty < 0:
                f = f"price_changes[{i}]"
                try:
                    side = parse_side(e.side, f"{f}.side")
                    px = _px(e.price, f"{f}.price")
                    qty = _qty(e.size, f"{f}.size")
                except PayloadError as exc:
                    bad = bad or []
                    bad.append(str(exc))
                    continue
            out.append(BookDelta(market=key[0], outcome=key[1], ts_ns=ts_ns, side=side, px=px, qty=qty))
        if bad:
            _bad_entries("price_change", bad, len(out), skipped)
        return out
    key = assets.get(raw.asset_id)
    if raw.changes is not None:
        if key is None:
            return out
        bad = []
        for i, c in enumerate(raw.changes):
            f = f"changes[{i}]"
            try:
                delta = BookDelta(
                    market=key[0],
                    outcome=key[1],
                    ts_ns=ts_ns,
                    side=parse_side(c.side, f"{f}.side"),
                    px=_px(c.price, f"{f}.price"),
                    qty=_qty(c.size, f"{f}.size"),
                )
            except PayloadError as exc:
                bad.append(str(exc))
                continue
            out.append(delta)
        if bad:
            _bad_entries("price_change", bad, len(out), skipped)
        return out
    if raw.price is None and raw.size is None and raw.side is None:
        raise PayloadError("price_change: none of price_changes, changes or price/side/size")
    if key is None:
        return out
    out.append(
        BookDelta(
            market=key[0],
            outcome=key[1],
            ts_ns=ts_ns,
            side=parse_side(raw.side),
            px=_px(raw.price, "price"),
            qty=_qty(raw.size, "size"),
        )
    )
    return out


def parse_last_trade_price(raw: WireLastTradePrice, assets: AssetMap) -> TradePrint | None:
    """A ``last_trade_price`` as a ``TradePrint`` (``side`` is the aggressor's).

    ``trade_id`` is the message's ``transaction_hash`` ("" when absent, as in older recordings): the
    venue prints a match on both tokens with one hash, which is how ``core.yes_view`` counts it once.
    """
    key = assets.get(raw.asset_id)
    if key is None:
        return None
    return TradePrint(
        market=key[0],
        outcome=key[1],
        ts_ns=ms_to_ns(raw.timestamp),
        px=_px(raw.price, "price"),
        qty=_qty(raw.size, "size"),
        aggressor=parse_side(raw.side),
        trade_id=raw.transaction_hash,
    )


def parse_tick_size_change(raw: WireTickSizeChange, assets: AssetMap) -> TickSizeChanged | None:
    """A ``tick_size_change`` as ``TickSizeChanged`` (the start of a new book epoch)."""
    key = assets.get(raw.asset_id)
    if key is None:
        return None
    tick_px = parse_tick_px(raw.new_tick_size, "new_tick_size")
    if not tick_px:
        raise PayloadError("new_tick_size: missing")
    return TickSizeChanged(market=key[0], outcome=key[1], ts_ns=ms_to_ns(raw.timestamp), tick_px=tick_px)


def parse_market_resolved(raw: WireMarketResolved, assets: AssetMap) -> MarketResolved | None:
    """A ``market_resolved`` as ``MarketResolved``; None when no token of the market is followed."""
    won = assets.get(raw.winning_asset_id)
    if won is not None:
        market, yes_won = won[0], won[1] is Outcome.YES
    else:
        known = [k for a in raw.assets_ids if (k := assets.get(a)) is not None]
        market = known[0][0] if known else raw.market
        if not assets.has_market(market):
            return None
        # The winning token is not mapped (an odd recording); fall back on the outcome's name.
        match raw.winning_outcome.strip().lower():
            case "yes":
                yes_won = True
            case "no":
                yes_won = False
            case _:
                raise PayloadError(
                    f"winning_asset_id: {_show(raw.winning_asset_id)} is not a token of {_show(market)}"
                )
    return MarketResolved(market=market, ts_ns=ms_to_ns(raw.timestamp), yes_won=yes_won)


def parse_market_msg(
    msg: WireMarketMsg, assets: AssetMap, *, skipped: list[str] | None = None
) -> list[MarketEvent]:
    """Any decoded market-channel message as zero or more ``MarketEvent``s (raises ``PayloadError``).

    ``skipped`` receives the bad entries of a message whose good entries are returned (see the
    module docstring); without it they are logged.
    """
    match msg:
        case WireBook():
            snap = parse_book_msg(msg, assets, skipped=skipped)
            return [snap] if snap is not None else []
        case WirePriceChange():
            return list[MarketEvent](parse_price_change(msg, assets, skipped=skipped))
        case WireLastTradePrice():
            trade = parse_last_trade_price(msg, assets)
            return [trade] if trade is not None else []
        case WireTickSizeChange():
            tick = parse_tick_size_change(msg, assets)
            return [tick] if tick is not None else []
        case WireMarketResolved():
            resolved = parse_market_resolved(msg, assets)
            return [resolved] if resolved is not None else []
        case WireBestBidAsk() | WireNewMarket():
            return []
        case _:
            assert_never(msg)


def _skip_reason(raw: bytes | str | msgspec.Raw, exc: msgspec.DecodeError) -> str:
    # Name the event type when the payload has one, so "unknown type" reads differently from "bad field".
    try:
        env = ENVELOPE_DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return f"malformed: {exc}"
    if env.event_type is None:
        return f"no event_type: {exc}"
    if env.event_type not in MARKET_EVENT_TYPES:
        return f"unknown event_type {_show(env.event_type)}"
    return f"{env.event_type}: {exc}"


def _split_frame(data: bytes | str) -> list[msgspec.Raw]:
    # The elements of a frame, undecoded; raises msgspec.DecodeError on malformed JSON.
    raw = RAW_DECODER.decode(data)
    if bytes(memoryview(raw)[:1]) == b"[":
        return RAW_LIST_DECODER.decode(raw)
    return [raw]


# How a frame that is one ``price_change`` ends: the venue sends the tag last (compact; spaced when
# pretty-printed). The frame's last member is then the tag itself, so decoding it as that one type
# gives what the union decoder gives, without the union's lookahead for the tag (which parses the
# whole frame once more, 77-digit token ids and hashes included: about a third of the decode).
_PRICE_CHANGE_TAILS = ('"event_type":"price_change"}', '"event_type": "price_change"}')
_PRICE_CHANGE_TAILS_B = tuple(t.encode() for t in _PRICE_CHANGE_TAILS)


def decode_market_messages(data: bytes | str) -> tuple[list[WireMarketMsg], list[str]]:
    """Decode a frame (an event or an array of events) into wire messages, skipping bad elements.

    Returns:
        The decoded messages in frame order, and one reason per skipped element.
    """
    if data.endswith(_PRICE_CHANGE_TAILS if type(data) is str else _PRICE_CHANGE_TAILS_B):  # type: ignore[arg-type]
        try:
            return [PRICE_CHANGE_DECODER.decode(data)], []
        except (msgspec.DecodeError, RecursionError):
            pass  # the general path says what is wrong
    try:
        decoded = MARKET_FRAME_DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        return (decoded if isinstance(decoded, list) else [decoded]), []
    # Slow path: one element is bad (or of an unknown type); keep the others.
    try:
        raws = _split_frame(data)
    except msgspec.DecodeError as exc:
        return [], [_short(f"malformed JSON: {exc}")]
    except RecursionError:
        return [], ["malformed JSON: nested too deeply"]
    msgs: list[WireMarketMsg] = []
    reasons: list[str] = []
    for raw in raws:
        try:
            msgs.append(MARKET_MSG_DECODER.decode(raw))
        except msgspec.DecodeError as exc:
            reasons.append(_short(_skip_reason(raw, exc)))
        except RecursionError:
            reasons.append("malformed: nested too deeply")
    return msgs, reasons


def decode_market_frame(
    data: bytes | str, assets: AssetMap, *, skipped: list[str] | None = None
) -> list[MarketEvent]:
    """Decode one market-channel frame into ``MarketEvent``s; never raises.

    Args:
        data: The frame as received (a JSON object or an array of them).
        assets: Tokens we follow; events for other tokens are dropped.
        skipped: If given, receives one reason per malformed or unknown message (also logged).

    Returns:
        The events in frame order.
    """
    msgs, reasons = decode_market_messages(data)
    events: list[MarketEvent]
    if len(msgs) == 1 and type(msgs[0]) is WirePriceChange:
        # Nearly every frame: one price_change, whose parsed list is the frame's events (no copy).
        try:
            events = parse_price_change(msgs[0], assets, skipped=reasons)  # type: ignore[assignment]
        except PayloadError as exc:
            events = []
            reasons.append(_short(f"price_change: {exc}"))
    else:
        events = []
        for msg in msgs:
            try:
                if type(msg) is WirePriceChange:  # nearly every message, without the pattern match
                    events.extend(parse_price_change(msg, assets, skipped=reasons))
                    continue
                events.extend(parse_market_msg(msg, assets, skipped=reasons))
            except PayloadError as exc:
                reasons.append(_short(f"{msg.__struct_config__.tag}: {exc}"))
    if reasons:
        reasons = [_short(r) for r in reasons]
        for reason in reasons:
            logger.warning("market frame: skipped %s", reason)
        if skipped is not None:
            skipped.extend(reasons)
    return events


# --- user channel ------------------------------------------------------------------------------------

_ORDER_TYPES: dict[str, OrderUpdateType] = {
    "PLACEMENT": "PLACEMENT",
    "UPDATE": "UPDATE",
    "CANCELLATION": "CANCELLATION",
}
_TRADE_STATUSES: dict[str, TradeStatus] = {
    "MATCHED": "MATCHED",
    "MINED": "MINED",
    "CONFIRMED": "CONFIRMED",
    "RETRYING": "RETRYING",
    "FAILED": "FAILED",
}
_TRADER_SIDES: dict[str, TraderSide] = {"TAKER": "TAKER", "MAKER": "MAKER"}


UserEvent = VenueOrderUpdate | VenueTrade


def parse_order(raw: WireOrder, assets: AssetMap) -> VenueOrderUpdate | None:
    """A user-channel ``order`` as ``VenueOrderUpdate``; None for a token we do not follow."""
    key = assets.get(raw.asset_id)
    if key is None:
        return None
    kind = _ORDER_TYPES.get(raw.type.upper())
    if kind is None:
        raise PayloadError(f"type: not PLACEMENT, UPDATE or CANCELLATION: {_show(raw.type)}")
    return VenueOrderUpdate(
        type=kind,
        order_id=raw.id,
        market=key[0],
        outcome=key[1],
        side=parse_side(raw.side),
        px=_px(raw.price, "price"),
        original_qty=_qty(raw.original_size, "original_size"),
        matched_qty=_qty(raw.size_matched, "size_matched"),
        status=raw.status,
        order_type=raw.order_type,
        owner=raw.owner,
        ts_ns=venue_ts_to_ns(raw.timestamp),
        created_ns=venue_ts_to_ns(raw.created_at, "created_at"),
        expire_ns=venue_ts_to_ns(raw.expiration, "expiration"),
        trade_ids=raw.associate_trades or (),
    )


def _maker_fill(
    m: WireMakerOrder, i: int, assets: AssetMap, taker_outcome: Outcome, taker_side: Side
) -> VenueMakerFill | None:
    key = assets.get(m.asset_id)
    if key is None:
        return None
    f = f"maker_orders[{i}]"
    if m.side is not None:
        side = parse_side(m.side, f"{f}.side")
        # Same direction as the taker only happens across the two tokens (mint: BUY+BUY, merge: SELL+SELL).
        complementary = side is taker_side
    else:
        complementary = key[1] is not taker_outcome
        side = taker_side if complementary else opposite(taker_side)
    return VenueMakerFill(
        order_id=m.order_id,
        owner=m.owner,
        outcome=key[1],
        side=side,
        px=_px(m.price, f"{f}.price"),
        qty=_qty(m.matched_amount, f"{f}.matched_amount"),
        fee_rate_bps=_bps(m.fee_rate_bps, f"{f}.fee_rate_bps"),
        complementary=complementary,
    )


def parse_trade(raw: WireTrade, assets: AssetMap, *, skipped: list[str] | None = None) -> VenueTrade | None:
    """A user-channel ``trade`` as ``VenueTrade``; None for a token we do not follow.

    Maker legs on tokens we do not follow are left out. When a leg has no ``side`` (older messages),
    it is derived: the opposite of the taker's on the same token, the same across tokens. A leg that
    cannot be parsed is left out too and reported in ``skipped`` (else the log); the other legs stand.
    """
    key = assets.get(raw.asset_id)
    if key is None:
        return None
    status = _TRADE_STATUSES.get(raw.status.upper())
    if status is None:
        raise PayloadError(f"status: unknown trade status {_show(raw.status)}")
    trader_side = _TRADER_SIDES.get(raw.trader_side.upper())
    if trader_side is None:
        raise PayloadError(f"trader_side: not TAKER or MAKER: {_show(raw.trader_side)}")
    side = parse_side(raw.side)
    try:
        if isinstance(raw.bucket_index, str):
            _too_long(raw.bucket_index, "bucket_index")
        bucket = int(raw.bucket_index)
    except ValueError:
        raise PayloadError(f"bucket_index: not an integer: {_show(raw.bucket_index)}") from None
    px = _px(raw.price, "price")
    qty = _qty(raw.size, "size")
    fee_rate_bps = _bps(raw.fee_rate_bps, "fee_rate_bps")
    ts_ns = venue_ts_to_ns(raw.timestamp)
    match_ns = venue_ts_to_ns(raw.match_time, "match_time")
    fills: list[VenueMakerFill] = []
    for i, m in enumerate(raw.maker_orders):
        try:
            fill = _maker_fill(m, i, assets, key[1], side)
        except PayloadError as exc:
            reason = f"trade {raw.id[:80]}: {exc}"  # this leg only: the others are fills all the same
            if skipped is not None:
                skipped.append(reason)
            else:
                logger.warning("user channel: skipped %s", reason)
            continue
        if fill is not None:
            fills.append(fill)
    return VenueTrade(
        trade_id=raw.id,
        status=status,
        trader_side=trader_side,
        market=key[0],
        taker_order_id=raw.taker_order_id,
        outcome=key[1],
        side=side,
        px=px,
        qty=qty,
        fee_rate_bps=fee_rate_bps,
        owner=raw.owner,
        ts_ns=ts_ns,
        match_ns=match_ns,
        transaction_hash=raw.transaction_hash,
        bucket_index=bucket,
        maker_fills=tuple(fills),
    )


def parse_user_msg(
    msg: WireUserMsg, assets: AssetMap, *, skipped: list[str] | None = None
) -> UserEvent | None:
    """Any decoded user-channel message as a ``UserEvent`` (raises ``PayloadError``).

    ``skipped`` receives the bad maker legs of a trade whose other legs are kept; else they are logged.
    """
    match msg:
        case WireOrder():
            return parse_order(msg, assets)
        case WireTrade():
            return parse_trade(msg, assets, skipped=skipped)
        case _:
            assert_never(msg)


def decode_user_frame(
    data: bytes | str, assets: AssetMap, *, skipped: list[str] | None = None
) -> list[UserEvent]:
    """Decode one user-channel frame into ``UserEvent``s; never raises (see ``decode_market_frame``)."""
    msgs: list[WireUserMsg] = []
    reasons: list[str] = []
    try:
        decoded = USER_FRAME_DECODER.decode(data)
        msgs = decoded if isinstance(decoded, list) else [decoded]
    except (msgspec.DecodeError, RecursionError):
        try:
            raws = _split_frame(data)
        except msgspec.DecodeError as exc:
            raws = []
            reasons.append(f"malformed JSON: {exc}")
        except RecursionError:
            raws = []
            reasons.append("malformed JSON: nested too deeply")
        for raw in raws:
            try:
                msgs.append(USER_MSG_DECODER.decode(raw))
            except msgspec.DecodeError as exc:
                reasons.append(f"user message: {exc}")
            except RecursionError:
                reasons.append("user message: nested too deeply")
    events: list[UserEvent] = []
    for msg in msgs:
        try:
            event = parse_user_msg(msg, assets, skipped=reasons)
        except PayloadError as exc:
            reasons.append(f"{msg.__struct_config__.tag}: {exc}")
            continue
        if event is not None:
            events.append(event)
    if reasons:
        reasons = [_short(r) for r in reasons]
        for reason in reasons:
            logger.warning("user frame: skipped %s", reason)
        if skipped is not None:
            skipped.extend(reasons)
    return events
