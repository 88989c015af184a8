"""Issue #14's acceptance for recordings, end to end against the exchange emulator on 127.0.0.1.

For ``RECORD_S`` seconds (``POLYMM_RECORD_TEST_S``, the acceptance's 30 s by default) two things run
on the emulator's synthetic flow at once: ``polymm record`` (the real CLI, in its own process) and a
dry-run ``run-market-maker`` session, which records its own feed (``ops.record_market_data``). Then:

* ``polymm sim --replay`` of the ``polymm record`` recording runs with no hand-written file and
  makes decisions (the simulated venue fills some of them);
* ``polymm sim --replay --dry-run`` of the session's recording makes the decisions the session made
  live: the same decisions per market in the same order, each with the same quotes, orders and
  reasons, and the same orders and cancels. What cannot be the same, and what is allowed for it:

  - time stamps: live, a session reads the running clock while it handles an input, a few
    microseconds after the recorder stamped that input; the replay's clock is the stamp. Each replayed
    record is stamped at most ``LAG_NS`` before its live twin, never after;
  - the two reasons that are continuous functions of that clock, the flow imbalance and the
    volatility (``flow_permille``, ``vol_px``: decayed sums, truncated to an integer), may differ by one
    unit.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.recording import open_recording
from adapters.runlog import latest_run_dir
from app.cli import main
from emulator import Emulator
from research.runlog import log_records

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

RECORD_S = float(os.environ.get("POLYMM_RECORD_TEST_S", "30"))
#: How much later a live session stamps a decision than the recorder stamped the input that caused it.
LAG_NS = 20_000_000
COMPARED = ("decision", "place", "cancel", "cancel_all")
CLOCK_REASONS = ("flow_permille", "vol_px")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def config_in(tmp_path: Path) -> Path:
    text = (
        (ROOT / "configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    )
    path = tmp_path / "mm.yaml"
    path.write_text(text)
    return path


def tradable(market: dict[str, str]) -> bool:
    return market.get("version", "v1") != "v2"


def records(path: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``polymm record`` and a dry-run session with its own recording, side by side, for RECORD_S."""
    tmp = tmp_path_factory.mktemp("record")
    with Emulator("default", seed=5, port=0) as emu:
        # Every market polymm can trade: V2 markets need the market cache to read Gamma's
        # ``positionIds`` (#11); until then recording one is refused, as for any unusable market.
        ids = [m["market"] for m in emu.venue.market_ids() if tradable(m)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        recorder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "record",
                "--markets",
                *ids,
                "--ws-url",
                emu.ws_market_url,
                "--gamma-url",
                emu.gamma_url,
                "--duration",
                str(RECORD_S),
                "--out",
                str(tmp / "rec"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        cfg = config_in(tmp)
        urls = ["--clob-url", emu.clob_url, "--ws-url", emu.ws_market_url, "--gamma-url", emu.gamma_url]
        code = main(
            [
                "run-market-maker",
                "--config",
                str(cfg),
                "--mode",
                "dry-run",
                "--duration",
                str(RECORD_S),
                *urls,
            ]
        )
        out, _ = recorder.communicate(timeout=RECORD_S + 60)
    state = tmp / "local_state" / "market_maker"
    run_dir = latest_run_dir(state)
    assert run_dir is not None, "the dry-run session made no run directory"
    sessions = sorted((run_dir / "market_data").iterdir())
    return {
        "tmp": tmp,
        "config": cfg,
        "session_code": code,
        "record_code": recorder.returncode,
        "record_out": out,
        "rec": tmp / "rec",
        "live_log": run_dir / "events.jsonl",
        "sessions": sessions,
    }


def test_polymm_record_then_sim_replay_with_no_hand_written_file(recorded, capsys):
    assert recorded["record_code"] == 0, recorded["record_out"]
    rec = open_recording(recorded["rec"])
    assert rec.manifest is not None and rec.manifest.closed
    assert len(rec.manifest.markets) == 3 and rec.manifest.frames > 0
    assert rec.manifest.gaps == 0 and rec.manifest.dropped_frames == 0
    frames = list(rec.frames())
    assert len(frames) == rec.manifest.frames
    assert all(a.recv_ns < b.recv_ns for a, b in itertools.pairwise(frames))
    out = recorded["tmp"] / "sim"

    code = main(
        ["sim", "--config", "configs/market_maker.yaml", "--replay", str(recorded["rec"]), "--out", str(out)]
    )

    text = capsys.readouterr().out
    assert code == 0, text
    assert "scenario replay-rec" in text
    log = log_records(out)
    assert any(r["kind"] == "decision" and r["quote"] for r in log)
    assert (out / "report.html").exists()
    summary = msgspec.json.decode((out / "summary.json").read_bytes())
    assert summary["markets"] == 3


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k != "ts_ns"}
    if "reasons" in out:
        out["reasons"] = {k: v for k, v in out["reasons"].items() if k not in CLOCK_REASONS}
    return out


def test_a_dry_run_session_replayed_from_its_recording_makes_the_same_decisions(recorded, capsys):
    assert recorded["session_code"] == 0
    [session] = recorded["sessions"]
    manifest = open_recording(session).manifest
    assert manifest is not None and manifest.kind == "session" and manifest.closed
    assert manifest.session["mode"] == "dry-run" and manifest.dropped_frames == 0
    out = recorded["tmp"] / "dry"

    code = main(
        ["sim", "--config", str(recorded["config"]), "--replay", str(session), "--dry-run", "--out", str(out)]
    )

    text = capsys.readouterr().out
    assert code == 0, text
    live = [r for r in records(recorded["live_log"]) if r["kind"] in COMPARED]
    replay = [r for r in records(out / "events.jsonl") if r["kind"] in COMPARED]
    live_decisions = [r for r in live if r["kind"] == "decision"]
    assert len(live_decisions) >= 10 and any(d["quote"] for d in live_decisions)
    for market in {r["market"] for r in live}:
        mine = [r for r in live if r["market"] == market]
        theirs = [r for r in replay if r["market"] == market]
        for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
            where = f"{market[:10]} record {i} ({a['kind']}):\nlive   {a}\nreplay {b}"
            assert comparable(a) == comparable(b), where
            assert 0 <= a["ts_ns"] - b["ts_ns"] <= LAG_NS, where
            for key in CLOCK_REASONS if a["kind"] == "decision" else ():
                assert abs(a["reasons"][key] - b["reasons"][key]) <= 1, where
        assert len(mine) == len(theirs), market
    assert len(live) == len(replay)
