"""A run's risk manager from ``--risk-config`` (``app.operations.RiskSetup``), issue #12 deliverable 2.

``configs/risk.yaml`` sets the limits, and its routed list (``route-markets``' risk manager list, the
risk config's ``ops.selected_markets_path``) is checked against the markets the bot trades: each is
watched whatever the list says, and a market missing from it, or a missing list, is said at start.
Without ``--risk-config`` the trading config's own ``risk`` section applies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from adapters.market_cache import CacheEntry, write_markets_file
from app.configfile import ConfigFileError, load_config
from app.operations import RiskSetup
from core.eventlog import BufferSink
from core.markets import MarketInfo
from core.risk import risk_limits
from core.selection import MarketRecord
from core.units import QTY_ONE, USDC6_ONE

MM = "configs/market_maker.yaml"
A, B = "0x" + "a1" * 32, "0x" + "b2" * 32
TRADED = [
    MarketInfo(market=m, yes_token=f"y{i}", no_token=f"n{i}", min_qty=5 * QTY_ONE)
    for i, m in enumerate((A, B))
]


def risk_config(tmp_path: Path) -> tuple[Path, Path]:
    """configs/risk.yaml with its routed list in tmp_path; returns (config, routed list)."""
    routed = tmp_path / "risk_manager" / "selected_markets.json"
    text = Path("configs/risk.yaml").read_text()
    assert "local_state/risk_manager/selected_markets.json" in text
    path = tmp_path / "risk.yaml"
    path.write_text(text.replace("local_state/risk_manager/selected_markets.json", str(routed)))
    return path, routed


def route(routed: Path, markets: list[str]) -> None:
    write_markets_file(
        routed,
        kind="selected_markets",
        strategy="risk_manager",
        entries=[
            CacheEntry(market=MarketRecord(market_id=str(i), condition_id=m)) for i, m in enumerate(markets)
        ],
        generated_at="2026-12-07T00:00:00Z",
    )


def load(tmp_path: Path, risk: Path | None) -> RiskSetup:
    args = argparse.Namespace(config=MM, risk_config=str(risk) if risk is not None else None)
    return RiskSetup.load(args, load_config(MM), "dry-run", tmp_path / "state", TRADED)


def test_the_risk_config_sets_the_limits_and_its_routed_list_covering_every_market_says_nothing(tmp_path):
    path, routed = risk_config(tmp_path)
    route(routed, [B, A, "0x" + "cc" * 32])  # the risk manager's list holds more than this bot trades

    setup = load(tmp_path, path)

    assert setup.limits == risk_limits(load_config(path))
    assert setup.limits.market_daily_loss_stop_usdc6 == 25 * USDC6_ONE  # configs/risk.yaml's, not the mm's
    assert setup.limits != risk_limits(load_config(MM))
    assert setup.notes == [] and setup.source == str(path)
    monitor = setup.monitor(BufferSink())
    assert [m.market for m in monitor.view(0).markets] == [A, B]  # every market traded is watched
    assert setup.lines(monitor)[0].startswith(f"risk: limits from {path}: daily loss stop 25 USDC a market")


def test_a_market_missing_from_the_routed_list_is_watched_all_the_same_and_said(tmp_path):
    path, routed = risk_config(tmp_path)
    route(routed, [A])

    setup = load(tmp_path, path)

    assert setup.notes == [
        f"risk: 1 of the 2 markets traded are not in the risk manager's list {routed} (run route-markets "
        "again); watched all the same"
    ]
    assert [m.market for m in setup.monitor(BufferSink()).view(0).markets] == [A, B]
    assert setup.notes[0] in setup.lines(setup.monitor(BufferSink()))


def test_no_routed_list_watches_every_market_traded_and_says_so(tmp_path):
    path, routed = risk_config(tmp_path)

    setup = load(tmp_path, path)

    assert setup.notes == [
        f"risk: no routed list at {routed} (route-markets --risk-manager-*): watching every market traded"
    ]
    assert [m.market for m in setup.monitor(BufferSink()).view(0).markets] == [A, B]


def test_an_unreadable_routed_list_stops_the_start_with_one_line(tmp_path):
    path, routed = risk_config(tmp_path)
    routed.parent.mkdir(parents=True)
    routed.write_text("{not json")

    with pytest.raises(ConfigFileError) as exc:
        load(tmp_path, path)

    assert str(exc.value).startswith(f"{path}: ops.selected_markets_path: ") and "\n" not in str(exc.value)


def test_without_a_risk_config_the_trading_configs_own_risk_section_applies(tmp_path):
    setup = load(tmp_path, None)

    assert setup.limits == risk_limits(load_config(MM)) and setup.notes == []
    assert setup.source == f"{MM} (its risk section)"
