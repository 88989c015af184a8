"""run-market-maker end to end against the exchange emulator on 127.0.0.1 (dry-run and paper)."""

import os
from pathlib import Path

import msgspec
import pytest

from app.cli import main
from emulator import Emulator

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def emu():
    with Emulator("default", seed=3) as e:
        yield e


def config_in(tmp_path: Path) -> Path:
    text = Path("configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    path = tmp_path / "mm.yaml"
    path.write_text(text)
    return path


def urls(emu):
    return ["--clob-url", emu.clob_url, "--ws-url", emu.ws_market_url, "--gamma-url", emu.gamma_url]


def order_requests(emu) -> int:
    # Every POST /order(s), DELETE /order(s), /cancel-all, /cancel-market-orders the emulator received.
    return emu.status()["requests"].get("total", 0)


def events(tmp_path):
    path = tmp_path / "local_state" / "market_maker" / "events.jsonl"
    return [msgspec.json.decode(line) for line in path.read_bytes().splitlines()]


def test_dry_run_selects_fresh_decides_with_reasons_and_sends_no_order_request(emu, tmp_path, capsys):
    before = order_requests(emu)

    code = main(
        [
            "run-market-maker",
            "--config",
            str(config_in(tmp_path)),
            "--mode",
            "dry-run",
            "--duration",
            "3",
            *urls(emu),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "no routed markets at" in out and "selected 3 fresh" in out
    assert "order requests sent: 0" in out
    assert order_requests(emu) == before  # the emulator saw no order request at all
    decisions = [e for e in events(tmp_path) if e["kind"] == "decision"]
    assert decisions and all("reasons" in d for d in decisions)
    assert any(d["quote"] for d in decisions)


def test_routed_markets_are_used_when_the_selection_file_exists(emu, tmp_path, capsys):
    cfg = config_in(tmp_path)
    cache = tmp_path / "local_state" / "markets.json"
    selected = tmp_path / "local_state" / "market_maker" / "selected_markets.json"
    assert (
        main(
            [
                "refresh-markets",
                "--config",
                str(cfg),
                "--skip-classify",
                "--skip-index",
                "--gamma-url",
                emu.gamma_url,
                "--markets-json-path",
                str(cache),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "route-markets",
                "--source-config",
                str(cfg),
                "--markets-json-path",
                str(cache),
                "--market-maker-config",
                str(cfg),
                "--market-maker-limit",
                "2",
                "--market-maker-output",
                str(selected),
            ]
        )
        == 0
    )
    capsys.readouterr()

    assert main(["run-market-maker", "--config", str(cfg), "--duration", "1", *urls(emu)]) == 0

    out = capsys.readouterr().out
    assert f"using 2 routed markets from {selected}" in out


def test_paper_fills_on_the_live_feed_without_sending_orders(emu, tmp_path, capsys):
    before = order_requests(emu)

    code = main(
        [
            "run-market-maker",
            "--config",
            str(config_in(tmp_path)),
            "--mode",
            "paper",
            "--duration",
            "8",
            *urls(emu),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert order_requests(emu) == before
    assert "pnl" in out and "uptime" in out
    kinds = {e["kind"] for e in events(tmp_path)}
    assert {"decision", "place"} <= kinds


def test_live_is_refused_while_the_config_says_dry_run(emu, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", "0x" + "11" * 32)
    before = order_requests(emu)

    code = main(
        [
            "run-market-maker",
            "--config",
            str(config_in(tmp_path)),
            "--mode",
            "live",
            "--duration",
            "1",
            *urls(emu),
        ]
    )

    assert code == 2
    assert "ops.dry_run: true refuses --mode live" in capsys.readouterr().err
    assert order_requests(emu) == before
