"""Run directories and their event log: names, no reuse, the header, rotation, gzip, the reader."""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import threading
import time
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.runlog import (
    CONFIG_FILE,
    MODES,
    JsonlFileSink,
    RunDirError,
    RunLog,
    SegmentedWriter,
    compress_segment,
    config_sha256,
    create_run_dir,
    latest_run_dir,
    parse_run_dir_name,
    public_url,
    read_event_lines,
    read_events,
    run_dir_name,
    run_header,
    segment_name,
    segment_paths,
)
from app.configfile import load_config
from core.config import Config
from core.markets import MarketInfo
from core.messages import Filled
from core.units import Outcome, Side

NS = 1_000_000_000
T0_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
CFG = load_config("configs/market_maker.yaml")
MARKET = MarketInfo(market="0x" + "ab" * 32, yes_token="111", no_token="222", tick_px=10, min_qty=5_000_000)


def ids(*values: str):
    it = iter(values)
    return lambda: next(it)


# --- names ----------------------------------------------------------------------------------------


@given(
    st.integers(0, 4_102_444_800 * NS),  # up to 2100
    st.sampled_from(MODES),
    st.text("0123456789abcdef", min_size=6, max_size=32),
)
def test_a_run_directory_name_says_when_what_and_which(start_ns, mode, run_id):
    name = run_dir_name(start_ns, mode, run_id)

    assert parse_run_dir_name(name) == (start_ns // NS, mode, run_id)


@given(st.integers(0, 4_102_444_800), st.integers(1, 10**8), st.sampled_from(MODES), st.sampled_from(MODES))
def test_run_directory_names_sort_by_start_time(start_s, later_s, mode_a, mode_b):
    first = run_dir_name(start_s * NS, mode_a, "ffffff")
    second = run_dir_name((start_s + later_s) * NS, mode_b, "000000")

    assert first < second


def test_run_directory_names_are_utc():
    assert run_dir_name(T0_NS + 5 * NS + 999, "dry-run", "3fa9c2") == "20260101T000005Z-dry-run-3fa9c2"


@pytest.mark.parametrize(
    ("mode", "run_id", "start_ns"),
    [
        ("demo", "abcdef", 0),
        ("live", "ABCDEF", 0),
        ("live", "abc", 0),
        ("live", "../x00", 0),
        ("live", "abcdef", -1),
    ],
)
def test_a_bad_name_part_is_refused(mode, run_id, start_ns):
    with pytest.raises(ValueError):
        run_dir_name(start_ns, mode, run_id)


@pytest.mark.parametrize("name", ["latest", "20260101T000000Z-demo-abcdef", "x20260101T000000Z-live-abcdef"])
def test_other_names_are_not_run_directories(name):
    assert parse_run_dir_name(name) is None


def test_an_existing_run_directory_is_never_reused(tmp_path):
    first = create_run_dir(tmp_path, "live", T0_NS, new_id=ids("aaaaaa"))
    (first / "events.jsonl").write_bytes(b'{"kind":"run"}\n')

    # The same second, the same mode and, by bad luck, the same id: another name is drawn.
    second = create_run_dir(tmp_path, "live", T0_NS, new_id=ids("aaaaaa", "aaaaaa", "bbbbbb"))

    assert second != first and second.name.endswith("-bbbbbb")
    assert list(second.iterdir()) == []
    assert (first / "events.jsonl").read_bytes() == b'{"kind":"run"}\n'
    assert latest_run_dir(tmp_path) == second


def test_when_every_name_tried_exists_no_directory_is_made(tmp_path):
    create_run_dir(tmp_path, "paper", T0_NS, new_id=ids("aaaaaa"))

    with pytest.raises(RunDirError, match="every run directory name tried exists"):
        create_run_dir(tmp_path, "paper", T0_NS, new_id=lambda: "aaaaaa", attempts=3)

    assert len(list((tmp_path / "runs").glob("2026*"))) == 1


def test_a_state_dir_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(RunDirError) as err:
        create_run_dir(blocker, "live", T0_NS)

    assert str(err.value).startswith(f"cannot create {blocker}/runs: ") and "\n" not in str(err.value)


def test_two_runs_in_the_same_second_each_log_only_their_own_records(tmp_path):
    logs = [RunLog.create(tmp_path, "dry-run", CFG, start_ns=T0_NS) for _ in range(2)]
    for n, run in enumerate(logs):
        run.sink.record("decision", T0_NS + n, "m", {"n": n})
    for run in logs:
        run.close()

    dirs = {run.directory for run in logs}
    assert len(dirs) == 2
    for n, run in enumerate(logs):
        assert [e["n"] for e in read_events(run.directory)] == [n]


# --- the header -----------------------------------------------------------------------------------


def test_the_header_names_version_mode_config_wallet_and_markets(tmp_path):
    run = RunLog.create(tmp_path, "live", CFG, start_ns=T0_NS)
    wallet = "0x" + "12" * 20

    head = run_header(
        mode="live",
        run_dir=run.directory,
        config_path="configs/market_maker.yaml",
        cfg=CFG,
        markets=[MARKET, msgspec.structs.replace(MARKET, market="0x" + "cd" * 32, version="v2")],
        wallet=wallet,
        urls={"clob": "https://user:pw@clob.example:8443/path?key=k#f", "gamma": None},
        commit="a" * 40,
    )
    run.sink.record("run", T0_NS, "", head)
    run.close()

    first = next(read_events(run.directory))
    assert first["kind"] == "run" and first["mode"] == "live" and first["wallet"] == wallet
    assert first["polymm_version"] and first["source_commit"] == "a" * 40
    assert first["config_path"] == str(Path("configs/market_maker.yaml").resolve())
    # The config in the run directory is the one hashed: anyone can check the hash.
    assert (
        first["config_sha256"] == hashlib.sha256((run.directory / CONFIG_FILE).read_bytes()[:-1]).hexdigest()
    )
    assert msgspec.json.decode((run.directory / CONFIG_FILE).read_bytes(), type=Config) == CFG
    assert first["urls"] == {"clob": "https://clob.example:8443/path"}
    # Each market with its ids, rules and protocol version (Gamma's ``version``: which ids it trades).
    m, v2 = first["markets"]
    assert (m["market"], m["yes_token"], m["no_token"], m["tick_px"], m["min_qty"], m["version"]) == (
        MARKET.market,
        "111",
        "222",
        10,
        5_000_000,
        "v1",
    )
    assert (v2["market"], v2["version"]) == ("0x" + "cd" * 32, "v2")


def test_the_config_hash_is_of_the_effective_config_not_its_text(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("ops:\n  dry_run: true\n")
    b.write_text("# the defaults, said\nops: {dry_run: true, state_dir: local_state/market_maker}\n")
    c = tmp_path / "c.yaml"
    c.write_text("ops:\n  dry_run: true\n  log_rotate_mb: 5\n")

    assert config_sha256(load_config(a)) == config_sha256(load_config(b)) == config_sha256(Config())
    assert config_sha256(load_config(c)) != config_sha256(load_config(a))


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://u:secret@h.example/p?apikey=x", "https://h.example/p"),
        ("ws://127.0.0.1:8080/ws/market", "ws://127.0.0.1:8080/ws/market"),
        ("http://[::1]:9/x", "http://[::1]:9/x"),
        ("http://h:notaport/", "(unparsable URL)"),
    ],
)
def test_urls_in_the_header_carry_no_credentials(url, public):
    assert public_url(url) == public


# --- rotation, compression, the reader -------------------------------------------------------------


def write_lines(directory: Path, lines: list[bytes], rotate_bytes: int) -> SegmentedWriter:
    w = SegmentedWriter(directory, rotate_bytes=rotate_bytes)
    for line in lines:
        w.write(line)
    w.close()
    return w


@settings(max_examples=40)
@given(st.lists(st.integers(1, 300), max_size=60), st.integers(1, 2_000))
def test_rotated_and_gzipped_segments_read_back_as_written(sizes, rotate_bytes):
    lines = [b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * size) for i, size in enumerate(sizes)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)

        w = write_lines(directory, lines, rotate_bytes)

        assert [line + b"\n" for line in read_event_lines(directory)] == lines
        paths = segment_paths(directory)
        rotated = paths[:-1] if (directory / "events.jsonl").exists() else paths
        assert [p.name for p in rotated] == [segment_name("events", i) for i in range(1, len(rotated) + 1)]
        assert w.segments_rotated == w.segments_compressed == len(rotated)
        for p in rotated:
            body = gzip.decompress(p.read_bytes())
            # A segment stays within the size, unless one line alone is larger.
            assert len(body) <= rotate_bytes or body.count(b"\n") == 1
            assert body.endswith(b"\n")
        assert not list(directory.glob("*.tmp")) and not list(directory.glob("events.0*.jsonl"))
        assert w.lines_written == len(lines) and w.lines_dropped == 0


def test_the_sink_rotates_past_the_size_and_reads_back_every_record(tmp_path):
    sink = JsonlFileSink(tmp_path / "events.jsonl", rotate_bytes=4_096)
    fills = [
        Filled(
            market="m",
            client_id=f"m-{i}",
            ts_ns=T0_NS + i,
            outcome=Outcome.YES,
            side=Side.BUY,
            px=4_900,
            qty=5_000_000 + i,
            fee_usdc6=0,
            liquidity="maker",
            trade_id=f"t{i}",
            leaves_qty=0,
        )
        for i in range(300)
    ]
    for f in fills:
        sink.record("fill", f.ts_ns, f.market, f)
    sink.close()

    back = list(read_events(tmp_path))
    assert [(e["kind"], e["trade_id"], e["qty"]) for e in back] == [
        ("fill", f.trade_id, f.qty) for f in fills
    ]
    assert len(list(tmp_path.glob("events.*.jsonl.gz"))) >= 5


def test_writing_never_waits_for_the_disk(tmp_path, monkeypatch):
    # The writer thread is stuck (a disk that does not answer): recording still returns at once.
    stuck, entered = threading.Event(), threading.Event()
    real = SegmentedWriter._write

    def slow(self: SegmentedWriter, line: bytes) -> None:
        entered.set()
        stuck.wait(30)
        real(self, line)

    monkeypatch.setattr(SegmentedWriter, "_write", slow)
    sink = JsonlFileSink(tmp_path / "events.jsonl")
    sink.record("decision", T0_NS, "m", {"n": -1})
    assert entered.wait(10)

    for n in range(1_000):
        sink.record("decision", T0_NS + n, "m", {"n": n})  # would hang here if it touched the file

    assert (tmp_path / "events.jsonl").read_bytes() == b""
    stuck.set()
    sink.close()
    assert [e["n"] for e in read_events(tmp_path)] == list(range(-1, 1_000))


def test_a_record_after_close_is_dropped_not_raised(tmp_path):
    sink = JsonlFileSink(tmp_path / "events.jsonl")
    sink.record("decision", T0_NS, "m", {"n": 1})
    sink.close()

    sink.record("shutdown", T0_NS, "", {"late": True})
    sink.close()

    assert sink.late_records == 1
    assert [e["kind"] for e in read_events(tmp_path)] == ["decision"]


def test_the_reader_prefers_a_complete_gzip_and_skips_a_torn_last_line(tmp_path):
    # A crash after the gzip was renamed into place but before the plain segment was removed, and a
    # process killed in the middle of its last line.
    (tmp_path / "events.000001.jsonl").write_bytes(b'{"n":1}\n')
    compress_segment(tmp_path / "events.000001.jsonl")
    (tmp_path / "events.000001.jsonl").write_bytes(b'{"n":1}\n{"n":"stale copy"}\n')
    (tmp_path / "events.000002.jsonl").write_bytes(b'{"n":2}\n')  # rotated, not compressed yet
    (tmp_path / "events.jsonl").write_bytes(b'{"n":3}\n{"n":4')

    assert [e["n"] for e in read_events(tmp_path)] == [1, 2, 3]


def test_a_segment_left_uncompressed_by_a_crash_is_compressed_at_the_next_open(tmp_path):
    (tmp_path / "events.000001.jsonl").write_bytes(b'{"n":1}\n')
    (tmp_path / "events.jsonl").write_bytes(b'{"n":2}\n')

    w = SegmentedWriter(tmp_path, rotate_bytes=10)
    w.write(b'{"n":3}\n')
    w.close()

    assert [p.name for p in segment_paths(tmp_path)] == [
        "events.000001.jsonl.gz",
        "events.000002.jsonl.gz",
        "events.jsonl",
    ]
    assert [e["n"] for e in read_events(tmp_path)] == [1, 2, 3]


def test_flush_waits_until_every_record_so_far_is_in_the_file(tmp_path, monkeypatch):
    sink = JsonlFileSink(tmp_path / "events.jsonl")
    write = sink.writer._write

    def slow_write(line: bytes) -> None:  # a writer thread that lags behind its callers
        time.sleep(0.002)
        write(line)

    monkeypatch.setattr(sink.writer, "_write", slow_write)
    for n in range(50):
        sink.record("control", T0_NS, "", {"n": n})

    assert sink.flush(10)
    # In the file, not only queued: what a kill -9 now would leave (no close, no sync).
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert [msgspec.json.decode(line)["n"] for line in lines] == list(range(50))
    sink.close()
    assert not sink.flush(1)  # a closed log flushes nothing more


def test_an_engine_log_is_appended_where_a_test_points_it(tmp_path):
    # TradingEngine's own log (no run directory: tests, the bench) keeps appending to one file.
    for n in range(2):
        sink = JsonlFileSink(tmp_path / "events.jsonl")
        sink.record("decision", T0_NS, "m", {"n": n})
        sink.close()

    assert [e["n"] for e in read_events(tmp_path)] == [0, 1]
