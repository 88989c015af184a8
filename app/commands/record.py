"""``polymm record``: write the market channel of some markets to a recording ``polymm sim --replay`` reads.

The markets come from ``--markets`` (condition ids, token ids, Gamma ids or slugs, looked up on Gamma,
or in the market cache when Gamma cannot be reached) or from ``--config`` (the markets
``run-market-maker`` would quote with that config: the routed selection, else a fresh one). The feed
is our own ``MarketWsClient`` (reconnects with backoff, PING/PONG, stale-connection detection) with a
``adapters.recording.Recorder`` as its tap; see that module for the format.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from adapters.gamma import DEFAULT_GAMMA_URL, GammaClient, GammaError, parse_market
from adapters.market_cache import MarketCacheError, read_markets_file
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.ws_market import DEFAULT_WS_URL, MarketWsClient, MarketWsConfig
from adapters.recording import MANIFEST, Manifest, RecordedMarket, Recorder, RecordingError
from app.commands import HELP
from app.configfile import ConfigFileError, ServiceUnavailable, load_config
from core.selection import MarketRecord
from core.units import format_px, format_qty

log = logging.getLogger("polymm.record")

_CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_DEFAULT_CACHE = "local_state/markets.json"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``record`` subcommand."""
    p = sub.add_parser(
        "record",
        help=HELP["record"],
        description=(
            "Subscribe to the market channel of some markets and write every frame exactly as received, "
            "with its receive time in ns, to OUT: gzip JSONL files rotated hourly (or by size), gaps "
            "(reconnects) marked, and OUT/manifest.json with each market's token ids, tick, minimum size "
            "and fee schedule at the start. The disk never holds the feed up: if it falls behind, frames "
            "are dropped and counted. Stops cleanly on Ctrl-C/SIGTERM or after --duration. Replay with "
            "`polymm sim --config FILE --replay OUT`. Exit codes: 0 done, 1 Gamma or the feed "
            "unreachable, 2 bad input."
        ),
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--markets",
        nargs="+",
        metavar="ID",
        help="condition ids (0x...), token ids, Gamma ids or slugs of the markets to record",
    )
    which.add_argument(
        "--config", metavar="FILE", help="record the markets run-market-maker would quote with this config"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the recording's directory (created)")
    p.add_argument(
        "--duration", type=_duration_s, default=None, metavar="S", help="seconds (default: until Ctrl-C)"
    )
    p.add_argument(
        "--ws-url",
        default=os.environ.get("POLYMM_WS_URL", DEFAULT_WS_URL),
        help="market channel [production's]",
    )
    p.add_argument(
        "--gamma-url",
        default=os.environ.get("POLYMM_GAMMA_URL", DEFAULT_GAMMA_URL),
        help="Gamma API, to look the markets up [production's]",
    )
    p.add_argument(
        "--markets-json",
        default=None,
        metavar="PATH",
        help=f"market cache used when Gamma cannot be reached [{_DEFAULT_CACHE}, or the config's]",
    )
    p.add_argument(
        "--rotate-s", type=float, default=3600.0, metavar="S", help="start a new file every S seconds [3600]"
    )
    p.add_argument(
        "--rotate-mb",
        type=float,
        default=256.0,
        metavar="MB",
        help="...or when a file reaches this many MB compressed [256]",
    )
    p.set_defaults(run=run)


def _duration_s(text: str) -> float:
    from app.commands.run import duration_s  # noqa: PLC0415 (one definition of --duration)

    return duration_s(text)


def _kind(ident: str) -> str:
    # Which Gamma filter finds this id.
    if _CONDITION_ID.fullmatch(ident):
        return "condition_ids"
    if ident.isdigit():
        return "clob_token_ids" if len(ident) > 20 else "id"
    return "slug"


def _matches(rec: MarketRecord, ident: str) -> bool:
    return ident in (rec.condition_id, rec.market_id, rec.slug) or ident in rec.token_ids


def _recorded(rec: MarketRecord, ident: str) -> RecordedMarket:
    try:
        info = rec.to_info()
    except ValueError as exc:
        raise ConfigFileError(f"polymm record: --markets: {ident}: {exc}") from None
    return RecordedMarket.from_info(
        info,
        slug=rec.slug,
        gamma_id=rec.market_id,
        fees_enabled=rec.fees_enabled,
        fee_type=rec.fee_type,
        fee_exponent=rec.fee_exponent,
    )


def _from_gamma(idents: Sequence[str], gamma_url: str) -> list[MarketRecord]:
    by_kind: dict[str, list[str]] = {}
    for ident in idents:
        by_kind.setdefault(_kind(ident), []).append(ident)
    found: list[MarketRecord] = []
    with GammaClient(gamma_url, retries=2) as client:
        for key, values in by_kind.items():
            page = client.get_json("/markets", {key: values, "limit": str(min(100, 2 * len(values)))})
            for raw in page if isinstance(page, list) else ():
                if isinstance(raw, dict):
                    try:
                        found.append(parse_market(raw))
                    except ValueError as exc:
                        log.warning("skipping a Gamma market: %s", exc)
    return found


def resolve_markets(
    idents: Sequence[str], gamma_url: str, cache_path: str
) -> tuple[list[RecordedMarket], str]:
    """The markets ``idents`` name, with their rules now; says where they came from.

    Gamma first (the tick, minimum size and fee schedule at the start of the recording); the market
    cache when Gamma cannot be reached.

    Raises:
        ConfigFileError: A market is unknown, or cannot trade (no two tokens, no tick).
        ServiceUnavailable: Gamma is unreachable and the cache does not have them all.
    """
    source = f"Gamma at {gamma_url}"
    try:
        records = _from_gamma(idents, gamma_url)
    except GammaError as exc:
        try:
            doc = read_markets_file(cache_path)
        except MarketCacheError as cache_exc:
            raise ServiceUnavailable(
                f"polymm record: cannot look the markets up: {exc}; and the market cache: {cache_exc}"
            ) from None
        log.warning("Gamma unreachable (%s): markets from the cache %s", exc, cache_path)
        records = doc.records()
        source = f"the market cache {cache_path} (fetched {doc.generated_at}; Gamma unreachable)"
        missing = [i for i in idents if not any(_matches(r, i) for r in records)]
        if missing:
            raise ServiceUnavailable(
                f"polymm record: cannot look {missing[0]!r} up: {exc}; it is not in {cache_path} either"
            ) from None
    out: dict[str, RecordedMarket] = {}
    for ident in idents:
        rec = next((r for r in records if _matches(r, ident)), None)
        if rec is None:
            raise ConfigFileError(
                f"polymm record: --markets: no market {ident!r} on {source} "
                "(a condition id 0x..., a token id, a Gamma id or a slug)"
            )
        m = _recorded(rec, ident)
        out.setdefault(m.market, m)
    return list(out.values()), source


def _markets_of_config(args: argparse.Namespace) -> tuple[list[RecordedMarket], str]:
    from app.commands.run import choose_markets  # noqa: PLC0415 (the trading command's own choice)

    cfg = load_config(args.config)
    infos, how = choose_markets(cfg, args.gamma_url, args.config)
    return [RecordedMarket.from_info(i) for i in infos], how


class _Stop:
    """The first SIGINT/SIGTERM stops the recording cleanly; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # (tests call main() from a thread: no signals there)
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def run(args: argparse.Namespace) -> int:
    """Record until --duration or a signal; print what was written."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    if (out / MANIFEST).exists():
        raise ConfigFileError(f"polymm record: --out: {out} already holds a recording (choose another)")
    if out.exists() and not out.is_dir():
        raise ConfigFileError(f"polymm record: --out: {out} is not a directory")
    if args.rotate_s <= 0 or args.rotate_mb <= 0:
        raise ConfigFileError("polymm record: --rotate-s and --rotate-mb must be positive")
    if args.config:
        markets, source = _markets_of_config(args)
    else:
        markets, source = resolve_markets(args.markets, args.gamma_url, args.markets_json or _DEFAULT_CACHE)
    if not markets:
        print("no markets to record; nothing to do")
        return 0
    manifest = Manifest(kind="record", ws_url=args.ws_url, source=source, markets=tuple(markets))
    try:
        recorder = Recorder(out, manifest, rotate_s=args.rotate_s, rotate_bytes=round(args.rotate_mb * 2**20))
    except (RecordingError, OSError) as exc:
        raise ConfigFileError(f"polymm record: --out: {exc}") from None
    client = MarketWsClient(
        AssetMap.from_markets([m.info() for m in markets]),
        lambda _ev: None,
        on_batch=lambda _evs: None,  # decoded only to count malformed frames; nothing is kept
        config=MarketWsConfig(url=args.ws_url, snapshot_timeout_s=None),
        tap=recorder,
    )
    print(f"recording {len(markets)} markets from {args.ws_url} to {out} ({source}); Ctrl-C stops")
    for m in markets:
        print(
            f"  {m.market}  tick {format_px(m.tick_px)}  min {format_qty(m.min_qty)} shares"
            f"  fee {m.fee_rate_ppm / 1e4:g}%  {m.question[:60]}"
        )
    stop = _Stop()
    stop.install()
    try:
        recorder.start()
        client.start_in_thread("polymm-record")
        stop.requested.wait(args.duration)
    finally:
        try:
            client.stop()
        finally:
            stop.restore()
            manifest = recorder.close()
    status = client.status()
    written = sum(f.bytes for f in manifest.files)
    print(
        f"recorded {manifest.frames:,} frames ({manifest.frame_bytes / 1e6:,.2f} MB received, "
        f"{written / 1e6:,.2f} MB written in {len(manifest.files)} files); {manifest.connects} connects, "
        f"{manifest.gaps} gaps, {manifest.dropped_frames} dropped, {status.skipped} malformed"
    )
    print(f"manifest {out / MANIFEST}")
    if manifest.write_error:
        print(f"polymm record: writing failed: {manifest.write_error}", file=sys.stderr)
        return 1
    if manifest.connects == 0:
        print(
            f"polymm record: never connected to {args.ws_url}: {status.last_error or 'no answer'}",
            file=sys.stderr,
        )
        return 1
    return 0
