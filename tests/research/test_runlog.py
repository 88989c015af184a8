"""The run reader and the analysis: columns that add up to the simulator's own summary."""

from __future__ import annotations

import shutil

import msgspec
import numpy as np
import pytest

from adapters.runlog import SegmentedWriter, segment_paths
from research.analysis import analyse, consistency, integral, share_in_buckets
from research.runlog import MARKS_NAME, NO_PX, RunFormatError, file_digest, log_files, read_run


def test_reader_columns_match_the_summary(tiny_run):
    run = read_run(tiny_run)
    s = run.summary

    assert run.mode == "sim" and run.inputs_logged
    assert list(run.markets) == [m["market"] for m in s["per_market"]]
    for m in s["per_market"]:
        ml = run.markets[m["market"]]
        assert len(ml.fills) == m["fills"]["maker"] + m["fills"]["taker"]
        assert int(ml.fills.maker.sum()) == m["fills"]["maker"]
        assert ml.fills.qty.sum() / 1e6 == pytest.approx(m["volume_shares"])
        assert len(ml.decisions) == m["decisions"] and ml.places == m["orders"]
        assert ml.resolved is not None
        # Quotes rest most of the time, and the resolution cancelled every one of them.
        assert len(ml.quotes) > 10 and len(ml.top) > 10
        assert (ml.quotes.bid_px[-1], ml.quotes.ask_px[-1]) == (NO_PX, NO_PX)
        assert ml.quotes.ts_ns[-1] >= ml.resolved[0]


def test_analysis_pnl_split_equals_the_summary_with_venue_marks(tiny_run):
    run = read_run(tiny_run)
    a = analyse(run)

    for m in run.summary["per_market"]:
        fin = a.markets[m["market"]].pnl_final
        for k, v in m["pnl_usdc"].items():
            assert fin[k] == pytest.approx(v, abs=2e-6), (m["market"], k)
        assert a.markets[m["market"]].figures["max_abs_inventory_shares"] == m["max_abs_inventory_shares"]
    assert max(consistency(a).values()) < 1e-5
    # The grid's last point is the end of the run: the picture ends where the numbers do.
    tot = a.total_pnl()
    assert tot["total"][-1] == pytest.approx(run.summary["pnl_usdc"]["total"], abs=1e-4)


def test_without_venue_marks_the_total_still_matches_and_the_gap_is_reported(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    (copy / MARKS_NAME).unlink()
    a = analyse(read_run(copy))

    for m in a.run.summary["per_market"]:
        assert a.markets[m["market"]].pnl_final["total"] == pytest.approx(m["pnl_usdc"]["total"], abs=1e-5)
    assert set(consistency(a)) >= {"spread_capture", "inventory_mtm"}


def test_marks_that_do_not_match_the_log_are_refused(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    marks = msgspec.json.decode((copy / MARKS_NAME).read_bytes())
    first = next(iter(marks["markets"]))
    marks["markets"][first]["fill_mid2"].pop()
    (copy / MARKS_NAME).write_bytes(msgspec.json.encode(marks))

    with pytest.raises(RunFormatError, match=rf"market {first}: .* fill marks for"):
        read_run(copy)


def test_unreadable_runs_are_one_line_errors(tiny_run, tmp_path):
    with pytest.raises(RunFormatError, match="no such run directory"):
        read_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunFormatError, match=r"no events\.jsonl"):
        read_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    lines = (tiny_run / "events.jsonl").read_bytes().splitlines(keepends=True)
    (bad / "events.jsonl").write_bytes(b"".join([*lines[:5], b'{"kind":"delta","ts_ns":"x"}\n']))
    with pytest.raises(RunFormatError, match=r"line 6: a malformed delta record"):
        read_run(bad)
    other = tmp_path / "units"
    other.mkdir()
    head = lines[0].replace(b'"px":{"scale":"0.0001"', b'"px":{"scale":"0.01"')
    assert head != lines[0]
    (other / "events.jsonl").write_bytes(head + b"".join(lines[1:]))
    with pytest.raises(RunFormatError, match=r"unit px has scale '0.01', this reader needs '0.0001'"):
        read_run(other)


def test_a_rotated_session_log_reads_as_the_whole_log(tiny_run, tmp_path):
    # A long session's log is in gzipped segments (adapters.runlog): the reader sees every one, in order,
    # not only the events.jsonl being written last.
    whole = read_run(tiny_run)
    lines = (tiny_run / "events.jsonl").read_bytes().splitlines(keepends=True)
    rotated = tmp_path / "rotated"
    writer = SegmentedWriter(rotated, rotate_bytes=sum(map(len, lines)) // 4)
    for line in lines:
        writer.write(line)
    writer.close()
    files = log_files(rotated)
    assert files == segment_paths(rotated)  # the writer's own list of its segments
    assert len(files) >= 4 and files[0].name == "events.000001.jsonl.gz"

    run = read_run(rotated)

    assert (run.mode, run.start_ns, run.end_ns) == (whole.mode, whole.start_ns, whole.end_ns)
    assert list(run.markets) == list(whole.markets)
    for name, m in whole.markets.items():
        r = run.markets[name]
        assert r.decisions == m.decisions and r.places == m.places and r.resolved == m.resolved
        assert np.array_equal(r.fills.qty, m.fills.qty) and np.array_equal(r.top.ts_ns, m.top.ts_ns)
    assert run.digest() == file_digest(tiny_run / "events.jsonl") == whole.digest()
    # A crash while compressing leaves a segment plain and gzipped: the gzipped one is read.
    plain = rotated / "events.000001.jsonl"
    plain.write_bytes(b"half a segm")
    assert log_files(rotated) == files and read_run(rotated).markets.keys() == whole.markets.keys()


def test_a_last_line_cut_short_by_a_kill_is_not_a_record(tiny_run, tmp_path):
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "events.jsonl").write_bytes((tiny_run / "events.jsonl").read_bytes() + b'{"kind":"deci')

    run = read_run(killed)

    assert sum(len(m.decisions) for m in run.markets.values()) == sum(
        len(m.decisions) for m in read_run(tiny_run).markets.values()
    )


def test_step_integrals_and_bucket_shares():
    ts = np.asarray([10, 20, 40], np.int64)
    on = np.asarray([1, 0, 1], np.int64)

    assert integral(ts, on, np.asarray([5, 15, 20, 30, 50], np.int64)).tolist() == [0, 5, 10, 10, 20]
    shares = share_in_buckets(ts, on, np.asarray([10, 20, 40, 60], np.int64))
    assert shares.tolist() == [1.0, 0.0, 1.0]
