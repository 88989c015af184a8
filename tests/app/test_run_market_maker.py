"""run-market-maker end to end against the exchange emulator on 127.0.0.1 (dry-run and paper)."""

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from actors.market import Status
from adapters.runlog import latest_run_dir, read_events
from app.cli import main
from app.commands.run import summarise
from emulator import Emulator
from research.analysis import analyse
from research.runlog import read_run

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
    run_dir = latest_run_dir(tmp_path / "local_state" / "market_maker")
    assert run_dir is not None
    return list(read_events(run_dir))


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
    # Every market of the default scenario, V1 and Protocol V2 alike.
    assert "no routed markets at" in out and f"selected {len(emu.venue.market_ids())} fresh" in out
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
    # The emulator's takers trade through our quotes within seconds: the paper venue fills them.
    fills = next(line for line in out.splitlines() if line.startswith("fills"))
    assert int(fills.split()[1]) > 0, out
    held = [line for line in out.splitlines() if " inventory " in line and "net YES" in line]
    assert any("inventory 0 shares" not in line for line in held), out
    # Like `polymm sim`, a paper session ends by writing its run's report: its fills, PnL and quotes.
    run_dir = latest_run_dir(tmp_path / "local_state" / "market_maker")
    assert run_dir is not None and f"report   {run_dir / 'report.html'}" in out
    html = (run_dir / "report.html").read_text()
    assert "<td>mode</td><td><code>paper</code></td>" in html
    points = {t: int(n) for n, t in re.findall(r'data-points="(\d+)"><figcaption>([^<]+)<', html)}
    for title in ("PnL over time", "PnL per market", "Inventory per market", "Quote uptime", "Markouts"):
        assert next(n for t, n in points.items() if t.startswith(title)) > 0, (title, points)
    # The session logs no market data: its market lines and markouts come from its own recording.
    run = read_run(run_dir)
    assert run.market_data.startswith("the session's recordings in market_data/"), run.market_data
    quoted = [m for m in run.markets.values() if m.decisions]
    assert quoted and all(len(m.top) > 0 for m in quoted)
    marked = analyse(run)
    assert any(shares > 0 for ma in marked.markets.values() for _, shares in ma.markouts.values())
    assert any("from the session's recordings" in n for n in marked.notes), marked.notes


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


def test_the_event_log_starts_with_its_units(emu, tmp_path, capsys):
    args = ["run-market-maker", "--config", str(config_in(tmp_path)), "--duration", "1", *urls(emu)]
    assert main([*args, "--no-report"]) == 0

    header, first = events(tmp_path)[:2]
    assert header["kind"] == "run" and header["mode"] == "dry-run"
    assert first["kind"] == "units" and first["mode"] == "dry-run"
    assert first["units"]["px"]["scale"] == "0.0001" and "*_px" in first["units"]["px"]["applies_to"]
    assert first["units"]["qty"]["scale"] == "0.000001" and first["units"]["usdc6"]["scale"] == "0.000001"
    run_dir = latest_run_dir(tmp_path / "local_state" / "market_maker")
    assert run_dir is not None and not (run_dir / "report.html").exists()  # --no-report
    assert "report " not in capsys.readouterr().out


def test_summary_prints_every_decimal_of_a_position_with_its_unit():
    # A maker fill of 7.575758 shares (a $5 market buy at 0.66) and 5 USDC received.
    st = Status(
        market="0xabc",
        book_valid=True,
        yes_qty=0,
        no_qty=7_575_758,
        cash_usdc6=-4_999_999,
        open_orders=0,
        exposure_usdc6=0,
        decisions=3,
        fills=1,
        last_quote=True,
        last_bids=(),
        last_asks=(),
        skewed_mid_px=0,
        wakeup_ns=0,
    )
    engine = SimpleNamespace(dispatch=SimpleNamespace(events_in=12))

    text = summarise("dry-run", engine, {"0xabc": st}, {}, None)

    assert "inventory -7.575758 shares net YES (YES 0, NO 7.575758)" in text
    assert "cash -4.999999 USDC" in text
    assert "12 market events" in text and "3 decisions" in text
