"""``polymm events``: a run's columnar log printed as the JSON lines of the log, filtered."""

from __future__ import annotations

import msgspec

from app.cli import main


def test_polymm_events_prints_the_lines_units_first_and_filters(tiny_run, capsysbinary):
    assert main(["events", str(tiny_run)]) == 0
    lines = capsysbinary.readouterr().out.splitlines()
    records = [msgspec.json.decode(x) for x in lines]
    assert records[0]["kind"] == "units" and records[0]["units"]["px"]["scale"] == "0.0001"
    kinds = {r["kind"] for r in records}
    assert {"decision", "place", "cancel", "fill", "canceled", "settlement"} <= kinds
    assert main(["events", str(tiny_run), "--kind", "fill", "--market", "syn-01"]) == 0
    only = [msgspec.json.decode(x) for x in capsysbinary.readouterr().out.splitlines()]
    assert only[0]["kind"] == "units" and len(only) > 1
    assert only[1:] == [r for r in records if r["kind"] == "fill" and r["market"] == "syn-01"]


def test_polymm_events_bad_input_is_one_line(tmp_path, capsys):
    assert main(["events", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("nope: no such run directory") and "\n" not in err
