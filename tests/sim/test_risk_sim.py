"""The risk manager in simulation: a crash in one market, the daily loss stop, when and why (issue #12).

``configs/scenarios/crash.yaml``: four synthetic markets; at 7.5 min the fair price of ``syn-03`` (long
about a hundred shares then) falls 40 cents at once. With the risk manager's limits
(``configs/risk.yaml``: 25 USDC a market) the market's daily loss stop halts ``syn-03`` (or, with
``halt_scope: book``, every market), and the summary and the event log say when and why. The runs are
cut to 15 minutes of the scenario's hour (the crash and what follows it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from app.cli import main
from app.commands.sim import simulate
from app.configfile import load_struct
from core.units import USDC6_ONE
from research.runlog import log_records
from sim.scenario import Scenario

CRASH = Path("configs/scenarios/crash.yaml")
MM = "configs/market_maker.yaml"
RISK = "configs/risk.yaml"
STOP_USDC6 = 25 * USDC6_ONE


def short_crash() -> Scenario:
    sc = load_struct(CRASH, Scenario)
    return msgspec.structs.replace(sc, source=msgspec.structs.replace(sc.source, duration_s=900.0))


def run(
    tmp_path: Path, risk_config: str, engine: str = "inline", name: str = "run"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path / name
    summary = simulate(
        MM, CRASH, None, engine, out, progress=False, scenario=short_crash(), risk_config=risk_config
    )
    events = log_records(out)
    return summary, events


def test_a_crash_halts_that_market_at_its_daily_loss_stop_and_says_when_and_why(tmp_path):
    summary, events = run(tmp_path, RISK)

    [halt] = summary["risk"]["halts"]
    assert (halt["market"], halt["rule"], halt["unit"], halt["limit"]) == (
        "syn-03",
        "market_daily_loss_stop",
        "usdc6",
        STOP_USDC6,
    )
    assert STOP_USDC6 <= halt["observed"] < STOP_USDC6 + 5 * USDC6_ONE  # acted on promptly, not late
    start = events[0]["ts_ns"]
    crash_ns = start + 450 * 10**9
    assert crash_ns < halt["ts_ns"] < crash_ns + 60 * 10**9
    per = {m["market"]: m for m in summary["per_market"]}
    assert per["syn-03"]["risk_state"] == "halted" and per["syn-03"]["halted_at_ns"] == halt["ts_ns"]
    assert per["syn-03"]["halt"].startswith("halted by market_daily_loss_stop [syn-03]: ")
    assert {m: per[m]["risk_state"] for m in ("syn-00", "syn-01", "syn-02")} == dict.fromkeys(
        ("syn-00", "syn-01", "syn-02"), "active"
    )
    assert summary["risk"]["book_state"] == "active" and summary["risk_config"] == RISK

    # The event log: a `risk` record with the rule and its numbers, then nothing new in that market.
    [rec] = [e for e in events if e["kind"] == "risk" and e["state"] == "halted"]
    assert (rec["market"], rec["ts_ns"], rec["rule"]) == ("syn-03", halt["ts_ns"], "market_daily_loss_stop")
    top = rec["reasons"][0]
    assert (top["observed"], top["limit"]) == (halt["observed"], STOP_USDC6)
    assert rec["day_pnl_usdc6"] == -halt["observed"] and rec["halt"]["ts_ns"] == halt["ts_ns"]
    after = [e for e in events if e["market"] == "syn-03" and e["ts_ns"] >= rec["ts_ns"] and e is not rec]
    assert not [e for e in after if e["kind"] == "place"]
    assert any(e["kind"] == "decision" and e["no_quote"] == "risk_halted" for e in after)
    assert [
        e["market"] for e in events if e["kind"] == "place" and e["ts_ns"] > rec["ts_ns"]
    ]  # others trade on


def test_with_halt_scope_book_the_crash_halts_every_market(tmp_path):
    book_scope = tmp_path / "risk_book.yaml"
    text = Path(RISK).read_text()
    assert "halt_scope: market" in text
    book_scope.write_text(text.replace("halt_scope: market", "halt_scope: book"))

    summary, events = run(tmp_path, str(book_scope))

    halts = summary["risk"]["halts"]
    assert {h["rule"] for h in halts} == {"market_daily_loss_stop"}
    assert all("[syn-03]" in h["text"] for h in halts)  # every market, and the book, by syn-03's loss
    first = min(halts, key=lambda h: h["ts_ns"])
    assert summary["risk"]["book_state"] == "halted"
    assert {m["market"]: m["risk_state"] for m in summary["per_market"]} == dict.fromkeys(
        ("syn-00", "syn-01", "syn-02", "syn-03"), "halted"
    )
    book = [e for e in events if e["kind"] == "risk" and e["market"] == "" and e["state"] == "halted"]
    assert book and book[0]["rule"] == "market_daily_loss_stop"
    assert book[0]["ts_ns"] - first["ts_ns"] <= 10**9  # at the next barrier at the latest
    last = max(e["ts_ns"] for e in events if e["kind"] == "risk" and e["state"] == "halted")
    assert not [e for e in events if e["kind"] == "place" and e["ts_ns"] > last]


@pytest.mark.slow
def test_the_actors_engine_halts_the_same_way_byte_for_byte(tmp_path):
    inline, _ = run(tmp_path, RISK, "inline", "inline")
    actors, _ = run(tmp_path, RISK, "actors", "actors")

    assert inline["digest"] == actors["digest"]
    assert inline["risk"]["halts"] == actors["risk"]["halts"]


def test_the_command_line_shows_the_halt_and_refuses_a_risk_manager_config(tmp_path, capsys):
    scenario = tmp_path / "crash.yaml"
    scenario.write_bytes(msgspec.yaml.encode(short_crash()))

    code = main(["sim", "--config", MM, "--risk-config", RISK, "--scenario", str(scenario), "--out",
                 str(tmp_path / "o"), "--no-report"])  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    assert "HALTED syn-03 at 00:07:" in out and "by market_daily_loss_stop [syn-03]" in out

    assert main(["sim", "--config", RISK, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"{RISK}: strategy: a risk_manager config places no quotes; give a trading config as --config "
        "(it may take this one as --risk-config)"
    )
    assert main(["sim", "--config", MM, "--risk-config", MM, "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"{MM}: strategy: market_maker: --risk-config takes a risk_manager config (configs/risk.yaml)"
    )
    book = Path("tests/fixtures/polymarket/book_2026-08_captured.json")
    assert main(["quote", "--config", RISK, "--book", str(book)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
