"""Gamma API client (``GET /markets``, ``GET /events``) and the parser to ``core.selection.MarketRecord``.

Our exception hierarchy::

    GammaError                 anything that stops a fetch; ``str(err)`` is one line for the user
    ├── GammaHTTPError         a status Gamma will not change its mind about (4xx other than 422/429)
    └── GammaUnavailable       429/5xx/network failures that outlasted every retry
    MalformedMarket            one market object we cannot use; the fetch skips it and logs why

Paging: pages of at most 100 (Gamma caps ``limit`` there); a page shorter than asked, or the HTTP 422
Gamma answers once ``offset`` runs past the end, ends the listing. Retries: 429, 5xx and transport
errors back off exponentially (``Retry-After`` is honoured, capped), then ``GammaUnavailable``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import msgspec

from adapters.http_retry import RetryingJsonClient, backoff_s, retry_after_s, should_retry
from core.config import MarketSelection
from core.markets import ProtocolVersion
from core.selection import MarketRecord
from core.units import PX_ONE, UnitError, decimal_to_int, parse_px, parse_qty, parse_tick

__all__ = [
    "DEFAULT_GAMMA_URL",
    "MAX_PAGE",
    "FetchResult",
    "GammaClient",
    "GammaError",
    "GammaHTTPError",
    "GammaUnavailable",
    "MalformedMarket",
    "SkippedRecord",
    "market_query",
    "parse_market",
    "should_retry",
]

log = logging.getLogger(__name__)

DEFAULT_GAMMA_URL: Final = "https://gamma-api.polymarket.com"
#: Gamma serves at most 100 markets per page whatever ``limit`` asks for.
MAX_PAGE: Final = 100
#: ``id=`` values per ``/events`` request; URLs past ~8 KB get HTTP 414.
_EVENT_IDS_PER_REQUEST: Final = 50
_PPM_DECIMALS: Final = 6
_CENTS_AS_PX_DECIMALS: Final = 2  # rewardsMaxSpread is in cents, and 1 cent = 100 Px: 4.5 -> 450


class GammaError(Exception):
    """A Gamma request that failed; ``str(err)`` is one line for the user."""


class GammaHTTPError(GammaError):
    """Gamma answered with a status that retrying will not fix."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class GammaUnavailable(GammaError):
    """Gamma stayed down (429, 5xx or no connection) through every retry."""


class MalformedMarket(ValueError):
    """A Gamma market object we cannot use; the message names the field."""


class SkippedRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A market object the fetch dropped, where it was, and why."""

    offset: int
    market_id: str
    reason: str


class FetchResult(msgspec.Struct, frozen=True, kw_only=True):
    """Parsed markets with their raw Gamma objects (same order), and what was skipped."""

    records: tuple[MarketRecord, ...]
    raw: tuple[dict[str, Any], ...]
    skipped: tuple[SkippedRecord, ...] = ()
    pages: int = 0
    requests: int = 0


def _iso(ns: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1_000)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def market_query(sel: MarketSelection, *, now_ns: int, strategy_filters: bool = True) -> dict[str, str]:
    """The ``GET /markets`` parameters for ``sel``: order, tradability, and the filters Gamma supports.

    Gamma filters ``liquidity_num_min`` and ``end_date_min`` itself; our own checks run again on the
    result (``core.selection``), so a server that ignores a parameter only costs bandwidth. With
    ``strategy_filters=False`` only tradability is pushed down (the market cache serves every strategy).
    """
    params = {
        "active": "true",
        "closed": "false",
        "archived": "false",
        "order": sel.order_by,
        "ascending": "true" if sel.ascending else "false",
        "end_date_min": _iso(now_ns),
    }
    if strategy_filters:
        if sel.min_liquidity > 0:
            params["liquidity_num_min"] = f"{sel.min_liquidity:g}"
        if sel.min_hours_to_end > 0:
            params["end_date_min"] = _iso(now_ns + round(sel.min_hours_to_end * 3_600 * 1_000_000_000))
    return params


class GammaClient(RetryingJsonClient):
    """Blocking Gamma client over ``httpx``; use as a context manager or call ``close()``.

    Args:
        base_url: Gamma root, ``https://gamma-api.polymarket.com`` by default.
        timeout_s: Per-request timeout.
        retries: Extra attempts after a retriable failure (429, 5xx, network).
        backoff_s: First backoff; doubles each retry up to ``max_backoff_s``.
        page_size: Markets per page, at most 100.
        transport: An ``httpx`` transport (``httpx.MockTransport`` in unit tests).
        sleep: Called with the backoff seconds (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_GAMMA_URL,
        *,
        timeout_s: float = 15.0,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        page_size: int = MAX_PAGE,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be in 1..{MAX_PAGE}")
        super().__init__(
            base_url,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            transport=transport,
            sleep=sleep,
        )
        self.page_size = page_size

    def get_json(self, path: str, params: Mapping[str, str | Sequence[str]]) -> Any | None:
        """GET ``path`` and decode JSON; ``None`` on HTTP 422 (Gamma's "past the end")."""
        what = f"GET {self.base_url}{path}"
        last = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self._backoff(attempt, retry_after))
            retry_after = None
            self.requests += 1
            try:
                resp = self._http.get(path, params=dict(params))
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                # A retry is no error yet (INFO: the log file); giving up raises GammaError, one line.
                log.info("%s: %s (attempt %d of %d)", what, last, attempt + 1, self.retries + 1)
                continue
            if resp.status_code == 422:
                return None
            if should_retry(resp.status_code):
                last = f"HTTP {resp.status_code}"
                retry_after = retry_after_s(resp.headers.get("Retry-After"))
                log.info("%s: %s (attempt %d of %d)", what, last, attempt + 1, self.retries + 1)
                continue
            if resp.status_code >= 400:
                body = " ".join(resp.text.split())[:200]
                raise GammaHTTPError(f"{what}: HTTP {resp.status_code}: {body}", resp.status_code)
            try:
                return msgspec.json.decode(resp.content)
            except msgspec.DecodeError:
                raise GammaError(f"{what}: the response is not JSON") from None
            except RecursionError:
                raise GammaError(f"{what}: the response is JSON nested too deeply") from None
        raise GammaUnavailable(
            f"Gamma API at {self.base_url} is unavailable: {what} failed {self.retries + 1} times "
            f"(last: {last}); try again later or pass --gamma-url"
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        return backoff_s(attempt, retry_after, first_s=self.backoff_s, max_s=self.max_backoff_s)

    def iter_market_pages(self, params: Mapping[str, str], *, limit: int) -> Iterator[tuple[int, list[Any]]]:
        """Yield ``(offset, page)`` of raw market objects until ``limit``, a short page, or 422."""
        offset = 0
        while offset < limit:
            want = min(self.page_size, limit - offset)
            page = self.get_json("/markets", {**params, "limit": str(want), "offset": str(offset)})
            if page is None:
                return
            if not isinstance(page, list):
                raise GammaError(
                    f"GET {self.base_url}/markets: expected a JSON array, got {type(page).__name__}"
                )
            yield offset, page[:want]
            if len(page) < want:
                return
            offset += want

    def fetch_events(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Events by id (with their ``tags``), fetched in batches; ids Gamma does not return are absent."""
        found: dict[str, dict[str, Any]] = {}
        ids = sorted(set(event_ids))
        for i in range(0, len(ids), _EVENT_IDS_PER_REQUEST):
            chunk = ids[i : i + _EVENT_IDS_PER_REQUEST]
            page = self.get_json("/events", {"id": chunk, "limit": str(len(chunk))})
            if not isinstance(page, list):
                continue
            for ev in page:
                if isinstance(ev, dict) and ev.get("id") is not None:
                    found[str(ev["id"])] = ev
        return found

    def fetch_markets(
        self,
        params: Mapping[str, str],
        *,
        limit: int,
        with_events: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> FetchResult:
        """Fetch up to ``limit`` markets, parse them, and add their events' tags.

        Malformed objects are skipped and logged with their reason, never raised.
        """
        raws: list[tuple[int, Any]] = []
        pages = 0
        for offset, page in self.iter_market_pages(params, limit=limit):
            pages += 1
            raws.extend((offset + i, obj) for i, obj in enumerate(page))
            if progress is not None:
                progress(len(raws), limit)
        events: dict[str, dict[str, Any]] = {}
        if with_events:
            ids = [eid for _, obj in raws if (eid := _event_id(obj))]
            if ids:
                events = self.fetch_events(ids)
        records: list[MarketRecord] = []
        kept: list[dict[str, Any]] = []
        skipped: list[SkippedRecord] = []
        for offset, obj in raws:
            mid = str(obj.get("id", "?")) if isinstance(obj, dict) else "?"
            try:
                if not isinstance(obj, dict):
                    raise MalformedMarket(f"not a JSON object but {type(obj).__name__}")
                rec = parse_market(obj, events.get(_event_id(obj)))
            except MalformedMarket as exc:
                log.warning("skipping Gamma market %s at offset %d: %s", mid, offset, exc)
                skipped.append(SkippedRecord(offset=offset, market_id=mid, reason=str(exc)))
                continue
            records.append(rec)
            kept.append(obj)
        return FetchResult(
            records=tuple(records),
            raw=tuple(kept),
            skipped=tuple(skipped),
            pages=pages,
            requests=self.requests,
        )


def _event_id(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    events = obj.get("events")
    if (
        isinstance(events, list)
        and events
        and isinstance(events[0], dict)
        and events[0].get("id") is not None
    ):
        return str(events[0]["id"])
    return ""


# --- parsing ---------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    # A served value in a message: its repr, cut short (a hostile reply may hold megabytes).
    text = repr(value) if not isinstance(value, (dict, list)) else f"a JSON {type(value).__name__}"
    return text if len(text) <= 60 else text[:59] + "…"


def _num_text(field: str, value: Any) -> str:
    # Gamma serves numbers as JSON numbers or strings; repr of a float is its shortest exact decimal.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedMarket(f"{field}: expected a number, got {_show(value)}")
    return value if isinstance(value, str) else repr(value)


def _opt_px(raw: Mapping[str, Any], field: str) -> int | None:
    value = raw.get(field)
    if value is None or value == "":
        return None
    try:
        return parse_px(_num_text(field, value))
    except UnitError as exc:
        raise MalformedMarket(f"{field}: {exc}") from None


def _opt_change_px(raw: Mapping[str, Any], field: str) -> int | None:
    # A price change (``oneHourPriceChange``...): signed, within [-1, 1], rounded to the 1e-4 grid (it is
    # a statistic, not a price an order uses: Gamma may serve it finer than a tick).
    value = raw.get(field)
    if value is None or value == "":
        return None
    change = _float(raw, field)
    if not -1 <= change <= 1:
        raise MalformedMarket(f"{field}: {_show(value)} is not a price change in [-1, 1]")
    return round(change * PX_ONE)


def _opt_tick(raw: Mapping[str, Any], field: str) -> int | None:
    # Only the ticks the venue uses (core.units.TICKS_PX); 0.0025 and 0.005 are among them.
    value = raw.get(field)
    if value is None or value == "":
        return None
    try:
        return parse_tick(_num_text(field, value))
    except UnitError as exc:
        raise MalformedMarket(f"{field}: {exc}") from None


def _float(raw: Mapping[str, Any], *fields: str) -> float:
    for field in fields:
        value = raw.get(field)
        if value is None or value == "":
            continue
        try:
            number = float(_num_text(field, value))
        except ValueError:
            raise MalformedMarket(f"{field}: not a number: {_show(value)}") from None
        if not math.isfinite(number):
            raise MalformedMarket(f"{field}: not a finite number: {_show(value)}")
        return number
    return 0.0


def _decimal(raw: Mapping[str, Any], field: str, decimals: int, default: int = 0) -> int:
    value = raw.get(field)
    if value is None or value == "":
        return default
    try:
        return decimal_to_int(_num_text(field, value), decimals)
    except UnitError as exc:
        raise MalformedMarket(f"{field}: {exc}") from None


def _str_list(raw: Mapping[str, Any], field: str) -> tuple[str, ...]:
    # `outcomes`, `outcomePrices` and `clobTokenIds` are JSON arrays encoded as strings; `positionIds` is a
    # plain array (either form is read).
    value = raw.get(field)
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise MalformedMarket(f"{field}: not a JSON-encoded array: {_show(value)}") from None
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise MalformedMarket(f"{field}: expected an array of strings, got {_show(value)}")
    return tuple(str(v) for v in value)


def _bool(raw: Mapping[str, Any], field: str) -> bool:
    value = raw.get(field)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedMarket(f"{field}: expected true/false, got {_show(value)}")
    return value


def _text(raw: Mapping[str, Any], field: str) -> str:
    value = raw.get(field)
    return value if isinstance(value, str) else ""


def _end_ns(raw: Mapping[str, Any]) -> tuple[str, int | None]:
    for field in ("endDate", "endDateIso"):
        text = raw.get(field)
        if not isinstance(text, str) or not text:
            continue
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MalformedMarket(f"{field}: not an ISO date: {_show(text)}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return text, (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    return "", None


def _tags(*sources: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    slugs: list[str] = []
    labels: list[str] = []
    for tags in sources:
        if not isinstance(tags, list):
            continue
        for t in tags:
            if not isinstance(t, dict):
                continue
            slug, label = t.get("slug"), t.get("label")
            if isinstance(slug, str) and slug and slug not in slugs:
                slugs.append(slug)
            if isinstance(label, str) and label and label not in labels:
                labels.append(label)
    return tuple(slugs), tuple(labels)


def _rewards(raw: Mapping[str, Any]) -> float:
    total = 0.0
    entries = raw.get("clobRewards")
    if isinstance(entries, list):
        for e in entries:
            if isinstance(e, dict):
                total += _float(e, "rewardsDailyRate")
    return total


def _version(raw: Mapping[str, Any]) -> tuple[ProtocolVersion, str]:
    """Gamma's ``version`` and the field of the ids it trades by (venue-2026-12.md §1).

    ``v1``: ``clobTokenIds``; ``v2`` (Protocol V2): ``positionIds``, even when both are served. An
    unknown version is refused. A market without ``version`` is one listed before Protocol V2 (the
    recorded fixtures, older mirrors): V1 by its ``clobTokenIds`` if it serves no ``positionIds``,
    refused if it does (which ids it trades by would be a guess). The live adapter checks the ids
    against the SDK's own V1/V2 test before signing anything.
    """
    version = raw.get("version")
    if version is None or version == "":
        if raw.get("positionIds") not in (None, "", []):
            raise MalformedMarket("version: missing, and positionIds are served: V1 or V2 is unknown")
        return "v1", "clobTokenIds"
    if version == "v1":
        return "v1", "clobTokenIds"
    if version == "v2":
        return "v2", "positionIds"
    raise MalformedMarket(f"version: {_show(version)} is not a protocol polymm trades (v1, v2)")


def parse_market(raw: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> MarketRecord:
    """Parse one Gamma market object (and optionally its full event, for tags) into a ``MarketRecord``.

    Raises:
        MalformedMarket: a required field is missing or a value does not fit its unit.
    """
    market_id = raw.get("id")
    if not isinstance(market_id, (str, int)) or isinstance(market_id, bool) or str(market_id) == "":
        raise MalformedMarket("id: missing")
    condition_id = raw.get("conditionId")
    if not isinstance(condition_id, str) or not condition_id:
        raise MalformedMarket("conditionId: missing")
    outcomes = _str_list(raw, "outcomes")
    version, ids_field = _version(raw)
    token_ids = _str_list(raw, ids_field)
    if outcomes and token_ids and len(outcomes) != len(token_ids):
        raise MalformedMarket(f"{ids_field}: {len(token_ids)} ids for {len(outcomes)} outcomes")
    tick = _opt_tick(raw, "orderPriceMinTickSize")
    try:
        min_qty = parse_qty(_num_text("orderMinSize", raw["orderMinSize"])) if raw.get("orderMinSize") else 0
        rewards_min_qty = (
            parse_qty(_num_text("rewardsMinSize", raw["rewardsMinSize"])) if raw.get("rewardsMinSize") else 0
        )
    except UnitError as exc:
        raise MalformedMarket(f"orderMinSize/rewardsMinSize: {exc}") from None
    best_bid, best_ask = _opt_px(raw, "bestBid"), _opt_px(raw, "bestAsk")
    end_date, end_ns = _end_ns(raw)
    fee = raw.get("feeSchedule")
    fee = fee if isinstance(fee, dict) else {}
    nested = raw.get("events")
    ev0: Mapping[str, Any] = (
        nested[0] if isinstance(nested, list) and nested and isinstance(nested[0], dict) else {}
    )
    ev = event if event is not None else ev0
    slugs, labels = _tags(raw.get("tags"), ev.get("tags"), ev0.get("tags"))
    return MarketRecord(
        market_id=str(market_id),
        condition_id=condition_id,
        question=_text(raw, "question"),
        slug=_text(raw, "slug"),
        description=_text(raw, "description"),
        outcomes=outcomes,
        token_ids=token_ids,
        version=version,
        tick_px=tick,
        min_qty=min_qty,
        neg_risk=_bool(raw, "negRisk"),
        neg_risk_market_id=_text(raw, "negRiskMarketID"),
        end_date=end_date,
        end_ns=end_ns,
        active=_bool(raw, "active"),
        closed=_bool(raw, "closed"),
        archived=_bool(raw, "archived"),
        accepting_orders=_bool(raw, "acceptingOrders"),
        enable_order_book=_bool(raw, "enableOrderBook"),
        volume_24h=_float(raw, "volume24hr"),
        liquidity=_float(raw, "liquidityNum", "liquidity"),
        best_bid_px=best_bid,
        best_ask_px=best_ask,
        last_trade_px=_opt_px(raw, "lastTradePrice"),
        rewards_min_qty=rewards_min_qty,
        rewards_max_spread_px=_decimal(raw, "rewardsMaxSpread", _CENTS_AS_PX_DECIMALS),
        rewards_daily_usdc=_rewards(raw),
        fees_enabled=_bool(raw, "feesEnabled"),
        fee_type=_text(raw, "feeType"),
        fee_rate_ppm=_decimal(fee, "rate", _PPM_DECIMALS),
        fee_exponent=_decimal(fee, "exponent", 0, default=1),
        maker_rebate_ppm=_decimal(fee, "rebateRate", _PPM_DECIMALS),
        change_1h_px=_opt_change_px(raw, "oneHourPriceChange"),
        change_1d_px=_opt_change_px(raw, "oneDayPriceChange"),
        change_1w_px=_opt_change_px(raw, "oneWeekPriceChange"),
        event_id=str(ev0.get("id") or ev.get("id") or ""),
        event_slug=_text(ev, "slug") or _text(ev0, "slug"),
        event_title=_text(ev, "title") or _text(ev0, "title"),
        tags=slugs,
        tag_labels=labels,
        gamma_category=_text(raw, "category") or _text(ev, "category"),
    )
