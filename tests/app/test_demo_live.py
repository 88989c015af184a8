"""The live path end to end: run-market-maker --mode live against the emulator (demo-live).

One demo run through the venue's official client (polymarket-client) serves every test here.
"""

import contextlib
import io
import os
import re
from pathlib import Path
from typing import NamedTuple

import pytest

from app.cli import main

pytestmark = pytest.mark.slow

PROTOCOL_LINE = r"{name}: (\d+) markets traded, (\d+) orders accepted, (\d+) fills, (\d+) cancelled"


class Demo(NamedTuple):
    code: int
    out: str
    key: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out_dir: Path = tmp_path_factory.mktemp("demo-live")
    saved = os.environ.pop("POLYMM_PRIVATE_KEY", None)  # the demo sets its throwaway key; undone after
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = main(["demo-live", "--duration", "15", "--out", str(out_dir), "--seed", "2"])
        key = os.environ.get("POLYMM_PRIVATE_KEY", "")
    finally:
        os.environ.pop("POLYMM_PRIVATE_KEY", None)
        if saved is not None:
            os.environ["POLYMM_PRIVATE_KEY"] = saved
    return Demo(code, buf.getvalue(), key)


def protocol(out: str, name: str) -> tuple[int, int, int, int]:
    found = re.search(PROTOCOL_LINE.format(name=re.escape(name)), out)
    assert found, out
    markets, accepted, fills, canceled = map(int, found.groups())
    return markets, accepted, fills, canceled


def test_demo_live_rests_fills_skews_and_leaves_no_open_order(demo: Demo):
    code, out, key = demo

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
    assert "LIVE trading as wallet 0x" in out and "through polymarket-client 0.14.0" in out
    assert key and key.removeprefix("0x") not in out  # the key is never printed
    markets, accepted, v1_fills, canceled = protocol(out, "V1 (token ids)")
    assert markets > 0 and accepted > 0 and v1_fills > 0 and canceled > 0


def test_demo_live_rests_fills_and_cancels_on_protocol_v2_markets_too(demo: Demo):
    # The default scenario lists Protocol V2 markets: a selection or a market cache that dropped them
    # (or read them as V1) must fail here, not pass with V1 markets alone.
    code, out, _ = demo
    selected = re.search(r"\((\d+) markets: (\d+) V1, (\d+) Protocol V2\)", out)
    assert selected, out
    markets, accepted, fills, canceled = protocol(out, "Protocol V2 (position ids)")

    assert code == 0, out
    assert int(selected[2]) > 0 and int(selected[3]) > 0  # a mix of both protocols was traded
    assert 0 < markets <= int(selected[3])
    assert accepted > 0 and canceled > 0 and fills > 0
