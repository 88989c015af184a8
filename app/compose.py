"""The composition root: every engine, live, paper, dry-run or simulated, is built by ``bootstrap``.

``bootstrap(cfg, mode, markets, deps=Deps(...))`` assembles the pieces a run needs and returns a typed
engine; what it builds with comes from ``Deps``, whose defaults are production's (the receive clock,
the market channel WebSocket, ``app.live.start_live`` for the venue, ``app.operations.OpsPlane`` for
the control plane and metrics, ``app.session_recording`` for the feed recording). Tests inject fakes
there instead of starting sockets.

* ``live``, ``paper``, ``dry-run``: an ``Engine`` around ``app.bootstrap.TradingEngine`` (live: first
  the venue, ``app.live.LiveConnection``, whose port, positions and user channel the engine gets);
  ``run-market-maker`` starts it, waits, and shuts it down with ``Engine.shutdown``.
* ``sim``: the simulator's ``sim.runner.Runner`` over the scenario's tapes (``SimInputs``): a different
  assembly of the same sessions (a simulated clock and venue, no threads), built here so there is one
  entry.
* ``replay``: a dry-run or paper session replayed from a recording (``polymm sim --replay REC
  --dry-run``): ``sim.session_replay.SessionReplay`` over the recording
  ``sim.session_replay.read_replay`` read (the live engine's feed client, dispatcher and actor
  handler, a ``DryRunPort`` per market, or for a paper session's recording a ``VenueReplayPort`` and
  the paper venue's recorded reports; the recording's clock; no threads), run by
  ``sim.session_replay.run_replay``.
"""

from __future__ import annotations

import argparse
import logging
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from adapters.clock import LiveClock
from app.configfile import ConfigFileError, ServiceUnavailable
from app.process import restore_default_recursion_limit
from core.config import Config
from core.markets import MarketInfo
from core.ports import Clock, EventSink
from core.quoting import quote_params
from core.risk import RiskLimits
from core.units import USDC6_ONE

if TYPE_CHECKING:
    from actors.risk import RiskMonitor
    from app.bootstrap import FeedFactory, Mode, TradingEngine
    from app.live import LiveConnection
    from app.operations import RiskSetup
    from sim.runner import Runner, RunSettings
    from sim.session_replay import ReplayInput, SessionReplay
    from sim.tape import MarketTape

log = logging.getLogger("polymm")

EngineMode = Literal["live", "paper", "dry-run", "sim", "replay"]


class OpsLike(Protocol):
    """The operator's plane of a run (``app.operations.OpsPlane``): started after the engine."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


#: ``(args, cfg, markets) -> LiveConnection``: connect to the venue (live only).
ConnectLive = Callable[[argparse.Namespace, Config, Sequence[MarketInfo]], "LiveConnection"]
#: ``(wallet, markets)``: the venue is known (``bootstrap``'s ``announce``).
Announce = Callable[[str | None, Sequence[MarketInfo]], None]
#: ``(args, cfg, mode, engine, run_dir, clock, gateway) -> OpsLike``.
OpsFactory = Callable[..., OpsLike]
#: ``(engine, run_dir, config_path)``: record the feed beside the events (``ops.record_market_data``).
RecordSession = Callable[["TradingEngine", Path, str], object]


def import_live() -> types.ModuleType:
    """``app.live`` (the venue's SDK only when trading), with the recursion limit kept at its default.

    The SDK's eth-* dependencies may import py_ecc, which raises the limit to 100,000: ``app.process``
    says why that must not stay.
    """
    import app.live  # noqa: PLC0415

    restore_default_recursion_limit()
    return app.live


def start_live_checked(
    args: argparse.Namespace, cfg: Config, markets: Sequence[MarketInfo]
) -> LiveConnection:
    """The live wiring (key, credentials checked with the venue, gateway); bad input exits 2, one line.

    ``Deps.connect_live``'s default.
    """
    start_live: Callable[..., LiveConnection] = import_live().start_live
    from adapters.polymarket.errors import AuthFailed, PolymarketError  # noqa: PLC0415 (live only)
    from adapters.polymarket.secrets import SecretError  # noqa: PLC0415

    try:
        return start_live(args, cfg, markets)
    except SecretError as exc:
        raise ConfigFileError(f"--mode live: {exc}") from None
    except AuthFailed as exc:
        why = " ".join(str(exc).split())[:120]
        raise ConfigFileError(
            f"--mode live: {args.clob_url} refused the credentials ({why}): check "
            "POLYMM_API_KEY, POLYMM_API_SECRET, POLYMM_API_PASSPHRASE and the private key they belong to"
        ) from None
    except PolymarketError as exc:
        raise ServiceUnavailable(
            f"polymm run-market-maker: cannot start live trading on {args.clob_url}: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        ) from None


def _ops_plane(*args: Any) -> OpsLike:
    from app.operations import OpsPlane  # noqa: PLC0415

    return OpsPlane(*args)


def _record_session(engine: TradingEngine, run_dir: Path, config_path: str) -> object:
    from app.session_recording import record_session  # noqa: PLC0415

    return record_session(engine, run_dir, config_path)


@dataclass(frozen=True)
class Deps:
    """What an engine is built with; every default is production's.

    ``clock``: the sessions' clock; ``sink``: the event log (None: ``run_dir/events.jsonl``, owned and
    closed by the engine); ``risk``: the risk manager's limits and state store (None: the config's
    own ``risk`` limits, nothing saved); ``connect_live``: the venue (live); ``feed``: the market feed
    (None: the market channel WebSocket); ``ops``: the control plane and metrics; ``record_session``:
    the feed's recording.
    """

    clock: Clock = field(default_factory=LiveClock)
    sink: EventSink | None = None
    risk: RiskSetup | None = None
    connect_live: ConnectLive = start_live_checked
    feed: FeedFactory | None = None
    ops: OpsFactory = _ops_plane
    record_session: RecordSession = _record_session


@dataclass(frozen=True)
class SimInputs:
    """A simulation's inputs beside the config: the scenario's settings and seed, the risk limits."""

    settings: RunSettings
    seed: int
    risk: RiskLimits | None


@dataclass(frozen=True)
class Stopped:
    """What a shutdown leaves for the summary: statuses, the paper venue's markets, the venue's report."""

    statuses: dict[str, Any]
    paper: dict[str, Any]
    venue_summary: dict[str, Any] | None


@dataclass(frozen=True, eq=False)
class Engine:
    """A live, paper or dry-run engine, built and not started (``start``, then ``shutdown``)."""

    mode: Mode
    markets: list[MarketInfo]
    trading: TradingEngine
    ops: OpsLike
    monitor: RiskMonitor | None
    live: LiveConnection | None

    @property
    def cancel_all_now(self) -> Callable[[], list[str]] | None:
        """Live: a forced exit's one cancel-all (``app.signals``); else None."""
        return self.live.cancel_all_now if self.live is not None else None

    def start(self) -> None:
        """The engine (venue, actors, feed, ticker), then the operator's plane."""
        self.trading.start()
        self.ops.start()

    def shutdown(self) -> Stopped:
        """Cancel everything before returning, whatever fails: each step is guarded.

        The operator's plane stops first (no command while shutting down), then every quote is
        pulled, the venue (live) cancels and confirms, and the statuses are read again once every
        order is gone (fills that came during the shutdown count).
        """
        engine = self.trading
        statuses: dict[str, Any] = {}
        venue_summary: dict[str, Any] | None = None
        paper: dict[str, Any] = {}
        self.ops.stop()
        try:
            statuses = engine.statuses()
        except Exception:
            log.exception("status before shutdown failed")
        try:
            engine.stop()
        finally:
            if self.live is not None:
                venue_summary = self.live.shutdown()
            try:
                paper = engine.paper_markets()
                try:
                    statuses = {**statuses, **engine.statuses()}
                except Exception:
                    log.exception("status after shutdown failed")
            finally:
                engine.close()
        return Stopped(statuses, paper, venue_summary)


@overload
def bootstrap(
    cfg: Config,
    mode: Literal["sim"],
    markets: Sequence[MarketTape],
    *,
    deps: Deps,
    sim: SimInputs,
) -> Runner: ...


@overload
def bootstrap(
    cfg: Config,
    mode: Literal["replay"],
    markets: Sequence[MarketInfo],
    *,
    deps: Deps,
    replay: ReplayInput,
) -> SessionReplay: ...


@overload
def bootstrap(
    cfg: Config,
    mode: Mode,
    markets: Sequence[MarketInfo],
    *,
    deps: Deps,
    args: argparse.Namespace,
    run_dir: Path,
    announce: Announce | None = None,
) -> Engine: ...


def bootstrap(
    cfg: Config,
    mode: EngineMode,
    markets: Sequence[Any],
    *,
    deps: Deps,
    args: argparse.Namespace | None = None,
    run_dir: Path | None = None,
    announce: Announce | None = None,
    sim: SimInputs | None = None,
    replay: ReplayInput | None = None,
) -> Engine | Runner | SessionReplay:
    """Build the engine of ``mode`` for ``markets`` (``sim``: the scenario's tapes) with ``deps``.

    ``args`` gives the URLs (``ws_url``, ``clob_url``; live: the key and venue flags) and ``config``
    (a label for the operator's plane and the recording); ``run_dir`` is the run's directory.
    ``announce(wallet, markets)`` is called once the venue is known, before the engine writes anything
    (the run's header record; live: the wallet and the markets traded, or None and the markets given
    when the venue could not start: then the start's error is recorded as the run's end and raised).
    ``replay``: the recording a ``replay`` engine replays; its events go to ``deps.sink`` (a
    ``BufferSink``; None: a new one), its clock is the recording's.
    """
    if mode == "sim":
        from sim.runner import Runner  # noqa: PLC0415

        assert sim is not None, "mode sim needs its SimInputs"
        return Runner(markets, quote_params(cfg), sim.settings, sim.seed, risk=sim.risk)
    if mode == "replay":
        from core.eventlog import BufferSink  # noqa: PLC0415
        from sim.session_replay import SessionReplay  # noqa: PLC0415

        assert replay is not None, "mode replay needs its ReplayInput"
        events = BufferSink() if deps.sink is None else deps.sink
        assert isinstance(events, BufferSink), "a replay writes its events from a BufferSink (deps.sink)"
        inv = cfg.inventory
        return SessionReplay(
            markets,
            quote_params(cfg),
            events,
            global_cap_usdc6=round(inv.global_ev_cap * USDC6_ONE),
            event_cap_usdc6=round(inv.event_cap * USDC6_ONE),
            start_ns=replay.start_ns,
            paper=replay.paper,
        )
    from app.bootstrap import TradingEngine  # noqa: PLC0415 (pykka, websockets: not for sim)

    assert args is not None and run_dir is not None, f"mode {mode} needs args and run_dir"
    clock, sink = deps.clock, deps.sink
    infos: list[MarketInfo] = list(markets)
    live: LiveConnection | None = None
    if mode == "live":
        try:
            live = deps.connect_live(args, cfg, infos)
        except (ConfigFileError, ServiceUnavailable) as exc:  # (one line: exit 2, or 1)
            if announce is not None:
                announce(None, infos)
            if sink is not None:
                sink.record("run_end", clock.now_ns(), "", {"exit": "start_failed", "error": str(exc)})
            raise
        infos = live.markets  # a market whose ids disagree with its version is left out
    if announce is not None:
        announce(live.wallet if live is not None else None, infos)
    risk = deps.risk
    assert risk is None or sink is not None, "a risk setup records to the run's event log (deps.sink)"
    monitor = risk.monitor(sink) if risk is not None and sink is not None else None
    trading = TradingEngine(
        cfg,
        infos,
        mode,
        ws_url=args.ws_url,
        clob_url=args.clob_url,
        state_dir=run_dir,
        clock=clock,
        live_port=live.port if live is not None else None,
        inventory=live.inventory if live is not None else None,
        sink=sink,
        risk=monitor,
        risk_store=risk.store if risk is not None else None,
        feed=deps.feed,
    )
    if risk is not None and monitor is not None:
        trading.sink.record("risk_start", clock.now_ns(), "", risk.record(monitor))  # (after the units)
    if live is not None:
        live.attach(trading)
    if cfg.ops.record_market_data:  # the feed as received, beside the events (docs/research.md)
        deps.record_session(trading, run_dir, args.config)
    ops = deps.ops(args, cfg, mode, trading, run_dir, clock, live.gateway if live is not None else None)
    return Engine(mode=mode, markets=infos, trading=trading, ops=ops, monitor=monitor, live=live)
