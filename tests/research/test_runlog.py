"""The run reader and the analysis: columns that add up to the simulator's own summary."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest

from adapters.runlog import SegmentedWriter, segment_paths
from app.cli import main
from research.analysis import analyse, consistency, integral, share_in_buckets
from research.runlog import (
    INPUT_KINDS,
    MARKS_NAME,
    NO_PX,
    RunFormatError,
    event_lines,
    file_digest,
    log_files,
    log_records,
    read_run,
)
from sim.eventcols import COLUMNS_NAME, ColumnReader
from sim.inputs import INPUT_NAME, load_input_tapes

ROOT = Path(__file__).resolve().parents[2]


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
    with pytest.raises(RunFormatError, match=r"no events\.npz or events\.jsonl"):
        read_run(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    # A log of JSON lines (a session's), made from the simulation's columns.
    lines = list(event_lines(tiny_run))
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
    lines = list(event_lines(tiny_run))  # the simulation's log as a session writes one: JSON lines
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    shutil.copy(tiny_run / INPUT_NAME, rotated / INPUT_NAME)  # (its market data: the same input)
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
    (tmp_path / "whole.jsonl").write_bytes(b"".join(lines))
    assert run.digest() == file_digest(tmp_path / "whole.jsonl")
    # A crash while compressing leaves a segment plain and gzipped: the gzipped one is read.
    plain = rotated / "events.000001.jsonl"
    plain.write_bytes(b"half a segm")
    assert log_files(rotated) == files and read_run(rotated).markets.keys() == whole.markets.keys()


def test_a_last_line_cut_short_by_a_kill_is_not_a_record(tiny_run, tmp_path):
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "events.jsonl").write_bytes(b"".join(event_lines(tiny_run)) + b'{"kind":"deci')

    run = read_run(killed)

    assert sum(len(m.decisions) for m in run.markets.values()) == sum(
        len(m.decisions) for m in read_run(tiny_run).markets.values()
    )


def _rewrite_columns(src, dst, change):
    # A copy of a run directory whose events.npz has its header changed by ``change``.
    shutil.copytree(src, dst)
    with np.load(dst / COLUMNS_NAME) as z:
        arrays = {k: z[k] for k in z.files}
    head = msgspec.json.decode(arrays["header"].tobytes())
    change(head)
    arrays["header"] = np.frombuffer(msgspec.json.encode(head), np.uint8)
    np.savez_compressed(dst / COLUMNS_NAME, **arrays)


def test_unreadable_columnar_logs_are_one_line_errors(tiny_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    data = (broken / COLUMNS_NAME).read_bytes()
    (broken / COLUMNS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(RunFormatError, match=r"events\.npz: not a readable event-columns file") as err:
        read_run(broken)
    assert "\n" not in str(err.value)
    _rewrite_columns(tiny_run, tmp_path / "newer", lambda h: h.update(version=99))
    with pytest.raises(RunFormatError, match=r"version 99 is newer than this polymm reads \(1\)"):
        read_run(tmp_path / "newer")
    _rewrite_columns(tiny_run, tmp_path / "units", lambda h: h["units"]["units"]["px"].update(scale="0.01"))
    with pytest.raises(RunFormatError, match=r"unit px has scale '0.01', this reader needs '0.0001'"):
        read_run(tmp_path / "units")


def test_the_columnar_log_reads_as_its_json_lines_and_keeps_its_digest(tiny_run, tmp_path):
    # The same run from its columns and from the JSON lines they print: the same columns out.
    a = read_run(tiny_run, actions=True)
    jsonl = tmp_path / "jsonl"
    shutil.copytree(tiny_run, jsonl)
    (jsonl / "events.jsonl").write_bytes(b"".join(event_lines(tiny_run)))
    (jsonl / COLUMNS_NAME).unlink()
    b = read_run(jsonl, actions=True)
    for name, ma in a.markets.items():
        mb = b.markets[name]
        assert ma.actions == mb.actions and ma.decisions == mb.decisions and len(ma.actions) > 100
        assert np.array_equal(ma.fills.ts_ns, mb.fills.ts_ns) and np.array_equal(
            ma.quotes.bid_px, mb.quotes.bid_px
        )
    # The digest the simulator printed is the file's own, and recomputes from its columns.
    reader = ColumnReader.open(tiny_run / COLUMNS_NAME)
    assert reader.digest == reader.recompute_digest() == a.summary["digest"]
    (jsonl / "summary.json").unlink()
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    (copy / "summary.json").unlink()
    assert read_run(copy).digest() == a.summary["digest"]


def test_the_input_is_not_logged_but_re_read_through_its_identity(tiny_run):
    # A generated source: its identity is the scenario and its seed, no file.
    ident = msgspec.json.decode((tiny_run / INPUT_NAME).read_bytes())
    assert ident["files"] == [] and ident["scenario"]["source"]["type"] == "synthetic"
    assert ident["scenario"]["seed"] == read_run(tiny_run).summary["seed"]
    kinds = {r["kind"] for r in log_records(tiny_run)}
    assert kinds.isdisjoint(INPUT_KINDS)
    run = read_run(tiny_run, actions=True)
    tapes = load_input_tapes(tiny_run)
    assert tapes is not None and list(run.markets) == [t.info.market for t in tapes]
    for t in tapes:
        m = run.markets[t.info.market]
        assert m.inputs == len(t) and m.deltas + m.trades < len(t) and m.resolved is not None
        assert len(m.inputs_sha256) == 64
    assert run.start_ns == min(t.ts[0] for t in tapes)


def test_an_input_file_missing_or_changed_since_the_run_is_one_line(tmp_path):
    # A file source: its path and sha256 are kept, checked before the reader re-reads it.
    data = tmp_path / "data.npz"
    shutil.copy(ROOT / "configs" / "data" / "synthetic_hbt_10min.npz", data)
    scenario = tmp_path / "sc.yaml"
    text = (ROOT / "configs" / "scenarios" / "hbt_npz.yaml").read_text()
    scenario.write_text(text.replace("../data/synthetic_hbt_10min.npz", "data.npz"))
    out = tmp_path / "run"
    cmd = ["sim", "--config", "configs/market_maker.yaml", "--scenario", str(scenario), "--out", str(out)]
    assert main([*cmd, "--quiet", "--no-report"]) == 0
    ident = msgspec.json.decode((out / INPUT_NAME).read_bytes())
    assert [f["path"] for f in ident["files"]] == [str(data.resolve())]
    assert ident["files"][0]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    ml = read_run(out).markets["syn-hbt"]
    assert ml.inputs == read_run(out).summary["events_processed"] and len(ml.top) > 100

    data.write_bytes(data.read_bytes() + b"\0")
    with pytest.raises(RunFormatError, match=r"input .*data\.npz changed since the run \(sha256") as err:
        read_run(out)
    assert "\n" not in str(err.value)
    data.unlink()
    with pytest.raises(RunFormatError, match=r"input .*data\.npz is missing"):
        read_run(out)


def test_step_integrals_and_bucket_shares():
    ts = np.asarray([10, 20, 40], np.int64)
    on = np.asarray([1, 0, 1], np.int64)

    assert integral(ts, on, np.asarray([5, 15, 20, 30, 50], np.int64)).tolist() == [0, 5, 10, 10, 20]
    shares = share_in_buckets(ts, on, np.asarray([10, 20, 40, 60], np.int64))
    assert shares.tolist() == [1.0, 0.0, 1.0]
