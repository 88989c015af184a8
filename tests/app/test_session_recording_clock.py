"""A trading session and the replay of its own recording read the same time for every input.

A recording stamps each input when it reaches the actors' loop; the replay
(``sim.session_replay``) runs every session at those stamps. The live session handles the input a
little later (the feed decodes the frame first; on a loaded machine, hundreds of microseconds later),
so if it read the running clock there, a throttled requote falling due in between would be made on
this input live and only on the next one in the replay, with that input's data: every record after
would differ (``tests/app/test_record_replay.py`` failed that way about one run in five).

Here the engine runs for real (the feed's client on a loopback WebSocket, the actors' loop, the
recorder) on a clock the test moves: the clock runs on between an input's stamp and its handling
(``Late``), and the requote falls due in that gap, for each kind of input that can make it: a feed
frame, a ticker's timer, the engine's status asks. The session's decisions, orders and cancels must
be its replay's, byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.recording import Recorder, open_recording
from app.bootstrap import TradingEngine
from app.compose import Deps, bootstrap
from app.configfile import load_config
from app.session_recording import record_session
from core.markets import MarketInfo
from core.messages import Timer
from core.units import NS_PER_MS, NS_PER_S, QTY_ONE
from sim.session_replay import read_replay, run_replay
from tests.fakes import FakeClock, book_frame
from tests.market_channel_server import MarketChannelServer

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

INFO = MarketInfo(market="0xmarket", yes_token="111", no_token="222", tick_px=100, min_qty=5 * QTY_ONE)
T0 = 1_800_000_000 * NS_PER_S
CONFIG = "configs/market_maker.yaml"
#: The records a replay must make as the session made them.
COMPARED = (b'{"kind":"decision"', b'{"kind":"place"', b'{"kind":"cancel"', b'{"kind":"cancel_all"')


def bid_change(px: str) -> str:
    """A new best YES bid (500 shares at ``px``) and its mirror on the NO token, in one frame."""
    no_px = f"{1 - float(px):.2f}"
    return json.dumps(
        {
            "market": INFO.market,
            "event_type": "price_change",
            "timestamp": "1800000000000",
            "price_changes": [
                {"asset_id": INFO.yes_token, "price": px, "size": "500", "side": "BUY", "hash": "0" * 40},
                {"asset_id": INFO.no_token, "price": no_px, "size": "500", "side": "SELL", "hash": "1" * 40},
            ],
        }
    )


class Late:
    """A loaded machine: the loop gets to the actors ``delay_ns`` after the recorder stamped an input.

    (The clock runs on while the feed decodes a frame, or while the loop runs other callbacks between a
    note and the asks it notes.)
    """

    def __init__(self, rec: Recorder, clock: FakeClock) -> None:
        self.clock = clock
        self.delay_ns = 0
        for name in ("on_frame", "on_input", "on_reports"):
            setattr(rec, name, self._late(getattr(rec, name)))

    def _late(self, stamp: Callable[..., None]) -> Callable[..., None]:
        def late(*args: Any) -> None:
            stamp(*args)
            self.clock.t += self.delay_ns

        return late


def wait_for(predicate: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def compared(log: bytes) -> list[bytes]:
    return [line for line in log.splitlines() if line.startswith(COMPARED)]


@pytest.mark.parametrize("late", ["frame", "timer", "status"])
def test_a_requote_due_between_an_inputs_stamp_and_its_handling_is_made_where_the_replay_makes_it(
    tmp_path: Path, late: str
) -> None:
    cfg = load_config(CONFIG)
    clock = FakeClock(T0 - NS_PER_MS)
    server = MarketChannelServer()
    engine = TradingEngine(
        cfg,
        [INFO],
        "dry-run",
        ws_url=server.url,
        clob_url="http://127.0.0.1:9",  # never reached: the books come over the feed
        state_dir=tmp_path / "live",
        clock=clock,
        tick_s=None,  # no ticker: the inputs below are the only ones
    )
    rec = record_session(engine, tmp_path / "live", CONFIG)
    slow = Late(rec, clock)
    engine.start()
    try:
        ref = engine.router.get(INFO.market)
        assert ref is not None and engine.feed is not None
        feed = engine.feed
        assert server.subscribed.wait(10)
        frames = 0

        async def idle() -> None:
            # On the loop's thread, between callbacks: until the actor has no message left.
            while True:
                await asyncio.sleep(0)
                if ref.actor_inbox.empty():
                    return

        def send(t: int, frame: str, delay_ns: int = 0) -> None:
            nonlocal frames
            clock.t, slow.delay_ns = t, delay_ns
            server.frames.put(frame)
            frames += 1
            wait_for(lambda n=frames: feed.status().messages == n, f"frame {frames}")
            engine.actor_loop.run_coroutine(idle()).result(timeout=10)

        # At T0 the books (the session quotes at once); at 100 ms the best bid moves, not through our
        # quotes: the requote waits for the 250 ms throttle.
        books = f"[{book_frame(INFO.market, INFO.yes_token, '0.45', '0.55')},"
        books += f"{book_frame(INFO.market, INFO.no_token, '0.45', '0.55')}]"
        send(T0, books)
        send(T0 + 100 * NS_PER_MS, bid_change("0.46"))
        # The late input: stamped 100 us before the requote is due, handled 300 us after its stamp.
        t, delay_ns = T0 + 250 * NS_PER_MS - 100_000, 300_000
        if late == "frame":
            send(t, bid_change("0.47"), delay_ns)
        elif late == "timer":
            clock.t, slow.delay_ns = t, delay_ns
            engine.router.tell(INFO.market, Timer(market=INFO.market, ts_ns=t))
            engine.actor_loop.run_coroutine(idle()).result(timeout=10)
        else:
            clock.t, slow.delay_ns = t, delay_ns
            assert engine.statuses()[INFO.market].wakeup_ns == T0 + 250 * NS_PER_MS  # not due yet
        # 50 ms later the bid moves again: the throttled requote is made here, on this book.
        send(T0 + 300 * NS_PER_MS, bid_change("0.48"))
        clock.t = T0 + 400 * NS_PER_MS
    finally:
        try:
            engine.stop()  # (the recording closes with it)
        finally:
            engine.close()
            server.close()
    live = (tmp_path / "live" / "events.jsonl").read_bytes()
    [recording] = (tmp_path / "live" / "market_data").iterdir()
    source = read_replay(open_recording(recording))
    replay = bootstrap(cfg, "replay", source.markets, deps=Deps(), replay=source)
    summary = run_replay(replay, source, tmp_path / "replay")
    replayed = (tmp_path / "replay" / "events.jsonl").read_bytes()

    assert summary["notes"] == [] and summary["counts"][f"input_{late}" if late != "frame" else "frames"]
    decisions = [json.loads(x) for x in compared(live) if x.startswith(COMPARED[0])]
    assert [d["ts_ns"] for d in decisions] == [T0, T0 + 300 * NS_PER_MS]
    assert [d["fair_px"] for d in decisions] == [5000, 5150]  # the second on the 0.48 bid
    assert compared(live) == compared(replayed)
