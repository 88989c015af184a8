"""The live path end to end: run-market-maker --mode live against the emulator (demo-live)."""

import os
import re

import pytest

from app.cli import main


@pytest.mark.slow
def test_demo_live_rests_fills_skews_and_leaves_no_open_order(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("POLYMM_PRIVATE_KEY", raising=False)  # the demo sets its throwaway key; undone after

    code = main(["demo-live", "--duration", "15", "--out", str(tmp_path), "--seed", "2"])

    out = capsys.readouterr().out
    assert code == 0, out
    placed, fills, still_open = map(
        int,
        re.search(r"bot orders placed (\d+), fills (\d+), open orders after shutdown (\d+)", out).groups(),
    )
    assert placed > 0 and fills > 0 and still_open == 0
    long_lower, long_wrong, short_higher, short_wrong = map(
        int,
        re.search(
            r"skew: (\d+) decisions long and quoting lower \((\d+) the wrong way\), (\d+) short and "
            r"quoting higher \((\d+) the wrong way\)",
            out,
        ).groups(),
    )
    assert long_lower + short_higher > 0 and long_wrong == short_wrong == 0
    assert "LIVE trading as wallet 0x" in out
    assert os.environ["POLYMM_PRIVATE_KEY"] not in out  # the key is never printed
