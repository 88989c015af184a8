"""A run's risk manager and operator's plane: the state file, the control API, the metrics, the watch.

``run-market-maker`` builds them here: ``RiskSetup`` (the risk limits, from ``--risk-config`` or the
config's own ``risk`` section; the risk state of this mode in the state directory, restored at
start; the check of the risk manager's routed list) and ``OpsPlane`` (after the engine starts: live,
the order gateway's watch; the Prometheus endpoint, ``app.metrics``; the control plane,
``app.control``). See docs/operations.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors.risk import RiskMonitor
from adapters.market_cache import MarketCacheError, read_markets_file
from adapters.risk_state import RiskStateError, RiskStateFile, state_path
from adapters.runlog import JsonlFileSink
from app.configfile import ConfigFileError, load_risk_config
from core.config import Config
from core.markets import MarketInfo
from core.ports import Clock, EventSink
from core.risk import RiskLimits, risk_limits
from core.units import format_usdc6

if TYPE_CHECKING:
    from app.bootstrap import Mode, TradingEngine
    from app.control import ControlPlane, GatewayWatch
    from app.metrics import MetricsServer
    from app.rewards import RewardTracker

log = logging.getLogger("polymm")

_FRESH = "move it away to start afresh (every HALT it holds would be lost)"


class RiskSetup:
    """The risk manager of a run: its limits, the state file it restores and saves, what it watches."""

    def __init__(
        self,
        limits: RiskLimits,
        store: RiskStateFile,
        state: dict[str, Any] | None,
        source: str,
        notes: list[str],
        markets: list[str],
    ) -> None:
        self.limits = limits
        self.store = store
        self.state = state
        self.source = source
        self.notes = notes
        self.markets = markets

    @classmethod
    def load(
        cls, args: argparse.Namespace, cfg: Config, mode: Mode, state_dir: Path, markets: list[MarketInfo]
    ) -> RiskSetup:
        """Limits from ``--risk-config`` (else the config's ``risk``); the state of ``mode`` in ``state_dir``.

        With ``--risk-config``, its routed list (``route-markets``' risk manager list, the risk
        config's ``ops.selected_markets_path``) should hold every market traded: a market missing from
        it is watched all the same, and said at start.
        """
        notes: list[str] = []
        risk_path = getattr(args, "risk_config", None)
        if risk_path:
            risk_cfg = load_risk_config(risk_path)
            source = str(risk_path)
            routed = Path(risk_cfg.ops.selected_markets_path)
            if routed.exists():
                try:
                    watched = {e.market.condition_id for e in read_markets_file(routed).markets}
                except (MarketCacheError, ValueError) as exc:
                    raise ConfigFileError(f"{risk_path}: ops.selected_markets_path: {exc}") from None
                missing = [m.market for m in markets if m.market not in watched]
                if missing:
                    notes.append(
                        f"risk: {len(missing)} of the {len(markets)} markets traded are not in the risk "
                        f"manager's list {routed} (run route-markets again); watched all the same"
                    )
            else:
                notes.append(
                    f"risk: no routed list at {routed} (route-markets --risk-manager-*): "
                    "watching every market traded"
                )
        else:
            risk_cfg, source = cfg, f"{args.config} (its risk section)"
        store = RiskStateFile(state_path(state_dir, mode))
        try:
            state = store.load()
        except RiskStateError as exc:
            raise ConfigFileError(f"risk state {exc}; {_FRESH}") from None
        return cls(risk_limits(risk_cfg), store, state, source, notes, [m.market for m in markets])

    def monitor(self, sink: EventSink) -> RiskMonitor:
        """The monitor over the run's markets, restored from the state file."""
        monitor = RiskMonitor(self.limits, self.markets, book_sink=sink)
        if self.state is not None:
            try:
                monitor.restore(self.state)
            except ValueError as exc:
                raise ConfigFileError(f"risk state {self.store.path}: {exc}; {_FRESH}") from None
        return monitor

    def record(self, monitor: RiskMonitor) -> dict[str, Any]:
        """The event log's ``risk_start`` record: the limits, where they and the state come from."""
        return {
            "limits": msgspec.to_builtins(self.limits),
            "source": self.source,
            "state_file": str(self.store.path),
            "restored": self.state is not None,
            "state": monitor.to_state(0),
        }

    def lines(self, monitor: RiskMonitor) -> list[str]:
        """What the run starts with, for people: limits, the state file, HALTs and pauses in force."""
        lim = self.limits
        scope = "halts the book" if lim.halt_book_on_market_loss else "halts the market"
        out = [
            f"risk: limits from {self.source}: daily loss stop "
            f"{format_usdc6(lim.market_daily_loss_stop_usdc6)} USDC a market ({scope}), "
            f"{format_usdc6(lim.daily_loss_stop_usdc6)} USDC the book; state {self.store.path}",
            *self.notes,
        ]
        view = monitor.view(0)
        if view.book_state != "active":
            why = view.book_halt or view.book_operator_note
            out.append(f"risk: the book starts {view.book_state.upper()}: {why} (polymm resume lifts it)")
        for m in view.markets:
            if m.state != "active":
                why = m.halt or m.operator_note or m.detail
                out.append(f"risk: {m.market[:12]} starts {m.state.upper()}: {why}")
        return out


class OpsPlane:
    """The control plane and the metrics endpoint of a run (and, live, the gateway's watch)."""

    def __init__(
        self,
        args: argparse.Namespace,
        cfg: Config,
        mode: Mode,
        engine: TradingEngine,
        run_dir: Path,
        clock: Clock,
        gateway: Any,
    ) -> None:
        """``gateway``: live, the order gateway's ref (``app.live.start_live``); else None."""
        self.cfg, self.mode, self.engine, self.run_dir, self.clock = cfg, mode, engine, run_dir, clock
        self.config_path = args.config
        self.gateway = gateway
        self.watch: GatewayWatch | None = None
        self.control: ControlPlane | None = None
        self.metrics: MetricsServer | None = None
        self.rewards: RewardTracker | None = None

    def start(self) -> None:
        """After ``engine.start``: the gateway's watch, the metrics, then the control plane."""
        from app.control import ControlPlane, GatewayWatch, Operations, venue_open_orders  # noqa: PLC0415

        engine, ops_cfg = self.engine, self.cfg.ops
        watch = None
        if self.gateway is not None:
            watch = self.watch = GatewayWatch(self.gateway, self.clock)
            watch.poll()
            watch.start()
            engine.book_health = watch.health
        rewards = self.rewards = self._reward_tracker(watch)
        assert engine.risk is not None
        ops = Operations(
            markets=engine.markets,
            risk=engine.risk,
            statuses=engine.statuses,
            clock=self.clock,
            mode=self.mode,
            run_dir=self.run_dir,
            venue_open_orders=venue_open_orders(self.gateway) if self.gateway is not None else None,
            rewards=rewards.snapshot if rewards is not None else None,
        )
        metrics_url = None
        if ops_cfg.metrics_port is not None:
            from app.metrics import EngineCollector, MetricsServer  # noqa: PLC0415 (prometheus-client)

            collector = EngineCollector(
                ops.risk_view,
                engine.quote_latency,
                events_in=lambda: engine.dispatch.events_in,
                venue_errors=(lambda: watch.health()[1]) if watch is not None else (lambda: None),
                rewards=rewards.snapshot if rewards is not None else None,
            )
            self.metrics = MetricsServer(collector, ops_cfg.metrics_port)
            metrics_url = self._listen("metrics_port", ops_cfg.metrics_port, self.metrics.start)
            print(f"metrics: {metrics_url}")
        if ops_cfg.control_port is not None:
            self.control = ControlPlane(
                ops,
                self.run_dir,
                port=ops_cfg.control_port,
                sink=engine.sink,
                clock=self.clock,
                metrics_url=metrics_url,
                flush_log=engine.sink.flush if isinstance(engine.sink, JsonlFileSink) else None,
            )
            url = self._listen("control_port", ops_cfg.control_port, self.control.start)
            print(
                f"control: {url} (token in {self.run_dir / 'control.token'}): polymm status, pause, resume..."
            )

    def _reward_tracker(self, watch: GatewayWatch | None) -> RewardTracker | None:
        """Live and paper: reward tracking (``app.rewards``) every ``rewards.track_interval_s``, started."""
        from app.rewards import LiveRewardSource, PaperRewardSource, RewardTracker  # noqa: PLC0415

        engine, interval = self.engine, self.cfg.rewards.track_interval_s
        source: LiveRewardSource | PaperRewardSource
        if self.mode == "live" and engine.rewards_venue is not None:
            source = LiveRewardSource(engine.rewards_venue)
        elif self.mode == "paper" and engine.venue is not None:
            source = PaperRewardSource(engine.venue)
        else:
            return None
        tracker = RewardTracker(
            engine.markets,
            source,
            self.clock,
            interval,
            held=lambda: bool(watch is not None and watch.status is not None and watch.status.paused),
        )
        if not tracker.markets or interval <= 0:
            return None
        tracker.start()
        engine.reward_tracker = tracker
        print(
            f"rewards: tracking {len(tracker.markets)} rewarded markets every {interval:g} s "
            f"({'the venue' if self.mode == 'live' else 'the paper venue'}; rewards.track_interval_s)"
        )
        return tracker

    def _listen(self, key: str, port: int, start: Any) -> str:
        try:
            return str(start())
        except OSError as exc:
            raise ConfigFileError(
                f"{self.config_path}: ops.{key}: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}"
            ) from None

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        parts: list[Any] = [self.rewards, self.control, self.metrics, self.watch]
        self.rewards = None
        self.control = self.metrics = self.watch = None
        for part in parts:
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %s failed", type(part).__name__)
