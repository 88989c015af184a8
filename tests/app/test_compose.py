"""The composition root (``app.compose.bootstrap``) builds an engine from injected fakes: no socket."""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from actors.session import LIVE
from adapters.recording import Manifest, RecordedMarket, Recorder, Reports, open_recording
from adapters.runlog import read_events
from app.bootstrap import TradingEngine
from app.compose import Deps, Engine, bootstrap
from app.configfile import ConfigFileError, load_config
from core.eventlog import BufferSink
from core.markets import MarketInfo
from core.messages import Accepted, BookSnapshot
from core.units import NS_PER_S, QTY_ONE, USDC6_ONE, Outcome
from sim.session_replay import SessionReplay, read_replay, run_replay
from tests.fakes import FakeClock, book_frame

INFO = MarketInfo(market="0xmarket", yes_token="111", no_token="222", tick_px=100, min_qty=5 * QTY_ONE)
ARGS = argparse.Namespace(
    ws_url="ws://never.invalid", clob_url="http://never.invalid", config="configs/market_maker.yaml"
)


class FakeFeed:
    """A market feed the test scripts: its batches reach the engine's dispatcher on the feed's thread."""

    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self.batches: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stop = threading.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self.batches.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.005)
                continue
            self.engine.dispatch(batch)

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> Any:
        return SimpleNamespace(connected=True)


class FakeOps:
    def __init__(self, *args: Any) -> None:
        self.args = args
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


def wait_for(predicate: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def book(ts_ns: int) -> BookSnapshot:
    # YES 0.45 bid / 0.55 ask, 500 shares each side (prices in 1e-4 USDC).
    return BookSnapshot(
        market=INFO.market,
        outcome=Outcome.YES,
        ts_ns=ts_ns,
        bids=((4_500, 500 * QTY_ONE),),
        asks=((5_500, 500 * QTY_ONE),),
        tick_px=INFO.tick_px,
        min_qty=INFO.min_qty,
    )


@pytest.mark.parametrize("mode", ["dry-run", "paper"])
def test_an_engine_built_from_fakes_quotes_and_shuts_down_cleanly(tmp_path: Path, mode: Any) -> None:
    cfg = load_config("configs/market_maker.yaml")
    # No fast-move pause on the first book; this test is about the wiring, not the risk rules.
    cfg = msgspec.structs.replace(
        cfg, risk=msgspec.structs.replace(cfg.risk, fast_move_cents=None, pause_move_cents=None)
    )
    feeds: list[FakeFeed] = []
    ops: list[FakeOps] = []
    recorded: list[Path] = []
    announced: list[tuple[str | None, int]] = []

    def feed(engine: TradingEngine) -> FakeFeed:
        feeds.append(FakeFeed(engine))
        return feeds[-1]

    def make_ops(*args: Any) -> FakeOps:
        ops.append(FakeOps(*args))
        return ops[-1]

    deps = Deps(
        feed=feed,
        ops=make_ops,
        record_session=lambda engine, run_dir, config: recorded.append(run_dir),
    )
    built = bootstrap(
        cfg,
        mode,
        [INFO],
        deps=deps,
        args=ARGS,
        run_dir=tmp_path,
        announce=lambda wallet, markets: announced.append((wallet, len(markets))),
    )
    assert isinstance(built, Engine) and isinstance(built.trading, TradingEngine)
    assert (built.mode, built.live, built.cancel_all_now) == (mode, None, None)
    assert announced == [(None, 1)]
    assert recorded == ([tmp_path] if cfg.ops.record_market_data else [])
    assert ops[0].args[2:4] == (mode, built.trading)  # (args, cfg, mode, engine, run_dir, clock, gateway)
    assert ops[0].args[-1] is None  # no gateway off live

    built.start()
    try:
        assert len(feeds) == 1 and ops[0].calls == ["start"]
        feeds[0].batches.put((book(built.trading.clock.now_ns()),))

        def quoting() -> bool:
            s = built.trading.statuses().get(INFO.market)
            return s is not None and bool(s.last_quote) and s.open_orders > 0

        assert wait_for(quoting), built.trading.statuses()
    finally:
        stopped = built.shutdown()
    assert ops[0].calls == ["start", "stop"]
    assert stopped.venue_summary is None
    assert stopped.statuses[INFO.market].decisions >= 1
    assert stopped.statuses[INFO.market].open_orders == 0  # every quote pulled at shutdown
    assert (INFO.market in stopped.paper) == (mode == "paper")
    kinds = [e["kind"] for e in read_events(tmp_path)]
    assert kinds[0] == "units" and "decision" in kinds


class ListSink:
    def __init__(self) -> None:
        self.records: list[tuple[str, int, str, Any]] = []

    def record(self, kind: str, ts_ns: int, market: str, payload: Any) -> None:
        self.records.append((kind, ts_ns, market, payload))

    def close(self) -> None:
        pass


def test_a_live_venue_that_cannot_start_is_announced_recorded_and_raised(tmp_path: Path) -> None:
    def refuse(args: Any, cfg: Any, markets: Any) -> Any:
        raise ConfigFileError("--mode live: no key")

    sink = ListSink()
    announced: list[str | None] = []
    with pytest.raises(ConfigFileError, match="no key"):
        bootstrap(
            load_config("configs/market_maker.yaml"),
            "live",
            [INFO],
            deps=Deps(sink=sink, connect_live=refuse, ops=FakeOps),
            args=ARGS,
            run_dir=tmp_path,
            announce=lambda wallet, markets: announced.append(wallet),
        )
    assert announced == [None]
    assert [(k, p) for k, _, _, p in sink.records] == [
        ("run_end", {"exit": "start_failed", "error": "--mode live: no key"})
    ]


def test_a_dry_run_replay_is_built_by_the_root_from_a_recording(tmp_path: Path) -> None:
    # A plain recording of one market: both books, then two seconds later the YES bid moves.
    clock = FakeClock(1_800_000_000 * NS_PER_S)
    manifest = Manifest(kind="record", ws_url="ws://x", markets=(RecordedMarket.from_info(INFO, slug="s"),))
    rec = Recorder(tmp_path / "rec", manifest, clock=clock).start()
    rec.on_connect("ws://x")
    rec.on_frame(book_frame(INFO.market, INFO.yes_token, "0.45", "0.55"))
    rec.on_frame(book_frame(INFO.market, INFO.no_token, "0.45", "0.55"))
    clock.t += 2 * NS_PER_S
    rec.on_frame(book_frame(INFO.market, INFO.yes_token, "0.46", "0.55"))
    rec.close()
    cfg = load_config("configs/market_maker.yaml")
    source = read_replay(open_recording(tmp_path / "rec"))
    sink = BufferSink()

    replay = bootstrap(cfg, "replay", source.markets, deps=Deps(sink=sink), replay=source)

    assert isinstance(replay, SessionReplay) and replay.sink is sink
    assert replay.global_cap == round(cfg.inventory.global_ev_cap * USDC6_ONE)  # the config, read by the root
    assert replay.event_cap == round(cfg.inventory.event_cap * USDC6_ONE)
    summary = run_replay(replay, source, tmp_path / "out")
    events = [json.loads(line) for line in sink.lines]
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == b"".join(sink.lines)
    decisions = [e for e in events if e["kind"] == "decision"]
    assert decisions and any(d["quote"] for d in decisions)
    assert summary["decisions"] == {INFO.market: len(decisions)} and summary["mode"] == "dry-run"
    assert any(e["kind"] == "place" for e in events)
    assert summary["seconds"] == 2.0  # the recording's clock


# Every engine class, and the only module of ours that may build one outside the tests and benchmarks.
ENGINES = {"TradingEngine", "Runner", "SessionReplay"}
PRODUCTION = ("app", "actors", "adapters", "core", "emulator", "research", "sim", "venue")


def engine_builds(source: str) -> list[tuple[int, str]]:
    """Each call of an engine class in ``source`` (by name or attribute), with its line."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in ENGINES:
                out.append((node.lineno, name))
    return out


def test_engines_are_built_only_by_the_composition_root() -> None:
    root = Path(__file__).resolve().parents[2]
    found = {
        str(path.relative_to(root)): builds
        for package in PRODUCTION
        for path in sorted((root / package).rglob("*.py"))
        if (builds := engine_builds(path.read_text()))
    }
    assert set(found) == {"app/compose.py"}, found
    assert {name for _, name in found["app/compose.py"]} == ENGINES


def test_the_engine_check_sees_a_build_by_name_and_by_attribute() -> None:
    source = "from sim import runner\nr = runner.Runner(t)\ns = SessionReplay(m)\nTradingEngine\n"
    assert engine_builds(source) == [(2, "Runner"), (3, "SessionReplay")]


@pytest.mark.parametrize("mode", ["dry-run", "paper"])
def test_a_paper_sessions_recording_holds_its_venues_reports_and_a_dry_run_ones_none(
    tmp_path: Path, mode: Any
) -> None:
    # The production recording (Deps' default record_session) of a session quoting on a fake feed.
    cfg = load_config("configs/market_maker.yaml")
    cfg = msgspec.structs.replace(
        cfg, risk=msgspec.structs.replace(cfg.risk, fast_move_cents=None, pause_move_cents=None)
    )
    feeds: list[FakeFeed] = []
    acked: list[str] = []

    def feed(engine: TradingEngine) -> FakeFeed:
        feeds.append(FakeFeed(engine))
        return feeds[-1]

    built = bootstrap(cfg, mode, [INFO], deps=Deps(feed=feed, ops=FakeOps), args=ARGS, run_dir=tmp_path)
    assert isinstance(built, Engine)
    built.start()
    try:
        feeds[0].batches.put((book(built.trading.clock.now_ns()),))

        def acknowledged() -> bool:
            # Quoting, every order acknowledged (statuses() is the market actors' barrier).
            s = built.trading.statuses().get(INFO.market)
            orders = list(built.trading._sessions[INFO.market].orders.values())
            acked[:] = [r.client_id for r in orders]
            return s is not None and s.open_orders > 0 and all(r.status == LIVE for r in orders)

        assert wait_for(acknowledged), built.trading.statuses()
    finally:
        built.shutdown()
    [recording] = (tmp_path / "market_data").iterdir()
    reports = [r for r in open_recording(recording).records() if isinstance(r, Reports)]
    places = [e["client_id"] for e in read_events(tmp_path) if e["kind"] == "place"]
    assert places
    if mode == "dry-run":
        assert reports == []  # the replay's own DryRunPort acknowledges, as live
        return
    assert {r.market for r in reports} == {INFO.market}
    accepted = [ev.client_id for r in reports for ev in r.reports if isinstance(ev, Accepted)]
    assert set(acked) <= set(accepted)  # what the session heard before the shutdown is recorded
    assert accepted == places[: len(accepted)]  # in the order placed
