"""A routed markets file is traded only when fresh and from the Gamma the run points at.

``route-markets`` records where its markets came from (the cache's Gamma URL and fetch time);
``run-market-maker`` uses the file only if that Gamma is the run's and the fetch is at most
``ops.selected_markets_max_age_s`` old. Otherwise it says why and selects fresh, or stops
(``ops.stale_selection: stop``). Against the exchange emulator on 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest

from adapters.market_cache import (
    SCHEMA_VERSION,
    MarketsFile,
    read_markets_file,
    selection_problem,
    write_markets_file,
)
from app.cli import main
from emulator import Emulator
from tests.gamma_server import GammaServer

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

NOW = "2026-06-01T12:00:00Z"
NOW_NS = 1_780_315_200 * 1_000_000_000  # NOW
GAMMA = "http://127.0.0.1:8080/gamma"


def doc(**source: str) -> MarketsFile:
    return MarketsFile(
        schema_version=SCHEMA_VERSION, kind="selected_markets", generated_at=NOW, markets=(), source=source
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"gamma_url": GAMMA, "fetched_at": NOW}, None),
        ({"gamma_url": GAMMA + "/", "fetched_at": "2026-06-01T11:00:00Z"}, None),
        ({"gamma_url": GAMMA, "fetched_at": "2026-05-31T11:59:00Z"}, "its markets were fetched 24.0 h ago"),
        (
            {"gamma_url": GAMMA, "fetched_at": "2026-05-20T12:00:00Z"},
            "its markets were fetched 12.0 days ago",
        ),
        (
            {"gamma_url": "https://gamma-api.polymarket.com", "fetched_at": NOW},
            "its markets came from https://",
        ),
        ({"fetched_at": NOW}, "it does not say which Gamma its markets came from"),
        ({"gamma_url": GAMMA, "fetched_at": "yesterday"}, "its fetch time 'yesterday' is not a UTC time"),
        (
            {"gamma_url": GAMMA, "fetched_at": "2026-06-01T13:00:00Z"},
            "its fetch time 2026-06-01T13:00:00Z is in",
        ),
        ({"gamma_url": GAMMA}, None),  # no fetched_at: generated_at stands for it
    ],
    ids=["fresh", "slash", "a-day", "old", "other-gamma", "no-gamma", "bad-time", "future", "generated-at"],
)
def test_selection_problem(source, problem):
    found = selection_problem(doc(**source), gamma_url=GAMMA, now_ns=NOW_NS, max_age_s=86_400)

    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


# --- end to end --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu():
    with Emulator("default", seed=5, port=0) as e:
        yield e


def config_in(tmp_path: Path, ops: str = "") -> Path:
    text = Path("configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    path = tmp_path / "mm.yaml"
    path.write_text(text + "".join(f"  {line}\n" for line in ops.splitlines()))
    return path


def routed(emu: Emulator, tmp_path: Path, cfg: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """refresh-markets from the emulator's Gamma, then route 2 markets to the market maker."""
    cache = tmp_path / "local_state" / "markets.json"
    selected = tmp_path / "local_state" / "market_maker" / "selected_markets.json"
    refresh = ["refresh-markets", "--config", str(cfg), "--skip-classify", "--skip-index"]
    assert main([*refresh, "--gamma-url", emu.gamma_url, "--markets-json-path", str(cache)]) == 0
    route = ["route-markets", "--source-config", str(cfg), "--markets-json-path", str(cache)]
    assert main([*route, "--market-maker-config", str(cfg), "--market-maker-limit", "2"]) == 0
    capsys.readouterr()
    return selected


def run(cfg: Path, emu: Emulator, gamma_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(
        [
            "run-market-maker",
            "--config",
            str(cfg),
            "--duration",
            "0",
            "--clob-url",
            emu.clob_url,
            "--ws-url",
            emu.ws_market_url,
            "--gamma-url",
            gamma_url,
            "--gamma-retries",
            "0",
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_route_markets_records_the_gamma_and_the_fetch_time(emu, tmp_path, capsys):
    selected = routed(emu, tmp_path, config_in(tmp_path), capsys)

    written = read_markets_file(selected)
    cache = read_markets_file(tmp_path / "local_state" / "markets.json")
    assert written.source["gamma_url"] == emu.gamma_url
    assert written.source["fetched_at"] == cache.generated_at


def test_a_fresh_file_from_the_same_gamma_is_traded(emu, tmp_path, capsys):
    cfg = config_in(tmp_path)
    selected = routed(emu, tmp_path, cfg, capsys)

    code, out, err = run(cfg, emu, emu.gamma_url, capsys)

    assert code == 0, err
    assert f"mode dry-run: using 2 routed markets from {selected} (fetched from {emu.gamma_url}" in out


def test_a_file_from_another_gamma_is_not_traded_and_markets_are_selected_fresh(emu, tmp_path, capsys):
    cfg = config_in(tmp_path)
    selected = routed(emu, tmp_path, cfg, capsys)

    with GammaServer() as other:
        code, out, err = run(cfg, emu, other.url, capsys)

    assert code == 0, err
    assert (
        f"routed markets at {selected} not used: its markets came from {emu.gamma_url}, and this run points "
        f"at {other.url}; selected"
    ) in out
    assert f"fresh from {other.url}" in out


def test_a_stale_file_is_not_traded(emu, tmp_path, capsys):
    cfg = config_in(tmp_path)
    selected = routed(emu, tmp_path, cfg, capsys)
    stale = read_markets_file(selected)
    old = msgspec.structs.replace(stale, source={**stale.source, "fetched_at": "2020-01-01T00:00:00Z"})
    write_markets_file(
        selected,
        kind=old.kind,
        entries=old.markets,
        generated_at=old.generated_at,
        strategy=old.strategy,
        source=old.source,
    )

    code, out, err = run(cfg, emu, emu.gamma_url, capsys)

    assert code == 0, err
    assert f"routed markets at {selected} not used: its markets were fetched " in out
    n = len(emu.venue.market_ids())  # every market of the default scenario, V1 and Protocol V2 alike
    assert f"more than ops.selected_markets_max_age_s (86400 s); selected {n} fresh from" in out


def test_stale_selection_stop_exits_2_with_one_line(emu, tmp_path, capsys):
    cfg = config_in(tmp_path, "selected_markets_max_age_s: 0.001\nstale_selection: stop")
    selected = routed(emu, tmp_path, cfg, capsys)

    code, out, err = run(cfg, emu, emu.gamma_url, capsys)

    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        f"{cfg}: ops.stale_selection: stop: routed markets at {selected} not used: its markets"
    )
    assert "mode dry-run" not in out
