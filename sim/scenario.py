"""Scenario files: where a simulation's data comes from and how the simulated venue behaves.

A scenario is YAML decoded into ``Scenario`` (unknown keys are errors). Shipped scenarios live in
``configs/scenarios/``; ``polymm sim --scenario NAME`` looks there, or takes a path.

``rewards`` gives markets of the source a liquidity-rewards program (``MarketInfo.rewards_*``): the
simulator then samples and accrues our share of its pool (``sim.rewards``, ``docs/rewards.md``).

``neg_risk_events`` marks markets of the source as the markets of one neg-risk event (their
``MarketInfo.neg_risk_market_id``): the runner holds them to the event's budget together.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from core.markets import MarketInfo
from core.messages import MarketEvent
from core.units import ORDER_QTY_STEP, QTY_ONE, USDC6_ONE, Outcome
from sim.sources import HbtNpzSource, SourceConfig, SyntheticSource, load_tapes
from sim.structs import Latency, RunSettings
from sim.tape import MarketTape, TickPx, tape_from_events
from sim.tape_cache import TapeCache
from venue.exchange import QueueModel


class WsReplaySource(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="ws_replay", tag_field="type"
):
    """Recorded Polymarket market-channel messages (JSON array or JSONL), replayed as they came.

    ``yes_tokens`` names the YES token of each market; by default the asset of a market's first
    ``book`` is YES. ``tick_px``/``min_qty`` (Qty: 1e-6 share) apply until a ``book`` says otherwise.

    ``path`` may also be a ``polymm record`` recording (its directory or one of its files): then its
    manifest says each market's tokens, tick, minimum size, fees and neg-risk event, and the fields
    below are not used.
    """

    path: str
    yes_tokens: tuple[str, ...] = ()
    #: Any venue tick in Px: 1000, 100, 50, 25, 10 or 1 (0.1 ... 0.0001).
    tick_px: TickPx = 100
    min_qty: Annotated[int, Meta(ge=ORDER_QTY_STEP, multiple_of=ORDER_QTY_STEP)] = 5 * QTY_ONE
    #: Taker fee rate (0.04 style); ``MarketInfo.fee_rate_ppm`` gets ``round(fee_rate * 1e6)``.
    fee_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0
    #: Maker rebate (``feeSchedule.rebateRate``, 0.25 style); ``MarketInfo.rebate_ppm`` gets
    #: ``round(rebate_rate * 1e6)``.
    rebate_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0


class RewardTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A liquidity-rewards program for markets of a scenario (Gamma's ``rewardsMaxSpread``,
    ``rewardsMinSize`` and ``clobRewards[].rewardsDailyRate``).

    ``markets``: the ids it applies to; empty: every market of the source.
    """

    #: Max distance from the adjusted mid that scores, in cents (Gamma ``rewardsMaxSpread``: 4.5 = 450 Px).
    max_spread_cents: Annotated[float, Meta(gt=0, le=100)]
    #: Gamma ``rewardsMinSize``: smaller orders do not score (whole shares, up to 2 decimals).
    min_shares: Annotated[float, Meta(ge=0)] = 0.0
    #: The market's daily pool in USDC.
    daily_usdc: Annotated[float, Meta(ge=0)] = 0.0
    markets: tuple[str, ...] = ()

    def apply(self, info: MarketInfo) -> MarketInfo:
        """``info`` with these terms."""
        return msgspec.structs.replace(
            info,
            rewards_max_spread_px=round(self.max_spread_cents * 100),
            rewards_min_qty=round(self.min_shares * QTY_ONE),
            rewards_daily_usdc6=round(self.daily_usdc * USDC6_ONE),
        )


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulation scenario."""

    name: str = ""
    description: str = ""
    seed: int = 1
    source: SourceConfig | WsReplaySource
    latency: Latency = msgspec.field(default_factory=Latency)
    queue: QueueModel = msgspec.field(default_factory=QueueModel)
    timer_ms: Annotated[int, Meta(ge=10)] = 1000
    #: Neg-risk events: event id -> the ids of its markets in the source (each in one event at most).
    neg_risk_events: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    #: A liquidity-rewards program for the source's markets (None: none).
    rewards: RewardTerms | None = None

    def __post_init__(self) -> None:
        """Check the cross-field rules."""
        seen: dict[str, str] = {}
        for event, markets in self.neg_risk_events.items():
            if not event:
                raise ValueError("neg_risk_events: an event id cannot be empty")
            for m in markets:
                if m in seen:
                    raise ValueError(f"neg_risk_events: market {m!r} is in both {seen[m]!r} and {event!r}")
                seen[m] = event

    def settings(self, global_ev_cap_usdc6: int | None, event_cap_usdc6: int | None = None) -> RunSettings:
        """The runner's settings for this scenario.

        Args:
            global_ev_cap_usdc6: The budget of all markets together (``inventory.global_ev_cap``).
            event_cap_usdc6: The budget of one neg-risk event's markets together
                (``inventory.event_cap``); None: the per-market cap (that setting's default).
        """
        return RunSettings(
            latency=self.latency,
            queue=self.queue,
            timer_ms=self.timer_ms,
            global_ev_cap_usdc6=global_ev_cap_usdc6,
            event_cap_usdc6=event_cap_usdc6,
        )


def ws_replay_tapes(src: WsReplaySource, base_dir: Path) -> list[MarketTape]:
    """Tapes from a recorded market-channel file."""
    from sim.replay_ws import (  # noqa: PLC0415
        events_from_messages,
        infer_asset_map,
        is_recording,
        load_ws_messages,
    )

    path = (base_dir / src.path) if not Path(src.path).is_absolute() else Path(src.path)
    skipped: list[str] = []
    if is_recording(path):
        return _recording_tapes(path, skipped)
    msgs = load_ws_messages(path, skipped=skipped)
    assets = infer_asset_map(msgs)
    if src.yes_tokens:
        entries: dict[str, tuple[str, Outcome]] = {}
        for tok in src.yes_tokens:
            found = assets.get(tok)
            if found is None:
                raise ValueError(f"source.yes_tokens: token {tok} is not in {src.path}")
            market = found[0]
            for other in _tokens_of(assets, market):
                entries[other] = (market, Outcome.YES if other == tok else Outcome.NO)
        from adapters.polymarket.parse import AssetMap  # noqa: PLC0415

        assets = AssetMap(entries)
    source: dict[str, object] = {"type": "ws_replay", "path": path.name, "skipped": skipped}
    by_market: dict[str, list[MarketEvent]] = {}
    for ev in events_from_messages(msgs, assets, skipped=skipped):
        by_market.setdefault(ev.market, []).append(ev)
    tapes = []
    for market in sorted(by_market):
        info = MarketInfo(
            market=market,
            yes_token=assets.token(market, Outcome.YES) or "",
            no_token=assets.token(market, Outcome.NO) or "",
            tick_px=src.tick_px,
            min_qty=src.min_qty,
            fee_rate_ppm=round(src.fee_rate * 1_000_000),
            rebate_ppm=round(src.rebate_rate * 1_000_000),
        )
        tape = tape_from_events(info, by_market[market])
        tape.meta = {"data": "recorded market-channel messages, replayed as they came"}
        tape.source = source
        tapes.append(tape)
    return tapes


def _recording_tapes(path: Path, skipped: list[str]) -> list[MarketTape]:
    # A ``polymm record`` recording: the markets and their rules from its manifest (or inferred, for a
    # lone file without one), events in venue-time order as for any recorded stream.
    from adapters.polymarket.parse import AssetMap  # noqa: PLC0415
    from adapters.recording import open_recording  # noqa: PLC0415
    from sim.replay_ws import events_from_messages, infer_asset_map, recording_messages  # noqa: PLC0415

    rec = open_recording(path)
    msgs = recording_messages(rec, skipped=skipped)
    infos = {m.market: m for m in rec.markets()}
    assets = AssetMap.from_markets(infos.values()) if infos else infer_asset_map(msgs)
    by_market: dict[str, list[MarketEvent]] = {}
    for ev in events_from_messages(msgs, assets, skipped=skipped):
        by_market.setdefault(ev.market, []).append(ev)
    source: dict[str, object] = {
        "type": "recording",
        "path": rec.name,
        "files": [p.name for p in rec.files],
        "truncated": rec.truncated,
        "skipped": skipped,
    }
    tapes = []
    for market in sorted(by_market):
        info = infos.get(market) or MarketInfo(
            market=market,
            yes_token=assets.token(market, Outcome.YES) or "",
            no_token=assets.token(market, Outcome.NO) or "",
        )
        tape = tape_from_events(info, by_market[market])
        tape.meta = {"data": "a polymm recording of the market channel, replayed at the venue's timestamps"}
        tape.source = source
        tapes.append(tape)
    return tapes


def _resolve(path: str, base_dir: Path) -> Path:
    # A source's data path as its loader resolves it: relative to the scenario's directory.
    p = Path(path)
    return p if p.is_absolute() else base_dir / p


def _inputs(path: Path) -> list[Path]:
    # What a file source's tapes are made of: the file (every file of a recording directory) and,
    # for one file of a recording, the manifest beside it (its markets, ticks and fees).
    from adapters.recording import MANIFEST  # noqa: PLC0415

    manifest = path.parent / MANIFEST
    return [path, manifest] if path.is_file() and manifest.is_file() else [path]


def _tokens_of(assets: object, market: str) -> list[str]:
    return [a for a in (assets.token(market, Outcome.YES), assets.token(market, Outcome.NO)) if a]  # type: ignore[attr-defined]


def scenario_tapes(sc: Scenario, base_dir: Path, cache: TapeCache | None = None) -> list[MarketTape]:
    """Load or generate the scenario's tapes (deterministic for its seed), neg-risk events marked.

    With a ``cache`` (``sim.tape_cache``), a source that costs per event (a recorded stream, the
    BBO polls, the synthetic generator) is made once per content and read back as columns after;
    ``.npz`` files are read as columns anyway and go around it.
    """
    src = sc.source
    if isinstance(src, WsReplaySource):
        build = functools.partial(ws_replay_tapes, src, base_dir)
    else:
        build = functools.partial(load_tapes, src, sc.seed, base_dir)
    if cache is None or isinstance(src, HbtNpzSource):
        tapes = build()
    else:
        inputs = [] if isinstance(src, SyntheticSource) else _inputs(_resolve(src.path, base_dir))
        tapes = cache.tapes(src, sc.seed, inputs, build)
    if sc.rewards is not None:
        mark_rewards(tapes, sc.rewards)
    return mark_neg_risk_events(tapes, sc.neg_risk_events)


def input_files(sc: Scenario, base_dir: Path) -> list[Path]:
    """The files ``scenario_tapes(sc, base_dir)`` reads, absolute; none for a generated source.

    A recording (``ws_replay`` of a ``polymm record`` directory or file) reads its manifest and its
    recorded files.
    """
    path_s = getattr(sc.source, "path", None)
    if not isinstance(path_s, str):
        return []
    path = Path(path_s) if Path(path_s).is_absolute() else base_dir / path_s
    path = path.resolve()
    if isinstance(sc.source, WsReplaySource):
        from adapters.recording import MANIFEST, open_recording  # noqa: PLC0415
        from sim.replay_ws import is_recording  # noqa: PLC0415

        if is_recording(path):
            rec = open_recording(path)
            manifest = (path if path.is_dir() else path.parent) / MANIFEST
            return ([manifest] if manifest.is_file() else []) + [f.resolve() for f in rec.files]
    return [path]


def mark_rewards(tapes: list[MarketTape], terms: RewardTerms) -> list[MarketTape]:
    """Give the named markets (all when none named) the reward terms (in place).

    Raises:
        ValueError: ``terms.markets`` names a market the tapes do not have.
    """
    names = {t.info.market for t in tapes}
    missing = [m for m in terms.markets if m not in names]
    if missing:
        raise ValueError(f"rewards.markets: no market {missing[0]!r} in the source ({sorted(names)})")
    for tape in tapes:
        if not terms.markets or tape.info.market in terms.markets:
            tape.info = terms.apply(tape.info)
    return tapes


def mark_neg_risk_events(tapes: list[MarketTape], events: dict[str, tuple[str, ...]]) -> list[MarketTape]:
    """Set ``neg_risk``/``neg_risk_market_id`` of the named markets' ``MarketInfo`` (in place).

    Raises:
        ValueError: An event names a market the tapes do not have.
    """
    by_market = {t.info.market: t for t in tapes}
    for event, markets in events.items():
        for m in markets:
            tape = by_market.get(m)
            if tape is None:
                raise ValueError(
                    f"neg_risk_events.{event}: no market {m!r} in the source ({sorted(by_market)})"
                )
            tape.info = msgspec.structs.replace(tape.info, neg_risk=True, neg_risk_market_id=event)
    return tapes
