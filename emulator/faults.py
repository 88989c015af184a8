"""Fault injection from a scenario's ``faults`` rules: REST statuses, latency, order rejections, and
WebSocket drops and freezes.

Times are ms since the emulator started. Each rule keeps its own fire count; probabilistic rules
draw from one ``random.Random`` seeded by the scenario. Thread-safe (REST handlers call in from many
threads).
"""

from __future__ import annotations

import random
import threading
from typing import Literal

import msgspec

from emulator.scenario import FaultRule, HttpFault, LatencyFault, RejectFault, WsDropFault, WsFreezeFault

__all__ = ["Channel", "FaultInjector", "route_matches"]

Channel = Literal["market", "user"]


def route_matches(patterns: tuple[str, ...], method: str, path: str) -> bool:
    """Whether ``METHOD /path`` matches any pattern (empty: all; ``*`` suffix: prefix; ``*`` method)."""
    if not patterns:
        return True
    for pattern in patterns:
        want_method, _, want_path = pattern.strip().partition(" ")
        if not want_path:
            want_method, want_path = "*", want_method
        if want_method not in ("*", method):
            continue
        if want_path in ("*", path) or (want_path.endswith("*") and path.startswith(want_path[:-1])):
            return True
    return False


class _State:
    __slots__ = ("fired", "matched", "next_ms")

    def __init__(self, next_ms: int) -> None:
        self.matched = 0
        self.fired = 0
        self.next_ms = next_ms


class FaultInjector:
    """Decides, per request or per step, which fault rules fire.

    Args:
        rules: The scenario's fault rules, in order (the first HTTP rule that fires wins).
        rng: Seeded randomness for ``probability`` and latency jitter.
    """

    def __init__(self, rules: tuple[FaultRule, ...], rng: random.Random) -> None:
        self._rules: list[FaultRule] = list(rules)
        self._rng = rng
        self._lock = threading.Lock()
        self._state = [_State(r.start_ms if isinstance(r, WsDropFault | WsFreezeFault) else 0) for r in rules]
        self._ids: list[int] = [0] * len(rules)  # 0: from the scenario; run-time rules get 1, 2, ...
        self._next_id = 1
        self.counts: dict[str, int] = {}

    def add(self, rule: FaultRule, now_ms: int) -> int:
        """Add a rule at run time, its ``start_ms``/``end_ms`` counted from ``now_ms``; returns its id."""
        end = None if rule.end_ms is None else rule.end_ms + now_ms
        shifted = msgspec.structs.replace(rule, start_ms=rule.start_ms + now_ms, end_ms=end)
        with self._lock:
            rule_id = self._next_id
            self._next_id += 1
            self._rules.append(shifted)
            self._state.append(
                _State(shifted.start_ms if isinstance(shifted, WsDropFault | WsFreezeFault) else 0)
            )
            self._ids.append(rule_id)
        return rule_id

    def remove(self, rule_id: int | None = None) -> list[int]:
        """Remove the run-time rule ``rule_id`` (None: every run-time rule); returns the ids removed."""
        with self._lock:
            keep = [i for i, x in enumerate(self._ids) if x == 0 or (rule_id is not None and x != rule_id)]
            gone = [x for i, x in enumerate(self._ids) if i not in set(keep)]
            self._rules = [self._rules[i] for i in keep]
            self._state = [self._state[i] for i in keep]
            self._ids = [self._ids[i] for i in keep]
        return gone

    def rules(self) -> list[dict[str, object]]:
        """Every rule with its id (0: the scenario's) and fire count, times since the emulator started."""
        with self._lock:
            return [
                {"id": i, "fired": st.fired, **msgspec.to_builtins(r)}
                for r, st, i in zip(self._rules, self._state, self._ids, strict=True)
            ]

    def _count(self, rule: FaultRule) -> None:
        kind = str(rule.__struct_config__.tag)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _in_window(self, rule: FaultRule, state: _State, now_ms: int) -> bool:
        if now_ms < rule.start_ms or (rule.end_ms is not None and now_ms >= rule.end_ms):
            return False
        return not (rule.max_count and state.fired >= rule.max_count)

    def _fires(
        self, rule: HttpFault | LatencyFault | RejectFault, state: _State, method: str, path: str, now_ms: int
    ) -> bool:
        if not self._in_window(rule, state, now_ms) or not route_matches(rule.routes, method, path):
            return False
        state.matched += 1
        if rule.every_n:
            hit = state.matched % rule.every_n == 0
        elif rule.probability:
            hit = self._rng.random() < rule.probability
        else:
            hit = True
        if hit:
            state.fired += 1
            self._count(rule)
        return hit

    def http_fault(self, method: str, path: str, now_ms: int) -> HttpFault | None:
        """The status fault that answers this request instead of the venue, if any."""
        with self._lock:
            for rule, state in zip(self._rules, self._state, strict=True):
                if isinstance(rule, HttpFault) and self._fires(rule, state, method, path, now_ms):
                    return rule
        return None

    def latency_s(self, method: str, path: str, now_ms: int) -> float:
        """Seconds to delay this request (the sum of every latency rule that fires)."""
        total_ms = 0
        with self._lock:
            for rule, state in zip(self._rules, self._state, strict=True):
                if isinstance(rule, LatencyFault) and self._fires(rule, state, method, path, now_ms):
                    total_ms += rule.ms + (self._rng.randint(0, rule.jitter_ms) if rule.jitter_ms else 0)
        return total_ms / 1000

    def reject(self, method: str, path: str, now_ms: int) -> RejectFault | None:
        """The rejection rule that refuses one order of this request, if any."""
        with self._lock:
            for rule, state in zip(self._rules, self._state, strict=True):
                if isinstance(rule, RejectFault) and self._fires(rule, state, method, path, now_ms):
                    return rule
        return None

    def due_drops(self, now_ms: int) -> list[WsDropFault]:
        """WebSocket drops due by ``now_ms`` (each rule fires once per ``every_ms`` period)."""
        out: list[WsDropFault] = []
        with self._lock:
            for rule, state in zip(self._rules, self._state, strict=True):
                if not isinstance(rule, WsDropFault) or not self._in_window(rule, state, now_ms):
                    continue
                if now_ms >= state.next_ms:
                    out.append(rule)
                    state.fired += 1
                    self._count(rule)
                    state.next_ms = now_ms + rule.every_ms if rule.every_ms else 2**62
        return out

    def frozen(self, channel: Channel, now_ms: int) -> WsFreezeFault | None:
        """The freeze rule silencing ``channel`` at ``now_ms``, if any."""
        with self._lock:
            for rule in self._rules:
                if not isinstance(rule, WsFreezeFault) or rule.channel not in (channel, "all"):
                    continue
                if now_ms < rule.start_ms or (rule.end_ms is not None and now_ms >= rule.end_ms):
                    continue
                offset = now_ms - rule.start_ms
                period = offset // rule.every_ms if rule.every_ms else 0
                if rule.max_count and period >= rule.max_count:
                    continue
                if (offset - period * rule.every_ms if rule.every_ms else offset) < rule.duration_ms:
                    return rule
        return None
