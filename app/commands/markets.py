"""``polymm refresh-markets``, ``polymm route-markets`` and ``polymm markets search``.

The flow: ``refresh-markets`` fetches markets from Gamma, classifies them (with ``rank_by:
expected_income``, reads the order books of the best candidates), keeps the best tradable ``limit`` as
the market cache (``ops.markets_json_path``) and indexes them in Chroma
(``ops.markets_chroma_dir``); ``route-markets`` splits the cache between the strategies, each into its
own ``selected_markets.json``; ``markets search`` queries the index. See ``docs/selection.md``.

``discover_markets`` and ``select_markets_for`` are what ``run-market-maker`` calls when no
``selected_markets.json`` exists.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import msgspec

from adapters.classify import (
    CategoryCache,
    ClassifyReport,
    ClassifyUnavailable,
    MarketIndex,
    classify_extra_available,
    classify_markets,
)
from adapters.gamma import DEFAULT_GAMMA_URL, FetchResult, GammaClient, GammaError, market_query
from adapters.market_cache import (
    CacheEntry,
    MarketCacheError,
    fetched_at,
    load_market_cache,
    write_markets_file,
)
from adapters.polymarket.rest_book import DEFAULT_CLOB_URL, BookUnavailable, RestBookClient
from app.commands import HELP
from app.configfile import ConfigFileError, load_config
from core.config import Config, IncomeConfig
from core.income import IncomeEstimate
from core.messages import BookSnapshot
from core.routing import Role, Route, StrategySpec, route_markets
from core.selection import (
    Books,
    MarketRecord,
    SelectionResult,
    income,
    select_candidates,
    select_markets,
    select_markets_for,
)

__all__ = ["Discovery", "discover_markets", "register", "select_markets_for"]

log = logging.getLogger("polymm.selection")

GAMMA_URL_ENV = "POLYMM_GAMMA_URL"
CLOB_URL_ENV = "POLYMM_CLOB_URL"


# --- shared helpers -----------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on a terminal; silent when ``stream`` is not a TTY."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.enabled = self.stream.isatty()
        self._drawn = False
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        """Draw ``done`` of ``total``."""
        if not self.enabled or total <= 0:
            return
        filled = min(self.width, self.width * done // total)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()
        self._drawn = True
        self._done = done

    def close(self) -> None:
        """Show the bar full (a listing may end early, on a short page) and end the line."""
        if self._drawn:
            if self._done:
                self(self._done, self._done)
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _utc_iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_as_of(text: str | None, flag: str = "--as-of") -> int:
    if text is None:
        return time.time_ns()
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigFileError(f"{flag}: {text!r} is not an ISO date such as 2026-03-12T09:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1_000


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _gamma_url(flag: str | None) -> str:
    return flag or os.environ.get(GAMMA_URL_ENV) or DEFAULT_GAMMA_URL


def _log_selection(result: SelectionResult, what: str) -> None:
    for r in result.rejected:
        log.debug("%s: market %s rejected: %s %s", what, r.market_id, r.reason, r.detail)
    log.info("%s: %s", what, result.summary())


class Discovery(msgspec.Struct, frozen=True, kw_only=True):
    """Fetched, classified and selected markets (``raw`` maps Gamma id to the object as served)."""

    fetched: FetchResult
    records: tuple[MarketRecord, ...]
    selection: SelectionResult
    classify: ClassifyReport | None = None
    raw: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


def _classify(
    records: Sequence[MarketRecord], config: Config, *, use_model: bool, cache_path: Path | None
) -> tuple[list[MarketRecord], ClassifyReport | None]:
    # Gamma-tag categories cost nothing, so they are always filled in; the model only with classify on.
    if not config.market_selection.classify or not use_model:
        out, _ = classify_markets(records, use_model=False, default=None)
        return out, None
    cache = CategoryCache(cache_path)
    out, report = classify_markets(records, use_model=True, cache=cache)
    if report.model_used:
        cache.save()
    return out, report


def discover_markets(
    config: Config,
    *,
    now_ns: int,
    gamma_url: str = DEFAULT_GAMMA_URL,
    limit: int | None = None,
    fetch_limit: int | None = None,
    classify: bool = True,
    candidates_only: bool = False,
    client: GammaClient | None = None,
    progress: Progress | None = None,
) -> Discovery:
    """Fetch from Gamma, classify (if ``market_selection.classify``), and select.

    Args:
        config: The strategy config; its ``market_selection`` drives the query and the filters.
        now_ns: Wall-clock time for the end-date filters.
        gamma_url: Gamma root URL.
        limit: Markets to keep (default ``market_selection.limit``).
        fetch_limit: Markets to fetch (default ``market_selection.fetch_limit``).
        classify: ``False`` skips the embedding model (Gamma-tag categories are still filled in).
        candidates_only: Apply only the tradability checks (what the market cache holds).
        client: A ``GammaClient`` to use (default: a new one on ``gamma_url``).
        progress: Called as pages arrive.

    Raises:
        GammaError: Gamma failed for good (one-line message).
    """
    sel = config.market_selection
    keep = limit if limit is not None else sel.limit
    fetch = fetch_limit if fetch_limit is not None else max(sel.fetch_limit, keep)
    params = market_query(sel, now_ns=now_ns, strategy_filters=not candidates_only)
    own = client is None
    gamma = client if client is not None else GammaClient(gamma_url)
    try:
        fetched = gamma.fetch_markets(params, limit=fetch, progress=progress)
    finally:
        if progress is not None:
            progress.close()
        if own:
            gamma.close()
    cache_path = Path(config.ops.markets_json_path).with_suffix(".categories.json")
    records, report = _classify(fetched.records, config, use_model=classify, cache_path=cache_path)
    pick = select_candidates if candidates_only else select_markets
    result = pick(records, sel, now_ns=now_ns, limit=keep)
    _log_selection(result, "candidates" if candidates_only else "selection")
    raw = {m.market_id: obj for m, obj in zip(fetched.records, fetched.raw, strict=True)}
    return Discovery(fetched=fetched, records=tuple(records), selection=result, classify=report, raw=raw)


def _print_counts(title: str, counts: dict[str, int], out: TextIO) -> None:
    if counts:
        print(f"  {title}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=out)


# --- refresh-markets ------------------------------------------------------------------------------------


def _register_refresh(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "refresh-markets",
        help=HELP["refresh-markets"],
        description=(
            "Fetch markets from Gamma (ordered by market_selection.order_by), classify them, keep the "
            "best LIMIT tradable ones in the market cache (ops.markets_json_path, written atomically) and "
            "upsert them into the Chroma index (ops.markets_chroma_dir). With rank_by expected_income, "
            "the order books of the best market_selection.income.book_candidates markets are read from "
            "the CLOB (--clob-url) and those markets ranked by them. Each strategy's own filters apply "
            "later, in route-markets."
        ),
    )
    p.add_argument("--config", required=True, help="strategy YAML, e.g. configs/market_maker.yaml")
    p.add_argument("--limit", type=_positive, help="markets to keep in the cache [market_selection.limit]")
    p.add_argument(
        "--fetch-limit", type=_positive, help="markets to fetch from Gamma [market_selection.fetch_limit]"
    )
    p.add_argument(
        "--skip-classify",
        action="store_true",
        help="do not run the embedding model (categories from Gamma tags are still filled in)",
    )
    p.add_argument("--skip-index", action="store_true", help="do not update the Chroma search index")
    p.add_argument("--markets-json-path", help="market cache to write [ops.markets_json_path]")
    p.add_argument("--markets-chroma-dir", help="Chroma index directory [ops.markets_chroma_dir]")
    p.add_argument(
        "--gamma-url", help=f"Gamma API root [${GAMMA_URL_ENV} or {DEFAULT_GAMMA_URL}]", metavar="URL"
    )
    p.add_argument(
        "--gamma-retries", type=int, default=4, metavar="N", help="retries on 429/5xx/network errors [4]"
    )
    p.add_argument(
        "--clob-url",
        help=f"CLOB REST root the order books are read from (rank_by: expected_income) [${CLOB_URL_ENV} or "
        f"{DEFAULT_CLOB_URL}]",
        metavar="URL",
    )
    p.add_argument(
        "--book-retries",
        type=int,
        default=1,
        metavar="N",
        help="retries of one book on 429/5xx/network errors [1]",
    )
    p.add_argument(
        "--skip-books",
        action="store_true",
        help="read no order books (rank_by expected_income then prices every market from Gamma alone)",
    )
    p.add_argument("--as-of", help="judge end dates as of this UTC time (ISO 8601) instead of now")
    p.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="print the expected income of the first N cached markets, term by term (0: none) [10]",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="list every rejected market with its reason")
    p.set_defaults(run=run_refresh)


def _usdc(amount_usdc6: int) -> str:
    # Micro-USDC as a fixed 6-decimal USDC amount, exactly (no float rounding).
    sign = "-" if amount_usdc6 < 0 else ""
    whole, frac = divmod(abs(amount_usdc6), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


_INCOME_HEADER = (
    f"  {'rank':>4}  {'market':>10}  {'reward':>12}  {'rebate':>12}  {'spread':>12}  {'adverse':>12}  "
    f"{'net':>12}  {'pool':>10}  {'density':>10}  {'move':>13}  {'source':>6}  question"
)


def _income_row(rank: int, m: MarketRecord, est: IncomeEstimate) -> str:
    if not est.priced:
        return (
            f"  {rank:>4}  {m.market_id:>10}  {'unpriced: no two-sided quote':<127}  {est.source:>6}  "
            f"{m.question[:50]}"
        )
    density = f"{est.density_usdc_per_share:.3g}" if est.pool_usdc6_per_day else "-"
    move = f"{est.adverse_move_px / 10_000:.4f} {est.move_source}"
    terms = (
        est.reward_usdc6_per_day,
        est.rebate_usdc6_per_day,
        est.spread_usdc6_per_day,
        est.adverse_usdc6_per_day,
        est.net_usdc6_per_day,
    )
    cells = "  ".join(f"{_usdc(t):>12}" for t in terms)
    return (
        f"  {rank:>4}  {m.market_id:>10}  {cells}  {_usdc(est.pool_usdc6_per_day):>10}  {density:>10}  "
        f"{move:>13}  {est.source:>6}  {m.question[:50]}"
    )


def print_income_table(
    markets: Sequence[MarketRecord],
    cfg: IncomeConfig,
    rank_by: str,
    top: int,
    out: TextIO,
    books: Books | None = None,
) -> None:
    """The expected income of the first ``top`` of ``markets``, one row each, every term in USDC/day.

    A market in ``books`` is priced from its book (``source`` book), any other from Gamma (gamma).
    """
    got = books or {}
    shown = markets[: max(top, 0)]
    if not shown:
        return
    print(
        f"expected income of the first {len(shown)} cached markets (ranked by {rank_by}), USDC/day: "
        f"reward + rebate + spread - adverse = net, for a {cfg.quote_shares:g}-share bid and ask at the "
        f"touch (at least rewardsMinSize), fills held {cfg.holding_hours:g} h (docs/rewards.md)",
        file=out,
    )
    print(_INCOME_HEADER, file=out)
    for rank, m in enumerate(shown, start=1):
        print(_income_row(rank, m, income(m, cfg, got.get(m.market_id))), file=out)
    print(
        "  pool: the daily reward pool, USDC/day; density: pool per competing scored share, USDC/day "
        "(-: no pool, inf: no competition); move: the adverse price move per filled share, USDC, and "
        "its source (Gamma's 1h/1d/1w price change, or the half-spread when none is served); source: "
        "the competition read from the market's order book (book) or from Gamma's liquidity (gamma)",
        file=out,
    )


#: ``refresh-markets`` stops reading books after this many in a row got no HTTP reply at all.
UNREACHABLE_IN_A_ROW = 3


class BookFetch(msgspec.Struct, frozen=True, kw_only=True):
    """The order books ``refresh-markets`` read for ``rank_by: expected_income``, and those it could not."""

    url: str
    candidates: int
    books: dict[str, BookSnapshot]
    #: ``(market id, reason)`` of each candidate priced from Gamma instead.
    failed: tuple[tuple[str, str], ...]
    requests: int


def _short_token(token: str) -> str:
    return token if len(token) <= 14 else f"{token[:6]}…{token[-6:]}"


def fetch_candidate_books(
    candidates: Sequence[MarketRecord],
    client: RestBookClient,
    progress: Progress | None = None,
) -> BookFetch:
    """The YES book of each of ``candidates``, one ``GET /book`` each (plus retries), in order.

    A book that cannot be read is listed in ``failed`` with the market, the token and why (and logged at
    INFO); it never stops the others, unless the venue itself is unreachable: after
    ``UNREACHABLE_IN_A_ROW`` books in a row got no HTTP reply at all, the rest are not tried (each
    listed as such) rather than each waiting for its own timeouts.
    """
    books: dict[str, BookSnapshot] = {}
    failed: list[tuple[str, str]] = []
    unreachable = 0
    try:
        for i, m in enumerate(candidates, start=1):
            if unreachable >= UNREACHABLE_IN_A_ROW:
                why = f"not tried: {client.base_url} unreachable for {unreachable} books in a row"
                failed.append((m.market_id, why))
                continue
            try:
                if not m.yes_token:
                    raise BookUnavailable("no YES token id")
                books[m.market_id] = client.yes_book(m.condition_id, m.yes_token)
                unreachable = 0
            except BookUnavailable as exc:
                # The command prints it, once (``_print_books``); the log file keeps it too.
                log.info("order book of market %s (token %s) not used: %s", m.market_id, m.yes_token, exc)
                failed.append((m.market_id, f"token {_short_token(m.yes_token)}: {exc}"))
                unreachable = unreachable + 1 if exc.unreachable else 0
            if progress is not None:
                progress(i, len(candidates))
    finally:
        if progress is not None:
            progress.close()
    return BookFetch(
        url=client.base_url,
        candidates=len(candidates),
        books=books,
        failed=tuple(failed),
        requests=client.requests,
    )


def _book_candidates(found: Discovery, config: Config, *, keep: int, now_ns: int) -> list[MarketRecord]:
    # The best `book_count(keep)` tradable markets by the Gamma-only estimate (the cache's own ranking).
    sel = config.market_selection
    best = select_candidates(found.records, sel, now_ns=now_ns, limit=sel.income.book_count(keep))
    return list(best.selected)


def _rank_with_books(
    found: Discovery, config: Config, args: argparse.Namespace, *, keep: int, now_ns: int
) -> tuple[SelectionResult, BookFetch | None, str]:
    # Rerank the cache by expected income with the books of the best candidates; the selection, the
    # books read (None: none tried) and, when none were tried, why.
    sel = config.market_selection
    if args.skip_books:
        return found.selection, None, "--skip-books"
    if sel.income.book_count(keep) <= 0:
        return found.selection, None, "market_selection.income.book_candidates: 0"
    candidates = _book_candidates(found, config, keep=keep, now_ns=now_ns)
    if not candidates:
        return found.selection, None, "no tradable market"
    clob_url = args.clob_url or os.environ.get(CLOB_URL_ENV) or DEFAULT_CLOB_URL
    with RestBookClient(clob_url, retries=max(args.book_retries, 0)) as client:
        fetch = fetch_candidate_books(candidates, client, Progress("fetching order books"))
    result = select_candidates(found.records, sel, now_ns=now_ns, limit=keep, books=fetch.books)
    _log_selection(result, "candidates with books")
    return result, fetch, ""


def _print_books(fetch: BookFetch | None, why_none: str, out: TextIO) -> None:
    if fetch is None:
        if why_none:
            print(f"order books: none read ({why_none}); every market priced from Gamma alone", file=out)
        return
    print(
        f"order books: read {len(fetch.books)} of {fetch.candidates} candidates (the best by the Gamma "
        f"estimate) from {fetch.url} ({fetch.requests} requests); {len(fetch.failed)} priced from Gamma "
        "instead",
        file=out,
    )
    for market_id, reason in fetch.failed:
        print(f"  book of market {market_id} not used: {reason}", file=out)


def run_refresh(args: argparse.Namespace) -> int:
    """Run ``refresh-markets``."""
    out = sys.stdout
    config = load_config(args.config)
    sel = config.market_selection
    now_ns = _parse_as_of(args.as_of)
    limit = args.limit or sel.limit
    fetch_limit = args.fetch_limit or max(sel.fetch_limit, limit)
    json_path = Path(args.markets_json_path or config.ops.markets_json_path)
    chroma_dir = Path(args.markets_chroma_dir or config.ops.markets_chroma_dir)
    config = msgspec.structs.replace(
        config, ops=msgspec.structs.replace(config.ops, markets_json_path=str(json_path))
    )
    url = _gamma_url(args.gamma_url)
    try:
        with GammaClient(url, retries=max(args.gamma_retries, 0)) as client:
            found = discover_markets(
                config,
                now_ns=now_ns,
                limit=limit,
                fetch_limit=fetch_limit,
                classify=not args.skip_classify,
                candidates_only=True,
                client=client,
                progress=Progress("fetching markets"),
            )
    except GammaError as exc:
        print(f"polymm refresh-markets: {exc}", file=sys.stderr)
        return 1
    result = found.selection
    fetched = found.fetched
    books, why_none = None, ""
    if result.rank_by == "expected_income":
        result, books, why_none = _rank_with_books(found, config, args, keep=limit, now_ns=now_ns)
    print(
        f"fetched {len(fetched.raw) + len(fetched.skipped)} markets from {url} in {fetched.pages} pages "
        f"({fetched.requests} requests); {len(fetched.skipped)} malformed skipped",
        file=out,
    )
    for s in fetched.skipped:
        print(f"  skipped market {s.market_id} (offset {s.offset}): {s.reason}", file=out)
    if found.classify is not None:
        print(found.classify.summary(), file=out)
    elif sel.classify and args.skip_classify:
        print(
            "classification: embedding model skipped (--skip-classify); Gamma-tag categories only", file=out
        )
    _print_books(books, why_none, out)
    print(f"cache: {result.summary()}", file=out)
    if args.verbose:
        for r in result.rejected:
            print(f"  {r.reason:<22} {r.market_id:>10}  {r.question[:70]}  {r.detail}", file=out)
    own = select_markets(result.selected, sel, now_ns=now_ns, limit=None)
    print(f"  of these, {len(own.selected)} pass {args.config}'s own filters", file=out)
    _print_counts("the rest fail", own.reason_counts(), out)
    print_income_table(
        result.selected, sel.income, result.rank_by, args.top, out, books.books if books is not None else None
    )

    generated_at = _utc_iso(time.time_ns())
    summary: dict[str, Any] = {
        "fetched": len(fetched.raw) + len(fetched.skipped),
        "malformed": [msgspec.to_builtins(s) for s in fetched.skipped],
        "kept": len(result.selected),
        "rejected": result.reason_counts(),
        "rank_by": result.rank_by,
        "as_of": _utc_iso(now_ns),
    }
    if books is not None:
        summary["books"] = {
            "clob_url": books.url,
            "candidates": books.candidates,
            "read": sorted(books.books),
            "failed": [{"market_id": m, "reason": r} for m, r in books.failed],
            "requests": books.requests,
        }
    if found.classify is not None:
        summary["classify"] = msgspec.to_builtins(found.classify)
    entries = [CacheEntry(market=m, raw=found.raw.get(m.market_id, {})) for m in result.selected]
    try:
        write_markets_file(
            json_path,
            kind="market_cache",
            entries=entries,
            generated_at=generated_at,
            source={"gamma_url": url, "config": str(args.config), "limit": limit, "fetch_limit": fetch_limit},
            summary=summary,
        )
    except OSError as exc:
        raise ConfigFileError(
            f"refresh-markets: cannot write {json_path}: {exc.strerror} (set --markets-json-path or "
            "ops.markets_json_path)"
        ) from None
    print(f"wrote {len(entries)} markets to {json_path}", file=out)

    if args.skip_index:
        print("search index: skipped (--skip-index)", file=out)
    elif not classify_extra_available():
        print(f"search index: skipped, the classify extra is not installed ({_extra_hint()})", file=out)
    else:
        try:
            rep = MarketIndex(chroma_dir).upsert(result.selected)
        except Exception as exc:  # Chroma raises many types; the cache is already written
            first = " ".join(str(exc).split())[:200]
            print(f"polymm refresh-markets: search index {chroma_dir} failed: {first}", file=sys.stderr)
            return 1
        print(
            f"search index {chroma_dir}: {rep.added} added, {rep.reembedded} re-embedded, "
            f"{rep.unchanged} unchanged; {rep.total} markets indexed",
            file=out,
        )
    return 0


def _extra_hint() -> str:
    return "pip install -e '.[classify]'"


# --- route-markets --------------------------------------------------------------------------------------

_SLOTS: tuple[tuple[str, str, Role], ...] = (
    ("market_maker", "market-maker", "trading"),
    ("option_seller", "option-seller", "trading"),
    ("risk_manager", "risk-manager", "risk"),
)


def _register_route(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "route-markets",
        help=HELP["route-markets"],
        description=(
            "Give each strategy the cached markets that pass its own filters, up to its limit, by a snake "
            "draft between the trading strategies (no market to two of them unless --allow-overlap); the "
            "risk manager gets every traded market, then its own best. Files are written atomically. "
            "A strategy is routed when any of its three flags is given."
        ),
    )
    p.add_argument("--source-config", help="config whose ops.markets_json_path names the cache")
    p.add_argument("--markets-json-path", help="market cache to read [source config's ops.markets_json_path]")
    for _name, flag, _role in _SLOTS:
        p.add_argument(f"--{flag}-config", help=f"{flag.replace('-', ' ')} config (filters, limit, output)")
        p.add_argument(
            f"--{flag}-limit", type=_positive, help="markets to give [config's market_selection.limit]"
        )
        p.add_argument(
            f"--{flag}-output", help="selected_markets.json to write [config's ops.selected_markets_path]"
        )
    p.add_argument("--allow-overlap", action="store_true", help="let two trading strategies share a market")
    p.add_argument("--as-of", help="judge end dates as of this UTC time (ISO 8601) instead of now")
    p.set_defaults(run=run_route)


def run_route(args: argparse.Namespace) -> int:
    """Run ``route-markets``."""
    out = sys.stdout
    source = load_config(args.source_config) if args.source_config else None
    now_ns = _parse_as_of(args.as_of)
    if args.markets_json_path:
        cache_path, origin = Path(args.markets_json_path), "--markets-json-path"
    elif source is not None:
        cache_path = Path(source.ops.markets_json_path)
        origin = f"ops.markets_json_path in {args.source_config}"
    else:
        raise ConfigFileError(
            "route-markets: no market cache: pass --markets-json-path, or --source-config whose "
            "ops.markets_json_path names it"
        )
    if not cache_path.exists():
        raise ConfigFileError(
            f"route-markets: market cache {cache_path} does not exist (from {origin}); run "
            "`polymm refresh-markets --config CONFIG` first or pass --markets-json-path"
        )
    try:
        cache = load_market_cache(cache_path)
    except MarketCacheError as exc:
        raise ConfigFileError(f"route-markets: {exc}") from None

    specs: list[StrategySpec] = []
    outputs: dict[str, Path] = {}
    for name, flag, role in _SLOTS:
        key = flag.replace("-", "_")
        cfg_path, limit, output = (getattr(args, f"{key}_{x}") for x in ("config", "limit", "output"))
        if cfg_path is None and limit is None and output is None:
            continue
        cfg = load_config(cfg_path) if cfg_path else source
        if cfg is None:
            raise ConfigFileError(
                f"route-markets: no filters for {name}: pass --{flag}-config or --source-config"
            )
        if cfg_path and cfg.strategy != name:
            print(f"note: {cfg_path} says strategy: {cfg.strategy}; routing it as {name}", file=sys.stderr)
        if output is None and cfg_path is None:
            raise ConfigFileError(
                f"route-markets: no output file for {name}: pass --{flag}-output, or --{flag}-config "
                "whose ops.selected_markets_path names it"
            )
        outputs[name] = Path(output or cfg.ops.selected_markets_path)
        specs.append(
            StrategySpec(
                name=name,
                selection=cfg.market_selection,
                limit=limit or cfg.market_selection.limit,
                role=role,
            )
        )
    if not specs:
        raise ConfigFileError(
            "route-markets: nothing to route: give --market-maker-*, --option-seller-* or "
            "--risk-manager-* flags"
        )
    resolved = [p.resolve() for p in outputs.values()]
    if len(set(resolved)) != len(resolved):
        raise ConfigFileError(
            "route-markets: two strategies would write the same file: "
            + ", ".join(f"{n}={p}" for n, p in outputs.items())
        )

    records = cache.records()
    routing = route_markets(records, specs, now_ns=now_ns, allow_overlap=args.allow_overlap)
    raw = {e.market.market_id: e.raw for e in cache.markets}
    generated_at = _utc_iso(time.time_ns())
    print(
        f"routing {len(records)} cached markets from {cache_path} (generated {cache.generated_at})", file=out
    )
    # Where the markets came from, so a run trades them only from the same Gamma, and only while fresh.
    origin_source = {"gamma_url": str(cache.source.get("gamma_url") or ""), "fetched_at": fetched_at(cache)}
    for route in routing.routes:
        path = outputs[route.name]
        try:
            _write_route(
                route,
                path,
                raw=raw,
                cache_path=cache_path,
                generated_at=generated_at,
                now_ns=now_ns,
                origin=origin_source,
            )
        except OSError as exc:
            flag = next(f for n, f, _ in _SLOTS if n == route.name)
            raise ConfigFileError(
                f"route-markets: cannot write {path}: {exc.strerror} (set --{flag}-output or "
                "ops.selected_markets_path)"
            ) from None
        print(
            f"{route.name:<14} {len(route.markets):>3}/{route.limit:<3} markets "
            f"({len(route.eligible.selected)} pass its filters) -> {path}",
            file=out,
        )
        _print_counts("filtered out", route.eligible.reason_counts(), out)
        _print_counts("eligible but not given", dict(route.not_given), out)
    return 0


def _write_route(
    route: Route,
    path: Path,
    *,
    raw: dict[str, dict[str, Any]],
    cache_path: Path,
    generated_at: str,
    now_ns: int,
    origin: dict[str, str],
) -> None:
    write_markets_file(
        path,
        kind="selected_markets",
        strategy=route.name,
        entries=[CacheEntry(market=m, raw=raw.get(m.market_id, {})) for m in route.markets],
        generated_at=generated_at,
        source={"market_cache": str(cache_path), **origin},
        summary={
            "role": route.role,
            "limit": route.limit,
            "given": len(route.markets),
            "eligible": len(route.eligible.selected),
            "filtered_out": route.eligible.reason_counts(),
            "not_given": dict(route.not_given),
            "as_of": _utc_iso(now_ns),
        },
    )


# --- markets search --------------------------------------------------------------------------------------


def _register_search(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("markets", help=HELP["markets"])
    msub = p.add_subparsers(dest="markets_command", metavar="SUBCOMMAND")
    s = msub.add_parser(
        "search",
        help="markets whose question and description are nearest to TEXT",
        description="Search the Chroma market index (ops.markets_chroma_dir) with the local embedding model.",
    )
    s.add_argument("text", metavar="TEXT")
    s.add_argument("--config", help="config whose ops.markets_chroma_dir names the index")
    s.add_argument("--markets-chroma-dir", help="Chroma index directory [ops.markets_chroma_dir]")
    s.add_argument("-n", "--limit", type=_positive, default=10, help="results to show [10]")
    s.add_argument("--category", help="only markets of this category")
    s.add_argument("--json", action="store_true", help="print JSON for machines")
    s.set_defaults(run=run_search)
    p.set_defaults(run=lambda _args: _usage(p))


def _usage(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def run_search(args: argparse.Namespace) -> int:
    """Run ``markets search``."""
    if args.markets_chroma_dir:
        chroma_dir, origin = Path(args.markets_chroma_dir), "--markets-chroma-dir"
    else:
        config = load_config(args.config) if args.config else Config()
        chroma_dir = Path(config.ops.markets_chroma_dir)
        origin = (
            f"ops.markets_chroma_dir in {args.config}"
            if args.config
            else "the default ops.markets_chroma_dir"
        )
    if not chroma_dir.is_dir():
        raise ConfigFileError(
            f"markets search: no market index at {chroma_dir} (from {origin}); run `polymm refresh-markets` "
            "first or pass --markets-chroma-dir"
        )
    try:
        index = MarketIndex(chroma_dir)
    except ClassifyUnavailable as exc:
        raise ConfigFileError(f"markets search: {exc}") from None
    hits = index.search(args.text, n=args.limit, category=args.category)
    if args.json:
        sys.stdout.write(msgspec.json.encode([msgspec.to_builtins(h) for h in hits]).decode() + "\n")
        return 0
    if not hits:
        print(f"no markets in the index at {chroma_dir}", file=sys.stdout)
        return 0
    for h in hits:
        print(
            f"{h.similarity:5.2f}  {h.market_id:>9}  {h.category or '-':<13} vol24h {h.volume_24h:>12,.0f}  "
            f"ends {h.end_date[:10] or '?':<10}  {h.question}",
            file=sys.stdout,
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``refresh-markets``, ``route-markets`` and ``markets``."""
    _register_refresh(sub)
    _register_route(sub)
    _register_search(sub)
