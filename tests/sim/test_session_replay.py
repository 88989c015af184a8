"""A paper session's replay hands the session its paper venue's recorded reports, and says where it diverged.

The end-to-end proof (a paper session against the emulator, replayed to the same decisions and fills)
is ``tests/app/test_record_replay.py``; these run in milliseconds on a recording written here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import msgspec

from actors.session import LIVE
from adapters.recording import (
    MANIFEST,
    Frame,
    Manifest,
    RecordedFile,
    RecordedMarket,
    Recorder,
    Reports,
    open_recording,
)
from app.compose import Deps, bootstrap
from app.configfile import load_config
from core.eventlog import BufferSink
from core.markets import MarketInfo
from core.messages import Accepted, Canceled, ExecEvent, Filled, Place
from core.quoting import quote_params
from core.units import NS_PER_S, QTY_ONE
from sim.session_replay import SessionReplay, read_replay, run_replay
from tests.fakes import FakeClock, book_frame

INFO = MarketInfo(market="0xmarket", yes_token="111", no_token="222", tick_px=100, min_qty=5 * QTY_ONE)
T0 = 1_800_000_000 * NS_PER_S


def paper_recording(path: Path, reports: list[tuple[ExecEvent, ...]]) -> None:
    """A paper session's recording: both books at T0 (the session places its quotes), then ``reports``."""
    clock = FakeClock(T0)
    manifest = Manifest(
        kind="session",
        markets=(RecordedMarket.from_info(INFO),),
        session={"mode": "paper", "config": "configs/market_maker.yaml", "tick_s": 0.1},
    )
    rec = Recorder(path, manifest, clock=clock).start()
    rec.on_connect("ws://x")
    rec.on_frame(book_frame(INFO.market, INFO.yes_token, "0.45", "0.55"))
    rec.on_frame(book_frame(INFO.market, INFO.no_token, "0.45", "0.55"))
    for batch in reports:
        clock.t += NS_PER_S
        rec.on_reports(INFO.market, batch)
    rec.close()


def replay_of(path: Path) -> tuple[SessionReplay, dict[str, Any]]:
    source = read_replay(open_recording(path))
    replay = bootstrap(
        load_config("configs/market_maker.yaml"), "replay", source.markets, deps=Deps(), replay=source
    )
    return replay, run_replay(replay, source, path.parent / "out")


def events(replay: SessionReplay, kind: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, replay.sink.lines) if e["kind"] == kind]


def test_a_paper_sessions_recorded_reports_reach_the_session_and_an_unplaced_order_is_the_divergence(
    tmp_path: Path,
) -> None:
    accepted = Accepted(market=INFO.market, client_id="0xmarket-1", order_id="paper-1", ts_ns=T0 + 5)
    stranger = Canceled(market=INFO.market, client_id="0xmarket-77", ts_ns=T0 + 6)
    paper_recording(tmp_path / "rec", [(accepted,), (stranger,)])

    replay, summary = replay_of(tmp_path / "rec")

    assert summary["mode"] == "paper" and replay.mode == "paper"
    assert events(replay, "units")[0]["mode"] == "paper"
    assert events(replay, "place") and "0xmarket-1" in replay.venue_ports[INFO.market].placed
    assert replay.sessions[INFO.market].orders["0xmarket-1"].status == LIVE  # the ack was handed over
    assert summary["counts"]["reports"] == 1 and summary["counts"]["unfit_reports"] == 1
    assert summary["diverged"] == {
        "ts_ns": T0 + 2 * NS_PER_S,
        "market": INFO.market,
        "why": "canceled of order 0xmarket-77, which this replay never placed",
    }
    assert any("diverged at" in note for note in summary["notes"])
    assert not events(replay, "canceled")  # never handed to the session


def place_of(replay: SessionReplay, cid: str) -> Place:
    return replay.venue_ports[INFO.market].placed[cid]


def fill(place: Place, ts_ns: int, qty: int, px: int | None = None) -> Filled:
    return Filled(
        market=INFO.market,
        client_id=place.client_id,
        ts_ns=ts_ns,
        outcome=place.outcome,
        side=place.side,
        px=place.px if px is None else px,
        qty=qty,
        fee_usdc6=0,
        liquidity="maker",
        trade_id=f"t-{ts_ns}",
        leaves_qty=place.qty - qty,
    )


def quoting_paper_replay() -> SessionReplay:
    """A paper replay whose session has just placed its quotes on both books."""
    replay = SessionReplay(
        [INFO],
        quote_params(load_config("configs/market_maker.yaml")),
        BufferSink(),
        global_cap_usdc6=10**12,
        event_cap_usdc6=10**12,
        start_ns=T0,
        paper=True,
    )
    replay.record(Frame(recv_ns=T0, frame=book_frame(INFO.market, INFO.yes_token, "0.45", "0.55")))
    replay.record(Frame(recv_ns=T0 + 1, frame=book_frame(INFO.market, INFO.no_token, "0.45", "0.55")))
    assert len(replay.venue_ports[INFO.market].placed) >= 2
    return replay


def test_a_recorded_fill_is_booked_and_a_fill_the_order_could_not_have_had_is_refused() -> None:
    replay = quoting_paper_replay()
    session = replay.sessions[INFO.market]
    first, second = list(replay.venue_ports[INFO.market].placed)[:2]
    p1, p2 = place_of(replay, first), place_of(replay, second)

    replay.record(Reports(recv_ns=T0 + 10, market=INFO.market, reports=(fill(p1, T0 + 9, p1.qty),)))

    assert session.stats.fills == 1 and first not in session.orders
    assert [e["client_id"] for e in events(replay, "fill")] == [first]
    assert replay.diverged is None

    off = fill(p2, T0 + 19, p2.qty, px=p2.px + INFO.tick_px)  # not the order's price
    replay.record(Reports(recv_ns=T0 + 20, market=INFO.market, reports=(off,)))

    assert session.stats.fills == 1 and second in session.orders
    assert replay.diverged is not None and replay.diverged["ts_ns"] == T0 + 20
    assert (
        replay.diverged["why"].startswith(f"fill of order {second}")
        and "does not fit" in replay.diverged["why"]
    )
    assert replay.counts["unfit_reports"] == 1 and replay.counts["fills"] == 1


def test_an_answer_to_a_later_order_first_says_the_session_never_placed_the_earlier_one() -> None:
    # The paper venue answers orders as they arrive: the session's first order would be answered first.
    replay = quoting_paper_replay()
    first, second = list(replay.venue_ports[INFO.market].placed)[:2]
    ack = Accepted(market=INFO.market, client_id=second, order_id="paper-2", ts_ns=T0 + 9)

    replay.record(Reports(recv_ns=T0 + 10, market=INFO.market, reports=(ack,)))

    assert replay.diverged is not None
    assert replay.diverged["why"] == (
        f"accepted of order {second} before any answer to the replay's earlier order {first}, "
        "which the session never placed"
    )
    assert replay.sessions[INFO.market].orders[second].status != LIVE  # not handed over


def test_a_session_recording_of_format_1_still_replays_and_says_where_it_may_part_from_the_session(
    tmp_path: Path,
) -> None:
    # As the previous polymm wrote it: version 1 everywhere, strictly increasing stamps, taken a little
    # before the session read the clock (no field says the time the session read).
    path = tmp_path / "rec"
    path.mkdir()
    name = "market-00001-20270115T080000Z.jsonl.gz"
    books = [book_frame(INFO.market, token, "0.45", "0.55") for token in (INFO.yes_token, INFO.no_token)]
    lines = [
        {"kind": "file", "recv_ns": T0, "format": "polymm-market-recording", "version": 1, "seq": 1},
        {"kind": "connect", "recv_ns": T0, "url": "ws://x"},
        {"kind": "frame", "recv_ns": T0 + 1, "frame": books[0]},
        {"kind": "frame", "recv_ns": T0 + 2, "frame": books[1]},
        {"kind": "input", "recv_ns": T0 + NS_PER_S, "input": "timer", "market": INFO.market},
        {"kind": "input", "recv_ns": T0 + NS_PER_S + 1, "input": "status"},
        {"kind": "input", "recv_ns": T0 + 2 * NS_PER_S, "input": "pull"},
    ]
    (path / name).write_bytes(gzip.compress(b"".join(msgspec.json.encode(x) + b"\n" for x in lines)))
    manifest = Manifest(
        version=1,
        kind="session",
        markets=(RecordedMarket.from_info(INFO),),
        files=[RecordedFile(name=name, records=len(lines), frames=2)],
        closed=True,
        session={"mode": "dry-run", "config": "configs/market_maker.yaml", "tick_s": 0.1},
    )
    (path / MANIFEST).write_bytes(msgspec.json.encode(manifest))

    replay, summary = replay_of(path)

    assert summary["format_version"] == 1 and summary["mode"] == "dry-run"
    assert summary["counts"] == {
        "connects": 1,
        "frames": 2,
        "input_pull": 1,
        "input_status": 1,
        "input_timer": 1,
    }
    [decision] = events(replay, "decision")  # quoted on the first book, pulled at the end
    assert decision["ts_ns"] == T0 + 1 and decision["quote"] and events(replay, "cancel_all")
    assert [n for n in summary["notes"] if "format version 1" in n]
