"""Which Gamma markets are worth making: the market record, the filters, the score and the reasons.

Pure: no I/O, clock or randomness (``now_ns`` is an argument). ``adapters.gamma`` parses Gamma's JSON
into ``MarketRecord``; ``select_markets`` keeps the markets that pass every filter of a
``MarketSelection`` and ranks them; every market it drops gets exactly one ``Reason``. See
``docs/selection.md`` for the filters, their order and the score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Final

import msgspec

from core.config import Config, IncomeConfig, MarketSelection
from core.income import IncomeEstimate, IncomeInputs, expected_income
from core.markets import MarketInfo, ProtocolVersion
from core.messages import BookSnapshot
from core.rewards import RewardParams
from core.units import NS_PER_S, PX_ONE, QTY_ONE, USDC6_ONE, Px, Qty

#: The categories a market can be given (``classify: true``); ``other`` is the catch-all.
CATEGORIES: Final = ("politics", "crypto", "sports", "finance", "tech", "science", "entertainment", "other")

NS_PER_HOUR: Final = 3_600 * NS_PER_S


class MarketRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One Gamma market as the selection sees it; prices in Px, sizes in Qty, volumes in USDC floats.

    ``token_ids[i]`` is the id ``outcomes[i]`` trades by; index 0 is YES (or Up, or the first team).
    Which ids those are follows ``version`` (Gamma's): ``clobTokenIds`` for ``v1``, ``positionIds``
    for ``v2``. Fields a market does not serve are ``None`` (prices, tick, end) or empty.
    """

    market_id: str
    condition_id: str
    question: str = ""
    slug: str = ""
    description: str = ""
    outcomes: tuple[str, ...] = ()
    token_ids: tuple[str, ...] = ()
    version: ProtocolVersion = "v1"
    tick_px: Px | None = None
    min_qty: Qty = 0
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    end_date: str = ""
    end_ns: int | None = None
    active: bool = False
    closed: bool = False
    archived: bool = False
    accepting_orders: bool = False
    enable_order_book: bool = False
    volume_24h: float = 0.0
    liquidity: float = 0.0
    best_bid_px: Px | None = None
    best_ask_px: Px | None = None
    last_trade_px: Px | None = None
    rewards_min_qty: Qty = 0
    rewards_max_spread_px: Px = 0
    rewards_daily_usdc: float = 0.0
    fees_enabled: bool = False
    fee_type: str = ""
    fee_rate_ppm: int = 0
    fee_exponent: int = 1
    maker_rebate_ppm: int = 0
    #: Gamma's ``oneHourPriceChange``, ``oneDayPriceChange``, ``oneWeekPriceChange`` (signed, Px).
    change_1h_px: Px | None = None
    change_1d_px: Px | None = None
    change_1w_px: Px | None = None
    event_id: str = ""
    event_slug: str = ""
    event_title: str = ""
    tags: tuple[str, ...] = ()
    tag_labels: tuple[str, ...] = ()
    gamma_category: str = ""
    category: str = ""
    category_source: str = ""

    @property
    def yes_token(self) -> str:
        """Token id of outcome 0 (YES / Up / first team)."""
        return self.token_ids[0] if self.token_ids else ""

    @property
    def no_token(self) -> str:
        """Token id of outcome 1 (NO / Down / second team)."""
        return self.token_ids[1] if len(self.token_ids) > 1 else ""

    def mid_px2(self) -> int | None:
        """Twice the mid in Px (``bid + ask``), exact even on a 1e-4 tick; ``None`` without both sides."""
        if self.best_bid_px is None or self.best_ask_px is None:
            return None
        return self.best_bid_px + self.best_ask_px

    def spread_px(self) -> Px | None:
        """Best ask minus best bid in Px; ``None`` without both sides."""
        if self.best_bid_px is None or self.best_ask_px is None:
            return None
        return self.best_ask_px - self.best_bid_px

    def income_inputs(self, book: BookSnapshot | None = None) -> IncomeInputs:
        """What ``core.income.expected_income`` reads: Gamma's fields, and ``book`` (YES) when given."""
        return IncomeInputs(
            best_bid_px=self.best_bid_px,
            best_ask_px=self.best_ask_px,
            volume_24h_usdc=self.volume_24h,
            liquidity_usdc=self.liquidity,
            reward=RewardParams(
                max_spread_px=self.rewards_max_spread_px,
                min_qty=self.rewards_min_qty,
                daily_usdc6=round(self.rewards_daily_usdc * USDC6_ONE),
            ),
            fee_rate_ppm=self.fee_rate_ppm,
            rebate_ppm=self.maker_rebate_ppm,
            change_1h_px=self.change_1h_px,
            change_1d_px=self.change_1d_px,
            change_1w_px=self.change_1w_px,
            bids=None if book is None else book.bids,
            asks=None if book is None else book.asks,
        )

    def to_info(self) -> MarketInfo:
        """Reduce to what the quoting path needs; raise ``ValueError`` for a market that cannot trade."""
        if len(self.token_ids) != 2 or self.tick_px is None:
            raise ValueError(f"market {self.market_id}: needs two tokens and a tick size to trade")
        return MarketInfo(
            market=self.condition_id,
            yes_token=self.token_ids[0],
            no_token=self.token_ids[1],
            version=self.version,
            tick_px=self.tick_px,
            min_qty=self.min_qty,
            neg_risk=self.neg_risk,
            neg_risk_market_id=self.neg_risk_market_id if self.neg_risk else "",
            fee_rate_ppm=self.fee_rate_ppm,
            rebate_ppm=self.maker_rebate_ppm,
            question=self.question,
            rewards_max_spread_px=self.rewards_max_spread_px,
            rewards_min_qty=self.rewards_min_qty,
            rewards_daily_usdc6=round(self.rewards_daily_usdc * USDC6_ONE),
        )


class Reason(StrEnum):
    """Why a market was not selected; checked in this order, and only the first failure is kept."""

    DUPLICATE = "duplicate"
    NOT_TWO_TOKENS = "not_two_tokens"
    NO_TICK_SIZE = "no_tick_size"
    NOT_ACTIVE = "not_active"
    CLOSED = "closed"
    ARCHIVED = "archived"
    NOT_ACCEPTING_ORDERS = "not_accepting_orders"
    NO_ORDER_BOOK = "no_order_book"
    ENDED = "ended"
    ENDS_TOO_SOON = "ends_too_soon"
    EXCLUDED_TAG = "excluded_tag"
    CATEGORY_NOT_INCLUDED = "category_not_included"
    CATEGORY_EXCLUDED = "category_excluded"
    LOW_VOLUME = "low_volume_24h"
    LOW_LIQUIDITY = "low_liquidity"
    NO_TWO_SIDED_QUOTE = "no_two_sided_quote"
    CROSSED_QUOTE = "crossed_quote"
    WIDE_SPREAD = "wide_spread"
    MID_OUTSIDE_BAND = "mid_outside_band"
    BELOW_LIMIT = "below_limit"


#: Reasons that make a market untradable for every strategy (``select_candidates`` checks only these).
TRADABILITY_REASONS: Final = frozenset(
    {
        Reason.DUPLICATE,
        Reason.NOT_TWO_TOKENS,
        Reason.NO_TICK_SIZE,
        Reason.NOT_ACTIVE,
        Reason.CLOSED,
        Reason.ARCHIVED,
        Reason.NOT_ACCEPTING_ORDERS,
        Reason.NO_ORDER_BOOK,
        Reason.ENDED,
    }
)


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """A market that was not selected, and why (``detail`` gives the numbers)."""

    market_id: str
    condition_id: str
    question: str
    reason: Reason
    detail: str = ""


class SelectionResult(msgspec.Struct, frozen=True, kw_only=True):
    """Selected markets best first (with their scores), and every other market with its reason."""

    selected: tuple[MarketRecord, ...]
    scores: tuple[float, ...]
    rejected: tuple[Rejection, ...]
    rank_by: str = "volume_24h"

    @property
    def considered(self) -> int:
        """How many markets went in."""
        return len(self.selected) + len(self.rejected)

    def reason_counts(self) -> dict[str, int]:
        """Rejections per reason, in ``Reason`` order, only the reasons that occurred."""
        counts = dict.fromkeys(Reason, 0)
        for r in self.rejected:
            counts[r.reason] += 1
        return {str(k): v for k, v in counts.items() if v}

    def summary(self) -> str:
        """One line: ``selected 3 of 12 by volume_24h; rejected: closed 5, wide_spread 4``."""
        counts = self.reason_counts()
        rejected = ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
        return f"selected {len(self.selected)} of {self.considered} by {self.rank_by}; rejected: {rejected}"


class Criteria(msgspec.Struct, frozen=True, kw_only=True):
    """A ``MarketSelection`` in integer units, ready to check markets against."""

    min_volume_24h: float
    min_liquidity: float
    max_spread_px: Px
    band_lo_px: Px
    band_hi_px: Px
    exclude_tags: frozenset[str]
    include_categories: frozenset[str]
    exclude_categories: frozenset[str]
    min_end_ns: int


def _norm_tag(text: str) -> str:
    # Tags match by slug or label, case- and separator-insensitively: "Crypto Prices" = "crypto-prices".
    return "-".join(text.lower().replace("_", " ").replace("-", " ").split())


def criteria(sel: MarketSelection) -> Criteria:
    """Convert the config's decimals to Px once (``max_spread_cents 4`` -> 400 Px)."""
    lo, hi = sel.mid_price_band
    return Criteria(
        min_volume_24h=sel.min_volume_24h,
        min_liquidity=sel.min_liquidity,
        max_spread_px=round(sel.max_spread_cents * 100),
        band_lo_px=round(lo * PX_ONE),
        band_hi_px=round(hi * PX_ONE),
        exclude_tags=frozenset(_norm_tag(t) for t in sel.exclude_tags),
        include_categories=frozenset(c.lower() for c in sel.include_categories),
        exclude_categories=frozenset(c.lower() for c in sel.exclude_categories),
        min_end_ns=round(sel.min_hours_to_end * NS_PER_HOUR),
    )


def tradability_reason(m: MarketRecord, now_ns: int) -> tuple[Reason, str] | None:
    """The first reason ``m`` cannot be traded at all, or ``None``.

    Gamma can say ``closed: true`` with ``acceptingOrders: true``, so every flag is checked.
    """
    if len(m.token_ids) != 2:
        return Reason.NOT_TWO_TOKENS, f"{len(m.token_ids)} token ids"
    if m.tick_px is None or m.tick_px <= 0:
        return Reason.NO_TICK_SIZE, "no orderPriceMinTickSize"
    checks = (
        (not m.active, Reason.NOT_ACTIVE),
        (m.closed, Reason.CLOSED),
        (m.archived, Reason.ARCHIVED),
        (not m.accepting_orders, Reason.NOT_ACCEPTING_ORDERS),
        (not m.enable_order_book, Reason.NO_ORDER_BOOK),
    )
    for failed, reason in checks:
        if failed:
            return reason, ""
    if m.end_ns is not None and m.end_ns <= now_ns:
        return Reason.ENDED, f"ended {m.end_date}"
    return None


def filter_reason(m: MarketRecord, c: Criteria, now_ns: int) -> tuple[Reason, str] | None:
    """The first strategy filter ``m`` fails (tradability excluded), or ``None``."""
    if c.min_end_ns and m.end_ns is not None and m.end_ns - now_ns < c.min_end_ns:
        hours = (m.end_ns - now_ns) / NS_PER_HOUR
        return Reason.ENDS_TOO_SOON, f"ends in {hours:.1f} h"
    if c.exclude_tags:
        hit = sorted(c.exclude_tags.intersection(_norm_tag(t) for t in (*m.tags, *m.tag_labels)))
        if hit:
            return Reason.EXCLUDED_TAG, ",".join(hit)
    if c.include_categories and m.category not in c.include_categories:
        return Reason.CATEGORY_NOT_INCLUDED, m.category or "unclassified"
    if m.category and m.category in c.exclude_categories:
        return Reason.CATEGORY_EXCLUDED, m.category
    if m.volume_24h < c.min_volume_24h:
        return Reason.LOW_VOLUME, f"{m.volume_24h:.0f} < {c.min_volume_24h:g}"
    if m.liquidity < c.min_liquidity:
        return Reason.LOW_LIQUIDITY, f"{m.liquidity:.0f} < {c.min_liquidity:g}"
    mid2 = m.mid_px2()
    spread = m.spread_px()
    if mid2 is None or spread is None:
        return Reason.NO_TWO_SIDED_QUOTE, f"bid {m.best_bid_px} ask {m.best_ask_px}"
    if spread <= 0:
        return Reason.CROSSED_QUOTE, f"bid {m.best_bid_px} >= ask {m.best_ask_px}"
    if spread > c.max_spread_px:
        return Reason.WIDE_SPREAD, f"{spread} px > {c.max_spread_px} px"
    if not 2 * c.band_lo_px <= mid2 <= 2 * c.band_hi_px:
        return Reason.MID_OUTSIDE_BAND, f"mid {mid2 / 2 / PX_ONE:.4f}"
    return None


def reward_density(m: MarketRecord) -> float:
    """Expected liquidity-reward USDC per day per USDC of a minimum scoring order.

    If the daily pool ``R`` were shared pro rata by resting liquidity ``L``, a minimum scoring order
    of notional ``n = rewards_min_size * mid`` would earn ``R * n / (L + n)`` a day, i.e.
    ``R / (L + n)`` per USDC. Zero for markets without a reward program.
    """
    mid2 = m.mid_px2()
    if m.rewards_daily_usdc <= 0 or m.rewards_max_spread_px <= 0 or mid2 is None:
        return 0.0
    min_notional = m.rewards_min_qty / QTY_ONE * mid2 / 2 / PX_ONE
    return m.rewards_daily_usdc / max(m.liquidity + min_notional, 1.0)


#: YES order books by Gamma market id (``MarketRecord.market_id``), for ``rank_by: expected_income``.
Books = Mapping[str, BookSnapshot]


def income(
    m: MarketRecord, cfg: IncomeConfig | None = None, book: BookSnapshot | None = None
) -> IncomeEstimate:
    """``core.income.expected_income`` of ``m`` (``cfg`` default: the config's).

    With ``book`` (its YES book) the competition is the book's (``source`` "book"); without, Gamma's
    fields stand in (``source`` "gamma").
    """
    return expected_income(m.income_inputs(book), cfg if cfg is not None else IncomeConfig())


def score(
    m: MarketRecord, rank_by: str, income_cfg: IncomeConfig | None = None, book: BookSnapshot | None = None
) -> float:
    """The ranking score: 24h volume (default), liquidity, ``reward_density``, or ``expected_income``.

    ``expected_income`` is the net USDC a day (``core.income``, from ``book`` when given); a market it
    cannot price (no two-sided quote) scores minus infinity, after every priced one.
    """
    if rank_by == "expected_income":
        est = income(m, income_cfg, book)
        return est.net_usdc6_per_day / USDC6_ONE if est.priced else -math.inf
    if rank_by == "reward_density":
        return reward_density(m)
    if rank_by == "liquidity":
        return m.liquidity
    return m.volume_24h


def _rank(
    passed: Iterable[MarketRecord],
    rank_by: str,
    income_cfg: IncomeConfig | None = None,
    books: Books | None = None,
) -> list[tuple[float, MarketRecord]]:
    # Ties break on 24h volume, then on the Gamma id, so the order never depends on the input order.
    got = books or {}
    scored = [(score(m, rank_by, income_cfg, got.get(m.market_id)), m) for m in passed]
    scored.sort(key=lambda sm: (-sm[0], -sm[1].volume_24h, sm[1].market_id))
    return scored


def _reject(m: MarketRecord, reason: Reason, detail: str) -> Rejection:
    return Rejection(
        market_id=m.market_id, condition_id=m.condition_id, question=m.question, reason=reason, detail=detail
    )


def _select(
    records: Sequence[MarketRecord],
    sel: MarketSelection,
    now_ns: int,
    limit: int | None,
    *,
    filters: bool,
    books: Books | None,
) -> SelectionResult:
    c = criteria(sel)
    seen: set[str] = set()
    rejected: list[Rejection] = []
    passed: list[MarketRecord] = []
    for m in records:
        if m.condition_id in seen:
            rejected.append(_reject(m, Reason.DUPLICATE, m.condition_id))
            continue
        seen.add(m.condition_id)
        why = tradability_reason(m, now_ns) or (filter_reason(m, c, now_ns) if filters else None)
        if why is not None:
            rejected.append(_reject(m, *why))
        else:
            passed.append(m)
    ranked = _rank(passed, sel.rank_by, sel.income, books)
    cut = len(ranked) if limit is None else max(limit, 0)
    for position, (value, m) in enumerate(ranked[cut:], start=cut + 1):
        shown = f"{value:g}" if math.isfinite(value) else "unpriced"
        rejected.append(_reject(m, Reason.BELOW_LIMIT, f"rank {position}, {sel.rank_by} {shown}"))
    kept = ranked[:cut]
    return SelectionResult(
        selected=tuple(m for _, m in kept),
        scores=tuple(s for s, _ in kept),
        rejected=tuple(rejected),
        rank_by=sel.rank_by,
    )


def select_markets(
    records: Sequence[MarketRecord],
    sel: MarketSelection,
    *,
    now_ns: int,
    limit: int | None = -1,
    books: Books | None = None,
) -> SelectionResult:
    """Keep the tradable markets that pass every filter of ``sel``, best ``limit`` first.

    Args:
        records: Parsed Gamma markets, in any order.
        sel: The strategy's ``market_selection``.
        now_ns: Wall-clock time for the end-date filters.
        limit: How many to keep; ``-1`` (default) means ``sel.limit``, ``None`` means all that pass.
        books: YES books by market id: ``expected_income`` prices these markets from their book (the
            filters still read Gamma's fields); the others from Gamma alone.

    Returns:
        The selection; each market not selected has one reason (``below_limit`` past the limit).
    """
    return _select(records, sel, now_ns, sel.limit if limit == -1 else limit, filters=True, books=books)


def select_candidates(
    records: Sequence[MarketRecord],
    sel: MarketSelection,
    *,
    now_ns: int,
    limit: int | None = -1,
    books: Books | None = None,
) -> SelectionResult:
    """Keep the tradable markets only (no strategy filters), ranked by ``sel.rank_by`` (``books`` as above).

    This is what ``polymm refresh-markets`` caches: every strategy then applies its own filters.
    """
    return _select(records, sel, now_ns, sel.limit if limit == -1 else limit, filters=False, books=books)


def select_markets_for(
    config: Config, records: Sequence[MarketRecord], *, now_ns: int, limit: int | None = -1
) -> SelectionResult:
    """``select_markets`` with a whole strategy config (``config.market_selection``)."""
    return select_markets(records, config.market_selection, now_ns=now_ns, limit=limit)
