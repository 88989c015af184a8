"""Live reward tracking end to end: ``run-market-maker --mode live`` against the exchange emulator.

In process (``app.cli.main``), a throwaway key, the rewards maker config on the emulator's default
scenario (two of its five markets have a rewards program: 3.5 cents, 20 shares). The status lines show
each rewarded market's scoring orders as the venue's ``POST /orders-scoring`` answered them (the
emulator scores with ``core.rewards``), the estimated accrual and the venue's earnings; the markets
without a program show none. Every wait is the run's own duration: no sleep in the test.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from eth_account import Account

from app.cli import main
from emulator import Emulator

pytest.importorskip("polymarket", reason="polymarket-client is not installed")

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^  (0x[0-9a-f]{10}) .*rewards (\d+)/(\d+) orders scoring \(([\d.]+) of ([\d.]+) shares, venue\), "
    r"share ([\d.]+)%, est ([\d.]+) USDC/day of a ([\d.]+) USDC pool, earned ([\d.]+) USDC today$"
)


@pytest.fixture
def emu():
    with Emulator("default", seed=5, port=0) as e:
        yield e


@pytest.fixture(autouse=True)
def keep_recursion_limit():
    before = sys.getrecursionlimit()
    yield
    sys.setrecursionlimit(before)


def live_config(tmp_path: Path) -> Path:
    text = (
        (REPO / "configs/rewards_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    )
    text = text.replace("dry_run: true", "dry_run: false\n  status_interval_s: 2\n  control_port: null")
    text = text.replace("band_pct: 50 ", "band_pct: 50\n  track_interval_s: 1 ")
    path = tmp_path / "live.yaml"
    path.write_text(text)
    return path


def test_the_status_lines_show_which_of_our_live_orders_score_and_what_they_earn(
    emu, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", Account.create().key.hex())
    for name in ("POLYMM_API_KEY", "POLYMM_API_SECRET", "POLYMM_API_PASSPHRASE", "POLYMM_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    rewarded = {
        m["market"]
        for m in emu.venue.market_ids()
        if m["slug"] in ("will-it-rain-in-lisbon-tomorrow", "emulated-v2-city-marathon-record")
    }

    code = main(
        [
            "run-market-maker",
            "--config",
            str(live_config(tmp_path)),
            "--mode",
            "live",
            "--duration",
            "7",
            "--clob-url",
            emu.clob_url,
            "--ws-url",
            emu.ws_market_url,
            "--gamma-url",
            emu.gamma_url,
        ]
    )

    out = capsys.readouterr().out
    assert code == 0, out
    assert "rewards: tracking 2 rewarded markets every 1 s (the venue" in out
    rows = [m.groups() for line in out.splitlines() if (m := LINE.match(line))]
    assert {r[0] for r in rows} == {m[:12] for m in rewarded}, out
    for _market, scoring, orders, scoring_qty, qty, share, est, pool, _earned in rows:
        assert 0 <= int(scoring) <= int(orders) and float(scoring_qty) <= float(qty)
        assert float(pool) in (50.0, 30.0) and float(est) <= float(pool) and 0 <= float(share) <= 100
    # The rewards maker keeps a level per side in the band at the reward size: its orders score.
    assert any(int(r[1]) > 0 and float(r[6]) > 0 for r in rows), out
    others = [line for line in out.splitlines() if line.startswith("  0x") and "rewards" not in line]
    assert others  # the markets without a program: no reward figures
