"""The risk manager between calls (``actors.risk``): samples, evaluations, the operator, the state file.

The rules themselves are ``core.risk``'s (``tests/core/test_risk.py``); here: what the monitor keeps
between calls, which gates it hands out and when, the ``risk`` records, what survives a restart,
and the pykka shell.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

import msgspec
import pykka
import pytest

from actors.risk import (
    GetRisk,
    MarketSample,
    Operate,
    OperateResult,
    RiskActor,
    RiskMonitor,
    RiskTick,
    RiskView,
)
from adapters.risk_state import RiskStateError, RiskStateFile, state_path
from core.eventlog import BufferSink
from core.inventory import Inventory, apply_fill
from core.risk import ACTIVE_GATE, NS_PER_DAY, RiskLimits, TradingState
from core.units import NS_PER_S, QTY_ONE, USDC6_ONE, Outcome, Side

USD = USDC6_ONE
SHARE = QTY_ONE
DAY0 = 20_000 * NS_PER_DAY
T0 = DAY0 + 3_600 * NS_PER_S
ACTIVE, REDUCE_ONLY, PAUSED, HALTED = (
    TradingState.ACTIVE,
    TradingState.REDUCE_ONLY,
    TradingState.PAUSED,
    TradingState.HALTED,
)
LIMITS = RiskLimits(
    daily_loss_stop_usdc6=150 * USD,
    market_daily_loss_stop_usdc6=40 * USD,
    max_errors_per_min=5,
    max_feed_age_ns=60 * NS_PER_S,
    inventory_hard_limit_qty=500 * SHARE,
)


def long_yes(shares: int, px: int = 5_000) -> Inventory:
    return apply_fill(Inventory(), Outcome.YES, Side.BUY, px, shares * SHARE, 0)


def sample(
    market: str = "a", ts: int = T0, inv: Inventory | None = None, mid: int = 5_000, **kw: Any
) -> MarketSample:
    return MarketSample(
        market=market,
        ts_ns=ts,
        inv=inv if inv is not None else Inventory(),
        mid_px=mid,
        book_ts_ns=kw.pop("book_ts_ns", ts),
        book_valid=True,
        **kw,
    )


def records(sink: BufferSink) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.lines]


def monitor(
    limits: RiskLimits = LIMITS, markets: tuple[str, ...] = ("a", "b")
) -> tuple[RiskMonitor, BufferSink]:
    sink = BufferSink()
    return RiskMonitor(limits, markets, book_sink=sink, keep_history=True), sink


def test_a_fill_that_reaches_the_market_loss_stop_halts_that_market_at_once_with_its_numbers():
    m, sink = monitor()
    inv = long_yes(100)
    assert m.observe(sample("a", T0, inv, 5_000)) is None  # baseline: 100 shares at 0.50
    m.observe(sample("b", T0, Inventory(), 5_000))
    assert m.observe(sample("a", T0 + NS_PER_S, inv, 1_100)) is None  # -39 USDC: not yet

    gate = m.observe(sample("a", T0 + 2 * NS_PER_S, inv, 1_000))  # -40 USDC: the stop

    assert gate is not None and gate.state is HALTED and gate.rule == "market_daily_loss_stop"
    [rec] = [r for r in records(sink) if r["kind"] == "risk"]
    assert rec["market"] == "a" and rec["state"] == "halted" and rec["from"] == "active"
    assert rec["ts_ns"] == T0 + 2 * NS_PER_S
    top = rec["reasons"][0]
    assert (top["rule"], top["observed"], top["limit"], top["unit"]) == (
        "market_daily_loss_stop",
        40 * USD,
        40 * USD,
        "usdc6",
    )
    assert rec["day_pnl_usdc6"] == -40 * USD and rec["text"].startswith(
        "halted by market_daily_loss_stop [a]"
    )
    assert m.gate("b") is ACTIVE_GATE
    # Latched: the mark coming back does not lift it; the book evaluation keeps it.
    assert m.observe(sample("a", T0 + 3 * NS_PER_S, inv, 5_000)) is None
    assert m.evaluate(T0 + 4 * NS_PER_S) == {}
    assert m.gate("a").state is HALTED
    assert [(h.market, h.state, h.rule) for h in m.history or ()] == [
        ("a", "halted", "market_daily_loss_stop")
    ]


def test_with_halt_scope_book_a_markets_loss_stop_halts_every_market_at_the_next_evaluation():
    m, sink = monitor(msgspec.structs.replace(LIMITS, halt_book_on_market_loss=True))
    inv = long_yes(100)
    m.observe(sample("a", T0, inv, 5_000))
    m.observe(sample("b", T0, Inventory(), 5_000))
    m.evaluate(T0)

    m.observe(sample("a", T0 + NS_PER_S, inv, 900), assess=False)  # -41 USDC: the lane only notes it...
    changed = m.evaluate(T0 + 2 * NS_PER_S)  # ...the barrier acts

    assert {k: g.state for k, g in changed.items()} == {"a": HALTED, "b": HALTED}
    book = [r for r in records(sink) if r["kind"] == "risk" and r["market"] == ""]
    assert book[-1]["state"] == "halted" and book[-1]["rule"] == "market_daily_loss_stop"
    assert m.view(T0 + 2 * NS_PER_S).book_state == "halted"


def test_the_books_daily_loss_stop_sums_every_market():
    m, _ = monitor(msgspec.structs.replace(LIMITS, market_daily_loss_stop_usdc6=100 * USD))
    for name in ("a", "b"):
        m.observe(sample(name, T0, long_yes(200), 5_000))
    m.evaluate(T0)
    for name in ("a", "b"):  # -74 USDC each: no market's stop, and -148 in all
        m.observe(sample(name, T0 + NS_PER_S, long_yes(200), 1_300), assess=False)
    assert m.evaluate(T0 + NS_PER_S) == {}

    for name in ("a", "b"):
        m.observe(sample(name, T0 + 2 * NS_PER_S, long_yes(200), 1_250), assess=False)  # -75 each: -150
    changed = m.evaluate(T0 + 2 * NS_PER_S)

    assert {g.state for g in changed.values()} == {HALTED} and set(changed) == {"a", "b"}
    assert m.book is not None and m.book.halt is not None and m.book.halt.reason.rule == "daily_loss_stop"


def test_rejects_feed_age_and_drift_pause_a_market_until_they_clear():
    m, _ = monitor()
    m.observe(sample("a", T0))
    assert m.observe(sample("a", T0 + NS_PER_S, rejects=6)).state is PAUSED  # 6 > 5 a minute
    m.observe(sample("a", T0 + 69 * NS_PER_S, rejects=6), assess=False)
    assert m.evaluate(T0 + 70 * NS_PER_S)["a"].state is ACTIVE  # the burst aged out

    m.observe(sample("a", T0 + 71 * NS_PER_S, book_ts_ns=T0 + 71 * NS_PER_S))
    assert m.evaluate(T0 + 132 * NS_PER_S)["a"].rule == "feed_stale"
    gate = m.observe(sample("a", T0 + 133 * NS_PER_S, book_ts_ns=T0 + 133 * NS_PER_S))
    assert gate is not None and gate.state is ACTIVE

    gate = m.observe(sample("a", T0 + 134 * NS_PER_S, drift="position 5 shares off the venue's"))
    assert gate is not None and (gate.state, gate.rule) == (PAUSED, "drift")


def test_the_heartbeat_and_venue_errors_pause_the_book():
    m, _ = monitor(msgspec.structs.replace(LIMITS, max_heartbeat_age_ns=8 * NS_PER_S))
    m.observe(sample("a", T0))
    changed = m.evaluate(T0 + NS_PER_S, heartbeat_age_ns=9 * NS_PER_S)
    assert changed["a"].state is PAUSED and changed["a"].rule == "heartbeat_stale"
    assert m.gate("b").state is PAUSED  # no sample yet: the book's floor all the same
    assert m.evaluate(T0 + 2 * NS_PER_S, heartbeat_age_ns=NS_PER_S)["a"].state is ACTIVE
    changed = m.evaluate(T0 + 3 * NS_PER_S, heartbeat_age_ns=NS_PER_S, venue_errors=6)
    assert changed["a"].rule == "error_rate"


def test_the_operator_pauses_reduces_halts_and_resumes_markets_and_the_book():
    m, _ = monitor()
    m.observe(sample("a", T0, long_yes(10)))
    m.observe(sample("b", T0))

    assert m.operate("pause", "a", "look at it", T0)["a"].state is PAUSED
    assert m.gate("b").state is ACTIVE
    assert m.operate("reduce_only", "", "", T0)["b"].state is REDUCE_ONLY
    assert m.gate("a").state is PAUSED  # its own pause is the worse
    changed = m.operate("halt", "", "news", T0)
    assert {k: (g.state, g.rule) for k, g in changed.items()} == {
        "a": (HALTED, "operator"),
        "b": (HALTED, "operator"),
    }
    assert m.take_durable() and not m.take_durable()
    with pytest.raises(KeyError):
        m.operate("pause", "nope", "", T0)

    changed = m.operate("resume", "", "", T0 + NS_PER_S)  # the book: everything

    assert {g.state for g in changed.values()} == {ACTIVE}
    view = m.view(T0 + NS_PER_S)
    assert view.book_state == "active" and view.book_halt == ""
    assert [(x.state, x.operator) for x in view.markets] == [("active", "active"), ("active", "active")]


def test_resume_does_not_silence_a_rule_still_breached():
    m, _ = monitor()
    inv = long_yes(100)
    m.observe(sample("a", T0, inv, 5_000))
    assert m.observe(sample("a", T0 + NS_PER_S, inv, 1_000)).state is HALTED

    changed = m.operate("resume", "a", "", T0 + 2 * NS_PER_S)

    assert changed == {}  # halted again at once, by the same stop (a new latch)
    assert m.markets["a"].carry.halt is not None and m.markets["a"].carry.halt.ts_ns == T0 + 2 * NS_PER_S


def test_a_halt_and_the_days_pnl_survive_a_restart():
    m, _ = monitor()
    inv = long_yes(100)
    m.observe(sample("a", T0, inv, 5_000))
    m.observe(sample("a", T0 + NS_PER_S, inv, 3_000))  # -20 USDC today
    m.observe(sample("b", T0))
    m.operate("halt", "", "before the restart", T0 + 2 * NS_PER_S)
    state = json.loads(json.dumps(m.to_state(T0 + 2 * NS_PER_S)))  # through the file's JSON
    state["markets"]["gone"] = {"operator": "paused", "operator_note": "not traded now", "halt": None}

    # The restarted process: the venue's inventory has another cash origin (its cost basis).
    again, _sink = monitor()
    again.restore(state)
    gates = again.start_gates()
    assert {k: g.state for k, g in gates.items()} == {"a": HALTED, "b": HALTED}
    restarted = Inventory(yes_qty=100 * SHARE, yes_cost_usdc6=50 * USD)
    gate = again.observe(sample("a", T0 + 10 * NS_PER_S, restarted, 2_000))  # before any evaluation
    assert gate is None and again.gate("a").state is HALTED  # still halted: the book's latch
    again.evaluate(T0 + 11 * NS_PER_S)
    view = {x.market: x for x in again.view(T0 + 11 * NS_PER_S).markets}
    assert view["a"].day_pnl_usdc6 == -30 * USD  # -20 carried, -10 since
    assert again.to_state(T0)["markets"]["gone"]["operator"] == "paused"  # kept for its own run

    assert set(again.operate("resume", "", "", T0 + 12 * NS_PER_S)) == {"a", "b"}


def test_a_halt_outlives_its_day_but_the_pnl_baseline_does_not():
    m, _ = monitor()
    m.observe(sample("a", T0, long_yes(100), 5_000))
    m.observe(sample("a", T0 + NS_PER_S, long_yes(100), 1_000))  # halted
    state = m.to_state(T0 + NS_PER_S)

    again, _ = monitor()
    again.restore(state)
    again.start_gates()
    tomorrow = T0 + NS_PER_DAY
    again.observe(sample("a", tomorrow, long_yes(100), 1_000))
    again.evaluate(tomorrow)
    [a, _b] = again.view(tomorrow).markets
    assert a.state == "halted" and a.day_pnl_usdc6 == 0  # a new day's baseline, the old halt


def test_a_malformed_state_is_refused():
    m, _ = monitor()
    with pytest.raises(ValueError, match="version"):
        m.restore({"version": 99})
    with pytest.raises(ValueError, match="malformed"):
        m.restore({"version": 1, "book": {"operator": "sideways"}, "markets": {}})


def test_the_state_file_is_replaced_atomically_and_read_back(tmp_path):
    path = state_path(tmp_path, "live")
    store = RiskStateFile(path)
    assert store.load() is None
    store.save({"version": 1, "x": 1}, durable=True)
    store.save({"version": 1, "x": 2}, durable=False)
    assert store.load() == {"version": 1, "x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["risk_state.live.json"]
    path.write_text("{torn")
    with pytest.raises(RiskStateError, match="not JSON"):
        store.load()
    os.chmod(path, 0)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(RiskStateError, match="cannot read"):
            store.load()
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


class FakeStore:
    def __init__(self) -> None:
        self.saves: list[tuple[dict[str, Any], bool]] = []

    def save(self, state: Any, *, durable: bool) -> None:
        self.saves.append((dict(state), durable))


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def now_ns(self) -> int:
        return self.t


def test_the_risk_actor_tells_gates_answers_the_operator_and_saves():
    told: list[tuple[str, Any]] = []
    store = FakeStore()
    m, _ = monitor()
    ref = RiskActor.start(m, lambda market, gate: told.append((market, gate)), Clock(), store=store)
    try:
        ref.tell(sample("a", T0, long_yes(100), 5_000))
        ref.tell(sample("a", T0 + NS_PER_S, long_yes(100), 1_000))
        ref.tell(RiskTick(ts_ns=T0 + 2 * NS_PER_S))
        result = ref.ask(Operate(action="pause", market="b", note="n", who="tok"), timeout=5)
        bad = ref.ask(Operate(action="pause", market="zz"), timeout=5)
        view = ref.ask(GetRisk(), timeout=5)
    finally:
        ref.stop()

    assert [(k, g.state) for k, g in told] == [("a", HALTED), ("b", PAUSED)]
    assert isinstance(result, OperateResult) and result.ok and result.changed == {"b": "paused"}
    assert not bad.ok and "unknown market zz" in bad.error
    assert isinstance(view, RiskView) and [x.state for x in view.markets] == ["halted", "paused"]
    assert any(durable for _, durable in store.saves)  # the halt and the pause: at once, durably
    assert store.saves[-1][0]["markets"]["b"]["operator"] == "paused"  # the last save: on stop
    with pytest.raises(pykka.ActorDeadError):
        ref.tell(GetRisk())
