"""Scenario files: where a simulation's data comes from and how the simulated venue behaves.

A scenario is YAML decoded into ``Scenario`` (unknown keys are errors). Shipped scenarios live in
``configs/scenarios/``; ``polymm sim --scenario NAME`` looks there, or takes a path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from core.markets import MarketInfo
from core.units import ORDER_QTY_STEP, QTY_ONE, Outcome
from sim.exchange import QueueModel
from sim.runner import Latency, RunSettings
from sim.sources import SourceConfig, load_tapes
from sim.tape import MarketTape, tape_from_events


class WsReplaySource(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="ws_replay", tag_field="type"
):
    """Recorded Polymarket market-channel messages (JSON array or JSONL), replayed as they came.

    ``yes_tokens`` names the YES token of each market; by default the asset of a market's first
    ``book`` is YES. ``tick_px``/``min_qty`` (Qty: 1e-6 share) apply until a ``book`` says otherwise.
    """

    path: str
    yes_tokens: tuple[str, ...] = ()
    tick_px: Annotated[int, Meta(ge=1, le=1000)] = 100
    min_qty: Annotated[int, Meta(ge=ORDER_QTY_STEP, multiple_of=ORDER_QTY_STEP)] = 5 * QTY_ONE
    fee_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0


class Scenario(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulation scenario."""

    name: str = ""
    description: str = ""
    seed: int = 1
    source: SourceConfig | WsReplaySource
    latency: Latency = msgspec.field(default_factory=Latency)
    queue: QueueModel = msgspec.field(default_factory=QueueModel)
    timer_ms: Annotated[int, Meta(ge=10)] = 1000
    log_inputs: bool = True

    def settings(self, global_ev_cap_usdc6: int | None) -> RunSettings:
        """The runner's settings for this scenario."""
        return RunSettings(
            latency=self.latency,
            queue=self.queue,
            timer_ms=self.timer_ms,
            log_inputs=self.log_inputs,
            global_ev_cap_usdc6=global_ev_cap_usdc6,
        )


def ws_replay_tapes(src: WsReplaySource, base_dir: Path) -> list[MarketTape]:
    """Tapes from a recorded market-channel file."""
    from sim.replay_ws import events_from_messages, infer_asset_map, load_ws_messages  # noqa: PLC0415

    path = (base_dir / src.path) if not Path(src.path).is_absolute() else Path(src.path)
    msgs = load_ws_messages(path)
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
    by_market: dict[str, list] = {}
    for ev in events_from_messages(msgs, assets):
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
        )
        tapes.append(tape_from_events(info, by_market[market]))
    return tapes


def _tokens_of(assets: object, market: str) -> list[str]:
    return [a for a in (assets.token(market, Outcome.YES), assets.token(market, Outcome.NO)) if a]  # type: ignore[attr-defined]


def scenario_tapes(sc: Scenario, base_dir: Path) -> list[MarketTape]:
    """Load or generate the scenario's tapes (deterministic for its seed)."""
    if isinstance(sc.source, WsReplaySource):
        return ws_replay_tapes(sc.source, base_dir)
    return load_tapes(sc.source, sc.seed, base_dir)
