"""A trading session records its own market feed (``ops.record_market_data``, on by default).

``record_session(engine, run_dir, config_path)``, called once before ``engine.start()``, writes a
recording (``adapters.recording``) of everything the session's market feed received, beside the
session's ``events.jsonl``, in ``RUN_DIR/market_data/<UTC start>-<mode>/``. ``polymm sim --replay``
reads it like any recording; ``--dry-run`` replays it as the session ran (``sim.session_replay``).

Besides the feed's frames (the feed's tap, ``TradingEngine.feed_tap``), the recording notes the
engine's own inputs to the market sessions, because a session's decisions depend on them as much as
on the market data: the ticker's ``Timer``s, the budget shares (``SetBudget``, with the room), the
feed-alive notes, the risk manager's gates (``SetRiskGate``), the status asks (a pending requote
that is due is made when asked) and the shutdown's pull. A paper session's recording also holds the
execution reports its paper venue sent (``Reports``: acknowledgements, fills, cancels, rejections),
since the venue is not part of a replay. They are taken where the engine hands them over (its
router's ``tell``, and its ``note_input`` for the status asks and the pull) and noted on the actors'
loop thread in the very input that hands them to the actors (a timer told by the ticker thread, or
reports told by the paper venue's thread, reach their actor through one loop callback that notes
them and tells them; the status asks of every market, and the pull, are one loop callback each).

Every record is stamped with the engine's ``input_clock`` (``actors.loop.InputClock``), inside the
input it records: its stamp is the time every session handling that input read, frames included
(the feed's client enters the input around the tap and the frame's handling). A replay runs the
sessions at those times, in that order, so it reads what they read and decides what they decided,
to the nanosecond: however late the loop got to an actor, a throttled requote falls due on the same
input live and in the replay. Nothing here waits on the disk: the recorder only stamps and enqueues.

A dry-run session's acknowledgements are not recorded: its ``DryRunPort`` makes them in the replay
as it did live (on the loop's thread, handled right after the decision that caused them; a note
would delay them to a later loop callback). A live session's reports reach the actors through the
venue connection's own hand-over (``app.live``), not through these taps: a live session's recording
holds none.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from actors.market import FeedAlive, SetBudget
from actors.risk import SetRiskGate
from adapters.recording import Manifest, RecordedMarket, Recorder
from app.bootstrap import TradingEngine
from core.messages import ExecBatch, MarketBatch, Timer

log = logging.getLogger("polymm")

#: Below the run directory: one recording per session.
RECORDINGS_DIR = "market_data"


def session_recording_dir(run_dir: Path, mode: str, start_ns: int) -> Path:
    """``RUN_DIR/market_data/<UTC start>-<mode>`` (a new name for every session)."""
    stamp = datetime.fromtimestamp(start_ns / 1e9, tz=UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return run_dir / RECORDINGS_DIR / f"{stamp}-{mode}"


def record_session(engine: TradingEngine, run_dir: Path, config_path: str) -> Recorder:
    """Record ``engine``'s market feed and its inputs to the sessions; call before ``engine.start()``.

    The recording closes when the engine stops (``engine.stop()``).
    """
    out = session_recording_dir(run_dir, engine.mode, engine.clock.now_ns())
    manifest = Manifest(
        kind="session",
        ws_url=engine.ws_url,
        clob_url=engine.clob_url,
        source=f"the markets of a {engine.mode} session of {config_path}",
        markets=tuple(RecordedMarket.from_info(m) for m in engine.markets),
        session={"mode": engine.mode, "config": config_path, "tick_s": engine.tick_s},
    )
    rec = Recorder(out, manifest, clock=engine.input_clock).start()
    engine.feed_tap = rec
    tell = engine.router.tell
    loop = engine.actor_loop
    # Paper: the paper venue's reports are inputs a replay cannot make (no venue in a replay).
    reports = engine.mode == "paper"

    def on_loop(kind: str, market: str, room: int | None, message: object) -> None:
        # On the actors' loop, one input: the note is stamped with the time the actor handles it at.
        rec.on_input(kind, market, room, message.gate if isinstance(message, SetRiskGate) else None)
        tell(market, message)

    def on_loop_reports(market: str, message: ExecBatch) -> None:
        rec.on_reports(market, message.events)
        tell(market, message)

    def tapped_tell(market: str, message: object) -> bool:
        kind = type(message)
        if kind is MarketBatch:  # the hot path: no note
            return tell(market, message)
        if kind is ExecBatch:
            if not reports:  # (dry-run: the replay's own port acknowledges)
                return tell(market, message)
            batch: ExecBatch = message  # type: ignore[assignment]
            try:
                loop.call_soon(lambda: on_loop_reports(market, batch))
            except RuntimeError:  # the loop has stopped: nothing will handle it
                return tell(market, message)
            return True
        if kind is Timer:
            note = "timer"
        elif kind is SetBudget:
            note = "budget"
        elif kind is FeedAlive:
            note = "alive"
        elif kind is SetRiskGate:
            note = "risk"
        else:
            return tell(market, message)
        room = message.room_usdc6 if isinstance(message, SetBudget) else None
        try:
            loop.call_soon(lambda: on_loop(note, market, room, message))
        except RuntimeError:  # the loop has stopped: nothing will handle it
            return tell(market, message)
        return True

    def note_input(kind: str) -> None:
        # On the actors' loop, first in the input that asks every market (``status``, ``pull``).
        rec.on_input(kind)

    stop = engine.stop

    def tapped_stop() -> None:
        try:
            stop()
        finally:
            m = rec.close()
            log.info(
                "market data: %d frames, %d gaps, %d dropped, recorded in %s",
                m.frames,
                m.gaps,
                m.dropped_frames,
                out,
            )

    # The engine's own attributes, so every caller (its ticker included) goes through the taps.
    setattr(engine.router, "tell", tapped_tell)  # noqa: B010
    engine.note_input = note_input
    setattr(engine, "stop", tapped_stop)  # noqa: B010
    log.info("recording the market feed to %s", out)
    return rec
