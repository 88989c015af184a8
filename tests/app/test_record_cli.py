"""``polymm record`` and ``polymm sim --replay`` at the edges: reconnects, Ctrl-C, bad input (exit 2)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from adapters.recording import MANIFEST, Connect, Frame, Gap, Manifest, RecordedMarket, open_recording
from app.cli import main
from emulator import Emulator

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def emu():
    with Emulator("default", seed=11, port=0) as e:
        yield e


def ids(emu) -> list[str]:
    # Every market of the emulator, V1 and Protocol V2 alike.
    return [m["market"] for m in emu.venue.market_ids()]


def record_args(emu, out: Path, *extra: str) -> list[str]:
    return ["record", "--ws-url", emu.ws_market_url, "--gamma-url", emu.gamma_url, "--out", str(out), *extra]


def test_a_dropped_connection_is_a_gap_record_and_the_recording_goes_on(emu, tmp_path, capsys):
    def drop() -> None:
        time.sleep(1.5)
        fault = {"kind": "ws_drop", "channel": "market", "start_ms": 0}
        assert httpx.post(f"{emu.clob_url}/emulator/faults", json=fault, timeout=5).status_code == 200

    threading.Thread(target=drop, daemon=True).start()
    code = main(record_args(emu, tmp_path / "rec", "--markets", ids(emu)[0], "--duration", "4"))

    out = capsys.readouterr().out
    assert code == 0, out
    rec = open_recording(tmp_path / "rec")
    assert rec.manifest is not None and rec.manifest.gaps == 1 and rec.manifest.connects == 2
    kinds = [type(r) for r in rec.records()]
    gap = kinds.index(Gap)
    assert kinds[gap + 1] is Connect and Frame in kinds[:gap] and Frame in kinds[gap + 2 :]
    assert "2 connects, 1 gaps, 0 dropped" in out
    # The replay treats the gap as the live feed did: books invalid until the venue's fresh ones.
    assert (
        main(
            [
                "sim",
                "--config",
                "configs/market_maker.yaml",
                "--replay",
                str(tmp_path / "rec"),
                "--dry-run",
                "--out",
                str(tmp_path / "dry"),
            ]
        )
        == 0
    )
    summary = msgspec.json.decode((tmp_path / "dry" / "replay.json").read_bytes())
    assert summary["counts"]["gaps"] == 1 and summary["engine_inputs"].startswith("a ticker")
    assert sum(summary["decisions"].values()) > 0


def test_ctrl_c_stops_a_recording_cleanly(emu, tmp_path):
    out = tmp_path / "rec"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", *record_args(emu, out, "--markets", *ids(emu))],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not list(out.glob("market-*.jsonl.gz")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    text, _ = proc.communicate(timeout=20)

    assert proc.returncode == 0, text
    assert "Traceback" not in text
    m = open_recording(out).manifest
    assert m is not None and m.closed and m.frames > 0 and m.ended_ns > m.started_ns


def test_an_unknown_market_is_one_line_and_exit_2(emu, tmp_path, capsys):
    code = main(
        record_args(emu, tmp_path / "rec", "--markets", ids(emu)[0], "no-such-market", "--duration", "1")
    )

    err = capsys.readouterr().err.strip()
    assert code == 2
    assert (
        err.startswith("polymm record: --markets: no market 'no-such-market' on Gamma at") and "\n" not in err
    )
    assert not (tmp_path / "rec").exists()


def test_gamma_unreachable_without_a_cache_is_one_line_and_exit_1(tmp_path, capsys):
    args = ["record", "--gamma-url", "http://127.0.0.1:9", "--markets-json", str(tmp_path / "none.json")]
    code = main([*args, "--markets", "some-slug", "--out", str(tmp_path / "rec"), "--duration", "1"])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("polymm record: cannot look the markets up:") and "\n" not in err


def test_recording_into_a_recording_is_refused(emu, tmp_path, capsys):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / MANIFEST).write_text("{}")

    code = main(record_args(emu, tmp_path / "rec", "--markets", ids(emu)[0], "--duration", "1"))

    assert code == 2
    assert "already holds a recording" in capsys.readouterr().err


def replay(tmp_path: Path, what: str, *extra: str) -> list[str]:
    return [
        "sim",
        "--config",
        "configs/market_maker.yaml",
        "--replay",
        what,
        "--out",
        str(tmp_path / "o"),
        *extra,
    ]


@pytest.mark.parametrize("dry_run", [False, True])
def test_bad_replay_input_is_one_line_and_exit_2(tmp_path, capsys, dry_run):
    extra = ("--dry-run",) if dry_run else ()
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    market = RecordedMarket(
        market="0x" + "ab" * 32, yes_token="1", no_token="2", tick_px=100, min_qty=5_000_000
    )
    (corrupt / MANIFEST).write_bytes(msgspec.json.encode(Manifest(markets=(market,))))
    (corrupt / "market-00001-x.jsonl.gz").write_bytes(gzip.compress(b"garbage\n"))
    cases = {
        str(tmp_path / "missing"): "no such file or directory",
        str(tmp_path / "empty"): "no manifest.json",
        str(corrupt): "not a recording record",
    }
    for what, message in cases.items():
        code = main(replay(tmp_path, what, *extra))
        err = capsys.readouterr().err.strip()
        assert code == 2, (what, err)
        assert message in err and "\n" not in err and "Traceback" not in err, err


def test_dry_run_needs_a_recording_and_replay_excludes_a_scenario(tmp_path, capsys):
    assert main(["sim", "--config", "configs/market_maker.yaml", "--dry-run", "--out", str(tmp_path)]) == 2
    assert "--dry-run replays a recording" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(replay(tmp_path, str(tmp_path), "--scenario", "default"))
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_dry_run_replay_refuses_a_risk_manager_config_and_a_risk_config(tmp_path, capsys):
    args = ["sim", "--replay", str(tmp_path), "--dry-run", "--out", str(tmp_path / "o")]

    assert main([*args, "--config", "configs/risk.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "configs/risk.yaml: strategy: a risk_manager config places no quotes; give a trading config as "
        "--config (it may take this one as --risk-config)"
    )
    assert main([*args, "--config", "configs/market_maker.yaml", "--risk-config", "configs/risk.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("polymm sim: --risk-config does not apply with --dry-run: ") and "\n" not in err
    assert not (tmp_path / "o").exists()
