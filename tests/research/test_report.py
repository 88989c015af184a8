"""The run report as a file: self-contained, every chart drawn, the summary's numbers, the CLI."""

from __future__ import annotations

import re
import shutil

import msgspec

from app.cli import main
from research.report import REPORT_NAME, write_report, write_session_report
from sim.eventcols import COLUMNS_NAME
from sim.inputs import INPUT_NAME


def test_sim_writes_a_self_contained_report_with_data_in_every_chart(tiny_run):
    html = (tiny_run / REPORT_NAME).read_text()

    # Nothing to fetch: no script, no stylesheet or image from anywhere, an empty favicon.
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert '<link rel="icon" href="data:,">' in html
    points = [int(p) for p in re.findall(r'<figure class="chart" data-points="(\d+)"', html)]
    # 7 run-wide charts, then per market its whole run (the tiny run is too short for a zoom).
    assert len(points) == 7 + 2
    assert all(p > 0 for p in points)
    for part in ("spread capture", "inventory mark-to-market", "fees", "rebates", "resolution"):
        assert part in html
    assert "Markouts" in html and "Quote uptime" in html and "Time at the caps" in html


def test_the_table_shows_the_summary_figures(tiny_run):
    html = (tiny_run / REPORT_NAME).read_text()
    s = msgspec.json.decode((tiny_run / "summary.json").read_bytes())

    assert f"{s['pnl_usdc']['total']:+,.2f} USDC" in html
    for m in s["per_market"]:
        assert f"<td>{m['market']}</td>" in html
        assert f"{m['pnl_usdc']['spread_capture']:+,.2f}" in html


def test_report_cli_and_its_errors(tiny_run, tmp_path, capsys):
    out = tmp_path / "r.html"

    assert main(["report", str(tiny_run), "--out", str(out)]) == 0
    assert out.read_text() == (tiny_run / REPORT_NAME).read_text()  # the same run, the same bytes
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("missing: no such run directory") and "\n" not in err


def test_sim_no_report_writes_none(tmp_path):
    out = tmp_path / "run"
    args = ["sim", "--config", "configs/market_maker.yaml", "--scenario", "ws_replay", "--out", str(out)]
    assert main([*args, "--quiet", "--no-report"]) == 0
    assert not (out / REPORT_NAME).exists()


def test_session_hook_writes_a_report_for_a_log_without_summary_and_never_raises(tiny_run, tmp_path):
    # A directory without summary.json or venue marks (as a paper session's): the log and the input.
    paper = tmp_path / "paper"
    paper.mkdir()
    shutil.copy(tiny_run / COLUMNS_NAME, paper / COLUMNS_NAME)
    shutil.copy(tiny_run / INPUT_NAME, paper / INPUT_NAME)

    path = write_session_report(paper)

    assert path == paper / REPORT_NAME
    html = path.read_text()
    assert "no summary.json: maker rebates are not in the log" in html
    assert all(int(p) > 0 for p in re.findall(r'data-points="(\d+)"', html))
    assert write_session_report(tmp_path / "nothing") is None


def test_a_run_without_its_market_data_still_reports(tiny_run, tmp_path):
    # Without input.json (as a session that does not log its feed): no book lines, said so.
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    (out / INPUT_NAME).unlink()

    html = write_report(out).read_text()

    assert "the run has no market data between book snapshots" in html
