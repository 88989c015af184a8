"""The recording format: what the recorder writes, how it rotates, drops rather than blocks, reads back."""

from __future__ import annotations

import gzip
import itertools
import threading
import time
from pathlib import Path

import msgspec
import pytest

from adapters.recording import (
    MANIFEST,
    Connect,
    Dropped,
    FileHeader,
    Frame,
    Gap,
    Input,
    Manifest,
    RecordedMarket,
    Recorder,
    RecordingError,
    Reports,
    RestBook,
    Resync,
    open_recording,
)
from core.markets import MarketInfo
from core.messages import Accepted, Filled
from core.units import Outcome, Side

NS = 1_000_000_000
INFO = MarketInfo(market="0x" + "ab" * 32, yes_token="111", no_token="222", tick_px=10, fee_rate_ppm=40_000)


class StepClock:
    """A clock the test moves (1 ms per read unless set)."""

    def __init__(self, t: int = 1_800_000_000 * NS) -> None:
        self.t = t

    def now_ns(self) -> int:
        self.t += 1_000_000
        return self.t


def manifest() -> Manifest:
    return Manifest(kind="record", ws_url="ws://x", markets=(RecordedMarket.from_info(INFO, slug="s"),))


def test_every_kind_of_record_round_trips_exactly_and_in_order(tmp_path):
    rec = Recorder(tmp_path / "r", manifest(), clock=StepClock()).start()
    text = '{"event_type":"book","asset_id":"111","price":"0.5","note":"é\\n"}'
    rec.on_connect("ws://x")
    rec.on_frame(text)
    rec.on_frame(b"\x00binary\xff")
    rec.on_rest_book("111", b'{"bids":[]}')
    rec.on_resync(INFO.market, "stale")
    rec.on_input("budget", INFO.market, 5_000_000)
    reports = (
        Accepted(market=INFO.market, client_id="c-1", order_id="paper-1", ts_ns=7),
        Filled(
            market=INFO.market,
            client_id="c-1",
            ts_ns=8,
            outcome=Outcome.NO,
            side=Side.BUY,
            px=4_500,
            qty=5_000_000,
            fee_usdc6=0,
            liquidity="maker",
            trade_id="t-1",
            leaves_qty=0,
        ),
    )
    rec.on_reports(INFO.market, reports)
    rec.on_disconnect("connection closed by the venue")
    m = rec.close()

    r = open_recording(tmp_path / "r")
    got = list(r.records())
    kinds = [FileHeader, Connect, Frame, Frame, RestBook, Resync, Input, Reports, Gap]
    assert [type(x) for x in got] == kinds
    assert got[2].data() == text and got[3].data() == b"\x00binary\xff"
    assert got[6].room_usdc6 == 5_000_000 and got[6].input == "budget"
    assert got[7].market == INFO.market and got[7].reports == reports  # every field, typed again
    assert all(a.recv_ns < b.recv_ns for a, b in itertools.pairwise(got[1:]))
    assert m.closed and m.frames == 2 and m.gaps == 1 and m.connects == 1 and m.dropped_frames == 0
    assert r.markets() == [INFO] and r.truncated == []
    on_disk = msgspec.json.decode((tmp_path / "r" / MANIFEST).read_bytes())
    assert on_disk["markets"][0]["fee_rate_ppm"] == 40_000 and on_disk["files"][0]["frames"] == 2
    # Plain gzip JSONL: any tool reads it.
    lines = gzip.decompress((tmp_path / "r" / m.files[0].name).read_bytes()).splitlines()
    assert msgspec.json.decode(lines[2])["frame"] == text


def test_files_rotate_on_the_period_and_on_size(tmp_path):
    clock = StepClock(3600 * NS * 500_000 - 5 * NS)  # 5 s before an hour starts
    rec = Recorder(tmp_path / "r", manifest(), clock=clock, rotate_s=3600, rotate_bytes=0).start()
    rec.on_frame("a")
    clock.t += 10 * NS  # into the next hour
    rec.on_frame("b")
    m = rec.close()
    assert [f.frames for f in m.files] == [1, 1]
    assert m.files[1].name.startswith("market-00002-")
    assert m.files[1].first_ns // (3600 * NS) == m.files[0].first_ns // (3600 * NS) + 1  # one file an hour

    rec2 = Recorder(tmp_path / "s", manifest(), clock=StepClock(), rotate_bytes=2048, flush_s=0).start()
    for i in range(400):
        rec2.on_frame(f'{{"n":{i},"pad":"{"x" * 64}{i * 7919 % 1000003}"}}')
        if i % 50 == 0:
            time.sleep(0.06)  # let the writer flush, so the compressed size grows
    m2 = rec2.close()
    assert len(m2.files) > 1 and sum(f.frames for f in m2.files) == 400
    assert [f.data() for f in open_recording(tmp_path / "s").frames()][-1].startswith('{"n":399')


def test_a_full_queue_drops_and_counts_frames_and_never_blocks_the_feed(tmp_path):
    gate = threading.Event()
    rec = Recorder(tmp_path / "r", manifest(), clock=StepClock(), max_queue=10)
    rec.before_write = lambda: gate.wait(10)  # a disk that stopped answering
    rec.start()
    t0 = time.perf_counter()
    for i in range(1000):
        rec.on_frame(f"f{i}")
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5  # the feed never waited for the disk
    assert rec.status()["dropped_frames"] >= 980
    gate.set()
    deadline = time.monotonic() + 10
    while rec.status()["queued"] and time.monotonic() < deadline:
        time.sleep(0.01)  # the disk caught up
    rec.on_frame("after")
    m = rec.close()

    got = list(open_recording(tmp_path / "r").records())
    drops = [x for x in got if type(x) is Dropped]
    assert sum(d.frames for d in drops) == m.dropped_frames == rec.dropped
    frames = [x.data() for x in got if type(x) is Frame]
    assert frames[-1] == "after" and len(frames) + m.dropped_frames == 1001
    # The gap in the data is marked where it happened: before the first frame after it.
    assert type(got[got.index(drops[0]) + 1]) is Frame


def test_a_file_cut_short_is_read_up_to_its_last_flush(tmp_path):
    rec = Recorder(tmp_path / "r", manifest(), clock=StepClock(), flush_s=0).start()
    for i in range(100):
        rec.on_frame(f"frame {i}")
    time.sleep(0.2)  # written and flushed (a sync point), not closed
    name = rec.manifest.files[0].name
    data = (tmp_path / "r" / name).read_bytes()
    rec.close()
    (tmp_path / "r" / name).write_bytes(data)  # as if the recorder had been killed then

    r = open_recording(tmp_path / "r")
    frames = [f.data() for f in r.frames()]
    assert frames == [f"frame {i}" for i in range(100)]
    assert r.truncated == [name]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not gzip at all", "corrupt gzip data after 0 records"),
        (gzip.compress(b'{"kind":"frame","recv_ns":1,"frame":"x"}\n'), "does not start with a `file` record"),
        (
            gzip.compress(
                b'{"kind":"file","recv_ns":1,"format":"polymm-market-recording","version":1,"seq":1}\n{oops\n'
            ),
            ":2: not a recording record",
        ),
        (b"", "empty"),
    ],
)
def test_a_corrupt_file_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "market-00001-x.jsonl.gz"
    path.write_bytes(content)

    with pytest.raises(RecordingError, match=message) as err:
        list(open_recording(path).records())
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_what_is_not_a_recording_is_said_in_one_line(tmp_path):
    with pytest.raises(RecordingError, match="no such file or directory"):
        open_recording(tmp_path / "missing")
    with pytest.raises(RecordingError, match=r"no manifest\.json"):
        open_recording(tmp_path)
    (tmp_path / MANIFEST).write_text("{nope")
    with pytest.raises(RecordingError, match="not a recording manifest"):
        open_recording(tmp_path)
    other = tmp_path / "x.csv"
    other.write_text("a,b")
    with pytest.raises(RecordingError, match="not a recording"):
        open_recording(other)


def test_a_directory_holding_a_recording_is_never_overwritten(tmp_path):
    Recorder(tmp_path / "r", manifest(), clock=StepClock()).start().close()

    with pytest.raises(RecordingError, match="already holds a recording"):
        Recorder(tmp_path / "r", manifest())


def test_the_manifest_says_a_recording_was_not_closed(tmp_path):
    rec = Recorder(tmp_path / "r", manifest(), clock=StepClock()).start()
    rec.on_frame("x")
    time.sleep(0.1)

    m = open_recording(tmp_path / "r").manifest
    assert m is not None and not m.closed and m.started_utc.endswith("Z")
    rec.close()
    assert open_recording(Path(tmp_path / "r")).manifest.closed


def test_a_disk_that_fails_is_said_and_every_later_frame_counted_as_dropped(tmp_path):
    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    rec = Recorder(tmp_path / "r", manifest(), clock=StepClock())
    rec.before_write = full_disk
    rec.start()
    rec.on_frame("lost")
    deadline = time.monotonic() + 5
    while not rec.status()["write_error"] and time.monotonic() < deadline:
        time.sleep(0.01)
    rec.on_frame("also lost")
    m = rec.close()

    assert "No space left on device" in m.write_error
    assert m.dropped_frames >= 1 and m.frames == 2
