"""Split cached markets between strategies: a snake draft, with the risk manager covering every trade.

Pure: no I/O, clock or randomness. The rule (documented in ``docs/selection.md``):

1. Each strategy ranks the cached markets that pass its own filters (``core.selection``).
2. Trading strategies pick in rounds, in the order given; odd rounds run in reverse (a snake draft:
   A B, B A, A B, ...). A pick is the strategy's best remaining market. A strategy stops at its limit.
3. Without ``allow_overlap`` a market picked by one trading strategy is gone for the others; with it,
   each strategy only skips the markets it already has.
4. With a risk strategy, at most its limit distinct markets are traded (so it can watch them all); it
   gets every traded market (in pick order), then fills up to its limit with its own best markets.

So neither strategy takes all the best markets: with equal filters, the first pick alternates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from core.config import MarketSelection
from core.selection import MarketRecord, SelectionResult, select_markets

Role = Literal["trading", "risk"]


class StrategySpec(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy to route to: its name, filters, limit and whether it trades or watches."""

    name: str
    selection: MarketSelection
    limit: int
    role: Role = "trading"


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """What one strategy was given, and why the markets that passed its filters were not.

    ``not_given`` counts eligible markets left out: ``taken_by:<name>``, ``risk_capacity`` or
    ``limit_reached``.
    """

    name: str
    role: Role
    limit: int
    markets: tuple[MarketRecord, ...]
    eligible: SelectionResult
    not_given: tuple[tuple[str, int], ...] = ()


class RoutingResult(msgspec.Struct, frozen=True, kw_only=True):
    """One ``Route`` per strategy, in the order they were given."""

    routes: tuple[Route, ...]
    allow_overlap: bool = False

    def route(self, name: str) -> Route:
        """The route of strategy ``name``; ``KeyError`` if it was not routed."""
        for r in self.routes:
            if r.name == name:
                return r
        raise KeyError(name)


def route_markets(
    records: Sequence[MarketRecord],
    strategies: Sequence[StrategySpec],
    *,
    now_ns: int,
    allow_overlap: bool = False,
) -> RoutingResult:
    """Give each strategy markets from ``records`` by the snake-draft rule in the module docstring.

    Args:
        records: The cached markets.
        strategies: Trading strategies in draft order, and at most one ``role="risk"`` strategy.
        now_ns: Wall-clock time for the end-date filters.
        allow_overlap: Let two trading strategies be given the same market.

    Returns:
        The routes, deterministic for a given input (ties break on the Gamma id).
    """
    names = [s.name for s in strategies]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must be unique: {names}")
    risks = [s for s in strategies if s.role == "risk"]
    if len(risks) > 1:
        raise ValueError("at most one risk strategy")
    risk = risks[0] if risks else None
    trading = [s for s in strategies if s.role == "trading"]

    eligible = {s.name: select_markets(records, s.selection, now_ns=now_ns, limit=None) for s in strategies}
    picks: dict[str, list[MarketRecord]] = {s.name: [] for s in trading}
    have: dict[str, set[str]] = {s.name: set() for s in trading}
    owner: dict[str, str] = {}  # condition id -> first strategy that took it
    traded: list[MarketRecord] = []  # distinct traded markets, in pick order
    cursor = dict.fromkeys(picks, 0)
    cap = risk.limit if risk is not None else None

    round_no = 0
    while True:
        order = trading if round_no % 2 == 0 else trading[::-1]
        progressed = False
        for s in order:
            if len(picks[s.name]) >= s.limit:
                continue
            ranked = eligible[s.name].selected
            while cursor[s.name] < len(ranked):
                m = ranked[cursor[s.name]]
                cursor[s.name] += 1
                key = m.condition_id
                if key in have[s.name] or (key in owner and not allow_overlap):
                    continue
                if key not in owner and cap is not None and len(owner) >= cap:
                    continue
                picks[s.name].append(m)
                have[s.name].add(key)
                if key not in owner:
                    owner[key] = s.name
                    traded.append(m)
                progressed = True
                break
        if not progressed:
            break
        round_no += 1

    routes: list[Route] = []
    for s in strategies:
        if s.role == "trading":
            given: tuple[MarketRecord, ...] = tuple(picks[s.name])
        else:
            given = _risk_markets(traded, eligible[s.name].selected, s.limit)
        routes.append(
            Route(
                name=s.name,
                role=s.role,
                limit=s.limit,
                markets=given,
                eligible=eligible[s.name],
                not_given=_not_given(
                    s, given, eligible[s.name], owner=owner, cap=cap, allow_overlap=allow_overlap
                ),
            )
        )
    return RoutingResult(routes=tuple(routes), allow_overlap=allow_overlap)


def _risk_markets(
    traded: Sequence[MarketRecord], ranked: Sequence[MarketRecord], limit: int
) -> tuple[MarketRecord, ...]:
    out = list(traded)
    keys = {m.condition_id for m in out}
    for m in ranked:
        if len(out) >= limit:
            break
        if m.condition_id not in keys:
            out.append(m)
            keys.add(m.condition_id)
    return tuple(out)


def _not_given(
    s: StrategySpec,
    given: Sequence[MarketRecord],
    eligible: SelectionResult,
    *,
    owner: dict[str, str],
    cap: int | None,
    allow_overlap: bool,
) -> tuple[tuple[str, int], ...]:
    keys = {m.condition_id for m in given}
    counts: dict[str, int] = {}
    for m in eligible.selected:
        if m.condition_id in keys:
            continue
        other = owner.get(m.condition_id)
        if s.role == "trading" and other is not None and other != s.name and not allow_overlap:
            why = f"taken_by:{other}"
        elif s.role == "trading" and other is None and cap is not None and len(owner) >= cap:
            why = "risk_capacity"
        else:
            why = "limit_reached"
        counts[why] = counts.get(why, 0) + 1
    return tuple(sorted(counts.items()))
